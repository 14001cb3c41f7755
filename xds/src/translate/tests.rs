//! Whole-resource tests of translation: each resource is decoded back and compared in full.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, CommonLbConfig, DiscoveryType, EdsClusterConfig, LbPolicy,
    common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::core::v3::{
    Address, Metadata, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{
    ApiListener, Listener, filter, listener_filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{
    Any, BoolValue, Duration, Struct, UInt32Value, Value, value,
};

use super::cluster::{HTTP_PROTOCOL_OPTIONS, outlier_detection};
use super::listener::http_connection_manager;
use super::*;
use crate::locality::to_proto;
use crate::model::{
    Endpoint, Gateway, Locality, LocalityLbSetting, LocalityPolicy, OutlierDetection, TierWeights,
};

const HOST: &str = "echo.demo.global";
const ALIAS: &str = "echo.demo.svc.clusterset.local";

fn port(port: u32, protocol: Protocol, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        name: format!("p{port}"),
        port,
        protocol,
        endpoints,
    }
}

fn service(ports: Vec<ServicePort>) -> GlobalService {
    GlobalService {
        name: "echo".to_owned(),
        namespace: "demo".to_owned(),
        host: HOST.to_owned(),
        aliases: vec![ALIAS.to_owned()],
        ports,
        locality: LocalityPolicy::default(),
        outlier_detection: Some(OutlierDetection::default()),
        dns: Default::default(),
    }
}

fn endpoint(ip: &str, locality: &str, network: &str) -> Endpoint {
    Endpoint {
        address: ip.to_owned(),
        additional_addresses: Box::default(),
        port: 8080,
        locality: Arc::new(Locality::parse(locality)),
        network: Arc::from(network),
        cluster: Arc::from("c1"),
        weight: 1,
        ready: true,
        gateway: Some(Arc::new(Gateway {
            address: format!("gw-{network}"),
            port: 15443,
            ..Default::default()
        })),
        labels: Default::default(),
    }
}

fn key(locality: &str) -> ClientKey {
    ClientKey {
        locality: Locality::parse(locality),
        listener_port: 15001,
        ..Default::default()
    }
}

fn decode<M: Message + Default>(resource: &Resource) -> M {
    M::decode(resource.body.to_vec().as_slice()).expect("resource decodes")
}

fn names(resources: &[Resource]) -> Vec<&str> {
    resources.iter().map(|r| r.name.as_str()).collect()
}

fn lb(ip: &str, port: u32, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: ip.to_owned(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        load_balancing_weight: Some(UInt32Value { value: weight }),
        ..Default::default()
    }
}

fn seconds(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

#[test]
fn http_cluster_is_eds_over_ads_with_locality_weights_and_outlier_detection() {
    let out = translate_service(
        &service(vec![port(80, Protocol::Http, vec![])]),
        &key("r1/z1"),
    );
    let name = "outbound|80||echo.demo.global";
    let expected = Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds.into())),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name.to_owned(),
        }),
        connect_timeout: seconds(1),
        lb_policy: LbPolicy::RoundRobin.into(),
        common_lb_config: Some(CommonLbConfig {
            healthy_panic_threshold: Some(Percent { value: 0.0 }),
            locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
                LocalityWeightedLbConfig {},
            )),
            // Ejections take effect at once, not merged over a second.
            update_merge_window: Some(Duration::default()),
            ..Default::default()
        }),
        outlier_detection: Some(outlier_detection(&OutlierDetection::default())),
        ..Default::default()
    };
    assert_eq!(names(&out.clusters), vec![name]);
    assert_eq!(out.clusters[0].type_url(), resource::CLUSTER);
    assert_eq!(decode::<Cluster>(&out.clusters[0]), expected);
}

#[test]
fn grpc_and_http2_clusters_speak_http2() {
    let svc = service(vec![
        port(80, Protocol::Http, vec![]),
        port(81, Protocol::Http2, vec![]),
        port(82, Protocol::Grpc, vec![]),
        port(83, Protocol::Tcp, vec![]),
    ]);
    let out = translate_service(&svc, &key("r1/z1"));
    let options: Vec<Vec<&str>> = out
        .clusters
        .iter()
        .map(|c| {
            decode::<Cluster>(c)
                .typed_extension_protocol_options
                .into_keys()
                .collect::<Vec<_>>()
        })
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    if k == HTTP_PROTOCOL_OPTIONS {
                        "h2"
                    } else {
                        "?"
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(options, vec![vec![], vec!["h2"], vec!["h2"], vec![]]);
    let grpc = decode::<Cluster>(&out.clusters[2]);
    let any = &grpc.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS];
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    );
}

#[test]
fn istio_disabled_without_outlier_detection_has_no_common_lb_config() {
    let mut svc = service(vec![port(80, Protocol::Http, vec![])]);
    svc.outlier_detection = None;
    svc.locality = LocalityPolicy::Istio(LocalityLbSetting {
        enabled: Some(false),
        ..Default::default()
    });
    let cluster = decode::<Cluster>(&translate_service(&svc, &key("r1/z1")).clusters[0]);
    assert_eq!(
        (cluster.common_lb_config, cluster.outlier_detection),
        (None, None)
    );
}

#[test]
fn load_assignment_is_weighted_for_the_client_and_crosses_networks_via_gateways() {
    let mut not_ready = endpoint("10.0.0.3", "us-east/us-east-1a", "east");
    not_ready.ready = false;
    let eps = vec![
        endpoint("10.0.0.1", "us-east/us-east-1a", "east"),
        endpoint("10.0.0.2", "us-east/us-east-1a", "east"),
        not_ready,
        endpoint("10.1.0.1", "us-west/us-west-2a", "west"),
        endpoint("10.1.0.2", "us-west/us-west-2a", "west"),
    ];
    let svc = service(vec![port(80, Protocol::Http, eps)]);
    let client = ClientKey {
        network: "east".to_owned(),
        ..key("us-east/us-east-1a")
    };
    let out = translate_service(&svc, &client);
    let expected = ClusterLoadAssignment {
        cluster_name: "outbound|80||echo.demo.global".to_owned(),
        endpoints: vec![
            LocalityLbEndpoints {
                locality: Some(to_proto(&Locality::parse("us-east/us-east-1a"))),
                lb_endpoints: vec![lb("10.0.0.1", 8080, 1), lb("10.0.0.2", 8080, 1)],
                load_balancing_weight: Some(UInt32Value { value: 990_000 }),
                ..Default::default()
            },
            LocalityLbEndpoints {
                locality: Some(to_proto(&Locality::parse("us-west/us-west-2a"))),
                lb_endpoints: vec![LbEndpoint {
                    metadata: Some(Metadata {
                        filter_metadata: [(
                            "envoy.transport_socket_match".to_owned(),
                            Struct {
                                fields: [(
                                    "tlsMode".to_owned(),
                                    Value {
                                        kind: Some(value::Kind::StringValue("istio".to_owned())),
                                    },
                                )]
                                .into(),
                            },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    ..lb("gw-west", 15443, 2)
                }],
                load_balancing_weight: Some(UInt32Value { value: 10_000 }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(out.load_assignments[0].type_url(), resource::ENDPOINT);
    assert_eq!(out.load_assignments[0].name, expected.cluster_name);
    assert_eq!(
        decode::<ClusterLoadAssignment>(&out.load_assignments[0]),
        expected
    );
}

#[test]
fn virtual_hosts_per_http_port_with_bare_names_on_port_80() {
    let svc = service(vec![
        port(8080, Protocol::Grpc, vec![]),
        port(9000, Protocol::Tcp, vec![]),
        port(80, Protocol::Http, vec![]),
    ]);
    let out = translate_service(&svc, &key("r1/z1"));
    let cluster = "outbound|80||echo.demo.global";
    let route = Route {
        name: "default".to_owned(),
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_owned())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_owned())),
            timeout: Some(Duration::default()),
            retry_policy: Some(super::route::retry_policy()),
            ..Default::default()
        })),
        ..Default::default()
    };
    let port_80 = VirtualHost {
        name: format!("{HOST}:80"),
        domains: vec![
            format!("{HOST}:80"),
            format!("{ALIAS}:80"),
            HOST.to_owned(),
            ALIAS.to_owned(),
        ],
        routes: vec![route],
        ..Default::default()
    };
    assert_eq!(out.virtual_hosts.len(), 2);
    assert_eq!(out.virtual_hosts[0], port_80);
    assert_eq!(out.virtual_hosts[1].name, format!("{HOST}:8080"));
    assert_eq!(
        out.virtual_hosts[1].domains,
        vec![format!("{HOST}:8080"), format!("{ALIAS}:8080")]
    );
    assert_eq!(
        names(&out.clusters),
        vec![
            "outbound|80||echo.demo.global",
            "outbound|8080||echo.demo.global",
            "outbound|9000||echo.demo.global"
        ]
    );
}

#[test]
fn without_port_80_the_lowest_http_port_gets_bare_names() {
    let svc = service(vec![
        port(9090, Protocol::Http, vec![]),
        port(70, Protocol::Tcp, vec![]),
        port(8080, Protocol::Http2, vec![]),
    ]);
    let out = translate_service(&svc, &key("r1/z1"));
    let domains: Vec<&[String]> = out
        .virtual_hosts
        .iter()
        .map(|v| v.domains.as_slice())
        .collect();
    assert_eq!(
        domains,
        vec![
            &[
                format!("{HOST}:8080"),
                format!("{ALIAS}:8080"),
                HOST.to_owned(),
                ALIAS.to_owned()
            ][..],
            &[format!("{HOST}:9090"), format!("{ALIAS}:9090")][..],
        ]
    );
}

#[test]
fn api_listeners_for_every_http_port_and_name() {
    let svc = service(vec![
        port(50051, Protocol::Grpc, vec![]),
        port(9000, Protocol::Tcp, vec![]),
    ]);
    let out = translate_service(&svc, &key("r1/z1"));
    let listener_names = vec![format!("{HOST}:50051"), format!("{ALIAS}:50051")];
    assert_eq!(names(&out.api_listeners), listener_names);
    assert_eq!(names(&out.api_routes), listener_names);

    let listener = decode::<Listener>(&out.api_listeners[1]);
    let hcm = http_connection_manager(&listener_names[1], &listener_names[1]);
    let expected = Listener {
        name: listener_names[1].clone(),
        api_listener: Some(ApiListener {
            api_listener: Some(to_any(&hcm)),
        }),
        ..Default::default()
    };
    assert_eq!(listener, expected);

    let routes = decode::<RouteConfiguration>(&out.api_routes[1]);
    assert_eq!(routes.name, listener_names[1]);
    assert_eq!(routes.virtual_hosts.len(), 1);
    assert_eq!(
        routes.virtual_hosts[0].domains,
        vec![listener_names[1].clone(), ALIAS.to_owned()]
    );
    assert_eq!(out.api_routes[1].type_url(), resource::ROUTE);
}

#[test]
fn tcp_ports_get_cluster_and_endpoints_only() {
    let out = translate_service(
        &service(vec![port(5432, Protocol::Tcp, vec![])]),
        &key("r1/z1"),
    );
    assert_eq!((out.clusters.len(), out.load_assignments.len()), (1, 1));
    assert!(
        out.virtual_hosts.is_empty() && out.api_listeners.is_empty() && out.api_routes.is_empty()
    );
}

#[test]
fn outbound_listener_is_http_on_the_client_port_with_rds_over_ads() {
    let mut client = key("r1/z1");
    client.listener_port = 15006;
    let resource = outbound_listener(&client);
    let listener = decode::<Listener>(&resource);
    let expected = listener::outbound(15006);
    assert_eq!(
        (resource.name.as_str(), resource.type_url()),
        (OUTBOUND, resource::LISTENER)
    );
    assert_eq!(listener, expected);

    let Some(Address {
        address: Some(address::Address::SocketAddress(socket)),
    }) = &listener.address
    else {
        panic!("listener has a socket address");
    };
    assert_eq!(
        (socket.address.as_str(), socket.port_specifier.clone()),
        (
            "0.0.0.0",
            Some(socket_address::PortSpecifier::PortValue(15006))
        )
    );
    let filter = &listener.filter_chains[0].filters[0];
    assert_eq!(filter.name, "envoy.filters.network.http_connection_manager");
    let Some(filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
        panic!("filter has a typed config");
    };
    assert_eq!(any, &to_any(&http_connection_manager(OUTBOUND, OUTBOUND)));
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
}

#[test]
fn outbound_listener_hands_captured_connections_to_their_original_destination() {
    let listener = decode::<Listener>(&outbound_listener(&key("r1/z1")));
    assert_eq!(listener.use_original_dst, Some(BoolValue { value: true }));
    let filter = &listener.listener_filters[0];
    assert_eq!(filter.name, "envoy.filters.listener.original_dst");
    let Some(listener_filter::ConfigType::TypedConfig(any)) = &filter.config_type else {
        panic!("original_dst has a typed config");
    };
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
    );
}

fn with_vips(mut svc: GlobalService, v4: Option<&str>, v6: Option<&str>) -> GlobalService {
    svc.dns.vip = v4.map(|ip| ip.parse().unwrap());
    svc.dns.vip6 = v6.map(|ip| ip.parse().unwrap());
    svc
}

fn filter_config(listener: &Listener) -> &Any {
    let Some(filter::ConfigType::TypedConfig(any)) =
        &listener.filter_chains[0].filters[0].config_type
    else {
        panic!("filter has a typed config");
    };
    any
}

fn socket(addr: &Option<Address>) -> (String, u32) {
    let Some(Address {
        address: Some(address::Address::SocketAddress(s)),
    }) = addr
    else {
        panic!("a socket address");
    };
    let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
        panic!("a port");
    };
    (s.address.clone(), port)
}

#[test]
fn a_virtual_ip_gets_a_listener_per_port_tcp_proxied_or_routed() {
    let svc = with_vips(
        service(vec![
            port(80, Protocol::Http, vec![]),
            port(5432, Protocol::Tcp, vec![]),
        ]),
        Some("240.240.0.7"),
        Some("2001:2::7"),
    );
    let out = translate_shared(&svc);
    assert_eq!(
        names(&out.service_listeners),
        ["240.240.0.7_80", "240.240.0.7_5432"]
    );
    assert_eq!(
        names(&out.bound_service_listeners),
        names(&out.service_listeners)
    );

    let http = decode::<Listener>(&out.service_listeners[0]);
    assert_eq!(socket(&http.address), ("240.240.0.7".to_owned(), 80));
    assert_eq!(
        socket(&http.additional_addresses[0].address),
        ("2001:2::7".to_owned(), 80)
    );
    assert_eq!(http.bind_to_port, Some(BoolValue { value: false }));
    assert_eq!(http.freebind, None);
    assert_eq!(http.traffic_direction, TrafficDirection::Outbound as i32);
    assert_eq!(
        filter_config(&http),
        &to_any(&http_connection_manager(
            "outbound_240.240.0.7_80",
            OUTBOUND
        ))
    );

    let tcp = decode::<Listener>(&out.service_listeners[1]);
    assert_eq!(socket(&tcp.address), ("240.240.0.7".to_owned(), 5432));
    let proxy = TcpProxy::decode(&*filter_config(&tcp).value).unwrap();
    assert_eq!(
        proxy.cluster_specifier,
        Some(tcp_proxy::ClusterSpecifier::Cluster(
            "outbound|5432||echo.demo.global".to_owned()
        ))
    );

    let bound = decode::<Listener>(&out.bound_service_listeners[1]);
    assert_eq!(bound.bind_to_port, None, "binds (Envoy's default)");
    assert_eq!(bound.freebind, Some(BoolValue { value: true }));
    assert_eq!(
        Listener {
            bind_to_port: None,
            freebind: None,
            ..bound
        },
        Listener {
            bind_to_port: None,
            ..tcp
        },
        "otherwise the same listener"
    );

    // The route answers requests to the virtual IPs as to the names.
    let domains = &out.virtual_hosts[0].domains;
    for d in [
        "240.240.0.7:80",
        "240.240.0.7",
        "[2001:2::7]:80",
        "[2001:2::7]",
    ] {
        assert!(domains.iter().any(|x| x == d), "{d} in {domains:?}");
    }
    assert!(is_service_listener("240.240.0.7_80"));
    assert!(is_service_listener("2001:2::7_80"));
    assert!(!is_service_listener("echo.demo.global:80"));
    assert!(!is_service_listener(OUTBOUND));
}

#[test]
fn an_ipv6_only_or_headless_service_and_one_without_a_vip() {
    let v6 = with_vips(
        service(vec![port(80, Protocol::Http, vec![])]),
        None,
        Some("2001:2::9"),
    );
    let out = translate_shared(&v6);
    assert_eq!(names(&out.service_listeners), ["2001:2::9_80"]);
    let listener = decode::<Listener>(&out.service_listeners[0]);
    assert_eq!(socket(&listener.address), ("2001:2::9".to_owned(), 80));
    assert!(listener.additional_addresses.is_empty());

    let mut headless = with_vips(
        service(vec![port(80, Protocol::Http, vec![])]),
        Some("240.240.0.9"),
        None,
    );
    headless.dns.headless = true;
    assert!(translate_shared(&headless).service_listeners.is_empty());
    let none = service(vec![port(80, Protocol::Http, vec![])]);
    assert!(translate_shared(&none).service_listeners.is_empty());
}

#[test]
fn the_key_chooses_bound_or_handed_off_listeners() {
    let svc = with_vips(
        service(vec![port(5432, Protocol::Tcp, vec![])]),
        Some("240.240.0.7"),
        None,
    );
    let mut k = key("r1/z1");
    let handed = translate_service(&svc, &k).service_listeners;
    k.bind_vips = true;
    let bound = translate_service(&svc, &k).service_listeners;
    assert_eq!(decode::<Listener>(&handed[0]).freebind, None);
    assert_eq!(
        decode::<Listener>(&bound[0]).freebind,
        Some(BoolValue { value: true })
    );
}

#[test]
fn router_filter_has_a_typed_config() {
    let hcm = http_connection_manager(OUTBOUND, OUTBOUND);
    let router = &hcm.http_filters[0];
    assert_eq!(router.name, "envoy.filters.http.router");
    let Some(envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(any)) = &router.config_type else {
        panic!("router has a typed config");
    };
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    );
}

#[test]
fn outbound_route_sorts_virtual_hosts_and_drops_duplicate_domains() {
    let vhost = |name: &str, domains: &[&str]| VirtualHost {
        name: name.to_owned(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        ..Default::default()
    };
    let vhosts = [
        vhost("b:80", &["b:80", "shared"]),
        vhost("a:80", &["a:80", "shared"]),
        vhost("c:80", &["a:80"]),
    ];
    let resource = outbound_route(&vhosts);
    let expected = RouteConfiguration {
        name: OUTBOUND.to_owned(),
        virtual_hosts: vec![vhost("a:80", &["a:80", "shared"]), vhost("b:80", &["b:80"])],
        ..Default::default()
    };
    assert_eq!(
        (resource.name.as_str(), resource.type_url()),
        (OUTBOUND, resource::ROUTE)
    );
    assert_eq!(decode::<RouteConfiguration>(&resource), expected);
}

#[test]
fn alias_equal_to_host_is_listed_once() {
    let mut svc = service(vec![port(80, Protocol::Http, vec![])]);
    svc.aliases = vec![HOST.to_owned()];
    let out = translate_service(&svc, &key("r1/z1"));
    assert_eq!(
        out.virtual_hosts[0].domains,
        vec![format!("{HOST}:80"), HOST.to_owned()]
    );
    assert_eq!(names(&out.api_listeners), vec![format!("{HOST}:80")]);
}

#[test]
fn translation_is_deterministic() {
    let eps: Vec<Endpoint> = (0..50)
        .map(|i| {
            endpoint(
                &format!("10.0.{}.{}", i % 3, i),
                ["r1/z1", "r1/z2", "r2/z1"][i % 3],
                ["", "west"][i % 2],
            )
        })
        .collect();
    let mut svc = service(vec![
        port(80, Protocol::Http, eps.clone()),
        port(81, Protocol::Grpc, eps),
    ]);
    svc.locality = LocalityPolicy::Tiers(TierWeights {
        subzone: None,
        zone: Some(80),
        region: Some(15),
        remote: Some(5),
    });
    let first = translate_service(&svc, &key("r1/z1"));
    let second = translate_service(&svc, &key("r1/z1"));
    assert_eq!(first, second);
    let versions: Vec<&str> = first
        .load_assignments
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    let again: Vec<&str> = second
        .load_assignments
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    assert_eq!(versions, again);
    assert_eq!(
        outbound_route(&first.virtual_hosts),
        outbound_route(&second.virtual_hosts)
    );
}

/// A client with a verified identity reaches another network's gateway with Istio's mTLS; a
/// plaintext client gets the same cluster as before, and so do services without gateways.
#[test]
fn secure_clients_reach_gateways_with_istio_mtls() {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        UpstreamTlsContext, common_tls_context::ValidationContextType,
    };
    let eps = vec![
        endpoint("10.0.0.1", "us-east/us-east-1a", "east"),
        endpoint("10.1.0.1", "us-west/us-west-2a", "west"),
    ];
    let svc = service(vec![port(80, Protocol::Http, eps)]);
    let plain_key = ClientKey {
        network: "east".to_owned(),
        ..key("us-east/us-east-1a")
    };
    let secure_key = ClientKey {
        secure: true,
        ..plain_key.clone()
    };
    let plain = decode::<Cluster>(&translate_service(&svc, &plain_key).clusters[0]);
    assert!(plain.transport_socket_matches.is_empty());
    let secure = decode::<Cluster>(&translate_service(&svc, &secure_key).clusters[0]);
    assert_eq!(
        Cluster {
            transport_socket_matches: Vec::new(),
            ..secure.clone()
        },
        plain,
        "only the transport socket matches differ"
    );
    let [m] = secure.transport_socket_matches.as_slice() else {
        panic!("one match: {:?}", secure.transport_socket_matches);
    };
    let mode = &m.r#match.as_ref().unwrap().fields["tlsMode"];
    assert_eq!(
        mode.kind,
        Some(value::Kind::StringValue("istio".to_owned()))
    );
    let socket = m.transport_socket.as_ref().unwrap();
    assert_eq!(socket.name, "envoy.transport_sockets.tls");
    let Some(envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
        any,
    )) = &socket.config_type
    else {
        panic!("typed config");
    };
    let tls = UpstreamTlsContext::decode(any.value.as_slice()).unwrap();
    assert_eq!(tls.sni, "outbound_.80_._.echo.demo.global");
    let common = tls.common_tls_context.unwrap();
    assert_eq!(common.alpn_protocols, ["istio-peer-exchange", "istio"]);
    assert_eq!(common.tls_certificate_sds_secret_configs[0].name, "default");
    let Some(ValidationContextType::CombinedValidationContext(v)) = common.validation_context_type
    else {
        panic!("combined validation context");
    };
    assert_eq!(
        v.validation_context_sds_secret_config.unwrap().name,
        "ROOTCA"
    );

    // Without a gateway endpoint there is nothing to secure.
    let mut direct = endpoint("10.0.0.1", "us-east/us-east-1a", "east");
    direct.gateway = None;
    let local = service(vec![port(80, Protocol::Http, vec![direct])]);
    let out = translate_service(&local, &secure_key);
    assert!(
        decode::<Cluster>(&out.clusters[0])
            .transport_socket_matches
            .is_empty()
    );
}
