//! Available replicas: how many more replicas a cluster can take, from its
//! `status.resourceSummary`, as Karmada's general estimator computes it
//! (`pkg/estimator/client/general.go`):
//!
//! - free = allocatable − allocated − allocating, per resource;
//! - replicas = min over requested resources of free / request, and never more than the free
//!   `pods`;
//! - a cluster without a resource summary, without `pods` allocatable, or without a requested
//!   resource in its allocatable, can take 0 replicas (Karmada returns 0 there too);
//! - unknown requirements (not a workload, or no requests) count pods only.
//!
//! An allocatable quantity that does not parse counts as absent (so the cluster takes 0); an
//! unreadable allocated or allocating one counts as nothing in use.

use std::collections::BTreeMap;

use crate::quantity::parse_json_milli;
use crate::workload::{PODS, Requirements};
use meshfleet_api::Cluster;

/// How many replicas with `requirements` `cluster` can still take, capped at `i32::MAX`.
pub(super) fn available_replicas(cluster: &Cluster, requirements: &Requirements) -> i64 {
    let Some(summary) = &cluster.status.resource_summary else {
        return 0;
    };
    let free = |name: &str| -> Option<i128> {
        let allocatable = parse_json_milli(summary.allocatable.get(name)?).ok()?;
        Some(allocatable - used(&summary.allocated, name) - used(&summary.allocating, name))
    };
    let Some(pods) = free(PODS).map(|milli| milli / 1000) else {
        return 0;
    };
    let mut replicas = pods.max(0);
    for (name, &request) in &requirements.milli {
        if name == PODS || request <= 0 {
            continue;
        }
        let Some(available) = free(name) else {
            return 0;
        };
        replicas = replicas.min((available / request).max(0));
    }
    i64::try_from(replicas.min(i128::from(i32::MAX))).unwrap_or(0)
}

/// What `map` says is in use of `name`; absent or unreadable is nothing.
fn used(map: &BTreeMap<String, serde_json::Value>, name: &str) -> i128 {
    map.get(name)
        .and_then(|v| parse_json_milli(v).ok())
        .unwrap_or(0)
}
