//! What every end-to-end test needs: a fleet of echo backends on loopback, the `meshfleet`
//! binary serving it from a config directory, and real Envoys.

#![allow(dead_code)]

pub mod kube;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use meshfleet_demo::envoy::{AdsApi, Envoy, EnvoyConfig, eventually, free_port};
use meshfleet_demo::fleet::{self, ClusterSpec, Fleet, HOST};
use meshfleet_demo::traffic::{self, Tally};
use meshfleet_model::Locality;
use tokio::process::{Child, Command};

pub const EAST: &str = "us-east-1a";
pub const WEST: &str = "us-west-2a";

/// A fleet, its config directory and a running `meshfleet run`.
pub struct Mesh {
    pub fleet: Fleet,
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    controller: Child,
    _dir: tempfile::TempDir,
}

impl Mesh {
    /// The demo's two zones, started and served.
    pub async fn start() -> Self {
        Self::start_with(fleet::two_zones(), |_| {}).await
    }

    /// Starts `clusters`, lets `prepare` write extra files into the config directory, then
    /// starts `meshfleet run` on it and waits until it is ready.
    pub async fn start_with(clusters: Vec<ClusterSpec>, prepare: impl FnOnce(&Fleet)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let fleet = Fleet::start(dir.path(), clusters).await.expect("fleet");
        prepare(&fleet);
        let (controller, xds_addr, admin_addr) = serve(dir.path()).await;
        Self {
            fleet,
            xds_addr,
            admin_addr,
            controller,
            _dir: dir,
        }
    }

    /// The controller's process id.
    pub fn controller_pid(&self) -> u32 {
        self.controller.id().expect("the controller runs")
    }

    /// Sends SIGTERM to the controller and waits until it has exited.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.controller.id().expect("the controller runs");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success());
        self.controller
            .wait()
            .await
            .expect("waiting for the controller")
    }

    /// GET on the controller's admin port; fails unless 200.
    pub async fn admin(&self, path: &str) -> anyhow::Result<String> {
        admin(self.admin_addr, path).await
    }

    /// Starts an Envoy in `zone` (region taken from the fleet) and waits until it routes.
    pub async fn envoy(&self, zone: &str, api: AdsApi) -> Envoy {
        let region = self
            .fleet
            .clusters
            .iter()
            .find(|c| c.zone == zone)
            .map(|c| c.region.clone())
            .expect("zone in fleet");
        let config = EnvoyConfig {
            node_id: format!("envoy-{zone}-{api:?}").to_lowercase(),
            locality: Locality::new(&region, zone, ""),
            network: String::new(),
            xds_addr: self.xds_addr,
            listener_port: free_port().unwrap(),
            admin_port: free_port().unwrap(),
            api,
            certs: None,
        };
        let log =
            std::env::temp_dir().join(format!("{}-{}.log", config.node_id, config.admin_port));
        let envoy = Envoy::start(config, Some(&log))
            .await
            .expect("envoy not found: run `make setup` (tests/setup.sh) or set ENVOY_BIN");
        eventually(Duration::from_secs(30), || async {
            match traffic::get(envoy.listener(), HOST, "/").await? {
                (200, _) => Ok(()),
                (status, body) => anyhow::bail!("status {status}: {body}"),
            }
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "envoy never routed to {HOST} (log: {}): {e:#}",
                log.display()
            )
        });
        envoy
    }
}

/// The `meshfleet` binary under test: Cargo's and nextest's `*_BIN_EXE_meshfleet` when set,
/// else the one beside the test binary's `deps/` directory (the same target profile).
pub fn meshfleet_bin() -> std::path::PathBuf {
    for var in ["NEXTEST_BIN_EXE_meshfleet", "CARGO_BIN_EXE_meshfleet"] {
        if let Some(path) = std::env::var_os(var) {
            return path.into();
        }
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary lives in <target>/<profile>/deps");
    profile.join("meshfleet")
}

/// Starts `meshfleet run --config dir` on free loopback ports and waits until it is ready.
pub async fn serve(dir: &Path) -> (Child, SocketAddr, SocketAddr) {
    serve_with(dir, &[]).await
}

/// [`serve`] with more flags (`--state-dir`, `--zone`).
pub async fn serve_with(dir: &Path, flags: &[&str]) -> (Child, SocketAddr, SocketAddr) {
    serve_logged(dir, flags, None).await
}

/// [`serve_with`], its log (stderr) written to `log` when given.
pub async fn serve_logged(
    dir: &Path,
    flags: &[&str],
    log: Option<&Path>,
) -> (Child, SocketAddr, SocketAddr) {
    let dir = dir.to_str().expect("a UTF-8 path");
    let mut args = vec!["--config", dir];
    args.extend_from_slice(flags);
    run_logged(&args, log).await
}

/// `meshfleet run ARGS` on free loopback ports (xDS, admin and, unless given, DNS), its log
/// (stderr) written to `log` when given; waits until it is ready.
pub async fn run_logged(args: &[&str], log: Option<&Path>) -> (Child, SocketAddr, SocketAddr) {
    let flags = args;
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("creating the log")),
        None => Stdio::inherit(),
    };
    let addr = || -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())) };
    let (xds_addr, admin_addr) = (addr(), addr());
    let controller = Command::new(meshfleet_bin())
        .arg("run")
        .args(["--xds-addr", &xds_addr.to_string()])
        .args(["--admin-addr", &admin_addr.to_string()])
        .args(
            (!flags.contains(&"--dns-addr"))
                .then(|| ["--dns-addr".to_owned(), addr().to_string()])
                .into_iter()
                .flatten(),
        )
        .args(flags)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("starting meshfleet");
    eventually(Duration::from_secs(30), || admin(admin_addr, "/readyz"))
        .await
        .expect("meshfleet never became ready");
    (controller, xds_addr, admin_addr)
}

/// Resident memory of process `pid`, in MiB (`/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc/<pid>/status")
        / 1024
}

/// GET on a controller's admin port; fails unless 200.
pub async fn admin(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    match traffic::get(addr, "localhost", path).await? {
        (200, body) => Ok(body),
        (status, body) => anyhow::bail!("{path}: {status} {body}"),
    }
}

/// Sends `count` requests to `HOST` through `envoy`.
pub async fn send(envoy: &Envoy, count: u64) -> Tally {
    traffic::send(envoy.listener(), HOST, count).await
}

/// Polls until `count` requests through `envoy` give `zone` a share within `tolerance` of
/// `expected` percent; returns the last tally either way, for the assertion message.
pub async fn wait_for_share(envoy: &Envoy, zone: &str, expected: f64, tolerance: f64) -> Tally {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tally = send(envoy, 400).await;
        let close = (tally.share(zone) - expected).abs() <= tolerance && tally.failed == 0;
        if close || tokio::time::Instant::now() >= deadline {
            return tally;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
