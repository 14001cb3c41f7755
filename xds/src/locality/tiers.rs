//! meshfleet's locality tiers (`meshfleet.io/locality-weights`, e.g. `local=99,remote=1`).
//!
//! 1. Each locality is placed in a tier by its closeness to the client, as Istio's locality
//!    match ranks it: `subzone` (same region, zone and subzone), `zone` (same region and zone),
//!    `region` (same region), `remote` (anything else). A locality goes to the **most specific
//!    named tier it matches**: with `zone=99,remote=1`, a locality in the client's subzone is in
//!    `zone`. `remote` catches everything else; when it is not named it counts as `remote=0`.
//! 2. A named tier without endpoints gives its weight to the nearest tier that has some
//!    (nearest by tier distance; on a tie, the more local one).
//! 3. A tier's weight is split over its localities in proportion to their endpoint weights.
//!    Weights are scaled so that priority 0 sums to about [`SCALE`] (one millionth of the
//!    traffic is the precision) and rounded, but never below 1.
//! 4. Localities in tiers whose weight is still 0 go to priority [`FAILOVER_PRIORITY`]: Envoy
//!    sends them traffic only when priority 0 is unhealthy. They keep their endpoint weights as
//!    locality weights.

use envoy_types::pb::envoy::config::endpoint::v3::LocalityLbEndpoints;

use super::{LocalityGroup, endpoint_weight_sum, to_proto, weight};
use crate::model::{Locality, TierWeights};

/// What the locality weights of priority 0 add up to (before rounding).
const SCALE: u128 = 1_000_000;
/// Priority of localities in tiers of weight 0: failover only.
const FAILOVER_PRIORITY: u32 = 1;
/// Tiers, most specific first: subzone, zone, region, remote.
const TIERS: usize = 4;
const REMOTE: usize = TIERS - 1;

/// Locality weights and priorities for `groups` seen from `client` (see the module docs).
pub(super) fn assign(
    weights: &TierWeights,
    groups: Vec<LocalityGroup<'_>>,
    client: &Locality,
) -> Vec<LocalityLbEndpoints> {
    let named = named(weights);
    let placed: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let tier = tier_of(closeness(client, g.locality), &named);
            (tier, endpoint_weight_sum(&g.endpoints), g)
        })
        .collect();
    let mut totals = [0u64; TIERS];
    for (tier, group_weight, _) in &placed {
        totals[*tier] += u64::from(*group_weight);
    }
    let effective = effective(&named, &totals);
    let sum: u64 = effective.iter().sum();
    placed
        .into_iter()
        .map(|(tier, group_weight, group)| {
            let (value, priority) = match effective[tier] {
                0 if sum > 0 => (group_weight, FAILOVER_PRIORITY),
                0 => (group_weight, 0),
                w => (share(w, sum, group_weight, totals[tier]), 0),
            };
            LocalityLbEndpoints {
                locality: Some(to_proto(group.locality)),
                lb_endpoints: group.endpoints,
                load_balancing_weight: weight(value.max(1)),
                priority,
                ..Default::default()
            }
        })
        .collect()
}

/// Tier weights, most specific first; `None` = not named. `remote` is always named.
fn named(w: &TierWeights) -> [Option<u32>; TIERS] {
    [w.subzone, w.zone, w.region, Some(w.remote.unwrap_or(0))]
}

/// 0 = same subzone, 1 = same zone, 2 = same region, 3 = other (Istio's `util.LbPriority`).
fn closeness(client: &Locality, endpoint: &Locality) -> usize {
    if client.region != endpoint.region {
        3
    } else if client.zone != endpoint.zone {
        2
    } else if client.subzone != endpoint.subzone {
        1
    } else {
        0
    }
}

/// The most specific named tier that a locality at `closeness` matches.
fn tier_of(closeness: usize, named: &[Option<u32>; TIERS]) -> usize {
    (closeness..TIERS)
        .find(|&t| named[t].is_some())
        .unwrap_or(REMOTE)
}

/// Tier weights after each tier without endpoints gave its weight to the nearest tier with
/// endpoints (ties: the more local one).
fn effective(named: &[Option<u32>; TIERS], totals: &[u64; TIERS]) -> [u64; TIERS] {
    let mut effective = [0u64; TIERS];
    for (tier, w) in named.iter().enumerate() {
        let w = u64::from(w.unwrap_or(0));
        let receiver = (0..TIERS)
            .filter(|&t| totals[t] > 0)
            .min_by_key(|&t| (t.abs_diff(tier), t));
        if let Some(t) = receiver {
            effective[t] += w;
        }
    }
    effective
}

/// `SCALE * tier / sum * group / total`, rounded half up, at least 1.
fn share(tier: u64, sum: u64, group: u32, total: u64) -> u32 {
    let numerator = SCALE * u128::from(tier) * u128::from(group);
    let denominator = u128::from(sum) * u128::from(total);
    if denominator == 0 {
        return 1;
    }
    let rounded = (2 * numerator + denominator) / (2 * denominator);
    u32::try_from(rounded).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{Row, group, row, rows, weighted};
    use super::*;

    fn tiers(a: Option<u32>, b: Option<u32>, c: Option<u32>, d: Option<u32>) -> TierWeights {
        TierWeights::new(a, b, c, d)
    }

    fn run(weights: TierWeights, client: &str, groups: Vec<LocalityGroup<'static>>) -> Vec<Row> {
        rows(&assign(&weights, groups, &Locality::parse(client)))
    }

    #[test]
    fn default_is_99_local_1_remote_across_two_zones() {
        let out = run(
            TierWeights::default(),
            "us-east/us-east-1a",
            vec![
                group("us-east/us-east-1a", &["10.0.0.1", "10.0.0.2"]),
                group("us-west/us-west-2a", &["10.1.0.1", "10.1.0.2"]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("us-east/us-east-1a", 990_000, 0, &["10.0.0.1", "10.0.0.2"]),
                row("us-west/us-west-2a", 10_000, 0, &["10.1.0.1", "10.1.0.2"]),
            ]
        );
    }

    #[test]
    fn all_four_tiers_split_by_endpoint_weight() {
        let out = run(
            tiers(Some(80), Some(15), Some(4), Some(1)),
            "r1/z1/s1",
            vec![
                group("r1/z1/s1", &["1.0.0.1"]),
                group("r1/z1/s2", &["1.0.0.2"]),
                weighted("r1/z2/s1", &[("1.0.0.3", 1)]),
                weighted("r1/z3/s1", &[("1.0.0.4", 2)]),
                group("r2/z1/s1", &["2.0.0.1"]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("r1/z1/s1", 800_000, 0, &["1.0.0.1"]),
                row("r1/z1/s2", 150_000, 0, &["1.0.0.2"]),
                // region's 4% split 1:2 over two zones.
                row("r1/z2/s1", 13_333, 0, &["1.0.0.3"]),
                row("r1/z3/s1", 26_667, 0, &["1.0.0.4"]),
                row("r2/z1/s1", 10_000, 0, &["2.0.0.1"]),
            ]
        );
    }

    #[test]
    fn locality_joins_the_most_specific_named_tier() {
        // No subzone or zone tier: the client's own zone is in `region`.
        let out = run(
            tiers(None, None, Some(90), Some(10)),
            "r1/z1/s1",
            vec![
                group("r1/z1/s1", &["1.0.0.1"]),
                group("r1/z2/s1", &["1.0.0.2"]),
                group("r2/z1/s1", &["2.0.0.1"]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("r1/z1/s1", 450_000, 0, &["1.0.0.1"]),
                row("r1/z2/s1", 450_000, 0, &["1.0.0.2"]),
                row("r2/z1/s1", 100_000, 0, &["2.0.0.1"]),
            ]
        );
    }

    #[test]
    fn empty_local_tier_gives_its_share_to_remote() {
        let out = run(
            TierWeights::default(),
            "us-east/us-east-1a",
            vec![
                group("us-west/us-west-2a", &["10.1.0.1"]),
                group("eu/eu-1a", &["10.2.0.1"]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("us-west/us-west-2a", 500_000, 0, &["10.1.0.1"]),
                row("eu/eu-1a", 500_000, 0, &["10.2.0.1"]),
            ]
        );
    }

    #[test]
    fn empty_tier_goes_to_the_nearest_tier_and_ties_go_local() {
        // subzone (80) is empty: nearest with endpoints is zone. region (4) is empty: zone and
        // remote are both one tier away, the more local one (zone) wins.
        let out = run(
            tiers(Some(80), Some(15), Some(4), Some(1)),
            "r1/z1/s1",
            vec![
                group("r1/z1/s2", &["1.0.0.2"]),
                group("r2/z1/s1", &["2.0.0.1"]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("r1/z1/s2", 990_000, 0, &["1.0.0.2"]),
                row("r2/z1/s1", 10_000, 0, &["2.0.0.1"])
            ]
        );
    }

    #[test]
    fn weight_zero_tier_is_failover_only() {
        for remote in [Some(0), None] {
            let out = run(
                tiers(None, Some(100), None, remote),
                "r1/z1",
                vec![
                    group("r1/z1", &["1.0.0.1"]),
                    weighted("r2/z1", &[("2.0.0.1", 3)]),
                    weighted("r3/z1", &[("3.0.0.1", 1)]),
                ],
            );
            assert_eq!(
                out,
                vec![
                    row("r1/z1", 1_000_000, 0, &["1.0.0.1"]),
                    row("r2/z1", 3, 1, &["2.0.0.1"]),
                    row("r3/z1", 1, 1, &["3.0.0.1"]),
                ],
                "remote = {remote:?}"
            );
        }
    }

    #[test]
    fn failover_tier_takes_over_when_the_weighted_tier_is_empty() {
        let out = run(
            tiers(None, Some(100), None, None),
            "r1/z1",
            vec![group("r2/z1", &["2.0.0.1"])],
        );
        assert_eq!(out, vec![row("r2/z1", 1_000_000, 0, &["2.0.0.1"])]);
    }

    #[test]
    fn tiny_share_is_never_zero() {
        let out = run(
            TierWeights::default(),
            "r1/z1",
            vec![
                group("r1/z1", &["1.0.0.1"]),
                weighted("r2/z1", &[("2.0.0.1", 1)]),
                weighted("r3/z1", &[("3.0.0.1", 4_000_000)]),
            ],
        );
        assert_eq!(
            out,
            vec![
                row("r1/z1", 990_000, 0, &["1.0.0.1"]),
                row("r2/z1", 1, 0, &["2.0.0.1"]),
                row("r3/z1", 10_000, 0, &["3.0.0.1"]),
            ]
        );
    }

    #[test]
    fn all_zero_weights_keep_everything_in_priority_0() {
        let out = run(
            tiers(None, Some(0), None, Some(0)),
            "r1/z1",
            vec![group("r1/z1", &["1.0.0.1"]), group("r2/z1", &["2.0.0.1"])],
        );
        assert_eq!(
            out,
            vec![
                row("r1/z1", 1, 0, &["1.0.0.1"]),
                row("r2/z1", 1, 0, &["2.0.0.1"])
            ]
        );
    }
}
