use super::*;

#[test]
fn one_global_service_per_namespace_and_name_across_clusters() {
    let index = with_fleet(vec![
        service("team-a", "api")
            .global()
            .port("http", 80)
            .port("rpc", 9090)
            .app_protocol("grpc")
            .into(),
        service("team-a", "api")
            .port("http", 80)
            .observed_in("east-1")
            .into(),
        service("team-a", "api")
            .port("http", 80)
            .observed_in("west-1")
            .into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("10.1.0.2")
            .endpoint("10.1.0.1")
            .port("http", 8080)
            .port("rpc", 9000)
            .into(),
        slice("team-a", "api-w1", "api", "west-1")
            .endpoint("10.2.0.1")
            .port("http", 8081)
            .into(),
        // Same name in another namespace: another service, and not exported.
        service("team-b", "api").port("http", 80).into(),
        slice("team-b", "api-e1", "api", "east-1")
            .endpoint("10.1.9.9")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(catalog.problems, vec![]);
    assert_eq!(
        *only_service(&catalog),
        CatalogService {
            service: Arc::new(global_api(vec![
                port(
                    "http",
                    80,
                    Protocol::Http,
                    vec![
                        ep("east-1", "10.1.0.1", 8080),
                        ep("east-1", "10.1.0.2", 8080),
                        ep("west-1", "10.2.0.1", 8081)
                    ]
                ),
                port(
                    "rpc",
                    9090,
                    Protocol::Grpc,
                    vec![
                        ep("east-1", "10.1.0.1", 9000),
                        ep("east-1", "10.1.0.2", 9000)
                    ]
                ),
            ])),
            exported_by: BTreeSet::from([ExportReason::Annotation]),
            clusters: vec!["east-1".to_owned(), "west-1".to_owned()],
            policy_source: PolicySource::Default,
        }
    );
}

#[test]
fn a_service_export_exports_and_one_without_a_service_is_reported() {
    let index = with_fleet(vec![
        service("team-a", "api").port("http", 80).into(),
        service_export("team-a", "api"),
        service_export("team-a", "ghost"),
        // An annotation on an observed copy exports too.
        service("team-a", "web")
            .port("http", 80)
            .observed_in("east-2")
            .global()
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let exported: Vec<(&str, &BTreeSet<ExportReason>)> = catalog
        .services
        .iter()
        .map(|s| (s.service.host.as_str(), &s.exported_by))
        .collect();
    assert_eq!(
        exported,
        [
            (
                "api.team-a.global",
                &BTreeSet::from([ExportReason::ServiceExport])
            ),
            (
                "web.team-a.global",
                &BTreeSet::from([ExportReason::Annotation])
            ),
        ]
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "ServiceExport team-a/ghost",
            None,
            "no Service of that namespace and name; nothing exported"
        )]
    );
}

#[test]
fn not_ready_endpoints_are_kept_and_marked() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("10.1.0.1")
            .endpoint_ready("10.1.0.2", false)
            .endpoint_ready("10.1.0.3", true)
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let service = only_service(&catalog);
    assert_eq!(
        service.service.ports[0].endpoints,
        vec![
            ep("east-1", "10.1.0.1", 8080),
            Endpoint {
                ready: false,
                ..ep("east-1", "10.1.0.2", 8080)
            },
            ep("east-1", "10.1.0.3", 8080),
        ]
    );
    assert_eq!(
        (service.ready_endpoint_count(), service.endpoint_count()),
        (2, 3)
    );
}

#[test]
fn weight_annotation_on_the_slice() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-e1", "api", "east-1")
            .annotate(api::ANNOTATION_WEIGHT, "5")
            .endpoint("10.1.0.1")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-e2", "api", "east-2")
            .annotate(api::ANNOTATION_WEIGHT, "0")
            .endpoint("10.1.1.1")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![
            Endpoint {
                weight: 5,
                ..ep("east-1", "10.1.0.1", 8080)
            },
            ep("east-2", "10.1.1.1", 8080)
        ]
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "EndpointSlice team-a/api-e2 (cluster east-2)",
            Some("metadata.annotations[\"meshfleet.io/weight\"]"),
            "weight \"0\" is not an integer >= 1; using 1"
        )]
    );
}

#[test]
fn endpoints_carry_the_gateway_of_their_network() {
    let index = index_of(vec![
        cluster("east-1")
            .region("us-east")
            .zone("a")
            .network("n1")
            .into(),
        cluster("east-2")
            .region("us-east")
            .zone("b")
            .network("n1")
            .gateway("10.0.0.2", 15443)
            .into(),
        cluster("east-3")
            .region("us-east")
            .zone("c")
            .network("n1")
            .gateway("10.0.0.3", 15443)
            .into(),
        cluster("west-1")
            .region("us-west")
            .zone("a")
            .network("n2")
            .into(),
        cluster("west-2")
            .region("us-west")
            .zone("b")
            .network("n3")
            .annotate(api::ANNOTATION_EAST_WEST_GATEWAY, "gw:none")
            .into(),
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "s1", "api", "east-1")
            .endpoint("10.1.0.1")
            .port("http", 8080)
            .into(),
        slice("team-a", "s2", "api", "west-1")
            .endpoint("10.2.0.1")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let gateways: Vec<(&str, Option<&Gateway>)> = only_service(&catalog).service.ports[0]
        .endpoints
        .iter()
        .map(|e| (&*e.cluster, e.gateway.as_deref()))
        .collect();
    // n1's gateway is east-2's, the first cluster of n1 (by name) that has one.
    assert_eq!(
        gateways,
        [
            (
                "east-1",
                Some(&Gateway {
                    address: "10.0.0.2".to_owned(),
                    port: 15443,
                    ..Default::default()
                })
            ),
            ("west-1", None)
        ]
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "Cluster west-2",
            Some("metadata.annotations[\"meshfleet.io/east-west-gateway\"]"),
            "\"gw:none\": port \"none\" is not in 1..=65535; no east-west gateway"
        )]
    );
}

#[test]
fn addresses_envoy_cannot_use_are_reported_and_skipped() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("not-an-ip")
            .endpoint("2001:db8::1")
            .endpoint("10.1.0.1")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![ep("east-1", "10.1.0.1", 8080)]
    );
    let source = "EndpointSlice team-a/api-e1 (cluster east-1)";
    assert_eq!(
        catalog.problems,
        vec![
            problem(
                source,
                Some("endpoints[0].addresses[0]"),
                "address \"not-an-ip\" is not an IP address; endpoint skipped"
            ),
            problem(
                source,
                Some("endpoints[1].addresses[0]"),
                "address \"2001:db8::1\" is not IPv4; endpoint skipped"
            ),
        ]
    );
}

#[test]
fn an_endpoint_is_placed_in_the_zone_of_its_node() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint_in_zone("10.1.0.1", "us-east-1c")
            .endpoint_in_zone("10.1.0.2", "us-east-1a")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let mut moved = ep("east-1", "10.1.0.1", 8080);
    Arc::make_mut(&mut moved.locality).zone = "us-east-1c".to_owned();
    let mut labels = (*moved.labels).clone();
    labels.insert(
        "topology.kubernetes.io/zone".to_owned(),
        "us-east-1c".to_owned(),
    );
    moved.labels = Arc::new(labels);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![ep("east-1", "10.1.0.2", 8080), moved]
    );
    assert_eq!(catalog.problems, vec![]);
}

#[test]
fn slices_that_cannot_be_placed_are_reported_and_skipped() {
    let index = with_fleet(vec![
        cluster("nowhere-1").into(),
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-mars", "api", "mars-1")
            .endpoint("10.9.0.1")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-nowhere", "api", "nowhere-1")
            .endpoint("10.9.0.2")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-orphan", "api", "")
            .endpoint("10.9.0.3")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("10.1.0.1")
            .endpoint_without_address()
            .port("http", 8080)
            .into(),
        slice("team-a", "api-dns", "api", "east-1")
            .address_type("FQDN")
            .endpoint("api.example.com")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![ep("east-1", "10.1.0.1", 8080)]
    );
    let cluster_label = Some("metadata.labels[\"multicluster.kubernetes.io/source-cluster\"]");
    assert_eq!(
        catalog.problems,
        vec![
            problem(
                "EndpointSlice team-a/api-e1 (cluster east-1)",
                Some("endpoints[1].addresses"),
                "endpoint has no addresses; skipped"
            ),
            problem(
                "EndpointSlice team-a/api-mars (cluster mars-1)",
                cluster_label,
                "unknown cluster \"mars-1\"; slice skipped"
            ),
            problem(
                "EndpointSlice team-a/api-nowhere (cluster nowhere-1)",
                None,
                "Cluster nowhere-1 has no spec.region; slice skipped"
            ),
            problem(
                "EndpointSlice team-a/api-orphan",
                cluster_label,
                "no source cluster; slice skipped"
            ),
        ]
    );
}

#[test]
fn without_a_template_ports_are_the_union_of_the_observed_copies() {
    let index = with_fleet(vec![
        service("team-a", "api")
            .global()
            .port("http", 80)
            .port("dns", 53)
            .udp()
            .observed_in("east-1")
            .into(),
        service("team-a", "api")
            .port("http", 8000)
            .port("metrics", 9100)
            .observed_in("west-1")
            .into(),
        // One unnamed port in the slice serves the single port of a single-port service.
        service("team-a", "solo").global().port("web", 80).into(),
        slice("team-a", "solo-1", "solo", "east-1")
            .endpoint("10.1.0.1")
            .port("", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let ports: Vec<(&str, u32)> = catalog.services[0]
        .service
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.port))
        .collect();
    assert_eq!(ports, [("http", 80), ("metrics", 9100)]);
    assert_eq!(
        catalog.services[1].service.ports[0].endpoints,
        vec![Endpoint {
            labels: Arc::new(
                ep("east-1", "", 0)
                    .labels
                    .iter()
                    .map(|(k, v)| (
                        k.clone(),
                        if v == "api" { "solo".into() } else { v.clone() }
                    ))
                    .collect()
            ),
            ..ep("east-1", "10.1.0.1", 8080)
        }]
    );
    assert_eq!(
        catalog.problems,
        vec![problem(
            "Service team-a/api (cluster west-1)",
            Some("spec.ports[0].port"),
            "port \"http\" is 8000 here but 80 in cluster east-1, which wins"
        )]
    );
}

#[test]
fn a_udp_slice_port_never_serves_a_tcp_service_port() {
    let index = with_fleet(vec![
        service("team-a", "api").global().port("", 80).into(),
        // One unnamed port, but UDP: not the service's.
        slice("team-a", "api-e1", "api", "east-1")
            .endpoint("10.1.0.1")
            .port("", 8053)
            .udp()
            .into(),
        // The same name, UDP and TCP: the TCP one serves.
        slice("team-a", "api-e2", "api", "east-2")
            .endpoint("10.1.1.1")
            .port("", 9053)
            .udp()
            .port("", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![ep("east-2", "10.1.1.1", 8080)]
    );
}

#[test]
fn an_endpoint_with_several_addresses_is_one_host_at_its_first() {
    let mut two = slice("team-a", "api-e1", "api", "east-1")
        .endpoint("10.1.0.1")
        .endpoint("10.1.0.2")
        .port("http", 8080)
        .0;
    two.endpoints[0].addresses.push("10.1.0.9".to_owned());
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        Object::EndpointSlice(Arc::new(two)),
    ]);
    let catalog = Catalog::build(&index);
    assert_eq!(
        only_service(&catalog).service.ports[0].endpoints,
        vec![
            ep("east-1", "10.1.0.1", 8080),
            ep("east-1", "10.1.0.2", 8080)
        ]
    );
    assert_eq!(catalog.problems, vec![]);
}

#[test]
fn a_dual_stack_pod_is_one_host_with_both_addresses() {
    // pod-a is dual-stack (in both slices), pod-b has IPv4 only, pod-c is in the IPv4 slice twice
    // (slices being rebalanced); pod-d is in another cluster with the same pod name.
    let index = with_fleet(vec![
        service("team-a", "api").global().port("http", 80).into(),
        slice("team-a", "api-v6", "api", "east-1")
            .address_type("IPv6")
            .endpoint_of_pod("fd00::1", "pod-a")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-v4", "api", "east-1")
            .endpoint_of_pod("10.1.0.1", "pod-a")
            .endpoint_of_pod("10.1.0.2", "pod-b")
            .endpoint_of_pod("10.1.0.3", "pod-c")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-v4-b", "api", "east-1")
            .endpoint_of_pod("10.1.0.3", "pod-c")
            .port("http", 8080)
            .into(),
        slice("team-a", "api-w", "api", "west-1")
            .endpoint_of_pod("10.2.0.1", "pod-a")
            .port("http", 8080)
            .into(),
    ]);
    let catalog = Catalog::build(&index);
    let endpoints = &only_service(&catalog).service.ports[0].endpoints;
    let hosts: Vec<(&str, &str, Vec<&str>)> = endpoints
        .iter()
        .map(|e| {
            (
                &*e.cluster,
                e.address.as_str(),
                e.additional_addresses.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ("east-1", "10.1.0.1", vec!["fd00::1"]),
            ("east-1", "10.1.0.2", vec![]),
            ("east-1", "10.1.0.3", vec![]),
            ("west-1", "10.2.0.1", vec![]),
        ]
    );
    assert_eq!(catalog.problems, vec![]);
}
