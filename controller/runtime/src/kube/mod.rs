//! `meshfleet run --kube`: the gateway cluster's objects and every member's, watched through
//! kube-rs into the same index the config directory feeds, and copies written to members by
//! server-side apply through the same sink trait.
//!
//! ```text
//!  gateway cluster ── policies, templates, ServiceExports, DestinationRules ──> Index (origin "(gateway)")
//!    │  Clusters, remote secrets ──> members::Registry ──> Clusters (Ready, resourceSummary) ──┘
//!    │                                  └─ per member: Session (watches) ──> Index (origin Cluster(name))
//!    └─ Lease ──> lease::Elector ──> leader ──> sink::KubeSink (server-side apply), status writes
//! ```
//!
//! Every replica watches and serves; only the Lease holder writes. Propagation waits until
//! every gateway resource has been listed once, so a partial view never prunes a copy.

pub mod agent;
pub mod events;
pub mod feed;
pub mod lease;
pub mod members;
pub mod objects;
pub mod sink;
pub mod status;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use meshfleet_index::Index;

use feed::{Changes, Health, IndexFeed, Refused, Target};
use members::{Clients, Registry};
use objects::{DEFAULT_TEMPLATES, DESTINATION_RULES, GATEWAY_POLICIES, Resource};

/// How `meshfleet run --kube` reaches the gateway cluster and its members.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Run in a gateway cluster: read meshfleet's objects from its API server (in-cluster
    /// config, else `KUBECONFIG` or `--kubeconfig`), watch every member registered by an Istio
    /// remote secret or a Cluster's `secretRef`, and apply copies to members.
    #[arg(long)]
    pub kube: bool,
    /// The gateway cluster's kubeconfig, instead of the in-cluster config.
    #[arg(long, value_name = "FILE", requires = "kube")]
    pub kubeconfig: Option<PathBuf>,
    /// meshfleet's namespace in the gateway cluster: where remote secrets are read and the
    /// leader Lease is kept.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "meshfleet-system",
        value_name = "NS"
    )]
    pub kube_namespace: String,
    /// How long the endpoints of a member whose API server cannot be reached are kept (it is
    /// not ready at once).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub member_grace: Duration,
    /// Another kind of resource template to read from the gateway cluster, beside
    /// Deployments, StatefulSets, DaemonSets, Services, ConfigMaps, ServiceAccounts and
    /// ServiceExports: `KIND.VERSION[.GROUP]`, as `Secret.v1` or
    /// `Guestbook.v1alpha1.webapp.my.domain` (repeatable; meshfleet's ClusterRole must allow
    /// listing and watching it).
    #[arg(long = "template-kind", value_name = "KIND.VERSION[.GROUP]", value_parser = parse_template_kind)]
    pub template_kinds: Vec<Resource>,
    /// The Lease the replicas elect their writer with.
    #[arg(long, default_value = "meshfleet-leader", value_name = "NAME")]
    pub lease_name: String,
    /// How long the Lease holds without renewal; the holder stops writing after two thirds
    /// of it without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_lease_duration, value_name = "DURATION")]
    pub lease_duration: Duration,
}

impl Default for KubeArgs {
    fn default() -> Self {
        Self {
            kube: false,
            kubeconfig: None,
            kube_namespace: "meshfleet-system".to_owned(),
            template_kinds: Vec::new(),
            member_grace: Duration::from_secs(300),
            lease_name: "meshfleet-leader".to_owned(),
            lease_duration: lease::DURATION,
        }
    }
}

/// A Lease duration: at least a second (a Lease counts in whole seconds).
///
/// # Errors
/// Not a duration, or under a second.
pub fn parse_lease_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < Duration::from_secs(1) {
        return Err(format!("{text}: a Lease lasts at least a second"));
    }
    Ok(duration)
}

/// `Guestbook.v1alpha1.webapp.my.domain` → that kind's resource (its plural as the API
/// server's conventions make it).
///
/// # Errors
/// Not `KIND.VERSION[.GROUP]`.
pub fn parse_template_kind(text: &str) -> Result<Resource, String> {
    let mut parts = text.splitn(3, '.');
    let (Some(kind), Some(version)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "{text:?}: expected KIND.VERSION[.GROUP], as Secret.v1 or Deployment.v1.apps"
        ));
    };
    let group = parts.next().unwrap_or_default();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !valid(kind) || !valid(version) || !(group.is_empty() || valid(group)) {
        return Err(format!(
            "{text:?}: expected KIND.VERSION[.GROUP], as Secret.v1 or Deployment.v1.apps"
        ));
    }
    let plural =
        kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind))
            .plural;
    // Read once at start: the strings live as long as the process.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Ok(Resource::new(
        leak(group.to_owned()),
        leak(version.to_owned()),
        leak(kind.to_owned()),
        leak(plural),
    ))
}

/// The kube sources and the election, started.
pub struct Started {
    pub tasks: Vec<JoinHandle<()>>,
    /// Members' clients, for the sink.
    pub clients: Clients,
    /// Whether this replica writes.
    pub leader: watch::Receiver<bool>,
    /// Whether every gateway resource has been listed once.
    pub synced: watch::Receiver<bool>,
    /// Pull-mode clusters and the gateway cluster their Works go to.
    pub pull: sink::PullMode,
}

/// The gateway cluster's client: `--kubeconfig`, else the in-cluster config, else `KUBECONFIG`
/// or `~/.kube/config`.
pub async fn gateway_client(args: &KubeArgs) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster config and no usable KUBECONFIG")?,
    };
    kube::Client::try_from(config).context("making the gateway cluster's client")
}

/// Starts watching the gateway cluster and its members into `index`, and the election.
pub async fn start(
    args: &KubeArgs,
    index: Arc<Mutex<Index>>,
    changed: Arc<watch::Sender<u64>>,
    up: prometheus_client::metrics::gauge::Gauge,
) -> anyhow::Result<Started> {
    let client = gateway_client(args).await?;
    let target = Target { index, changed };
    let refused = Arc::new(Refused::default());
    // Without the policies, propagation would prune what they placed: they must be listed.
    let health = Arc::new(Health::requiring(&GATEWAY_POLICIES));
    let mut tasks = Vec::new();
    let mut resources: Vec<Resource> = GATEWAY_POLICIES.to_vec();
    resources.push(DESTINATION_RULES);
    for template in DEFAULT_TEMPLATES
        .into_iter()
        .chain(args.template_kinds.iter().copied())
    {
        if !resources.contains(&template) {
            resources.push(template);
        }
    }
    let (synced_tx, listed) = watch::channel(false);
    let expected = resources.len();
    for resource in resources {
        let feed = IndexFeed::new(
            target.clone(),
            members::gateway_origin(),
            resource,
            None,
            refused.clone(),
        );
        let changes = Changes::of(client.clone(), resource, None);
        let health = health.clone();
        let synced_tx = synced_tx.clone();
        let up = up.clone();
        tasks.push(tokio::spawn(async move {
            let (mut changes, mut feed) = (changes, feed);
            while let Some(batch) = changes.next().await {
                feed.take(batch, &health);
                // A kind RBAC keeps from meshfleet is told, not taken as empty silently.
                let denied = health
                    .denied()
                    .into_iter()
                    .find(|(r, _)| *r == resource.name());
                let problem = denied.map(|(r, message)| {
                    meshfleet_model::problem::Problem::new(
                        meshfleet_model::problem::Source::Cluster {
                            name: "(gateway)".to_owned(),
                        },
                        format!("cannot list or watch {r}: {message}; its objects are not read"),
                    )
                });
                let source = meshfleet_model::problem::Source::Cluster {
                    name: format!("(gateway) {}", resource.name()),
                };
                if feed.refused.set("access", source, problem) {
                    let mut index = feed.target.index.lock().expect("index lock");
                    feed.refused.publish(&mut index, &feed.origin);
                    drop(index);
                    feed.target.bump();
                }
                if health.listed() >= expected && !*synced_tx.borrow() {
                    tracing::info!("every gateway resource listed");
                    synced_tx.send_replace(true);
                    // Ready (`/readyz`) once the gateway's objects are all in.
                    up.set(1);
                }
            }
        }));
    }
    let (leader_tx, leader) = watch::channel(false);
    let retry = (args.lease_duration / 7).max(Duration::from_millis(200));
    let elector = lease::Elector::new(
        client.clone(),
        &args.kube_namespace,
        &args.lease_name,
        &lease::identity(),
    )
    .with_periods(args.lease_duration, args.lease_duration * 2 / 3, retry);
    tasks.push(tokio::spawn(elector.run(leader_tx)));
    let clients: Clients = Arc::new(RwLock::new(Default::default()));
    let pull = sink::PullMode {
        clusters: Arc::new(RwLock::new(Default::default())),
        gateway: client.clone(),
    };
    // Propagation waits for the gateway's objects and for the fleet: the Clusters and remote
    // secrets listed, and every member connected or found unreachable (at most
    // `members::FLEET_WAIT`), so that its first plan sees every cluster as it is.
    let (fleet_tx, mut fleet) = watch::channel(false);
    let (both_tx, synced) = watch::channel(false);
    let mut gateway_listed = listed.clone();
    tasks.push(tokio::spawn(async move {
        let _ = gateway_listed.wait_for(|listed| *listed).await;
        let _ = fleet.wait_for(|known| *known).await;
        tracing::info!("the gateway's objects and the fleet are known: propagation starts");
        both_tx.send_replace(true);
        // Held until the task is aborted, so that the receivers keep the last value.
        std::future::pending::<()>().await;
    }));
    let registry = Registry::new(members::Context {
        fleet_known: fleet_tx,
        target,
        pull: pull.clusters.clone(),
        gateway: client,
        namespace: args.kube_namespace.clone(),
        grace: args.member_grace,
        clients: clients.clone(),
        refused,
        leader: leader.clone(),
    });
    tasks.push(tokio::spawn(registry.run()));
    Ok(Started {
        tasks,
        clients,
        leader,
        synced,
        pull,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_kinds_name_kind_version_and_group() {
        let secret = parse_template_kind("Secret.v1").unwrap();
        assert_eq!(
            (secret.group, secret.version, secret.kind, secret.plural),
            ("", "v1", "Secret", "secrets")
        );
        let guestbook = parse_template_kind("Guestbook.v1alpha1.webapp.my.domain").unwrap();
        assert_eq!(guestbook.group, "webapp.my.domain");
        assert_eq!(guestbook.plural, "guestbooks");
        assert_eq!(guestbook.api_version(), "webapp.my.domain/v1alpha1");
        assert!(parse_template_kind("Secret").is_err());
        assert!(parse_template_kind("Se/cret.v1").is_err());
    }
}
