//! Bad input while serving: a malformed file, a slice for an unknown cluster, and an ADS client
//! asking for a type nobody serves. Each is reported; everything else keeps being served.

use meshfleet_testkit as support;

use std::time::Duration;

use futures::StreamExt;
use meshfleet_demo::envoy::{AdsApi, eventually};
use meshfleet_demo::fleet::write_atomic;
use meshfleet_xds::pb::envoy::config::core::v3::Node;
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshfleet_xds::resource::CLUSTER;
use support::{EAST, Mesh, send};

const BROKEN: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: other
  namespace: demo
  annotations: { meshfleet.io/global: "true" }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Service
metadata:
  name: bad-ports
  namespace: demo
spec:
  ports: [{ name: http, port: "eighty" }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: other-nowhere
  namespace: demo
  labels:
    kubernetes.io/service-name: other
    multicluster.kubernetes.io/source-cluster: no-such-cluster
addressType: IPv4
endpoints:
  - addresses: ["127.0.30.1"]
---
kind: [unclosed
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_reported_and_the_rest_keeps_serving() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;

    write_atomic(&mesh.fleet.dir.join("broken.yaml"), BROKEN).unwrap();
    let problems = eventually(Duration::from_secs(10), || async {
        let body = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(body.contains("broken.yaml#3"), "not yet: {body}");
        Ok(body)
    })
    .await
    .unwrap();
    let problems: serde_json::Value = serde_json::from_str(&problems).unwrap();
    let text = problems.to_string();
    // The bad field, with its file and document index.
    assert!(text.contains("broken.yaml#1"), "{problems:#}");
    assert!(text.contains("spec.ports[0].port"), "{problems:#}");
    // The slice naming a cluster nobody declared.
    assert!(text.contains("no-such-cluster"), "{problems:#}");

    // The good document of the same file is served; the old service still routes 99/1.
    let catalog = mesh.admin("/debug/catalog").await.unwrap();
    assert!(catalog.contains("other.demo.global"), "{catalog}");
    let tally = send(&envoy, 1_000).await;
    assert_eq!(tally.failed, 0, "{tally:?}");
    assert!((tally.share(EAST) - 99.0).abs() <= 0.5, "{tally:?}");

    let metrics = mesh.admin("/metrics").await.unwrap();
    let problems_metric = metrics
        .lines()
        .find_map(|l| l.strip_prefix("meshfleet_config_problems "))
        .expect("problems gauge");
    assert!(problems_metric.parse::<u64>().unwrap() >= 3, "{metrics}");

    // Removing the file clears its problems (emptying it would keep what it defines for a
    // grace period, in case it is being rewritten).
    std::fs::remove_file(mesh.fleet.dir.join("broken.yaml")).unwrap();
    eventually(Duration::from_secs(10), || async {
        let body = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(!body.contains("broken.yaml"), "still: {body}");
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_type_url_is_tolerated_on_a_live_stream() {
    let mesh = Mesh::start().await;
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", mesh.xds_addr))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let node = Node {
        id: "raw-client".into(),
        ..Node::default()
    };
    tx.send(DiscoveryRequest {
        node: Some(node),
        type_url: "type.googleapis.com/no.such.Type".into(),
        ..DiscoveryRequest::default()
    })
    .unwrap();
    tx.send(DiscoveryRequest {
        type_url: CLUSTER.into(),
        ..DiscoveryRequest::default()
    })
    .unwrap();
    let mut responses = client
        .stream_aggregated_resources(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    let first = tokio::time::timeout(Duration::from_secs(10), responses.next())
        .await
        .expect("an answer")
        .expect("stream open")
        .expect("not an error");
    assert_eq!(first.type_url, CLUSTER, "the unknown type gets no answer");
    assert_eq!(first.resources.len(), 1, "{first:?}");

    let metrics = mesh.admin("/metrics").await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("meshfleet_xds_unknown_type_total") && l.ends_with(" 1")),
        "{metrics}"
    );
}
