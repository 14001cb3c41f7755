//! Propagation: resource templates go to member clusters, as Karmada's policies say.
//!
//! ```text
//!  templates ──claim──> PropagationPolicy ──schedule──> ResourceBinding ──render──> manifests ──> sinks
//!  (Deployment, …)       (namespaced first,   (filters, spread,   (clusters +       per cluster:     dir | kube
//!                         then priority, …)    replicas)          replicas)         overrides,
//!                                                                                   locality labels
//! ```
//!
//! Everything here is pure (the sinks live in the runtime): the same index and the same clock give the same
//! bindings and the same manifests, so instances in different zones agree without talking.

#![forbid(unsafe_code)]

pub mod claim;
pub mod failover;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod manifest;
pub mod plan;
pub mod quantity;
pub mod render;
pub mod scheduler;
pub mod selector;
pub mod templates;
pub mod workload;
