//! Table tests for rendering, most cases taken from Karmada's documentation (the
//! OverridePolicy user guide) and from Karmada's own unit tests.

mod deps;
mod image;
mod locality;
mod overriders;
mod policies;
mod prune;

use std::sync::Arc;

use serde_json::{Value, json};

use super::overrides;
use super::{RenderError, RenderInput, render};
use crate::selector::ResourceId;
use meshfleet_api::fixtures::cluster;
use meshfleet_api::{Cluster, ObjectMeta, OverridePolicy};

/// A policy from YAML, as a user writes it.
fn policy(yaml: &str) -> Arc<OverridePolicy> {
    Arc::new(serde_norway::from_str(yaml).expect("policy parses"))
}

/// Renders `template` (its kind, apiVersion and metadata from the template itself).
fn render_for(
    template: &Value,
    cluster: &Cluster,
    replicas: Option<i32>,
    overrides: &[Arc<OverridePolicy>],
) -> Result<Value, RenderError> {
    // Odd metadata (a test of odd input) reads as empty.
    let meta: ObjectMeta = serde_json::from_value(template["metadata"].clone()).unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let resource = ResourceId {
        api_version: template["apiVersion"].as_str().expect("apiVersion"),
        kind: template["kind"].as_str().expect("kind"),
        namespace: &namespace,
        meta: &meta,
    };
    render(&RenderInput {
        template,
        resource,
        cluster,
        replicas,
        completions: None,
        overrides,
    })
}

/// Applies one rule's overriders (YAML, as under `overriders:`) to `doc`; nothing else.
fn override_with(doc: Value, overriders: &str) -> Result<Value, RenderError> {
    override_annotated(doc, overriders, "{}")
}

/// [`override_with`], the policy's annotations being `annotations` (a YAML flow mapping).
fn override_annotated(
    mut doc: Value,
    overriders: &str,
    annotations: &str,
) -> Result<Value, RenderError> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    let p = policy(&format!(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\n\
         metadata: {{name: op, annotations: {annotations}}}\n\
         spec:\n  overrideRules:\n  - overriders:\n{}",
        indent(overriders, 6)
    ));
    overrides::apply(&mut doc, &kind, &[p.as_ref()], &cluster("member1").build())?;
    Ok(doc)
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// Karmada docs' `myapp` Deployment.
fn myapp(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "myapp", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": containers}}}
    })
}
