//! `meshfleet agent --cluster NAME`: pull mode, inside a member cluster the gateway cluster
//! cannot reach (an edge site behind NAT), as Karmada's and Clusternet's agents do.
//!
//! ```text
//!  gateway cluster: Works in meshfleet-es-<NAME> ──watch──> agent ──server-side apply──> this cluster
//!        ^  Work status (Applied, each manifest's status)  <──┘ │
//!        └─ Cluster <NAME> status (Ready with a heartbeat, resourceSummary from the nodes) <──┘
//! ```
//!
//! The gateway side writes a pull-mode Cluster's (`spec.syncMode: Pull`) manifests as Works
//! instead of applying them, and takes the Cluster as not ready when its agent has not
//! reported for [`members::AGENT_SILENCE`]. The agent applies with the same sink as the
//! gateway does for pushed clusters (field manager `meshfleet`, never forced, labelled copies
//! pruned when their Work goes), again on every change and every `--resync`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use meshfleet_propagation::manifest::{Keep, Manifest, ManifestKey, Manifests};

use super::feed::{Change, Changes, keep_by_name};
use super::members::{self, AGENT_REPORT, REASON_READY};
use super::objects::{self, CLUSTERS, NODES, Resource, WORKS};
use super::sink::{KubeSink, key_of_manifest, resource_of};
use crate::sink::ApplyManifests;

#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The member cluster this agent runs in, as the gateway cluster names it.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// This cluster's kubeconfig, instead of the in-cluster config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The gateway cluster's kubeconfig (a Secret mounted into the agent's pod).
    #[arg(long, value_name = "FILE")]
    pub gateway_kubeconfig: PathBuf,
    /// How often everything is applied again, whether or not a Work changed (drift).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub resync: Duration,
}

async fn client_from_file(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("making a client")
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let local = match &args.kubeconfig {
        Some(path) => client_from_file(path).await?,
        None => kube::Client::try_default()
            .await
            .context("no in-cluster config and no usable KUBECONFIG")?,
    };
    let gateway = client_from_file(&args.gateway_kubeconfig).await?;
    let agent = Agent::new(args, local, gateway);
    tokio::select! {
        () = agent.run() => Ok(()),
        () = crate::run::shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

struct Agent {
    args: AgentArgs,
    gateway: kube::Client,
    local: kube::Client,
    sink: KubeSink,
    /// Keeps the sink writing: an agent is its cluster's only writer.
    _leader: watch::Sender<bool>,
    /// The Works, by name, as served.
    works: BTreeMap<String, Value>,
    nodes: BTreeMap<String, Value>,
    /// The status last written to each Work.
    reported: BTreeMap<String, Value>,
}

impl Agent {
    fn new(args: AgentArgs, local: kube::Client, gateway: kube::Client) -> Self {
        let clients = Arc::new(RwLock::new(BTreeMap::from([(
            args.cluster.clone(),
            local.clone(),
        )])));
        let (leader, writes) = watch::channel(true);
        Self {
            sink: KubeSink::new(clients, writes),
            _leader: leader,
            args,
            gateway,
            local,
            works: BTreeMap::new(),
            nodes: BTreeMap::new(),
            reported: BTreeMap::new(),
        }
    }

    async fn run(mut self) {
        let namespace = meshfleet_api::work::execution_namespace(&self.args.cluster);
        tracing::info!(cluster = %self.args.cluster, %namespace, "meshfleet agent pulls its Works");
        let mut works = Changes::of(self.gateway.clone(), WORKS, Some(&namespace));
        let mut nodes = Changes::of(self.local.clone(), NODES, None);
        let mut resync = tokio::time::interval(self.args.resync);
        let mut report = tokio::time::interval(AGENT_REPORT);
        loop {
            let apply = tokio::select! {
                Some(batch) = works.next() => take(&mut self.works, batch, &WORKS),
                Some(batch) = nodes.next() => {
                    take(&mut self.nodes, batch, &NODES);
                    false
                }
                _ = resync.tick() => true,
                _ = report.tick() => {
                    self.report_cluster().await;
                    false
                }
            };
            if apply {
                self.apply().await;
            }
        }
    }

    /// Applies every Work's manifests, then reports each Work's status.
    async fn apply(&mut self) {
        let mut desired = Manifests::new();
        // Each Work's manifests, by key and the apiVersion they were written in.
        let mut carried: BTreeMap<String, Vec<(ManifestKey, String)>> = BTreeMap::new();
        for (name, work) in &self.works {
            let manifests = work["spec"]["workload"]["manifests"].as_array();
            for manifest in manifests.into_iter().flatten() {
                let (Some(key), Ok(encoded)) =
                    (key_of_manifest(manifest), Manifest::encode(manifest))
                else {
                    continue;
                };
                let api_version = manifest["apiVersion"].as_str().unwrap_or("v1").to_owned();
                carried
                    .entry(name.clone())
                    .or_default()
                    .push((key.clone(), api_version));
                desired.insert(key, Arc::new(encoded));
            }
        }
        let cluster = self.args.cluster.clone();
        match self.sink.apply(&cluster, &desired, Keep::none()).await {
            Ok(applied) if applied.written + applied.removed > 0 => tracing::info!(
                written = applied.written,
                removed = applied.removed,
                "applied the pulled manifests"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %anyhow::Error::from(error), "not every pulled manifest applied")
            }
        }
        let failures = self.sink.failures(&cluster).cloned().unwrap_or_default();
        let names: Vec<String> = self.works.keys().cloned().collect();
        for name in names {
            let keys = carried.get(&name).cloned().unwrap_or_default();
            let status = self.work_status(&keys, &failures).await;
            if self.reported.get(&name) == Some(&status) {
                continue;
            }
            let namespace = meshfleet_api::work::execution_namespace(&cluster);
            let api = WORKS.api(&self.gateway, &namespace);
            let patch = json!({"status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.reported.insert(name, status);
                }
                Err(error) => {
                    tracing::warn!(work = %name, %error, "cannot report the Work's status")
                }
            }
        }
        self.reported.retain(|n, _| self.works.contains_key(n));
    }

    /// A Work's status: `Applied`, and each manifest's status in this cluster.
    async fn work_status(
        &self,
        keys: &[(ManifestKey, String)],
        failures: &BTreeMap<ManifestKey, String>,
    ) -> Value {
        let failed: Vec<String> = keys
            .iter()
            .filter_map(|(k, _)| failures.get(k).map(|why| format!("{k}: {why}")))
            .collect();
        let applied = if failed.is_empty() {
            json!({"type": "Applied", "status": "True", "reason": "AppliedSuccessful",
                "message": "every manifest is applied"})
        } else {
            json!({"type": "Applied", "status": "False", "reason": "AppliedFailed",
                "message": failed.join("; ")})
        };
        let mut statuses = Vec::new();
        for (ordinal, (key, api_version)) in keys.iter().enumerate() {
            let ar = resource_of(key, api_version);
            let api = objects::api(&self.local, &ar, &key.namespace);
            let status = match api.get_opt(&key.name).await {
                Ok(Some(object)) => object.data.get("status").cloned(),
                _ => None,
            };
            statuses.push(json!({
                "identifier": {"ordinal": ordinal, "group": key.group, "version": ar.version,
                    "kind": key.kind, "namespace": key.namespace, "name": key.name},
                "status": status,
            }));
        }
        json!({"conditions": [applied], "manifestStatuses": statuses})
    }

    /// Tells the gateway this cluster is ready (with a heartbeat) and what its nodes offer.
    async fn report_cluster(&self) {
        let summary = members::summarize(&self.nodes, true);
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let status = json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": REASON_READY,
                "message": "meshfleet agent is pulling and applying",
                "lastHeartbeatTime": now}],
            "resourceSummary": {"allocatable": summary.allocatable},
        });
        let api = CLUSTERS.api(&self.gateway, "");
        let patch = json!({"status": status});
        if let Err(error) = api
            .patch_status(
                &self.args.cluster,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::warn!(cluster = %self.args.cluster, %error, "cannot report the cluster's status to the gateway");
        }
    }
}

/// Keeps `objects` (by name) as a watch says, telling its failures; returns whether anything
/// was said.
fn take(objects: &mut BTreeMap<String, Value>, batch: Vec<Change>, resource: &Resource) -> bool {
    for change in &batch {
        if let Change::Failed(failure) = change {
            tracing::warn!(%resource, ?failure, "cannot list or watch; trying again");
        }
    }
    keep_by_name(objects, batch)
}
