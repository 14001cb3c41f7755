//! A real Envoy, started as a child process with a bootstrap that points it at meshfleet's ADS.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use meshfleet_model::Locality;
use serde_norway::Value;
use tokio::process::{Child, Command};

/// How the Envoy talks ADS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdsApi {
    /// `StreamAggregatedResources` (state of the world).
    Sotw,
    /// `DeltaAggregatedResources` (incremental).
    Delta,
}

/// What one Envoy is: its node identity and where it connects and listens.
#[derive(Clone, Debug)]
pub struct EnvoyConfig {
    pub node_id: String,
    pub locality: Locality,
    /// Istio's `NETWORK` node metadata; empty for the default network.
    pub network: String,
    pub xds_addr: SocketAddr,
    /// Port of the `meshfleet_outbound` listener, sent as `MESHFLEET_LISTENER_PORT`.
    pub listener_port: u16,
    pub admin_port: u16,
    pub api: AdsApi,
    /// A directory of Istio's file-mounted certificates (`cert-chain.pem`, `key.pem`,
    /// `root-cert.pem`): connect to meshfleet's mTLS port (`xds_addr` is then that port) with
    /// them, from `examples/envoy-bootstrap-mtls.yaml`. `None`: plaintext.
    pub certs: Option<PathBuf>,
}

/// The example bootstrap users start from; the demo and the tests run exactly this file with
/// their own node, ports and ADS flavour filled in.
const EXAMPLE_BOOTSTRAP: &str = include_str!("../../../examples/envoy-bootstrap.yaml");
const EXAMPLE_BOOTSTRAP_MTLS: &str = include_str!("../../../examples/envoy-bootstrap-mtls.yaml");

impl EnvoyConfig {
    /// The bootstrap (YAML): node with locality and metadata, ADS over gRPC to meshfleet.
    pub fn bootstrap(&self) -> anyhow::Result<String> {
        let example = match self.certs {
            Some(_) => EXAMPLE_BOOTSTRAP_MTLS,
            None => EXAMPLE_BOOTSTRAP,
        };
        let mut doc: Value = serde_norway::from_str(example)?;
        let api_type = match self.api {
            AdsApi::Sotw => "GRPC",
            AdsApi::Delta => "DELTA_GRPC",
        };
        let locality = &self.locality;
        set(&mut doc, "node.id", self.node_id.as_str().into())?;
        set(
            &mut doc,
            "node.locality.region",
            locality.region.as_str().into(),
        )?;
        set(
            &mut doc,
            "node.locality.zone",
            locality.zone.as_str().into(),
        )?;
        set(
            &mut doc,
            "node.locality.sub_zone",
            locality.subzone.as_str().into(),
        )?;
        set(
            &mut doc,
            "node.metadata.NETWORK",
            self.network.as_str().into(),
        )?;
        let port = self.listener_port.to_string();
        set(
            &mut doc,
            "node.metadata.MESHFLEET_LISTENER_PORT",
            port.into(),
        )?;
        set(
            &mut doc,
            "admin.address.socket_address.port_value",
            self.admin_port.into(),
        )?;
        set(
            &mut doc,
            "dynamic_resources.ads_config.api_type",
            api_type.into(),
        )?;
        let xds = "static_resources.clusters.0.load_assignment.endpoints.0.lb_endpoints.0.endpoint.address.socket_address";
        set(
            &mut doc,
            &format!("{xds}.address"),
            self.xds_addr.ip().to_string().into(),
        )?;
        set(
            &mut doc,
            &format!("{xds}.port_value"),
            self.xds_addr.port().into(),
        )?;
        if let Some(dir) = &self.certs {
            let tls =
                "static_resources.clusters.0.transport_socket.typed_config.common_tls_context";
            let file = |name: &str| Value::from(dir.join(name).display().to_string());
            let certs = format!("{tls}.tls_certificates.0");
            set(
                &mut doc,
                &format!("{certs}.certificate_chain.filename"),
                file("cert-chain.pem"),
            )?;
            set(
                &mut doc,
                &format!("{certs}.private_key.filename"),
                file("key.pem"),
            )?;
            set(
                &mut doc,
                &format!("{tls}.validation_context.trusted_ca.filename"),
                file("root-cert.pem"),
            )?;
        }
        Ok(serde_norway::to_string(&doc)?)
    }
}

/// Sets the value at a dotted path (numbers index sequences), creating mapping keys.
fn set(doc: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let mut node = doc;
    for key in path.split('.') {
        node = match key.parse::<usize>() {
            Ok(i) => node
                .get_mut(i)
                .with_context(|| format!("bootstrap has no {path}"))?,
            Err(_) => {
                let map = node
                    .as_mapping_mut()
                    .with_context(|| format!("bootstrap: {path}"))?;
                map.entry(key.into()).or_insert(Value::Null)
            }
        };
    }
    *node = value;
    Ok(())
}

/// Envoy on the bootstrap file `bootstrap`, one worker thread; its log (warnings and up) goes
/// to `log`, or is discarded. Killed when the child is dropped.
///
/// # Errors
/// Envoy is not found or does not start.
pub fn spawn(bootstrap: &Path, log: Option<&Path>) -> anyhow::Result<Child> {
    let bin = find_envoy()?;
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::null(),
    };
    Command::new(&bin)
        .arg("-c")
        .arg(bootstrap)
        .args([
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "-l",
            "warning",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    pub config: EnvoyConfig,
    child: Child,
    /// Keeps the bootstrap file alive as long as Envoy runs.
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with `config`'s bootstrap. Its log goes to `log` (or is discarded).
    pub async fn start(config: EnvoyConfig, log: Option<&Path>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let bootstrap = dir.path().join("bootstrap.yaml");
        std::fs::write(&bootstrap, config.bootstrap()?)?;
        let child = spawn(&bootstrap, log)?;
        Ok(Self {
            config,
            child,
            _dir: dir,
        })
    }

    /// The address of the `meshfleet_outbound` listener.
    pub fn listener(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.config.listener_port))
    }

    /// GETs a path on Envoy's admin port.
    pub async fn admin(&self, path: &str) -> anyhow::Result<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.config.admin_port));
        let (status, body) = super::traffic::get(addr, "localhost", path).await?;
        if status != 200 {
            bail!("envoy admin {path}: status {status}");
        }
        Ok(body)
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("envoy {} exited: {status}", self.config.node_id);
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Envoy from `ENVOY_BIN`, else `.venv/bin/envoy` in this directory or a parent, else `PATH`.
pub fn find_envoy() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        return Ok(bin.into());
    }
    let cwd = std::env::current_dir()?;
    let venv = cwd
        .ancestors()
        .map(|dir| dir.join(".venv/bin/envoy"))
        .find(|path| path.is_file());
    if let Some(path) = venv {
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("envoy"))
            .find(|path| path.is_file())
    });
    on_path.context("envoy not found: set ENVOY_BIN, or run `make setup` to install it into .venv")
}

/// A free TCP port on loopback (bound and released; good enough for a demo or a test).
pub fn free_port() -> std::io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `check` succeeds, polling every 100 ms, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(error.context(format!("still failing after {timeout:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
