//! Fields a member cluster must not receive, dropped as Karmada's
//! `prune.RemoveIrrelevantFields` (+ `RemoveJobTTLSeconds`) drops them before a Work is
//! written (`pkg/resourceinterpreter/default/native/prune/prune.go`):
//!
//! - `status`, and the server-set `metadata` fields: `creationTimestamp`, `deletionTimestamp`,
//!   `deletionGracePeriodSeconds`, `generation`, `managedFields`, `resourceVersion`,
//!   `selfLink`, `uid`, `ownerReferences`, `finalizers`;
//! - Service: `spec.clusterIP` and `spec.clusterIPs` unless `clusterIP` is `None` (headless);
//! - Job without `manualSelector: true`: the generated `controller-uid` selector label and the
//!   `controller-uid` / `job-name` pod template labels; `spec.ttlSecondsAfterFinished`;
//! - ServiceAccount: the generated token secrets (`<name>-token-*`) from `secrets`.
//!
//! Karmada then keeps the member's own values of some fields when it updates (its "retain"
//! step). meshfleet renders without reading the member, so it drops what the member allocates
//! instead: a Service's `healthCheckNodePort`, the `batch.kubernetes.io/`-prefixed Job labels
//! (Kubernetes ≥ 1.27 generates both forms), a Job selector left empty, and a ServiceAccount's
//! `secrets` left empty.
//!
//! Pruning never fails: a field of an unexpected type is left as it is.

use serde_json::{Map, Value};

const SERVER_METADATA: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "resourceVersion",
    "selfLink",
    "uid",
    "ownerReferences",
    "finalizers",
];

const JOB_SELECTOR_LABELS: &[&str] = &["controller-uid", "batch.kubernetes.io/controller-uid"];
const JOB_TEMPLATE_LABELS: &[&str] = &[
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
];

/// Drops what `kind`'s copy must not carry to a member cluster.
pub(super) fn prune(doc: &mut Value, kind: &str) {
    let Value::Object(root) = doc else {
        return;
    };
    root.remove("status");
    if let Some(Value::Object(metadata)) = root.get_mut("metadata") {
        for field in SERVER_METADATA {
            metadata.remove(*field);
        }
    }
    match kind {
        "Service" => prune_service(root),
        "Job" => prune_job(root),
        "ServiceAccount" => prune_service_account(root),
        _ => {}
    }
}

fn object<'a>(map: &'a mut Map<String, Value>, field: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(field).and_then(Value::as_object_mut)
}

fn prune_service(root: &mut Map<String, Value>) {
    let Some(spec) = object(root, "spec") else {
        return;
    };
    if let Some(ip) = spec.get("clusterIP").and_then(Value::as_str)
        && ip != "None"
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    spec.remove("healthCheckNodePort");
}

fn prune_job(root: &mut Map<String, Value>) {
    let Some(spec) = object(root, "spec") else {
        return;
    };
    spec.remove("ttlSecondsAfterFinished");
    if spec.get("manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(selector) = object(spec, "selector") {
        if let Some(labels) = object(selector, "matchLabels") {
            JOB_SELECTOR_LABELS
                .iter()
                .for_each(|l| drop(labels.remove(*l)));
        }
        let empty = |v: Option<&Value>| v.is_none_or(|v| v.as_object().is_some_and(Map::is_empty));
        let generated_only =
            selector.keys().all(|k| k == "matchLabels") && empty(selector.get("matchLabels"));
        if generated_only {
            spec.remove("selector");
        }
    }
    let labels = object(spec, "template")
        .and_then(|t| object(t, "metadata"))
        .and_then(|m| object(m, "labels"));
    if let Some(labels) = labels {
        JOB_TEMPLATE_LABELS
            .iter()
            .for_each(|l| drop(labels.remove(*l)));
    }
}

fn prune_service_account(root: &mut Map<String, Value>) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prefix = format!("{name}-token-");
    let Some(Value::Array(secrets)) = root.get_mut("secrets") else {
        return;
    };
    secrets.retain(|s| {
        !s.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.starts_with(&prefix))
    });
    if secrets.is_empty() {
        root.remove("secrets");
    }
}
