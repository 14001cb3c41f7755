//! What every object has: metadata, and the key that names it in the index.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DocumentError, LABEL_SOURCE_CLUSTER, is_cluster_scoped, is_meshfleet_group, nullable};

/// `metadata`: only what meshfleet reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// The member cluster an observed object comes from; `None` for templates.
    pub fn source_cluster(&self) -> Option<&str> {
        self.label(LABEL_SOURCE_CLUSTER).filter(|c| !c.is_empty())
    }

    /// The namespace, `default` when none is written.
    pub fn namespace_or_default(&self) -> &str {
        self.namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
    }
}

/// Names an object in the index: two documents with the same key define the same object.
///
/// `kind` is qualified by its group as kubectl writes it (`Deployment.apps`,
/// `DestinationRule.networking.istio.io`), except for the core group and meshfleet's own (with
/// Karmada's as aliases), so a `cluster.karmada.io` Cluster and a `meshfleet.io` one with the same
/// name are the same object. `cluster` is the `multicluster.kubernetes.io/source-cluster` label:
/// each member cluster's observed copy is its own object. Cluster-scoped kinds have no namespace.
///
/// Keys are held in several maps (the index, its origins, the catalog's followers): their parts
/// are shared, so a clone costs reference counts, not copies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub cluster: Arc<str>,
}

impl ObjectKey {
    pub fn of(api_version: &str, kind: &str, meta: &ObjectMeta) -> Self {
        let namespace = if is_cluster_scoped(kind) {
            ""
        } else {
            meta.namespace_or_default()
        };
        Self {
            kind: Arc::from(qualified_kind(api_version, kind)),
            namespace: Arc::from(namespace),
            name: Arc::from(meta.name.as_str()),
            cluster: Arc::from(meta.source_cluster().unwrap_or_default()),
        }
    }

    /// The smallest key of a kind: where a range over that kind starts.
    pub fn first_of(kind: &str) -> Self {
        Self {
            kind: Arc::from(kind),
            namespace: Arc::from(""),
            name: Arc::from(""),
            cluster: Arc::from(""),
        }
    }
}

/// `Kind` or `Kind.group`: see [`ObjectKey`].
pub fn qualified_kind(api_version: &str, kind: &str) -> String {
    let (group, _) = super::split_api_version(api_version);
    if group.is_empty() || is_meshfleet_group(group) {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

impl fmt::Display for ObjectKey {
    /// `Service team-a/api`, `Cluster east-1`, `Service team-a/api (cluster east-1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.split_once('.').map_or(&*self.kind, |(k, _)| k);
        if self.namespace.is_empty() {
            write!(f, "{kind} {}", self.name)?;
        } else {
            write!(f, "{kind} {}/{}", self.namespace, self.name)?;
        }
        if !self.cluster.is_empty() {
            write!(f, " (cluster {})", self.cluster)?;
        }
        Ok(())
    }
}

impl From<&ObjectKey> for meshfleet_model::Source {
    /// The object, for a problem about it: its kind without the group.
    fn from(key: &ObjectKey) -> Self {
        let kind = key.kind.split_once('.').map_or(&*key.kind, |(k, _)| k);
        let source = Self::object(kind, &key.namespace, &key.name);
        if key.cluster.is_empty() {
            source
        } else {
            source.in_cluster(&key.cluster)
        }
    }
}

/// A document of a kind meshfleet does not type yet (resource templates, policies): its type,
/// metadata and whole value.
#[derive(Clone, PartialEq)]
pub struct Generic {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    /// The whole document as written.
    pub raw: serde_norway::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenericHead {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
}

impl Generic {
    pub(super) fn from_value(value: &serde_norway::Value) -> Result<Self, DocumentError> {
        let head: GenericHead = super::typed(value)?;
        Ok(Self {
            api_version: head.api_version,
            kind: head.kind,
            metadata: head.metadata,
            raw: value.clone(),
        })
    }
}

impl fmt::Debug for Generic {
    /// A Secret's data stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Generic");
        s.field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("metadata", &self.metadata);
        if self.kind == "Secret" {
            s.field("raw", &"<redacted>");
        } else {
            s.field("raw", &self.raw);
        }
        s.finish()
    }
}
