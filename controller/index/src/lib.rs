//! The in-memory index of typed objects, fed by any source through one interface: what an
//! [`Origin`] holds, replaced whole ([`Index::reset`]: a config file read again, a watch
//! relisted), one object at a time ([`Index::apply`], [`Index::delete`]: a watch event), or
//! dropped ([`Index::forget`]: a file removed, a member cluster unregistered).
//!
//! ```text
//!  config dir ──reset(File(path), Contents)──┐
//!  kube watch ──apply / delete(Cluster(name))─┼─> per origin: objects by key and position, problems
//!                                             └─> objects: key → definitions by (origin, position)
//!                                                           the last one wins ──> typed getters
//! ```
//!
//! Every update says whether anything changed. The same [`ObjectKey`] from two places is
//! reported, and the definition last in (origin, position) order wins (files before clusters,
//! then by path or name, then by document index), so the result does not depend on the order
//! updates came in. Nothing here does I/O.

mod small;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

pub use meshfleet_api::yaml::{Contents, Document};
use meshfleet_api::{
    Cluster, DestinationRule, EndpointSlice, Generic, Object, ObjectKey, OverridePolicy,
    PropagationPolicy, ResourceBinding, Service, ServiceExport,
};
use meshfleet_model::problem::{Problem, Source};

use small::SmallMap;

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

/// Where objects come from. Its order decides which of two definitions of a key wins: the later.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Objects a source no longer defines but keeps in effect for a while, by the file they
    /// were defined in (a Cluster removed from a file is kept as unreachable). Any other
    /// definition of the same key wins.
    Kept(String),
    /// A file of the config directory, by path relative to it.
    File(String),
    /// A watch of one cluster's API server (the gateway cluster or a member), by cluster name.
    Cluster(String),
}

impl Origin {
    pub fn file(path: &str) -> Self {
        Self::File(path.to_owned())
    }

    pub fn cluster(name: &str) -> Self {
        Self::Cluster(name.to_owned())
    }

    pub fn kept(path: &str) -> Self {
        Self::Kept(path.to_owned())
    }

    /// Where the definition at `position` is, for a problem about it.
    fn source(&self, position: usize) -> Source {
        match self {
            Self::File(path) => Source::document(path.as_str(), position),
            Self::Kept(path) => Source::file(path.as_str()),
            Self::Cluster(name) => Source::Cluster { name: name.clone() },
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.write_str(path),
            Self::Kept(path) => write!(f, "{path} (removed, kept for now)"),
            Self::Cluster(name) => write!(f, "cluster {name}"),
        }
    }
}

/// Definitions of one key within one origin, by position (a file's document index; 0 for an
/// object applied alone). A file may define a key twice; a watch never does.
type Definitions = SmallMap<usize, Object>;

/// What one origin holds.
#[derive(Debug, Default, PartialEq)]
struct Held {
    /// Its objects, by key.
    objects: BTreeMap<ObjectKey, Definitions>,
    /// What was wrong with the rest of it; replaced by every [`Index::reset`].
    problems: Vec<Problem>,
    /// How many of its documents were refused (did not parse or validate).
    refused: usize,
    /// It could not be read or decoded at all: what it held before stays in effect.
    unreadable: bool,
}

impl Held {
    fn from_contents(contents: Contents) -> Self {
        let mut objects: BTreeMap<ObjectKey, Definitions> = BTreeMap::new();
        for document in contents.documents {
            objects
                .entry(document.object.key())
                .or_default()
                .insert(document.index, document.object);
        }
        Self {
            objects,
            problems: contents.problems,
            refused: contents.refused,
            unreadable: contents.unreadable,
        }
    }
}

/// A refused document does not take its object away: the version the origin held before
/// stays, as an API server keeps an object when an update to it is refused. So does everything
/// an origin held when it cannot be read at all.
fn keep_last_valid(origin: &Origin, old: &Held, contents: &mut Contents) {
    if contents.unreadable {
        contents.documents = old
            .objects
            .values()
            .flat_map(|d| d.iter())
            .map(|(index, object)| Document {
                index: *index,
                object: object.clone(),
            })
            .collect();
        contents.documents.sort_by_key(|d| d.index);
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
        let Some(last) = old.objects.get(key).and_then(|d| d.values().next_back()) else {
            continue;
        };
        contents.documents.push(Document {
            index: *index,
            object: last.clone(),
        });
        kept = true;
        let source = origin.source(*index);
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

/// Typed objects from every origin. See the module docs.
#[derive(Debug, Default)]
pub struct Index {
    /// What each origin holds.
    origins: BTreeMap<Origin, Held>,
    /// Every definition of each key, by (origin, position): the last is the object.
    objects: BTreeMap<ObjectKey, SmallMap<(Origin, usize), Object>>,
    /// Keys defined more than once, reported by [`Index::problems`].
    duplicates: BTreeSet<ObjectKey>,
    /// Which keys changed when, for consumers that follow the index incrementally.
    changes: ChangeLog,
}

/// The keys whose definitions changed, each at the generation of its last change.
///
/// A consumer remembers the [`Index::generation`] it last saw and asks for the keys changed
/// since ([`Index::changes_since`]). Entries every consumer has seen are dropped by
/// [`Index::trim_changes`]; a consumer that asks from before that point is told to start
/// afresh.
#[derive(Debug, Default)]
struct ChangeLog {
    /// Grows by one with every changed key.
    generation: u64,
    /// The log itself: generation of a key's last change → the key.
    log: BTreeMap<u64, ObjectKey>,
    /// Each logged key's generation in `log`.
    stamps: HashMap<ObjectKey, u64>,
    /// Changes up to here may have been trimmed.
    floor: u64,
}

impl ChangeLog {
    fn record(&mut self, key: &ObjectKey) {
        self.generation += 1;
        if let Some(old) = self.stamps.insert(key.clone(), self.generation) {
            self.log.remove(&old);
        }
        self.log.insert(self.generation, key.clone());
    }
}

impl Index {
    /// Replaces everything `origin` holds with `contents` (a file read again, a watch
    /// relisted). A document `contents` refuses keeps its object's last valid version from this
    /// origin; an unreadable origin keeps all it held.
    ///
    /// Returns whether anything changed: `false` when the origin held exactly this before.
    pub fn reset(&mut self, origin: &Origin, mut contents: Contents) -> bool {
        let old = self.origins.remove(origin).unwrap_or_default();
        keep_last_valid(origin, &old, &mut contents);
        let new = Held::from_contents(contents);
        if new == old {
            self.origins.insert(origin.clone(), old);
            return false;
        }
        for (key, before) in &old.objects {
            if new.objects.get(key) != Some(before) {
                self.redefine(origin, key, Some(before), new.objects.get(key));
            }
        }
        for (key, after) in &new.objects {
            if !old.objects.contains_key(key) {
                self.redefine(origin, key, None, Some(after));
            }
        }
        self.origins.insert(origin.clone(), new);
        true
    }

    /// Adds `object` to `origin`, or replaces the one it held under the same key (a watch's
    /// ADDED or MODIFIED). Returns whether anything changed.
    pub fn apply(&mut self, origin: &Origin, object: Object) -> bool {
        let key = object.key();
        let after = Definitions::one(0, object);
        let held = self.origins.entry(origin.clone()).or_default();
        if held.objects.get(&key) == Some(&after) {
            return false;
        }
        let before = held.objects.insert(key.clone(), after.clone());
        self.redefine(origin, &key, before.as_ref(), Some(&after));
        true
    }

    /// Removes what `origin` held under `key` (a watch's DELETED). Returns whether it held
    /// anything there: deleting what is gone is not an error.
    pub fn delete(&mut self, origin: &Origin, key: &ObjectKey) -> bool {
        let Some(held) = self.origins.get_mut(origin) else {
            return false;
        };
        let Some(before) = held.objects.remove(key) else {
            return false;
        };
        self.redefine(origin, key, Some(&before), None);
        true
    }

    /// Replaces `origin`'s problems and keeps its objects (a watch reports the objects it
    /// refused this way: it has no [`Index::reset`]). `refused` counts them for
    /// [`Index::refused`]. Returns whether anything changed.
    pub fn set_problems(
        &mut self,
        origin: &Origin,
        problems: Vec<Problem>,
        refused: usize,
    ) -> bool {
        let held = self.origins.entry(origin.clone()).or_default();
        if held.problems == problems && held.refused == refused {
            return false;
        }
        held.problems = problems;
        held.refused = refused;
        true
    }

    /// Drops everything `origin` held (a file removed, a cluster unregistered). Returns whether
    /// it held anything.
    pub fn forget(&mut self, origin: &Origin) -> bool {
        let Some(old) = self.origins.remove(origin) else {
            return false;
        };
        for (key, before) in &old.objects {
            self.redefine(origin, key, Some(before), None);
        }
        true
    }

    /// Puts `after` in place of `before` among the definitions of `key`.
    fn redefine(
        &mut self,
        origin: &Origin,
        key: &ObjectKey,
        before: Option<&Definitions>,
        after: Option<&Definitions>,
    ) {
        self.changes.record(key);
        let definitions = self.objects.entry(key.clone()).or_default();
        for position in before.into_iter().flat_map(|d| d.keys()) {
            definitions.remove(&(origin.clone(), *position));
        }
        for (position, object) in after.into_iter().flat_map(|d| d.iter()) {
            definitions.insert((origin.clone(), *position), object.clone());
        }
        match definitions.len() {
            0 => {
                self.objects.remove(key);
                self.duplicates.remove(key);
            }
            1 => {
                self.duplicates.remove(key);
            }
            _ => {
                self.duplicates.insert(key.clone());
            }
        }
    }

    /// A count of changes: it grows whenever a key's definitions change.
    pub fn generation(&self) -> u64 {
        self.changes.generation
    }

    /// The keys whose definitions changed after `generation` (each once, in the order of their
    /// last change), or `None` when the log no longer reaches back that far (see
    /// [`Index::trim_changes`]): then everything may have changed.
    pub fn changes_since(&self, generation: u64) -> Option<Vec<&ObjectKey>> {
        if generation < self.changes.floor {
            return None;
        }
        let after = generation.saturating_add(1);
        Some(
            self.changes
                .log
                .range(after..)
                .map(|(_, key)| key)
                .collect(),
        )
    }

    /// Forgets the changes up to `generation`, once every consumer has seen them, so that the
    /// log holds only what is new. Asking for changes from before `generation` afterwards gets
    /// `None`.
    pub fn trim_changes(&mut self, generation: u64) {
        let generation = generation.min(self.changes.generation);
        if generation <= self.changes.floor {
            return;
        }
        let newer = self.changes.log.split_off(&(generation + 1));
        for key in std::mem::replace(&mut self.changes.log, newer).into_values() {
            self.changes.stamps.remove(&key);
        }
        self.changes.floor = generation;
    }

    /// A copy of the objects, but those of `kinds` (qualified, as [`kinds`] names them), for a
    /// consumer that reads the index at length and must not hold its lock while it does (the
    /// propagation planner, which reads no EndpointSlice). Objects are shared, not copied; the
    /// copy has no origins, problems or change log.
    pub fn snapshot_without(&self, kinds: &[&str]) -> Self {
        let objects = self
            .objects
            .iter()
            .filter(|(key, _)| !kinds.contains(&&*key.kind))
            .map(|(key, definitions)| (key.clone(), definitions.clone()))
            .collect();
        Self {
            objects,
            ..Self::default()
        }
    }

    /// How many documents of all origins were refused, and how many origins could not be read.
    pub fn refused(&self) -> usize {
        self.origins
            .values()
            .map(|h| h.refused + usize::from(h.unreadable))
            .sum()
    }

    /// The origins the index holds, in order.
    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.origins.keys()
    }

    /// Current problems: each origin's own (in origin order, replaced when it is reset), then
    /// one per shadowed definition of a key defined more than once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .origins
            .values()
            .flat_map(|held| held.problems.iter().cloned())
            .collect();
        for key in &self.duplicates {
            let definitions = &self.objects[key];
            let Some(((winner, position), _)) = definitions.last_key_value() else {
                continue;
            };
            let winner = winner.source(*position);
            for (origin, position) in definitions.keys().take(definitions.len() - 1) {
                problems.push(Problem::new(
                    origin.source(*position),
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

    /// The origins that define `key`, in order (the last one's definition is the object).
    pub fn definers<'a>(&'a self, key: &ObjectKey) -> impl Iterator<Item = &'a Origin> + 'a {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|d| d.keys().map(|(origin, _)| origin))
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
            .take_while(move |(key, _)| &*key.kind == kind)
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
            name: Arc::from(name),
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

    /// The Services of one namespace and name: the template (no source cluster) first, then the
    /// observed copies by cluster.
    pub fn services_named<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Service>> + 'a {
        self.named(kinds::SERVICE, namespace, name)
            .filter_map(|o| match o {
                Object::Service(s) => Some(s),
                _ => None,
            })
    }

    /// The ServiceExports of one namespace and name (one, unless copies are observed too).
    pub fn service_exports_named<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ServiceExport>> + 'a {
        self.named(kinds::SERVICE_EXPORT, namespace, name)
            .filter_map(|o| match o {
                Object::ServiceExport(s) => Some(s),
                _ => None,
            })
    }

    /// Objects of one kind, namespace and name, by source cluster.
    fn named<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Object> + 'a {
        let first = ObjectKey {
            kind: Arc::from(kind),
            namespace: Arc::from(namespace),
            name: Arc::from(name),
            cluster: Arc::from(""),
        };
        self.objects
            .range(first..)
            .take_while(move |(key, _)| {
                &*key.kind == kind && &*key.namespace == namespace && &*key.name == name
            })
            .filter_map(|(_, d)| d.values().next_back())
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
