//! A client that stops reading: the controller keeps at most one response queued for it,
//! whatever changes meanwhile, and the client gets the latest state once it reads again.

use meshfleet_testkit as support;

use std::time::Duration;

use futures::StreamExt;
use meshfleet_demo::envoy::eventually;
use meshfleet_xds::pb::envoy::config::cluster::v3::Cluster;
use meshfleet_xds::pb::envoy::config::core::v3::{Locality, Node};
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshfleet_xds::resource::{CLUSTER, ENDPOINT};
use prost::Message;
use support::Mesh;

/// What `/debug/syncz` says `node` has queued: responses and bytes.
async fn queued(mesh: &Mesh, node: &str) -> anyhow::Result<(u64, u64)> {
    let syncz: serde_json::Value = serde_json::from_str(&mesh.admin("/debug/syncz").await?)?;
    let client = syncz
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["node_id"] == node)
        .ok_or_else(|| anyhow::anyhow!("{node} not connected: {syncz}"))?;
    let field = |f: &str| client[f].as_u64().unwrap_or_default();
    Ok((field("queued_responses"), field("queued_bytes")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_holds_up_one_response() {
    let mut mesh = Mesh::start().await;
    // A stream window of 1 KiB: the controller's writes stop after the first kilobyte.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.xds_addr))
        .unwrap()
        .initial_stream_window_size(1024)
        .connect()
        .await
        .unwrap();
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let node = Node {
        id: "slow".into(),
        locality: Some(Locality {
            region: "us-east".into(),
            zone: "us-east-1a".into(),
            sub_zone: String::new(),
        }),
        ..Node::default()
    };
    tx.send(DiscoveryRequest {
        node: Some(node),
        type_url: CLUSTER.into(),
        ..DiscoveryRequest::default()
    })
    .unwrap();
    let mut responses = client
        .stream_aggregated_resources(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let cds = responses.next().await.unwrap().unwrap();
    let names: Vec<String> = cds
        .resources
        .iter()
        .map(|r| Cluster::decode(r.value.as_slice()).unwrap().name)
        .collect();
    assert!(!names.is_empty());
    tx.send(DiscoveryRequest {
        version_info: cds.version_info.clone(),
        response_nonce: cds.nonce.clone(),
        type_url: CLUSTER.into(),
        ..DiscoveryRequest::default()
    })
    .unwrap();
    tx.send(DiscoveryRequest {
        type_url: ENDPOINT.into(),
        resource_names: names,
        ..DiscoveryRequest::default()
    })
    .unwrap();

    // From here on the client reads nothing, while every load assignment changes 20 times.
    let mut most = 0;
    for i in 0..20 {
        let local = 60 + i;
        let weights = format!("local={local},remote={}", 100 - local);
        mesh.fleet
            .annotate("meshfleet.io/locality-weights", Some(&weights))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (responses, bytes) = queued(&mesh, "slow").await.unwrap();
        assert!(
            responses <= 1,
            "{responses} responses ({bytes} bytes) queued"
        );
        most = most.max(responses);
    }
    assert_eq!(most, 1, "the client's window never filled");
    // One response per change would be 20; the stream computed one each time the transport
    // had taken the last.
    let metrics = mesh.admin("/metrics").await.unwrap();
    let pushes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pilot_xds_pushes{type=\"eds\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("EDS pushes");
    assert!(
        pushes <= 6,
        "{pushes} load assignment responses for 20 changes"
    );
    assert!(
        metrics.contains("meshfleet_xds_queued_responses 1\n"),
        "{metrics}"
    );

    // Reading again: a few responses, the last with the latest weights, then nothing.
    let (mut last, mut count) = (None, 0);
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_secs(2), responses.next()).await
    {
        if r.type_url == ENDPOINT {
            last = Some(r);
            count += 1;
        }
    }
    assert!(count <= pushes + 1, "{count} responses after {pushes}");
    let last = last.expect("load assignments");
    let syncz = mesh.admin("/debug/syncz").await.unwrap();
    assert!(syncz.contains(&last.version_info), "{syncz}");
    // The client leaves: nothing stays queued.
    drop(responses);
    drop(tx);
    eventually(Duration::from_secs(10), || async {
        let m = mesh.admin("/metrics").await?;
        anyhow::ensure!(m.contains("meshfleet_xds_queued_bytes 0\n"), "{m}");
        anyhow::ensure!(m.contains("meshfleet_xds_streams_open 0\n"), "{m}");
        Ok(())
    })
    .await
    .unwrap();
    mesh.terminate().await;
}
