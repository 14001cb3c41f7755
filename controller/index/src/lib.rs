//! The in-memory index of typed objects, fed by sources one file at a time.
//!
//! ```text
//!  source ──apply_file(file, contents)──> files: file → documents, problems
//!         ──remove_file(file)──────────>   │
//!                                          └─> objects: key → definitions by (file, document)
//!                                                         the last one wins ──> typed getters
//! ```
//!
//! A source hands over everything one file holds; the index replaces that file's objects and says
//! whether anything changed. The same [`ObjectKey`] in two places is reported, and the definition
//! last in (file path, document index) order wins, so the result does not depend on load order.
//! Nothing here does I/O.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use meshfleet_api::yaml::{Document, FileContents};
use meshfleet_api::{
    Cluster, DestinationRule, EndpointSlice, Generic, Object, ObjectKey, OverridePolicy,
    PropagationPolicy, ResourceBinding, Service, ServiceExport,
};
use meshfleet_model::problem::Problem;

/// Index keys of the typed kinds (see [`ObjectKey`] for the qualification rule).
pub mod kinds {
    pub const CLUSTER: &str = "Cluster";
    pub const SERVICE: &str = "Service";
    pub const ENDPOINT_SLICE: &str = "EndpointSlice.discovery.k8s.io";
    pub const SERVICE_EXPORT: &str = "ServiceExport.multicluster.x-k8s.io";
    pub const DESTINATION_RULE: &str = "DestinationRule.networking.istio.io";
    pub const PROPAGATION_POLICY: &str = "PropagationPolicy";
    pub const CLUSTER_PROPAGATION_POLICY: &str = "ClusterPropagationPolicy";
    pub const OVERRIDE_POLICY: &str = "OverridePolicy";
    pub const CLUSTER_OVERRIDE_POLICY: &str = "ClusterOverridePolicy";
    pub const RESOURCE_BINDING: &str = "ResourceBinding";
    pub const CLUSTER_RESOURCE_BINDING: &str = "ClusterResourceBinding";
}

/// A refused document does not take its object away: the version the file held before stays,
/// as an API server keeps an object when an update to it is refused.
fn keep_last_valid(file: &str, old: &FileContents, contents: &mut FileContents) {
    if contents.unreadable {
        contents.documents.clone_from(&old.documents);
        if !contents.documents.is_empty() {
            for problem in &mut contents.problems {
                problem
                    .message
                    .push_str("; what it held before stays in effect");
            }
        }
        return;
    }
    let mut kept = false;
    for (index, key) in &contents.rejected {
        if contents.documents.iter().any(|d| d.object.key() == *key) {
            continue;
        }
        let Some(last) = old.documents.iter().find(|d| d.object.key() == *key) else {
            continue;
        };
        contents.documents.push(Document {
            index: *index,
            object: last.object.clone(),
        });
        kept = true;
        let source = Problem::document(file, *index);
        let note = "; its last valid version stays in effect";
        if let Some(problem) = contents
            .problems
            .iter_mut()
            .find(|p| p.source == source && !p.message.ends_with(note))
        {
            problem.message.push_str(note);
        }
    }
    if kept {
        contents.documents.sort_by_key(|d| d.index);
    }
}

/// Where a definition comes from: file, then document index. Its order decides who wins.
type Origin = (String, usize);

/// Typed objects from every source file. See the module docs.
#[derive(Debug, Default)]
pub struct Index {
    /// What each file holds, by path relative to its source: replaced whole when it reloads.
    files: BTreeMap<String, FileContents>,
    /// Every definition of each key: the last by [`Origin`] is the object.
    objects: BTreeMap<ObjectKey, BTreeMap<Origin, Object>>,
    /// Keys defined more than once, reported by [`Index::problems`].
    duplicates: BTreeSet<ObjectKey>,
}

impl Index {
    /// Replaces what `file` holds with `contents`.
    ///
    /// Returns whether anything changed: `false` when the file held exactly this before.
    pub fn apply_file(&mut self, file: &str, mut contents: FileContents) -> bool {
        if let Some(old) = self.files.get(file) {
            keep_last_valid(file, old, &mut contents);
        }
        if self.files.get(file) == Some(&contents) {
            return false;
        }
        self.remove_file(file);
        for document in &contents.documents {
            let key = document.object.key();
            let origin = (file.to_owned(), document.index);
            let definitions = self.objects.entry(key.clone()).or_default();
            definitions.insert(origin, document.object.clone());
            if definitions.len() > 1 {
                self.duplicates.insert(key);
            }
        }
        self.files.insert(file.to_owned(), contents);
        true
    }

    /// Removes everything `file` held. Returns whether it held anything (a file that was never
    /// applied is not an error).
    pub fn remove_file(&mut self, file: &str) -> bool {
        let Some(old) = self.files.remove(file) else {
            return false;
        };
        for document in &old.documents {
            let key = document.object.key();
            let Some(definitions) = self.objects.get_mut(&key) else {
                continue;
            };
            definitions.remove(&(file.to_owned(), document.index));
            match definitions.len() {
                0 => {
                    self.objects.remove(&key);
                    self.duplicates.remove(&key);
                }
                1 => {
                    self.duplicates.remove(&key);
                }
                _ => {}
            }
        }
        true
    }

    /// How many documents of all files were refused, and how many files could not be read.
    pub fn refused(&self) -> usize {
        self.files
            .values()
            .map(|f| f.refused + usize::from(f.unreadable))
            .sum()
    }

    /// The files the index holds, in path order.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Current problems: each file's parse problems (in path order, replaced when the file
    /// reloads), then one per shadowed definition of a key defined more than once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .files
            .values()
            .flat_map(|contents| contents.problems.iter().cloned())
            .collect();
        for key in &self.duplicates {
            let definitions = &self.objects[key];
            let Some(((winner_file, winner_index), _)) = definitions.last_key_value() else {
                continue;
            };
            let winner = Problem::document(winner_file, *winner_index);
            for (file, index) in definitions.keys().take(definitions.len() - 1) {
                problems.push(Problem::new(
                    Problem::document(file, *index),
                    format!("{key} is defined again in {winner}, which wins; this one is ignored"),
                ));
            }
        }
        problems
    }

    /// The object under `key`, if any.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key).and_then(|d| d.values().next_back())
    }

    /// Every object, in key order.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectKey, &Object)> {
        self.objects
            .iter()
            .filter_map(|(key, d)| Some((key, d.values().next_back()?)))
    }

    /// Objects of one (qualified) kind, in key order: namespace, name, source cluster.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects
            .range(ObjectKey::first_of(kind)..)
            .take_while(move |(key, _)| key.kind == kind)
            .filter_map(|(_, d)| d.values().next_back())
    }

    /// Member clusters, by name.
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.of_kind(kinds::CLUSTER).filter_map(|o| match o {
            Object::Cluster(c) => Some(c),
            _ => None,
        })
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        let key = ObjectKey {
            name: name.to_owned(),
            ..ObjectKey::first_of(kinds::CLUSTER)
        };
        match self.get(&key)? {
            Object::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// Every Service, templates and observed copies, by namespace, name, then source cluster
    /// (a template, with no source cluster, comes before its copies).
    pub fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.of_kind(kinds::SERVICE).filter_map(|o| match o {
            Object::Service(s) => Some(s),
            _ => None,
        })
    }

    /// Services without the `multicluster.kubernetes.io/source-cluster` label.
    pub fn service_templates(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services().filter(|s| s.source_cluster().is_none())
    }

    /// Services with the `multicluster.kubernetes.io/source-cluster` label.
    pub fn observed_services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services().filter(|s| s.source_cluster().is_some())
    }

    pub fn endpoint_slices(&self) -> impl Iterator<Item = &Arc<EndpointSlice>> {
        self.of_kind(kinds::ENDPOINT_SLICE).filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(s),
            _ => None,
        })
    }

    pub fn service_exports(&self) -> impl Iterator<Item = &Arc<ServiceExport>> {
        self.of_kind(kinds::SERVICE_EXPORT).filter_map(|o| match o {
            Object::ServiceExport(s) => Some(s),
            _ => None,
        })
    }

    /// DestinationRules, by namespace and name.
    pub fn destination_rules(&self) -> impl Iterator<Item = &Arc<DestinationRule>> {
        self.of_kind(kinds::DESTINATION_RULE)
            .filter_map(|o| match o {
                Object::DestinationRule(r) => Some(r),
                _ => None,
            })
    }

    /// PropagationPolicies, then ClusterPropagationPolicies, each by namespace and name.
    pub fn propagation_policies(&self) -> impl Iterator<Item = &Arc<PropagationPolicy>> {
        self.of_kind(kinds::PROPAGATION_POLICY)
            .chain(self.of_kind(kinds::CLUSTER_PROPAGATION_POLICY))
            .filter_map(|o| match o {
                Object::PropagationPolicy(p) => Some(p),
                _ => None,
            })
    }

    /// OverridePolicies, then ClusterOverridePolicies, each by namespace and name.
    pub fn override_policies(&self) -> impl Iterator<Item = &Arc<OverridePolicy>> {
        self.of_kind(kinds::OVERRIDE_POLICY)
            .chain(self.of_kind(kinds::CLUSTER_OVERRIDE_POLICY))
            .filter_map(|o| match o {
                Object::OverridePolicy(p) => Some(p),
                _ => None,
            })
    }

    /// Previous scheduling results: ResourceBindings, then ClusterResourceBindings.
    pub fn resource_bindings(&self) -> impl Iterator<Item = &Arc<ResourceBinding>> {
        self.of_kind(kinds::RESOURCE_BINDING)
            .chain(self.of_kind(kinds::CLUSTER_RESOURCE_BINDING))
            .filter_map(|o| match o {
                Object::ResourceBinding(b) => Some(b),
                _ => None,
            })
    }

    /// Documents of kinds not typed (resource templates), in key order.
    pub fn generic(&self) -> impl Iterator<Item = &Arc<Generic>> {
        self.objects().filter_map(|(_, o)| match o {
            Object::Generic(g) => Some(g),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests;
