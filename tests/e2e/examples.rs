//! The examples are true: `meshfleet catalog` and `meshfleet run` on `examples/two-zone`, and a
//! real Envoy started from `examples/envoy-bootstrap.yaml`. No traffic is sent (the example's
//! addresses are not on this machine); we read what Envoy was configured with.

use meshfleet_testkit as support;

use std::path::PathBuf;
use std::time::Duration;

use meshfleet_demo::envoy::{AdsApi, Envoy, EnvoyConfig, eventually, free_port};
use meshfleet_model::Locality;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/two-zone")
}

#[test]
fn catalog_prints_the_example_services() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(["catalog", "--config"])
        .arg(example())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[1].starts_with("echo.demo.global"), "{table}");
    assert!(
        rows[1].contains("3/4"),
        "three of four endpoints ready: {table}"
    );
    assert!(rows[2].starts_with("orders.shop.global"), "{table}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Hosts of every `outbound|` cluster, from Envoy's `/clusters?format=json`.
async fn hosts(envoy: &Envoy) -> anyhow::Result<Vec<String>> {
    let json: serde_json::Value =
        serde_json::from_str(&envoy.admin("/clusters?format=json").await?)?;
    let mut seen = Vec::new();
    for cluster in json["cluster_statuses"].as_array().into_iter().flatten() {
        let name = cluster["name"].as_str().unwrap_or_default();
        for host in cluster["host_statuses"].as_array().into_iter().flatten() {
            let addr = &host["address"]["socket_address"];
            if name.starts_with("outbound|") {
                seen.push(format!(
                    "{name} {}:{} weight={} zone={}",
                    addr["address"].as_str().unwrap_or_default(),
                    addr["port_value"],
                    host["weight"],
                    host["locality"]["zone"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    seen.sort();
    anyhow::ensure!(seen.len() >= 4, "not configured yet: {seen:?}");
    Ok(seen)
}

/// An Envoy in the example's us-east-1a, on net-east (as `examples/envoy-bootstrap.yaml`).
async fn east_envoy(xds_addr: std::net::SocketAddr) -> Envoy {
    let config = EnvoyConfig {
        node_id: "envoy-us-east-1a".into(),
        locality: Locality::new("us-east", "us-east-1a", ""),
        network: "net-east".into(),
        xds_addr,
        listener_port: free_port().unwrap(),
        admin_port: free_port().unwrap(),
        api: AdsApi::Delta,
        certs: None,
    };
    Envoy::start(config, None).await.expect("envoy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_bootstrap_gets_direct_and_gateway_endpoints() {
    let (_controller, xds_addr, _admin) = support::serve(&example()).await;
    let envoy = east_envoy(xds_addr).await;
    let seen = eventually(Duration::from_secs(30), || hosts(&envoy))
        .await
        .unwrap();

    // Same network: pods directly (the not-ready one left out). Other network: one endpoint at
    // its east-west gateway carrying the weight of what stands behind it.
    assert_eq!(
        seen,
        [
            "outbound|80||echo.demo.global 10.1.0.10:15443 weight=2 zone=us-west-2a",
            "outbound|80||echo.demo.global 10.10.1.1:8080 weight=1 zone=us-east-1a",
            "outbound|80||echo.demo.global 10.10.2.1:8080 weight=1 zone=us-east-1a",
            "outbound|9090||orders.shop.global 10.1.0.10:15443 weight=1 zone=us-west-2a",
        ]
    );
}

/// The example with west's east-west gateway given by hostname: meshfleet resolves it through
/// the upstream resolver (a dnsmasq the test runs), an Envoy on net-east gets the resolved
/// address as west's gateway endpoint, and a new answer for the name moves it once the (short)
/// TTL runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_hostname_is_resolved_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(example()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            "eastWestGateway: { address: 10.1.0.10, port: 15443 }",
            "eastWestGateway: { address: gw-west.example, port: 15443 }",
        );
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let mut resolver = crate::dns::dnsmasq(upstream, &["--address=/gw-west.example/10.1.0.77"]);
    let up = upstream.to_string();
    let flags = ["--dns-upstream", &up, "--gateway-min-ttl", "500ms"];
    let (_controller, xds_addr, admin) = support::serve_with(dir.path(), &flags).await;
    let envoy = east_envoy(xds_addr).await;
    let through = |gateway: &'static str| {
        let envoy = &envoy;
        move || async move {
            let seen = hosts(envoy).await?;
            let west =
                format!("outbound|80||echo.demo.global {gateway}:15443 weight=2 zone=us-west-2a");
            anyhow::ensure!(seen.contains(&west), "{seen:?}");
            Ok(seen)
        }
    };
    eventually(Duration::from_secs(30), through("10.1.0.77"))
        .await
        .unwrap();

    // The name now answers another address: the gateway endpoint follows.
    resolver.kill().await.unwrap();
    let _resolver = crate::dns::dnsmasq(upstream, &["--address=/gw-west.example/10.1.0.78"]);
    eventually(Duration::from_secs(30), through("10.1.0.78"))
        .await
        .unwrap();
    let problems = support::admin(admin, "/debug/problems").await.unwrap();
    assert!(!problems.contains("gw-west.example"), "{problems}");
}
