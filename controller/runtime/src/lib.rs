//! meshfleet's runtime: the only crate with I/O. Sources feed the index, the reconcile loop
//! turns it into a catalog for the xDS cache and a plan for the sinks, and the servers (ADS,
//! admin) serve what was decided.
//!
//! ```text
//!  source::ConfigDir ──apply/delete──> Index ──> Catalog ──> xds::SnapshotCache ──> ADS streams
//!   (watched directory)                  │
//!                                        └──> Planner ──> apply ──> sink::DirSink
//!  admin: /metrics /healthz /readyz /debug/...  (reads run::State)
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod apply;
pub mod bindings;
pub mod cacerts;
pub mod fs;
pub mod gateways;
pub mod kube;
pub mod mtls;
pub mod process;
pub mod run;
pub mod sink;
pub mod source;
pub mod state;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Directory of YAML manifests, watched for changes.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "kube",
        conflicts_with = "kube"
    )]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub kube: kube::KubeArgs,
    /// ADS over plaintext gRPC.
    #[arg(long, default_value = "0.0.0.0:15010")]
    pub xds_addr: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`, `/debug/...`.
    #[arg(long, default_value = "0.0.0.0:15014")]
    pub admin_addr: SocketAddr,
    /// Propagate: write each member cluster's manifests under `DIR/clusters/`, kept up to date.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Propagate only to the clusters of this zone (every zone's instance plans alike); with
    /// `--state-dir` or `--kube`.
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// The mesh CA (made by `meshfleet ca init`): serve ADS with SDS and Istio's CA API over
    /// mTLS on `--xds-tls-addr`, and, with `--state-dir`, give every member cluster its
    /// plug-in CA (`istio-system/cacerts`), renewed before it expires.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// ADS with SDS, and `istio.v1.auth.IstioCertificateService`, over mutual TLS (with
    /// `--ca-dir`): clients present a certificate from the mesh CA.
    #[arg(long, default_value = "0.0.0.0:15012")]
    pub xds_tls_addr: SocketAddr,
    /// Validity of workload certificates served over SDS (renewed at two thirds) and the
    /// longest granted by `CreateCertificate`.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub workload_cert_ttl: Duration,
    /// How often the CA directory is looked at again: a rotated root or a renewed cluster CA
    /// reaches clients within this time (certificates from a new root follow two intervals
    /// after its trust bundle).
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ca_check_interval: Duration,
    /// DNS over UDP and TCP: the catalog's names (`clusterset.local`, `global`); other names
    /// are forwarded.
    #[arg(long, default_value = "0.0.0.0:15053")]
    pub dns_addr: SocketAddr,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub xds_limits: XdsLimits,
    #[command(flatten)]
    pub source_limits: SourceLimits,
}

/// Where DNS takes virtual IPs from, and where it forwards other names.
#[derive(Debug, Clone, clap::Args)]
pub struct DnsArgs {
    /// Virtual IPs of ClusterSetIP services, allocated by hashing their names (every instance
    /// allocates the same).
    #[arg(long, default_value = meshfleet_catalog::vip::DEFAULT_V4, value_name = "CIDR")]
    pub dns_vip_range: meshfleet_catalog::vip::Range,
    /// The same for services whose `ipFamilies` include IPv6.
    #[arg(long, default_value = meshfleet_catalog::vip::DEFAULT_V6, value_name = "CIDR")]
    pub dns_vip_range_v6: meshfleet_catalog::vip::Range,
    /// Resolvers other names are forwarded to (ADDRESS:PORT, repeatable); the system's
    /// (`/etc/resolv.conf`) when none is given.
    #[arg(long, value_name = "ADDR")]
    pub dns_upstream: Vec<SocketAddr>,
    /// A zone's client networks, `ZONE=CIDR[,CIDR...]` (repeatable): a headless service answers
    /// a client there with its zone's endpoints first (or alone, `meshfleet.io/dns-answers:
    /// local-only`).
    #[arg(long, value_name = "ZONE=CIDR")]
    pub dns_client_zone: Vec<meshfleet_dns::zones::ClientZones>,
    /// Least time an east-west gateway hostname's addresses are kept before it is resolved
    /// again (a shorter TTL is raised to this, a longer one cut to an hour), as Istio's
    /// `MinGatewayTTL`; a failed lookup keeps the last addresses and is retried after it.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub gateway_min_ttl: Duration,
}

impl Default for DnsArgs {
    fn default() -> Self {
        Self {
            dns_vip_range: meshfleet_catalog::vip::DEFAULT_V4
                .parse()
                .expect("a valid range"),
            dns_vip_range_v6: meshfleet_catalog::vip::DEFAULT_V6
                .parse()
                .expect("a valid range"),
            dns_upstream: Vec::new(),
            dns_client_zone: Vec::new(),
            gateway_min_ttl: gateways::MIN_TTL,
        }
    }
}

/// How the config directory guards against accidents (see [`source`]).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SourceLimits {
    /// Largest config file read, in bytes; a larger one is reported and skipped (what it
    /// defined before stays in effect).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_file_bytes: u64,
    /// How long a config file that became empty keeps what it defined (a shell's `>` empties
    /// a file before it writes it again).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub empty_file_grace: Duration,
    /// How long a Cluster removed from its file is kept, as unreachable, before it is gone
    /// (its workloads' tolerations of unreachable clusters apply meanwhile).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub removed_cluster_grace: Duration,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 << 20,
            empty_file_grace: Duration::from_secs(10),
            removed_cluster_grace: Duration::from_secs(300),
        }
    }
}

/// What one xDS client may ask of the server.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct XdsLimits {
    /// Largest xDS request message accepted, in bytes; a larger one ends its stream with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub xds_max_request_bytes: usize,
    /// Most resource names one xDS request may carry.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub xds_max_resources_per_request: usize,
    /// Most concurrent ADS streams on one HTTP/2 connection.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub xds_max_streams_per_connection: u32,
    /// Answer Istio's `istio.io/debug/syncz` (every client's node id and metadata) on the
    /// plaintext xDS port; without it such a request ends its stream with UNAUTHENTICATED.
    #[arg(long)]
    pub xds_plaintext_debug: bool,
}

impl Default for XdsLimits {
    fn default() -> Self {
        let limits = meshfleet_xds::server::Limits::default();
        Self {
            xds_max_request_bytes: limits.max_request_bytes,
            xds_max_resources_per_request: limits.max_resources_per_request,
            xds_max_streams_per_connection: 128,
            xds_plaintext_debug: false,
        }
    }
}

/// A `--config` that is not a directory is a mistake to report, not an empty fleet.
pub fn ensure_dir(config: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.is_dir(),
        "--config {}: not a directory",
        config.display()
    );
    Ok(())
}
