//! Replica division: Duplicated, static weights (Webster), dynamic weights, Aggregated, scaling.

use super::*;
use crate::scheduler::divide::apportion;
use crate::scheduler::estimate::available_replicas;
use meshfleet_api::fixtures::cluster;

#[test]
fn duplicated_by_default_and_zero_replicas_for_non_workloads() {
    let clusters = plain(&["a", "b", "c"]);
    assert_eq!(
        Case::new(placement(), 2, clusters.clone()).run(),
        decided(&[("a", 2), ("b", 2), ("c", 2)])
    );
    // A ConfigMap (0 replicas) goes everywhere selected, even with a divided policy.
    assert_eq!(
        Case::new(placement().static_weights(&[(&["a"], 1)]), 0, clusters).run(),
        decided(&[("a", 0), ("b", 0), ("c", 0)])
    );
}

#[test]
fn webster_apportionment_as_karmada_tests_it() {
    // Karmada's ExampleAllocateWebsterSeats and the Wikipedia Sainte-Laguë example.
    type Apportionment<'a> = (i64, Vec<(&'a str, i64)>, Vec<i64>);
    let cases: Vec<Apportionment<'_>> = vec![
        (
            4,
            vec![("Alpha", 1200), ("Beta", 900), ("Gamma", 400)],
            vec![2, 1, 1],
        ),
        (
            8,
            vec![("A", 100_000), ("B", 80_000), ("C", 30_000), ("D", 20_000)],
            vec![3, 3, 1, 1],
        ),
        (
            5,
            vec![("A", 100_000), ("B", 80_000), ("C", 30_000), ("D", 20_000)],
            vec![2, 2, 1, 0],
        ),
        // Equal priority: fewer seats first, then the smaller name.
        (1, vec![("PartyB", 1), ("PartyA", 1)], vec![0, 1]),
        (0, vec![("A", 1)], vec![0]),
        (3, vec![], vec![]),
    ];
    for (seats, parties, want) in cases {
        assert_eq!(
            apportion(seats, parties.clone()),
            want,
            "{seats} over {parties:?}"
        );
    }
}

#[test]
fn static_weights_karmada_docs_examples() {
    let clusters = plain(&["member1", "member2", "member3"]);
    type WeightRow<'a> = (&'a str, PlacementFixture, i32, Vec<(&'a str, i32)>);
    let cases: Vec<WeightRow<'_>> = vec![
        (
            // "Divide replicas by weight": member1:member2 = 1:2, 3 replicas.
            "1:2 of 3",
            placement()
                .names(&["member1", "member2"])
                .static_weights(&[(&["member1"], 1), (&["member2"], 2)]),
            3,
            vec![("member1", 1), ("member2", 2)],
        ),
        (
            // Karmada issue #6424: largest remainder gave 2:0; Webster gives 1:1.
            "2:1 of 2",
            placement()
                .names(&["member1", "member2"])
                .static_weights(&[(&["member1"], 2), (&["member2"], 1)]),
            2,
            vec![("member1", 1), ("member2", 1)],
        ),
        (
            "1:1 of 3, tie to the smaller name",
            placement()
                .names(&["member1", "member2"])
                .static_weights(&[(&["member1"], 1), (&["member2"], 1)]),
            3,
            vec![("member1", 2), ("member2", 1)],
        ),
        (
            "a cluster weighs the largest matching entry",
            placement()
                .static_weights(&[(&["member1", "member2", "member3"], 1), (&["member1"], 3)]),
            5,
            vec![("member1", 3), ("member2", 1), ("member3", 1)],
        ),
        (
            "weight 0 gets nothing",
            placement().static_weights(&[(&["member1"], 0), (&["member2", "member3"], 1)]),
            4,
            vec![("member2", 2), ("member3", 2)],
        ),
        (
            "no entry matches: equal weights",
            placement().static_weights(&[(&["elsewhere"], 5)]),
            4,
            vec![("member1", 2), ("member2", 1), ("member3", 1)],
        ),
        (
            "Divided without a preference is Weighted, equal weights",
            placement().divided_default(),
            3,
            vec![("member1", 1), ("member2", 1), ("member3", 1)],
        ),
    ];
    for (name, placement, replicas, want) in cases {
        assert_eq!(
            Case::new(placement, replicas, clusters.clone()).run(),
            decided(&want),
            "{name}"
        );
    }
}

#[test]
fn static_weights_scale_up_never_takes_replicas_away() {
    // Karmada issue #6735's production weights: the old remainder rule moved replicas from
    // southcentralus when going from 5 to 6.
    let clusters = plain(&["eastus2", "southcentralus", "westus"]);
    let weights = || {
        placement().static_weights(&[
            (&["southcentralus"], 170),
            (&["westus"], 110),
            (&["eastus2"], 60),
        ])
    };
    let results: Vec<_> = (5..=7)
        .map(|replicas| Case::new(weights(), replicas, clusters.clone()).run())
        .collect();
    assert_eq!(
        results,
        vec![
            decided(&[("eastus2", 1), ("southcentralus", 2), ("westus", 2)]),
            decided(&[("eastus2", 1), ("southcentralus", 3), ("westus", 2)]),
            decided(&[("eastus2", 1), ("southcentralus", 4), ("westus", 2)]),
        ]
    );
}

#[test]
fn dynamic_weights_follow_available_replicas() {
    let clusters = vec![with_cpu("a", "6"), with_cpu("b", "3"), with_cpu("c", "1")];
    assert_eq!(
        Case::new(placement().dynamic(), 5, clusters).run(),
        decided(&[("a", 3), ("b", 1), ("c", 1)])
    );
}

#[test]
fn dynamic_scale_up_divides_only_the_extra_replicas() {
    let clusters = vec![with_cpu("a", "4"), with_cpu("b", "4"), with_cpu("c", "0")];
    assert_eq!(
        Case::new(placement().dynamic(), 5, clusters)
            .previous(&[("a", 2), ("b", 1)])
            .run(),
        decided(&[("a", 3), ("b", 2)])
    );
}

#[test]
fn dynamic_scale_down_is_proportional_to_the_previous_result() {
    let clusters = vec![with_cpu("a", "0"), with_cpu("b", "0"), with_cpu("c", "0")];
    assert_eq!(
        Case::new(placement().dynamic(), 4, clusters)
            .previous(&[("a", 6), ("b", 3), ("c", 3)])
            .run(),
        decided(&[("a", 2), ("b", 1), ("c", 1)])
    );
}

#[test]
fn same_total_keeps_the_previous_result_on_still_selected_clusters() {
    let clusters = vec![with_cpu("a", "10"), with_cpu("b", "10")];
    let cases = [
        (vec![("a", 1), ("b", 2)], decided(&[("a", 1), ("b", 2)])),
        // "gone" left the fleet: its replicas are placed anew.
        (vec![("gone", 3)], decided(&[("a", 2), ("b", 1)])),
    ];
    for (previous, want) in cases {
        assert_eq!(
            Case::new(placement().dynamic(), 3, clusters.clone())
                .previous(&previous)
                .run(),
            want
        );
    }
}

#[test]
fn capacity_shortfall_is_unschedulable() {
    let cases = [
        (vec![with_cpu("a", "2"), with_cpu("b", "1")], 3),
        // No resource summary: Karmada's general estimator counts 0.
        (plain(&["a", "b"]), 0),
    ];
    for (clusters, available) in cases {
        assert_eq!(
            Case::new(placement().dynamic(), 5, clusters).run(),
            failed(
                "Unschedulable",
                &format!(
                    "failed to assign replicas: Clusters available replicas {available} are not enough to schedule."
                )
            )
        );
    }
}

#[test]
fn aggregated_uses_the_fewest_clusters() {
    let clusters = vec![with_cpu("a", "2"), with_cpu("b", "10"), with_cpu("c", "5")];
    let cases = [
        (6, vec![], decided(&[("b", 6)])),
        (12, vec![], decided(&[("b", 8), ("c", 4)])),
        // Scale up: previous clusters are filled first, then the largest.
        (6, vec![("c", 2)], decided(&[("c", 6)])),
        (9, vec![("c", 2)], decided(&[("b", 5), ("c", 4)])),
        // Scale down keeps the largest previous clusters that cover the replicas.
        (4, vec![("a", 2), ("c", 5)], decided(&[("c", 4)])),
    ];
    for (replicas, previous, want) in cases {
        assert_eq!(
            Case::new(placement().aggregated(), replicas, clusters.clone())
                .previous(&previous)
                .run(),
            want,
            "{replicas} replicas from {previous:?}"
        );
    }
}

#[test]
fn available_replicas_from_the_resource_summary() {
    let mut summary_cluster = cluster("a")
        .capacity(
            &[("cpu", "8"), ("memory", "16Gi"), ("pods", "10")],
            &[("cpu", "1500m"), ("memory", "4Gi"), ("pods", "2")],
        )
        .build();
    if let Some(summary) = summary_cluster.status.resource_summary.as_mut() {
        summary
            .allocating
            .insert("cpu".to_owned(), serde_json::json!("500m"));
    }
    let needs = |pairs: &[(&str, i128)]| Requirements {
        milli: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    };
    let gib = 1024 * 1024 * 1024 * 1000;
    let cases = [
        // 6 CPUs free.
        (needs(&[("cpu", 1000), ("pods", 1000)]), 6),
        // 12 GiB free: 6 replicas of 2 GiB, 12 of 1 GiB but only 8 pods free.
        (needs(&[("memory", 2 * gib), ("pods", 1000)]), 6),
        (needs(&[("cpu", 100), ("memory", gib), ("pods", 1000)]), 8),
        // Unknown requirements: pods only.
        (Requirements::default(), 8),
        // A resource the cluster does not have.
        (needs(&[("nvidia.com/gpu", 1000)]), 0),
    ];
    let got: Vec<i64> = cases
        .iter()
        .map(|(r, _)| available_replicas(&summary_cluster, r))
        .collect();
    let want: Vec<i64> = cases.iter().map(|(_, n)| *n).collect();
    assert_eq!(got, want);
    assert_eq!(
        available_replicas(&cluster("b").build(), &Requirements::default()),
        0
    );
}

/// The Webster run one seat at a time, as Karmada's dispenser does it: the reference.
fn one_at_a_time(seats: i64, votes: &[i64], names: &[String]) -> Vec<i64> {
    let mut given = vec![0_i64; votes.len()];
    for _ in 0..seats {
        let best = (0..votes.len())
            .max_by(|&a, &b| {
                let mine = i128::from(votes[a]) * i128::from(2 * given[b] + 1);
                let theirs = i128::from(votes[b]) * i128::from(2 * given[a] + 1);
                mine.cmp(&theirs)
                    .then(given[b].cmp(&given[a]))
                    .then_with(|| names[b].cmp(&names[a]))
            })
            .unwrap();
        given[best] += 1;
    }
    given
}

#[test]
fn many_seats_start_part_way_and_give_what_one_at_a_time_gives() {
    // A small deterministic generator: no dependency, the same cases every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for case in 0..2_000 {
        let parties = 1 + next(8) as usize;
        let names: Vec<String> = (0..parties)
            .map(|i| format!("c{}", next(4) * 10 + i as u64))
            .collect();
        let votes: Vec<i64> = (0..parties)
            .map(|_| match next(4) {
                0 => 0,
                1 => 1 + next(3) as i64,
                _ => 1 + next(1_000) as i64,
            })
            .collect();
        let seats = if case % 4 == 0 {
            next(5_000) as i64
        } else {
            next(400) as i64
        };
        let want = one_at_a_time(seats, &votes, &names);
        let got = apportion(
            seats,
            names.iter().map(String::as_str).zip(votes.iter().copied()),
        );
        assert_eq!(got, want, "case {case}: {seats} seats over {votes:?}");
    }
}

#[test]
fn a_huge_replica_count_is_apportioned_at_once() {
    let seats = i64::from(i32::MAX);
    let started = std::time::Instant::now();
    let got = apportion(seats, [("a", 1), ("b", 2), ("c", 3)]);
    assert_eq!(got.iter().sum::<i64>(), seats);
    // Quotas 357,913,941.17, 715,827,882.33 and 1,073,741,823.5: Webster rounds each.
    assert_eq!(got, [357_913_941, 715_827_882, 1_073_741_824]);
    // Not a timing assertion on the machine's speed: one at a time would take seconds.
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn a_rebalance_divides_afresh_instead_of_scaling_the_previous_result() {
    // Karmada's `dynamicFreshScale`: every replica is divided again, by each selected cluster's
    // available replicas plus what the previous result gave it.
    let clusters = || {
        vec![
            with_cpu("a", "10"),
            with_cpu("b", "10"),
            with_cpu("c", "10"),
        ]
    };
    type FreshRow<'a> = (&'a str, Case, Vec<(&'a str, i32)>);
    let rows: Vec<FreshRow<'_>> = vec![
        (
            "dynamic, same replicas: the previous result stands",
            Case::new(placement().dynamic(), 6, clusters()).previous(&[("a", 6)]),
            vec![("a", 6)],
        ),
        (
            "dynamic, same replicas, rebalanced: a weighs 16, b and c 10",
            Case::new(placement().dynamic(), 6, clusters())
                .previous(&[("a", 6)])
                .fresh(),
            vec![("a", 2), ("b", 2), ("c", 2)],
        ),
        (
            "dynamic, scaled up: the extra 3 go over 10, 10, 10",
            Case::new(placement().dynamic(), 9, clusters()).previous(&[("a", 6)]),
            vec![("a", 7), ("b", 1), ("c", 1)],
        ),
        (
            "dynamic, scaled up and rebalanced: all 9 over 16, 10, 10",
            Case::new(placement().dynamic(), 9, clusters())
                .previous(&[("a", 6)])
                .fresh(),
            vec![("a", 4), ("b", 3), ("c", 2)],
        ),
        (
            "aggregated, scaled up: the previous cluster takes the extra replicas",
            Case::new(
                placement().aggregated(),
                12,
                vec![
                    with_cpu("a", "10"),
                    with_cpu("b", "20"),
                    with_cpu("c", "10"),
                ],
            )
            .previous(&[("a", 2)]),
            vec![("a", 12)],
        ),
        (
            "aggregated, rebalanced: the cluster with the most room, previous or not",
            Case::new(
                placement().aggregated(),
                12,
                vec![
                    with_cpu("a", "10"),
                    with_cpu("b", "20"),
                    with_cpu("c", "10"),
                ],
            )
            .previous(&[("a", 2)])
            .fresh(),
            vec![("b", 12)],
        ),
        (
            "static weights are divided afresh anyway",
            Case::new(
                placement().static_weights(&[(&["a", "b"], 1)]),
                4,
                clusters(),
            )
            .previous(&[("a", 4)])
            .fresh(),
            vec![("a", 2), ("b", 2)],
        ),
    ];
    for (name, case, want) in rows {
        assert_eq!(case.run(), decided(&want), "{name}");
    }
}
