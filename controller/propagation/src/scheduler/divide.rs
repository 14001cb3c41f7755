//! Replicas: how many each selected cluster runs, as Karmada's `pkg/scheduler/core`
//! (`assignment.go`, `division_algorithm.go`) and `pkg/util/helper/webstermethod.go` divide them.
//!
//! - Not a workload (0 replicas): every selected cluster, 0 replicas.
//! - **Duplicated**: every selected cluster runs all replicas.
//! - **Static weights**: a cluster's weight is the largest weight among the `staticWeightList`
//!   entries that select it; clusters weighing 0 get nothing; when no cluster weighs anything,
//!   all weigh 1. Replicas are apportioned by the Webster (Sainte-Laguë) method, from scratch each
//!   time: Webster is house-monotone, so scaling up never takes a replica from a cluster.
//! - **Dynamic weights** and **Aggregated** start from the previous result (its clusters still
//!   selected, with replicas):
//!   - same total: the previous result stands;
//!   - scale down: the new total is apportioned by the previous replicas (proportional);
//!   - scale up (and first scheduling): only the extra replicas are apportioned, by each
//!     cluster's available replicas, and added to the previous result;
//!   - Aggregated first keeps the fewest clusters whose available replicas cover the replicas
//!     (previous clusters first, then most available), then apportions among them;
//!   - a rebalance ([`super::Request::fresh`], Karmada's `dynamicFreshScale`) apportions all
//!     replicas afresh, by each cluster's available replicas plus what the previous result gave
//!     it, as a first scheduling would (Aggregated prefers no cluster for being previous);
//!   - fewer available replicas than needed fails: `Unschedulable`.
//!
//! Webster hands out one replica at a time to the cluster with the highest `weight / (2 ×
//! replicas + 1)`; on equal priority the cluster with fewer replicas wins, then the smaller
//! name (Karmada's default tie-breaker).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Context, Strategy, Unschedulable, estimate};
use crate::selector::cluster_matches;
use meshfleet_api::StaticClusterWeight;

/// `(cluster index, replicas)` for the selected clusters; for divided strategies, only clusters
/// with replicas.
pub(super) fn assign(
    context: &Context<'_>,
    selected: &[usize],
) -> Result<Vec<(usize, i32)>, Unschedulable> {
    if selected.is_empty() {
        return Err(Unschedulable::new(
            "SchedulerError",
            "no clusters available to schedule".to_owned(),
        ));
    }
    let replicas = context.request.replicas;
    if replicas <= 0 {
        return Ok(selected.iter().map(|&index| (index, 0)).collect());
    }
    let assigned = match context.strategy {
        Strategy::Duplicated => return Ok(selected.iter().map(|&i| (i, replicas)).collect()),
        Strategy::StaticWeight(list) => static_weights(context, selected, list),
        Strategy::DynamicWeight => dynamic(context, selected, false)?,
        Strategy::Aggregated => dynamic(context, selected, true)?,
    };
    Ok(assigned
        .into_iter()
        .filter(|(_, replicas)| *replicas > 0)
        .map(|(index, replicas)| (index, i32::try_from(replicas).unwrap_or(i32::MAX)))
        .collect())
}

fn static_weights(
    context: &Context<'_>,
    selected: &[usize],
    list: &[StaticClusterWeight],
) -> Vec<(usize, i64)> {
    let mut weights: Vec<(usize, i64)> = selected
        .iter()
        .map(|&index| {
            let cluster = context.cluster(index);
            let weight = list
                .iter()
                .filter(|w| cluster_matches(&w.target_cluster, cluster))
                .map(|w| w.weight)
                .max()
                .unwrap_or(0);
            (index, weight)
        })
        .filter(|(_, weight)| *weight > 0)
        .collect();
    if weights.is_empty() {
        weights = selected.iter().map(|&index| (index, 1)).collect();
    }
    webster(context, i64::from(context.request.replicas), &weights)
}

fn dynamic(
    context: &Context<'_>,
    selected: &[usize],
    aggregated: bool,
) -> Result<Vec<(usize, i64)>, Unschedulable> {
    let scheduled: Vec<(usize, i64)> = selected
        .iter()
        .filter_map(|&i| {
            context.previous[i]
                .filter(|r| *r > 0)
                .map(|r| (i, i64::from(r)))
        })
        .collect();
    let assigned: i64 = scheduled.iter().map(|(_, r)| r).sum();
    let replicas = i64::from(context.request.replicas);
    let by_most = |pool: &mut Vec<(usize, i64)>| {
        pool.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| context.name(a.0).cmp(context.name(b.0)))
        });
    };
    let available_now =
        |i: usize| estimate::available_replicas(context.cluster(i), context.request.requirements);
    let (mut pool, target, base) = match assigned.cmp(&replicas) {
        _ if context.request.fresh => {
            let mut pool: Vec<(usize, i64)> = selected
                .iter()
                .map(|&i| {
                    let kept = scheduled
                        .iter()
                        .find(|(s, _)| *s == i)
                        .map_or(0, |(_, r)| *r);
                    (i, available_now(i) + kept)
                })
                .collect();
            by_most(&mut pool);
            (pool, replicas, Vec::new())
        }
        Ordering::Equal => return Ok(scheduled),
        Ordering::Greater => {
            let mut pool = scheduled;
            by_most(&mut pool);
            (pool, replicas, Vec::new())
        }
        Ordering::Less => {
            let mut pool: Vec<(usize, i64)> =
                selected.iter().map(|&i| (i, available_now(i))).collect();
            by_most(&mut pool);
            (pool, replicas - assigned, scheduled)
        }
    };
    let available: i64 = pool.iter().map(|(_, a)| a).sum();
    if available < target {
        return Err(Unschedulable::new(
            "Unschedulable",
            format!(
                "failed to assign replicas: Clusters available replicas {available} are not enough to schedule."
            ),
        ));
    }
    if aggregated {
        pool = fewest(pool, &base, target);
    }
    Ok(merge(base, webster(context, target, &pool)))
}

/// Karmada's Aggregated cut: previous clusters first, then the shortest prefix covering `target`.
fn fewest(pool: Vec<(usize, i64)>, previous: &[(usize, i64)], target: i64) -> Vec<(usize, i64)> {
    let was = |index: usize| previous.iter().any(|(i, _)| *i == index);
    let (mut ordered, others): (Vec<_>, Vec<_>) = pool.into_iter().partition(|(i, _)| was(*i));
    ordered.extend(others);
    let mut sum = 0;
    let keep = ordered
        .iter()
        .position(|(_, available)| {
            sum += available;
            sum >= target
        })
        .map_or(ordered.len(), |last| last + 1);
    ordered.truncate(keep);
    ordered
}

/// `base` plus `extra`, by cluster.
fn merge(mut base: Vec<(usize, i64)>, extra: Vec<(usize, i64)>) -> Vec<(usize, i64)> {
    for (index, replicas) in extra {
        match base.iter_mut().find(|(i, _)| *i == index) {
            Some(entry) => entry.1 += replicas,
            None => base.push((index, replicas)),
        }
    }
    base
}

/// One cluster in a Webster apportionment.
#[derive(Debug, PartialEq, Eq)]
struct Party<'a> {
    /// Position in the caller's list.
    slot: usize,
    name: &'a str,
    votes: i64,
    seats: i64,
}

impl Ord for Party<'_> {
    /// Greater = gets the next seat: higher `votes / (2 × seats + 1)` (compared without
    /// division), then fewer seats, then the smaller name.
    fn cmp(&self, other: &Self) -> Ordering {
        let mine = i128::from(self.votes) * i128::from(2 * other.seats + 1);
        let theirs = i128::from(other.votes) * i128::from(2 * self.seats + 1);
        mine.cmp(&theirs)
            .then(other.seats.cmp(&self.seats))
            .then_with(|| other.name.cmp(self.name))
    }
}

impl PartialOrd for Party<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Gives every party the seats it would hold once every seat of priority above `V / D` is
/// handed out (`V` the votes, `D = 2 × (seats − parties)`): a state the one-at-a-time run passes
/// through, whatever the tie-breaking, since it hands out seats in order of priority. It holds
/// at most `D / 2 + parties / 2 ≤ seats` seats, so at most about `parties` are left to hand out
/// one at a time. Returns how many seats were given.
fn head_start(seats: i64, parties: &mut [Party<'_>]) -> i64 {
    let n = i64::try_from(parties.len()).unwrap_or(i64::MAX);
    let total: u128 = parties
        .iter()
        .map(|p| u128::try_from(p.votes.max(0)).unwrap_or(0))
        .sum();
    if seats <= 2 * n || total == 0 {
        return 0;
    }
    let d = u128::try_from(2 * (seats - n)).unwrap_or(0);
    let mut given = 0;
    for party in parties.iter_mut() {
        let votes = u128::try_from(party.votes.max(0)).unwrap_or(0);
        // Seats k (0-based) with votes / (2k + 1) > total / d, i.e. (2k + 1) × total < votes × d.
        let m = votes * d;
        let odd = if m == 0 { 0 } else { (m - 1) / total };
        let count = if odd >= 1 { (odd - 1) / 2 + 1 } else { 0 };
        party.seats = i64::try_from(count).unwrap_or(i64::MAX);
        given += party.seats;
    }
    given
}

/// `seats` apportioned over `(cluster index, votes)` by the Webster method.
fn webster(context: &Context<'_>, seats: i64, votes: &[(usize, i64)]) -> Vec<(usize, i64)> {
    let shares = apportion(seats, votes.iter().map(|&(i, v)| (context.name(i), v)));
    votes
        .iter()
        .zip(shares)
        .map(|(&(i, _), s)| (i, s))
        .collect()
}

/// Seats per party, in the order given, by the Webster method with Karmada's tie-breaking.
///
/// Seats are handed out one at a time, to the party of highest priority `votes / (2 × seats +
/// 1)`. For many seats the run is started part-way ([`head_start`]), so the time depends on the
/// number of parties, not of seats.
pub fn apportion<'a>(seats: i64, parties: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<i64> {
    let mut parties: Vec<Party<'a>> = parties
        .into_iter()
        .enumerate()
        .map(|(slot, (name, votes))| Party {
            slot,
            name,
            votes,
            seats: 0,
        })
        .collect();
    let mut result = vec![0; parties.len()];
    if parties.is_empty() {
        return result;
    }
    let given = head_start(seats, &mut parties);
    let mut heap = BinaryHeap::from(parties);
    for _ in given..seats {
        if let Some(mut top) = heap.peek_mut() {
            top.seats += 1;
        }
    }
    for party in heap {
        result[party.slot] = party.seats;
    }
    result
}
