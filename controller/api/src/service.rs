//! `Service` (core v1), `EndpointSlice` (`discovery.k8s.io/v1`) and `ServiceExport`
//! (`multicluster.x-k8s.io/v1alpha1`): what a global service is made of.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{LABEL_SERVICE_NAME, ObjectMeta, nullable};

/// A Service: a template (no `multicluster.kubernetes.io/source-cluster` label) or a member
/// cluster's observed copy.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub api_version: String,
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ServiceSpec,
    /// A template's whole document, as written: what propagation copies to member clusters.
    /// `None` for observed copies.
    #[serde(skip)]
    pub raw: Option<std::sync::Arc<serde_norway::Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<ServicePortSpec>,
    /// `None` makes a headless Service: DNS answers its endpoints rather than a virtual IP.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// `IPv4` and/or `IPv6`; empty means the cluster's default (IPv4 here).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_families: Vec<String>,
}

impl ServiceSpec {
    /// `clusterIP: None`.
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePortSpec {
    pub name: Option<String>,
    pub port: u32,
    pub target_port: Option<IntOrString>,
    /// `TCP` (default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

impl ServicePortSpec {
    /// The port's name; empty when unnamed.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Kubernetes' `IntOrString` (`targetPort: 8080` or `targetPort: http`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Service {
    /// The member cluster this copy was observed in; `None` for a template.
    pub fn source_cluster(&self) -> Option<&str> {
        self.metadata.source_cluster()
    }
}

/// Observed endpoints of one Service in one member cluster.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    pub api_version: String,
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub endpoints: Vec<SliceEndpoint>,
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<EndpointPort>,
}

impl EndpointSlice {
    /// The `kubernetes.io/service-name` label.
    pub fn service_name(&self) -> Option<&str> {
        self.metadata.label(LABEL_SERVICE_NAME)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    #[serde(default, deserialize_with = "nullable")]
    pub addresses: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: EndpointConditions,
    pub node_name: Option<String>,
    pub zone: Option<String>,
    /// The endpoint's DNS label (a StatefulSet pod's name): headless services answer
    /// `<hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local` for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Box<str>>,
    /// The object behind the endpoint (a Pod): the same pod in an IPv4 and an IPv6 slice is
    /// one endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<EndpointTargetRef>,
}

/// `targetRef` of an endpoint: what it is (`Pod`), where and its name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct EndpointTargetRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    /// Absent means ready: "a nil value should be interpreted as ready" (discovery.k8s.io/v1).
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

impl SliceEndpoint {
    pub fn ready(&self) -> bool {
        self.conditions.ready.unwrap_or(true)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    pub name: Option<String>,
    /// Absent = all ports (Kubernetes); such a port matches no service port here.
    pub port: Option<u32>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

impl EndpointPort {
    /// The port's name; empty when unnamed.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Exports the Service of the same namespace and name (MCS API).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExport {
    pub api_version: String,
    pub metadata: ObjectMeta,
    /// A template's whole document, as written (see [`Service::raw`]).
    #[serde(skip)]
    pub raw: Option<std::sync::Arc<serde_norway::Value>>,
}
