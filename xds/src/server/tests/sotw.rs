use envoy_types::pb::envoy::service::status::v3::ConfigStatus;

use super::*;
use crate::translate::OUTBOUND;

/// Connects a SotW client in us-east and walks it through CDS, EDS, LDS, RDS with ACKs.
/// Returns the client and the last response per type.
async fn synced(server: &AdsServer) -> (SotwClient, BTreeMap<&'static str, DiscoveryResponse>) {
    let mut c = SotwClient::connect(server, east("envoy-1"));
    let mut last = BTreeMap::new();
    c.request(CLUSTER, &[]);
    let (cds, clusters) = c.recv_type(CLUSTER).await;
    c.ack(&cds, &[]);
    let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
    c.request(ENDPOINT, &names);
    let (eds, _) = c.recv_type(ENDPOINT).await;
    c.ack(&eds, &names);
    c.request(LISTENER, &[]);
    let (lds, _) = c.recv_type(LISTENER).await;
    c.ack(&lds, &[]);
    c.request(ROUTE, &[OUTBOUND]);
    let (rds, _) = c.recv_type(ROUTE).await;
    c.ack(&rds, &[OUTBOUND]);
    last.extend([
        (CLUSTER, cds),
        (ENDPOINT, eds),
        (LISTENER, lds),
        (ROUTE, rds),
    ]);
    (c, last)
}

fn echo_with(extra: &str) -> Arc<crate::model::GlobalService> {
    service("echo")
        .http(80)
        .endpoint("10.0.1.1", "us-east/us-east-1a/")
        .endpoint(extra, "us-east/us-east-1a/")
        .endpoint("10.0.2.1", "us-west/us-west-2a/")
        .build()
}

#[tokio::test]
async fn new_client_gets_cds_then_eds_then_lds_then_rds() {
    let (_cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, mut clusters) = c.recv_type(CLUSTER).await;
    clusters.sort();
    assert_eq!(clusters, [cluster("db", 5432), cluster("echo", 80)]);
    c.ack(&cds, &[]);
    let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
    c.request(ENDPOINT, &names);
    let (_, endpoints) = c.recv_type(ENDPOINT).await;
    assert_eq!(endpoints, clusters, "named EDS, sorted by name");
    c.request(LISTENER, &[]);
    let (_, listeners) = c.recv_type(LISTENER).await;
    assert_eq!(
        listeners,
        [OUTBOUND],
        "wildcard LDS is the outbound listener only"
    );
    c.request(ROUTE, &[OUTBOUND]);
    let (_, routes) = c.recv_type(ROUTE).await;
    assert_eq!(routes, [OUTBOUND]);
    c.expect_silence().await;
}

#[tokio::test]
async fn ack_advances_the_acked_version() {
    let (_cache, server) = server(two_services());
    let (mut c, last) = synced(&server).await;
    c.expect_silence().await;
    let status = server.status();
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!((s.node_id.as_str(), s.kind), ("envoy-1", StreamKind::Sotw));
    for (ty, resp) in &last {
        let t = &s.types[short_type(ty).unwrap()];
        assert_eq!(t.version_sent, resp.version_info);
        assert_eq!(t.version_acked, resp.version_info);
        assert_eq!(
            (t.nonce_sent.as_str(), t.nonce_acked.as_str()),
            (resp.nonce.as_str(), resp.nonce.as_str())
        );
        assert_eq!(t.last_nack, None);
    }
}

#[tokio::test]
async fn endpoint_change_pushes_one_load_assignment() {
    let (cache, server) = server(two_services());
    let (mut c, _) = synced(&server).await;
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    let (eds, names) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [cluster("echo", 80)]);
    let eds_names = [cluster("db", 5432), cluster("echo", 80)];
    c.ack(
        &eds,
        &eds_names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    c.expect_silence().await;
    assert_eq!(server.metrics().pushes(ENDPOINT), 2);
}

#[tokio::test]
async fn snapshot_changes_push_cds_before_eds_and_lds_before_rds() {
    let (cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds, &[]);
    // The client already watches endpoints of a cluster that does not exist yet.
    let new = cluster("new", 80);
    c.request(ENDPOINT, &[&new]);
    let (eds, names) = c.recv_type(ENDPOINT).await;
    assert!(names.is_empty());
    c.ack(&eds, &[&new]);
    c.request(LISTENER, &[]);
    let (lds, _) = c.recv_type(LISTENER).await;
    c.ack(&lds, &[]);
    c.request(ROUTE, &[OUTBOUND]);
    let (rds, _) = c.recv_type(ROUTE).await;
    c.ack(&rds, &[OUTBOUND]);
    let added = service("new")
        .http(80)
        .endpoint("10.0.9.1", "us-east/us-east-1a/")
        .build();
    cache.set_mesh(with(&two_services(), added));
    let (_, clusters) = c.recv_type(CLUSTER).await;
    assert!(clusters.contains(&new));
    let (_, endpoints) = c.recv_type(ENDPOINT).await;
    assert_eq!(endpoints, [new]);
    c.recv_type(ROUTE).await;
    c.expect_silence().await;
}

#[tokio::test]
async fn nack_is_recorded_and_the_rejected_version_is_not_resent() {
    let (cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.nack(&cds, &[], "", "cluster rejected: bad config");
    c.expect_silence().await;
    assert_eq!(server.metrics().nacks(), 1);
    let t = server.status()[0].types["cds"].clone();
    let nack = t.last_nack.expect("nack recorded");
    assert_eq!(
        (nack.version, nack.nonce),
        (cds.version_info.clone(), cds.nonce.clone())
    );
    assert_eq!(nack.message, "cluster rejected: bad config");
    assert_eq!(t.version_acked, "");
    // An endpoint change does not touch clusters: still nothing.
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    c.expect_silence().await;
    // A cluster change is new content: sent.
    let added = service("new").http(80).build();
    cache.set_mesh(with(&two_services(), added));
    let (next, clusters) = c.recv_type(CLUSTER).await;
    assert_ne!(next.version_info, cds.version_info);
    assert_eq!(clusters.len(), 3);
    c.ack(&next, &[]);
    c.expect_silence().await;
    let t = server.status()[0].types["cds"].clone();
    assert_eq!(t.version_acked, next.version_info);
    assert!(t.last_nack.is_some(), "the last NACK stays visible");
}

#[tokio::test]
async fn stale_nonce_is_ignored() {
    let (cache, server) = server(two_services());
    let (mut c, last) = synced(&server).await;
    let old_eds = &last[ENDPOINT];
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    let (eds, _) = c.recv_type(ENDPOINT).await;
    // A request answering the older response, even one that changes the subscription.
    c.ack(old_eds, &[&cluster("db", 5432)]);
    c.expect_silence().await;
    assert_eq!(server.metrics().stale_nonces(), 1);
    let t = server.status()[0].types["eds"].clone();
    assert_eq!(t.nonce_sent, eds.nonce);
    assert_eq!(t.version_acked, old_eds.version_info);
}

#[tokio::test]
async fn unsubscribed_resources_are_not_pushed() {
    let (cache, server) = server(two_services());
    let (mut c, last) = synced(&server).await;
    let db = cluster("db", 5432);
    c.ack(&last[ENDPOINT], &[&db]);
    c.expect_silence().await;
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    c.expect_silence().await;
    // A change of a subscribed one still goes out, alone.
    let db_svc = service("db")
        .tcp(5432)
        .endpoint("10.0.1.3", "us-east/us-east-1a/")
        .build();
    let m = with(&with(&two_services(), echo_with("10.0.1.7")), db_svc);
    cache.set_mesh(m);
    let (_, names) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [db]);
    c.expect_silence().await;
}

#[tokio::test]
async fn resubscribing_sends_only_the_new_name() {
    let (_cache, server) = server(two_services());
    let (mut c, last) = synced(&server).await;
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    c.ack(&last[ENDPOINT], &[&db]);
    c.expect_silence().await;
    c.ack(&last[ENDPOINT], &[&db, &echo]);
    let (eds, names) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [echo.as_str()]);
    c.ack(&eds, &[&db, &echo]);
    c.expect_silence().await;
}

#[tokio::test]
async fn reconnecting_client_gets_the_current_state() {
    let (cache, server) = server(two_services());
    let (c, last) = synced(&server).await;
    let held_before = c.held.clone();
    drop(c);
    let m = with(&two_services(), echo_with("10.0.1.7"));
    cache.set_mesh(m);
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    // Envoy reconnects with the versions it has and an empty nonce.
    c.send(DiscoveryRequest {
        version_info: last[CLUSTER].version_info.clone(),
        type_url: CLUSTER.to_owned(),
        ..Default::default()
    });
    let (cds, clusters) = c.recv_type(CLUSTER).await;
    assert_eq!(
        cds.version_info, last[CLUSTER].version_info,
        "clusters did not change"
    );
    c.ack(&cds, &[]);
    let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
    c.send(DiscoveryRequest {
        version_info: last[ENDPOINT].version_info.clone(),
        type_url: ENDPOINT.to_owned(),
        resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
        ..Default::default()
    });
    let (_, endpoints) = c.recv_type(ENDPOINT).await;
    assert_eq!(endpoints.len(), 2, "all subscribed load assignments");
    let echo = cluster("echo", 80);
    assert_ne!(c.held[ENDPOINT][&echo], held_before[ENDPOINT][&echo]);
    let db = cluster("db", 5432);
    assert_eq!(c.held[ENDPOINT][&db], held_before[ENDPOINT][&db]);
}

#[tokio::test]
async fn changed_cluster_is_followed_by_its_load_assignment() {
    let (cache, server) = server(two_services());
    let (mut c, _) = synced(&server).await;
    let mut echo = (*two_services().services[&host("echo")]).clone();
    echo.outlier_detection = None;
    cache.set_mesh(with(&two_services(), Arc::new(echo)));
    let (_, clusters) = c.recv_type(CLUSTER).await;
    assert_eq!(clusters.len(), 2, "CDS is the state of the world");
    let (_, endpoints) = c.recv_type(ENDPOINT).await;
    assert_eq!(endpoints, [cluster("echo", 80)]);
    c.expect_silence().await;
}

#[tokio::test]
async fn an_empty_list_after_names_unsubscribes_instead_of_turning_wildcard_on() {
    let (cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    let echo = cluster("echo", 80);
    // CDS named explicitly, then an empty list: nothing is subscribed any more.
    c.request(CLUSTER, &[&echo]);
    let (cds, names) = c.recv_type(CLUSTER).await;
    assert_eq!(names, [echo.as_str()]);
    // Not wildcard again: nothing new is sent, and later changes are not pushed.
    c.ack(&cds, &[]);
    c.expect_silence().await;
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    c.expect_silence().await;

    // A first request without names is still legacy wildcard, and its ACKs keep it.
    let mut w = SotwClient::connect(&server, east("envoy-2"));
    w.request(CLUSTER, &[]);
    let (cds, mut names) = w.recv_type(CLUSTER).await;
    names.sort();
    assert_eq!(names, [cluster("db", 5432), echo]);
    w.ack(&cds, &[]);
    w.expect_silence().await;
}

#[tokio::test]
async fn a_repeated_nack_is_counted_and_recorded_once() {
    let (_cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.nack(&cds, &[], "", "first reason");
    c.nack(&cds, &[], "", "second reason");
    c.expect_silence().await;
    assert_eq!(server.metrics().nacks(), 1);
    let nack = server.status()[0].types["cds"].clone().last_nack.unwrap();
    assert_eq!(nack.message, "first reason");
}

#[tokio::test]
async fn a_request_that_does_not_decode_ends_the_stream_with_invalid_argument() {
    let (_cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(CLUSTER, &[]);
    let (cds, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds, &[]);
    // What the codec yields for bytes that are no DiscoveryRequest.
    c.tx.send(Err(Status::invalid_argument("invalid wire type value: 7")))
        .unwrap();
    let status = c.recv_error().await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("malformed request: "),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_request_over_the_limit_ends_the_stream_with_resource_exhausted() {
    let (_cache, server) = server(two_services());
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    // What tonic yields for a message over the decoding limit, here as the first message.
    c.tx.send(Err(Status::out_of_range(
        "Error, decoded message length too large",
    )))
    .unwrap();
    let status = c.recv_error().await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn a_request_naming_too_many_resources_ends_the_stream_with_resource_exhausted() {
    let (_cache, server) = server(two_services());
    let server = server.with_limits(Limits {
        max_resources_per_request: 2,
        ..Limits::default()
    });
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(ENDPOINT, &["a", "b"]);
    let (eds, _) = c.recv_type(ENDPOINT).await;
    c.ack(&eds, &["a", "b", "c"]);
    let status = c.recv_error().await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("3 resources"), "{status:?}");
}

/// What `c` holds of `ty` is exactly the current snapshot's versions.
fn holds_current(c: &SotwClient, cache: &SnapshotCache, ty: &str) {
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    for (name, version) in &c.held[ty] {
        let current = snapshot.get(ty, name).expect("exists");
        assert_eq!(version, &current.version, "{name}");
    }
}

#[tokio::test]
async fn after_a_nack_the_next_change_carries_what_was_rejected_under_a_true_version() {
    let (cache, server) = server(two_services());
    let (mut c, _) = synced(&server).await;
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    let names = [db.as_str(), echo.as_str()];
    let db_with = |ip: &str| {
        service("db")
            .tcp(5432)
            .endpoint(ip, "us-east/us-east-1a/")
            .build()
    };
    // A2 and B2 in one response, rejected: the client keeps A1 and B1.
    let mesh = with(
        &with(&two_services(), echo_with("10.0.1.7")),
        db_with("10.0.1.3"),
    );
    cache.set_mesh(mesh.clone());
    let (eds, mut got) = c.recv_type(ENDPOINT).await;
    got.sort();
    assert_eq!(got, [db.clone(), echo.clone()]);
    let held_before = c.held[ENDPOINT].clone();
    c.nack(&eds, &names, "", "bad endpoints");
    c.held.insert(ENDPOINT.to_owned(), held_before);
    c.expect_silence().await;
    let t = server.status()[0].types["eds"].clone();
    assert_eq!(t.config_status(), ConfigStatus::Error);
    // A3 alone changes: the response carries B2 again, so that its version is true of
    // everything the client holds once it accepts it.
    cache.set_mesh(with(&mesh, echo_with("10.0.1.8")));
    let (eds, mut got) = c.recv_type(ENDPOINT).await;
    got.sort();
    assert_eq!(got, names);
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    assert_eq!(eds.version_info, snapshot.version(ENDPOINT));
    holds_current(&c, &cache, ENDPOINT);
    assert_eq!(
        server.status()[0].types["eds"].config_status(),
        ConfigStatus::Stale,
        "not in sync until it acknowledges"
    );
    c.ack(&eds, &names);
    c.expect_silence().await;
    let t = server.status()[0].types["eds"].clone();
    assert_eq!(t.config_status(), ConfigStatus::Synced);
    assert_eq!(t.version_acked, eds.version_info);
}

#[tokio::test]
async fn a_request_after_a_nack_does_not_acknowledge_the_rejected_response() {
    let (cache, server) = server(two_services());
    let (mut c, _) = synced(&server).await;
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    cache.set_mesh(with(&two_services(), echo_with("10.0.1.7")));
    let (eds, _) = c.recv_type(ENDPOINT).await;
    c.nack(&eds, &[&db, &echo], "", "bad endpoints");
    // Envoy's next request carries the same nonce without `error_detail`.
    c.ack(&eds, &[&db]);
    c.expect_silence().await;
    let t = server.status()[0].types["eds"].clone();
    assert_eq!(t.config_status(), ConfigStatus::Error);
    assert_ne!(t.version_acked, eds.version_info);
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_up_one_response_and_gets_the_latest() {
    let (cache, server) = server(two_services());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut responses = server.serve_sotw_prepared(UnboundedReceiverStream::new(rx));
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    tx.send(Ok(DiscoveryRequest {
        node: Some(east("slow")),
        type_url: ENDPOINT.to_owned(),
        resource_names: vec![db.clone(), echo.clone()],
        ..Default::default()
    }))
    .unwrap();
    settle().await;
    for i in 0..20 {
        cache.set_mesh(with(
            &two_services(),
            echo_with(&format!("10.0.1.{}", 10 + i)),
        ));
    }
    settle().await;
    let status = server.status()[0].clone();
    assert_eq!(status.queued_responses, 1);
    assert_eq!(server.metrics().queued_responses(), 1);
    let first = responses.next().await.unwrap().unwrap();
    assert_eq!(status.queued_bytes, first.encoded_len(), "one response");
    // Then one response from the latest snapshot, and nothing else.
    let latest = tokio::time::timeout(RECV_TIMEOUT, responses.next()).await;
    let latest = latest.unwrap().unwrap().unwrap();
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    assert_eq!(latest.message.version_info, snapshot.version(ENDPOINT));
    // Nothing was acknowledged yet: all of it, at the latest versions.
    let names: Vec<&str> = latest.bodies.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [db.as_str(), echo.as_str()]);
    let echo_now = snapshot.get(ENDPOINT, &echo).unwrap();
    assert_eq!(latest.bodies[1].version, echo_now.version);
    settle().await;
    assert!(responses.next().now_or_never().is_none(), "nothing queued");
    drop(responses);
    settle().await;
    assert_eq!(server.metrics().queued_responses(), 0);
}
