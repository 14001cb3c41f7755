//! The mesh model every part of meshfleet shares: global services with their ports and
//! endpoints, localities and networks, locality policies, and the problems found in the inputs
//! that built them. The controller's catalog produces it; xDS, DNS and the CA consume it.
//!
//! ```text
//!  catalog ──> Mesh { GlobalService { ports: [ServicePort { endpoints: [Endpoint] }],
//!                                     locality: LocalityPolicy } }
//!                │
//!                ├──> xDS (clusters, endpoints per client locality, listeners, routes)
//!                └──> DNS (names, VIPs), CA (identities)
//! ```
//!
//! Pure data: no I/O, no async runtime, no Kubernetes client. Its `Cargo.toml` is the proof.
#![forbid(unsafe_code)]

mod mesh;
pub mod parallel;
pub mod problem;

pub use mesh::*;
pub use problem::{Problem, Source};
