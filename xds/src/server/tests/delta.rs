use std::collections::HashMap;

use envoy_types::pb::envoy::service::status::v3::ConfigStatus;

use super::*;
use crate::translate::OUTBOUND;

#[tokio::test]
async fn initial_wildcard_gets_every_cluster_and_the_outbound_listener() {
    let (_cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    c.subscribe(CLUSTER, &[]);
    let (cds, clusters, removed) = c.recv_type(CLUSTER).await;
    assert_eq!(clusters, [cluster("db", 5432), cluster("echo", 80)]);
    assert!(removed.is_empty());
    c.ack(&cds);
    c.subscribe(LISTENER, &["*"]);
    let (lds, listeners, _) = c.recv_type(LISTENER).await;
    assert_eq!(listeners, [OUTBOUND]);
    c.ack(&lds);
    c.expect_silence().await;
    let t = &server.status()[0].types["lds"];
    assert_eq!(t.version_acked, lds.system_version_info);
}

#[tokio::test]
async fn deleted_service_is_in_removed_resources() {
    let (cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    c.subscribe(CLUSTER, &[]);
    let (cds, _, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds);
    let echo = cluster("echo", 80);
    c.subscribe(ENDPOINT, &[&echo]);
    let (eds, names, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [echo.as_str()]);
    c.ack(&eds);
    cache.set_mesh(without(&two_services(), "echo"));
    let (_, upserts, removed) = c.recv_type(CLUSTER).await;
    assert_eq!((upserts.len(), removed), (0, vec![echo.clone()]));
    let (_, upserts, removed) = c.recv_type(ENDPOINT).await;
    assert_eq!((upserts.len(), removed), (0, vec![echo]));
    c.expect_silence().await;
    assert_eq!(
        c.held[CLUSTER].keys().collect::<Vec<_>>(),
        [&cluster("db", 5432)]
    );
}

#[tokio::test]
async fn initial_resource_versions_are_respected() {
    let (cache, server) = server(two_services());
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    let current_db = snapshot.get(CLUSTER, &db).unwrap().version.clone();
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    c.send(DeltaDiscoveryRequest {
        type_url: CLUSTER.to_owned(),
        initial_resource_versions: HashMap::from([
            (db.clone(), current_db),
            (echo.clone(), "stale".to_owned()),
            (
                "outbound|80||gone.default.global".to_owned(),
                "1".to_owned(),
            ),
        ]),
        ..Default::default()
    });
    let (_, upserts, removed) = c.recv_type(CLUSTER).await;
    assert_eq!(upserts, [echo]);
    assert_eq!(removed, ["outbound|80||gone.default.global"]);
}

#[tokio::test]
async fn first_request_is_answered_even_when_up_to_date() {
    let (cache, server) = server(two_services());
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    let known = snapshot
        .iter(CLUSTER)
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    c.send(DeltaDiscoveryRequest {
        type_url: CLUSTER.to_owned(),
        initial_resource_versions: known,
        ..Default::default()
    });
    let (resp, upserts, removed) = c.recv_type(CLUSTER).await;
    assert!(upserts.is_empty() && removed.is_empty());
    assert_eq!(resp.system_version_info, snapshot.version(CLUSTER));
}

#[tokio::test]
async fn unsubscribed_names_get_no_pushes_and_resubscribing_resends() {
    let (cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    c.subscribe(ENDPOINT, &[&db, &echo]);
    let (eds, names, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [db.clone(), echo.clone()]);
    c.ack(&eds);
    c.unsubscribe(ENDPOINT, &[&echo]);
    c.expect_silence().await;
    let echo_svc = service("echo")
        .http(80)
        .endpoint("10.0.1.8", "us-east/us-east-1a/")
        .build();
    cache.set_mesh(with(&two_services(), echo_svc));
    c.expect_silence().await;
    c.subscribe(ENDPOINT, &[&echo]);
    let (_, names, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [echo]);
}

#[tokio::test]
async fn delta_nack_is_recorded_and_not_answered() {
    let (cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    c.subscribe(CLUSTER, &[]);
    let (cds, _, _) = c.recv_type(CLUSTER).await;
    c.nack(&cds, "no");
    c.expect_silence().await;
    let t = server.status()[0].types["cds"].clone();
    assert_eq!(t.last_nack.unwrap().version, cds.system_version_info);
    assert_eq!(server.metrics().nacks(), 1);
    cache.set_mesh(with(&two_services(), service("new").http(80).build()));
    // The client holds nothing of the rejected response: the change comes with all of it.
    let (next, upserts, _) = c.recv_type(CLUSTER).await;
    assert_eq!(
        upserts,
        [cluster("db", 5432), cluster("echo", 80), cluster("new", 80)]
    );
    c.ack(&next);
    c.expect_silence().await;
    let t = server.status()[0].types["cds"].clone();
    assert_eq!(t.version_acked, next.system_version_info);
    assert_eq!(t.config_status(), ConfigStatus::Synced);
}

#[tokio::test]
async fn sotw_and_delta_clients_of_one_key_converge() {
    let (cache, server) = server(two_services());
    let mut s = SotwClient::connect(&server, east("envoy-s"));
    let mut d = DeltaClient::connect(&server, east("envoy-d"));
    s.request(CLUSTER, &[]);
    let (cds, clusters) = s.recv_type(CLUSTER).await;
    s.ack(&cds, &[]);
    let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
    s.request(ENDPOINT, &names);
    s.request(LISTENER, &[]);
    s.request(ROUTE, &[OUTBOUND]);
    d.subscribe(CLUSTER, &[]);
    d.subscribe(ENDPOINT, &names);
    d.subscribe(LISTENER, &[]);
    d.subscribe(ROUTE, &[OUTBOUND]);
    for _ in 0..3 {
        let r = s.recv().await;
        s.ack(
            &r,
            if r.type_url == ENDPOINT {
                &names
            } else if r.type_url == ROUTE {
                &[OUTBOUND]
            } else {
                &[]
            },
        );
    }
    for _ in 0..4 {
        let r = d.recv().await;
        d.ack(&r);
    }
    cache.set_mesh(with(
        &two_services(),
        service("echo")
            .http(80)
            .endpoint("10.0.1.5", "us-east/us-east-1a/")
            .build(),
    ));
    let r = s.recv_type(ENDPOINT).await.0;
    s.ack(&r, &names);
    let r = d.recv_type(ENDPOINT).await.0;
    d.ack(&r);
    s.expect_silence().await;
    d.expect_silence().await;
    assert_eq!(s.held, d.held);
    assert_eq!(s.held.len(), 4);
    let sv = &server.status();
    assert_eq!(sv.len(), 2);
    for ty in ["cds", "eds", "lds", "rds"] {
        assert_eq!(
            sv[0].types[ty].version_acked, sv[1].types[ty].version_acked,
            "{ty}"
        );
    }
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_answered_as_removed() {
    let (_cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    let (echo, nowhere) = (cluster("echo", 80), cluster("nowhere", 80));
    // In the first request, and in a later one.
    c.subscribe(ENDPOINT, &[&echo, &nowhere]);
    let (eds, names, removed) = c.recv_type(ENDPOINT).await;
    assert_eq!(
        (names, removed),
        (vec![echo.clone()], vec![nowhere.clone()])
    );
    c.ack(&eds);
    let other = cluster("other", 80);
    c.subscribe(ENDPOINT, &[&other]);
    let (eds, names, removed) = c.recv_type(ENDPOINT).await;
    assert_eq!((names.len(), removed), (0, vec![other]));
    c.ack(&eds);
    c.expect_silence().await;
}

#[tokio::test]
async fn subscribing_again_sends_the_resource_again() {
    let (_cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    let echo = cluster("echo", 80);
    c.subscribe(ENDPOINT, &[&echo]);
    let (eds, _, _) = c.recv_type(ENDPOINT).await;
    c.ack(&eds);
    c.subscribe(ENDPOINT, &[&echo]);
    let (eds, names, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(names, [echo]);
    c.ack(&eds);
    c.expect_silence().await;
}

#[tokio::test]
async fn unsubscribing_a_name_the_wildcard_covers_sends_it_again() {
    let (_cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    let echo = cluster("echo", 80);
    c.subscribe(CLUSTER, &["*", &echo]);
    let (cds, _, _) = c.recv_type(CLUSTER).await;
    c.ack(&cds);
    c.unsubscribe(CLUSTER, &[&echo]);
    let (cds, names, removed) = c.recv_type(CLUSTER).await;
    assert_eq!((names, removed.len()), (vec![echo], 0));
    c.ack(&cds);
    c.expect_silence().await;
}

#[tokio::test]
async fn after_a_nack_the_next_change_carries_what_was_rejected() {
    let (cache, server) = server(two_services());
    let mut c = DeltaClient::connect(&server, east("envoy-d"));
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    c.subscribe(ENDPOINT, &[&db, &echo]);
    let (eds, _, _) = c.recv_type(ENDPOINT).await;
    c.ack(&eds);
    let echo_with = |ip: &str| {
        service("echo")
            .http(80)
            .endpoint("10.0.1.1", "us-east/us-east-1a/")
            .endpoint(ip, "us-east/us-east-1a/")
            .build()
    };
    let db_with = |ip: &str| {
        service("db")
            .tcp(5432)
            .endpoint(ip, "us-east/us-east-1a/")
            .build()
    };
    // A2 and B2, rejected: the client keeps A1 and B1.
    let mesh = with(
        &with(&two_services(), echo_with("10.0.1.7")),
        db_with("10.0.1.3"),
    );
    cache.set_mesh(mesh.clone());
    let (eds, upserts, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(upserts, [db.clone(), echo.clone()]);
    let held_before = c.held[ENDPOINT].clone();
    c.nack(&eds, "bad endpoints");
    c.held.insert(ENDPOINT.to_owned(), held_before);
    c.expect_silence().await;
    // A3 alone changes: B2 comes again with it.
    cache.set_mesh(with(&mesh, echo_with("10.0.1.8")));
    let (eds, upserts, _) = c.recv_type(ENDPOINT).await;
    assert_eq!(upserts, [db, echo]);
    let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    for (name, version) in &c.held[ENDPOINT] {
        assert_eq!(version, &snapshot.get(ENDPOINT, name).unwrap().version);
    }
    c.ack(&eds);
    c.expect_silence().await;
    let t = server.status()[0].types["eds"].clone();
    assert_eq!(t.config_status(), ConfigStatus::Synced);
    assert_eq!(t.version_acked, eds.system_version_info);
}
