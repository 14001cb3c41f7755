//! Cases from Istio's `loadbalancer_test.go` (`TestApplyLocalitySetting`): the fixtures are
//! rebuilt here and the expected weights and priorities copied from Istio's expectations.

use super::super::test_support::{Row, client, group, labelled, labels, row, rows, weighted};
use super::super::{LocalityGroup, needs_labels, uses_locality_weights};
use super::*;
use crate::model::{LocalityPolicy, TierWeights};

const NET: &str = "topology.istio.io/network";
const CLUSTER: &str = "topology.istio.io/cluster";
const CLIENT: &str = "region1/zone1/subzone1";

fn run(
    setting: &LocalityLbSetting,
    outlier: bool,
    key: &ClientKey,
    groups: Vec<LocalityGroup<'static>>,
) -> Vec<Row> {
    rows(&assign(setting, outlier, groups, key))
}

fn distribute(from: &str, to: &[(&str, u32)]) -> Vec<Distribute> {
    vec![Distribute {
        from: from.to_owned(),
        to: to.iter().map(|(l, w)| ((*l).to_owned(), *w)).collect(),
    }]
}

fn failover_r1_to_r2() -> Vec<Failover> {
    vec![Failover {
        from: "region1".to_owned(),
        to: "region2".to_owned(),
    }]
}

/// Istio's `buildFakeCluster`, one endpoint of weight 1 per locality.
fn fake_cluster() -> Vec<LocalityGroup<'static>> {
    vec![
        group("region1/zone1/subzone1", &["1.0.0.1"]),
        group("region1/zone1/subzone1", &["1.0.0.2"]),
        group("region1/zone1/subzone2", &["1.0.0.3"]),
        group("region1/zone1/subzone3", &["1.0.0.4"]),
        group("region1/zone2", &["1.0.0.5"]),
        group("region2", &["2.0.0.1"]),
        group("region3", &["3.0.0.1"]),
    ]
}

fn priorities(out: &[Row]) -> Vec<u32> {
    out.iter().map(|r| r.priority).collect()
}

#[test]
fn distribute_between_subzones_and_unlisted_localities_lose_their_endpoints() {
    let setting = LocalityLbSetting {
        distribute: distribute(
            CLIENT,
            &[
                ("region1/zone1/subzone1", 80),
                ("region1/zone1/subzone2", 15),
                ("region1/zone1/subzone3", 5),
            ],
        ),
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        fake_cluster(),
    );
    assert_eq!(
        out,
        vec![
            row("region1/zone1/subzone1", 40, 0, &["1.0.0.1"]),
            row("region1/zone1/subzone1", 40, 0, &["1.0.0.2"]),
            row("region1/zone1/subzone2", 15, 0, &["1.0.0.3"]),
            row("region1/zone1/subzone3", 5, 0, &["1.0.0.4"]),
            // Not in any `to`: kept with their weight, but without endpoints.
            row("region1/zone2", 1, 0, &[]),
            row("region2", 1, 0, &[]),
            row("region3", 1, 0, &[]),
        ]
    );
}

#[test]
fn distribute_rounds_up_by_endpoint_weight() {
    let setting = LocalityLbSetting {
        distribute: distribute("region1/*", &[("region1/*", 50), ("region2", 50)]),
        ..Default::default()
    };
    let groups = vec![
        weighted("region1/zone1", &[("1.0.0.1", 1)]),
        weighted("region1/zone2", &[("1.0.0.2", 1), ("1.0.0.3", 1)]),
        weighted("region2/zone1", &[("2.0.0.1", 7)]),
    ];
    let out = run(&setting, false, &client(CLIENT, Labels::new()), groups);
    assert_eq!(
        out,
        vec![
            row("region1/zone1", 17, 0, &["1.0.0.1"]),
            row("region1/zone2", 34, 0, &["1.0.0.2", "1.0.0.3"]),
            row("region2/zone1", 50, 0, &["2.0.0.1"]),
        ]
    );
}

#[test]
fn distribute_uses_the_first_rule_matching_the_client_only() {
    let mut rules = distribute("region2", &[("region2", 100)]);
    rules.extend(distribute(
        "region1/zone1",
        &[("region1", 10), ("region2", 90)],
    ));
    rules.extend(distribute("*", &[("region3", 100)]));
    let setting = LocalityLbSetting {
        distribute: rules,
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        fake_cluster(),
    );
    assert_eq!(
        out,
        vec![
            row("region1/zone1/subzone1", 2, 0, &["1.0.0.1"]),
            row("region1/zone1/subzone1", 2, 0, &["1.0.0.2"]),
            row("region1/zone1/subzone2", 2, 0, &["1.0.0.3"]),
            row("region1/zone1/subzone3", 2, 0, &["1.0.0.4"]),
            row("region1/zone2", 2, 0, &["1.0.0.5"]),
            row("region2", 90, 0, &["2.0.0.1"]),
            row("region3", 1, 0, &[]),
        ]
    );
}

#[test]
fn distribute_without_a_matching_rule_changes_nothing() {
    let setting = LocalityLbSetting {
        distribute: distribute("region9", &[("region1", 100)]),
        failover: failover_r1_to_r2(),
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        fake_cluster(),
    );
    assert_eq!(out, rows(&initial(fake_cluster()).0));
    assert!(
        out.iter()
            .all(|r| r.weight == 1 && r.priority == 0 && r.ips.len() == 1)
    );
}

#[test]
fn failover_all_priorities() {
    let setting = LocalityLbSetting {
        failover: failover_r1_to_r2(),
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        fake_cluster(),
    );
    assert_eq!(priorities(&out), vec![0, 0, 1, 1, 2, 3, 4]);
}

#[test]
fn failover_priorities_are_compacted() {
    // Istio's `buildSmallCluster`: LbPriority 1 and 3 become 0 and 1.
    let setting = LocalityLbSetting {
        failover: failover_r1_to_r2(),
        ..Default::default()
    };
    let groups = vec![
        group("region1/zone1/subzone2", &["1.0.0.1"]),
        group("region2/zone1/subzone2", &["2.0.0.1"]),
        group("region2/zone1/subzone2", &["2.0.0.2"]),
    ];
    let out = run(&setting, true, &client(CLIENT, Labels::new()), groups);
    assert_eq!(priorities(&out), vec![0, 1, 1]);
}

#[test]
fn default_failover_ranks_by_locality() {
    let setting = LocalityLbSetting {
        enabled: Some(true),
        ..Default::default()
    };
    let groups = vec![
        group("region1/zone2", &["1.0.0.1"]),
        group("region3", &["3.0.0.1"]),
    ];
    let out = run(&setting, true, &client(CLIENT, Labels::new()), groups);
    assert_eq!(
        out,
        vec![
            row("region1/zone2", 1, 0, &["1.0.0.1"]),
            row("region3", 1, 1, &["3.0.0.1"])
        ]
    );
}

#[test]
fn failover_is_ignored_without_outlier_detection() {
    let setting = LocalityLbSetting {
        failover: failover_r1_to_r2(),
        failover_priority: vec![NET.to_owned()],
        ..Default::default()
    };
    let key = client(CLIENT, labels(&[(NET, "n1")]));
    let out = run(&setting, false, &key, fake_cluster());
    assert_eq!(priorities(&out), vec![0; 7]);
}

#[test]
fn disabled_means_no_locality_load_balancing() {
    let setting = LocalityLbSetting {
        enabled: Some(false),
        distribute: distribute("*", &[("region1", 100)]),
        failover: failover_r1_to_r2(),
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        fake_cluster(),
    );
    assert_eq!(out, rows(&initial(fake_cluster()).0));
    let policy = LocalityPolicy::Istio(setting);
    assert!(!uses_locality_weights(&policy, true));
    assert!(!needs_labels(&policy, true));
}

/// Istio's `buildWrappedLocalityLbEndpoints`.
fn wrapped_endpoints() -> Vec<LocalityGroup<'static>> {
    vec![
        labelled(
            "region1/zone1/subzone1",
            &[
                ("1.1.1.1", &[(NET, "n1"), (CLUSTER, "c1")]),
                ("2.2.2.2", &[("key", "value"), (NET, "n2"), (CLUSTER, "c2")]),
            ],
        ),
        labelled(
            "region2/zone2/subzone2",
            &[
                ("3.3.3.3", &[("key", "value"), (NET, "n1"), (CLUSTER, "c3")]),
                ("4.4.4.4", &[("key", "value"), (NET, "n2"), (CLUSTER, "c4")]),
            ],
        ),
        labelled(
            "region3/zone3/subzone3",
            &[
                ("1.2.3.4", &[("key", "value"), (NET, "n1"), (CLUSTER, "c1")]),
                ("2.3.4.5", &[("key", "value"), (NET, "n2"), (CLUSTER, "c2")]),
            ],
        ),
    ]
}

#[test]
fn failover_priority_cases_from_istio() {
    let (r1, r2, r3) = (
        "region1/zone1/subzone1",
        "region2/zone2/subzone2",
        "region3/zone3/subzone3",
    );
    let unsplit = vec![
        row(r1, 2, 0, &["1.1.1.1", "2.2.2.2"]),
        row(r2, 2, 0, &["3.3.3.3", "4.4.4.4"]),
        row(r3, 2, 0, &["1.2.3.4", "2.3.4.5"]),
    ];
    let by_n1 = vec![
        row(r1, 1, 0, &["1.1.1.1"]),
        row(r1, 1, 1, &["2.2.2.2"]),
        row(r2, 1, 0, &["3.3.3.3"]),
        row(r2, 1, 1, &["4.4.4.4"]),
        row(r3, 1, 0, &["1.2.3.4"]),
        row(r3, 1, 1, &["2.3.4.5"]),
    ];
    let all_labels = vec![
        row(r1, 1, 0, &["2.2.2.2"]),
        row(r1, 1, 3, &["1.1.1.1"]),
        row(r2, 1, 1, &["4.4.4.4"]),
        row(r2, 1, 2, &["3.3.3.3"]),
        row(r3, 1, 0, &["2.3.4.5"]),
        row(r3, 1, 2, &["1.2.3.4"]),
    ];
    let cases: Vec<(&str, Vec<&str>, Labels, Vec<Row>)> = vec![
        (
            "match none label",
            vec![NET, CLUSTER],
            labels(&[(NET, "test"), (CLUSTER, "test")]),
            unsplit,
        ),
        (
            "match network label",
            vec![NET, CLUSTER],
            labels(&[(NET, "n1"), (CLUSTER, "test")]),
            by_n1,
        ),
        (
            "not match the first n label",
            vec![NET, CLUSTER],
            labels(&[(NET, "test"), (CLUSTER, "c1")]),
            vec![
                row(r1, 2, 0, &["1.1.1.1", "2.2.2.2"]),
                row(r2, 2, 0, &["3.3.3.3", "4.4.4.4"]),
                row(r3, 2, 0, &["1.2.3.4", "2.3.4.5"]),
            ],
        ),
        (
            "match all labels",
            vec!["key", NET, CLUSTER],
            labels(&[("key", "value"), (NET, "n2"), (CLUSTER, "c2")]),
            all_labels,
        ),
        (
            "priority assignment as per the overridden value",
            vec!["topology.istio.io/network=n1"],
            labels(&[(NET, "n2"), (CLUSTER, "test")]),
            vec![
                row(r1, 1, 0, &["1.1.1.1"]),
                row(r1, 1, 1, &["2.2.2.2"]),
                row(r2, 1, 0, &["3.3.3.3"]),
                row(r2, 1, 1, &["4.4.4.4"]),
                row(r3, 1, 0, &["1.2.3.4"]),
                row(r3, 1, 1, &["2.3.4.5"]),
            ],
        ),
        (
            "no endpoints with overridden value",
            vec!["topology.istio.io/network=n3"],
            labels(&[(NET, "n1"), (CLUSTER, "test")]),
            vec![
                row(r1, 2, 0, &["1.1.1.1", "2.2.2.2"]),
                row(r2, 2, 0, &["3.3.3.3", "4.4.4.4"]),
                row(r3, 2, 0, &["1.2.3.4", "2.3.4.5"]),
            ],
        ),
    ];
    for (name, failover_priority, proxy_labels, expected) in cases {
        let setting = LocalityLbSetting {
            failover_priority: failover_priority.into_iter().map(str::to_owned).collect(),
            ..Default::default()
        };
        let out = run(
            &setting,
            true,
            &client(CLIENT, proxy_labels),
            wrapped_endpoints(),
        );
        assert_eq!(out, expected, "{name}");
    }
}

#[test]
fn failover_priority_with_failover_from_istio() {
    // Istio's `buildWrappedLocalityLbEndpointsForFailoverPriorityWithFailover`.
    let groups = vec![
        labelled(
            "region1/zone1/subzone1",
            &[("1.1.1.1", &[(NET, "n1"), (CLUSTER, "c1")])],
        ),
        labelled(
            "region1/zone2/subzone2",
            &[("2.2.2.2", &[("key", "value"), (NET, "n2"), (CLUSTER, "c2")])],
        ),
        labelled(
            "region2/zone2/subzone2",
            &[("3.3.3.3", &[("key", "value"), (NET, "n1"), (CLUSTER, "c3")])],
        ),
        labelled(
            "region3/zone3/subzone3",
            &[("4.4.4.4", &[("key", "value"), (NET, "n2"), (CLUSTER, "c4")])],
        ),
        labelled(
            "region2/zone2/subzone2",
            &[("5.5.5.5", &[(NET, "n2"), (CLUSTER, "c2")])],
        ),
        labelled(
            "region3/zone3/subzone3",
            &[("6.6.6.6", &[("key", "value"), (NET, "n1"), (CLUSTER, "c6")])],
        ),
    ];
    let setting = LocalityLbSetting {
        failover: failover_r1_to_r2(),
        failover_priority: vec![NET.to_owned(), CLUSTER.to_owned()],
        ..Default::default()
    };
    let key = client(CLIENT, labels(&[(NET, "n2"), (CLUSTER, "c2")]));
    let out = run(&setting, true, &key, groups);
    assert_eq!(priorities(&out), vec![3, 0, 4, 2, 1, 5]);
    assert!(out.iter().all(|r| r.weight == 1 && r.ips.len() == 1));
}

#[test]
fn failover_priority_needs_client_labels() {
    let setting = LocalityLbSetting {
        failover_priority: vec![NET.to_owned()],
        ..Default::default()
    };
    let out = run(
        &setting,
        true,
        &client(CLIENT, Labels::new()),
        wrapped_endpoints(),
    );
    assert_eq!(out, rows(&initial(wrapped_endpoints()).0));
}

#[test]
fn failover_priority_treats_missing_labels_as_empty() {
    // Groups built without labels (no endpoint has the label): all mismatch the client.
    let setting = LocalityLbSetting {
        failover_priority: vec![NET.to_owned()],
        ..Default::default()
    };
    let key = client(CLIENT, labels(&[(NET, "n1")]));
    let out = run(&setting, true, &key, vec![group("region2", &["2.0.0.1"])]);
    assert_eq!(out, vec![row("region2", 1, 0, &["2.0.0.1"])]);
}

#[test]
fn priority_label_overrides_need_exactly_one_equals_sign() {
    assert_eq!(priority_label("a"), ("a", None));
    assert_eq!(priority_label("a=b"), ("a", Some("b")));
    assert_eq!(priority_label("a="), ("a", Some("")));
    assert_eq!(priority_label("a=b=c"), ("a", None));
}

#[test]
fn locality_match_follows_istio() {
    let locality = to_proto(&crate::model::Locality::parse(CLIENT));
    let cases = [
        ("*", true),
        ("region1", true),
        ("region1/*", true),
        ("region1/zone1", true),
        ("region1/*/subzone1", true),
        ("region1/zone1/subzone1", true),
        ("*/zone1/*", true),
        ("region1/zone2", false),
        ("region1/zone1/subzone2", false),
        ("region2", false),
        ("", false),
    ];
    for (rule, expected) in cases {
        assert_eq!(locality_match(&locality, rule), expected, "{rule}");
    }
}

#[test]
fn locality_weighted_config_follows_istio() {
    let with = |s: LocalityLbSetting| LocalityPolicy::Istio(s);
    let failover = with(LocalityLbSetting {
        failover: failover_r1_to_r2(),
        ..Default::default()
    });
    let priority = with(LocalityLbSetting {
        failover_priority: vec![NET.to_owned()],
        ..Default::default()
    });
    let spread = with(LocalityLbSetting {
        distribute: distribute("*", &[("*", 100)]),
        ..Default::default()
    });
    let enabled = with(LocalityLbSetting {
        enabled: Some(true),
        ..Default::default()
    });
    let tiers = LocalityPolicy::Tiers(TierWeights::default());
    let cases = [
        (&failover, true, true, false),
        (&failover, false, false, false),
        (&priority, true, true, true),
        (&priority, false, false, false),
        (&spread, false, true, false),
        (&enabled, true, false, false),
        (&tiers, false, true, false),
    ];
    for (policy, outlier, weights, labels) in cases {
        assert_eq!(
            uses_locality_weights(policy, outlier),
            weights,
            "{policy:?} {outlier}"
        );
        assert_eq!(
            needs_labels(policy, outlier),
            labels,
            "{policy:?} {outlier}"
        );
    }
}
