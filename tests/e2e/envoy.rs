//! End to end with a real Envoy: two zones of echo backends on loopback, `meshfleet run` on a
//! config directory, Envoys connected over ADS; we count which zone answers.

use meshfleet_testkit as support;

use std::time::Duration;

use meshfleet_demo::envoy::AdsApi;
use meshfleet_demo::fleet::write_atomic;
use support::{EAST, Mesh, WEST, send, wait_for_share};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_keep_99_percent_in_zone() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;

    let tally = send(&envoy, 10_000).await;

    assert_eq!(tally.failed, 0, "{tally:?}");
    assert_eq!(tally.total(), 10_000);
    let local = tally.share(EAST);
    assert!(
        (98.5..=99.5).contains(&local),
        "local share {local:.2}%: {tally:?}"
    );
    assert_eq!(tally.zones.keys().collect::<Vec<_>>(), [EAST, WEST]);
    // Both clusters of the zone take their part.
    assert!(
        tally.clusters["east-1"] > 4_000 && tally.clusters["east-2"] > 4_000,
        "{tally:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotation_edit_moves_the_split_live() {
    let mut mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    let before = send(&envoy, 1_000).await;
    assert!(before.share(EAST) > 98.0, "{before:?}");

    mesh.fleet
        .annotate("meshfleet.io/locality-weights", Some("local=50,remote=50"))
        .unwrap();

    let after = wait_for_share(&envoy, EAST, 50.0, 3.0).await;
    assert!((after.share(EAST) - 50.0).abs() <= 3.0, "{after:?}");
    assert_eq!(after.failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outage_moves_traffic_to_the_other_zone() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    assert!(send(&envoy, 500).await.share(EAST) > 98.0);

    // The backends die; nothing tells meshfleet: Envoy's outlier detection and retries must
    // carry the traffic to the other zone.
    mesh.fleet.stop_zone(EAST);
    let during = send(&envoy, 2_000).await;
    eprintln!("while failing over: {during:?}");
    let after = send(&envoy, 2_000).await;

    // Each dead host is ejected on its first refused connection, and the ejection takes
    // effect at once (no update merge window). A request makes 4 attempts on distinct hosts,
    // so of the zone's 6 dead hosts only the first request can meet 4; every failure must have
    // spent all its retries.
    assert!(
        during.failed <= 1,
        "too many failures while failing over: {during:?}"
    );
    let stats = envoy
        .admin("/stats?filter=echo.demo.global.upstream_rq_retry_limit_exceeded$")
        .await
        .unwrap();
    let exhausted: u64 = stats
        .rsplit(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no retry stat in {stats:?}"));
    assert_eq!(exhausted, during.failed, "{stats}");
    assert_eq!(after.failed, 0, "{after:?}");
    assert_eq!(after.share(WEST), 100.0, "{after:?}");

    // Kubernetes then marks the endpoints not ready: still all served by the other zone.
    mesh.fleet.set_zone_ready(EAST, false).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let not_ready = send(&envoy, 1_000).await;
    assert_eq!(
        (not_ready.failed, not_ready.share(WEST)),
        (0, 100.0),
        "{not_ready:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_rule_distribute_overrides_the_annotation() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    assert!(send(&envoy, 500).await.share(EAST) > 98.0);

    let rule = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: demo
spec:
  host: echo.demo.global
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: true
        distribute:
          - from: us-east/us-east-1a/*
            to:
              "us-east/us-east-1a/*": 70
              "us-west/*": 30
"#;
    write_atomic(&mesh.fleet.dir.join("destinationrule.yaml"), rule).unwrap();

    let tally = wait_for_share(&envoy, EAST, 70.0, 4.0).await;
    assert!((tally.share(EAST) - 70.0).abs() <= 4.0, "{tally:?}");
    let long = send(&envoy, 2_000).await;
    assert!((long.share(EAST) - 70.0).abs() <= 2.0, "{long:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_annotation_keeps_default_weights_and_is_reported() {
    let mut mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;

    // Weights summing to 99.
    mesh.fleet
        .annotate("meshfleet.io/locality-weights", Some("local=90,remote=9"))
        .unwrap();
    let problems = support_wait_problem(&mesh.admin_addr).await;
    assert!(
        problems.contains("meshfleet.io/locality-weights"),
        "{problems}"
    );
    assert!(problems.contains("demo/echo"), "{problems}");

    let tally = send(&envoy, 2_000).await;
    assert!((tally.share(EAST) - 99.0).abs() <= 0.5, "{tally:?}");
    assert_eq!(tally.failed, 0);
}

async fn support_wait_problem(admin: &std::net::SocketAddr) -> String {
    let admin = *admin;
    meshfleet_demo::envoy::eventually(Duration::from_secs(10), || async move {
        let (_, body) = meshfleet_demo::traffic::get(admin, "localhost", "/debug/problems").await?;
        anyhow::ensure!(body.contains("locality-weights"), "no problem yet: {body}");
        Ok(body)
    })
    .await
    .expect("the malformed annotation was never reported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_and_sotw_envoys_converge_to_the_same_config() {
    let mesh = Mesh::start().await;
    let sotw = mesh.envoy(EAST, AdsApi::Sotw).await;
    let delta = mesh.envoy(EAST, AdsApi::Delta).await;

    let hosts = |body: String| {
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut seen = Vec::new();
        for cluster in json["cluster_statuses"].as_array().unwrap() {
            let name = cluster["name"].as_str().unwrap();
            if !name.starts_with("outbound|") {
                continue;
            }
            for host in cluster["host_statuses"].as_array().into_iter().flatten() {
                seen.push(format!(
                    "{name} {} w={} {}",
                    host["address"]["socket_address"]["address"], host["weight"], host["locality"]
                ));
            }
        }
        seen.sort();
        seen
    };
    let a = hosts(sotw.admin("/clusters?format=json").await.unwrap());
    let b = hosts(delta.admin("/clusters?format=json").await.unwrap());
    assert_eq!(a.len(), 12, "{a:#?}");
    assert_eq!(a, b);

    for envoy in [&sotw, &delta] {
        let tally = send(envoy, 2_000).await;
        assert!((tally.share(EAST) - 99.0).abs() <= 0.5, "{tally:?}");
    }

    // The controller sees both clients, everything sent has been acknowledged.
    let syncz: serde_json::Value =
        serde_json::from_str(&mesh.admin("/debug/syncz").await.unwrap()).unwrap();
    let clients = syncz.as_array().expect("syncz is a list");
    assert_eq!(clients.len(), 2, "{syncz:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envoy_without_a_network_reaches_clusters_that_have_one() {
    // Each zone's clusters on a network of their own, with no east-west gateway. A plain
    // Envoy sends no `NETWORK` metadata: as in Istio, an unset network matches every network,
    // so it reaches every pod directly.
    let mesh = Mesh::start_with(meshfleet_demo::fleet::two_zones(), |fleet| {
        let yaml = meshfleet_demo::fleet::clusters_yaml(&fleet.clusters);
        let with_networks = yaml
            .replace(
                "  zone: us-east-1a\n",
                "  zone: us-east-1a\n  network: net-east\n",
            )
            .replace(
                "  zone: us-west-2a\n",
                "  zone: us-west-2a\n  network: net-west\n",
            );
        assert_ne!(
            yaml, with_networks,
            "the fleet's YAML names the zones as expected"
        );
        write_atomic(&fleet.dir.join("clusters.yaml"), with_networks).unwrap();
    })
    .await;
    let catalog = mesh.admin("/debug/catalog").await.unwrap();
    assert!(catalog.contains("\"network\":\"net-east\""), "{catalog}");
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;

    let tally = send(&envoy, 2_000).await;

    assert_eq!(tally.failed, 0, "{tally:?}");
    assert!(tally.share(EAST) > 98.0, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_pod_is_one_host() {
    // east-1's pods are dual-stack: each is in its IPv4 slice and in an IPv6 slice. Counted
    // twice, east-1 would take two thirds of the zone's traffic; as one host each, half.
    let mesh = Mesh::start_with(meshfleet_demo::fleet::two_zones(), |fleet| {
        let file = fleet.dir.join("endpoints-east-1.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let mut pod = 0;
        let mut v4 = String::new();
        for line in text.lines() {
            v4.push_str(line);
            v4.push('\n');
            if line.starts_with("  - addresses:") {
                pod += 1;
                v4.push_str(&format!(
                    "    targetRef: {{kind: Pod, namespace: demo, name: echo-{pod}}}\n"
                ));
            }
        }
        let mut v6 = v4
            .replace("name: echo-east-1\n", "name: echo-east-1-v6\n")
            .replace("addressType: IPv4", "addressType: IPv6");
        for i in 1..=pod {
            let v4_line = v6
                .lines()
                .find(|l| l.starts_with("  - addresses: [\"127."))
                .unwrap()
                .to_owned();
            v6 = v6.replacen(&v4_line, &format!("  - addresses: [\"fd00::{i}\"]"), 1);
        }
        write_atomic(&file, format!("{v4}---\n{v6}")).unwrap();
    })
    .await;
    let envoy = mesh.envoy(EAST, AdsApi::Delta).await;
    let tally = send(&envoy, 4_000).await;
    assert_eq!(tally.failed, 0, "{tally:?}");
    let (east1, east2) = (
        tally.clusters["east-1"] as f64,
        tally.clusters["east-2"] as f64,
    );
    let share = east1 / (east1 + east2);
    assert!(
        (0.42..=0.58).contains(&share),
        "east-1 took {share:.2} of the zone: {tally:?}"
    );
    let metrics = mesh.admin("/metrics").await.unwrap();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("meshfleet_xds_nacks_total{") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let catalog = mesh.admin("/debug/catalog").await.unwrap();
    assert!(catalog.contains("fd00::1"), "{catalog}");
    // Envoy holds one host per pod, at its IPv4 address.
    let clusters = envoy.admin("/clusters").await.unwrap();
    let hosts: std::collections::BTreeSet<&str> = clusters
        .lines()
        .filter(|l| l.contains("::cx_total::"))
        .filter_map(|l| l.split("::").nth(1))
        .collect();
    assert!(!hosts.iter().any(|h| h.contains("fd00")), "{hosts:?}");
    assert_eq!(
        hosts.iter().filter(|h| h.starts_with("127.0.10.")).count(),
        3,
        "{hosts:?}"
    );
}
