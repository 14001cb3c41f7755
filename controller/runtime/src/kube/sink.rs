//! The Kubernetes sink: each member cluster is made to hold its manifests by server-side apply.
//!
//! - Every manifest is applied (`PATCH`, `application/apply-patch+yaml`) with field manager
//!   `meshfleet` and without `force`: a field another manager owns is not taken from it; the
//!   conflict is reported with the API server's words (the manager and the field), and the
//!   other manifests are still applied.
//! - Copies carry the label `meshfleet.io/managed: "true"`. Only such objects are ever
//!   removed: what this sink applied and no longer wants, or, after a restart, what a list of
//!   that label finds in the kinds it applies.
//! - A workload whose replicas a member's HorizontalPodAutoscaler scales is applied without
//!   `spec.replicas`, so the two do not fight over it.
//! - A namespaced copy whose namespace does not exist gets it created first.
//! - A manifest whose bytes did not change since it was applied is not sent again.
//! - Only the replica that holds the Lease writes: the others answer [`SinkError::Standby`].
//! - A cluster in pull mode (`spec.syncMode: Pull`) is not written to: each of its manifests
//!   becomes a `Work` in the gateway cluster's namespace `meshfleet-es-<cluster>`, applied,
//!   pruned and skipped when unchanged the same way, for its `meshfleet agent` to pull.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use serde_json::{Value, json};
use tokio::sync::watch;

use meshfleet_propagation::manifest::{Keep, Manifest, ManifestKey, Manifests};

use super::members::Clients;
use super::objects::{self, HPAS, NAMESPACES};
use crate::sink::{Applied, ApplyManifests, BoxError, SinkError, SinkFuture};

/// Applies in flight at once to one cluster.
const APPLY_CONCURRENCY: usize = 16;

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "meshfleet";
/// The label on every copy meshfleet applies; only objects with it are ever removed.
pub const LABEL_MANAGED: &str = "meshfleet.io/managed";
/// The label on a Work naming the pull-mode cluster it is for.
pub const LABEL_CLUSTER: &str = "meshfleet.io/cluster";
/// The label on a namespace meshfleet created because a copy needed it: it is never pruned
/// (what else lives there is not meshfleet's).
pub const LABEL_CREATED_NAMESPACE: &str = "meshfleet.io/created-namespace";
/// How long one apply may take before it counts as failed (a member that accepts the
/// connection and then stalls must not hold propagation up).
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a manifest went: its resource, scope, hash, and the propagated manifest it is (itself,
/// or the one a pull-mode cluster's Work carries).
#[derive(Clone, Debug)]
struct Placed {
    resource: ApiResource,
    hash: u64,
    source: ManifestKey,
}

/// Pull-mode clusters: their names, and the gateway cluster their Works are written to.
#[derive(Clone)]
pub struct PullMode {
    pub clusters: Arc<RwLock<BTreeSet<String>>>,
    pub gateway: kube::Client,
}

/// Server-side apply to member clusters. See the module docs.
pub struct KubeSink {
    clients: Clients,
    leader: watch::Receiver<bool>,
    pull: Option<PullMode>,
    /// Per cluster: what this sink applied, by key where it went.
    applied: BTreeMap<String, BTreeMap<ManifestKey, Placed>>,
    /// (cluster, group, kind) whose labelled objects were listed since the start (to prune
    /// after a restart what an earlier run applied).
    listed: BTreeSet<(String, String, String)>,
    /// Per cluster: why each manifest that failed last did, by its propagated key.
    failed: BTreeMap<String, BTreeMap<ManifestKey, String>>,
    /// The same, for readers elsewhere (status written back).
    shared_failures: Failures,
    /// Whether each cluster was last written in pull mode.
    modes: BTreeMap<String, bool>,
}

/// Per cluster: why each manifest that failed in the last apply did, by its propagated key.
pub type Failures = Arc<RwLock<BTreeMap<String, BTreeMap<ManifestKey, String>>>>;

impl KubeSink {
    pub fn new(clients: Clients, leader: watch::Receiver<bool>) -> Self {
        Self {
            clients,
            leader,
            pull: None,
            applied: BTreeMap::new(),
            listed: BTreeSet::new(),
            failed: BTreeMap::new(),
            shared_failures: Failures::default(),
            modes: BTreeMap::new(),
        }
    }

    /// Clusters in pull mode get their manifests as Works in the gateway cluster instead.
    pub fn with_pull_mode(mut self, pull: PullMode) -> Self {
        self.pull = Some(pull);
        self
    }

    /// [`KubeSink::failures`] for every cluster, kept up to date, to be read elsewhere.
    pub fn failures_handle(&self) -> Failures {
        self.shared_failures.clone()
    }

    /// Forgets what this sink applied to `cluster` (it no longer removes any of it).
    fn forget(&mut self, cluster: &str) {
        self.applied.remove(cluster);
        self.listed.retain(|(c, _, _)| c != cluster);
        self.failed.remove(cluster);
        self.shared_failures
            .write()
            .expect("failures lock")
            .remove(cluster);
    }

    /// Why each manifest of `cluster` that failed in the last apply did.
    pub fn failures(&self, cluster: &str) -> Option<&BTreeMap<ManifestKey, String>> {
        self.failed.get(cluster)
    }

    fn client(&self, cluster: &str) -> Result<kube::Client, SinkError> {
        self.clients
            .read()
            .expect("clients lock")
            .get(cluster)
            .cloned()
            .ok_or_else(|| SinkError::WriteManifest {
                location: format!("cluster {cluster}"),
                source: "no client for the cluster: it is not registered, or its credentials cannot be used".into(),
            })
    }

    fn check_leader(&self) -> Result<(), SinkError> {
        if *self.leader.borrow() {
            Ok(())
        } else {
            Err(SinkError::Standby)
        }
    }

    /// The gateway's client when `cluster` pulls its manifests.
    fn pulling(&self, cluster: &str) -> Option<kube::Client> {
        let pull = self.pull.as_ref()?;
        pull.clusters
            .read()
            .expect("pull lock")
            .contains(cluster)
            .then(|| pull.gateway.clone())
    }

    async fn apply_now(
        &mut self,
        cluster: &str,
        desired: &Manifests,
        keep: Keep<'_>,
        only: Option<&BTreeSet<ManifestKey>>,
    ) -> Result<Applied, SinkError> {
        self.check_leader()?;
        let pull = self.pulling(cluster);
        // A cluster that switched between push and pull: what was applied the other way is
        // not this client's to remove (a pushed copy's key would name the template itself in
        // the gateway). It is forgotten, not deleted.
        let mode = pull.is_some();
        if self
            .modes
            .insert(cluster.to_owned(), mode)
            .is_some_and(|before| before != mode)
        {
            tracing::warn!(%cluster, pull = mode, "the cluster switched between push and pull: what was applied the other way is left as it is");
            self.forget(cluster);
        }
        let has_client = self
            .clients
            .read()
            .expect("clients lock")
            .contains_key(cluster);
        if desired.is_empty() && pull.is_none() && !has_client {
            // A cluster gone from the fleet (or not reachable yet): nothing can be removed
            // there any more; what this sink held for it is forgotten.
            if self.applied.get(cluster).is_some_and(|h| !h.is_empty()) {
                tracing::warn!(%cluster, "the cluster is gone: its copies are left as they are");
            }
            self.forget(cluster);
            return Ok(Applied::default());
        }
        let holds_nothing = self.applied.get(cluster).is_none_or(BTreeMap::is_empty);
        if desired.is_empty()
            && holds_nothing
            && pull.is_none()
            && !self
                .clients
                .read()
                .expect("clients lock")
                .contains_key(cluster)
        {
            // Nothing to write where nothing was written (a member that cannot be reached yet).
            return Ok(Applied::default());
        }
        let client = match &pull {
            Some(gateway) => gateway.clone(),
            None => self.client(cluster)?,
        };
        let mut applied = Applied::default();
        let mut first_error = None;
        // What differs from what was applied (the bytes of each rendering are hashed): only
        // that is decoded, prepared and sent.
        let mut changed: Vec<(&ManifestKey, &Arc<Manifest>)> = Vec::new();
        {
            let held = self.applied.get(cluster);
            for (key, manifest) in desired {
                if only.is_some_and(|o| !o.contains(key)) {
                    continue;
                }
                let target = match &pull {
                    Some(_) => work_key(cluster, key),
                    None => key.clone(),
                };
                if held
                    .and_then(|h| h.get(&target))
                    .is_some_and(|p| p.hash == manifest.hash)
                {
                    applied.unchanged += 1;
                } else {
                    changed.push((key, manifest));
                }
            }
        }
        // The HPAs are asked about only when a workload is to be applied.
        let scalable = changed
            .iter()
            .any(|(k, _)| matches!(k.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet"));
        let scaled = if pull.is_some() || !scalable {
            // In pull mode the agent applies in the member; an HPA there is its to respect.
            BTreeSet::new()
        } else {
            match autoscaled(&client).await {
                Ok(scaled) => scaled,
                Err(error) => {
                    tracing::debug!(%cluster, %error, "cannot list HorizontalPodAutoscalers; applying replicas as rendered");
                    BTreeSet::new()
                }
            }
        };
        // Each changed manifest where it goes: itself, or a Work carrying it.
        let mut wanted: BTreeMap<ManifestKey, (ManifestKey, Value, u64)> = BTreeMap::new();
        let failed = self.failed.entry(cluster.to_owned()).or_default();
        for (key, manifest) in changed {
            let value = match manifest.decode() {
                Ok(v) => serde_json::to_value(v).unwrap_or(Value::Null),
                Err(e) => {
                    failed.insert(key.clone(), e.to_string());
                    first_error = first_error.or(Some(SinkError::WriteManifest {
                        location: location(cluster, key),
                        source: e.into(),
                    }));
                    continue;
                }
            };
            let body = prepared(value, key, &scaled);
            let (target, body) = match &pull {
                Some(_) => work_for(cluster, key, body),
                None => (key.clone(), body),
            };
            wanted.insert(target, (key.clone(), body, manifest.hash));
        }
        // Every kind this cluster gets (whatever changed this time) not listed yet.
        let mut kinds: BTreeMap<(String, String), ApiResource> = BTreeMap::new();
        for (key, manifest) in desired {
            if pull.is_some() {
                let work = work_key(cluster, key);
                kinds.insert(
                    (work.group.clone(), work.kind.clone()),
                    resource_of(&work, "meshfleet.io/v1alpha1"),
                );
                break;
            }
            let kind = (key.group.clone(), key.kind.clone());
            if kinds.contains_key(&kind)
                || self
                    .listed
                    .contains(&(cluster.to_owned(), kind.0.clone(), kind.1.clone()))
            {
                continue;
            }
            let version = manifest
                .decode()
                .ok()
                .and_then(|v| {
                    v.get("apiVersion")
                        .and_then(|a| a.as_str().map(str::to_owned))
                })
                .unwrap_or_default();
            kinds.insert(kind, resource_of(key, &version));
        }
        kinds.retain(|(group, kind), _| {
            !self
                .listed
                .contains(&(cluster.to_owned(), group.clone(), kind.clone()))
        });
        if !kinds.is_empty() {
            let names: Vec<(String, String)> = kinds.keys().cloned().collect();
            match self.adopt(&client, cluster, kinds).await {
                Ok(()) => {
                    for (group, kind) in names {
                        self.listed.insert((cluster.to_owned(), group, kind));
                    }
                }
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        // Applied a few at a time.
        let pending: Vec<(ManifestKey, ManifestKey, Value, u64)> = wanted
            .iter()
            .map(|(target, (source, body, hash))| {
                (target.clone(), source.clone(), body.clone(), *hash)
            })
            .collect();
        let leader = self.leader.clone();
        let mut results: Vec<_> =
            futures::stream::iter(pending.into_iter().map(|(target, source, body, hash)| {
                apply_checked(client.clone(), leader.clone(), target, source, body, hash)
            }))
            .buffer_unordered(APPLY_CONCURRENCY)
            .collect()
            .await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let held = self.applied.entry(cluster.to_owned()).or_default();
        let failed = self.failed.entry(cluster.to_owned()).or_default();
        let mut standby = false;
        for (target, source, hash, result) in results {
            let location = location(cluster, &target);
            match result {
                None => standby = true,
                Some(Ok(resource)) => {
                    failed.remove(&source);
                    held.insert(
                        target.clone(),
                        Placed {
                            resource,
                            hash,
                            source,
                        },
                    );
                    applied.written += 1;
                }
                Some(Err(error)) => {
                    tracing::warn!(%location, %error, "apply failed");
                    failed.insert(source, error.to_string());
                    first_error = first_error.or(Some(SinkError::WriteManifest {
                        location,
                        source: error,
                    }));
                }
            }
        }
        if standby {
            return Err(SinkError::Standby);
        }
        // Remove what this sink applied there and nobody wants any more.
        let stale: Vec<ManifestKey> = held
            .iter()
            .filter(|(target, placed)| {
                !wanted.contains_key(*target)
                    && !desired.contains_key(&placed.source)
                    && !keep.contains(&placed.source)
                    && only.is_none_or(|o| o.contains(&placed.source))
            })
            .map(|(target, _)| target.clone())
            .collect();
        for key in stale {
            if !*self.leader.borrow() {
                return Err(SinkError::Standby);
            }
            let placed = held[&key].clone();
            let api = objects::api(&client, &placed.resource, &key.namespace);
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => {
                    held.remove(&key);
                    applied.removed += 1;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    held.remove(&key);
                }
                Err(error) => {
                    first_error = first_error.or(Some(SinkError::RemoveManifest {
                        location: location(cluster, &key),
                        source: error.into(),
                    }));
                }
            }
        }
        failed.retain(|k, _| desired.contains_key(k));
        self.shared_failures
            .write()
            .expect("failures lock")
            .insert(cluster.to_owned(), failed.clone());
        match first_error {
            Some(error) => Err(error),
            None => Ok(applied),
        }
    }

    /// After a start: the objects carrying meshfleet's label in the kinds it applies there are
    /// taken as applied by this sink (with no hash: they are applied again), so that what is
    /// no longer wanted is removed.
    async fn adopt(
        &mut self,
        client: &kube::Client,
        cluster: &str,
        kinds: BTreeMap<(String, String), ApiResource>,
    ) -> Result<(), SinkError> {
        let held = self.applied.entry(cluster.to_owned()).or_default();
        for resource in kinds.into_values() {
            // A pull-mode cluster's Works live in its own namespace of the gateway: never
            // another cluster's.
            let works = resource.kind == "Work" && resource.group == meshfleet_api::crd::GROUP;
            let namespace = if works {
                meshfleet_api::work::execution_namespace(cluster)
            } else {
                String::new()
            };
            let api = objects::api(client, &resource, &namespace);
            let listed = api
                .list(&ListParams::default().labels(&format!("{LABEL_MANAGED}=true")))
                .await
                .map_err(|error| SinkError::ReadState {
                    location: format!("cluster {cluster}: {}", resource.plural),
                    source: error.into(),
                })?;
            for object in listed.items {
                // The label selector may be ignored (kmock): filter here too.
                let labels = object.metadata.labels.clone().unwrap_or_default();
                if labels.get(LABEL_MANAGED).is_none_or(|v| v != "true") {
                    continue;
                }
                if works && labels.get(LABEL_CLUSTER).is_none_or(|c| c != cluster) {
                    continue;
                }
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                let key = ManifestKey {
                    group: resource.group.clone(),
                    kind: resource.kind.clone(),
                    namespace: namespace.clone(),
                    name: object.metadata.name.clone().unwrap_or_default(),
                };
                // A Work stands for the manifest it carries.
                let source = match object.data["spec"]["workload"]["manifests"].get(0) {
                    Some(manifest) if resource.kind == "Work" => {
                        key_of_manifest(manifest).unwrap_or_else(|| key.clone())
                    }
                    _ => key.clone(),
                };
                held.entry(key).or_insert(Placed {
                    resource: resource.clone(),
                    hash: 0,
                    source,
                });
            }
        }
        Ok(())
    }
}

/// One apply, unless this replica no longer holds the Lease when its turn comes (`None`).
async fn apply_checked(
    client: kube::Client,
    leader: watch::Receiver<bool>,
    target: ManifestKey,
    source: ManifestKey,
    body: Value,
    hash: u64,
) -> (
    ManifestKey,
    ManifestKey,
    u64,
    Option<Result<ApiResource, BoxError>>,
) {
    let result = if *leader.borrow() {
        let applied = tokio::time::timeout(APPLY_TIMEOUT, apply_one(&client, &target, &body)).await;
        Some(applied.unwrap_or_else(|_| {
            Err(format!("no answer within {}s", APPLY_TIMEOUT.as_secs()).into())
        }))
    } else {
        None
    };
    (target, source, hash, result)
}

/// The key of a manifest as propagation addresses it.
pub fn key_of_manifest(manifest: &Value) -> Option<ManifestKey> {
    let api_version = manifest["apiVersion"].as_str()?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some(ManifestKey {
        group: group.to_owned(),
        kind: manifest["kind"].as_str()?.to_owned(),
        namespace: manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        name: manifest["metadata"]["name"].as_str()?.to_owned(),
    })
}

/// The Work that carries `manifest` to a pull-mode `cluster`: in its execution namespace,
/// named after the manifest (readable, with a hash of its whole key so that names never
/// collide).
fn work_for(cluster: &str, key: &ManifestKey, manifest: Value) -> (ManifestKey, Value) {
    let target = work_key(cluster, key);
    let work = json!({
        "apiVersion": "meshfleet.io/v1alpha1",
        "kind": "Work",
        "metadata": {"name": target.name, "namespace": target.namespace,
            "labels": {LABEL_MANAGED: "true", LABEL_CLUSTER: cluster}},
        "spec": {"workload": {"manifests": [manifest]}},
    });
    (target, work)
}

/// Where the Work carrying `key` to `cluster` lives.
fn work_key(cluster: &str, key: &ManifestKey) -> ManifestKey {
    let readable: String = format!("{}-{}", key.kind, key.name)
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let hash = xxhash_rust::xxh3::xxh3_64(key.to_string().as_bytes());
    ManifestKey {
        group: meshfleet_api::crd::GROUP.to_owned(),
        kind: "Work".to_owned(),
        namespace: meshfleet_api::work::execution_namespace(cluster),
        name: format!("{}-{:08x}", readable.trim_matches('-'), hash as u32),
    }
}

impl ApplyManifests for KubeSink {
    fn apply<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
    ) -> SinkFuture<'a, Applied> {
        Box::pin(self.apply_now(cluster, desired, keep, None))
    }

    fn apply_keys<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
        keys: &'a BTreeSet<ManifestKey>,
    ) -> SinkFuture<'a, Applied> {
        Box::pin(self.apply_now(cluster, desired, keep, Some(keys)))
    }

    fn clusters(&mut self) -> SinkFuture<'_, Vec<String>> {
        Box::pin(async move { Ok(self.applied.keys().cloned().collect()) })
    }
}

fn location(cluster: &str, key: &ManifestKey) -> String {
    format!("cluster {cluster}: {key}")
}

/// The resource of a manifest's kind (its plural guessed as the API server's conventions make
/// it: `deployments`, `networkpolicies`, `ingresses`).
pub(crate) fn resource_of(key: &ManifestKey, api_version: &str) -> ApiResource {
    let version = api_version.rsplit('/').next().unwrap_or("v1");
    ApiResource::from_gvk(&GroupVersionKind::gvk(&key.group, version, &key.kind))
}

/// The workloads an HPA scales in this cluster: (group, kind, namespace, name).
async fn autoscaled(
    client: &kube::Client,
) -> Result<BTreeSet<(String, String, String, String)>, kube::Error> {
    let api = HPAS.api(client, "");
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|hpa| {
            let target = hpa.data.get("spec")?.get("scaleTargetRef")?;
            let api_version = target
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("apps/v1");
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            Some((
                group.to_owned(),
                target.get("kind")?.as_str()?.to_owned(),
                hpa.metadata.namespace.clone().unwrap_or_default(),
                target.get("name")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// The body applied for a manifest: labelled as meshfleet's, without `spec.replicas` when an
/// HPA scales it, without what the API server sets.
fn prepared(
    mut value: Value,
    key: &ManifestKey,
    scaled: &BTreeSet<(String, String, String, String)>,
) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for server_set in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            meta.remove(server_set);
        }
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(LABEL_MANAGED.to_owned(), json!("true"));
        }
    }
    let target = (
        key.group.clone(),
        key.kind.clone(),
        key.namespace.clone(),
        key.name.clone(),
    );
    if scaled.contains(&target)
        && let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("replicas");
    }
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    value
}

/// Applies one manifest. A missing namespace is created and the apply tried again; an API that
/// answers an apply of a new object with 404 (an emulator) gets it created.
pub(crate) async fn apply_one(
    client: &kube::Client,
    key: &ManifestKey,
    body: &Value,
) -> Result<ApiResource, BoxError> {
    let api_version = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    let resource = resource_of(key, api_version);
    let api = objects::api(client, &resource, &key.namespace);
    let params = PatchParams::apply(FIELD_MANAGER);
    match api.patch(&key.name, &params, &Patch::Apply(body)).await {
        Ok(_) => return Ok(resource),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(describe(error)),
    }
    if !key.namespace.is_empty() {
        let namespaces = NAMESPACES.api(client, "");
        let namespace: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": key.namespace, "labels": {LABEL_CREATED_NAMESPACE: "true"}}
        }))?;
        // Already there (409) or refused: the apply below says what matters.
        let _ = namespaces.create(&PostParams::default(), &namespace).await;
        match api.patch(&key.name, &params, &Patch::Apply(body)).await {
            Ok(_) => return Ok(resource),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(describe(error)),
        }
    }
    let object: DynamicObject = serde_json::from_value(body.clone())?;
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    api.create(&post, &object).await.map_err(describe)?;
    Ok(resource)
}

/// An API error as the user needs it: a conflict names the other manager and field (the API
/// server's message does), a refusal says it is RBAC.
fn describe(error: kube::Error) -> BoxError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => {
            format!("conflict with another field manager: {}", status.message).into()
        }
        kube::Error::Api(status) if status.code == 403 => {
            format!("forbidden (RBAC): {}", status.message).into()
        }
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, group: &str) -> ManifestKey {
        ManifestKey {
            group: group.into(),
            kind: kind.into(),
            namespace: "demo".into(),
            name: "web".into(),
        }
    }

    #[test]
    fn a_copy_is_labelled_and_leaves_replicas_to_an_hpa() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "7", "uid": "u"},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        let k = key("Deployment", "apps");
        let plain = prepared(deployment.clone(), &k, &BTreeSet::new());
        assert_eq!(plain["metadata"]["labels"][LABEL_MANAGED], "true");
        assert_eq!(plain["spec"]["replicas"], 3);
        assert!(plain.get("status").is_none());
        assert!(plain["metadata"].get("resourceVersion").is_none());
        let scaled = BTreeSet::from([(
            "apps".into(),
            "Deployment".into(),
            "demo".into(),
            "web".into(),
        )]);
        let under_hpa = prepared(deployment, &k, &scaled);
        assert!(under_hpa["spec"].get("replicas").is_none());
    }

    #[test]
    fn a_conflict_names_the_other_manager_and_a_refusal_says_rbac() {
        // The API server's words for a server-side apply conflict (kube-apiserver 1.3x).
        let conflict = kube::Error::Api(
            kube::core::Status::failure(
                "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
                "Conflict",
            )
            .with_code(409)
            .boxed(),
        );
        let text = describe(conflict).to_string();
        assert!(
            text.starts_with("conflict with another field manager"),
            "{text}"
        );
        assert!(
            text.contains("kubectl-edit") && text.contains(".spec.replicas"),
            "{text}"
        );
        let denied = kube::Error::Api(
            kube::core::Status::failure("deployments.apps \"web\" is forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        assert!(describe(denied).to_string().starts_with("forbidden (RBAC)"));
    }

    #[test]
    fn plurals_follow_the_api_conventions() {
        assert_eq!(
            resource_of(&key("Deployment", "apps"), "apps/v1").plural,
            "deployments"
        );
        assert_eq!(
            resource_of(
                &key("NetworkPolicy", "networking.k8s.io"),
                "networking.k8s.io/v1"
            )
            .plural,
            "networkpolicies"
        );
        assert_eq!(
            resource_of(&key("Ingress", "networking.k8s.io"), "networking.k8s.io/v1").plural,
            "ingresses"
        );
        assert_eq!(
            resource_of(&key("ConfigMap", ""), "v1").plural,
            "configmaps"
        );
    }
}
