//! xDS for meshfleet: the mesh model in, Envoy resources out.
//!
//! ```text
//!  Mesh (model) ──> SnapshotCache ──(per ClientKey: locality, network, port)──> Snapshot
//!                     │  translate once per changed service: clusters, API listeners, routes
//!                     │  (shared by every key); endpoints encoded once per network; per key:
//!                     │  load assignments as ropes over those bytes (locality weights) and
//!                     │  the outbound listener
//!                     └──> watch ──> AdsServer streams (SotW, Delta): nonces, ACK/NACK, status
//! ```
//!
//! The cache owns data and versions; a stream owns its nonces and subscriptions; they meet at
//! [`cache::SnapshotCache::watch`]. Nothing here knows about Kubernetes.
#![forbid(unsafe_code)]

pub mod cache;
pub mod explain;
pub mod locality;
pub mod resource;
pub mod server;
pub mod translate;

/// The mesh model this crate translates, from `meshfleet-model`.
pub use meshfleet_model as model;

pub use cache::{Snapshot, SnapshotCache};
pub use envoy_types::pb;
pub use server::AdsServer;
