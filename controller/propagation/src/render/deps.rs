//! What a workload needs in the member cluster before it can run: the ConfigMaps, Secrets,
//! ServiceAccount and PersistentVolumeClaims its pods reference. With `propagateDeps`, these
//! follow the workload (Karmada's default dependencies interpreter,
//! `pkg/resourceinterpreter/default/native/dependencies.go`, and
//! `pkg/util/helper` `GetDependenciesFromPodTemplate`).
//!
//! Kinds: Deployment, StatefulSet, DaemonSet, Job, CronJob (its job template), Pod, and Ingress
//! (its TLS Secrets). References, as Kubernetes' `VisitPodSecretNames` /
//! `VisitPodConfigmapNames` find them:
//!
//! - `imagePullSecrets`;
//! - in every container, init container and ephemeral container: `envFrom[].configMapRef` /
//!   `secretRef`, `env[].valueFrom.configMapKeyRef` / `secretKeyRef`;
//! - volumes: `configMap`, `secret`, `projected.sources[].configMap` / `secret`,
//!   `persistentVolumeClaim`, and the `secretRef`s of `azureFile`, `cephfs`, `cinder`,
//!   `flexVolume`, `rbd`, `scaleIO`, `iscsi`, `storageos`, `csi.nodePublishSecretRef`;
//! - `serviceAccountName`, unless it is `default` (which every namespace has).
//!
//! Empty names are skipped; fields of unexpected types are ignored.

use std::collections::BTreeSet;

use serde_json::Value;

use super::tree;

/// A namespaced object a workload references, in the workload's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    /// `ConfigMap`, `Secret`, `ServiceAccount` or `PersistentVolumeClaim`.
    pub kind: &'static str,
    pub name: String,
}

const CONFIG_MAP: &str = "ConfigMap";
const SECRET: &str = "Secret";
const SERVICE_ACCOUNT: &str = "ServiceAccount";
const PVC: &str = "PersistentVolumeClaim";

/// Volume sources whose secret is at `<source>.secretRef.name`.
const SECRET_REF_VOLUMES: &[&str] = &[
    "cephfs",
    "cinder",
    "flexVolume",
    "rbd",
    "scaleIO",
    "iscsi",
    "storageos",
];

/// The dependencies of a `kind` template, deduplicated and sorted (by kind, then name).
pub fn dependencies(kind: &str, template: &Value) -> Vec<Dependency> {
    let mut found = Found::default();
    if kind == "Ingress" {
        for tls in array(template, &["spec", "tls"]) {
            found.add(SECRET, tls.get("secretName"));
        }
    } else if let Some(path) = tree::pod_template_path(kind).filter(|_| kind != "ReplicaSet")
        && let Ok(Some(spec)) = tree::get(template, &tree::join(path, &["spec"]))
    {
        pod_spec(spec, &mut found);
    }
    found.0.into_iter().collect()
}

#[derive(Default)]
struct Found(BTreeSet<Dependency>);

impl Found {
    fn add(&mut self, kind: &'static str, name: Option<&Value>) {
        if let Some(name) = name.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            self.0.insert(Dependency {
                kind,
                name: name.to_owned(),
            });
        }
    }
}

/// The items of the list at `path`, or none.
fn array<'a>(value: &'a Value, path: &[&str]) -> impl Iterator<Item = &'a Value> {
    tree::get(value, path)
        .ok()
        .flatten()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    tree::get(value, path).ok().flatten()
}

fn pod_spec(spec: &Value, found: &mut Found) {
    for secret in array(spec, &["imagePullSecrets"]) {
        found.add(SECRET, secret.get("name"));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in array(spec, &[list]) {
            container_refs(container, found);
        }
    }
    for volume in array(spec, &["volumes"]) {
        volume_refs(volume, found);
    }
    let account = at(spec, &["serviceAccountName"]).filter(|n| n.as_str() != Some("default"));
    found.add(SERVICE_ACCOUNT, account);
}

fn container_refs(container: &Value, found: &mut Found) {
    for source in array(container, &["envFrom"]) {
        found.add(CONFIG_MAP, at(source, &["configMapRef", "name"]));
        found.add(SECRET, at(source, &["secretRef", "name"]));
    }
    for var in array(container, &["env"]) {
        found.add(
            CONFIG_MAP,
            at(var, &["valueFrom", "configMapKeyRef", "name"]),
        );
        found.add(SECRET, at(var, &["valueFrom", "secretKeyRef", "name"]));
    }
}

fn volume_refs(volume: &Value, found: &mut Found) {
    found.add(CONFIG_MAP, at(volume, &["configMap", "name"]));
    found.add(SECRET, at(volume, &["secret", "secretName"]));
    found.add(PVC, at(volume, &["persistentVolumeClaim", "claimName"]));
    found.add(SECRET, at(volume, &["azureFile", "secretName"]));
    found.add(SECRET, at(volume, &["csi", "nodePublishSecretRef", "name"]));
    for source in SECRET_REF_VOLUMES {
        found.add(SECRET, at(volume, &[source, "secretRef", "name"]));
    }
    for source in array(volume, &["projected", "sources"]) {
        found.add(CONFIG_MAP, at(source, &["configMap", "name"]));
        found.add(SECRET, at(source, &["secret", "name"]));
    }
}
