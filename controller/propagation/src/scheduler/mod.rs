//! The scheduler: where a resource template goes and how many replicas each cluster runs, with
//! Karmada's semantics (`pkg/scheduler/core`, `pkg/scheduler/framework/plugins`).
//!
//! ```text
//!  clusters ──filter──> feasible ──spread──> selected ──divide──> [{name, replicas}]
//!            affinity             minGroups /           Duplicated | static weights (Webster)
//!            taints               maxGroups by          | dynamic weights | Aggregated,
//!            spread fields        cluster, region,      starting from the previous result
//!            evictions            zone, provider, label
//! ```
//!
//! With `clusterAffinities`, the whole pipeline runs once per term, in order, and the first term
//! that schedules wins; when none does, the first term's failure is reported (Karmada's
//! `scheduleResourceBindingWithClusterAffinities`).
//!
//! A rebalance ([`Request::fresh`], Karmada's `Fresh` assignment mode) divides the replicas
//! again from scratch. As in Karmada 1.18 it still tries the affinity terms from the one the
//! previous result used; restarting from the first term on a rebalance is Karmada 1.19's, not
//! released yet.
//!
//! Everything is a pure function of [`Request`]: clusters are referred to by their index in
//! `Request::clusters` (sorted by name, so index order is name order), nothing is cloned, and
//! ties are broken by name, so the same request always gives the same [`Decision`].
//!
//! # Errors
//! [`Unschedulable::reason`] is the reason Karmada writes on the binding's `Scheduled` condition:
//! `NoClusterFit` when the filters leave no cluster (message as Karmada's `FitError`),
//! `Unschedulable` when capacity is short, `SchedulerError` for spread-constraint failures (Karmada
//! reports those as plain errors).

mod divide;
pub use divide::apportion;
mod estimate;
mod filter;
mod spread;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use thiserror::Error;

use super::workload;
use meshfleet_api::{Cluster, ClusterAffinity, Placement, StaticClusterWeight, TargetCluster};

/// Everything one scheduling decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub placement: &'a Placement,
    /// Replicas the template asks for; 0 for kinds without replicas (then every selected cluster
    /// gets the object, replicas 0).
    pub replicas: i32,
    pub requirements: &'a workload::Requirements,
    /// Every member cluster, sorted by name, with the taints in effect (the caller adds
    /// `cluster.karmada.io/not-ready` taints for unready clusters before calling).
    pub clusters: &'a [Arc<Cluster>],
    /// The previous result ([] on first scheduling); start from it as Karmada does.
    pub previous: &'a [TargetCluster],
    /// Clusters being evicted from (graceful eviction tasks): never chosen.
    pub evicting: &'a BTreeSet<String>,
    /// The `clusterAffinities` term the previous result was based on: as in Karmada, the
    /// terms are tried from it onwards (a term not found: from the first).
    pub affinity: Option<&'a str>,
    /// A rebalance (Karmada's `Fresh` assignment): divided replicas are divided again from
    /// scratch, by the available replicas of the selected clusters (counting what the previous
    /// result gave them), instead of scaling the previous result. Previous clusters still score
    /// as previous, and the affinity terms still start from `affinity`, as in Karmada 1.18.
    pub fresh: bool,
}

/// Where the template goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Sorted by name; for divided workloads, only clusters with replicas.
    pub clusters: Vec<TargetCluster>,
    /// The `clusterAffinities` term used, when the placement has them.
    pub affinity_name: Option<String>,
}

/// Why nothing could be scheduled, as Karmada words it on the `Scheduled` condition.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{reason}: {message}")]
pub struct Unschedulable {
    /// `NoClusterFit`, `Unschedulable` or `SchedulerError`.
    pub reason: String,
    /// E.g. `0/3 clusters are available: 1 cluster(s) did not match the placement cluster
    /// affinity constraint, 2 cluster(s) had untolerated taint {k=v:NoSchedule}.`
    pub message: String,
}

impl Unschedulable {
    fn new(reason: &str, message: String) -> Self {
        Self {
            reason: reason.to_owned(),
            message,
        }
    }

    /// Karmada's `failed to select clusters: …` (a spread constraint cannot be met).
    fn select(message: &str) -> Self {
        Self::new(
            "SchedulerError",
            format!("failed to select clusters: {message}"),
        )
    }
}

/// Schedules one resource template.
///
/// # Errors
/// No cluster passes the filters, spread constraints cannot be met, or the clusters lack
/// capacity for the replicas; see the module docs for the reasons.
pub fn schedule(request: &Request<'_>) -> Result<Decision, Unschedulable> {
    if request.clusters.is_empty() {
        return Err(Unschedulable::new(
            "SchedulerError",
            "no clusters available to schedule".to_owned(),
        ));
    }
    let context = Context::new(request);
    let terms = &request.placement.cluster_affinities;
    if terms.is_empty() {
        let clusters = context.schedule(request.placement.cluster_affinity.as_ref())?;
        return Ok(Decision {
            clusters,
            affinity_name: None,
        });
    }
    let start = request
        .affinity
        .and_then(|name| terms.iter().position(|t| t.affinity_name == name))
        .unwrap_or(0);
    let mut first_failure = None;
    for term in &terms[start..] {
        match context.schedule(Some(&term.affinity)) {
            Ok(clusters) => {
                return Ok(Decision {
                    clusters,
                    affinity_name: Some(term.affinity_name.clone()),
                });
            }
            Err(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| Unschedulable::select("no cluster affinity term")))
}

/// Why `cluster` cannot take a template placed by `placement` under `affinity` (Karmada's
/// filter wording, without its count), or `None` when every filter passes. `held`: the
/// cluster holds the previous result (a `NoSchedule` taint does not remove it); `evicting`:
/// its copy is being evicted. The taints must be those in effect
/// ([`crate::failover::with_health_taints`]).
pub fn filter_reason(
    placement: &Placement,
    affinity: Option<&ClusterAffinity>,
    cluster: &Arc<Cluster>,
    held: bool,
    evicting: bool,
) -> Option<String> {
    let previous: Vec<TargetCluster> = held
        .then(|| TargetCluster {
            name: cluster.name().to_owned(),
            replicas: 0,
        })
        .into_iter()
        .collect();
    let evicting: BTreeSet<String> = evicting
        .then(|| cluster.name().to_owned())
        .into_iter()
        .collect();
    let requirements = workload::Requirements::default();
    let request = Request {
        placement,
        replicas: 0,
        requirements: &requirements,
        clusters: std::slice::from_ref(cluster),
        previous: &previous,
        evicting: &evicting,
        affinity: None,
        fresh: false,
    };
    let context = Context::new(&request);
    filter::check(&context, 0, affinity)
        .err()
        .map(|misfit| misfit.reason().trim_start_matches("cluster(s) ").to_owned())
}

/// How replicas are divided: Karmada's `assignState.strategyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy<'a> {
    /// Every cluster runs all replicas (the default).
    Duplicated,
    /// As few clusters as possible, by available replicas.
    Aggregated,
    /// By `staticWeightList` (empty: equal weights).
    StaticWeight(&'a [StaticClusterWeight]),
    /// By available replicas (`dynamicWeight: AvailableReplicas`).
    DynamicWeight,
}

impl<'a> Strategy<'a> {
    /// An absent `replicaSchedulingType` is `Duplicated` (the CRD default); `Divided` without a
    /// preference is `Weighted` (Karmada's defaulting webhook).
    fn of(placement: &'a Placement) -> Self {
        let Some(scheduling) = &placement.replica_scheduling else {
            return Self::Duplicated;
        };
        if scheduling.replica_scheduling_type.as_deref() != Some("Divided") {
            return Self::Duplicated;
        }
        if scheduling.replica_division_preference.as_deref() == Some("Aggregated") {
            return Self::Aggregated;
        }
        match &scheduling.weight_preference {
            Some(weights)
                if weights
                    .dynamic_weight
                    .as_deref()
                    .is_some_and(|d| !d.is_empty()) =>
            {
                Self::DynamicWeight
            }
            Some(weights) => Self::StaticWeight(&weights.static_weight_list),
            None => Self::StaticWeight(&[]),
        }
    }
}

/// A request, with the previous result indexed by cluster.
struct Context<'a> {
    request: &'a Request<'a>,
    strategy: Strategy<'a>,
    /// Replicas the previous result gave each cluster (`None`: not in it), by cluster index.
    previous: Vec<Option<i32>>,
    /// Clusters being evicted from, by cluster index.
    evicting: Vec<bool>,
}

impl<'a> Context<'a> {
    fn new(request: &'a Request<'a>) -> Self {
        let count = request.clusters.len();
        let mut previous = vec![None; count];
        for target in request.previous {
            if let Some(index) = find(request.clusters, &target.name) {
                previous[index] = Some(target.replicas);
            }
        }
        let mut evicting = vec![false; count];
        for name in request.evicting {
            if let Some(index) = find(request.clusters, name) {
                evicting[index] = true;
            }
        }
        Self {
            request,
            strategy: Strategy::of(request.placement),
            previous,
            evicting,
        }
    }

    fn cluster(&self, index: usize) -> &'a Cluster {
        &self.request.clusters[index]
    }

    fn name(&self, index: usize) -> &'a str {
        self.request.clusters[index].name()
    }

    /// Karmada's ClusterLocality score: clusters of the previous result are preferred.
    fn score(&self, index: usize) -> i64 {
        if self.previous[index].is_some() {
            100
        } else {
            0
        }
    }

    /// Filter, select, divide, for one cluster affinity.
    fn schedule(
        &self,
        affinity: Option<&ClusterAffinity>,
    ) -> Result<Vec<TargetCluster>, Unschedulable> {
        let feasible = filter::feasible(self, affinity);
        if feasible.is_empty() {
            return Err(filter::diagnose(self, affinity));
        }
        let selected = spread::select(self, feasible)?;
        let assigned = divide::assign(self, &selected)?;
        let mut targets: Vec<TargetCluster> = assigned
            .into_iter()
            .map(|(index, replicas)| TargetCluster {
                name: self.name(index).to_owned(),
                replicas,
            })
            .collect();
        targets.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(targets)
    }
}

/// The index of the cluster named `name` (clusters are sorted by name).
fn find(clusters: &[Arc<Cluster>], name: &str) -> Option<usize> {
    clusters
        .binary_search_by(|c| c.name().cmp(name))
        .ok()
        .or_else(|| clusters.iter().position(|c| c.name() == name))
}
