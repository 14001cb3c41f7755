//! Status back to the gateway cluster, by the Lease holder, every [`INTERVAL`]:
//!
//! - each ResourceBinding (and ClusterResourceBinding) the plan holds, applied to the gateway
//!   cluster with its `status.aggregatedStatus` (Karmada's shape): per target cluster, whether
//!   the copy was applied (and why not), its `status` there, and its health;
//! - each workload template's `status` (Deployments, StatefulSets: replicas, ready, updated and
//!   available replicas summed over the clusters), as Karmada aggregates it.
//!
//! - Events for what is wrong with the gateway's objects and for copies that failed
//!   ([`super::events`]).
//!
//! The copies' statuses are read with one list per member and kind (the labelled copies), or,
//! for a pull-mode cluster, from its Works' status as its agent reported it: the number of
//! requests grows with clusters and kinds, not with templates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use meshfleet_api::{AggregatedStatusItem, ResourceBinding};
use meshfleet_propagation::manifest::ManifestKey;

use super::members::Clients;
use super::objects::{self, WORKS};
use super::sink::{Failures, LABEL_MANAGED, PullMode, apply_one, key_of_manifest, resource_of};
use crate::state::State;

/// How often status is written back.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// A copy as its cluster shows it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Copy {
    status: Option<Value>,
    applied: bool,
    message: Option<String>,
}

pub struct Reporter {
    pub gateway: kube::Client,
    pub clients: Clients,
    pub pull: PullMode,
    pub failures: Failures,
    pub state: Arc<State>,
    pub leader: watch::Receiver<bool>,
    /// What was last written, so that nothing is written twice.
    written: BTreeMap<String, Value>,
    events: super::events::Recorder,
}

impl Reporter {
    pub fn new(
        gateway: kube::Client,
        clients: Clients,
        pull: PullMode,
        failures: Failures,
        state: Arc<State>,
        leader: watch::Receiver<bool>,
    ) -> Self {
        Self {
            events: super::events::Recorder::new(gateway.clone(), super::lease::identity()),
            gateway,
            clients,
            pull,
            failures,
            state,
            leader,
            written: BTreeMap::new(),
        }
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_leader = false;
        loop {
            tick.tick().await;
            let leader = *self.leader.borrow();
            if leader && !was_leader {
                // Another replica may have written meanwhile: nothing is taken as written.
                self.written.clear();
                self.events.forget();
            }
            was_leader = leader;
            if leader {
                self.pass().await;
            }
        }
    }

    async fn pass(&mut self) {
        let bindings = self.state.bindings();
        // The kinds each cluster has copies of.
        let mut kinds: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for binding in bindings.values() {
            let (group, version) = split(&binding.spec.resource.api_version);
            for target in &binding.spec.clusters {
                kinds.entry(target.name.clone()).or_default().insert((
                    format!("{group}/{version}"),
                    binding.spec.resource.kind.clone(),
                ));
            }
        }
        let mut copies: BTreeMap<(String, ManifestKey), Copy> = BTreeMap::new();
        for (cluster, kinds) in &kinds {
            if let Err(error) = self.read_copies(cluster, kinds, &mut copies).await {
                tracing::debug!(%cluster, %error, "cannot read the copies' status");
            }
        }
        let failures = self.failures.read().expect("failures lock").clone();
        for binding in bindings.values() {
            let key = key_of(binding);
            let items: Vec<AggregatedStatusItem> = binding
                .spec
                .clusters
                .iter()
                .map(|target| {
                    let copy = copies.get(&(target.name.clone(), key.clone()));
                    let failure = failures
                        .get(&target.name)
                        .and_then(|f| f.get(&key))
                        .cloned();
                    item(&target.name, target.replicas, copy, failure)
                })
                .collect();
            self.write_binding(binding, &items).await;
            self.write_template(binding, &items).await;
        }
        let mut notes = super::events::from_problems(&self.state.problems());
        notes.extend(super::events::from_failures(&failures));
        if *self.leader.borrow() {
            self.events.record(notes).await;
        }
    }

    /// The labelled copies of `kinds` in `cluster`, or its Works' reported status.
    async fn read_copies(
        &self,
        cluster: &str,
        kinds: &BTreeSet<(String, String)>,
        copies: &mut BTreeMap<(String, ManifestKey), Copy>,
    ) -> Result<(), kube::Error> {
        let pulled = self
            .pull
            .clusters
            .read()
            .expect("pull lock")
            .contains(cluster);
        if pulled {
            let namespace = meshfleet_api::work::execution_namespace(cluster);
            let api = WORKS.api(&self.gateway, &namespace);
            for work in api.list(&ListParams::default()).await?.items {
                let Some(key) = work.data["spec"]["workload"]["manifests"]
                    .get(0)
                    .and_then(key_of_manifest)
                else {
                    continue;
                };
                let applied = work.data["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Applied").cloned());
                copies.insert(
                    (cluster.to_owned(), key),
                    Copy {
                        status: work.data["status"]["manifestStatuses"][0]
                            .get("status")
                            .filter(|s| !s.is_null())
                            .cloned(),
                        applied: applied.as_ref().is_some_and(|c| c["status"] == "True"),
                        message: applied
                            .filter(|c| c["status"] != "True")
                            .and_then(|c| c["message"].as_str().map(str::to_owned))
                            .or_else(|| Some("not yet applied by the cluster's agent".to_owned())),
                    },
                );
            }
            return Ok(());
        }
        let Some(client) = self
            .clients
            .read()
            .expect("clients lock")
            .get(cluster)
            .cloned()
        else {
            return Ok(());
        };
        for (api_version, kind) in kinds {
            let (group, _) = split(api_version);
            let probe = ManifestKey {
                group: group.to_owned(),
                kind: kind.clone(),
                namespace: String::new(),
                name: String::new(),
            };
            let resource = resource_of(&probe, api_version);
            let api = objects::api(&client, &resource, "");
            let params = ListParams::default().labels(&format!("{LABEL_MANAGED}=true"));
            for object in api.list(&params).await?.items {
                let key = ManifestKey {
                    group: group.to_owned(),
                    kind: kind.clone(),
                    namespace: object.metadata.namespace.clone().unwrap_or_default(),
                    name: object.metadata.name.clone().unwrap_or_default(),
                };
                copies.insert(
                    (cluster.to_owned(), key),
                    Copy {
                        status: object.data.get("status").cloned(),
                        applied: true,
                        message: None,
                    },
                );
            }
        }
        Ok(())
    }

    /// The binding in the gateway cluster, with its aggregated status.
    async fn write_binding(&mut self, binding: &ResourceBinding, items: &[AggregatedStatusItem]) {
        let namespaced = binding.metadata.namespace.is_some();
        let kind = if namespaced {
            "ResourceBinding"
        } else {
            "ClusterResourceBinding"
        };
        let namespace = binding.metadata.namespace.clone().unwrap_or_default();
        let name = binding.metadata.name.clone();
        let key = ManifestKey {
            group: meshfleet_api::crd::GROUP.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let mut status = serde_json::to_value(&binding.status).unwrap_or(Value::Null);
        status["aggregatedStatus"] = serde_json::to_value(items).unwrap_or(Value::Null);
        let body = json!({
            "apiVersion": "meshfleet.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": if namespaced { json!(namespace) } else { Value::Null },
                "labels": {LABEL_MANAGED: "true"}},
            "spec": binding.spec,
        });
        let id = format!("{key}");
        let written = json!([body, status]);
        if self.written.get(&id) == Some(&written) || !*self.leader.borrow() {
            return;
        }
        let resource = match apply_one(&self.gateway, &key, &body).await {
            Ok(resource) => resource,
            Err(error) => {
                tracing::warn!(binding = %id, %error, "cannot write the binding to the gateway cluster");
                return;
            }
        };
        let api = objects::api(&self.gateway, &resource, &namespace);
        let patch = json!({"status": status});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.written.insert(id, written);
            }
            Err(error) => {
                tracing::warn!(binding = %id, %error, "cannot write the binding's status")
            }
        }
    }

    /// A workload template's status: its copies' replicas summed, as Karmada aggregates them.
    async fn write_template(&mut self, binding: &ResourceBinding, items: &[AggregatedStatusItem]) {
        let reference = &binding.spec.resource;
        if !matches!(reference.kind.as_str(), "Deployment" | "StatefulSet") {
            return;
        }
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for field in [
            "replicas",
            "readyReplicas",
            "updatedReplicas",
            "availableReplicas",
        ] {
            let sum = items
                .iter()
                .filter_map(|i| i.status.as_ref())
                .filter_map(|s| s[field].as_i64())
                .sum();
            sums.insert(field, sum);
        }
        let status = json!(sums);
        let key = key_of(binding);
        let id = format!("template {key}");
        if self.written.get(&id) == Some(&status) || !*self.leader.borrow() {
            return;
        }
        let resource = resource_of(&key, &reference.api_version);
        let api = objects::api(&self.gateway, &resource, &key.namespace);
        let patch = json!({"status": status});
        match api
            .patch_status(
                &reference.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                self.written.insert(id, status);
            }
            Err(error) => {
                tracing::warn!(template = %key, %error, "cannot write the template's status")
            }
        }
    }
}

fn split(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The key the template (and each of its copies) has.
fn key_of(binding: &ResourceBinding) -> ManifestKey {
    let reference = &binding.spec.resource;
    ManifestKey {
        group: split(&reference.api_version).0.to_owned(),
        kind: reference.kind.clone(),
        namespace: reference.namespace.clone().unwrap_or_default(),
        name: reference.name.clone(),
    }
}

/// One cluster's part of a binding's status.
fn item(
    cluster: &str,
    replicas: i32,
    copy: Option<&Copy>,
    failure: Option<String>,
) -> AggregatedStatusItem {
    let applied = failure.is_none() && copy.is_some_and(|c| c.applied);
    let applied_message = failure
        .or_else(|| copy.and_then(|c| c.message.clone()))
        .or_else(|| {
            copy.is_none().then(|| {
                "not found in the cluster (not applied yet, or it cannot be read)".to_owned()
            })
        });
    let status = copy.and_then(|c| c.status.clone());
    let health = match (&status, applied) {
        (_, false) => "Unknown",
        (Some(s), true) if replicas > 0 => {
            if s["readyReplicas"].as_i64().unwrap_or(0) >= i64::from(replicas) {
                "Healthy"
            } else {
                "Unhealthy"
            }
        }
        (None, true) if replicas > 0 => "Unknown",
        _ => "Healthy",
    };
    AggregatedStatusItem {
        cluster_name: cluster.to_owned(),
        status,
        applied,
        applied_message: if applied { None } else { applied_message },
        health: Some(health.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_ready_replicas_and_failures_say_why() {
        let ready = Copy {
            status: Some(json!({"replicas": 2, "readyReplicas": 2})),
            applied: true,
            message: None,
        };
        let short = Copy {
            status: Some(json!({"replicas": 2, "readyReplicas": 1})),
            ..ready.clone()
        };
        assert_eq!(
            item("a", 2, Some(&ready), None).health.as_deref(),
            Some("Healthy")
        );
        assert_eq!(
            item("a", 2, Some(&short), None).health.as_deref(),
            Some("Unhealthy")
        );
        let failed = item("a", 2, Some(&ready), Some("forbidden (RBAC): no".into()));
        assert!(!failed.applied);
        assert_eq!(
            failed.applied_message.as_deref(),
            Some("forbidden (RBAC): no")
        );
        assert_eq!(failed.health.as_deref(), Some("Unknown"));
        let missing = item("a", 2, None, None);
        assert!(!missing.applied);
        assert!(missing.applied_message.unwrap().contains("not found"));
        // A kind without replicas is healthy once applied.
        let config = Copy {
            status: None,
            applied: true,
            message: None,
        };
        assert_eq!(
            item("a", 0, Some(&config), None).health.as_deref(),
            Some("Healthy")
        );
    }
}
