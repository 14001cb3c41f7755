//! Spread constraints: which of the feasible clusters are selected, as Karmada's
//! `pkg/scheduler/core/spreadconstraint` selects them.
//!
//! Clusters are ranked by score (Karmada's score plugins: ClusterAffinity scores 0,
//! ClusterLocality 100 for clusters of the previous result, else 0), then available replicas,
//! then name. A cluster's available replicas include the replicas the previous result gave it.
//!
//! - **By cluster** (`spreadByField: cluster` alone): fewer feasible clusters than `minGroups`
//!   fails; otherwise the `min(maxGroups, feasible)` best-ranked clusters, where, unless the
//!   replicas are duplicated, lowest-ranked ones are swapped for the unselected cluster with the
//!   most available replicas until the selection can hold the replicas (else it fails).
//! - **By group** (`region`, and beyond Karmada `zone`, `provider` and `spreadByLabel`, which
//!   work the same way):
//!   1. fewer groups than `minGroups` fails;
//!   2. each group weighs its clusters (Karmada's `calcGroupScore`, 1.17 and 1.18): duplicated
//!      workloads weigh 1000 per cluster that can take all replicas, plus those clusters' mean
//!      score (0 when none can); divided ones aim for `ceil(replicas / minGroups)` replicas per
//!      group and take their best-ranked clusters until they hold at least that many replicas
//!      and at least `max(cluster minGroups, group minGroups)` clusters; they weigh 1000 per
//!      replica of the aim (of what they hold when they cannot reach it) plus the mean score of
//!      the clusters taken;
//!   3. the groups are chosen by Karmada's search (`selectGroups`): every combination of
//!      `minGroups` to `maxGroups` groups that together hold at least the cluster constraint's
//!      `minGroups` clusters, met without needless groups (groups are tried by cluster count,
//!      then weight, then name, and a combination stops growing once it qualifies), is a
//!      candidate; the heaviest candidate wins, then the one with more clusters, then the first
//!      found; a candidate that is the winner minus its lightest groups replaces it (fewer
//!      groups suffice); none fails with "the number of clusters is less than the cluster
//!      spreadConstraint.MinGroups";
//!   4. each chosen group's best-ranked cluster, then the other clusters of the chosen groups by
//!      score, available replicas and name, up to the cluster constraint's `maxGroups`.
//!
//!   Capacity only enters through the weights: as in Karmada, the chosen groups are not checked
//!   to hold the replicas (dividing them reports a shortfall).
//!
//! The search explores combinations depth-first like Karmada's, skipping branches that cannot
//! beat the best candidate found so far; in the worst case it is exponential in the number of
//! groups, as Karmada's is.
//!
//! Where Karmada is silent, stricter or reads a field differently, meshfleet chooses:
//! - Several group constraints: one applies, the first of region, zone, provider, label (Karmada
//!   applies region only); all of them still filter out clusters lacking their field.
//! - No `maxGroups` means no upper bound. (Karmada reads it as 0: one cluster per chosen group,
//!   and none at all for a cluster constraint alone, which it tracks as a bug.) A `maxGroups`
//!   below `minGroups` counts as `minGroups` (admission refuses it anyway); a group constraint
//!   without a cluster constraint selects every cluster of the chosen groups (admission
//!   requires one beside a `spreadByField`, as Karmada's does).
//! - Static weights ignore spread constraints for selection, as in Karmada.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Context, Strategy, Unschedulable, estimate};
use meshfleet_api::{Cluster, SpreadConstraint};

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

/// Best first: higher score, then more available replicas, then the smaller name (Karmada's
/// cluster order).
fn best_first(a: (i64, i64, &str), b: (i64, i64, &str)) -> Ordering {
    b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then_with(|| a.2.cmp(b.2))
}

/// Feasible clusters, best first, with their available replicas.
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
        best_first(
            (a.score, a.available, context.name(a.index)),
            (b.score, b.available, context.name(b.index)),
        )
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

fn by_group(
    context: &Context<'_>,
    candidates: Vec<Candidate>,
    limits: Limits<'_>,
    cluster_limits: Option<Limits<'_>>,
) -> Result<Vec<usize>, Unschedulable> {
    let weighing = Weighing::of(context, limits.min, cluster_limits.map(|c| c.min));
    let groups = groups(context, &candidates, limits.by, weighing);
    let bounds = Bounds {
        min: limits.min,
        max: limits.max,
    };
    let clusters = cluster_limits.map(|c| Bounds {
        min: c.min,
        max: c.max,
    });
    match pick(groups, bounds, clusters) {
        Ok(members) => Ok(members.iter().map(|m| m.index).collect()),
        Err(Shortfall::Groups) => Err(Unschedulable::select(&format!(
            "the number of feasible {} is less than spreadConstraint.MinGroups",
            limits.by.noun()
        ))),
        Err(Shortfall::Clusters) => Err(Unschedulable::select(
            "the number of clusters is less than the cluster spreadConstraint.MinGroups",
        )),
    }
}

/// Candidates grouped by `by` (groups by name, members best first), weighed.
fn groups<'a>(
    context: &Context<'a>,
    candidates: &[Candidate],
    by: GroupBy<'_>,
    weighing: Weighing,
) -> Vec<Group<'a>> {
    let mut by_key: BTreeMap<&'a str, Vec<Member<'a>>> = BTreeMap::new();
    for candidate in candidates {
        let Some(key) = by.key(context.cluster(candidate.index)) else {
            continue;
        };
        by_key.entry(key).or_default().push(Member {
            index: candidate.index,
            name: context.name(candidate.index),
            score: candidate.score,
            available: candidate.available,
        });
    }
    by_key
        .into_iter()
        .map(|(name, members)| Group {
            name,
            weight: group_weight(&members, weighing),
            members,
        })
        .collect()
}

/// A feasible cluster within a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Member<'a> {
    /// The cluster's index in the request (opaque to the selection).
    pub index: usize,
    pub name: &'a str,
    pub score: i64,
    pub available: i64,
}

impl Member<'_> {
    fn order(a: &Self, b: &Self) -> Ordering {
        best_first(
            (a.score, a.available, a.name),
            (b.score, b.available, b.name),
        )
    }
}

/// A group (region, zone, provider or label value) of feasible clusters.
#[derive(Clone, Debug)]
pub(super) struct Group<'a> {
    pub name: &'a str,
    /// Karmada's group score: see [`group_weight`].
    pub weight: i64,
    pub members: Vec<Member<'a>>,
}

/// A spread constraint's `minGroups` / `maxGroups`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    pub min: usize,
    pub max: usize,
}

/// Why no groups could be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shortfall {
    /// Fewer groups than the group constraint's `minGroups`.
    Groups,
    /// No combination of groups holds the cluster constraint's `minGroups` clusters.
    Clusters,
}

/// How group weights account for replicas (Karmada's `calcGroupScore`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Weighing {
    /// Every selected cluster runs all `replicas`.
    Duplicated { replicas: i64 },
    /// `replicas` are divided, over at least `min_groups` groups and at least `min_clusters`
    /// clusters (the cluster constraint's `minGroups`, never below `min_groups`).
    Divided {
        replicas: i64,
        min_groups: i64,
        min_clusters: i64,
    },
}

impl Weighing {
    fn of(context: &Context<'_>, min_groups: usize, min_clusters: Option<usize>) -> Self {
        let replicas = i64::from(context.request.replicas.max(0));
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        if context.strategy == Strategy::Duplicated {
            Self::Duplicated { replicas }
        } else {
            Self::Divided {
                replicas,
                min_groups: count(min_groups),
                min_clusters: count(min_clusters.unwrap_or(0).max(min_groups)),
            }
        }
    }
}

/// Keeps the replica term ahead of the (0–100) score term in a group weight.
const REPLICA_UNIT: i64 = 1000;

/// A group's weight from its members (best first), as Karmada's `calcGroupScore` computes it
/// (`pkg/scheduler/core/spreadconstraint/group_clusters.go`, 1.17 and 1.18):
/// - duplicated: 1000 per member that can take all replicas, plus those members' mean score
///   (integer division); 0 when no member can;
/// - divided: the group aims at `ceil(replicas / min_groups)` replicas; members are taken best
///   first until they hold the aim and number at least `min_clusters`. Aim held: 1000 × aim;
///   not held (every member taken): 1000 × the members' available replicas; plus, either way,
///   the taken members' mean score.
pub(super) fn group_weight(members: &[Member<'_>], weighing: Weighing) -> i64 {
    let mean = |sum: i64, count: usize| match i64::try_from(count) {
        Ok(count) if count > 0 => sum / count,
        _ => 0,
    };
    match weighing {
        Weighing::Duplicated { replicas } => {
            let able: Vec<&Member<'_>> =
                members.iter().filter(|m| m.available >= replicas).collect();
            let scores = able.iter().map(|m| m.score).sum();
            let count = i64::try_from(able.len()).unwrap_or(i64::MAX);
            count
                .saturating_mul(REPLICA_UNIT)
                .saturating_add(mean(scores, able.len()))
        }
        Weighing::Divided {
            replicas,
            min_groups,
            min_clusters,
        } => {
            let min_groups = min_groups.max(1);
            let aim = replicas / min_groups + i64::from(replicas % min_groups != 0);
            let (mut available, mut scores, mut taken) = (0_i64, 0_i64, 0_usize);
            for member in members {
                available = available.saturating_add(member.available);
                scores += member.score;
                taken += 1;
                if i64::try_from(taken).unwrap_or(i64::MAX) >= min_clusters && available >= aim {
                    break;
                }
            }
            aim.min(available)
                .saturating_mul(REPLICA_UNIT)
                .saturating_add(mean(scores, taken))
        }
    }
}

/// The clusters spreading by group selects (Karmada's `selectBestClustersByRegion`): the groups
/// [`search`] chooses, holding at least the cluster constraint's `minGroups` clusters; each
/// one's best member, then the other members of the chosen groups best first, up to the cluster
/// constraint's `maxGroups` (without a cluster constraint: all of them). Members come out in
/// that order.
pub(super) fn pick<'a>(
    mut groups: Vec<Group<'a>>,
    bounds: Bounds,
    clusters: Option<Bounds>,
) -> Result<Vec<Member<'a>>, Shortfall> {
    groups.retain(|g| !g.members.is_empty());
    if groups.len() < bounds.min {
        return Err(Shortfall::Groups);
    }
    for group in &mut groups {
        group.members.sort_by(Member::order);
    }
    let choices: Vec<Choice<'_>> = groups
        .iter()
        .map(|g| Choice {
            name: g.name,
            value: i64::try_from(g.members.len()).unwrap_or(i64::MAX),
            weight: g.weight,
        })
        .collect();
    let target = clusters.map_or(0, |c| i64::try_from(c.min).unwrap_or(i64::MAX));
    let chosen = search(&choices, bounds.min, bounds.max.max(bounds.min), target)
        .ok_or(Shortfall::Clusters)?;
    let mut selected: Vec<Member<'a>> = Vec::new();
    let mut rest: Vec<Member<'a>> = Vec::new();
    for &g in &chosen {
        let members = &groups[g].members;
        selected.push(members[0]);
        rest.extend_from_slice(&members[1..]);
    }
    rest.sort_by(Member::order);
    let wanted = clusters
        .map_or(usize::MAX, |c| c.max)
        .min(selected.len() + rest.len());
    let extra = wanted.saturating_sub(selected.len());
    selected.extend(rest.into_iter().take(extra));
    Ok(selected)
}

/// A group as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Choice<'a> {
    pub name: &'a str,
    /// What counts towards the target (for groups: their number of clusters); not negative.
    pub value: i64,
    /// What ranks combinations (for groups: their weight).
    pub weight: i64,
}

/// Karmada's `selectGroups`: the indexes (into `choices`) of the best combination of `min` to
/// `max` choices whose values add up to `target`, heaviest first (then by name); `None` when no
/// combination qualifies.
///
/// Choices are tried by value (smallest first), then weight (heaviest first), then name, and
/// combinations grow depth-first in that order, each stopping as soon as it qualifies. Among the
/// qualifying ones the heaviest wins, then the one with the greater value, then the first found.
/// Then, going down that same ranking, a combination that is the current winner without its
/// lightest choices (ordered by weight, then name) takes its place.
pub(super) fn search(
    choices: &[Choice<'_>],
    min: usize,
    max: usize,
    target: i64,
) -> Option<Vec<usize>> {
    if choices.is_empty() || max < min {
        return None;
    }
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&choices[a], &choices[b]);
        a.value
            .cmp(&b.value)
            .then(b.weight.cmp(&a.weight))
            .then_with(|| a.name.cmp(b.name))
    });
    let tried: Vec<Choice<'_>> = order.iter().map(|&i| choices[i]).collect();
    let mut walk = Walk::new(&tried, min, max, target);
    walk.descend(0, 0, 0);
    let best = walk.best.take()?;

    // The winner, heaviest first; its qualifying leading parts, in ranking order, replace it
    // whenever shorter than the current pick.
    let mut heavy = best.positions.clone();
    heavy.sort_by(|&a, &b| {
        tried[b]
            .weight
            .cmp(&tried[a].weight)
            .then_with(|| tried[a].name.cmp(tried[b].name))
    });
    let mut leading: Vec<Found> = (1..heavy.len())
        .filter_map(|len| walk.qualifies(&heavy[..len]))
        .collect();
    leading.sort_by(|a, b| a.rank(b));
    let mut length = heavy.len();
    for part in leading {
        if part.positions.len() < length {
            length = part.positions.len();
        }
    }
    Some(heavy[..length].iter().map(|&p| order[p]).collect())
}

/// A qualifying combination: positions in the search order, ascending.
#[derive(Clone, Debug)]
struct Found {
    positions: Vec<usize>,
    weight: i64,
    value: i64,
}

impl Found {
    /// Karmada's path ranking: heavier, then greater value, then found earlier (depth-first
    /// order is the lexicographic order of the ascending positions).
    fn rank(&self, other: &Self) -> Ordering {
        other
            .weight
            .cmp(&self.weight)
            .then(other.value.cmp(&self.value))
            .then_with(|| self.positions.cmp(&other.positions))
    }
}

/// The depth-first search over combinations, keeping the best qualifying one.
struct Walk<'c, 'a> {
    tried: &'c [Choice<'a>],
    min: usize,
    max: usize,
    target: i64,
    path: Vec<usize>,
    best: Option<Found>,
    /// `heaviest[from][k]`: the most weight `k` choices from position `from` on can add.
    heaviest: Vec<Vec<i64>>,
    /// `values[k]`: the sum of the `k` smallest values (values ascend in search order).
    values: Vec<i64>,
}

impl<'c, 'a> Walk<'c, 'a> {
    fn new(tried: &'c [Choice<'a>], min: usize, max: usize, target: i64) -> Self {
        let heaviest = (0..=tried.len())
            .map(|from| {
                let mut weights: Vec<i64> = tried[from..].iter().map(|c| c.weight.max(0)).collect();
                weights.sort_unstable_by(|a, b| b.cmp(a));
                let mut sums = Vec::with_capacity(weights.len() + 1);
                let mut sum = 0_i64;
                sums.push(0);
                for weight in weights {
                    sum = sum.saturating_add(weight);
                    sums.push(sum);
                }
                sums
            })
            .collect();
        let mut values = Vec::with_capacity(tried.len() + 1);
        let mut sum = 0_i64;
        values.push(0);
        for choice in tried {
            sum = sum.saturating_add(choice.value.max(0));
            values.push(sum);
        }
        Self {
            tried,
            min,
            max,
            target,
            path: Vec::new(),
            best: None,
            heaviest,
            values,
        }
    }

    fn qualifies_here(&self, length: usize, value: i64) -> bool {
        value >= self.target && length >= self.min && length <= self.max
    }

    /// The most value `count` choices from position `from` on can add: the largest values.
    fn most_value(&self, from: usize, count: usize) -> i64 {
        let n = self.tried.len();
        let count = count.min(n - from);
        self.values[n] - self.values[n - count]
    }

    fn descend(&mut self, from: usize, value: i64, weight: i64) {
        let length = self.path.len();
        if self.qualifies_here(length, value) {
            let better = self
                .best
                .as_ref()
                .is_none_or(|b| (weight, value) > (b.weight, b.value));
            if better {
                self.best = Some(Found {
                    positions: self.path.clone(),
                    weight,
                    value,
                });
            }
            return;
        }
        if length >= self.max || from >= self.tried.len() {
            return;
        }
        let n = self.tried.len();
        let room = self.max - length;
        // Nothing below can qualify.
        if length + (n - from) < self.min
            || value.saturating_add(self.most_value(from, room)) < self.target
        {
            return;
        }
        // Nothing below can beat the best so far (ties lose to it: it was found first).
        if let Some(best) = &self.best {
            let (short, long) = self.rooms(from, length, value);
            let added = short.max(long).min(room).min(n - from);
            let weight_bound = weight.saturating_add(self.heaviest[from][added]);
            let long_value = value
                .saturating_add(self.most_value(from, long))
                .min((self.target - 1).saturating_add(self.largest_value()));
            let value_bound = value
                .saturating_add(self.most_value(from, short))
                .max(if long > 0 { long_value } else { i64::MIN });
            if (weight_bound, value_bound) <= (best.weight, best.value) {
                return;
            }
        }
        for next in from..n {
            let choice = self.tried[next];
            self.path.push(next);
            self.descend(
                next + 1,
                value.saturating_add(choice.value),
                weight.saturating_add(choice.weight),
            );
            self.path.pop();
        }
    }

    /// How many more choices a qualifying extension of the current combination (of `length`
    /// choices worth `value`, continuing from position `from`) can add: `(short, long)`, for
    /// extensions ending with at most `min` choices, and for longer ones. A longer one stops as
    /// soon as it qualifies, so all but its last choice stay under the target, and the smallest
    /// values (the next ones in search order) are the most that fit.
    fn rooms(&self, from: usize, length: usize, value: i64) -> (usize, usize) {
        let n = self.tried.len();
        let short = self.min.saturating_sub(length).min(n - from);
        let long = if value < self.target {
            let base = self.values[from];
            let fits = self.values[from..n]
                .partition_point(|&sum| value.saturating_add(sum - base) < self.target);
            fits.min(self.max - length)
        } else {
            0
        };
        (short, long)
    }

    fn largest_value(&self) -> i64 {
        self.tried.last().map_or(0, |c| c.value)
    }

    /// `positions` (any order) as a combination the search records: qualifying, and not
    /// qualifying before its last choice (in search order) was added.
    fn qualifies(&self, positions: &[usize]) -> Option<Found> {
        let mut positions = positions.to_vec();
        positions.sort_unstable();
        let value: i64 = positions.iter().map(|&p| self.tried[p].value).sum();
        let weight: i64 = positions.iter().map(|&p| self.tried[p].weight).sum();
        let length = positions.len();
        if !self.qualifies_here(length, value) {
            return None;
        }
        let last = self.tried[*positions.last()?].value;
        if length > self.min && value - last >= self.target {
            return None;
        }
        Some(Found {
            positions,
            weight,
            value,
        })
    }
}
