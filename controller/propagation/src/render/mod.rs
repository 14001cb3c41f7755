//! Rendering: one resource template becomes the manifest applied to one member cluster, as
//! Karmada's binding controller builds a Work (`pkg/controllers/binding/common.go`
//! `ensureWork`), plus meshfleet's locality labels.
//!
//! ```text
//!  template ─clone─> replicas ─> overrides ─────────────> prune ───────────> labels ─> manifest
//!  (once per         (Divided    (ClusterOverridePolicies (status, server   (managed on the
//!   cluster)          share; a    then OverridePolicies;   fields, Service   object; locality
//!                     Job's       image, command, args,    IPs, Job labels)  on pod templates)
//!                     completions labels, annotations,
//!                                 field, plaintext)
//! ```
//!
//! The order is Karmada's: the scheduled replicas are written first, so an override of
//! `/spec/replicas` wins ("override rules have the highest priority"); pruning happens when the
//! Work is written, after the overrides; meshfleet's labels come last, as Karmada's own labels
//! do, so no policy removes them.
//!
//! [`dependencies`] lists what a workload needs with it (`propagateDeps`).
//!
//! # Guarantees
//! - Pure and deterministic: the same inputs give the same manifest (maps are key-sorted).
//! - The template is cloned once and patched in place; policies are borrowed, never cloned.
//! - Odd input (a `spec` that is a string, a container without a name) gives an error or is
//!   left alone; never a panic.
//!
//! # Errors
//! [`RenderError`] names the policy and the field of the policy at fault. Messages name paths
//! and types, never values of the template (it may be a Secret).

mod containers;
mod deps;
mod fault;
mod field;
mod image;
mod locality;
mod meta;
mod overrides;
mod patch;
mod prune;
mod reference;
mod tree;

use std::sync::Arc;

use serde_json::Value;

pub use deps::{Dependency, dependencies};
pub use tree::NotAnObject;

use crate::selector::ResourceId;
use meshfleet_api::{Cluster, OverridePolicy};

/// Label naming the member cluster on every rendered pod template (Istio's cluster label).
pub const LABEL_CLUSTER: &str = "topology.istio.io/cluster";
/// Label `"true"` on every object meshfleet renders.
pub const LABEL_MANAGED: &str = "meshfleet.io/managed";

/// One template, one cluster.
#[derive(Clone, Copy, Debug)]
pub struct RenderInput<'a> {
    /// The whole template as written.
    pub template: &'a Value,
    pub resource: ResourceId<'a>,
    pub cluster: &'a Cluster,
    /// `Some(n)`: this cluster's share of Divided replicas, written into the copy
    /// (Deployment / StatefulSet / ReplicaSet `spec.replicas`, Job `spec.parallelism`);
    /// `None`: keep the template's.
    pub replicas: Option<i32>,
    /// `Some(n)`: this cluster's share of a Divided Job's `spec.completions`, as Karmada
    /// divides them (by the clusters' replicas); `None`: keep the template's.
    pub completions: Option<i64>,
    /// Every OverridePolicy and ClusterOverridePolicy known; [`render`] selects those that apply.
    pub overrides: &'a [Arc<OverridePolicy>],
}

/// Why a template could not be rendered for a cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An overrider does not apply to this template.
    #[error("{policy} {field}: {message}")]
    ApplyOverride {
        /// `OverridePolicy <namespace>/<name>` or `ClusterOverridePolicy <name>`.
        policy: String,
        /// The overrider at fault: `spec.overrideRules[0].overriders.plaintext[1]`.
        field: String,
        message: String,
    },
    /// The replica count cannot be written (`spec` is not an object).
    #[error("cannot set replicas: {source}")]
    ReviseReplicas {
        #[source]
        source: NotAnObject,
    },
    /// The labels cannot be written (`metadata` or the pod template is not an object).
    #[error("cannot write labels: {source}")]
    WriteLabels {
        #[source]
        source: NotAnObject,
    },
}

/// Renders `input.template` for `input.cluster`. See the module docs for the steps.
///
/// # Errors
/// See [`RenderError`].
pub fn render(input: &RenderInput<'_>) -> Result<Value, RenderError> {
    let kind = input.resource.kind;
    let mut doc = input.template.clone();
    if let Some(replicas) = input.replicas {
        revise_replicas(&mut doc, kind, replicas)
            .map_err(|source| RenderError::ReviseReplicas { source })?;
    }
    if let Some(completions) = input.completions.filter(|_| kind == "Job") {
        tree::ensure_object(&mut doc, &["spec"])
            .map_err(|source| RenderError::ReviseReplicas { source })?
            .insert("completions".to_owned(), Value::from(completions));
    }
    let policies = overrides::applicable(input.overrides, &input.resource);
    overrides::apply(&mut doc, kind, &policies, input.cluster)?;
    prune::prune(&mut doc, kind);
    locality::label(&mut doc, kind, input.cluster)
        .map_err(|source| RenderError::WriteLabels { source })?;
    Ok(doc)
}

/// Karmada's `ReviseReplica` for the kinds meshfleet divides. Karmada writes only a field that
/// is present, because its templates are defaulted by the API server; meshfleet's come from
/// files, so an absent field (Kubernetes' default, 1) is written too.
fn revise_replicas(doc: &mut Value, kind: &str, replicas: i32) -> Result<(), NotAnObject> {
    let field = match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => "replicas",
        "Job" => "parallelism",
        _ => return Ok(()),
    };
    tree::ensure_object(doc, &["spec"])?.insert(field.to_owned(), Value::from(replicas));
    Ok(())
}

#[cfg(test)]
mod tests;
