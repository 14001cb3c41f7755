//! meshfleet's CustomResourceDefinitions (`meshfleet.io/v1alpha1`), generated from the API types
//! in [`crate`] so that the cluster accepts exactly what meshfleet reads.
//!
//! ```text
//!  api::Cluster, PropagationPolicy, ... ──schemars──> JSON Schema ──structural::structural──>
//!    OpenAPI v3 structural schema ──crd()──> CustomResourceDefinition ──to_yaml──>
//!    manifests/crds/<plural>.meshfleet.io.yaml   (the crd tests fail when the file differs)
//! ```
//!
//! One Rust type serves two kinds where Karmada has two Go types with the same fields
//! (`PropagationPolicy` and `ClusterPropagationPolicy`, ...): the CRDs differ only in names and
//! scope. Names, short names, categories and printer columns follow Karmada's CRDs.
//!
//! Regenerate the files after changing an API type:
//! `MESHFLEET_UPDATE_CRDS=1 cargo test -p meshfleet-api crd`.

mod structural;
#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

pub use structural::{StructuralError, structural};

use crate::{Cluster, OverridePolicy, PropagationPolicy, ResourceBinding, Work};

/// The API group of meshfleet's own kinds.
pub const GROUP: &str = "meshfleet.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// First line of every generated file.
pub const HEADER: &str =
    "# Generated from the Rust types in controller/src/api by the crd test; do not edit.\n";
/// `kubectl get meshfleet-io` lists every meshfleet object, as `karmada-io` does for Karmada's.
const CATEGORY: &str = "meshfleet-io";

/// Whether objects of a kind live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Namespaced,
    Cluster,
}

/// What tells one CRD from another, besides its schema.
struct Names {
    /// `Cluster`; the singular and list kind follow from it.
    kind: &'static str,
    /// The resource in URLs and in the CRD's name: `clusters`.
    plural: &'static str,
    /// Karmada's abbreviation (`pp`, `rb`), when it has one.
    short_name: Option<&'static str>,
    scope: Scope,
    /// Whether `status` is a subresource (written apart from `spec`, by the controller).
    status: bool,
    /// The schema's root description, for `kubectl explain`.
    description: &'static str,
    /// `additionalPrinterColumns`, for `kubectl get`.
    columns: Value,
}

/// `clusters.meshfleet.io`: member clusters, their locality, network, health and capacity.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn clusters() -> Result<Value, StructuralError> {
    let names = Names {
        kind: "Cluster",
        plural: "clusters",
        short_name: None,
        scope: Scope::Cluster,
        status: true,
        description: "A member cluster: its locality (region, zones, subzone), Istio network, \
                      east-west gateway, taints, health and capacity.",
        columns: json!([
            column("REGION", ".spec.region", "string"),
            column("ZONES", ".spec.zones", "string"),
            column("NETWORK", ".spec.network", "string"),
            column(
                "READY",
                ".status.conditions[?(@.type==\"Ready\")].status",
                "string"
            ),
            age(),
        ]),
    };
    crd::<Cluster>(&names)
}

/// `propagationpolicies.meshfleet.io`: where the resource templates of a namespace go.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn propagation_policies() -> Result<Value, StructuralError> {
    crd::<PropagationPolicy>(&policy(
        "PropagationPolicy",
        "propagationpolicies",
        "pp",
        Scope::Namespaced,
        "Propagates the resource templates of its namespace to member clusters (Karmada's \
         PropagationPolicy).",
    ))
}

/// `clusterpropagationpolicies.meshfleet.io`: where resource templates of any namespace, and
/// cluster-scoped ones, go.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn cluster_propagation_policies() -> Result<Value, StructuralError> {
    crd::<PropagationPolicy>(&policy(
        "ClusterPropagationPolicy",
        "clusterpropagationpolicies",
        "cpp",
        Scope::Cluster,
        "Propagates resource templates of any namespace, and cluster-scoped ones, to member \
         clusters (Karmada's ClusterPropagationPolicy).",
    ))
}

/// `overridepolicies.meshfleet.io`: how the copies of a namespace's templates differ per cluster.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn override_policies() -> Result<Value, StructuralError> {
    crd::<OverridePolicy>(&policy(
        "OverridePolicy",
        "overridepolicies",
        "op",
        Scope::Namespaced,
        "Overrides fields of the copies of its namespace's resource templates per member \
         cluster (Karmada's OverridePolicy).",
    ))
}

/// `clusteroverridepolicies.meshfleet.io`: how copies of any template differ per cluster.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn cluster_override_policies() -> Result<Value, StructuralError> {
    crd::<OverridePolicy>(&policy(
        "ClusterOverridePolicy",
        "clusteroverridepolicies",
        "cop",
        Scope::Cluster,
        "Overrides fields of the copies of any resource template per member cluster (Karmada's \
         ClusterOverridePolicy).",
    ))
}

/// `resourcebindings.meshfleet.io`: the scheduling result for one namespaced template.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn resource_bindings() -> Result<Value, StructuralError> {
    crd::<ResourceBinding>(&binding(
        "ResourceBinding",
        "resourcebindings",
        "rb",
        Scope::Namespaced,
    ))
}

/// `clusterresourcebindings.meshfleet.io`: the scheduling result for one cluster-scoped
/// template, or one claimed by a ClusterPropagationPolicy.
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn cluster_resource_bindings() -> Result<Value, StructuralError> {
    crd::<ResourceBinding>(&binding(
        "ClusterResourceBinding",
        "clusterresourcebindings",
        "crb",
        Scope::Cluster,
    ))
}

/// `works.meshfleet.io`: one manifest for a pull-mode member, in its execution namespace of
/// the gateway cluster, for its `meshfleet agent` (Karmada's Work).
///
/// # Errors
/// The schema of the Rust type has no structural form.
pub fn works() -> Result<Value, StructuralError> {
    crd::<Work>(&Names {
        kind: "Work",
        plural: "works",
        short_name: None,
        scope: Scope::Namespaced,
        status: true,
        description: "One propagated manifest for a member cluster in pull mode, for its \
                      meshfleet agent to apply and report on (Karmada's Work).",
        columns: json!([
            column(
                "APPLIED",
                ".status.conditions[?(@.type==\"Applied\")].status",
                "string"
            ),
            age(),
        ]),
    })
}

/// Every meshfleet CRD, in a fixed order.
///
/// # Errors
/// The first schema with no structural form.
pub fn all() -> Result<Vec<Value>, StructuralError> {
    [
        clusters,
        propagation_policies,
        cluster_propagation_policies,
        override_policies,
        cluster_override_policies,
        resource_bindings,
        cluster_resource_bindings,
        works,
    ]
    .iter()
    .map(|build| build())
    .collect()
}

/// `metadata.name` of a CRD: `<plural>.meshfleet.io`.
pub fn name(crd: &Value) -> &str {
    crd["metadata"]["name"].as_str().unwrap_or_default()
}

/// Where a CRD is written, relative to `manifests/`: `crds/<plural>.meshfleet.io.yaml`.
pub fn file_name(crd: &Value) -> String {
    format!("crds/{}.yaml", name(crd))
}

/// A CRD as written to `manifests/crds/`: the header, then YAML with sorted keys.
///
/// # Errors
/// The value does not serialize (it always does: it is plain JSON).
pub fn to_yaml(crd: &Value) -> Result<String, serde_norway::Error> {
    Ok(format!("{HEADER}{}", serde_norway::to_string(crd)?))
}

/// The OpenAPI v3 schema of a kind's Rust type, made structural, with the object-level fields
/// as the API server expects them: `apiVersion` and `kind` strings, `metadata` left to the
/// server (`type: object` only), and none of the three in `required` (the server sets them).
///
/// # Errors
/// The schema has no structural form.
pub fn object_schema<T: JsonSchema>(description: &str) -> Result<Value, StructuralError> {
    // A fresh generator per type: its `$defs` then hold only what this type uses.
    let generated = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut schema = structural(&generated)?;
    schema["description"] = json!(description);
    let properties = &mut schema["properties"];
    properties["apiVersion"] = json!({ "type": "string" });
    properties["kind"] = json!({ "type": "string" });
    properties["metadata"] = json!({ "type": "object" });
    let object = schema
        .as_object_mut()
        .expect("a struct's schema is an object");
    let required: Vec<Value> = object
        .remove("required")
        .and_then(|r| r.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|field| !matches!(field.as_str(), Some("apiVersion" | "kind" | "metadata")))
        .collect();
    if !required.is_empty() {
        object.insert("required".to_owned(), Value::Array(required));
    }
    Ok(schema)
}

fn crd<T: JsonSchema>(names: &Names) -> Result<Value, StructuralError> {
    let singular = names.kind.to_lowercase();
    let mut version = json!({
        "name": VERSION,
        "served": true,
        "storage": true,
        "schema": { "openAPIV3Schema": object_schema::<T>(names.description)? },
    });
    if names.status {
        version["subresources"] = json!({ "status": {} });
    }
    if names.columns.as_array().is_some_and(|c| !c.is_empty()) {
        version["additionalPrinterColumns"] = names.columns.clone();
    }
    let mut crd_names = json!({
        "kind": names.kind,
        "listKind": format!("{}List", names.kind),
        "plural": names.plural,
        "singular": singular,
        "categories": [CATEGORY],
    });
    if let Some(short_name) = names.short_name {
        crd_names["shortNames"] = json!([short_name]);
    }
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{}.{GROUP}", names.plural) },
        "spec": {
            "group": GROUP,
            "names": crd_names,
            "scope": match names.scope {
                Scope::Namespaced => "Namespaced",
                Scope::Cluster => "Cluster",
            },
            "versions": [version],
        },
    }))
}

/// Karmada's policy CRDs have no printer columns: `kubectl get` shows name and age.
fn policy(
    kind: &'static str,
    plural: &'static str,
    short_name: &'static str,
    scope: Scope,
    description: &'static str,
) -> Names {
    Names {
        kind,
        plural,
        short_name: Some(short_name),
        scope,
        status: false,
        description,
        columns: json!([]),
    }
}

/// Bindings as Karmada prints them; meshfleet sets `Scheduled` (Karmada's `FullyApplied` is
/// not tracked, so it has no column).
fn binding(
    kind: &'static str,
    plural: &'static str,
    short_name: &'static str,
    scope: Scope,
) -> Names {
    Names {
        kind,
        plural,
        short_name: Some(short_name),
        scope,
        status: true,
        description: "The scheduling result for one resource template: the clusters it goes \
                      to and the replicas each runs (Karmada's ResourceBinding).",
        columns: json!([
            column(
                "SCHEDULED",
                ".status.conditions[?(@.type==\"Scheduled\")].status",
                "string"
            ),
            age(),
        ]),
    }
}

fn column(name: &str, json_path: &str, kind: &str) -> Value {
    json!({ "name": name, "jsonPath": json_path, "type": kind })
}

fn age() -> Value {
    column("AGE", ".metadata.creationTimestamp", "date")
}
