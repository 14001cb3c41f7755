//! Member clusters: who they are, how to reach them, and what their API servers say.
//!
//! ```text
//!  gateway: Secrets labelled istio/multiCluster=true ──┐ (one kubeconfig per data key)
//!           Clusters with spec.secretRef ──GET Secret──┼─> credentials per member ──> Session:
//!                                                      │     watch Services, EndpointSlices,
//!                                                      │     ServiceExports, DestinationRules
//!                                                      │     (into the index, origin Cluster(name)),
//!                                                      │     Nodes (zones, capacity)
//!           Clusters ──────────────────────────────────┴─> the Cluster the index holds: the
//!                                                          gateway's, with Ready from the watches
//!                                                          and resourceSummary from the nodes
//! ```
//!
//! A member whose API server cannot be reached is `Ready=False` (`ClusterNotReachable`, with
//! the error) at once; its endpoints stay for `--member-grace`, then its watches start afresh
//! and what they had put into the index is dropped until the cluster answers again. Watches
//! back off between attempts (kube-runtime's default back-off). A member registered only by a
//! remote secret has no Cluster object: one is made from its nodes' region and zones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use meshfleet_index::Origin;
use meshfleet_model::problem::{Problem, Source};

use super::feed::{
    Change, Changes, Failure, Health, IndexFeed, Reachability, Refused, Target, keep_by_name,
};
use super::objects::{self, CLUSTERS, ENDPOINT_SLICES, MEMBER_OBSERVED, NODES, SECRETS};

/// The label of Istio's remote secrets (`istioctl create-remote-secret`).
pub const LABEL_MULTI_CLUSTER: &str = "istio/multiCluster";
/// How often a Secret named by a Cluster's `secretRef` is read again (rotated credentials).
const SECRET_REFRESH: Duration = Duration::from_secs(30);
/// How often an unreachable member's API server is asked whether it answers again.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long such a probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often members are looked at without a change (grace periods run on the clock).
const TICK: Duration = Duration::from_secs(1);
/// Ready condition reasons, as Karmada's cluster status controller words them.
pub const REASON_READY: &str = "ClusterReady";
pub const REASON_NOT_REACHABLE: &str = "ClusterNotReachable";
pub const REASON_CONNECTING: &str = "ClusterConnecting";
/// The member's credentials could not be used to make a client.
pub const REASON_BAD_CREDENTIALS: &str = "InvalidCredentials";

/// The origin under which the gateway cluster's own objects are indexed. Not a valid cluster
/// name, so no member's origin can be it.
pub fn gateway_origin() -> Origin {
    Origin::cluster("(gateway)")
}

/// The clients of the members meshfleet writes to, by cluster name (shared with the sink).
pub type Clients = Arc<RwLock<BTreeMap<String, kube::Client>>>;

/// What the registry needs from the rest of `run --kube`.
#[derive(Clone)]
pub struct Context {
    pub target: Target,
    pub gateway: kube::Client,
    /// Where remote secrets are read.
    pub namespace: String,
    /// How long an unreachable member's endpoints are kept.
    pub grace: Duration,
    pub clients: Clients,
    /// Problems of the gateway's objects, shared with the gateway's feeds.
    pub refused: Arc<Refused>,
    /// Whether this replica writes (holds the Lease): only then is status written back.
    pub leader: watch::Receiver<bool>,
    /// The Clusters in pull mode (`spec.syncMode: Pull`), for the sink.
    pub pull: Arc<RwLock<BTreeSet<String>>>,
    /// Set once the fleet is known: Clusters and remote secrets listed, and every member
    /// connected or found unreachable (or [`FLEET_WAIT`] passed).
    pub fleet_known: watch::Sender<bool>,
}

/// The longest propagation waits for members still connecting at start.
pub const FLEET_WAIT: Duration = Duration::from_secs(20);

/// How long a pull-mode cluster's agent may go without reporting before the cluster is taken
/// as not ready (the agent reports every [`AGENT_REPORT`]).
pub const AGENT_SILENCE: Duration = Duration::from_secs(40);
/// How often `meshfleet agent` reports its cluster's readiness and capacity.
pub const AGENT_REPORT: Duration = Duration::from_secs(10);
/// The Ready condition's reason when a pull-mode cluster's agent stopped reporting.
pub const REASON_AGENT_SILENT: &str = "AgentNotReporting";

/// A member's nodes, summed up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nodes {
    pub listed: bool,
    /// Node name → its `topology.kubernetes.io/zone`.
    pub zone_of: HashMap<String, String>,
    /// The most common `topology.kubernetes.io/region`.
    pub region: Option<String>,
    pub zones: Vec<String>,
    /// Allocatable of the ready nodes, summed (Karmada's `resourceSummary.allocatable`).
    pub allocatable: BTreeMap<String, Value>,
}

/// The watches of one member, and what they report.
struct Session {
    tasks: Vec<JoinHandle<()>>,
    health: Arc<Health>,
    nodes: watch::Receiver<Arc<Nodes>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Session {
    fn start(name: &str, client: &kube::Client, target: &Target, wake: &Arc<Notify>) -> Self {
        let health = Arc::new(Health::default());
        let refused = Arc::new(Refused::default());
        let (nodes_tx, nodes_rx) = watch::channel(Arc::new(Nodes::default()));
        let mut tasks = Vec::new();
        for resource in MEMBER_OBSERVED {
            let feed = IndexFeed::new(
                target.clone(),
                Origin::cluster(name),
                resource,
                Some(name.to_owned()),
                refused.clone(),
            );
            let changes = Changes::of(client.clone(), resource, None);
            let health = health.clone();
            let wake = wake.clone();
            if resource == ENDPOINT_SLICES {
                tasks.push(tokio::spawn(follow_slices(
                    changes,
                    feed,
                    health,
                    nodes_rx.clone(),
                    wake,
                )));
            } else {
                tasks.push(tokio::spawn(async move {
                    let mut changes = changes;
                    let mut feed = feed;
                    while let Some(batch) = changes.next().await {
                        let generation = health.generation();
                        feed.take(batch, &health);
                        if health.generation() != generation {
                            wake.notify_one();
                        }
                    }
                }));
            }
        }
        tasks.push(tokio::spawn(follow_nodes(
            Changes::of(client.clone(), NODES, None),
            nodes_tx,
            health.clone(),
            wake.clone(),
        )));
        Self {
            tasks,
            health,
            nodes: nodes_rx,
        }
    }
}

/// EndpointSlices, with each endpoint's zone taken from its node when the slice does not say
/// (a cluster across zones whose slices were written without `zone`). Slices that needed a
/// node's zone are read again when the nodes change.
async fn follow_slices(
    mut changes: Changes,
    feed: IndexFeed,
    health: Arc<Health>,
    mut nodes: watch::Receiver<Arc<Nodes>>,
    wake: Arc<Notify>,
) {
    let zones = nodes.clone();
    let mut feed = feed.with_transform(Arc::new(move |value: &mut Value| {
        fill_zones(value, &zones.borrow().zone_of);
    }));
    // Slices with an endpoint on a node but without a zone, as served, by namespace/name.
    let mut zoneless: BTreeMap<(String, String), Value> = BTreeMap::new();
    let name_of = |v: &Value| {
        let meta = &v["metadata"];
        (
            meta["namespace"].as_str().unwrap_or_default().to_owned(),
            meta["name"].as_str().unwrap_or_default().to_owned(),
        )
    };
    loop {
        let batch = tokio::select! {
            batch = changes.next() => match batch {
                Some(batch) => batch,
                None => return,
            },
            changed = nodes.changed() => {
                if changed.is_err() {
                    return;
                }
                zoneless.values().cloned().map(Change::Apply).collect()
            }
        };
        for change in &batch {
            match change {
                Change::Relist(values) => {
                    zoneless.clear();
                    for v in values.iter().filter(|v| needs_zones(v)) {
                        zoneless.insert(name_of(v), v.clone());
                    }
                }
                Change::Apply(v) if needs_zones(v) => {
                    zoneless.insert(name_of(v), v.clone());
                }
                Change::Apply(v) | Change::Delete(v) => {
                    zoneless.remove(&name_of(v));
                }
                Change::Failed(_) => {}
            }
        }
        let generation = health.generation();
        feed.take(batch, &health);
        if health.generation() != generation {
            wake.notify_one();
        }
    }
}

fn needs_zones(slice: &Value) -> bool {
    slice["endpoints"].as_array().is_some_and(|endpoints| {
        endpoints
            .iter()
            .any(|e| e.get("zone").is_none_or(Value::is_null) && e["nodeName"].is_string())
    })
}

/// Sets `zone` of each endpoint that has a node but no zone, from the node's label.
pub fn fill_zones(slice: &mut Value, zone_of: &HashMap<String, String>) {
    let Some(endpoints) = slice.get_mut("endpoints").and_then(Value::as_array_mut) else {
        return;
    };
    for endpoint in endpoints {
        if !endpoint.get("zone").is_none_or(Value::is_null) {
            continue;
        }
        let zone = endpoint["nodeName"].as_str().and_then(|n| zone_of.get(n));
        if let (Some(zone), Some(map)) = (zone.cloned(), endpoint.as_object_mut()) {
            map.insert("zone".into(), Value::String(zone));
        }
    }
}

/// A member's nodes, summed up as [`Nodes`] whenever they change.
async fn follow_nodes(
    mut changes: Changes,
    summary: watch::Sender<Arc<Nodes>>,
    health: Arc<Health>,
    wake: Arc<Notify>,
) {
    let resource = changes.resource();
    let mut nodes: BTreeMap<String, Value> = BTreeMap::new();
    let mut listed = false;
    while let Some(batch) = changes.next().await {
        listed |= batch.iter().any(|c| matches!(c, Change::Relist(_)));
        let generation = health.generation();
        health.record_batch(&resource, &batch);
        if health.generation() != generation {
            wake.notify_one();
        }
        keep_by_name(&mut nodes, batch);
        let next = summarize(&nodes, listed);
        if **summary.borrow() != next {
            summary.send_replace(Arc::new(next));
            wake.notify_one();
        }
    }
}

/// Zones, region and allocatable capacity of a member's nodes.
pub fn summarize(nodes: &BTreeMap<String, Value>, listed: bool) -> Nodes {
    let mut summary = Nodes {
        listed,
        ..Nodes::default()
    };
    let mut regions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut zones = BTreeSet::new();
    let mut milli: BTreeMap<String, i128> = BTreeMap::new();
    for (name, node) in nodes {
        let labels = &node["metadata"]["labels"];
        if let Some(zone) = labels["topology.kubernetes.io/zone"].as_str() {
            summary.zone_of.insert(name.clone(), zone.to_owned());
            zones.insert(zone.to_owned());
        }
        if let Some(region) = labels["topology.kubernetes.io/region"].as_str() {
            *regions.entry(region).or_default() += 1;
        }
        let ready = node["status"]["conditions"]
            .as_array()
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if !ready {
            continue;
        }
        if let Some(allocatable) = node["status"]["allocatable"].as_object() {
            for (resource, quantity) in allocatable {
                if let Ok(m) = meshfleet_propagation::quantity::parse_json_milli(quantity) {
                    *milli.entry(resource.clone()).or_default() += m;
                }
            }
        }
    }
    summary.region = regions
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, _)| (*r).to_owned());
    summary.zones = zones.into_iter().collect();
    summary.allocatable = milli
        .into_iter()
        .map(|(resource, m)| {
            let value = if m % 1000 == 0 {
                json!((m / 1000).to_string())
            } else {
                json!(format!("{m}m"))
            };
            (resource, value)
        })
        .collect();
    summary
}

/// How a member is reached, and where that was said.
#[derive(Clone, Debug, PartialEq)]
struct Credentials {
    kubeconfig: String,
    /// `Secret istio-system/istio-remote-secret-east-1, key east-1`.
    from: String,
    /// The object that registers the member: its remote secret, or its Cluster.
    registered_by: Source,
}

struct Member {
    credentials: Credentials,
    session: Option<Session>,
    /// The Ready condition as last published, and since when it holds.
    ready: (String, String, String),
    since: SystemTime,
    /// When the member was first seen unreachable, in this spell.
    unreachable_since: Option<Instant>,
    /// Its objects were dropped after the grace period.
    dropped: bool,
    /// When it was last probed while unreachable.
    probed: Option<Instant>,
}

/// A Secret's values, or why it could not be read.
type SecretRead = Result<BTreeMap<String, String>, String>;

/// The registry of members. See the module docs.
pub struct Registry {
    cx: Context,
    wake: Arc<Notify>,
    /// The gateway's Cluster objects, as served.
    gateway_clusters: BTreeMap<String, Value>,
    /// Remote secrets: `namespace/name` → cluster → kubeconfig.
    remote: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets named by Clusters' `secretRef`, read at most every [`SECRET_REFRESH`].
    secret_refs: BTreeMap<String, (Instant, SecretRead)>,
    members: BTreeMap<String, Member>,
    /// What was put into the index per Cluster.
    published: BTreeMap<String, Value>,
    /// Status last written back to each gateway Cluster.
    written: BTreeMap<String, Value>,
}

impl Registry {
    pub fn new(cx: Context) -> Self {
        Self {
            cx,
            wake: Arc::new(Notify::new()),
            gateway_clusters: BTreeMap::new(),
            remote: BTreeMap::new(),
            secret_refs: BTreeMap::new(),
            members: BTreeMap::new(),
            published: BTreeMap::new(),
            written: BTreeMap::new(),
        }
    }

    /// Follows the gateway's Clusters and remote secrets, and the members, until aborted.
    pub async fn run(mut self) {
        let mut clusters = Changes::of(self.cx.gateway.clone(), CLUSTERS, None);
        let mut secrets = Changes::of(
            self.cx.gateway.clone(),
            SECRETS,
            Some(self.cx.namespace.as_str()),
        );
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wake = self.wake.clone();
        let started = Instant::now();
        let (mut clusters_listed, mut secrets_listed) = (false, false);
        loop {
            tokio::select! {
                Some(batch) = clusters.next() => {
                    clusters_listed |= batch.iter().any(|c| matches!(c, Change::Relist(_)));
                    self.take_clusters(batch);
                }
                Some(batch) = secrets.next() => {
                    secrets_listed |= batch.iter().any(|c| matches!(c, Change::Relist(_)));
                    self.take_secrets(batch);
                }
                _ = tick.tick() => {}
                () = wake.notified() => {}
            }
            self.reconcile().await;
            if !*self.cx.fleet_known.borrow() && clusters_listed && secrets_listed {
                let connecting = self
                    .members
                    .values()
                    .filter(|m| m.ready.1 == REASON_CONNECTING)
                    .count();
                if connecting == 0 || started.elapsed() >= FLEET_WAIT {
                    if connecting > 0 {
                        tracing::warn!(
                            connecting,
                            "members still connecting; propagation starts without them"
                        );
                    }
                    self.cx.fleet_known.send_replace(true);
                }
            }
        }
    }

    fn take_clusters(&mut self, batch: Vec<Change>) {
        for change in &batch {
            if let Change::Failed(failure) = change {
                report_gateway_failure(&CLUSTERS, failure);
            }
        }
        keep_by_name(&mut self.gateway_clusters, batch);
    }

    fn take_secrets(&mut self, batch: Vec<Change>) {
        for change in batch {
            match change {
                Change::Relist(values) => {
                    self.remote.clear();
                    for v in values {
                        self.take_secret(v);
                    }
                }
                Change::Apply(v) => self.take_secret(v),
                Change::Delete(v) => {
                    self.remote.remove(&secret_name(&v));
                }
                Change::Failed(failure) => report_gateway_failure(&SECRETS, &failure),
            }
        }
    }

    fn take_secret(&mut self, secret: Value) {
        let name = secret_name(&secret);
        // kmock and old API servers may ignore a label selector: filter here.
        if secret["metadata"]["labels"][LABEL_MULTI_CLUSTER] != "true" {
            self.remote.remove(&name);
            return;
        }
        self.remote.insert(name, secret_data(&secret));
    }

    /// Which members there are and how each is reached; problems for those that cannot be.
    async fn credentials(&mut self) -> (BTreeMap<String, Credentials>, Vec<Problem>) {
        let mut wanted = BTreeMap::new();
        let mut problems = Vec::new();
        for (secret, entries) in &self.remote {
            for (cluster, kubeconfig) in entries {
                let from = format!("Secret {secret}, key {cluster}");
                if let Some(Credentials { from: first, .. }) = wanted.get(cluster) {
                    problems.push(Problem::new(
                        Source::object("Secret", secret_ns(secret), secret_nm(secret)),
                        format!("cluster {cluster} is also registered by {first}, which is used"),
                    ));
                    continue;
                }
                wanted.insert(
                    cluster.clone(),
                    Credentials {
                        kubeconfig: kubeconfig.clone(),
                        from,
                        registered_by: Source::object(
                            "Secret",
                            secret_ns(secret),
                            secret_nm(secret),
                        ),
                    },
                );
            }
        }
        let by_ref: Vec<(String, Value)> = self
            .gateway_clusters
            .iter()
            .filter(|(_, c)| c["spec"]["secretRef"]["name"].is_string())
            .filter(|(_, c)| !is_pull(c))
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        let mut used = BTreeSet::new();
        for (cluster, object) in by_ref {
            let reference = &object["spec"]["secretRef"];
            let ns = reference["namespace"].as_str().unwrap_or_default();
            let ns = if ns.is_empty() {
                self.cx.namespace.as_str()
            } else {
                ns
            };
            let name = reference["name"].as_str().unwrap_or_default();
            let key = format!("{ns}/{name}");
            used.insert(key.clone());
            let stale = self
                .secret_refs
                .get(&key)
                .is_none_or(|(at, _)| at.elapsed() >= SECRET_REFRESH);
            if stale {
                let api = SECRETS.api(&self.cx.gateway, ns);
                let read = match api.get(name).await {
                    Ok(secret) => Ok(secret_data(&objects::to_json(&secret, &SECRETS))),
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        Err("not found".to_owned())
                    }
                    Err(error) => {
                        // A read that failed for want of an answer keeps the last good
                        // credentials: the member stays registered (its watches say whether it
                        // is reachable).
                        match self.secret_refs.get(&key) {
                            Some((_, Ok(last))) => {
                                tracing::warn!(secret = %key, %error, "cannot read the Secret again; keeping what it held");
                                Ok(last.clone())
                            }
                            _ => Err(error.to_string()),
                        }
                    }
                };
                self.secret_refs.insert(key.clone(), (Instant::now(), read));
            }
            let source = Source::object("Cluster", "", &cluster);
            match &self.secret_refs[&key].1 {
                Err(why) => problems.push(
                    Problem::new(source, format!("Secret {key}: {why}")).at("spec.secretRef"),
                ),
                Ok(data) => match kubeconfig_of(&object, data) {
                    Ok(kubeconfig) => {
                        wanted.insert(
                            cluster.clone(),
                            Credentials {
                                kubeconfig,
                                from: format!("Secret {key}"),
                                registered_by: source.clone(),
                            },
                        );
                    }
                    Err(why) => problems.push(
                        Problem::new(source, format!("Secret {key}: {why}")).at("spec.secretRef"),
                    ),
                },
            }
        }
        self.secret_refs.retain(|k, _| used.contains(k));
        (wanted, problems)
    }

    async fn reconcile(&mut self) {
        let pull: BTreeSet<String> = self
            .gateway_clusters
            .iter()
            .filter(|(_, c)| is_pull(c))
            .map(|(n, _)| n.clone())
            .collect();
        *self.cx.pull.write().expect("pull lock") = pull;
        let (wanted, mut problems) = self.credentials().await;
        // Members gone, or reached differently now.
        let stale: Vec<String> = self
            .members
            .iter()
            .filter(|(name, m)| wanted.get(*name) != Some(&m.credentials))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.members.remove(&name);
            self.cx.clients.write().expect("clients lock").remove(&name);
            if self.forget(&name) {
                tracing::info!(cluster = %name, "member cluster unregistered or its credentials changed");
            }
        }
        for (name, credentials) in wanted {
            if self.members.contains_key(&name) {
                continue;
            }
            let (session, ready) = match client_from_kubeconfig(&credentials.kubeconfig).await {
                Ok(client) => {
                    tracing::info!(cluster = %name, from = %credentials.from, "watching member cluster");
                    self.cx
                        .clients
                        .write()
                        .expect("clients lock")
                        .insert(name.clone(), client.clone());
                    (
                        Some(Session::start(&name, &client, &self.cx.target, &self.wake)),
                        ready(
                            "Unknown",
                            REASON_CONNECTING,
                            "connecting to the cluster's API server",
                        ),
                    )
                }
                Err(why) => (
                    None,
                    ready(
                        "False",
                        REASON_BAD_CREDENTIALS,
                        &format!("{}: {why}", credentials.from),
                    ),
                ),
            };
            self.members.insert(
                name,
                Member {
                    credentials,
                    session,
                    ready,
                    since: SystemTime::now(),
                    unreachable_since: None,
                    dropped: false,
                    probed: None,
                },
            );
        }
        for (name, member) in &self.members {
            if let Member {
                session: None,
                ready: (_, _, message),
                credentials,
                ..
            } = member
            {
                // Told on the object that registers it (a remote secret, a Cluster).
                problems.push(Problem::new(
                    credentials.registered_by.clone(),
                    format!("cluster {name}: {message}"),
                ));
            }
        }
        self.probe_unreachable().await;
        self.watch_members(&mut problems);
        self.publish(problems);
        self.write_status().await;
    }

    /// Asks each member the watches find unreachable for its version: a watch that resumed
    /// after the API server came back says nothing until something changes, so the answer to
    /// this probe is what ends the failure. At most one probe per member every [`PROBE_EVERY`].
    async fn probe_unreachable(&mut self) {
        let due: Vec<(String, Arc<Health>)> = self
            .members
            .iter_mut()
            .filter_map(|(name, member)| {
                let session = member.session.as_ref()?;
                let unreachable =
                    matches!(session.health.reachability(), Reachability::Unreachable(_));
                let due = member.probed.is_none_or(|at| at.elapsed() >= PROBE_EVERY);
                (unreachable && due).then(|| {
                    member.probed = Some(Instant::now());
                    (name.clone(), session.health.clone())
                })
            })
            .collect();
        let clients = self.cx.clients.read().expect("clients lock").clone();
        // All at once: many members down together must not slow the registry down.
        let probes = due.into_iter().filter_map(|(name, health)| {
            let client = clients.get(&name)?.clone();
            Some(async move {
                if let Ok(Ok(_)) =
                    tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await
                {
                    health.answered();
                }
            })
        });
        futures::future::join_all(probes).await;
    }

    /// Readiness from each member's watches; endpoints dropped after the grace period.
    fn watch_members(&mut self, problems: &mut Vec<Problem>) {
        let mut drop_now = Vec::new();
        for (name, member) in &mut self.members {
            let Some(session) = &member.session else {
                continue;
            };
            let next = match session.health.reachability() {
                Reachability::Connecting => {
                    if member.unreachable_since.is_some() {
                        member.ready.clone()
                    } else {
                        ready(
                            "Unknown",
                            REASON_CONNECTING,
                            "connecting to the cluster's API server",
                        )
                    }
                }
                Reachability::Reachable => {
                    member.unreachable_since = None;
                    member.dropped = false;
                    ready(
                        "True",
                        REASON_READY,
                        "cluster is healthy and ready to accept workloads",
                    )
                }
                Reachability::Unreachable(why) => {
                    let since = *member.unreachable_since.get_or_insert_with(Instant::now);
                    if !member.dropped && since.elapsed() >= self.cx.grace {
                        drop_now.push(name.clone());
                    }
                    ready(
                        "False",
                        REASON_NOT_REACHABLE,
                        &format!("cluster is not reachable: {why}"),
                    )
                }
            };
            if next.0 != member.ready.0 {
                member.since = SystemTime::now();
                if next.0 == "True" {
                    tracing::info!(cluster = %name, reason = %next.1, "member cluster ready");
                } else {
                    tracing::warn!(cluster = %name, ready = %next.0, reason = %next.1, message = %next.2, "member cluster not ready");
                }
            }
            member.ready = next;
            for (resource, message) in session.health.denied() {
                problems.push(Problem::new(
                    Source::Cluster { name: name.clone() },
                    format!("cannot list or watch {resource}: {message}"),
                ));
            }
        }
        for name in drop_now {
            tracing::warn!(cluster = %name, grace = ?self.cx.grace, "member cluster unreachable past its grace period: its endpoints are dropped");
            let client = self
                .cx
                .clients
                .read()
                .expect("clients lock")
                .get(&name)
                .cloned();
            let member = self.members.get_mut(&name).expect("a member");
            member.dropped = true;
            // Fresh watches: they list everything again when the cluster answers.
            member.session = None;
            self.forget(&name);
            let member = self.members.get_mut(&name).expect("a member");
            if let Some(client) = client {
                member.session = Some(Session::start(&name, &client, &self.cx.target, &self.wake));
                // The new watches start out connecting; the member stays not ready until they answer.
                member.unreachable_since = Some(Instant::now() - self.cx.grace);
            }
        }
    }

    fn forget(&self, name: &str) -> bool {
        let forgotten = self
            .cx
            .target
            .index
            .lock()
            .expect("index lock")
            .forget(&Origin::cluster(name));
        if forgotten {
            self.cx.target.bump();
        }
        forgotten
    }

    /// The Cluster objects the index holds: the gateway's, or one made from a member's nodes,
    /// with the member's readiness and capacity.
    fn effective(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let names: BTreeSet<&String> = self
            .gateway_clusters
            .keys()
            .chain(self.members.keys())
            .collect();
        for name in names {
            let member = self.members.get(name);
            let nodes = member
                .and_then(|m| m.session.as_ref())
                .map(|s| s.nodes.borrow().clone());
            let mut cluster = match self.gateway_clusters.get(name) {
                Some(c) => c.clone(),
                // Made from its nodes once they are listed (or once it is known unreachable),
                // not before: a Cluster without its region would be scheduled and reported
                // as such for a moment.
                None if nodes.as_ref().is_some_and(|n| n.listed)
                    || member
                        .is_some_and(|m| m.session.is_none() || m.unreachable_since.is_some()) =>
                {
                    synthesized(name, nodes.as_deref())
                }
                None => continue,
            };
            if is_pull(&cluster) && member.is_none() {
                agent_silence(&mut cluster, SystemTime::now());
            }
            if let Some(member) = member {
                let (status, reason, message) = &member.ready;
                let condition = json!({
                    "type": "Ready",
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": humantime::format_rfc3339_seconds(member.since).to_string(),
                });
                set_condition(&mut cluster, condition);
                if let Some(nodes) = nodes.filter(|n| n.listed) {
                    cluster["status"]["resourceSummary"]["allocatable"] =
                        Value::Object(nodes.allocatable.clone().into_iter().collect());
                }
            }
            out.insert(name.clone(), cluster);
        }
        out
    }

    fn publish(&mut self, problems: Vec<Problem>) {
        let effective = self.effective();
        let origin = gateway_origin();
        let mut changed = false;
        let mut index = self.cx.target.index.lock().expect("index lock");
        changed |= self.cx.refused.clear("registry");
        for (n, problem) in problems.into_iter().enumerate() {
            let mut source = problem.source.clone();
            if let Source::Cluster { name } = &source {
                source = Source::object("Cluster", "", name);
            }
            let _ = n;
            changed |= self.cx.refused.set("registry", source, Some(problem));
        }
        for (name, cluster) in &effective {
            if self.published.get(name) == Some(cluster) {
                continue;
            }
            let source = Source::object("Cluster", "", name);
            match objects::parse(cluster, source.clone()) {
                Ok(object) => {
                    changed |= index.apply(&origin, object);
                    changed |= self.cx.refused.set("clusters", source, None);
                }
                Err(problem) => {
                    changed |= self.cx.refused.set("clusters", source, Some(*problem));
                }
            }
        }
        for (name, cluster) in &self.published {
            if !effective.contains_key(name)
                && let Some(key) = objects::key_of(cluster)
            {
                changed |= index.delete(&origin, &key);
                changed |=
                    self.cx
                        .refused
                        .set("clusters", Source::object("Cluster", "", name), None);
            }
        }
        changed |= self.cx.refused.publish(&mut index, &origin);
        drop(index);
        self.published = effective;
        if changed {
            self.cx.target.bump();
        }
    }

    /// Writes each gateway Cluster's status (Ready, resourceSummary) back, when this replica
    /// holds the Lease and the status differs from what is there.
    async fn write_status(&mut self) {
        if !*self.cx.leader.borrow() {
            return;
        }
        let api = CLUSTERS.api(&self.cx.gateway, "");
        for (name, cluster) in &self.published {
            if !self.members.contains_key(name) {
                continue;
            }
            let Some(served) = self.gateway_clusters.get(name) else {
                continue;
            };
            let status = cluster["status"].clone();
            if served["status"] == status || self.written.get(name) == Some(&status) {
                continue;
            }
            let patch = json!({"status": status});
            let params = PatchParams::default();
            let written = match api.patch_status(name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => Ok(()),
                Err(error) => Err(error),
            };
            match written {
                Ok(()) => {
                    self.written.insert(name.clone(), status);
                }
                Err(error) => {
                    tracing::warn!(cluster = %name, %error, "cannot write the Cluster's status");
                }
            }
        }
        self.written.retain(|n, _| self.published.contains_key(n));
    }
}

fn ready(status: &str, reason: &str, message: &str) -> (String, String, String) {
    (status.to_owned(), reason.to_owned(), message.to_owned())
}

fn report_gateway_failure(resource: &objects::Resource, failure: &Failure) {
    tracing::warn!(resource = %resource, ?failure, "cannot list or watch in the gateway cluster; trying again");
}

fn name_of(value: &Value) -> String {
    value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn secret_name(value: &Value) -> String {
    format!(
        "{}/{}",
        value["metadata"]["namespace"].as_str().unwrap_or_default(),
        name_of(value)
    )
}

fn secret_ns(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn secret_nm(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, n)| n)
}

fn is_pull(cluster: &Value) -> bool {
    cluster["spec"]["syncMode"]
        .as_str()
        .is_some_and(|m| m.eq_ignore_ascii_case("pull"))
}

/// A Secret's values as text: `data` (base64, as served) and `stringData` (as written).
/// Values that are not UTF-8 are left out.
pub fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_object() {
        for (key, value) in data {
            let decoded = value
                .as_str()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|b| String::from_utf8(b).ok());
            if let Some(text) = decoded {
                out.insert(key.clone(), text);
            }
        }
    }
    if let Some(data) = secret["stringData"].as_object() {
        for (key, value) in data {
            if let Some(text) = value.as_str() {
                out.insert(key.clone(), text.to_owned());
            }
        }
    }
    out
}

/// The kubeconfig a Cluster's `secretRef` Secret gives: its `kubeconfig` key, or Karmada's
/// `token` (and `caBundle`) for the Cluster's `apiEndpoint`.
fn kubeconfig_of(cluster: &Value, data: &BTreeMap<String, String>) -> Result<String, String> {
    if let Some(kubeconfig) = data.get("kubeconfig") {
        return Ok(kubeconfig.clone());
    }
    let Some(token) = data.get("token") else {
        return Err("has neither a `kubeconfig` nor a `token` key".to_owned());
    };
    let Some(endpoint) = cluster["spec"]["apiEndpoint"].as_str() else {
        return Err("has a token, but the Cluster has no spec.apiEndpoint".to_owned());
    };
    let mut server = json!({"server": endpoint});
    if let Some(ca) = data.get("caBundle") {
        server["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    if cluster["spec"]["insecureSkipTLSVerification"] == true {
        server["insecure-skip-tls-verify"] = json!(true);
    }
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "member", "cluster": server}],
        "users": [{"name": "member", "user": {"token": token}}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
        "current-context": "member",
    });
    Ok(kubeconfig.to_string())
}

/// A client for the cluster a kubeconfig (its current context) describes. The error never
/// quotes the kubeconfig: it may hold a token or a key.
pub async fn client_from_kubeconfig(kubeconfig: &str) -> Result<kube::Client, String> {
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig)
        .map_err(|_| "not a kubeconfig (it does not parse as one)".to_owned())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|error| {
                format!(
                    "kubeconfig cannot be used: {}",
                    redacted(&error.to_string())
                )
            })?;
    config.connect_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(config)
        .map_err(|error| format!("cannot make a client: {}", redacted(&error.to_string())))
}

/// An error's text cut short, without anything that looks like key material.
fn redacted(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let cut: String = line.chars().take(200).collect();
    if cut.contains("-----BEGIN") || cut.contains("PRIVATE") {
        "(details withheld: they quote key material)".to_owned()
    } else {
        cut
    }
}

/// A Cluster for a member known only from a remote secret: its name, and the region and zones
/// of its nodes.
fn synthesized(name: &str, nodes: Option<&Nodes>) -> Value {
    let mut spec = json!({});
    if let Some(nodes) = nodes {
        if let Some(region) = &nodes.region {
            spec["region"] = json!(region);
        }
        if !nodes.zones.is_empty() {
            spec["zones"] = json!(nodes.zones);
        }
    }
    json!({
        "apiVersion": "meshfleet.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": {"meshfleet.io/registered-by": "remote-secret"}},
        "spec": spec,
    })
}

/// A pull-mode cluster whose agent has not reported (its Ready condition's
/// `lastHeartbeatTime`) for [`AGENT_SILENCE`] is not known to be ready any more.
pub fn agent_silence(cluster: &mut Value, now: SystemTime) {
    let heartbeat = cluster["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["lastHeartbeatTime"].as_str())
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let silent =
        heartbeat.is_none_or(|at| now.duration_since(at).unwrap_or_default() >= AGENT_SILENCE);
    if silent {
        set_condition(
            cluster,
            json!({
                "type": "Ready",
                "status": "Unknown",
                "reason": REASON_AGENT_SILENT,
                "message": format!("meshfleet agent has not reported for {}s", AGENT_SILENCE.as_secs()),
            }),
        );
    }
}

fn set_condition(cluster: &mut Value, condition: Value) {
    if !cluster["status"].is_object() {
        cluster["status"] = json!({});
    }
    if !cluster["status"]["conditions"].is_array() {
        cluster["status"]["conditions"] = json!([]);
    }
    let conditions = cluster["status"]["conditions"]
        .as_array_mut()
        .expect("an array");
    conditions.retain(|c| c["type"] != condition["type"]);
    conditions.push(condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: &str, ready: bool, cpu: &str) -> (String, Value) {
        (
            name.to_owned(),
            json!({"metadata": {"name": name, "labels": {
                "topology.kubernetes.io/region": "us-east",
                "topology.kubernetes.io/zone": zone}},
             "status": {"allocatable": {"cpu": cpu, "memory": "2Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
        )
    }

    #[test]
    fn nodes_give_zones_region_and_the_capacity_of_the_ready_ones() {
        let nodes: BTreeMap<_, _> = [
            node("a", "us-east-1a", true, "4"),
            node("b", "us-east-1b", true, "3500m"),
            node("c", "us-east-1b", false, "64"),
        ]
        .into_iter()
        .collect();
        let summary = summarize(&nodes, true);
        assert_eq!(summary.region.as_deref(), Some("us-east"));
        assert_eq!(summary.zones, ["us-east-1a", "us-east-1b"]);
        assert_eq!(summary.allocatable["cpu"], "7500m");
        assert_eq!(summary.allocatable["memory"], (4u64 << 30).to_string());
        assert_eq!(summary.allocatable["pods"], "220");
        assert_eq!(summary.zone_of["c"], "us-east-1b");
    }

    #[test]
    fn a_pull_clusters_readiness_lasts_as_long_as_its_agent_reports() {
        let now = SystemTime::now();
        let reported = |ago: u64| {
            json!({"spec": {"syncMode": "Pull"}, "status": {"conditions": [{"type": "Ready",
                "status": "True", "reason": REASON_READY,
                "lastHeartbeatTime": humantime::format_rfc3339_seconds(now - Duration::from_secs(ago)).to_string()}]}})
        };
        let mut fresh = reported(5);
        agent_silence(&mut fresh, now);
        assert_eq!(fresh["status"]["conditions"][0]["status"], "True");
        let mut silent = reported(AGENT_SILENCE.as_secs() + 1);
        agent_silence(&mut silent, now);
        assert_eq!(silent["status"]["conditions"][0]["status"], "Unknown");
        assert_eq!(
            silent["status"]["conditions"][0]["reason"],
            REASON_AGENT_SILENT
        );
        let mut never = json!({"spec": {"syncMode": "Pull"}});
        agent_silence(&mut never, now);
        assert_eq!(never["status"]["conditions"][0]["status"], "Unknown");
    }

    #[test]
    fn an_endpoint_without_a_zone_takes_its_nodes() {
        let mut slice = json!({"endpoints": [
            {"addresses": ["10.0.0.1"], "nodeName": "a"},
            {"addresses": ["10.0.0.2"], "nodeName": "b", "zone": "given"},
            {"addresses": ["10.0.0.3"], "nodeName": "unknown"}]});
        assert!(needs_zones(&slice));
        let zone_of = HashMap::from([
            ("a".to_owned(), "z1".to_owned()),
            ("b".to_owned(), "z2".to_owned()),
        ]);
        fill_zones(&mut slice, &zone_of);
        assert_eq!(slice["endpoints"][0]["zone"], "z1");
        assert_eq!(slice["endpoints"][1]["zone"], "given");
        assert!(slice["endpoints"][2].get("zone").is_none());
    }

    #[test]
    fn karmada_token_secrets_make_a_kubeconfig_for_the_api_endpoint() {
        let cluster = json!({"spec": {"apiEndpoint": "https://10.0.0.9:6443"}});
        let data = BTreeMap::from([
            ("token".to_owned(), "t0ken".to_owned()),
            (
                "caBundle".to_owned(),
                "-----BEGIN CERTIFICATE-----".to_owned(),
            ),
        ]);
        let text = kubeconfig_of(&cluster, &data).unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(
            parsed.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .server
                .as_deref(),
            Some("https://10.0.0.9:6443")
        );
        assert!(
            kubeconfig_of(&json!({"spec": {}}), &data)
                .unwrap_err()
                .contains("apiEndpoint")
        );
        assert!(
            kubeconfig_of(&cluster, &BTreeMap::new())
                .unwrap_err()
                .contains("token")
        );
    }

    #[tokio::test]
    async fn a_broken_kubeconfig_is_refused_without_quoting_it() {
        let error = client_from_kubeconfig(
            "apiVersion: v1\nusers: [{name: x, user: {token: s3cr3t}}]\nclusters: {",
        )
        .await
        .err()
        .expect("refused");
        assert!(!error.contains("s3cr3t"), "{error}");
        let error = client_from_kubeconfig("apiVersion: v1\nkind: Config\nclusters: []\nusers: [{name: u, user: {token: s3cr3t}}]\ncontexts: []\n")
            .await
            .err().expect("refused");
        assert!(!error.contains("s3cr3t"), "{error}");
    }
}
