//! Objects as the API serves them, turned into the index's typed objects: the resources
//! meshfleet watches, and the conversion of one served object (JSON) into an [`Object`] or a
//! [`Problem`] naming it.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

use meshfleet_api::{LABEL_SOURCE_CLUSTER, Object, ObjectKey};
use meshfleet_model::problem::{Problem, Source};

/// A resource by group, version, kind and plural, as the API paths name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Resource {
    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        Self {
            group,
            version,
            kind,
            plural,
        }
    }

    /// This resource's API in `namespace` (empty: every namespace, or a cluster-scoped kind).
    pub fn api(&self, client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
        api(client, &self.api_resource(), namespace)
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, as `kubectl` names a resource.
    pub fn name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

pub const CLUSTERS: Resource = Resource::new("meshfleet.io", "v1alpha1", "Cluster", "clusters");
pub const PROPAGATION_POLICIES: Resource = Resource::new(
    "meshfleet.io",
    "v1alpha1",
    "PropagationPolicy",
    "propagationpolicies",
);
pub const CLUSTER_PROPAGATION_POLICIES: Resource = Resource::new(
    "meshfleet.io",
    "v1alpha1",
    "ClusterPropagationPolicy",
    "clusterpropagationpolicies",
);
pub const OVERRIDE_POLICIES: Resource = Resource::new(
    "meshfleet.io",
    "v1alpha1",
    "OverridePolicy",
    "overridepolicies",
);
pub const CLUSTER_OVERRIDE_POLICIES: Resource = Resource::new(
    "meshfleet.io",
    "v1alpha1",
    "ClusterOverridePolicy",
    "clusteroverridepolicies",
);
pub const RESOURCE_BINDINGS: Resource = Resource::new(
    "meshfleet.io",
    "v1alpha1",
    "ResourceBinding",
    "resourcebindings",
);
pub const WORKS: Resource = Resource::new("meshfleet.io", "v1alpha1", "Work", "works");
pub const SERVICES: Resource = Resource::new("", "v1", "Service", "services");
pub const SECRETS: Resource = Resource::new("", "v1", "Secret", "secrets");
pub const NODES: Resource = Resource::new("", "v1", "Node", "nodes");
pub const NAMESPACES: Resource = Resource::new("", "v1", "Namespace", "namespaces");
pub const EVENTS: Resource = Resource::new("", "v1", "Event", "events");
pub const LEASES: Resource = Resource::new("coordination.k8s.io", "v1", "Lease", "leases");
pub const HPAS: Resource = Resource::new(
    "autoscaling",
    "v2",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
);
pub const ENDPOINT_SLICES: Resource =
    Resource::new("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices");
pub const SERVICE_EXPORTS: Resource = Resource::new(
    "multicluster.x-k8s.io",
    "v1alpha1",
    "ServiceExport",
    "serviceexports",
);
pub const DESTINATION_RULES: Resource = Resource::new(
    "networking.istio.io",
    "v1",
    "DestinationRule",
    "destinationrules",
);

/// The gateway cluster's policies, read as they are.
pub const GATEWAY_POLICIES: [Resource; 4] = [
    PROPAGATION_POLICIES,
    CLUSTER_PROPAGATION_POLICIES,
    OVERRIDE_POLICIES,
    CLUSTER_OVERRIDE_POLICIES,
];

/// What a member cluster is watched for, each labelled with the member it comes from.
pub const MEMBER_OBSERVED: [Resource; 4] = [
    SERVICES,
    ENDPOINT_SLICES,
    SERVICE_EXPORTS,
    DESTINATION_RULES,
];

/// Resource templates read from the gateway cluster unless `--template-resource` says
/// otherwise: the workloads and what they usually need.
pub const DEFAULT_TEMPLATES: [Resource; 7] = [
    Resource::new("apps", "v1", "Deployment", "deployments"),
    Resource::new("apps", "v1", "StatefulSet", "statefulsets"),
    Resource::new("apps", "v1", "DaemonSet", "daemonsets"),
    SERVICES,
    Resource::new("", "v1", "ConfigMap", "configmaps"),
    Resource::new("", "v1", "ServiceAccount", "serviceaccounts"),
    SERVICE_EXPORTS,
];

/// The API of `resource` in `namespace`; empty: across every namespace, or a cluster-scoped
/// kind.
pub fn api(client: &kube::Client, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    if namespace.is_empty() {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    }
}

/// A served object as JSON, with the `apiVersion` and `kind` a list's items may lack, and
/// without `managedFields` (bookkeeping of the API server's, large and of no use here).
pub fn to_json(object: &DynamicObject, resource: &Resource) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), Value::String(resource.api_version()));
        map.insert("kind".into(), Value::String(resource.kind.to_owned()));
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            meta.remove("managedFields");
        }
    }
    value
}

/// Sets the label that names the member cluster an observed object comes from.
pub fn label_source_cluster(value: &mut Value, cluster: &str) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Default::default()));
    if !labels.is_object() {
        *labels = Value::Object(Default::default());
    }
    if let Value::Object(labels) = labels {
        labels.insert(
            LABEL_SOURCE_CLUSTER.to_owned(),
            Value::String(cluster.to_owned()),
        );
    }
}

/// Where a served object is, for a problem about it: `Service default/echo in cluster east-1`.
pub fn source_of(value: &Value, resource: &Resource, cluster: Option<&str>) -> Source {
    let meta = value.get("metadata");
    let text = |field: &str| {
        meta.and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Source::Object {
        kind: resource.kind.to_owned(),
        namespace: text("namespace"),
        name: text("name"),
        cluster: cluster.map(str::to_owned),
    }
}

/// One served object as the index holds it, or the problem that names it and says why not
/// (its last valid version, if any, stays in the index).
pub fn parse(value: &Value, source: Source) -> Result<Object, Box<Problem>> {
    let yaml = serde_norway::to_value(value).map_err(|error| {
        Box::new(Problem::new(
            source.clone(),
            format!("cannot be read: {error}"),
        ))
    })?;
    let mut notes = Vec::new();
    meshfleet_api::parse_document_noting(&yaml, &mut notes)
        .map_err(|error| Box::new(Problem::new(source, format!("{error}; ignored"))))
}

/// The key a served object's deletion removes, read leniently (a deleted object that never
/// parsed has nothing in the index; its key may still be told).
pub fn key_of(value: &Value) -> Option<ObjectKey> {
    let yaml = serde_norway::to_value(value).ok()?;
    meshfleet_api::identity(&yaml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_served_service_becomes_an_observed_service_of_its_cluster() {
        let object: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "echo", "namespace": "demo",
                "managedFields": [{"manager": "kubectl"}]},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap();
        let mut value = to_json(&object, &SERVICES);
        assert_eq!(value["apiVersion"], "v1");
        assert!(value["metadata"].get("managedFields").is_none());
        label_source_cluster(&mut value, "east-1");
        let parsed = parse(&value, source_of(&value, &SERVICES, Some("east-1"))).unwrap();
        let key = parsed.key();
        assert_eq!(&*key.cluster, "east-1");
        assert_eq!(&*key.name, "echo");
        assert_eq!(key_of(&value), Some(key));
    }

    #[test]
    fn a_bad_object_is_a_problem_naming_it() {
        let value = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "echo", "namespace": "demo"},
            "spec": {"ports": "eighty"}});
        let problem = parse(&value, source_of(&value, &SERVICES, Some("west-1"))).unwrap_err();
        assert_eq!(
            problem.source,
            Source::Object {
                kind: "Service".into(),
                namespace: "demo".into(),
                name: "echo".into(),
                cluster: Some("west-1".into())
            }
        );
        assert!(
            problem.message.contains("spec.ports"),
            "{}",
            problem.message
        );
    }
}
