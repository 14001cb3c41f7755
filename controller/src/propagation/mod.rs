//! Propagation: resource templates go to member clusters, as Karmada's policies say.
//!
//! ```text
//!  templates ──claim──> PropagationPolicy ──schedule──> ResourceBinding ──render──> manifests ──> sinks
//!  (Deployment, …)       (namespaced first,   (filters, spread,   (clusters +       per cluster:     dir | kube
//!                         then priority, …)    replicas)          replicas)         overrides,
//!                                                                                   locality labels
//! ```
//!
//! Everything here but the sinks is pure: the same index and the same clock give the same
//! bindings and the same manifests, so instances in different zones agree without talking.

pub mod apply;
pub mod claim;
pub mod failover;
pub mod plan;
pub mod quantity;
pub mod render;
pub mod scheduler;
pub mod selector;
pub mod sink;
pub mod templates;
pub mod workload;
