//! What propagation produces: rendered manifests addressed by cluster and key, and what a sink
//! must leave as it is. Pure values; the sinks that write them live in the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

/// A manifest's address within its cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManifestKey {
    /// The API group (`apps`; empty for the core group).
    pub group: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ManifestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        };
        if self.namespace.is_empty() {
            write!(f, "{kind} {}", self.name)
        } else {
            write!(f, "{kind} {}/{}", self.namespace, self.name)
        }
    }
}

/// A rendered manifest, encoded once: the YAML a file sink writes (and a Kubernetes sink
/// decodes for server-side apply), and the hash that tells a changed one from an unchanged one.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    pub yaml: String,
    pub hash: u64,
}

impl Manifest {
    /// Encodes `value` as YAML.
    ///
    /// # Errors
    /// A value YAML cannot hold (none that came from JSON).
    pub fn encode(value: &Value) -> Result<Self, serde_norway::Error> {
        let yaml = serde_norway::to_string(value)?;
        let hash = xxhash_rust::xxh3::xxh3_64(yaml.as_bytes());
        Ok(Self { yaml, hash })
    }

    /// The manifest as JSON again.
    ///
    /// # Errors
    /// Never for a manifest made by [`Manifest::encode`].
    pub fn decode(&self) -> Result<Value, serde_norway::Error> {
        serde_norway::from_str(&self.yaml)
    }
}

impl std::fmt::Debug for Manifest {
    /// Only the hash: a manifest may be a Secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Manifest({:016x})", self.hash)
    }
}

/// What one cluster should hold: every manifest meshfleet propagates there.
pub type Manifests = BTreeMap<ManifestKey, Arc<Manifest>>;

/// What a sink leaves as it is in one cluster: the keys kept there (their new rendering
/// failed: the last good copy stays) and the keys kept everywhere (templates no policy claims
/// any more: as in Karmada, what was propagated stays where it is), but those `except`
/// (dependencies, which go where their workloads go).
#[derive(Clone, Copy, Debug)]
pub struct Keep<'a> {
    pub here: &'a BTreeSet<ManifestKey>,
    pub everywhere: &'a BTreeSet<ManifestKey>,
    pub except: &'a BTreeSet<ManifestKey>,
}

impl<'a> Keep<'a> {
    /// Nothing kept.
    pub fn none() -> Keep<'static> {
        static EMPTY: BTreeSet<ManifestKey> = BTreeSet::new();
        Keep {
            here: &EMPTY,
            everywhere: &EMPTY,
            except: &EMPTY,
        }
    }

    pub fn contains(&self, key: &ManifestKey) -> bool {
        self.here.contains(key) || (self.everywhere.contains(key) && !self.except.contains(key))
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a ManifestKey> {
        let except = self.except;
        self.here
            .iter()
            .chain(self.everywhere.iter().filter(move |k| !except.contains(*k)))
    }
}

/// What the clusters should hold: each cluster's manifests, the keys to leave as they are in
/// each, and the keys to leave as they are everywhere (see [`Keep`]).
#[derive(Clone, Copy, Debug)]
pub struct Desired<'a> {
    pub manifests: &'a BTreeMap<String, Manifests>,
    pub keep: &'a BTreeMap<String, BTreeSet<ManifestKey>>,
    pub keep_everywhere: &'a BTreeSet<ManifestKey>,
    /// Keys never kept everywhere: dependencies follow their workloads.
    pub dependencies: &'a BTreeSet<ManifestKey>,
}
