use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::status::v3::{ClientConfig, ConfigStatus};
use prometheus_client::registry::Registry;
use tokio_stream::StreamExt;

use super::*;
use crate::translate::OUTBOUND;

#[tokio::test]
async fn unknown_type_is_tolerated() {
    let (_cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(
        "type.googleapis.com/envoy.service.runtime.v3.Runtime",
        &["rtds"],
    );
    c.expect_silence().await;
    assert_eq!(server.metrics().unknown_types(), 1);
    c.request(CLUSTER, &[]);
    c.recv_type(CLUSTER).await;
    let mut d = DeltaClient::connect(&server, east("envoy-d"));
    d.subscribe("type.googleapis.com/example.Unknown", &[]);
    d.expect_silence().await;
    assert_eq!(server.metrics().unknown_types(), 2);
    d.subscribe(CLUSTER, &[]);
    d.recv_type(CLUSTER).await;
}

#[tokio::test]
async fn syncz_reports_every_subscribed_client() {
    let (_cache, server) = server(two_services());
    let server = server.with_syncz(true);
    let meta = [(META_NETWORK, Kind::StringValue("net-a".into()))];
    let mut envoy = SotwClient::connect(&server, node("envoy-1", "us-east/us-east-1a/", &meta));
    envoy.request(CLUSTER, &[]);
    let (cds, _) = envoy.recv_type(CLUSTER).await;
    envoy.ack(&cds, &[]);
    envoy.request(LISTENER, &[]);
    envoy.recv_type(LISTENER).await;
    let mut istioctl = SotwClient::connect(
        &server,
        Node {
            id: "istioctl".into(),
            ..Default::default()
        },
    );
    istioctl.request(SYNCZ, &[]);
    let resp = istioctl.recv().await;
    assert_eq!(resp.type_url, SYNCZ);
    let identifier: serde_json::Value =
        serde_json::from_str(&resp.control_plane.as_ref().unwrap().identifier).unwrap();
    assert_eq!(identifier["ID"], "test-0");
    assert_eq!(resp.resources.len(), 1, "istioctl itself is not listed");
    assert_eq!(
        resp.resources[0].type_url,
        "type.googleapis.com/envoy.service.status.v3.ClientConfig"
    );
    let config = ClientConfig::decode(resp.resources[0].value.as_slice()).unwrap();
    let node = config.node.unwrap();
    assert_eq!(node.id, "envoy-1");
    assert!(node.metadata.unwrap().fields.contains_key(META_NETWORK));
    let by_type: BTreeMap<String, (String, i32)> = config
        .generic_xds_configs
        .iter()
        .map(|g| {
            (
                g.type_url.clone(),
                (g.version_info.clone(), g.config_status),
            )
        })
        .collect();
    assert_eq!(
        by_type[CLUSTER],
        (cds.version_info.clone(), ConfigStatus::Synced as i32)
    );
    assert_eq!(
        by_type[LISTENER].1,
        ConfigStatus::Stale as i32,
        "sent, not acknowledged"
    );
    assert_eq!(
        by_type[ENDPOINT],
        (String::new(), ConfigStatus::NotSent as i32)
    );
    assert_eq!(by_type.len(), 4);
    // Acknowledging the syncz response does not start a loop.
    istioctl.ack(&resp, &[]);
    istioctl.expect_silence().await;
}

#[tokio::test]
async fn syncz_reports_nacks_as_errors() {
    let (_cache, server) = server(two_services());
    let server = server.with_syncz(true);
    let mut envoy = SotwClient::connect(&server, east("envoy-1"));
    envoy.request(CLUSTER, &[]);
    let (cds, _) = envoy.recv_type(CLUSTER).await;
    envoy.nack(&cds, &[], "", "bad");
    envoy.expect_silence().await;
    let mut d = DeltaClient::connect(&server, Node::default());
    d.subscribe(SYNCZ, &[]);
    let resp = d.recv().await;
    let config = ClientConfig::decode(
        resp.resources[0]
            .resource
            .as_ref()
            .unwrap()
            .value
            .as_slice(),
    )
    .unwrap();
    let cds_config = config
        .generic_xds_configs
        .iter()
        .find(|g| g.type_url == CLUSTER)
        .unwrap();
    assert_eq!(cds_config.config_status, ConfigStatus::Error as i32);
    assert_eq!(cds_config.error_state.as_ref().unwrap().details, "bad");
}

#[tokio::test]
async fn syncz_is_refused_unless_allowed() {
    let (_cache, server) = server(two_services());
    let mut envoy = SotwClient::connect(&server, east("envoy-1"));
    envoy.request(CLUSTER, &[]);
    envoy.recv_type(CLUSTER).await;
    let mut istioctl = SotwClient::connect(&server, Node::default());
    istioctl.request(SYNCZ, &[]);
    let status = istioctl.recv_error().await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let mut d = DeltaClient::connect(&server, Node::default());
    d.subscribe(SYNCZ, &[]);
    let next = tokio::time::timeout(RECV_TIMEOUT, d.rx.next()).await;
    let status = next.unwrap().unwrap().expect_err("an error");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert_eq!(server.status().len(), 1, "the refused clients left");
}

#[tokio::test]
async fn invalid_listener_port_refuses_the_stream() {
    let (_cache, server) = server(two_services());
    let meta = [(META_LISTENER_PORT, Kind::StringValue("http".into()))];
    let mut c = SotwClient::connect(&server, node("envoy-1", "us-east/us-east-1a/", &meta));
    c.request(CLUSTER, &[]);
    let status = c.recv_error().await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains(META_LISTENER_PORT),
        "{}",
        status.message()
    );
    assert!(server.status().is_empty());
}

#[tokio::test]
async fn ended_stream_leaves_status_metrics_and_cache() {
    let (cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    c.recv_type(CLUSTER).await;
    assert_eq!(
        (server.status().len(), server.metrics().streams_open()),
        (1, 1)
    );
    drop(c);
    settle().await;
    assert_eq!(
        (server.status().len(), server.metrics().streams_open()),
        (0, 0)
    );
    cache.set_mesh(Mesh::default());
    assert_eq!(cache.key_count(), 0);
}

#[tokio::test]
async fn clients_rekey_when_failover_labels_appear() {
    let (cache, server) = server(two_services());
    let labels = Kind::StructValue(Struct {
        fields: [(
            "tier".to_owned(),
            Value {
                kind: Some(Kind::StringValue("gold".into())),
            },
        )]
        .into(),
    });
    let mut c = SotwClient::connect(
        &server,
        node("envoy-1", "us-east/us-east-1a/", &[(META_LABELS, labels)]),
    );
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds, &[]);
    let rule = service("ranked")
        .http(80)
        .failover_priority(&["tier"])
        .build();
    cache.set_mesh(with(&two_services(), rule));
    let (_, clusters) = c.recv_type(CLUSTER).await;
    assert_eq!(clusters.len(), 3);
    c.expect_silence().await;
    cache.set_mesh(with(
        &two_services(),
        service("ranked")
            .http(80)
            .failover_priority(&["tier"])
            .build(),
    ));
    let mut labelled = key("us-east/us-east-1a/");
    labelled.labels.insert("tier".into(), "gold".into());
    assert_eq!(cache.key_count(), 1, "the unlabelled key was dropped");
    let _rx = cache.watch(&labelled);
    assert_eq!(cache.key_count(), 1, "the stream watches the labelled key");
}

#[tokio::test]
async fn serves_over_grpc() {
    let (_cache, server) = server(two_services());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let serve = tonic::transport::Server::builder()
        .add_service(server.clone().into_service())
        .serve_with_incoming(incoming);
    let handle = tokio::spawn(serve);
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        node: Some(east("envoy-grpc")),
        type_url: LISTENER.to_owned(),
        ..Default::default()
    })
    .unwrap();
    let mut responses = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let resp = responses.next().await.unwrap().unwrap();
    assert_eq!(
        resp.resources.iter().map(resource_name).collect::<Vec<_>>(),
        [OUTBOUND]
    );
    assert_eq!(server.status()[0].node_id, "envoy-grpc");
    drop(tx);
    handle.abort();
}

/// One endpoint change reaches every stream, as exactly one ClusterLoadAssignment, whatever
/// the stream's key. (Its speed at fleet scale is measured by the `fleet` bench.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_endpoint_change_reaches_every_stream() {
    const SERVICES: usize = 100;
    const ENDPOINTS: usize = 20;
    const KEYS: usize = 20;
    const STREAMS: usize = 60;
    let svc = |i: usize, extra: bool| {
        let mut b = service(&format!("svc-{i}")).http(80);
        for e in 0..ENDPOINTS {
            b = b.endpoint(
                &format!("10.{}.{}.{}", i / 250, i % 250, e),
                &format!("r{}/z{}/", e % 4, e % 8),
            );
        }
        if extra {
            b = b.endpoint("10.255.0.1", "r0/z0/");
        }
        b.build()
    };
    let m = mesh((0..SERVICES).map(|i| svc(i, false)));
    let (cache, server) = server(m.clone());
    let names: Vec<String> = (0..SERVICES)
        .map(|i| cluster(&format!("svc-{i}"), 80))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut clients = Vec::new();
    for s in 0..STREAMS {
        let k = s % KEYS;
        let mut c = SotwClient::connect(
            &server,
            node(&format!("envoy-{s}"), &format!("r{}/z{k}/", k % 4), &[]),
        );
        c.request(ENDPOINT, &names);
        let (eds, _) = c.recv_type(ENDPOINT).await;
        c.ack(&eds, &names);
        clients.push(c);
    }
    assert_eq!(cache.key_count(), KEYS);
    settle().await;
    let target = cluster("svc-7", 80);
    for round in 0..3 {
        assert!(cache.set_mesh(with(&m, svc(7, round % 2 == 0))));
        for c in &mut clients {
            let (_, got) = c.recv_type(ENDPOINT).await;
            assert_eq!(got, [target.as_str()]);
        }
    }
}

/// The server's metrics as `/metrics` shows them.
fn scrape(server: &AdsServer) -> String {
    let mut registry = Registry::default();
    server.register_metrics(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

fn sample(metrics: &str, name: &str) -> f64 {
    let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
    let line = line.unwrap_or_else(|| panic!("{name} in {metrics}"));
    line[name.len() + 1..].parse().unwrap()
}

#[tokio::test]
async fn metrics_carry_istios_names_and_the_clients_states() {
    let (cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds, &[]);
    let echo = cluster("echo", 80);
    c.request(ENDPOINT, &[&echo]);
    let (eds, _) = c.recv_type(ENDPOINT).await;
    c.nack(&eds, &[&echo], "", "bad");
    c.expect_silence().await;
    let m = scrape(&server);
    assert_eq!(sample(&m, "pilot_xds"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_pushes{type=\"cds\"}"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_pushes{type=\"eds_senderr\"}"), 0.0);
    assert_eq!(sample(&m, "pilot_total_xds_rejects{type=\"eds\"}"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_eds_reject"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_cds_reject"), 0.0);
    assert_eq!(
        sample(&m, "meshfleet_xds_clients{state=\"rejecting\"}"),
        1.0
    );
    assert_eq!(sample(&m, "meshfleet_xds_clients{state=\"synced\"}"), 0.0);
    let acked = format!(
        "meshfleet_xds_clients_acked{{type=\"cds\",version=\"{}\"}}",
        cds.version_info
    );
    assert_eq!(sample(&m, &acked), 1.0);
    assert_eq!(sample(&m, "pilot_proxy_convergence_time_count"), 0.0);
    assert_eq!(sample(&m, "meshfleet_xds_pushes_total{type=\"cds\"}"), 1.0);

    // A change pushed and taken: one observation, from the cache update on.
    cache.set_mesh(with(&two_services(), service("new").http(80).build()));
    let (next, _) = c.recv_type(CLUSTER).await;
    c.ack(&next, &[]);
    c.expect_silence().await;
    let m = scrape(&server);
    assert_eq!(sample(&m, "pilot_proxy_convergence_time_count"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_pushes{type=\"cds\"}"), 2.0);
    assert!(m.contains("# TYPE pilot_xds_pushes unknown\n"), "{m}");

    // An expired nonce.
    c.ack(&cds, &[]);
    c.expect_silence().await;
    assert_eq!(sample(&scrape(&server), "pilot_xds_expired_nonce"), 1.0);
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_a_push_error() {
    let (_cache, server) = server(two_services());
    let server = server.with_limits(Limits {
        max_response_bytes: 64,
        ..Limits::default()
    });
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let status = c.recv_error().await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let m = scrape(&server);
    assert_eq!(sample(&m, "pilot_xds_pushes{type=\"cds_senderr\"}"), 1.0);
    assert_eq!(sample(&m, "pilot_xds_pushes{type=\"cds\"}"), 1.0);
}
