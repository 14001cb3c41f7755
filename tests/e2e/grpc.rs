//! Proxyless gRPC end to end, no Envoy: grpcio's own xDS resolver dials
//! `xds:///greeter.demo.global:9090`, reads the API listener, route, cluster and endpoints that
//! `meshfleet run` serves for its locality, and picks backends itself. We count which zone
//! answered, as a user of the service would.
//!
//! ```text
//!  tests/grpc/client.py ──ADS, node in us-east-1a──> meshfleet run --config DIR
//!        │                                               (Clusters, Service, EndpointSlices)
//!        └──gRPC──> tests/grpc/backend.py: 4 clusters × 3 backends on 127.0.2x.y
//! ```
//!
//! The peers are Python (grpcio, pinned in tests/requirements.txt) from `.venv`, or `PYTHON`.
//! A missing peer fails the test; it never skips.

use meshfleet_testkit as support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use meshfleet_demo::envoy::eventually;
use meshfleet_demo::fleet::{self, ClusterSpec, write_atomic};
use serde::Deserialize;
use support::{EAST, WEST};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const SERVICE: &str = "greeter";
const NAMESPACE: &str = "demo";
const PORT: u16 = 9090;
const TARGET: &str = "xds:///greeter.demo.global:9090";
/// Calls per measurement. gRPC picks a locality at random by weight, so for 1% remote the
/// standard deviation is sqrt(4000·0.01·0.99) ≈ 6 calls (0.16%): ±1% is six of them.
const CALLS: u64 = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxyless_grpc_keeps_99_percent_in_zone_and_follows_annotation_edits() {
    let python = find_python();
    let clusters = fleet::two_zones();
    let backends = Backends::start(&python, &clusters).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &clusters, &backends.ports);
    write_service(dir.path(), None);
    let (_controller, xds_addr, admin_addr) = support::serve(dir.path()).await;
    let east = clusters.iter().find(|c| c.zone == EAST).expect("east");
    let mut client = GrpcClient::start(&python, xds_addr, admin_addr, east).await;

    // Until every locality's subchannels are connected, gRPC sends all to the ready ones.
    let warm = client.send(200).await;
    assert_eq!(warm.failed, 0, "{:?}", warm.errors);

    let tally = client.send(CALLS).await;
    eprintln!("default weights: {tally:?}");
    assert_eq!((tally.ok, tally.failed), (CALLS, 0), "{tally:?}");
    let local = tally.share(EAST);
    assert!(
        (98.0..=100.0).contains(&local),
        "local {local:.2}%: {tally:?}"
    );
    assert_eq!(tally.zones.keys().collect::<Vec<_>>(), [EAST, WEST]);
    // Round robin inside the zone: both clusters take part.
    assert!(
        tally.clusters["east-1"] > 1_500 && tally.clusters["east-2"] > 1_500,
        "{tally:?}"
    );
    let before = acked(admin_addr, &client.node_id, None).await;

    // The same client, the same channel: only the Service template changes.
    write_service(dir.path(), Some("local=50,remote=50"));
    let moved = client.wait_for_share(EAST, 50.0, 10.0).await;
    assert!((moved.share(EAST) - 50.0).abs() <= 10.0, "{moved:?}");
    let tally = client.send(CALLS).await;
    eprintln!("local=50,remote=50: {tally:?}");
    assert_eq!((tally.ok, tally.failed), (CALLS, 0), "{tally:?}");
    // Standard deviation sqrt(4000·0.25) ≈ 32 calls (0.8%).
    let local = tally.share(EAST);
    assert!((local - 50.0).abs() <= 6.0, "local {local:.2}%: {tally:?}");
    let after = acked(admin_addr, &client.node_id, Some(&before)).await;
    assert_ne!(
        before["eds"], after["eds"],
        "new endpoint weights were sent"
    );
}

/// grpcio sends bytes that are no `DiscoveryRequest`, then a 5 MiB one: the controller ends
/// each stream with the status a gRPC server gives (`tests/grpc/raw_status.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_get_invalid_argument_and_resource_exhausted() {
    let python = find_python();
    let dir = tempfile::tempdir().unwrap();
    let (_controller, xds_addr, _admin) = support::serve(dir.path()).await;
    let run = Command::new(&python)
        .arg(script("raw_status.py"))
        .arg(xds_addr.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("raw_status.py ends within 60 s")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(codes["malformed"], "INVALID_ARGUMENT", "{codes:?}");
    assert_eq!(codes["oversized"], "RESOURCE_EXHAUSTED", "{codes:?}");
}

/// `PYTHON`, else `.venv/bin/python` in this directory or a parent; it must import grpc.
pub(crate) fn find_python() -> PathBuf {
    let python = std::env::var_os("PYTHON").map(PathBuf::from).or_else(|| {
        let cwd = std::env::current_dir().ok()?;
        cwd.ancestors()
            .map(|dir| dir.join(".venv/bin/python"))
            .find(|path| path.is_file())
    });
    let python = python.expect("no .venv/bin/python (nor PYTHON): run `make setup`");
    let out = std::process::Command::new(&python)
        .args(["-c", "import grpc; print(grpc.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run `make setup`", python.display()));
    assert!(
        out.status.success(),
        "{} cannot import grpc: run `make setup` (installs tests/requirements.txt)\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{} with grpcio {}",
        python.display(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/grpc")
        .join(name)
}

/// Backends of cluster `i` on `127.0.<20+i>.<j+1>`.
fn backend_ips(i: usize, cluster: &ClusterSpec) -> Vec<Ipv4Addr> {
    (0..cluster.backends)
        .map(|j| Ipv4Addr::new(127, 0, 20 + i as u8, j as u8 + 1))
        .collect()
}

/// tests/grpc/backend.py serving every cluster's backends; killed when dropped.
struct Backends {
    /// The one process; its stdin is held open, which keeps it serving.
    _child: Child,
    /// Per cluster, the port its backends share.
    ports: BTreeMap<String, u16>,
}

impl Backends {
    async fn start(python: &Path, clusters: &[ClusterSpec]) -> Self {
        let specs = clusters.iter().enumerate().map(|(i, c)| {
            let ips: Vec<String> = backend_ips(i, c).iter().map(Ipv4Addr::to_string).collect();
            format!("{}:{}:{}:{}", c.name, c.region, c.zone, ips.join(","))
        });
        let mut child = Command::new(python)
            .arg(script("backend.py"))
            .args(specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting backend.py");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = read_line(&mut stdout, Duration::from_secs(20))
            .await
            .expect("backend.py never reported its ports");
        let ports = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        Self {
            _child: child,
            ports,
        }
    }
}

/// The fleet's Clusters (as `meshfleet demo` writes them) and one EndpointSlice per cluster,
/// port `grpc`, pointing at its backends.
fn write_config(dir: &Path, clusters: &[ClusterSpec], ports: &BTreeMap<String, u16>) {
    write_atomic(&dir.join("clusters.yaml"), fleet::clusters_yaml(clusters)).unwrap();
    for (i, c) in clusters.iter().enumerate() {
        let mut yaml = format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {SERVICE}-{c}\n\
             \x20 namespace: {NAMESPACE}\n  labels:\n    kubernetes.io/service-name: {SERVICE}\n\
             \x20   multicluster.kubernetes.io/source-cluster: {c}\naddressType: IPv4\n\
             ports:\n  - name: grpc\n    port: {port}\nendpoints:\n",
            c = c.name,
            port = ports[&c.name],
        );
        for ip in backend_ips(i, c) {
            let _ = write!(
                yaml,
                "  - addresses: [\"{ip}\"]\n    conditions:\n      ready: true\n"
            );
        }
        write_atomic(&dir.join(format!("endpoints-{}.yaml", c.name)), &yaml).unwrap();
    }
}

/// The Service template `greeter`, exported, with one gRPC port and optional locality weights;
/// written atomically, so the watcher never reads half of it.
fn write_service(dir: &Path, weights: Option<&str>) {
    let weights = weights
        .map(|w| format!("\n    meshfleet.io/locality-weights: \"{w}\""))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {SERVICE}\n  namespace: {NAMESPACE}\n\
         \x20 annotations:\n    meshfleet.io/global: \"true\"{weights}\nspec:\n  ports:\n\
         \x20   - name: grpc\n      port: {PORT}\n      targetPort: grpc\n      appProtocol: grpc\n"
    );
    write_atomic(&dir.join("service.yaml"), &yaml).unwrap();
}

/// What tests/grpc/client.py prints for a batch of calls.
#[derive(Debug, Deserialize)]
struct Tally {
    ok: u64,
    failed: u64,
    zones: BTreeMap<String, u64>,
    clusters: BTreeMap<String, u64>,
    /// The first few distinct failures, `CODE: details`.
    errors: Vec<String>,
}

impl Tally {
    /// Percent of all calls answered by `zone`.
    fn share(&self, zone: &str) -> f64 {
        let total = (self.ok + self.failed).max(1);
        self.zones.get(zone).copied().unwrap_or_default() as f64 * 100.0 / total as f64
    }
}

/// tests/grpc/client.py: one xDS channel, kept open; killed when dropped.
struct GrpcClient {
    node_id: String,
    admin_addr: SocketAddr,
    child: Child,
    /// Where batch sizes are written.
    stdin: ChildStdin,
    /// One JSON line per batch.
    stdout: Lines<BufReader<ChildStdout>>,
    /// Keeps the bootstrap file alive.
    _dir: tempfile::TempDir,
}

impl GrpcClient {
    /// Starts the client in `cluster`'s locality and waits until its channel serves a call.
    async fn start(
        python: &Path,
        xds_addr: SocketAddr,
        admin_addr: SocketAddr,
        cluster: &ClusterSpec,
    ) -> Self {
        let node_id = format!("grpc-{}", cluster.zone);
        let dir = tempfile::tempdir().expect("tempdir");
        let bootstrap = dir.path().join("bootstrap.json");
        let json = serde_json::json!({
            "xds_servers": [{
                "server_uri": xds_addr.to_string(),
                "channel_creds": [{"type": "insecure"}],
                "server_features": ["xds_v3"],
            }],
            "node": {
                "id": node_id,
                "locality": {"region": cluster.region, "zone": cluster.zone},
                "metadata": {"NETWORK": ""},
            },
        });
        std::fs::write(&bootstrap, json.to_string()).unwrap();
        let mut child = Command::new(python)
            .arg(script("client.py"))
            .arg(TARGET)
            .env("GRPC_XDS_BOOTSTRAP", &bootstrap)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting client.py");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = read_line(&mut stdout, Duration::from_secs(40)).await;
        if !matches!(ready.as_deref(), Ok(r#"{"ready": true}"#)) {
            let syncz = support::admin(admin_addr, "/debug/syncz").await;
            panic!("gRPC client never got a working channel: {ready:?}\nsyncz: {syncz:?}");
        }
        Self {
            node_id,
            admin_addr,
            child,
            stdin,
            stdout,
            _dir: dir,
        }
    }

    /// Makes `count` unary calls on the open channel.
    async fn send(&mut self, count: u64) -> Tally {
        self.stdin
            .write_all(format!("{count}\n").as_bytes())
            .await
            .expect("client.py exited");
        self.stdin.flush().await.unwrap();
        match read_line(&mut self.stdout, Duration::from_secs(60)).await {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}")),
            Err(e) => {
                let status = self.child.try_wait();
                let syncz = support::admin(self.admin_addr, "/debug/syncz").await;
                panic!("no tally: {e:#} (client {status:?})\nsyncz: {syncz:?}")
            }
        }
    }

    /// Sends batches of 500 until `zone`'s share is within `tolerance` of `expected` percent
    /// with no failures, for at most 20 s; returns the last batch either way.
    async fn wait_for_share(&mut self, zone: &str, expected: f64, tolerance: f64) -> Tally {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let tally = self.send(500).await;
            let close = (tally.share(zone) - expected).abs() <= tolerance && tally.failed == 0;
            if close || tokio::time::Instant::now() >= deadline {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn read_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let line = tokio::time::timeout(timeout, lines.next_line()).await??;
    line.ok_or_else(|| anyhow::anyhow!("the process closed its stdout"))
}

/// Waits until the controller's `/debug/syncz` shows `node_id` subscribed to LDS, RDS, CDS
/// and EDS, each with everything sent acknowledged and no NACK, and something new since
/// `since` (versions per type) if given; returns the acknowledged versions.
async fn acked(
    admin_addr: SocketAddr,
    node_id: &str,
    since: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let check = || async {
        let body = support::admin(admin_addr, "/debug/syncz").await?;
        let syncz: serde_json::Value = serde_json::from_str(&body)?;
        let client = syncz
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["node_id"] == node_id)
            .ok_or_else(|| anyhow::anyhow!("{node_id} not connected: {body}"))?;
        let mut versions = BTreeMap::new();
        for kind in ["lds", "rds", "cds", "eds"] {
            let state = &client["types"][kind];
            anyhow::ensure!(state["last_nack"].is_null(), "{kind} NACKed: {state}");
            let sent = state["version_sent"].as_str().unwrap_or_default();
            anyhow::ensure!(
                !sent.is_empty() && state["version_acked"] == sent,
                "{kind} not acknowledged: {state}"
            );
            versions.insert(kind.to_owned(), sent.to_owned());
        }
        anyhow::ensure!(Some(&versions) != since, "nothing new sent: {versions:?}");
        Ok(versions)
    };
    eventually(Duration::from_secs(10), check)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}
