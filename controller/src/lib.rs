//! meshfleet: runs a fleet of Kubernetes clusters, over regions and zones, as one Istio mesh.
//!
//! ```text
//!  sources ──apply/delete/reset──> Index ──> Catalog (NameService) ──> xds::SnapshotCache ──> ADS
//!  (config dir, watched)            typed objects  exported services,          per client locality
//!                                   per file       endpoints with locality
//! ```
//!
//! Sources feed the [`index::Index`]; nothing downstream sees a file, a watch or a retry. The
//! catalog is a pure function of the index; serving it (xDS, admin) is the only I/O.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod crd;
pub mod demo;
pub mod index;
pub mod problem;
pub mod propagation;
pub mod run;
pub mod source;
