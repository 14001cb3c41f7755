//! Filters: which clusters may take the template at all. Karmada's filter plugins, in its
//! registry's order (`pkg/scheduler/framework/plugins`), each cluster stopping at its first
//! failure:
//!
//! 1. TaintToleration: a `NoSchedule` or `NoExecute` taint needs a matching toleration, except on
//!    clusters of the previous result (the taint manager evicts those, after a grace period).
//! 2. ClusterAffinity: `clusterNames`, `exclude`, `labelSelector`, `fieldSelector`.
//! 3. SpreadConstraint: spreading by a field or label needs the cluster to have it.
//! 4. ClusterEviction: clusters the binding is being evicted from are never chosen.

use std::collections::BTreeMap;

use super::{Context, Unschedulable};
use crate::selector::cluster_matches;
use meshfleet_api::{ClusterAffinity, Taint, Toleration};

/// Why a cluster was filtered out.
pub(super) enum Misfit<'a> {
    Taint(&'a Taint),
    Affinity,
    Field(&'static str),
    Label(&'a str),
    Evicting,
}

impl Misfit<'_> {
    /// Karmada's wording.
    pub(super) fn reason(&self) -> String {
        match self {
            Self::Taint(taint) => format!(
                "cluster(s) had untolerated taint {{{}}}",
                taint_string(taint)
            ),
            Self::Affinity => {
                "cluster(s) did not match the placement cluster affinity constraint".to_owned()
            }
            Self::Field(field) => format!("cluster(s) didn't have {field} property"),
            Self::Label(key) => format!("cluster(s) didn't have label {key}"),
            Self::Evicting => "cluster(s) is in the process of eviction".to_owned(),
        }
    }
}

/// Indexes of the clusters that pass every filter, in name order.
pub(super) fn feasible(context: &Context<'_>, affinity: Option<&ClusterAffinity>) -> Vec<usize> {
    (0..context.request.clusters.len())
        .filter(|&index| check(context, index, affinity).is_ok())
        .collect()
}

/// Karmada's `FitError`: `0/N clusters are available: <count> <reason>, ….`, the
/// `<count> <reason>` strings sorted.
pub(super) fn diagnose(context: &Context<'_>, affinity: Option<&ClusterAffinity>) -> Unschedulable {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for index in 0..context.request.clusters.len() {
        if let Err(misfit) = check(context, index, affinity) {
            *counts.entry(misfit.reason()).or_default() += 1;
        }
    }
    let mut reasons: Vec<String> = counts
        .into_iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    reasons.sort();
    Unschedulable::new(
        "NoClusterFit",
        format!(
            "0/{} clusters are available: {}.",
            context.request.clusters.len(),
            reasons.join(", ")
        ),
    )
}

pub(super) fn check<'c>(
    context: &Context<'c>,
    index: usize,
    affinity: Option<&ClusterAffinity>,
) -> Result<(), Misfit<'c>> {
    let cluster = context.cluster(index);
    let placement = context.request.placement;
    if context.previous[index].is_none()
        && let Some(taint) = untolerated(&cluster.spec.taints, &placement.cluster_tolerations)
    {
        return Err(Misfit::Taint(taint));
    }
    if affinity.is_some_and(|a| !cluster_matches(a, cluster)) {
        return Err(Misfit::Affinity);
    }
    for constraint in &placement.spread_constraints {
        if let Some(key) = constraint
            .spread_by_label
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            if cluster
                .metadata
                .labels
                .get(key)
                .is_none_or(String::is_empty)
            {
                return Err(Misfit::Label(key));
            }
            continue;
        }
        let present = match constraint.spread_by_field.as_deref() {
            Some("provider") => cluster
                .spec
                .provider
                .as_deref()
                .is_some_and(|p| !p.is_empty()),
            Some("region") => cluster.region().is_some(),
            Some("zone") => cluster.zone().is_some(),
            _ => true,
        };
        if !present {
            let field = match constraint.spread_by_field.as_deref() {
                Some("provider") => "provider",
                Some("region") => "region",
                _ => "zone",
            };
            return Err(Misfit::Field(field));
        }
    }
    if context.evicting[index] {
        return Err(Misfit::Evicting);
    }
    Ok(())
}

/// The first `NoSchedule` / `NoExecute` taint no toleration tolerates.
fn untolerated<'t>(taints: &'t [Taint], tolerations: &[Toleration]) -> Option<&'t Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// Kubernetes' `Toleration.ToleratesTaint`.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// Kubernetes' `Taint.ToString`: `key=value:effect`, or `key:effect` without a value.
fn taint_string(taint: &Taint) -> String {
    match taint.value.as_deref().filter(|v| !v.is_empty()) {
        Some(value) => format!("{}={}:{}", taint.key, value, taint.effect),
        None => format!("{}:{}", taint.key, taint.effect),
    }
}
