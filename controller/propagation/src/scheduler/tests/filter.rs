//! Filters: affinity, ordered affinity terms, taints and tolerations, spread fields, evictions.

use super::*;
use meshfleet_api::fixtures::cluster;

fn fleet() -> Vec<Arc<Cluster>> {
    vec![
        cluster("east-1")
            .region("us-east")
            .zone("us-east-1a")
            .provider("aws")
            .label("env", "prod")
            .ready()
            .arc(),
        cluster("east-2")
            .region("us-east")
            .zone("us-east-1b")
            .provider("aws")
            .label("env", "dev")
            .ready()
            .arc(),
        cluster("west-1")
            .region("us-west")
            .zone("us-west-2a")
            .provider("gcp")
            .label("env", "prod")
            .ready()
            .arc(),
    ]
}

#[test]
fn cluster_affinity_selects() {
    let cases: Vec<Row<'_>> = vec![
        (
            "no affinity: every cluster",
            placement(),
            vec![("east-1", 1), ("east-2", 1), ("west-1", 1)],
        ),
        (
            "clusterNames",
            placement().names(&["east-2", "west-1", "absent"]),
            vec![("east-2", 1), ("west-1", 1)],
        ),
        (
            "exclude",
            placement().exclude(&["east-1"]),
            vec![("east-2", 1), ("west-1", 1)],
        ),
        (
            "labelSelector",
            placement().label("env", "prod"),
            vec![("east-1", 1), ("west-1", 1)],
        ),
        (
            "fieldSelector region",
            placement().field("region", "In", &["us-east"]),
            vec![("east-1", 1), ("east-2", 1)],
        ),
        (
            "fieldSelector provider NotIn",
            placement().field("provider", "NotIn", &["aws"]),
            vec![("west-1", 1)],
        ),
        (
            "fieldSelector zone",
            placement().field("zone", "In", &["us-east-1b", "us-west-2a"]),
            vec![("east-2", 1), ("west-1", 1)],
        ),
    ];
    for (name, placement, want) in cases {
        assert_eq!(
            Case::new(placement, 1, fleet()).run(),
            decided(&want),
            "{name}"
        );
    }
}

#[test]
fn no_fit_message_counts_reasons_as_karmada_does() {
    let clusters = vec![
        cluster("a")
            .taint("dedicated", Some("gpu"), "NoSchedule")
            .ready()
            .arc(),
        cluster("b")
            .taint("dedicated", Some("gpu"), "NoSchedule")
            .ready()
            .arc(),
        cluster("c").ready().arc(),
        cluster("d")
            .taint("maintenance", None, "NoExecute")
            .ready()
            .arc(),
    ];
    assert_eq!(
        Case::new(placement().exclude(&["c"]), 1, clusters).run(),
        failed(
            "NoClusterFit",
            "0/4 clusters are available: 1 cluster(s) did not match the placement cluster affinity constraint, \
             1 cluster(s) had untolerated taint {maintenance:NoExecute}, \
             2 cluster(s) had untolerated taint {dedicated=gpu:NoSchedule}."
        )
    );
}

#[test]
fn tolerations_as_kubernetes_matches_them() {
    let clusters = vec![
        cluster("gpu")
            .taint("dedicated", Some("gpu"), "NoSchedule")
            .ready()
            .arc(),
        cluster("soft")
            .taint("busy", None, "PreferNoSchedule")
            .ready()
            .arc(),
        cluster("down")
            .taint("cluster.karmada.io/not-ready", None, "NoExecute")
            .ready()
            .arc(),
    ];
    let cases: Vec<Row<'_>> = vec![
        (
            "PreferNoSchedule never filters",
            placement(),
            vec![("soft", 1)],
        ),
        (
            "Equal with the value",
            placement().tolerate("dedicated", "Equal", "gpu", "NoSchedule"),
            vec![("gpu", 1), ("soft", 1)],
        ),
        (
            "Equal with another value",
            placement().tolerate("dedicated", "Equal", "cpu", ""),
            vec![("soft", 1)],
        ),
        (
            "Exists on the key, any effect",
            placement().tolerate("cluster.karmada.io/not-ready", "Exists", "", ""),
            vec![("down", 1), ("soft", 1)],
        ),
        (
            "wrong effect",
            placement().tolerate("cluster.karmada.io/not-ready", "Exists", "", "NoSchedule"),
            vec![("soft", 1)],
        ),
        (
            "Exists without a key tolerates everything",
            placement().tolerate("", "Exists", "", ""),
            vec![("down", 1), ("gpu", 1), ("soft", 1)],
        ),
    ];
    for (name, placement, want) in cases {
        assert_eq!(
            Case::new(placement, 1, clusters.clone()).run(),
            decided(&want),
            "{name}"
        );
    }
}

#[test]
fn previous_clusters_are_not_filtered_by_taints_but_evictions_are() {
    let clusters = vec![
        cluster("a")
            .taint("cluster.karmada.io/not-ready", None, "NoExecute")
            .ready()
            .arc(),
        cluster("b").ready().arc(),
    ];
    assert_eq!(
        Case::new(placement(), 2, clusters.clone())
            .previous(&[("a", 2)])
            .run(),
        decided(&[("a", 2), ("b", 2)])
    );
    assert_eq!(
        Case::new(placement(), 2, clusters.clone())
            .previous(&[("a", 2)])
            .evicting("a")
            .run(),
        decided(&[("b", 2)])
    );
    assert_eq!(
        Case::new(placement().names(&["a"]), 2, clusters)
            .previous(&[("a", 2)])
            .evicting("a")
            .run(),
        failed(
            "NoClusterFit",
            "0/2 clusters are available: 1 cluster(s) did not match the placement cluster affinity constraint, \
             1 cluster(s) is in the process of eviction."
        )
    );
}

#[test]
fn spread_fields_filter_clusters_lacking_them() {
    let clusters = vec![
        cluster("a").region("r1").ready().arc(),
        cluster("b").ready().arc(),
        cluster("c").label("tier", "").ready().arc(),
    ];
    assert_eq!(
        Case::new(placement().spread("region", 1, 1), 1, clusters.clone()).run(),
        decided(&[("a", 1)])
    );
    assert_eq!(
        Case::new(placement().spread("zone", 1, 1), 1, clusters.clone()).run(),
        failed(
            "NoClusterFit",
            "0/3 clusters are available: 3 cluster(s) didn't have zone property."
        )
    );
    assert_eq!(
        Case::new(placement().spread_label("tier", 1, 1), 1, clusters).run(),
        failed(
            "NoClusterFit",
            "0/3 clusters are available: 3 cluster(s) didn't have label tier."
        )
    );
}

#[test]
fn cluster_affinities_fall_back_in_order() {
    let clusters = vec![with_cpu("primary", "1"), with_cpu("backup", "8")];
    let terms = || {
        placement()
            .dynamic()
            .term("local", affinity_names(&["primary"]))
            .term("backup", affinity_names(&["backup"]))
    };
    let cases = [
        // The first term fits.
        (1, Ok(("local", vec![("primary", 1)]))),
        // The first term filters fine but lacks capacity: the next group is tried.
        (3, Ok(("backup", vec![("backup", 3)]))),
        // Nothing fits: the first term's failure is reported.
        (
            9,
            Err(failed(
                "Unschedulable",
                "failed to assign replicas: Clusters available replicas 1 are not enough to schedule.",
            )),
        ),
    ];
    for (replicas, want) in cases {
        let want = match want {
            Ok((name, list)) => Ok(Decision {
                clusters: targets(&list),
                affinity_name: Some(name.to_owned()),
            }),
            Err(failure) => failure,
        };
        assert_eq!(
            Case::new(terms(), replicas, clusters.clone()).run(),
            want,
            "{replicas}"
        );
    }
}

#[test]
fn cluster_affinities_resume_from_the_observed_term() {
    let clusters = vec![with_cpu("primary", "8"), with_cpu("backup", "8")];
    let terms = || {
        placement()
            .dynamic()
            .term("local", affinity_names(&["primary"]))
            .term("backup", affinity_names(&["backup"]))
    };
    let on = |name: &str, cluster: &str| {
        Ok(Decision {
            clusters: targets(&[(cluster, 2)]),
            affinity_name: Some(name.to_owned()),
        })
    };
    // Scheduled under "backup" before: the earlier term is not tried again, though it fits.
    let case = Case::new(terms(), 2, clusters.clone()).observing("backup");
    assert_eq!(case.run(), on("backup", "backup"));
    // A term the placement no longer has: from the first.
    let case = Case::new(terms(), 2, clusters).observing("gone");
    assert_eq!(case.run(), on("local", "primary"));
}

#[test]
fn cluster_affinities_skip_terms_that_match_nothing() {
    let placement = placement()
        .term("gpu", affinity_names(&["nowhere"]))
        .term("any", ClusterAffinity::default());
    assert_eq!(
        Case::new(placement, 2, plain(&["a", "b"])).run(),
        Ok(Decision {
            clusters: targets(&[("a", 2), ("b", 2)]),
            affinity_name: Some("any".to_owned()),
        })
    );
}
