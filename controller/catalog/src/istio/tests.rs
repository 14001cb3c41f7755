use super::*;
use meshfleet_api::fixtures::{self, distribute, failover};

fn errors(lb: &api::LocalityLbSetting, has_outlier: bool) -> Vec<(String, String)> {
    check_locality_lb(lb, has_outlier).errors
}

fn finding(field: &str, message: &str) -> (String, String) {
    (format!("{LOCALITY_LB}{field}"), message.to_owned())
}

fn rule(namespace: &str, name: &str, host: &str, export_to: &[&str]) -> Arc<DestinationRule> {
    Arc::new(fixtures::rule(namespace, name, host).export_to(export_to).0)
}

#[test]
fn rules_are_found_as_istio_finds_them_for_a_client_of_another_namespace() {
    let rules = [
        // Exact names beat wildcards; of two exact ones the first by name wins.
        rule("team-a", "api-short", "api", &[]),
        rule("team-a", "api-global", "api.team-a.global", &["*"]),
        rule(
            "team-a",
            "everything-in-a",
            "*.team-a.svc.cluster.local",
            &[],
        ),
        // Shown only to team-b's own clients: the root namespace's rule applies instead.
        rule("team-b", "private", "api.team-b.global", &["."]),
        // The longer wildcard of the root namespace wins over `*`.
        rule(ROOT_NAMESPACE, "global", "*.global", &[]),
        rule(ROOT_NAMESPACE, "mesh", "*", &[]),
        // A rule in a third namespace is for that namespace's clients only.
        rule("team-z", "foreign", "db.team-c.global", &[]),
        // A host with dots is a full name: `api.team-b` names no service.
        rule("team-b", "not-fqdn", "api.team-b", &[]),
    ];
    let exported: BTreeSet<(String, String)> = [
        ("team-a", "api"),
        ("team-a", "web"),
        ("team-b", "api"),
        ("team-c", "db"),
    ]
    .iter()
    .map(|(ns, name)| ((*ns).to_owned(), (*name).to_owned()))
    .collect();
    let mut problems = Vec::new();
    let found = Rules::new(&rules, &exported, &mut problems);
    let chosen = |ns: &str, name: &str| {
        found
            .get(ns, name)
            .map(|r| format!("{}/{}", r.metadata.namespace_or_default(), r.metadata.name))
    };
    assert_eq!(
        chosen("team-a", "api").as_deref(),
        Some("team-a/api-global")
    );
    assert_eq!(
        chosen("team-a", "web").as_deref(),
        Some("team-a/everything-in-a")
    );
    assert_eq!(
        chosen("team-b", "api").as_deref(),
        Some("istio-system/global")
    );
    assert_eq!(
        chosen("team-c", "db").as_deref(),
        Some("istio-system/global")
    );
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "DestinationRule team-a/api-short spec.host: team-a/api also has DestinationRule team-a/api-global, which wins; ignored",
            "DestinationRule team-b/private spec.host: its exportTo (.) shows it only to some namespaces' clients; meshfleet serves every client the same configuration, so it is not applied to team-b/api (put it in namespace team-b or istio-system, exported to every namespace)",
            "DestinationRule team-z/foreign spec.host: in Istio it applies only to clients in namespace team-z; meshfleet serves every client the same configuration, so it is not applied to team-c/db (put it in namespace team-c or istio-system, exported to every namespace)",
        ]
    );
}

#[test]
fn valid_settings_pass() {
    let settings = [
        api::LocalityLbSetting {
            distribute: vec![
                distribute(
                    "us-east/us-east-1a/*",
                    &[("us-east/us-east-1a/*", 80), ("us-east/us-east-1b/*", 20)],
                ),
                distribute("us-east/*", &[("us-east/*", 90), ("us-west/*", 10)]),
            ],
            ..Default::default()
        },
        api::LocalityLbSetting {
            failover: vec![
                failover("us-east", "us-west"),
                failover("us-west", "us-east"),
            ],
            failover_priority: vec!["topology.istio.io/network".to_owned()],
            ..Default::default()
        },
        api::LocalityLbSetting {
            failover_priority: vec![
                "topology.kubernetes.io/region".to_owned(),
                "topology.kubernetes.io/zone".to_owned(),
            ],
            ..Default::default()
        },
        api::LocalityLbSetting {
            enabled: Some(false),
            ..Default::default()
        },
    ];
    for setting in settings {
        assert_eq!(
            check_locality_lb(&setting, true),
            Check::default(),
            "{setting:?}"
        );
    }
}

#[test]
fn invalid_settings_fail_as_in_istio() {
    let both = api::LocalityLbSetting {
        distribute: vec![distribute("a/*", &[("a/*", 100)])],
        failover: vec![failover("a", "b")],
        ..Default::default()
    };
    assert_eq!(
        errors(&both, true),
        [finding(
            "",
            "can not simultaneously specify 'distribute' and 'failover'"
        )]
    );

    let topology_priority = api::LocalityLbSetting {
        failover: vec![failover("a", "b")],
        failover_priority: vec!["app".to_owned(), "topology.kubernetes.io/zone".to_owned()],
        ..Default::default()
    };
    assert_eq!(
        errors(&topology_priority, true),
        [finding(
            ".failoverPriority[1]",
            "can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone' in 'failoverPriority'"
        )]
    );

    type Case<'a> = (&'a [(&'a str, u32)], (String, String));
    let cases: [Case<'_>; 4] = [
        (
            &[("a/*", 0), ("b/*", 100)],
            finding(
                ".distribute[0].to[\"a/*\"]",
                "locality weight must be in range [1, 100]",
            ),
        ),
        (
            &[("a/*", 101)],
            finding(
                ".distribute[0].to[\"a/*\"]",
                "locality weight must be in range [1, 100]",
            ),
        ),
        (
            &[("a/*", 50), ("b/*", 49)],
            finding(".distribute[0].to", "total locality weight 99 != 100"),
        ),
        (
            &[("a/*/x", 100)],
            finding(
                ".distribute[0].to[\"a/*/x\"]",
                "locality a/*/x wildcard '*' number can not exceed 1 and must be in the end",
            ),
        ),
    ];
    for (to, want) in cases {
        let lb = api::LocalityLbSetting {
            distribute: vec![distribute("a/*", to)],
            ..Default::default()
        };
        assert_eq!(errors(&lb, true), [want], "{to:?}");
    }

    let failovers = api::LocalityLbSetting {
        failover: vec![failover("a", "a"), failover("a/z", "b"), failover("*", "b")],
        ..Default::default()
    };
    assert_eq!(
        errors(&failovers, true),
        [
            finding(
                ".failover[0]",
                "locality lb failover settings must specify different regions"
            ),
            finding(".failover[1]", "locality lb failover only specify region"),
            finding(
                ".failover[2]",
                "locality lb failover region should not contain '*' wildcard"
            ),
        ]
    );
}

#[test]
fn repeated_sources_fail_in_the_written_order() {
    let froms = |froms: &[&str]| check_sources(froms).map_err(|(i, error)| (i, error.to_string()));
    let overlap = |i: usize, l: &str| {
        Err((
            i,
            format!("locality {l} overlap with previous specified ones"),
        ))
    };
    assert_eq!(froms(&["us-east/*", "us-west/*", "eu/a/b"]), Ok(()));
    assert_eq!(froms(&["us-east", "us-east"]), overlap(1, "us-east"));
    assert_eq!(
        froms(&["us-east/*", "us-east/us-east-1a"]),
        overlap(1, "us-east/us-east-1a")
    );
    assert_eq!(
        froms(&["us-east", "us-east/us-east-1a/*"]),
        overlap(1, "us-east/us-east-1a/*")
    );
    assert_eq!(froms(&["*", "us-east"]), overlap(1, "us-east"));
    assert_eq!(froms(&["r/z/s", "r/z"]), overlap(1, "r/z"));
    // Istio accepts the specific one first.
    assert_eq!(froms(&["r/z/s", "r/z/*"]), Ok(()));
    assert_eq!(froms(&["us-east/us-east-1a", "us-east/*"]), Ok(()));
    assert_eq!(
        froms(&["us-east//x"]),
        Err((
            0,
            "locality us-east//x must not contain empty region/zone/subzone info".to_owned()
        ))
    );
}

#[test]
fn overlapping_localities() {
    assert!(overlap("us-east/*", "us-east/us-east-1a/*"));
    assert!(overlap("us-east", "us-east/us-east-1a"));
    assert!(overlap("*", "eu/x"));
    assert!(!overlap("us-east/*", "us-west/*"));
    assert!(!overlap("us-east/a/*", "us-east/b/*"));
}

#[test]
fn failover_without_outlier_detection_is_a_warning() {
    let lb = api::LocalityLbSetting {
        failover: vec![failover("a", "b")],
        ..Default::default()
    };
    assert_eq!(
        check_locality_lb(&lb, false),
        Check {
            errors: vec![],
            warnings: vec![finding(
                "",
                "outlier detection policy must be provided for failover; without it there is no failover"
            )],
        }
    );
}

#[test]
fn outlier_detection_validation_and_mapping() {
    let duration = |s: &str| Some(api::Duration::parse(s).unwrap());
    let bad = api::OutlierDetection {
        interval: duration("0.5ms"),
        base_ejection_time: duration("1500us"),
        max_ejection_percent: Some(101),
        min_health_percent: Some(-1),
        ..Default::default()
    };
    let field = |name: &str| format!("{OUTLIER}.{name}");
    assert_eq!(
        check_outlier(&bad),
        [
            (
                field("interval"),
                "duration must be greater than 1ms".to_owned()
            ),
            (
                field("baseEjectionTime"),
                "only durations to ms precision are supported".to_owned()
            ),
            (
                field("maxEjectionPercent"),
                "percentage 101 is not in range 0..100".to_owned()
            ),
            (
                field("minHealthPercent"),
                "percentage -1 is not in range 0..100".to_owned()
            ),
        ]
    );
    let full = api::OutlierDetection {
        consecutive_5xx_errors: Some(0),
        consecutive_gateway_errors: Some(2),
        consecutive_local_origin_failures: None,
        split_external_local_origin_errors: true,
        interval: duration("1m"),
        base_ejection_time: duration("100ms"),
        max_ejection_percent: Some(100),
        min_health_percent: Some(50),
    };
    assert_eq!(check_outlier(&full), []);
    assert_eq!(
        outlier_detection(&full),
        model::OutlierDetection {
            consecutive_5xx: Some(0),
            consecutive_gateway_errors: Some(2),
            consecutive_local_origin_failures: Some(5),
            interval_ms: 60_000,
            base_ejection_time_ms: 100,
            max_ejection_percent: 100,
            min_health_percent: 50,
        }
    );
    assert_eq!(
        outlier_detection(&api::OutlierDetection::default()),
        model::OutlierDetection {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: None,
            consecutive_local_origin_failures: None,
            interval_ms: 10_000,
            base_ejection_time_ms: 30_000,
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    );
}

#[test]
fn an_invalid_outlier_detection_is_ignored_and_the_setting_kept() {
    let rule = fixtures::rule("team-a", "api", "api")
        .outlier(api::OutlierDetection {
            max_ejection_percent: Some(200),
            ..Default::default()
        })
        .locality_lb(api::LocalityLbSetting {
            failover: vec![failover("a", "b")],
            ..Default::default()
        })
        .0;
    let mut problems = Vec::new();
    let policy = rule_policy(&rule, &mut problems);
    assert_eq!(
        policy,
        RulePolicy {
            setting: Some(model::LocalityLbSetting {
                failover: vec![model::Failover {
                    from: "a".to_owned(),
                    to: "b".to_owned()
                }],
                ..Default::default()
            }),
            outlier: None,
        }
    );
    assert_eq!(
        problems,
        vec![Problem::new(
            Source::object("DestinationRule", "team-a", "api"),
            "percentage 200 is not in range 0..100; outlierDetection ignored"
        )
        .at(format!("{OUTLIER}.maxEjectionPercent")),
        Problem::new(
            Source::object("DestinationRule", "team-a", "api"),
            "outlier detection policy must be provided for failover; without it there is no failover"
        )
        .at(LOCALITY_LB)]
    );
}
