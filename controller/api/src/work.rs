//! `Work` (`meshfleet.io/v1alpha1`, shaped like Karmada's `work.karmada.io/v1alpha1` Work): one
//! propagated manifest for a member cluster in pull mode (`spec.syncMode: Pull`), kept in the
//! gateway cluster's namespace `meshfleet-es-<cluster>` for that cluster's `meshfleet agent` to
//! pull, apply, and report on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, ObjectMeta, nullable};

/// The namespace of a pull-mode cluster's Works in the gateway cluster (Karmada's
/// `karmada-es-<cluster>`, its "execution space").
pub fn execution_namespace(cluster: &str) -> String {
    format!("meshfleet-es-{cluster}")
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: WorkSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: WorkStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub workload: WorkloadTemplate,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTemplate {
    /// The manifests to apply in the member, whole.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(extend("items" = { "type": "object", "x-kubernetes-preserve-unknown-fields": true }))]
    pub manifests: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatus {
    /// `Applied`: whether the agent applied every manifest, and if not, why.
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
    /// Each manifest's status in the member, as the agent last read it.
    #[serde(default, deserialize_with = "nullable")]
    pub manifest_statuses: Vec<ManifestStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestStatus {
    pub identifier: ResourceIdentifier,
    /// The object's `status` in the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub status: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIdentifier {
    /// The manifest's index in `spec.workload.manifests`.
    #[serde(default)]
    pub ordinal: i32,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
}
