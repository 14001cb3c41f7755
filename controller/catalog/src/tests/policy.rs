use super::*;

#[test]
fn locality_weights_annotation() {
    let build = |value: &str| {
        Catalog::build(&with_fleet(vec![
            service("team-a", "api")
                .global()
                .port("http", 80)
                .annotate(ANNOTATION_LOCALITY_WEIGHTS, value)
                .into(),
        ]))
    };
    let catalog = build("subzone=80,zone=15,region=4,remote=1");
    let service = only_service(&catalog);
    assert_eq!(
        service.service.locality,
        LocalityPolicy::Tiers(TierWeights::new(Some(80), Some(15), Some(4), Some(1)))
    );
    assert_eq!(
        service.policy_source,
        PolicySource::Annotation {
            object: "Service team-a/api".to_owned()
        }
    );
    assert_eq!(catalog.problems, vec![]);

    for (value, message) in [
        (
            "local=98,remote=1",
            "weights sum to 99, not 100; using local=99,remote=1",
        ),
        (
            "local=99,galaxy=1",
            "unknown tier \"galaxy\" (expected subzone, zone, local, region or remote); using local=99,remote=1",
        ),
    ] {
        let catalog = build(value);
        let service = only_service(&catalog);
        assert_eq!(
            service.service.locality,
            LocalityPolicy::default(),
            "{value}"
        );
        assert_eq!(service.policy_source, PolicySource::Default);
        assert_eq!(
            catalog.problems,
            vec![problem(
                "Service team-a/api",
                Some("metadata.annotations[\"meshfleet.io/locality-weights\"]"),
                message
            )]
        );
    }
}

#[test]
fn locality_weights_from_an_observed_copy_when_the_template_has_none() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        service("team-a", "api")
            .port("http", 80)
            .observed_in("west-1")
            .annotate(ANNOTATION_LOCALITY_WEIGHTS, "zone=100")
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let service = only_service(&catalog);
    assert_eq!(
        service.service.locality,
        LocalityPolicy::Tiers(TierWeights::new(None, Some(100), None, None))
    );
    assert_eq!(
        service.policy_source,
        PolicySource::Annotation {
            object: "Service team-a/api (cluster west-1)".to_owned()
        }
    );
}

fn distribute_setting(to: &[(&str, u32)]) -> api::LocalityLbSetting {
    api::LocalityLbSetting {
        distribute: vec![distribute("us-east/*", to)],
        ..Default::default()
    }
}

#[test]
fn a_destination_rule_takes_precedence_over_the_annotation() {
    for host in [
        "api.team-a.global",
        "api.team-a.svc.clusterset.local",
        "api.team-a.svc.cluster.local",
        "api",
    ] {
        let index = with_fleet(vec![
            service("team-a", "api")
                .global()
                .port("http", 80)
                .annotate(ANNOTATION_LOCALITY_WEIGHTS, "zone=100")
                .into(),
            rule("team-a", "api-locality", host)
                .locality_lb(distribute_setting(&[("us-east/*", 80), ("us-west/*", 20)]))
                .into(),
        ]);
        let catalog = Catalog::build(&index);
        let service = only_service(&catalog);
        assert_eq!(
            service.service.locality,
            LocalityPolicy::Istio(LocalityLbSetting {
                enabled: None,
                distribute: vec![Distribute {
                    from: "us-east/*".to_owned(),
                    to: vec![("us-east/*".to_owned(), 80), ("us-west/*".to_owned(), 20)],
                }],
                failover: vec![],
                failover_priority: vec![],
            }),
            "{host}"
        );
        assert_eq!(
            service.service.outlier_detection, None,
            "Istio's policy without outlierDetection has none"
        );
        assert_eq!(
            service.policy_source,
            PolicySource::DestinationRule {
                namespace: "team-a".to_owned(),
                name: "api-locality".to_owned()
            }
        );
        assert_eq!(catalog.problems, vec![]);
    }
}

#[test]
fn a_short_host_resolves_in_the_rules_namespace_only() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        rule("team-b", "api", "api")
            .locality_lb(distribute_setting(&[("us-east/*", 100)]))
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(only_service(&catalog).policy_source, PolicySource::Default);
}

#[test]
fn the_rules_outlier_detection_is_mapped_with_istios_defaults() {
    let outlier = api::OutlierDetection {
        consecutive_gateway_errors: Some(3),
        interval: Some(api::Duration::parse("5s").unwrap()),
        ..Default::default()
    };
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        rule("team-a", "api", "api.team-a.global")
            .outlier(outlier)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let service = only_service(&catalog);
    // No localityLbSetting: tiers still apply, with the rule's outlier detection.
    assert_eq!(service.service.locality, LocalityPolicy::default());
    assert_eq!(
        service.service.outlier_detection,
        Some(OutlierDetection {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: Some(3),
            consecutive_local_origin_failures: None,
            interval_ms: 5_000,
            base_ejection_time_ms: 30_000,
            max_ejection_percent: 10,
            min_health_percent: 0,
        })
    );
}

#[test]
fn an_invalid_locality_setting_is_reported_and_ignored() {
    let index = with_fleet(vec![
        service("team-a", "api")
            .global()
            .port("http", 80)
            .annotate(ANNOTATION_LOCALITY_WEIGHTS, "zone=100")
            .into(),
        rule("team-a", "api", "api")
            .locality_lb(distribute_setting(&[("us-east/*", 80), ("us-west/*", 10)]))
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let service = only_service(&catalog);
    assert_eq!(
        service.service.locality,
        LocalityPolicy::Tiers(TierWeights::new(None, Some(100), None, None))
    );
    assert_eq!(
        service.service.outlier_detection,
        Some(OutlierDetection::default())
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "DestinationRule team-a/api",
            Some("spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to"),
            "total locality weight 90 != 100; localityLbSetting ignored"
        )]
    );
}

#[test]
fn overlapping_to_localities_are_a_warning_and_kept_in_order() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        rule("team-a", "api", "api")
            .locality_lb(distribute_setting(&[
                ("us-east/*", 60),
                ("us-east/us-east-1a/*", 40),
            ]))
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let LocalityPolicy::Istio(setting) = &only_service(&catalog).service.locality else {
        panic!()
    };
    assert_eq!(
        setting.distribute[0].to,
        vec![
            ("us-east/*".to_owned(), 60),
            ("us-east/us-east-1a/*".to_owned(), 40)
        ]
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "DestinationRule team-a/api",
            Some("spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to"),
            "localities \"us-east/*\" and \"us-east/us-east-1a/*\" overlap; kept in the written order"
        )]
    );
}

#[test]
fn of_two_rules_for_one_host_the_first_by_namespace_and_name_wins() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        rule("team-a", "z-rule", "api.team-a.global")
            .locality_lb(distribute_setting(&[("us-west/*", 100)]))
            .into(),
        rule("team-a", "a-rule", "api")
            .locality_lb(distribute_setting(&[("us-east/*", 100)]))
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).policy_source,
        PolicySource::DestinationRule {
            namespace: "team-a".to_owned(),
            name: "a-rule".to_owned()
        }
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "DestinationRule team-a/z-rule",
            Some("spec.host"),
            "team-a/api also has DestinationRule team-a/a-rule, which wins; ignored"
        )]
    );
}
