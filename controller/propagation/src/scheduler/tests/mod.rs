//! Scheduler tests, table-driven from Karmada's documented behaviour and its own test cases.
//! Fixtures: [`placement`] builds policies, [`Case`] runs one scheduling request.

mod divide;
mod filter;
mod spread;
mod spread_search;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Decision, Request, Unschedulable, schedule};
use crate::workload::Requirements;
use meshfleet_api::fixtures::cluster;
use meshfleet_api::{
    Cluster, ClusterAffinity, ClusterAffinityTerm, ClusterPreferences, FieldSelector,
    LabelSelector, Placement, ReplicaSchedulingStrategy, SelectorRequirement, SpreadConstraint,
    StaticClusterWeight, TargetCluster, Toleration,
};

pub(super) struct PlacementFixture(Placement);

pub(super) fn placement() -> PlacementFixture {
    PlacementFixture(Placement::default())
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

pub(super) fn affinity_names(list: &[&str]) -> ClusterAffinity {
    ClusterAffinity {
        cluster_names: names(list),
        ..ClusterAffinity::default()
    }
}

impl PlacementFixture {
    fn affinity(&mut self) -> &mut ClusterAffinity {
        self.0.cluster_affinity.get_or_insert_with(Default::default)
    }
    pub(super) fn names(mut self, list: &[&str]) -> Self {
        self.affinity().cluster_names = names(list);
        self
    }
    pub(super) fn exclude(mut self, list: &[&str]) -> Self {
        self.affinity().exclude = names(list);
        self
    }
    pub(super) fn label(mut self, key: &str, value: &str) -> Self {
        self.affinity().label_selector = Some(LabelSelector {
            match_labels: BTreeMap::from([(key.to_owned(), value.to_owned())]),
            ..LabelSelector::default()
        });
        self
    }
    pub(super) fn field(mut self, key: &str, operator: &str, values: &[&str]) -> Self {
        self.affinity().field_selector = Some(FieldSelector {
            match_expressions: vec![SelectorRequirement {
                key: key.to_owned(),
                operator: operator.to_owned(),
                values: names(values),
            }],
        });
        self
    }
    pub(super) fn term(mut self, name: &str, affinity: ClusterAffinity) -> Self {
        self.0.cluster_affinities.push(ClusterAffinityTerm {
            affinity_name: name.to_owned(),
            affinity,
        });
        self
    }
    pub(super) fn tolerate(mut self, key: &str, operator: &str, value: &str, effect: &str) -> Self {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        self.0.cluster_tolerations.push(Toleration {
            key: some(key),
            operator: some(operator),
            value: some(value),
            effect: some(effect),
            toleration_seconds: None,
        });
        self
    }
    pub(super) fn spread(mut self, field: &str, min: i32, max: i32) -> Self {
        self.0.spread_constraints.push(SpreadConstraint {
            spread_by_field: Some(field.to_owned()),
            min_groups: Some(min),
            max_groups: Some(max),
            ..SpreadConstraint::default()
        });
        self
    }
    pub(super) fn spread_label(mut self, key: &str, min: i32, max: i32) -> Self {
        self.0.spread_constraints.push(SpreadConstraint {
            spread_by_label: Some(key.to_owned()),
            min_groups: Some(min),
            max_groups: Some(max),
            ..SpreadConstraint::default()
        });
        self
    }
    fn divided(mut self, preference: Option<&str>, weights: Option<ClusterPreferences>) -> Self {
        self.0.replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: Some("Divided".to_owned()),
            replica_division_preference: preference.map(str::to_owned),
            weight_preference: weights,
        });
        self
    }
    /// `Divided` + `Weighted` with `staticWeightList` entries `(clusterNames, weight)`.
    pub(super) fn static_weights(self, list: &[(&[&str], i64)]) -> Self {
        let list = list
            .iter()
            .map(|(targets, weight)| StaticClusterWeight {
                target_cluster: affinity_names(targets),
                weight: *weight,
            })
            .collect();
        self.weights(list)
    }
    pub(super) fn weights(self, list: Vec<StaticClusterWeight>) -> Self {
        self.divided(
            Some("Weighted"),
            Some(ClusterPreferences {
                static_weight_list: list,
                dynamic_weight: None,
            }),
        )
    }
    /// `Divided` with no preference nor weights: Weighted, equal weights.
    pub(super) fn divided_default(self) -> Self {
        self.divided(None, None)
    }
    pub(super) fn dynamic(self) -> Self {
        self.divided(
            Some("Weighted"),
            Some(ClusterPreferences {
                static_weight_list: Vec::new(),
                dynamic_weight: Some("AvailableReplicas".to_owned()),
            }),
        )
    }
    pub(super) fn aggregated(self) -> Self {
        self.divided(Some("Aggregated"), None)
    }
    pub(super) fn build(self) -> Placement {
        self.0
    }
}

/// A named table row: what is scheduled, and the expected clusters.
pub(super) type Row<'a> = (&'a str, PlacementFixture, Vec<(&'a str, i32)>);

/// A ready cluster with `cpu` cores and 110 pods free.
pub(super) fn with_cpu(name: &str, cpu: &str) -> Arc<Cluster> {
    cluster(name)
        .capacity(&[("cpu", cpu), ("memory", "64Gi"), ("pods", "110")], &[])
        .ready()
        .arc()
}

/// One replica = 1 CPU and one pod.
pub(super) fn one_cpu() -> Requirements {
    Requirements {
        milli: BTreeMap::from([("cpu".to_owned(), 1000), ("pods".to_owned(), 1000)]),
    }
}

pub(super) fn targets(list: &[(&str, i32)]) -> Vec<TargetCluster> {
    list.iter()
        .map(|(name, replicas)| TargetCluster {
            name: (*name).to_owned(),
            replicas: *replicas,
        })
        .collect()
}

/// `Ok(Decision)` without an affinity term.
pub(super) fn decided(list: &[(&str, i32)]) -> Result<Decision, Unschedulable> {
    Ok(Decision {
        clusters: targets(list),
        affinity_name: None,
    })
}

pub(super) fn failed(reason: &str, message: &str) -> Result<Decision, Unschedulable> {
    Err(Unschedulable {
        reason: reason.to_owned(),
        message: message.to_owned(),
    })
}

/// One scheduling request.
pub(super) struct Case {
    pub placement: Placement,
    pub replicas: i32,
    pub requirements: Requirements,
    pub clusters: Vec<Arc<Cluster>>,
    pub previous: Vec<TargetCluster>,
    pub evicting: BTreeSet<String>,
    pub affinity: Option<String>,
    pub fresh: bool,
}

impl Case {
    pub(super) fn new(
        placement: PlacementFixture,
        replicas: i32,
        clusters: Vec<Arc<Cluster>>,
    ) -> Self {
        let mut clusters = clusters;
        clusters.sort_by(|a, b| a.name().cmp(b.name()));
        Self {
            placement: placement.build(),
            replicas,
            requirements: one_cpu(),
            clusters,
            previous: Vec::new(),
            evicting: BTreeSet::new(),
            affinity: None,
            fresh: false,
        }
    }
    pub(super) fn observing(mut self, term: &str) -> Self {
        self.affinity = Some(term.to_owned());
        self
    }
    pub(super) fn previous(mut self, list: &[(&str, i32)]) -> Self {
        self.previous = targets(list);
        self
    }
    /// A rebalance: replicas divided afresh.
    pub(super) fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }
    pub(super) fn evicting(mut self, name: &str) -> Self {
        self.evicting.insert(name.to_owned());
        self
    }
    pub(super) fn run(&self) -> Result<Decision, Unschedulable> {
        schedule(&Request {
            placement: &self.placement,
            replicas: self.replicas,
            requirements: &self.requirements,
            clusters: &self.clusters,
            previous: &self.previous,
            evicting: &self.evicting,
            affinity: self.affinity.as_deref(),
            fresh: self.fresh,
        })
    }
}

/// Ready clusters without capacity information.
pub(super) fn plain(list: &[&str]) -> Vec<Arc<Cluster>> {
    list.iter().map(|n| cluster(n).ready().arc()).collect()
}

#[test]
fn same_request_same_decision() {
    let case = Case::new(
        placement().dynamic(),
        7,
        vec![with_cpu("a", "4"), with_cpu("b", "4"), with_cpu("c", "4")],
    );
    let first = case.run();
    assert_eq!(first, decided(&[("a", 3), ("b", 2), ("c", 2)]));
    assert_eq!(case.run(), first);
}

#[test]
fn no_clusters_at_all() {
    assert_eq!(
        Case::new(placement(), 1, Vec::new()).run(),
        failed("SchedulerError", "no clusters available to schedule")
    );
}
