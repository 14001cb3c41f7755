//! The snapshot cache: the mesh in, one [`Snapshot`] per client key out.
//!
//! ```text
//!  set_mesh(Mesh) ──> changed hosts ──> per key in use: translate only those services
//!                                        └─> Snapshot (shares untouched shards) ──> watch::Sender
//!  watch(key) ──> watch::Receiver<Arc<Snapshot>>   (first watcher of a key: full translation)
//! ```
//!
//! The cache owns data and versions; streams own nonces and subscriptions (see
//! [`crate::server`]). Clients with equal [`ClientKey`]s share one snapshot, so per-update work
//! is O(changed services × keys); nothing is encoded per stream.

#[cfg(test)]
pub(crate) mod fixtures;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use envoy_types::pb::envoy::config::route::v3::VirtualHost;
use tokio::sync::watch;

use crate::model::{ClientKey, GlobalService, LocalityPolicy, Mesh};
use crate::resource::Resource;
use crate::translate::{ServiceResources, outbound_listener, outbound_route, translate_service};

pub use snapshot::{Change, SHARDS, Snapshot, Subscription, type_index};

/// Shared, cheap to clone; see the module docs.
#[derive(Clone, Default)]
pub struct SnapshotCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The mesh and the per-key state, changed together under one lock.
    state: Mutex<State>,
    /// Label keys some `failoverPriority` names: streams restrict client labels to these, so
    /// other labels do not split the cache, and re-key when the set changes.
    label_keys: watch::Sender<Arc<BTreeSet<String>>>,
}

#[derive(Default)]
struct State {
    /// The mesh as last set; new keys are translated from it.
    mesh: Mesh,
    /// Keys some stream watches. A key whose sender has no receiver left is dropped.
    keys: HashMap<ClientKey, KeyState>,
}

/// What the cache keeps per client key besides the published snapshot.
struct KeyState {
    /// Publishes the key's snapshots; its receiver count is the number of streams on the key.
    tx: watch::Sender<Arc<Snapshot>>,
    /// Per host, the resource names its service contributed, so a change can remove the
    /// names the service no longer has.
    contributions: HashMap<String, Contribution>,
    /// Per host, its virtual hosts, sorted by host so the outbound route is deterministic.
    virtual_hosts: BTreeMap<String, Vec<VirtualHost>>,
}

/// Names one service contributed, per type in [`crate::resource::SNAPSHOT_TYPES`] order.
#[derive(Default)]
struct Contribution {
    names: [Vec<Arc<str>>; 4],
}

impl SnapshotCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the mesh. Recomputes, for every key in use, only the services whose host was
    /// added, removed or changed, and publishes a new snapshot only to keys whose resources
    /// actually changed. Returns whether any service changed.
    ///
    /// # Caveats
    /// CPU-bound (translation happens here, under the cache lock): call it from a blocking
    /// context for big meshes. Pass unchanged services as the same `Arc` to skip comparing
    /// them by value.
    pub fn set_mesh(&self, mesh: Mesh) -> bool {
        let mut state = self.lock();
        let changed = changed_hosts(&state.mesh, &mesh);
        state.mesh = mesh;
        state.keys.retain(|_, k| k.tx.receiver_count() > 0);
        if changed.is_empty() {
            return false;
        }
        let keys = failover_label_keys(&state.mesh);
        self.inner.label_keys.send_if_modified(|cur| {
            let modified = **cur != keys;
            if modified {
                *cur = Arc::new(keys);
            }
            modified
        });
        for (key, ks) in &mut state.keys {
            if let Some(snapshot) = ks.apply(key, &changed) {
                ks.tx.send_replace(Arc::new(snapshot));
            }
        }
        true
    }

    /// The key's snapshots: the current one at once, then each new one. The first watcher of
    /// a key pays for a full translation; the key is dropped once no receiver is left.
    pub fn watch(&self, key: &ClientKey) -> watch::Receiver<Arc<Snapshot>> {
        let mut state = self.lock();
        // A key whose last stream just left is revived, not translated again.
        if let Some(ks) = state.keys.get(key) {
            return ks.tx.subscribe();
        }
        state.keys.retain(|_, k| k.tx.receiver_count() > 0);
        let (ks, rx) = KeyState::build(key, &state.mesh);
        state.keys.insert(key.clone(), ks);
        rx
    }

    /// Label keys some `failoverPriority` in the mesh names.
    pub fn label_keys(&self) -> watch::Receiver<Arc<BTreeSet<String>>> {
        self.inner.label_keys.subscribe()
    }

    /// Number of keys the cache holds (keys whose last stream left are dropped at the next
    /// `watch` or `set_mesh`).
    pub fn key_count(&self) -> usize {
        self.lock().keys.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves state that is still consistent per key.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Label keys named by some Istio `failoverPriority` (`key` or `key=value`) in `mesh`.
pub fn failover_label_keys(mesh: &Mesh) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for svc in mesh.services.values() {
        if let LocalityPolicy::Istio(setting) = &svc.locality {
            for entry in &setting.failover_priority {
                let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
                keys.insert(key.to_owned());
            }
        }
    }
    keys
}

/// `labels` restricted to `keys`: what a [`ClientKey`] carries.
pub fn restrict_labels(
    labels: &BTreeMap<String, String>,
    keys: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| keys.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A host whose service was added (`Some`), changed (`Some`) or removed (`None`).
type HostChange = (String, Option<Arc<GlobalService>>);

/// Hosts that differ between `old` and `new`: pointer equality first, then value equality.
fn changed_hosts(old: &Mesh, new: &Mesh) -> Vec<HostChange> {
    let mut out = Vec::new();
    for (host, svc) in &new.services {
        match old.services.get(host) {
            Some(prev) if Arc::ptr_eq(prev, svc) || **prev == **svc => {}
            _ => out.push((host.clone(), Some(svc.clone()))),
        }
    }
    for host in old.services.keys() {
        if !new.services.contains_key(host) {
            out.push((host.clone(), None));
        }
    }
    out
}

/// A snapshot being derived from the previous one.
struct Builder {
    snapshot: Snapshot,
    /// Whether anything differs from the previous snapshot.
    changed: bool,
}

impl Builder {
    fn upsert(&mut self, ty: usize, res: Resource) -> Arc<str> {
        let (name, changed) = self.snapshot.types[ty].insert(res);
        self.changed |= changed;
        name
    }

    fn remove(&mut self, ty: usize, name: &str) {
        self.changed |= self.snapshot.types[ty].remove(name);
    }

    /// The next snapshot, or `None` if nothing changed.
    fn finish(mut self) -> Option<Snapshot> {
        if !self.changed {
            return None;
        }
        self.snapshot.generation += 1;
        self.snapshot.finish();
        Some(self.snapshot)
    }
}

/// Indexes into [`crate::resource::SNAPSHOT_TYPES`] (checked by a test).
const TYPE_LISTENER: usize = 2;
const TYPE_ROUTE: usize = 3;

impl KeyState {
    /// A key's state and first snapshot: the whole mesh translated for `key`.
    fn build(key: &ClientKey, mesh: &Mesh) -> (Self, watch::Receiver<Arc<Snapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let mut ks = Self {
            tx,
            contributions: HashMap::new(),
            virtual_hosts: BTreeMap::new(),
        };
        let mut b = Builder {
            snapshot: Snapshot::default(),
            changed: true,
        };
        b.upsert(TYPE_LISTENER, outbound_listener(key));
        for (host, svc) in &mesh.services {
            ks.replace_service(&mut b, key, host, Some(svc));
        }
        b.upsert(
            TYPE_ROUTE,
            outbound_route(ks.virtual_hosts.values().flatten()),
        );
        if let Some(snapshot) = b.finish() {
            ks.tx.send_replace(Arc::new(snapshot));
        }
        (ks, rx)
    }

    /// The next snapshot after `changes`, or `None` if the key's resources did not change.
    fn apply(&mut self, key: &ClientKey, changes: &[HostChange]) -> Option<Snapshot> {
        let mut b = Builder {
            snapshot: Snapshot::clone(&self.tx.borrow()),
            changed: false,
        };
        let mut routes_changed = false;
        for (host, svc) in changes {
            routes_changed |= self.replace_service(&mut b, key, host, svc.as_ref());
        }
        if routes_changed {
            b.upsert(
                TYPE_ROUTE,
                outbound_route(self.virtual_hosts.values().flatten()),
            );
        }
        b.finish()
    }

    /// Puts the resources of `svc` (none if removed) in place of what `host` contributed
    /// before. Returns whether its virtual hosts changed.
    fn replace_service(
        &mut self,
        b: &mut Builder,
        key: &ClientKey,
        host: &str,
        svc: Option<&Arc<GlobalService>>,
    ) -> bool {
        let old = self.contributions.remove(host).unwrap_or_default();
        let res = svc.map(|s| translate_service(s, key)).unwrap_or_default();
        let ServiceResources {
            clusters,
            load_assignments,
            virtual_hosts,
            api_listeners,
            api_routes,
        } = res;
        let mut new = Contribution::default();
        let lists = [clusters, load_assignments, api_listeners, api_routes];
        for (ty, list) in lists.into_iter().enumerate() {
            new.names[ty] = list.into_iter().map(|r| b.upsert(ty, r)).collect();
            for name in &old.names[ty] {
                if !new.names[ty].contains(name) {
                    b.remove(ty, name);
                }
            }
        }
        if svc.is_some() {
            self.contributions.insert(host.to_owned(), new);
        }
        self.replace_virtual_hosts(host, virtual_hosts)
    }

    fn replace_virtual_hosts(&mut self, host: &str, vhosts: Vec<VirtualHost>) -> bool {
        if vhosts.is_empty() {
            return self.virtual_hosts.remove(host).is_some();
        }
        if self.virtual_hosts.get(host) == Some(&vhosts) {
            return false;
        }
        self.virtual_hosts.insert(host.to_owned(), vhosts);
        true
    }
}
