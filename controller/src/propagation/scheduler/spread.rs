//! Spread constraints: which of the feasible clusters are selected, as Karmada's
//! `pkg/scheduler/core/spreadconstraint` selects them.
//!
//! Clusters are ranked by score (Karmada's ClusterLocality: 100 for clusters of the previous
//! result, else 0), then name. A cluster's available replicas include the replicas the previous
//! result gave it.
//!
//! - **By cluster** (`spreadByField: cluster` alone): fewer feasible clusters than `minGroups`
//!   fails; otherwise the `min(maxGroups, feasible)` best-ranked clusters, where, unless the
//!   replicas are duplicated, lowest-ranked ones are swapped for the unselected cluster with the
//!   most available replicas until the selection can hold the replicas (else it fails).
//! - **By group** (`region`, and beyond Karmada `zone`, `provider` and `spreadByLabel`, which
//!   work the same way): fewer groups than `minGroups` fails; groups are ranked by their best
//!   cluster's score, then their number of clusters, then available replicas, then name; the
//!   first `minGroups` are taken, and more (up to `maxGroups`) while they hold fewer clusters than
//!   the cluster constraint's `minGroups`. Then each chosen group's best cluster, and the other
//!   clusters of the chosen groups by score, then available replicas, up to the cluster
//!   constraint's `maxGroups`.
//!
//! Where Karmada is silent or stricter, meshfleet chooses:
//! - Karmada enumerates group combinations depth-first; meshfleet takes the ranked prefix, which
//!   is the same choice whenever scores and cluster counts order the groups, and stays linear for
//!   fleets with many zones.
//! - Several group constraints: one applies, the first of region, zone, provider, label (Karmada
//!   applies region only); all of them still filter out clusters lacking their field.
//! - No `maxGroups` means no upper bound (Karmada rejects such policies); a group constraint
//!   without a cluster constraint selects every cluster of the chosen groups (Karmada requires a
//!   cluster constraint alongside).
//! - Static weights ignore spread constraints for selection, as in Karmada.

use std::collections::BTreeMap;

use super::{Context, Strategy, Unschedulable, estimate};
use crate::api::{Cluster, SpreadConstraint};

/// What clusters are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupBy<'a> {
    Cluster,
    Region,
    Zone,
    Provider,
    Label(&'a str),
}

impl<'a> GroupBy<'a> {
    fn of(constraint: &'a SpreadConstraint) -> Option<Self> {
        if let Some(key) = constraint
            .spread_by_label
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            return Some(Self::Label(key));
        }
        match constraint.spread_by_field.as_deref().unwrap_or_default() {
            "" | "cluster" => Some(Self::Cluster),
            "region" => Some(Self::Region),
            "zone" => Some(Self::Zone),
            "provider" => Some(Self::Provider),
            _ => None,
        }
    }

    /// Lower ranks apply first.
    fn precedence(self) -> u8 {
        match self {
            Self::Cluster => 0,
            Self::Region => 1,
            Self::Zone => 2,
            Self::Provider => 3,
            Self::Label(_) => 4,
        }
    }

    fn key(self, cluster: &Cluster) -> Option<&str> {
        match self {
            Self::Cluster => Some(cluster.name()),
            Self::Region => cluster.region(),
            Self::Zone => cluster.zone(),
            Self::Provider => cluster.spec.provider.as_deref().filter(|p| !p.is_empty()),
            Self::Label(key) => cluster
                .metadata
                .labels
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty()),
        }
    }

    fn noun(self) -> String {
        match self {
            Self::Cluster => "clusters".to_owned(),
            Self::Region => "region".to_owned(),
            Self::Zone => "zone".to_owned(),
            Self::Provider => "provider".to_owned(),
            Self::Label(key) => format!("label {key} group"),
        }
    }
}

/// A spread constraint with Karmada's defaults applied (`minGroups` 1).
#[derive(Clone, Copy, Debug)]
struct Limits<'a> {
    by: GroupBy<'a>,
    min: usize,
    max: usize,
}

impl<'a> Limits<'a> {
    fn of(constraint: &'a SpreadConstraint) -> Option<Self> {
        let positive = |n: Option<i32>| n.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0);
        Some(Self {
            by: GroupBy::of(constraint)?,
            min: positive(constraint.min_groups).unwrap_or(1),
            max: positive(constraint.max_groups).unwrap_or(usize::MAX),
        })
    }
}

/// A feasible cluster, as spreading ranks it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    index: usize,
    score: i64,
    available: i64,
}

/// The selected clusters' indexes.
pub(super) fn select(
    context: &Context<'_>,
    feasible: Vec<usize>,
) -> Result<Vec<usize>, Unschedulable> {
    let constraints = &context.request.placement.spread_constraints;
    if constraints.is_empty() || matches!(context.strategy, Strategy::StaticWeight(_)) {
        return Ok(feasible);
    }
    let mut limits: Vec<Limits<'_>> = constraints.iter().filter_map(Limits::of).collect();
    limits.sort_by_key(|l| l.by.precedence());
    let Some(first) = limits.first().copied() else {
        return Ok(feasible);
    };
    let cluster_limits = limits.iter().find(|l| l.by == GroupBy::Cluster).copied();
    let candidates = rank(context, &feasible);
    match limits.iter().find(|l| l.by != GroupBy::Cluster) {
        Some(group) => by_group(context, candidates, *group, cluster_limits),
        None => by_cluster(context, candidates, first),
    }
}

/// Feasible clusters by score, then name, with their available replicas.
fn rank(context: &Context<'_>, feasible: &[usize]) -> Vec<Candidate> {
    let requirements = context.request.requirements;
    let mut candidates: Vec<Candidate> = feasible
        .iter()
        .map(|&index| Candidate {
            index,
            score: context.score(index),
            available: estimate::available_replicas(context.cluster(index), requirements)
                + i64::from(context.previous[index].unwrap_or(0).max(0)),
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| context.name(a.index).cmp(context.name(b.index)))
    });
    candidates
}

/// Replicas the selection must hold; `None` when duplicated (Karmada ignores capacity then).
fn needed_replicas(context: &Context<'_>) -> Option<i64> {
    let replicas = context.request.replicas;
    (context.strategy != Strategy::Duplicated && replicas > 0).then_some(i64::from(replicas))
}

fn by_cluster(
    context: &Context<'_>,
    candidates: Vec<Candidate>,
    limits: Limits<'_>,
) -> Result<Vec<usize>, Unschedulable> {
    if candidates.len() < limits.min {
        return Err(Unschedulable::select(
            "the number of feasible clusters is less than spreadConstraint.MinGroups",
        ));
    }
    let count = limits.max.min(candidates.len());
    let chosen = match needed_replicas(context) {
        None => candidates[..count].to_vec(),
        Some(needed) => fit_replicas(candidates, count, needed).ok_or_else(|| {
            Unschedulable::select(&format!(
                "no enough resource when selecting {count} clusters"
            ))
        })?,
    };
    Ok(chosen.iter().map(|c| c.index).collect())
}

/// Karmada's `selectClustersByAvailableResource`: from the last selected cluster backwards, swap
/// it for the unselected one with the most available replicas (if that has more), until the
/// selection holds `needed` replicas.
fn fit_replicas(mut ranked: Vec<Candidate>, count: usize, needed: i64) -> Option<Vec<Candidate>> {
    let holds = |chosen: &[Candidate]| chosen.iter().map(|c| c.available).sum::<i64>() >= needed;
    let mut slot = count;
    while slot > 0 && !holds(&ranked[..count]) {
        slot -= 1;
        let mut best: Option<usize> = None;
        let mut most = ranked[slot].available;
        for (rest, candidate) in ranked.iter().enumerate().skip(count) {
            if candidate.available > most {
                most = candidate.available;
                best = Some(rest);
            }
        }
        if let Some(rest) = best {
            ranked.swap(slot, rest);
        }
    }
    ranked.truncate(count);
    holds(&ranked).then_some(ranked)
}

/// Clusters of one group (region, zone, provider or label value).
struct Group<'a> {
    key: &'a str,
    /// The best score of its clusters.
    score: i64,
    available: i64,
    /// By score, then name.
    members: Vec<Candidate>,
}

fn by_group(
    context: &Context<'_>,
    candidates: Vec<Candidate>,
    limits: Limits<'_>,
    cluster_limits: Option<Limits<'_>>,
) -> Result<Vec<usize>, Unschedulable> {
    let groups = groups(context, candidates, limits.by);
    if groups.len() < limits.min {
        return Err(Unschedulable::select(&format!(
            "the number of feasible {} is less than spreadConstraint.MinGroups",
            limits.by.noun()
        )));
    }
    let target = cluster_limits.map_or(0, |c| c.min);
    let upper = limits.max.max(limits.min).min(groups.len());
    let chosen = (limits.min..=upper)
        .find(|&k| groups[..k].iter().map(|g| g.members.len()).sum::<usize>() >= target)
        .ok_or_else(|| {
            Unschedulable::select(
                "the number of clusters is less than the cluster spreadConstraint.MinGroups",
            )
        })?;
    let mut selected: Vec<Candidate> = groups[..chosen].iter().map(|g| g.members[0]).collect();
    let mut rest: Vec<Candidate> = groups[..chosen]
        .iter()
        .flat_map(|g| g.members[1..].iter().copied())
        .collect();
    rest.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.available.cmp(&a.available))
            .then_with(|| context.name(a.index).cmp(context.name(b.index)))
    });
    let total = selected.len() + rest.len();
    let wanted = cluster_limits.map_or(usize::MAX, |c| c.max).min(total);
    let extra = wanted.saturating_sub(selected.len());
    selected.extend(rest.into_iter().take(extra));
    Ok(selected.iter().map(|c| c.index).collect())
}

/// Candidates grouped by `by`, groups ranked best first.
fn groups<'a>(
    context: &Context<'a>,
    candidates: Vec<Candidate>,
    by: GroupBy<'_>,
) -> Vec<Group<'a>> {
    let mut by_key: BTreeMap<&'a str, Group<'a>> = BTreeMap::new();
    for candidate in candidates {
        let Some(key) = by.key(context.cluster(candidate.index)) else {
            continue;
        };
        let group = by_key.entry(key).or_insert_with(|| Group {
            key,
            score: candidate.score,
            available: 0,
            members: Vec::new(),
        });
        group.available += candidate.available;
        group.members.push(candidate);
    }
    let mut groups: Vec<Group<'a>> = by_key.into_values().collect();
    groups.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.members.len().cmp(&a.members.len()))
            .then(b.available.cmp(&a.available))
            .then(a.key.cmp(b.key))
    });
    groups
}
