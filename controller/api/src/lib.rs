//! The Kubernetes objects meshfleet reads, as typed serde structs with only the fields it uses
//! (unknown fields are ignored, but in policies: there they refuse the document), and the rule
//! that turns one YAML document into one [`Object`].
//!
//! ```text
//!  YAML document ──> TypeMeta (apiVersion, kind) ──> typed kind? ──> Cluster, Service,
//!                                                     │    EndpointSlice, ServiceExport,
//!                                                     │    DestinationRule, policies, bindings
//!                                                     ├─ another kind of meshfleet's or Karmada's
//!                                                     │    groups ──> UnknownKind (a warning)
//!                                                     └─ any other kind ──> Generic (raw value):
//!                                                          a resource template, as in Karmada
//! ```
//!
//! Field errors carry their path (`spec.ports[0].port`) through `serde_path_to_error`.
#![forbid(unsafe_code)]

mod binding;
mod cluster;
pub mod crd;
mod istio;
mod meta;
mod policy;
mod service;
mod unsupported;
mod validate;
pub mod work;
pub mod yaml;

use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use binding::{
    AggregatedStatusItem, BindingCondition, BindingSnapshot, GracefulEvictionTask, ObjectReference,
    ReplicaRequirements, ResourceBinding, ResourceBindingSpec, ResourceBindingStatus,
    TargetCluster,
};
pub use cluster::{
    Cluster, ClusterSpec, ClusterStatus, Condition, EastWestGateway, GatewayError, ResourceSummary,
    SecretReference, Taint,
};
pub use istio::{
    DestinationRule, DestinationRuleSpec, Distribute, Duration, DurationError, Failover,
    LoadBalancer, LocalityLbSetting, OutlierDetection, TrafficPolicy,
};
pub use meta::{Generic, ObjectKey, ObjectMeta, qualified_kind};
pub use policy::{
    ApplicationFailoverBehavior, ClusterAffinity, ClusterAffinityTerm, ClusterFailoverBehavior,
    ClusterPreferences, CommandArgsOverrider, DecisionConditions, FailoverBehavior, FieldOverrider,
    FieldSelector, ImageOverrider, ImagePredicate, LabelAnnotationOverrider, LabelSelector,
    OverridePolicy, OverrideSpec, Overriders, PatchOperation, Placement, PlaintextOverrider,
    PropagationPolicy, PropagationSpec, ReplicaSchedulingStrategy, ResourceSelector,
    RuleWithCluster, SchedulePriority, SelectorRequirement, SpreadConstraint, StatePreservation,
    StatePreservationRule, StaticClusterWeight, SuspendClusters, Suspension, Toleration,
    WorkloadAffinity, WorkloadAffinityTerm,
};
pub use service::{
    EndpointConditions, EndpointPort, EndpointSlice, EndpointTargetRef, IntOrString, Service,
    ServiceExport, ServicePortSpec, ServiceSpec, SliceEndpoint,
};
pub use work::{ManifestStatus, ResourceIdentifier, Work, WorkSpec, WorkStatus, WorkloadTemplate};

/// Annotation that exports a Service: `"true"`.
pub const ANNOTATION_GLOBAL: &str = "meshfleet.io/global";
/// Annotation with a Service's locality tier weights: `local=99,remote=1`.
pub const ANNOTATION_LOCALITY_WEIGHTS: &str = "meshfleet.io/locality-weights";
/// Annotation on a headless Service: which endpoints DNS answers a client with, `local-first`
/// (the default: the client's zone first, then the rest) or `local-only`.
pub const ANNOTATION_DNS_ANSWERS: &str = "meshfleet.io/dns-answers";
/// Annotation with an EndpointSlice's load-balancing weight (default 1).
pub const ANNOTATION_WEIGHT: &str = "meshfleet.io/weight";
/// Annotation with a Cluster's east-west gateway, `host[:port]`, when its spec has none.
pub const ANNOTATION_EAST_WEST_GATEWAY: &str = "meshfleet.io/east-west-gateway";
/// Label naming the member cluster an observed object comes from (MCS API).
pub const LABEL_SOURCE_CLUSTER: &str = "multicluster.kubernetes.io/source-cluster";
/// Label naming the Service of an EndpointSlice.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// One object read from a source, typed when meshfleet reads its fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Cluster(Arc<Cluster>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    ServiceExport(Arc<ServiceExport>),
    DestinationRule(Arc<DestinationRule>),
    /// PropagationPolicy and ClusterPropagationPolicy.
    PropagationPolicy(Arc<PropagationPolicy>),
    /// OverridePolicy and ClusterOverridePolicy.
    OverridePolicy(Arc<OverridePolicy>),
    /// A previous scheduling result.
    ResourceBinding(Arc<ResourceBinding>),
    /// Resource templates, kept whole: propagation copies them as written.
    Generic(Arc<Generic>),
}

impl Object {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Cluster(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::EndpointSlice(o) => &o.metadata,
            Self::ServiceExport(o) => &o.metadata,
            Self::DestinationRule(o) => &o.metadata,
            Self::PropagationPolicy(o) => &o.metadata,
            Self::OverridePolicy(o) => &o.metadata,
            Self::ResourceBinding(o) => &o.metadata,
            Self::Generic(o) => &o.metadata,
        }
    }

    pub fn api_version(&self) -> &str {
        match self {
            Self::Cluster(o) => &o.api_version,
            Self::Service(o) => &o.api_version,
            Self::EndpointSlice(o) => &o.api_version,
            Self::ServiceExport(o) => &o.api_version,
            Self::DestinationRule(o) => &o.api_version,
            Self::PropagationPolicy(o) => &o.api_version,
            Self::OverridePolicy(o) => &o.api_version,
            Self::ResourceBinding(o) => &o.api_version,
            Self::Generic(o) => &o.api_version,
        }
    }

    /// The kind as written (`Deployment`), without its group.
    pub fn kind(&self) -> &str {
        match self {
            Self::Cluster(_) => "Cluster",
            Self::Service(_) => "Service",
            Self::EndpointSlice(_) => "EndpointSlice",
            Self::ServiceExport(_) => "ServiceExport",
            Self::DestinationRule(_) => "DestinationRule",
            Self::PropagationPolicy(o) => &o.kind,
            Self::OverridePolicy(o) => &o.kind,
            Self::ResourceBinding(o) => &o.kind,
            Self::Generic(o) => &o.kind,
        }
    }

    /// Whether `other` is this object: the same `Arc` (cheap), or an equal value.
    pub fn same(&self, other: &Self) -> bool {
        let shared = match (self, other) {
            (Self::Cluster(a), Self::Cluster(b)) => Arc::ptr_eq(a, b),
            (Self::Service(a), Self::Service(b)) => Arc::ptr_eq(a, b),
            (Self::EndpointSlice(a), Self::EndpointSlice(b)) => Arc::ptr_eq(a, b),
            (Self::ServiceExport(a), Self::ServiceExport(b)) => Arc::ptr_eq(a, b),
            (Self::DestinationRule(a), Self::DestinationRule(b)) => Arc::ptr_eq(a, b),
            (Self::PropagationPolicy(a), Self::PropagationPolicy(b)) => Arc::ptr_eq(a, b),
            (Self::OverridePolicy(a), Self::OverridePolicy(b)) => Arc::ptr_eq(a, b),
            (Self::ResourceBinding(a), Self::ResourceBinding(b)) => Arc::ptr_eq(a, b),
            (Self::Generic(a), Self::Generic(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        shared || self == other
    }

    /// Where this object lives in the index: see [`ObjectKey`].
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(self.api_version(), self.kind(), self.meta())
    }
}

/// Why a document did not become an object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// It does not parse as its kind: missing `apiVersion`, `kind` or `metadata.name`, or a field
    /// of the wrong type. `field` is the path of the field at fault, if one is. Shown as a
    /// problem shows it: `field: message`, or the message alone.
    #[error("{}", at_field(.field.as_deref(), .message))]
    Invalid {
        field: Option<String>,
        message: String,
    },
    /// A kind of meshfleet's or Karmada's groups that meshfleet does not read (a misspelt
    /// `Clustr`, Karmada's `FederatedHPA`); skipped with a warning.
    #[error("unknown kind {kind} ({api_version})")]
    UnknownKind { api_version: String, kind: String },
}

/// `spec.ports[0].port: invalid type`, or the message alone without a field.
fn at_field(field: Option<&str>, message: &str) -> String {
    match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: String,
    kind: String,
}

/// What meshfleet does with a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Cluster,
    Service,
    EndpointSlice,
    ServiceExport,
    DestinationRule,
    PropagationPolicy,
    OverridePolicy,
    ResourceBinding,
    Generic,
}

/// Turns one parsed YAML document into an object.
///
/// # Errors
/// [`DocumentError::Invalid`] with the field path when the document does not fit its kind;
/// [`DocumentError::UnknownKind`] when meshfleet does not read that kind. Errors of a `Secret`
/// never quote values from the document.
pub fn parse_document(value: &serde_norway::Value) -> Result<Object, DocumentError> {
    parse_document_noting(value, &mut Vec::new())
}

/// A warning about an accepted document: something in it that has no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The path of the field it is about.
    pub field: String,
    pub message: String,
}

/// [`parse_document`], noting in `notes` what in an accepted document has no effect: a field
/// of Karmada's policy API that meshfleet does not act on, an EndpointSlice of FQDNs.
///
/// A policy with a field that Karmada's API does not have (a misspelt `clusterAfinity`, a
/// `clusterNames` indented one level too deep) is refused, as `kubectl apply` refuses it with
/// its strict field validation: without the field it would go to other clusters than meant.
/// Fields the API server sets (`metadata.uid`, `status`, ...) are not unknown.
///
/// # Errors
/// As [`parse_document`].
pub fn parse_document_noting(
    value: &serde_norway::Value,
    notes: &mut Vec<Note>,
) -> Result<Object, DocumentError> {
    let meta: TypeMeta = typed(value)?;
    let Some(known) = classify(&meta.api_version, &meta.kind) else {
        return Err(DocumentError::UnknownKind {
            api_version: meta.api_version,
            kind: meta.kind,
        });
    };
    let object = match known {
        Known::Cluster => Object::Cluster(Arc::new(typed(value)?)),
        Known::Service => {
            let mut service: Service = typed(value)?;
            if service.source_cluster().is_none() {
                service.raw = Some(Arc::new(value.clone()));
            }
            Object::Service(Arc::new(service))
        }
        Known::EndpointSlice => {
            let slice: EndpointSlice = typed(value)?;
            if slice.address_type == "FQDN" {
                notes.push(Note {
                    field: "addressType".to_owned(),
                    message: "FQDN endpoints are not served: meshfleet, as Istio, reads only IPv4 and IPv6 EndpointSlices; ignored".to_owned(),
                });
            }
            Object::EndpointSlice(Arc::new(slice))
        }
        Known::ServiceExport => {
            let mut export: ServiceExport = typed(value)?;
            if export.metadata.source_cluster().is_none() {
                export.raw = Some(Arc::new(value.clone()));
            }
            Object::ServiceExport(Arc::new(export))
        }
        Known::DestinationRule => {
            let mut rule: DestinationRule = typed(value)?;
            if rule.metadata.source_cluster().is_none() {
                rule.raw = Some(Arc::new(value.clone()));
            }
            Object::DestinationRule(Arc::new(rule))
        }
        Known::PropagationPolicy => {
            let policy: PropagationPolicy = typed_strict(value)?;
            validate::propagation_policy(&policy).map_err(DocumentError::from)?;
            notes.extend(unsupported::propagation_policy(value));
            Object::PropagationPolicy(Arc::new(policy))
        }
        Known::OverridePolicy => {
            let policy: OverridePolicy = typed_strict(value)?;
            validate::override_policy(&policy).map_err(DocumentError::from)?;
            Object::OverridePolicy(Arc::new(policy))
        }
        Known::ResourceBinding => Object::ResourceBinding(Arc::new(typed(value)?)),
        Known::Generic => {
            let generic = Generic::from_value(value).map_err(|error| match error {
                DocumentError::Invalid { field, message } if meta.kind == "Secret" => {
                    DocumentError::Invalid {
                        field,
                        message: redact(&message),
                    }
                }
                other => other,
            })?;
            Object::Generic(Arc::new(generic))
        }
    };
    if object.meta().name.is_empty() {
        return Err(DocumentError::Invalid {
            field: Some("metadata.name".to_owned()),
            message: "must not be empty".to_owned(),
        });
    }
    Ok(object)
}

/// The key of the object a document means to define, read leniently: for a document that
/// failed to parse or validate, so the last valid version of that object can stay in effect.
/// `None` when even that cannot be told (no kind, no name, or an unknown kind of meshfleet's
/// or Karmada's groups).
pub fn identity(value: &serde_norway::Value) -> Option<ObjectKey> {
    let api_version = value.get("apiVersion")?.as_str()?;
    let kind = value.get("kind")?.as_str()?;
    classify(api_version, kind)?;
    // Only what the key needs, each read on its own: the rest of the metadata may be what
    // made the document fail.
    let metadata = value.get("metadata")?;
    let text = |v: Option<&serde_norway::Value>| {
        v.and_then(serde_norway::Value::as_str).map(str::to_owned)
    };
    let name = text(metadata.get("name")).filter(|n| !n.is_empty())?;
    let source_cluster = text(
        metadata
            .get("labels")
            .and_then(|labels| labels.get(LABEL_SOURCE_CLUSTER)),
    );
    let meta = ObjectMeta {
        name,
        namespace: text(metadata.get("namespace")),
        labels: source_cluster
            .map(|c| std::collections::BTreeMap::from([(LABEL_SOURCE_CLUSTER.to_owned(), c)]))
            .unwrap_or_default(),
        ..ObjectMeta::default()
    };
    Some(ObjectKey::of(api_version, kind, &meta))
}

impl From<validate::Refused> for DocumentError {
    fn from(refused: validate::Refused) -> Self {
        Self::Invalid {
            field: Some(refused.field),
            message: refused.message,
        }
    }
}

/// Deserializes `value` as `T`, keeping the path of the field that failed.
fn typed<T: DeserializeOwned>(value: &serde_norway::Value) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize(value).map_err(invalid_at)
}

fn invalid_at(error: serde_path_to_error::Error<serde_norway::Error>) -> DocumentError {
    let path = error.path().to_string();
    DocumentError::Invalid {
        field: (path != ".").then_some(path),
        message: error.into_inner().to_string(),
    }
}

/// [`typed`], refusing a field that no field of `T` matches (but those the API server sets:
/// see [`server_set`]). The first such field is the one at fault; the message lists the rest.
fn typed_strict<T: DeserializeOwned>(value: &serde_norway::Value) -> Result<T, DocumentError> {
    let mut ignored = Vec::new();
    let result = {
        let mut note = |path: serde_ignored::Path<'_>| ignored.push(field_path(&path));
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note))
    };
    let typed = result.map_err(invalid_at)?;
    let mut unknown = ignored.into_iter().filter(|p| !server_set(p));
    let Some(first) = unknown.next() else {
        return Ok(typed);
    };
    let mut message = "unknown field (check its spelling and indentation); the policy is refused, as kubectl apply refuses it".to_owned();
    let rest: Vec<String> = unknown.collect();
    if !rest.is_empty() {
        message.push_str(&format!("; also unknown: {}", rest.join(", ")));
    }
    Err(DocumentError::Invalid {
        field: Some(first),
        message,
    })
}

/// Whether an ignored field is one the API server sets or every object may carry (read back
/// with `kubectl get -o yaml`): `status`, and ObjectMeta's fields meshfleet does not model.
fn server_set(path: &str) -> bool {
    const META: [&str; 11] = [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "ownerReferences",
        "finalizers",
        "generateName",
        "selfLink",
    ];
    if path == "status" || path.starts_with("status.") {
        return true;
    }
    path.strip_prefix("metadata.").is_some_and(|rest| {
        let field = rest.split(['.', '[']).next().unwrap_or_default();
        META.contains(&field)
    })
}

/// `spec.overrideRules[0].overriders`, as serde_path_to_error writes paths.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Replaces every quoted part of a message (serde quotes values in `"..."` and `` `...` ``).
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("<redacted>");
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    out
}

/// Groups whose kinds are meshfleet's own (Karmada's groups are read as aliases of it).
fn is_meshfleet_group(group: &str) -> bool {
    group == "meshfleet.io" || group.ends_with(".karmada.io")
}

fn classify(api_version: &str, kind: &str) -> Option<Known> {
    let (group, version) = split_api_version(api_version);
    let known = match (group, version, kind) {
        ("meshfleet.io", "v1alpha1", "Cluster") | ("cluster.karmada.io", "v1alpha1", "Cluster") => {
            Known::Cluster
        }
        ("", "v1", "Service") => Known::Service,
        ("discovery.k8s.io", "v1", "EndpointSlice") => Known::EndpointSlice,
        ("multicluster.x-k8s.io", "v1alpha1", "ServiceExport") => Known::ServiceExport,
        ("networking.istio.io", "v1" | "v1beta1" | "v1alpha3", "DestinationRule") => {
            Known::DestinationRule
        }
        (
            "meshfleet.io" | "policy.karmada.io",
            "v1alpha1",
            "PropagationPolicy" | "ClusterPropagationPolicy",
        ) => Known::PropagationPolicy,
        (
            "meshfleet.io" | "policy.karmada.io",
            "v1alpha1",
            "OverridePolicy" | "ClusterOverridePolicy",
        ) => Known::OverridePolicy,
        ("meshfleet.io", "v1alpha1", "ResourceBinding" | "ClusterResourceBinding")
        | ("work.karmada.io", "v1alpha2", "ResourceBinding" | "ClusterResourceBinding") => {
            Known::ResourceBinding
        }
        // As in Karmada, any object a policy selects is a resource template: Deployments,
        // ConfigMaps, Istio's kinds, custom resources. Only meshfleet's and Karmada's own
        // groups hold kinds that cannot be one.
        (group, _, _) if is_meshfleet_group(group) => return None,
        _ => Known::Generic,
    };
    Some(known)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Kinds that have no namespace. Namespaced objects written without one are in `default`, as
/// `kubectl apply` would put them.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Cluster",
    "ClusterPropagationPolicy",
    "ClusterOverridePolicy",
    "ClusterResourceBinding",
    "Namespace",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "GatewayClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// Deserializes a collection that may be written as `null` (or left empty) as its default, as
/// Kubernetes' own YAML decoding does.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Test builders, for this crate's tests and (feature `fixtures`) other crates'.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
