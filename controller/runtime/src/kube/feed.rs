//! One resource of one cluster, listed and watched (kube-runtime's `watcher`, which backs off
//! between attempts), as batches of [`Change`]s; and the feed that puts a cluster's objects
//! into the index under its origin.
//!
//! ```text
//!  watcher ──events──> ready_chunks ──> Changes::next: Relist(all, once listed) | Apply | Delete | Failed
//!                                          └─> IndexFeed::take ──> Index::apply / delete, problems
//! ```
//!
//! A relist (the first list, and every one after the watch could not resume) replaces what the
//! feed put in the index: objects that are gone are deleted, so nothing stays because a
//! DELETED event was missed while the cluster could not be reached.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::Value;
use tokio::sync::watch;

use meshfleet_api::ObjectKey;
use meshfleet_index::{Index, Origin};
use meshfleet_model::problem::{Problem, Source};

use super::objects::{self, Resource};

/// Most watch events put into the index under one lock.
const BATCH: usize = 1024;

/// What a watch saw.
#[derive(Debug)]
pub enum Change {
    /// Everything there is, listed (after the first list, or a relist).
    Relist(Vec<Value>),
    Apply(Value),
    Delete(Value),
    /// The list or watch failed; the watcher tries again after a back-off.
    Failed(Failure),
}

/// Why a list or watch failed, as far as meshfleet acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 404: the resource is not served (a CRD not installed there). Nothing to watch.
    Absent,
    /// 401 or 403: the API server answered but refused this resource (RBAC).
    Denied(String),
    /// No answer, or an answer that is not the API's: the cluster cannot be reached.
    Unreachable(String),
}

impl Failure {
    pub fn of(error: &watcher::Error) -> Self {
        let api = match error {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => match e {
                kube::Error::Api(status) => Some((status.code, status.message.clone())),
                other => return Self::Unreachable(other.to_string()),
            },
            watcher::Error::WatchError(status) => Some((status.code, status.message.clone())),
            watcher::Error::NoResourceVersion => return Self::Unreachable(error.to_string()),
        };
        match api {
            Some((404, _)) => Self::Absent,
            Some((401 | 403, message)) => Self::Denied(message),
            // 410 Gone (too old a resourceVersion) is the watcher's to handle by relisting.
            Some((code, message)) => Self::Unreachable(format!("{code}: {message}")),
            None => Self::Unreachable(error.to_string()),
        }
    }
}

/// Watch events, in batches of what is ready.
type EventBatches = Pin<Box<dyn Stream<Item = Vec<watcher::Result<Event<DynamicObject>>>> + Send>>;

/// The changes of one resource, listed and watched.
pub struct Changes {
    resource: Resource,
    events: EventBatches,
    /// Objects of a relist under way.
    relisting: Option<Vec<Value>>,
}

impl Changes {
    pub fn new(api: Api<DynamicObject>, resource: Resource) -> Self {
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .ready_chunks(BATCH)
            .boxed();
        Self {
            resource,
            events,
            relisting: None,
        }
    }

    /// Watches `resource` in every namespace (or in `namespace`) of the cluster `client` talks to.
    pub fn of(client: kube::Client, resource: Resource, namespace: Option<&str>) -> Self {
        Self::new(
            resource.api(&client, namespace.unwrap_or_default()),
            resource,
        )
    }

    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// The next batch of changes; `None` when the watch ended (it does not, but on drop).
    pub async fn next(&mut self) -> Option<Vec<Change>> {
        loop {
            let events = self.events.next().await?;
            let mut changes = Vec::with_capacity(events.len());
            for event in events {
                match event {
                    Ok(Event::Init) => self.relisting = Some(Vec::new()),
                    Ok(Event::InitApply(object)) => {
                        let value = objects::to_json(&object, &self.resource);
                        self.relisting.get_or_insert_with(Vec::new).push(value);
                    }
                    Ok(Event::InitDone) => {
                        changes.push(Change::Relist(self.relisting.take().unwrap_or_default()));
                    }
                    Ok(Event::Apply(object)) => {
                        changes.push(Change::Apply(objects::to_json(&object, &self.resource)));
                    }
                    Ok(Event::Delete(object)) => {
                        changes.push(Change::Delete(objects::to_json(&object, &self.resource)));
                    }
                    Err(error) => changes.push(Change::Failed(Failure::of(&error))),
                }
            }
            if !changes.is_empty() {
                return Some(changes);
            }
        }
    }
}

/// How a cluster's API server answers its watches: what failed, per resource.
#[derive(Debug, Default)]
pub struct Health {
    inner: Mutex<HealthState>,
    /// Resources that count as listed only once listed: RBAC refusing them is not "nothing
    /// there" (the gateway's policies: without them copies would be pruned).
    must_list: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// Resources whose last attempt failed, and how.
    failing: BTreeMap<String, Failure>,
    /// Resources listed at least once.
    listed: BTreeSet<String>,
    /// Bumped on every change of the above.
    generation: u64,
}

/// What a cluster's watches say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Nothing listed yet, and nothing failed.
    Connecting,
    /// Every resource that failed is absent or denied; at least one was listed.
    Reachable,
    /// A resource could not be listed or watched for want of an answer: the first one's error.
    Unreachable(String),
}

impl Health {
    /// A health where `resources` count as listed only once they are.
    pub fn requiring(resources: &[Resource]) -> Self {
        Self {
            must_list: resources.iter().map(Resource::name).collect(),
            ..Self::default()
        }
    }

    /// Records what a batch of changes says of `resource`: its last failure, or that it
    /// answered (and was listed, if it relisted) after it.
    pub fn record_batch(&self, resource: &Resource, changes: &[Change]) {
        let listed = changes.iter().any(|c| matches!(c, Change::Relist(_)));
        // The last word of the batch: a failure, or an answer after it.
        if let Some(last) = changes.last() {
            let failure = match last {
                Change::Failed(f) => Some(f.clone()),
                _ => None,
            };
            self.record(resource, failure, listed);
        }
    }

    pub fn record(&self, resource: &Resource, failure: Option<Failure>, listed: bool) {
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = resource.name();
        let before = (
            state.failing.get(&name).cloned(),
            state.listed.contains(&name),
        );
        // A resource the API does not serve, or (unless it must be listed) that RBAC keeps
        // from this replica, has nothing to list: it counts as listed (a refusal is reported
        // by whoever reads the health).
        let refused_counts = !self.must_list.contains(&name);
        let listed = listed
            || matches!(failure, Some(Failure::Absent))
            || (refused_counts && matches!(failure, Some(Failure::Denied(_))));
        match &failure {
            Some(f) => {
                state.failing.insert(name.clone(), f.clone());
            }
            None => {
                state.failing.remove(&name);
            }
        }
        if listed {
            state.listed.insert(name.clone());
        }
        if (
            state.failing.get(&name).cloned(),
            state.listed.contains(&name),
        ) != before
        {
            state.generation += 1;
        }
    }

    pub fn reachability(&self) -> Reachability {
        let state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (resource, failure) in &state.failing {
            if let Failure::Unreachable(why) = failure {
                return Reachability::Unreachable(format!("{resource}: {why}"));
            }
        }
        if state.listed.is_empty() {
            Reachability::Connecting
        } else {
            Reachability::Reachable
        }
    }

    /// The API server answered (a probe): failures for want of an answer are over, even for
    /// resources whose watch resumed without an event to say so.
    pub fn answered(&self) {
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = state.failing.len();
        state
            .failing
            .retain(|_, f| !matches!(f, Failure::Unreachable(_)));
        if state.failing.len() != before {
            state.generation += 1;
        }
    }

    /// Resources refused by RBAC, with the API server's message.
    pub fn denied(&self) -> Vec<(String, String)> {
        let state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .failing
            .iter()
            .filter_map(|(r, f)| match f {
                Failure::Denied(m) => Some((r.clone(), m.clone())),
                _ => None,
            })
            .collect()
    }

    /// How many resources have been listed at least once (or are not served).
    pub fn listed(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .listed
            .len()
    }

    pub fn generation(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .generation
    }
}

/// Objects of one origin that could not be read, shared by every feed of that origin, and put
/// into the index as the origin's problems.
#[derive(Debug, Default)]
pub struct Refused {
    problems: Mutex<BTreeMap<(String, Source), Problem>>,
}

impl Refused {
    /// Sets (or, with `None`, clears) the problem of `source` reported by `by`. Returns whether
    /// anything changed.
    pub fn set(&self, by: &str, source: Source, problem: Option<Problem>) -> bool {
        let mut problems = self
            .problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (by.to_owned(), source);
        match problem {
            Some(p) => problems.insert(key, p.clone()).as_ref() != Some(&p),
            None => problems.remove(&key).is_some(),
        }
    }

    /// Clears every problem reported by `by`.
    pub fn clear(&self, by: &str) -> bool {
        let mut problems = self
            .problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = problems.len();
        problems.retain(|(b, _), _| b != by);
        problems.len() != before
    }

    pub fn publish(&self, index: &mut Index, origin: &Origin) -> bool {
        let problems = self
            .problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list: Vec<Problem> = problems.values().cloned().collect();
        let refused = list.len();
        index.set_problems(origin, list, refused)
    }
}

/// Where feeds put what they read: the index, and the counter that wakes the reconcile loop.
#[derive(Clone, Debug)]
pub struct Target {
    pub index: Arc<Mutex<Index>>,
    pub changed: Arc<watch::Sender<u64>>,
}

impl Target {
    pub fn bump(&self) {
        self.changed.send_modify(|g| *g += 1);
    }
}

/// A change to a served object before it is read (a member's label, an endpoint's zone).
pub type Transform = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// Puts one resource of one cluster into the index under `origin`.
pub struct IndexFeed {
    pub target: Target,
    pub origin: Origin,
    pub resource: Resource,
    /// The member cluster the objects are observed in (labelled with it), if any.
    pub cluster: Option<String>,
    pub refused: Arc<Refused>,
    pub transform: Option<Transform>,
    /// Keys this feed put in the index.
    known: BTreeSet<ObjectKey>,
}

impl IndexFeed {
    pub fn new(
        target: Target,
        origin: Origin,
        resource: Resource,
        cluster: Option<String>,
        refused: Arc<Refused>,
    ) -> Self {
        Self {
            target,
            origin,
            resource,
            cluster,
            refused,
            transform: None,
            known: BTreeSet::new(),
        }
    }

    pub fn with_transform(mut self, transform: Transform) -> Self {
        self.transform = Some(transform);
        self
    }

    fn prepare(&self, mut value: Value) -> Value {
        if let Some(cluster) = &self.cluster {
            objects::label_source_cluster(&mut value, cluster);
        }
        if let Some(transform) = &self.transform {
            transform(&mut value);
        }
        value
    }

    /// Applies one object: into the index when it reads, else as a problem naming it.
    /// Returns its key when the index holds a version of it from this feed.
    fn apply_one(
        &mut self,
        index: &mut Index,
        value: Value,
        changed: &mut bool,
    ) -> Option<ObjectKey> {
        let value = self.prepare(value);
        let source = objects::source_of(&value, &self.resource, self.cluster.as_deref());
        let by = self.resource.name();
        match objects::parse(&value, source.clone()) {
            Ok(object) => {
                let key = object.key();
                *changed |= index.apply(&self.origin, object);
                *changed |= self.refused.set(&by, source, None);
                self.known.insert(key.clone());
                Some(key)
            }
            Err(problem) => {
                *changed |= self.refused.set(&by, source, Some(*problem));
                // Its last valid version, if any, stays.
                objects::key_of(&value).filter(|k| self.known.contains(k))
            }
        }
    }

    /// Puts a batch of changes into the index under one lock. Returns whether anything changed.
    pub fn take(&mut self, changes: Vec<Change>, health: &Health) -> bool {
        health.record_batch(&self.resource, &changes);
        let target = self.target.clone();
        let mut index = target.index.lock().expect("index lock");
        let mut changed = false;
        for change in changes {
            match change {
                Change::Relist(values) => {
                    // Problems of objects that are gone go with them.
                    changed |= self.refused.clear(&self.resource.name());
                    let mut seen = BTreeSet::new();
                    for value in values {
                        seen.extend(self.apply_one(&mut index, value, &mut changed));
                    }
                    for gone in self.known.difference(&seen).cloned().collect::<Vec<_>>() {
                        changed |= index.delete(&self.origin, &gone);
                        self.known.remove(&gone);
                    }
                }
                Change::Apply(value) => {
                    self.apply_one(&mut index, value, &mut changed);
                }
                Change::Delete(value) => {
                    let value = self.prepare(value);
                    let source =
                        objects::source_of(&value, &self.resource, self.cluster.as_deref());
                    changed |= self.refused.set(&self.resource.name(), source, None);
                    if let Some(key) = objects::key_of(&value) {
                        changed |= index.delete(&self.origin, &key);
                        self.known.remove(&key);
                    }
                }
                Change::Failed(_) => {}
            }
        }
        if changed {
            // Problems are published only when something changed (a refused object is a change).
            self.refused.publish(&mut index, &self.origin);
        }
        drop(index);
        if changed {
            self.target.bump();
        }
        changed
    }

    /// Takes everything this feed put in the index out again (its cluster is gone for good).
    pub fn withdraw(&mut self) -> bool {
        let mut index = self.target.index.lock().expect("index lock");
        let mut changed = false;
        for key in std::mem::take(&mut self.known) {
            changed |= index.delete(&self.origin, &key);
        }
        changed |= self.refused.clear(&self.resource.name());
        changed |= self.refused.publish(&mut index, &self.origin);
        drop(index);
        if changed {
            self.target.bump();
        }
        changed
    }
}

/// Keeps `objects`, by name, as a batch of changes says (for what is not put into the
/// index: the gateway's Clusters, a member's Nodes, an agent's Works); returns whether any
/// change was said.
pub fn keep_by_name(objects: &mut BTreeMap<String, Value>, changes: Vec<Change>) -> bool {
    let name = |v: &Value| {
        v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let mut any = false;
    for change in changes {
        match change {
            Change::Relist(values) => {
                *objects = values.into_iter().map(|v| (name(&v), v)).collect();
            }
            Change::Apply(v) => {
                objects.insert(name(&v), v);
            }
            Change::Delete(v) => {
                objects.remove(&name(&v));
            }
            Change::Failed(_) => continue,
        }
        any = true;
    }
    any
}

/// Follows one resource into the index until the task is aborted.
pub async fn follow(mut changes: Changes, mut feed: IndexFeed, health: Arc<Health>) {
    while let Some(batch) = changes.next().await {
        feed.take(batch, &health);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::objects::{PROPAGATION_POLICIES, SERVICES};

    #[test]
    fn a_refused_policy_is_not_taken_as_none_but_a_refused_template_kind_is() {
        let health = Health::requiring(&[PROPAGATION_POLICIES]);
        health.record(&SERVICES, Some(Failure::Denied("forbidden".into())), false);
        assert_eq!(
            health.listed(),
            1,
            "a template kind refused counts as listed"
        );
        health.record(
            &PROPAGATION_POLICIES,
            Some(Failure::Denied("forbidden".into())),
            false,
        );
        assert_eq!(
            health.listed(),
            1,
            "a refused policy kind holds propagation back"
        );
        assert_eq!(health.denied().len(), 2);
    }

    #[test]
    fn an_answer_ends_failures_of_watches_that_resumed_quietly() {
        let health = Health::default();
        health.record(&SERVICES, None, true);
        health.record(
            &PROPAGATION_POLICIES,
            Some(Failure::Unreachable("refused".into())),
            false,
        );
        assert!(matches!(
            health.reachability(),
            Reachability::Unreachable(_)
        ));
        health.answered();
        assert_eq!(health.reachability(), Reachability::Reachable);
    }
}
