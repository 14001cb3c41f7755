//! Karmada's policy API (`policy.karmada.io/v1alpha1`, served as `meshfleet.io/v1alpha1` too):
//! PropagationPolicy / ClusterPropagationPolicy say where a resource template goes and how its
//! replicas are divided; OverridePolicy / ClusterOverridePolicy say how each copy differs.
//!
//! The structs follow Karmada's Go types field for field (same JSON names, same optionality), so
//! Karmada's YAML loads unchanged. Fields meshfleet does not act on are kept, so that a document
//! read and written again loses nothing, and the CRDs generated from these types accept what
//! Karmada's accept.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectMeta, nullable};

/// `PropagationPolicy` (namespaced) or `ClusterPropagationPolicy` (cluster-scoped): one type,
/// the kind tells which.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationPolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PropagationSpec,
}

impl PropagationPolicy {
    /// Whether this is a `ClusterPropagationPolicy`.
    pub fn is_cluster_scoped(&self) -> bool {
        self.kind == "ClusterPropagationPolicy"
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationSpec {
    /// What the policy claims. Empty selects nothing.
    #[serde(default, deserialize_with = "nullable")]
    pub resource_selectors: Vec<ResourceSelector>,
    /// Deprecated by Karmada for `propagateDeps`, and read by neither.
    #[serde(default, skip_serializing_if = "is_false")]
    pub association: bool,
    /// ConfigMaps, Secrets, ServiceAccounts (and PVCs) a workload references follow it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_deps: bool,
    #[serde(default)]
    pub placement: Placement,
    /// Explicit priority: of two policies matching a resource, the higher one claims it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `Always` or `Never` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependent_overrides: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverBehavior>,
    /// `Abort` (default) or `Overwrite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_resolution: Option<String>,
    /// `Lazy`: changes to the policy apply only when the resource changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_preference: Option<String>,
    /// Stops dispatching the policy's bindings to member clusters: all, or some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_resources_on_deletion: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_priority: Option<SchedulePriority>,
}

/// Karmada's `Suspension`: scheduling goes on and the binding records its result, but no copy
/// is written to (or changed or removed on) the suspended clusters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    /// `true`: every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching_on_clusters: Option<SuspendClusters>,
}

impl Suspension {
    /// Whether dispatching to `cluster` is suspended.
    pub fn suspends(&self, cluster: &str) -> bool {
        self.dispatching == Some(true)
            || self
                .dispatching_on_clusters
                .as_ref()
                .is_some_and(|c| c.cluster_names.iter().any(|n| n == cluster))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendClusters {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
}

/// Karmada's `SchedulePriority`: where a binding goes in Karmada's scheduling queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePriority {
    /// `FederatedPriorityClass`, `KubePriorityClass` or `PodPriorityClass`.
    pub priority_class_source: String,
    pub priority_class_name: String,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Selects resource templates: `apiVersion` and `kind` always, then `namespace`, then `name`
/// (which, when set, makes `labelSelector` ignored, as in Karmada).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSelector {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// Kubernetes' `metav1.LabelSelector`. Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One requirement of a label or field selector: `operator` is `In`, `NotIn`, `Exists` or
/// `DoesNotExist` (label selectors), `In` or `NotIn` (Karmada's field selector).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

/// Karmada's `FieldSelector`: requirements on a Cluster's `provider`, `region` or `zone`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldSelector {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<SelectorRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_affinity: Option<ClusterAffinity>,
    /// Tried in order: the first group with a feasible result is used.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_affinities: Vec<ClusterAffinityTerm>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_tolerations: Vec<Toleration>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub spread_constraints: Vec<SpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_scheduling: Option<ReplicaSchedulingStrategy>,
    /// Karmada's inter-workload affinity; read, not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_affinity: Option<WorkloadAffinity>,
}

/// Karmada's `WorkloadAffinity`: co-locate (or keep apart) workloads sharing a label value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<WorkloadAffinityTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<WorkloadAffinityTerm>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinityTerm {
    pub group_by_label_key: String,
}

/// Which clusters: all of `clusterNames` (when set), minus `exclude`, matching `labelSelector`
/// and `fieldSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<String>,
}

/// A named group of `clusterAffinities`. Read and described as [`TermFields`], which has
/// Karmada's `overflowAffinities` too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinityTerm {
    pub affinity_name: String,
    #[serde(flatten)]
    pub affinity: ClusterAffinity,
}

// A term's fields one by one: serde hands a flattened struct's unknown fields to no one, so a
// misspelt `clusterNamess` would go unseen.
/// A named group of `clusterAffinities`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TermFields {
    affinity_name: String,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    field_selector: Option<FieldSelector>,
    #[serde(default, deserialize_with = "nullable")]
    cluster_names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    exclude: Vec<String>,
    /// Karmada's further groups, used when the term's clusters are full; meshfleet checks
    /// them and does not act on them.
    #[serde(default, deserialize_with = "nullable")]
    #[allow(dead_code)]
    overflow_affinities: Vec<OverflowFields>,
}

/// Karmada's `OverflowClusterAffinity`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OverflowFields {
    affinity_name: String,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    field_selector: Option<FieldSelector>,
    #[serde(default, deserialize_with = "nullable")]
    cluster_names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    exclude: Vec<String>,
}

impl JsonSchema for ClusterAffinityTerm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClusterAffinityTerm".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        TermFields::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for ClusterAffinityTerm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = TermFields::deserialize(deserializer)?;
        Ok(Self {
            affinity_name: fields.affinity_name,
            affinity: ClusterAffinity {
                label_selector: fields.label_selector,
                field_selector: fields.field_selector,
                cluster_names: fields.cluster_names,
                exclude: fields.exclude,
            },
        })
    }
}

/// Kubernetes' `corev1.Toleration`, applied to Cluster taints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (default) or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`; empty matches all effects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// For `NoExecute`: how long the workload stays on a cluster after the taint is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// Spread over groups of clusters: by a field (`cluster`, `region`, `zone`, `provider`) or by
/// a Cluster label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpreadConstraint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_by_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_by_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_groups: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_groups: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSchedulingStrategy {
    /// `Duplicated` (default) or `Divided`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_scheduling_type: Option<String>,
    /// For `Divided`: `Aggregated` or `Weighted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_division_preference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_preference: Option<ClusterPreferences>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPreferences {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_weight_list: Vec<StaticClusterWeight>,
    /// `AvailableReplicas`: weights from each cluster's free capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_weight: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticClusterWeight {
    pub target_cluster: ClusterAffinity,
    pub weight: i64,
}

/// Karmada's `FailoverBehavior`: when an application or a cluster fails, move it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationFailoverBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFailoverBehavior>,
}

/// Karmada's `ClusterFailoverBehavior`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFailoverBehavior {
    /// `Directly` or `Gracefully` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

/// Karmada's `StatePreservation`: status fields carried to the new cluster as labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservation {
    #[serde(default, deserialize_with = "nullable")]
    pub rules: Vec<StatePreservationRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservationRule {
    pub alias_label_name: String,
    pub json_path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFailoverBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_conditions: Option<DecisionConditions>,
    /// `Immediately`, `Graciously` (default) or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_mode: Option<String>,
    /// How long the old copy stays while the new placement comes up (`Graciously`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i32>,
}

/// `OverridePolicy` (namespaced) or `ClusterOverridePolicy` (cluster-scoped).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverridePolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: OverrideSpec,
}

impl OverridePolicy {
    /// Whether this is a `ClusterOverridePolicy`.
    pub fn is_cluster_scoped(&self) -> bool {
        self.kind == "ClusterOverridePolicy"
    }

    /// The rules in effect: `overrideRules`, else the deprecated `targetCluster` + `overriders`.
    pub fn rules(&self) -> Vec<RuleWithCluster> {
        if !self.spec.override_rules.is_empty() {
            return self.spec.override_rules.clone();
        }
        match &self.spec.overriders {
            Some(overriders) => vec![RuleWithCluster {
                target_cluster: self.spec.target_cluster.clone(),
                overriders: overriders.clone(),
            }],
            None => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// What the policy applies to. Empty selects every resource (in the policy's namespace, for
    /// an OverridePolicy).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_selectors: Vec<ResourceSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub override_rules: Vec<RuleWithCluster>,
    /// Deprecated by Karmada in favour of `overrideRules`; still honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// Deprecated by Karmada in favour of `overrideRules`; still honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overriders: Option<Overriders>,
}

/// Overriders for the clusters `targetCluster` selects (all clusters when absent).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleWithCluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    pub overriders: Overriders,
}

/// Applied in this order: image, command, args, labels, annotations, field, plaintext.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overriders {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub plaintext: Vec<PlaintextOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub image_overrider: Vec<ImageOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub command_overrider: Vec<CommandArgsOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args_overrider: Vec<CommandArgsOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels_overrider: Vec<LabelAnnotationOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub annotations_overrider: Vec<LabelAnnotationOverrider>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub field_overrider: Vec<FieldOverrider>,
}

/// A JSON patch operation: `operator` is `add`, `remove` or `replace`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaintextOverrider {
    pub path: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Changes one component (`Registry`, `Repository`, `Tag`) of container images: those at
/// `predicate.path`, or every container's image when absent (init containers too with the
/// `meshfleet.io/image-override-all-containers` annotation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageOverrider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<ImagePredicate>,
    pub component: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePredicate {
    pub path: String,
}

/// Adds to or removes from one container's `command` or `args`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandArgsOverrider {
    pub container_name: String,
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub value: Vec<String>,
}

/// Adds, removes or replaces labels or annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelAnnotationOverrider {
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub value: BTreeMap<String, String>,
}

/// Patches a field that holds JSON or YAML text (a ConfigMap's data entry).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldOverrider {
    pub field_path: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json: Vec<PatchOperation>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub yaml: Vec<PatchOperation>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchOperation {
    pub sub_path: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}
