use std::collections::BTreeMap;

use super::fixtures::*;
use super::*;

fn parse(yaml: &str) -> Result<Object, DocumentError> {
    parse_document(&serde_norway::from_str(yaml).expect("test YAML parses")).map(without_raw)
}

fn invalid(field: Option<&str>, message: &str) -> Result<Object, DocumentError> {
    Err(DocumentError::Invalid {
        field: field.map(str::to_owned),
        message: message.to_owned(),
    })
}

#[test]
fn cluster_with_every_field() {
    let object = parse(
        r#"
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata:
  name: east-1
  annotations: {meshfleet.io/east-west-gateway: "ignored:1"}
  labels: null
spec:
  region: us-east
  zones: [us-east-1a, us-east-1b]
  subzone: rack-1
  provider: aws
  network: net-east
  eastWestGateway: {address: 10.0.0.1}
  taints: [{key: dedicated, effect: NoSchedule}]
  syncMode: Push
status:
  conditions: [{type: Ready, status: "True", reason: ClusterReady}]
  resourceSummary:
    allocatable: {cpu: "8", memory: 32Gi, pods: 110}
"#,
    )
    .unwrap();
    let Object::Cluster(cluster) = &object else {
        panic!("{object:?}")
    };
    let mut want = cluster_fixture_east();
    want.api_version = "cluster.karmada.io/v1alpha1".to_owned();
    want.spec.sync_mode = Some("Push".to_owned());
    assert_eq!(**cluster, want);
    assert!(!cluster.is_pull_mode());
    assert_eq!(cluster.zone(), Some("us-east-1a"));
    assert!(cluster.ready());
    assert_eq!(
        cluster.east_west_gateway(),
        Ok(Some(EastWestGateway {
            address: "10.0.0.1".to_owned(),
            port: 15443
        }))
    );
}

fn cluster_fixture_east() -> Cluster {
    let mut c = cluster("east-1")
        .region("us-east")
        .subzone("rack-1")
        .network("net-east")
        .gateway("10.0.0.1", 15443)
        .annotate(ANNOTATION_EAST_WEST_GATEWAY, "ignored:1")
        .0;
    c.spec.zones = vec!["us-east-1a".to_owned(), "us-east-1b".to_owned()];
    c.spec.provider = Some("aws".to_owned());
    c.spec.taints = vec![Taint {
        key: "dedicated".to_owned(),
        value: None,
        effect: "NoSchedule".to_owned(),
        time_added: None,
    }];
    c.status.conditions = vec![Condition {
        type_: "Ready".to_owned(),
        status: "True".to_owned(),
        reason: Some("ClusterReady".to_owned()),
        message: None,
        last_transition_time: None,
    }];
    c.status.resource_summary = Some(ResourceSummary {
        allocatable: BTreeMap::from([
            ("cpu".to_owned(), serde_json::json!("8")),
            ("memory".to_owned(), serde_json::json!("32Gi")),
            ("pods".to_owned(), serde_json::json!(110)),
        ]),
        allocated: BTreeMap::new(),
        allocating: BTreeMap::new(),
    });
    c
}

#[test]
fn east_west_gateway_from_annotation() {
    let object = parse(
        "apiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: west-1\n  annotations:\n    meshfleet.io/east-west-gateway: 192.0.2.10:8443\n",
    )
    .unwrap();
    let Object::Cluster(cluster) = object else {
        panic!()
    };
    assert_eq!(
        cluster.east_west_gateway(),
        Ok(Some(EastWestGateway {
            address: "192.0.2.10".to_owned(),
            port: 8443
        }))
    );
    assert!(!cluster.ready());
}

#[test]
fn east_west_gateway_is_an_ip_or_a_hostname_with_a_port_in_range() {
    let gateway = |spec: &str| {
        let yaml = format!(
            "apiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {{name: west-1}}\nspec:\n  eastWestGateway: {spec}\n"
        );
        let Object::Cluster(cluster) = parse(&yaml).unwrap() else {
            panic!()
        };
        cluster.east_west_gateway().map_err(|e| e.to_string())
    };
    let elb = gateway("{address: a1b2.elb.amazonaws.com}")
        .unwrap()
        .unwrap();
    assert_eq!(elb.hostname(), Some("a1b2.elb.amazonaws.com"));
    assert_eq!(elb.port, 15443);
    for bad in [
        "\"bad_name.example\"",
        "\"-lead.example\"",
        "\"a..b\"",
        "\"\"",
    ] {
        let err = gateway(&format!("{{address: {bad}}}")).unwrap_err();
        assert!(
            err.contains("is neither an IP address nor a hostname"),
            "{bad}: {err}"
        );
    }
    let long = format!("{{address: {}.example}}", "a".repeat(64));
    assert!(gateway(&long).is_err(), "a 64-byte label");
    assert_eq!(
        gateway("{address: 10.9.9.9, port: 0}"),
        Err("east-west gateway port 0 is not in 1..=65535".to_owned())
    );
    assert_eq!(
        gateway("{address: \"2001:db8::1\"}"),
        Ok(Some(EastWestGateway {
            address: "2001:db8::1".to_owned(),
            port: 15443
        }))
    );
    assert_eq!(
        gateway("{address: \"2001:db8::1\"}")
            .unwrap()
            .unwrap()
            .hostname(),
        None
    );
}

#[test]
fn service_and_slice() {
    let object = parse(
        r#"
apiVersion: v1
kind: Service
metadata: {name: api, namespace: team-a, annotations: {meshfleet.io/global: "true"}}
spec:
  type: ClusterIP
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc, port: 9090, targetPort: grpc, appProtocol: grpc, protocol: TCP}
"#,
    )
    .unwrap();
    let mut want = service("team-a", "api")
        .global()
        .port("http", 80)
        .port("grpc", 9090)
        .app_protocol("grpc")
        .0;
    want.spec.ports[0].target_port = Some(IntOrString::Int(8080));
    want.spec.ports[1].target_port = Some(IntOrString::String("grpc".to_owned()));
    want.spec.ports[1].protocol = Some("TCP".to_owned());
    assert_eq!(object, Object::Service(Arc::new(want)));

    let object = parse(
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-x1
  namespace: team-a
  labels: {kubernetes.io/service-name: api, multicluster.kubernetes.io/source-cluster: east-1}
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
- addresses: [10.1.0.2]
  conditions: {ready: false}
ports:
- {name: http, port: 8080, protocol: TCP}
"#,
    )
    .unwrap();
    let want = slice("team-a", "api-x1", "api", "east-1")
        .endpoint("10.1.0.1")
        .endpoint_ready("10.1.0.2", false)
        .port("http", 8080);
    let mut want = want.0;
    want.ports[0].protocol = Some("TCP".to_owned());
    assert_eq!(object, Object::EndpointSlice(Arc::new(want)));
}

#[test]
fn destination_rule_keeps_to_order_and_parses_durations() {
    let object = parse(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: api, namespace: team-a}
spec:
  host: api.team-a.global
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        distribute:
        - from: us-east/*
          to: {"us-west/*": 20, "us-east/*": 80}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1m
      baseEjectionTime: 100ms
      maxEjectionPercent: 50
"#,
    )
    .unwrap();
    let Object::DestinationRule(rule) = object else {
        panic!()
    };
    let policy = rule.spec.traffic_policy.as_ref().unwrap();
    assert_eq!(
        policy.load_balancer.as_ref().unwrap().locality_lb_setting,
        Some(LocalityLbSetting {
            enabled: Some(true),
            distribute: vec![distribute(
                "us-east/*",
                &[("us-west/*", 20), ("us-east/*", 80)]
            )],
            ..Default::default()
        })
    );
    assert_eq!(
        policy.outlier_detection,
        Some(OutlierDetection {
            consecutive_5xx_errors: Some(3),
            interval: Some(Duration(std::time::Duration::from_secs(60))),
            base_ejection_time: Some(Duration(std::time::Duration::from_millis(100))),
            max_ejection_percent: Some(50),
            ..Default::default()
        })
    );
}

#[test]
fn field_errors_carry_their_path() {
    assert_eq!(
        parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  ports:\n  - {port: x}\n"
        ),
        invalid(
            Some("spec.ports[0].port"),
            "invalid type: string \"x\", expected u32"
        )
    );
    assert_eq!(
        parse(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: a\n  trafficPolicy:\n    outlierDetection: {interval: 10}\n"
        ),
        invalid(
            Some("spec.trafficPolicy.outlierDetection.interval"),
            "invalid type: integer `10`, expected a string"
        )
    );
    assert_eq!(
        parse("kind: Service\nmetadata: {name: a}\n"),
        invalid(None, "missing field `apiVersion`")
    );
    assert_eq!(
        parse("apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n"),
        invalid(Some("metadata"), "missing field `name`")
    );
    assert_eq!(
        parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"\"}\n"),
        invalid(Some("metadata.name"), "must not be empty")
    );
    assert_eq!(
        parse("- a\n- b\n"),
        invalid(None, "invalid type: sequence, expected struct TypeMeta")
    );
}

#[test]
fn unknown_kinds_and_generic_documents() {
    // As in Karmada, any object is a template a policy can select: Karmada's own samples
    // (`samples/guestbook`), operators' kinds, kinds of the core group meshfleet never names.
    for yaml in [
        "apiVersion: webapp.my.domain/v1\nkind: Guestbook\nmetadata: {name: guestbook-sample}\nspec: {size: 2}\n",
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: f, namespace: jobs}\n",
        "apiVersion: v1\nkind: Event\nmetadata: {name: e}\n",
    ] {
        assert!(matches!(parse(yaml), Ok(Object::Generic(_))), "{yaml}");
    }
    // Only meshfleet's and Karmada's own groups have kinds that cannot be templates.
    assert_eq!(
        parse(
            "apiVersion: autoscaling.karmada.io/v1alpha1\nkind: FederatedHPA\nmetadata: {name: w}\n"
        ),
        Err(DocumentError::UnknownKind {
            api_version: "autoscaling.karmada.io/v1alpha1".to_owned(),
            kind: "FederatedHPA".to_owned()
        })
    );
    assert_eq!(
        parse("apiVersion: meshfleet.io/v1alpha1\nkind: Clustr\nmetadata: {name: w}\n"),
        Err(DocumentError::UnknownKind {
            api_version: "meshfleet.io/v1alpha1".to_owned(),
            kind: "Clustr".to_owned()
        })
    );
    let yaml = "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: team-a}\nspec: {placement: {}}\n";
    let Ok(Object::PropagationPolicy(policy)) = parse(yaml) else {
        panic!()
    };
    assert_eq!(policy.kind, "PropagationPolicy");
    assert!(!policy.is_cluster_scoped());
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: team-a}\nspec: {replicas: 2}\n";
    let Ok(Object::Generic(template)) = parse(yaml) else {
        panic!()
    };
    assert_eq!(
        template.raw,
        serde_norway::from_str::<serde_norway::Value>(yaml).unwrap()
    );
    assert!(matches!(
        parse("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"),
        Ok(Object::Generic(_))
    ));
}

#[test]
fn secret_errors_do_not_quote_values() {
    let result = parse(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, labels: {token: [\"hunter2\"]}}\ndata: {password: aHVudGVyMg==}\n",
    );
    assert_eq!(
        result,
        invalid(
            Some("metadata.labels.token"),
            "invalid type: sequence, expected a string"
        )
    );
    let result =
        parse("apiVersion: v1\nkind: Secret\nmetadata: {name: s, labels: {token: 12345}}\n");
    assert_eq!(
        result,
        invalid(
            Some("metadata.labels.token"),
            "invalid type: integer `<redacted>`, expected a string"
        )
    );
    let Ok(Object::Generic(secret)) = parse(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n",
    ) else {
        panic!()
    };
    assert!(!format!("{secret:?}").contains("aHVudGVyMg"));
}

#[test]
fn object_keys() {
    let key = |kind: &str, namespace: &str, name: &str, cluster: &str| ObjectKey {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        cluster: cluster.into(),
    };
    let template: Object = service("team-a", "api").into();
    let copy: Object = service("team-a", "api").observed_in("east-1").into();
    assert_eq!(template.key(), key("Service", "team-a", "api", ""));
    assert_eq!(copy.key(), key("Service", "team-a", "api", "east-1"));
    assert_eq!(
        copy.key().to_string(),
        "Service team-a/api (cluster east-1)"
    );
    let karmada =
        parse("apiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata: {name: c}\n")
            .unwrap();
    let ours = parse(
        "apiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {name: c, namespace: x}\n",
    )
    .unwrap();
    assert_eq!(karmada.key(), key("Cluster", "", "c", ""));
    assert_eq!(ours.key(), karmada.key());
    assert_eq!(karmada.key().to_string(), "Cluster c");
    let deployment = parse("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n").unwrap();
    assert_eq!(deployment.key(), key("Deployment.apps", "default", "d", ""));
    assert_eq!(deployment.key().to_string(), "Deployment default/d");
}
