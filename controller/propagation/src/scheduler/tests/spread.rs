//! Spread constraints: by cluster, region, zone, provider and label, minGroups / maxGroups.

use super::*;
use meshfleet_api::fixtures::cluster;

/// Regions r1 (a, b), r2 (c), r3 (d, e, f), each cluster in its own zone, with 4 CPUs free.
fn regions() -> Vec<Arc<Cluster>> {
    [
        ("a", "r1"),
        ("b", "r1"),
        ("c", "r2"),
        ("d", "r3"),
        ("e", "r3"),
        ("f", "r3"),
    ]
    .iter()
    .map(|(name, region)| {
        cluster(name)
            .region(region)
            .zone(&format!("{region}-{name}"))
            .provider(if *region == "r2" { "gcp" } else { "aws" })
            .label("tier", if *name < "c" { "gold" } else { "silver" })
            .capacity(&[("cpu", "4"), ("pods", "110")], &[])
            .ready()
            .arc()
    })
    .collect()
}

#[test]
fn by_cluster_takes_the_best_ranked_up_to_max_groups() {
    let cases: Vec<(&str, Case, Result<Decision, Unschedulable>)> = vec![
        (
            "duplicated: first by name",
            Case::new(placement().spread("cluster", 1, 2), 1, regions()),
            decided(&[("a", 1), ("b", 1)]),
        ),
        (
            "previous clusters score higher",
            Case::new(placement().spread("cluster", 1, 2), 1, regions()).previous(&[("e", 1)]),
            decided(&[("a", 1), ("e", 1)]),
        ),
        (
            "minGroups above the feasible clusters",
            Case::new(
                placement().names(&["a", "b"]).spread("cluster", 3, 4),
                1,
                regions(),
            ),
            failed(
                "SchedulerError",
                "failed to select clusters: the number of feasible clusters is less than spreadConstraint.MinGroups",
            ),
        ),
    ];
    for (name, case, want) in cases {
        assert_eq!(case.run(), want, "{name}");
    }
}

#[test]
fn by_cluster_swaps_in_capacity_for_divided_replicas() {
    // Karmada's selectClustersByAvailableResource: member1 and member2 score best but hold too
    // few replicas, so the last of them is swapped for member3.
    let clusters = vec![
        with_cpu("member1", "40"),
        with_cpu("member2", "30"),
        with_cpu("member3", "60"),
    ];
    let case = Case::new(
        placement().spread("cluster", 1, 2).dynamic(),
        80,
        clusters.clone(),
    )
    .previous(&[("member1", 0), ("member2", 0)]);
    assert_eq!(case.run(), decided(&[("member1", 32), ("member3", 48)]));
    let too_many = Case::new(placement().spread("cluster", 1, 2).dynamic(), 120, clusters);
    assert_eq!(
        too_many.run(),
        failed(
            "SchedulerError",
            "failed to select clusters: no enough resource when selecting 2 clusters"
        )
    );
}

#[test]
fn by_region_karmada_docs_example() {
    // Two regions, two to three clusters. Duplicated, every cluster can take the replica: a
    // region weighs 1000 per cluster, so the pair r1 (2 clusters) + r3 (3) is the heaviest;
    // then each region's best cluster, then the rest by score, available replicas, name.
    let placement = || placement().spread("region", 2, 2).spread("cluster", 2, 3);
    assert_eq!(
        Case::new(placement(), 1, regions()).run(),
        decided(&[("a", 1), ("b", 1), ("d", 1)])
    );
    // A previous cluster adds only its score (100) to its region's weight: r2 (1100) stays
    // lighter than r1 (2000) and r3 (3000), so Karmada leaves it, as meshfleet now does.
    assert_eq!(
        Case::new(placement(), 1, regions())
            .previous(&[("c", 1)])
            .run(),
        decided(&[("a", 1), ("b", 1), ("d", 1)])
    );
}

#[test]
fn by_region_group_limits() {
    let cases: Vec<(&str, PlacementFixture, Result<Decision, Unschedulable>)> = vec![
        (
            "minGroups above the regions",
            placement().spread("region", 4, 4).spread("cluster", 1, 6),
            failed(
                "SchedulerError",
                "failed to select clusters: the number of feasible region is less than spreadConstraint.MinGroups",
            ),
        ),
        (
            "more regions are taken until enough clusters",
            placement()
                .names(&["a", "c", "d"])
                .spread("region", 1, 3)
                .spread("cluster", 2, 2),
            decided(&[("a", 1), ("c", 1)]),
        ),
        (
            "maxGroups caps the regions before enough clusters",
            placement()
                .names(&["a", "c", "d"])
                .spread("region", 1, 2)
                .spread("cluster", 3, 3),
            failed(
                "SchedulerError",
                "failed to select clusters: the number of clusters is less than the cluster spreadConstraint.MinGroups",
            ),
        ),
        (
            "without a cluster constraint every cluster of the chosen regions",
            placement().spread("region", 1, 1),
            decided(&[("d", 1), ("e", 1), ("f", 1)]),
        ),
    ];
    for (name, placement, want) in cases {
        assert_eq!(Case::new(placement, 1, regions()).run(), want, "{name}");
    }
}

#[test]
fn zone_provider_and_label_spread_like_region() {
    let cases: Vec<(&str, PlacementFixture, Result<Decision, Unschedulable>)> = vec![
        (
            "two zones of one cluster each: by name",
            placement().spread("zone", 2, 2),
            decided(&[("a", 1), ("b", 1)]),
        ),
        (
            "one provider: aws has more clusters",
            placement().spread("provider", 1, 1).spread("cluster", 1, 2),
            decided(&[("a", 1), ("b", 1)]),
        ),
        (
            "both providers, one cluster each",
            placement().spread("provider", 2, 2).spread("cluster", 2, 2),
            decided(&[("a", 1), ("c", 1)]),
        ),
        (
            "by label: silver has more clusters",
            placement()
                .spread_label("tier", 1, 1)
                .spread("cluster", 1, 2),
            decided(&[("c", 1), ("d", 1)]),
        ),
        (
            "zone minGroups above the zones",
            placement().names(&["a", "b"]).spread("zone", 3, 3),
            failed(
                "SchedulerError",
                "failed to select clusters: the number of feasible zone is less than spreadConstraint.MinGroups",
            ),
        ),
    ];
    for (name, placement, want) in cases {
        assert_eq!(Case::new(placement, 1, regions()).run(), want, "{name}");
    }
}

#[test]
fn divided_replicas_over_spread_regions() {
    // Dynamic weights over the clusters two regions give: 4 CPUs free each.
    let placement = placement()
        .spread("region", 2, 2)
        .spread("cluster", 2, 4)
        .dynamic();
    assert_eq!(
        Case::new(placement, 10, regions()).run(),
        decided(&[("a", 3), ("b", 3), ("d", 2), ("e", 2)])
    );
}

#[test]
fn static_weights_ignore_spread_constraints() {
    let placement = placement()
        .spread("cluster", 1, 1)
        .static_weights(&[(&["a", "b"], 1)]);
    assert_eq!(
        Case::new(placement, 4, regions()).run(),
        decided(&[("a", 2), ("b", 2)])
    );
}

/// A ready cluster in `region` with `cpu` cores and 110 pods free.
fn in_region(name: &str, region: &str, cpu: &str) -> Arc<Cluster> {
    cluster(name)
        .region(region)
        .capacity(&[("cpu", cpu), ("pods", "110")], &[])
        .ready()
        .arc()
}

#[test]
fn by_region_search_differs_from_greedy_ranking() {
    // Where ranking regions by their best cluster's score, then cluster count, and taking a
    // prefix (meshfleet's former greedy choice) and Karmada's weighed search part ways.
    let small_and_large = || {
        vec![
            in_region("a", "r1", "8"),
            in_region("b", "r1", "8"),
            in_region("c", "r2", "2"),
            in_region("d", "r2", "2"),
            in_region("e", "r2", "2"),
        ]
    };
    let cases: Vec<(&str, Case, Result<Decision, Unschedulable>)> = vec![
        (
            // Greedy: r2 first for its previous cluster, 1 cluster < 2 and maxGroups 1: failure.
            // Search: any single region holding 2 clusters; r3 weighs most.
            "the previous cluster's region is too small",
            Case::new(
                placement().spread("region", 1, 1).spread("cluster", 2, 2),
                1,
                regions(),
            )
            .previous(&[("c", 1)]),
            decided(&[("d", 1), ("e", 1)]),
        ),
        (
            // Greedy: r2 (previous) then r3 = c, d, e. Search: r1 + r3 is the heaviest pair,
            // but r3 alone already holds 3 clusters, and fewer regions win.
            "fewer regions suffice",
            Case::new(
                placement().spread("region", 1, 2).spread("cluster", 3, 3),
                1,
                regions(),
            )
            .previous(&[("c", 1)]),
            decided(&[("d", 1), ("e", 1), ("f", 1)]),
        ),
        (
            // Greedy: r2 has more clusters, but two of them hold 4 replicas. Divided weights: r1
            // reaches its 10-replica aim (10000), r2 only 6 (6000).
            "divided: the region that can take the replicas",
            Case::new(
                placement()
                    .spread("region", 1, 1)
                    .spread("cluster", 1, 2)
                    .dynamic(),
                10,
                small_and_large(),
            ),
            decided(&[("a", 5), ("b", 5)]),
        ),
        (
            // Greedy: r2 has more clusters, none can run 3 replicas. Duplicated weights count
            // the clusters that can: r1 has two.
            "duplicated: the region whose clusters can run all replicas",
            Case::new(
                placement().spread("region", 1, 1).spread("cluster", 1, 2),
                3,
                small_and_large(),
            ),
            decided(&[("a", 3), ("b", 3)]),
        ),
        (
            // Equal scores: a region's best cluster is the one with the most available
            // replicas, not the first by name.
            "a region's best cluster has the most available replicas",
            Case::new(
                placement().spread("region", 1, 1).spread("cluster", 1, 1),
                1,
                vec![in_region("a", "r1", "2"), in_region("b", "r1", "8")],
            ),
            decided(&[("b", 1)]),
        ),
    ];
    for (name, case, want) in cases {
        assert_eq!(case.run(), want, "{name}");
    }
}

#[test]
fn by_region_divided_weights_follow_karmada_1_18() {
    // Karmada 1.17 and 1.18 (`calcGroupScore`) aim each region at ceil(replicas / minGroups)
    // and take clusters until there are max(cluster minGroups, region minGroups) of them; the
    // former aim, replicas / minGroups + 1, reached after the first cluster, chose the other
    // region in both cases.
    let cases: Vec<(&str, Case, Result<Decision, Unschedulable>)> = vec![
        (
            // r1 holds exactly its share of 10, r2 more: both weigh 10000 and r1 comes first
            // by name. (With the aim at 11, r1 fell short: 10000 against 11000.)
            "a region holding exactly its share is as good as a larger one",
            Case::new(
                placement()
                    .spread("region", 1, 1)
                    .spread("cluster", 1, 1)
                    .dynamic(),
                10,
                vec![in_region("a", "r1", "10"), in_region("b", "r2", "20")],
            ),
            decided(&[("a", 10)]),
        ),
        (
            // Two clusters per region count: r1's pair is a (previous, 100) and b (0), mean 50;
            // r2's pair is c and d, both previous, mean 100. (Stopping at the first cluster,
            // both weighed 11100 and r1 won by name.)
            "the clusters a region needs all count towards its score",
            Case::new(
                placement()
                    .spread("region", 1, 1)
                    .spread("cluster", 2, 2)
                    .dynamic(),
                10,
                vec![
                    in_region("a", "r1", "20"),
                    in_region("b", "r1", "20"),
                    in_region("c", "r2", "20"),
                    in_region("d", "r2", "20"),
                ],
            )
            .previous(&[("a", 5), ("c", 3), ("d", 2)]),
            decided(&[("c", 6), ("d", 4)]),
        ),
    ];
    for (name, case, want) in cases {
        assert_eq!(case.run(), want, "{name}");
    }
}
