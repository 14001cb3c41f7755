//! A fleet on loopback: member clusters with echo backends, written to a config directory the
//! way a user would write it (Cluster, Service template, EndpointSlices per cluster).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::echo::{EchoServer, Identity};

/// One member cluster of the fleet.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub name: String,
    pub region: String,
    pub zone: String,
    /// How many echo backends (pods) it runs.
    pub backends: usize,
}

impl ClusterSpec {
    pub fn new(name: &str, region: &str, zone: &str, backends: usize) -> Self {
        Self {
            name: name.into(),
            region: region.into(),
            zone: zone.into(),
            backends,
        }
    }
}

/// The demo's shape: two zones, two clusters each, three backends per cluster.
pub fn two_zones() -> Vec<ClusterSpec> {
    vec![
        ClusterSpec::new("east-1", "us-east", "us-east-1a", 3),
        ClusterSpec::new("east-2", "us-east", "us-east-1a", 3),
        ClusterSpec::new("west-1", "us-west", "us-west-2a", 3),
        ClusterSpec::new("west-2", "us-west", "us-west-2a", 3),
    ]
}

/// The global service every fleet exports.
pub const SERVICE: &str = "echo";
pub const NAMESPACE: &str = "demo";
/// `<svc>.<ns>.global`
pub const HOST: &str = "echo.demo.global";

/// Running backends plus the config directory that describes them.
pub struct Fleet {
    pub dir: PathBuf,
    pub clusters: Vec<ClusterSpec>,
    /// Backends per cluster, in `clusters` order.
    pub backends: Vec<Vec<EchoServer>>,
    /// The annotations of the Service template.
    annotations: Vec<(String, String)>,
}

impl Fleet {
    /// Starts every backend on its own loopback address (`127.0.<10+i>.<j+1>`) and writes
    /// `clusters.yaml`, `service.yaml` and `endpoints-<cluster>.yaml` into `dir`.
    pub async fn start(dir: &Path, clusters: Vec<ClusterSpec>) -> anyhow::Result<Self> {
        let mut backends = Vec::new();
        for (i, cluster) in clusters.iter().enumerate() {
            backends.push(start_backends(i, cluster).await?);
        }
        let fleet = Self {
            dir: dir.to_owned(),
            clusters,
            backends,
            annotations: vec![("meshfleet.io/global".into(), "true".into())],
        };
        fleet.write_clusters()?;
        fleet.write_service()?;
        for i in 0..fleet.clusters.len() {
            fleet.write_endpoints(i, true)?;
        }
        Ok(fleet)
    }

    /// Sets (or with `None` removes) an annotation of the Service template and rewrites it.
    pub fn annotate(&mut self, key: &str, value: Option<&str>) -> anyhow::Result<()> {
        self.annotations.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.annotations.push((key.into(), value.into()));
        }
        self.write_service()
    }

    /// Kills every backend in `zone`, as a zone outage would.
    pub fn stop_zone(&self, zone: &str) {
        for i in self.cluster_indexes(zone) {
            self.backends[i].iter().for_each(EchoServer::stop);
        }
    }

    /// Marks the endpoints of `zone` ready or not in their EndpointSlices, as Kubernetes does
    /// once readiness probes fail or pass.
    pub fn set_zone_ready(&self, zone: &str, ready: bool) -> anyhow::Result<()> {
        for i in self.cluster_indexes(zone) {
            self.write_endpoints(i, ready)?;
        }
        Ok(())
    }

    /// Starts the backends of `zone` again, on the same addresses.
    pub async fn restart_zone(&mut self, zone: &str) -> anyhow::Result<()> {
        for i in self.cluster_indexes(zone) {
            let mut restarted = Vec::new();
            for old in &self.backends[i] {
                old.stop();
                restarted.push(EchoServer::start(old.addr, old.identity.clone()).await?);
            }
            self.backends[i] = restarted;
        }
        Ok(())
    }

    pub fn zones(&self) -> Vec<String> {
        let mut zones: Vec<String> = self.clusters.iter().map(|c| c.zone.clone()).collect();
        zones.dedup();
        zones
    }

    fn cluster_indexes(&self, zone: &str) -> Vec<usize> {
        (0..self.clusters.len())
            .filter(|&i| self.clusters[i].zone == zone)
            .collect()
    }

    fn write_clusters(&self) -> anyhow::Result<()> {
        write_atomic(
            &self.dir.join("clusters.yaml"),
            clusters_yaml(&self.clusters),
        )?;
        Ok(())
    }

    fn write_service(&self) -> anyhow::Result<()> {
        let mut annotations = String::new();
        for (k, v) in &self.annotations {
            let _ = write!(annotations, "\n    {k}: {v:?}");
        }
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {SERVICE}\n  namespace: {NAMESPACE}\n\
             \x20 annotations:{annotations}\nspec:\n  ports:\n    - name: http\n      port: 80\n\
             \x20     targetPort: 8080\n"
        );
        write_atomic(&self.dir.join("service.yaml"), &yaml)?;
        Ok(())
    }

    fn write_endpoints(&self, i: usize, ready: bool) -> anyhow::Result<()> {
        let cluster = &self.clusters[i];
        let backends = &self.backends[i];
        let port = backends.first().map_or(8080, |b| b.addr.port());
        let mut yaml = format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {SERVICE}-{c}\n\
             \x20 namespace: {NAMESPACE}\n  labels:\n    kubernetes.io/service-name: {SERVICE}\n\
             \x20   multicluster.kubernetes.io/source-cluster: {c}\naddressType: IPv4\n\
             ports:\n  - name: http\n    port: {port}\nendpoints:\n",
            c = cluster.name
        );
        for backend in backends {
            let _ = write!(
                yaml,
                "  - addresses: [\"{}\"]\n    conditions:\n      ready: {ready}\n",
                backend.addr.ip()
            );
        }
        write_atomic(
            &self.dir.join(format!("endpoints-{}.yaml", cluster.name)),
            &yaml,
        )?;
        Ok(())
    }
}

/// The `Cluster` documents of `clusters`, Ready, as a user would write them.
pub fn clusters_yaml(clusters: &[ClusterSpec]) -> String {
    let mut yaml = String::new();
    for c in clusters {
        let _ = write!(
            yaml,
            "---\napiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: {}\n\
             spec:\n  region: {}\n  zone: {}\n  provider: loopback\n\
             status:\n  conditions:\n    - type: Ready\n      status: \"True\"\n",
            c.name, c.region, c.zone
        );
    }
    yaml
}

/// Backends of cluster `i` share one port on distinct loopback addresses.
async fn start_backends(i: usize, cluster: &ClusterSpec) -> anyhow::Result<Vec<EchoServer>> {
    let identity = Identity {
        cluster: cluster.name.clone(),
        region: cluster.region.clone(),
        zone: cluster.zone.clone(),
    };
    let mut port = 0;
    let mut servers = Vec::new();
    for j in 0..cluster.backends {
        let ip = Ipv4Addr::new(127, 0, 10 + i as u8, j as u8 + 1);
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        let server = EchoServer::start(addr, identity.clone())
            .await
            .with_context(|| format!("starting echo backend on {addr}"))?;
        port = server.addr.port();
        servers.push(server);
    }
    Ok(servers)
}

pub use meshfleet_runtime::fs::write_atomic;
