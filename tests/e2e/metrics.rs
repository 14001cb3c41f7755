//! What an operator of istiod scrapes: `/metrics` of the real binary carries istiod's names
//! (Istio 1.30's `pilot/pkg/xds/monitoring.go`, `pkg/xds/monitoring.go`), meshfleet's own, the
//! build and the process; the convergence histogram fills as a change reaches an Envoy. And
//! `istio.io/debug/syncz` is not handed out on the plaintext port by default.

use meshfleet_testkit as support;

use std::time::Duration;

use futures::StreamExt;
use meshfleet_demo::envoy::{AdsApi, eventually};
use meshfleet_xds::pb::envoy::config::core::v3::Node;
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshfleet_xds::resource::SYNCZ;
use support::{EAST, Mesh, wait_for_share};

/// The value of the sample `name` (with its labels) in `metrics`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))?;
    line[name.len() + 1..].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_istios_names_and_convergence_after_a_change() {
    let mut mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    let before = mesh.admin("/metrics").await.unwrap();
    let observed = |m: &str| sample(m, "pilot_proxy_convergence_time_count").unwrap_or(0.0);
    let first = observed(&before);

    mesh.fleet
        .annotate("meshfleet.io/locality-weights", Some("local=50,remote=50"))
        .unwrap();
    wait_for_share(&envoy, EAST, 50.0, 3.0).await;
    let metrics = eventually(Duration::from_secs(10), || async {
        let m = mesh.admin("/metrics").await?;
        anyhow::ensure!(observed(&m) > first, "no convergence observed yet: {m}");
        anyhow::ensure!(
            sample(&m, "meshfleet_xds_clients{state=\"synced\"}") == Some(1.0),
            "the Envoy has not acknowledged yet: {m}"
        );
        Ok(m)
    })
    .await
    .unwrap();

    for (name, value) in [
        ("pilot_xds", Some(1.0)),
        ("pilot_total_xds_rejects{type=\"cds\"}", Some(0.0)),
        ("pilot_xds_pushes{type=\"cds_senderr\"}", Some(0.0)),
        ("pilot_xds_cds_reject", Some(0.0)),
        ("meshfleet_xds_clients{state=\"rejecting\"}", Some(0.0)),
        ("meshfleet_xds_streams_open", Some(1.0)),
    ] {
        assert_eq!(sample(&metrics, name), value, "{name} in {metrics}");
    }
    for name in [
        "pilot_xds_pushes{type=\"eds\"}",
        "pilot_xds_expired_nonce",
        "pilot_proxy_convergence_time_sum",
        "meshfleet_xds_pushes_total{type=\"eds\"}",
        "meshfleet_xds_queued_bytes",
        "meshfleet_xds_stream_queue_depth_count",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(sample(&metrics, name).is_some(), "{name} in {metrics}");
    }
    let version = format!(
        "meshfleet_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&metrics, &version), Some(1.0), "{metrics}");
    assert!(
        metrics.contains("pilot_proxy_convergence_time_bucket{le=\"0.1\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meshfleet_xds_clients_acked{type=\"eds\",version=\""),
        "{metrics}"
    );
    mesh.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncz_is_not_served_on_the_plaintext_port_by_default() {
    let mesh = Mesh::start().await;
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", mesh.xds_addr))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(DiscoveryRequest {
        node: Some(Node {
            id: "istioctl".into(),
            ..Node::default()
        }),
        type_url: SYNCZ.into(),
        ..DiscoveryRequest::default()
    })
    .unwrap();
    let mut responses = client
        .stream_aggregated_resources(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let answer = tokio::time::timeout(Duration::from_secs(10), responses.next())
        .await
        .expect("an answer")
        .expect("a status");
    let status = answer.expect_err("no node list");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
}
