//! Policies and clusters that cannot do what they say: reported, planned as Karmada would.

use std::sync::Arc;

use meshfleet_api::PropagationPolicy;
use meshfleet_index::Index;
use meshfleet_model::problem::{Problem, Source};

/// `PropagationPolicy web/nginx` or `ClusterPropagationPolicy all`.
/// The policy, for a problem about it.
pub(super) fn policy_source(policy: &PropagationPolicy) -> Source {
    let namespace = if policy.is_cluster_scoped() {
        ""
    } else {
        policy.metadata.namespace_or_default()
    };
    Source::object(&policy.kind, namespace, &policy.metadata.name)
}

pub(super) fn policy_name(policy: &PropagationPolicy) -> String {
    if policy.is_cluster_scoped() {
        format!("{} {}", policy.kind, policy.metadata.name)
    } else {
        format!(
            "{} {}/{}",
            policy.kind,
            policy.metadata.namespace_or_default(),
            policy.metadata.name
        )
    }
}

/// Clusters propagation cannot place well.
pub(super) fn check_clusters(index: &Index) -> Vec<Problem> {
    index
        .clusters()
        .filter(|c| c.region().is_none())
        .map(|c| {
            Problem::new(
                Source::object("Cluster", "", c.name()),
                "no region: spread by region leaves it out, and its workloads get no region label",
            )
            .at("spec.region")
        })
        .collect()
}

/// Policies that cannot do what they say.
pub(super) fn check_policies(policies: &[&Arc<PropagationPolicy>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for policy in policies {
        let name = policy_source(policy);
        if policy.spec.resource_selectors.is_empty() {
            problems.push(
                Problem::new(name.clone(), "empty: it selects nothing")
                    .at("spec.resourceSelectors"),
            );
        }
        let weights = policy
            .spec
            .placement
            .replica_scheduling
            .as_ref()
            .and_then(|r| r.weight_preference.as_ref())
            .map(|w| &w.static_weight_list);
        if let Some(list) = weights.filter(|l| !l.is_empty())
            && list.iter().all(|w| w.weight <= 0)
        {
            problems.push(
                Problem::new(
                    name.clone(),
                    "weights sum to 0: replicas are divided equally among the selected clusters",
                )
                .at("spec.placement.replicaScheduling.weightPreference.staticWeightList"),
            );
        }
    }
    problems
}
