//! The snapshot cache: the mesh in, one [`Snapshot`] per client key out.
//!
//! ```text
//!  set_mesh(Mesh) ──> changed hosts ──> Shared: translate_shared once per changed service
//!                                        │  (CDS, API listeners, RDS incl. meshfleet_outbound)
//!                                        │  and its endpoints encoded once per network in use
//!                                        └─> per key in use: only its load assignments (EDS),
//!                                            ropes over the encoded endpoints
//!                                             └─> Snapshot (shares shards) ──> watch::Sender
//!  watch(key) ──> watch::Receiver<Arc<Snapshot>>   (first watcher of a key: its EDS in full)
//! ```
//!
//! The cache owns data and versions; streams own nonces and subscriptions (see
//! [`crate::server`]). Clients with equal [`ClientKey`]s share one snapshot. Only the load
//! assignments and the outbound listener depend on the key: everything else is translated once
//! per changed service and shared, shard by shard, by every key's snapshot. Even a load
//! assignment is mostly shared: its endpoint bytes are encoded once per service and network
//! (module `eds`) and a key adds only locality weights and priorities around them. Per-update
//! work is O(changed services × networks) for encoding plus O(changed services × keys × their
//! localities) for EDS; nothing is encoded per stream.

mod eds;
#[cfg(test)]
pub(crate) mod fixtures;
mod nds;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

use crate::model::{ClientKey, GlobalService, LocalityPolicy, Mesh};
use crate::resource::{Resource, TYPES};
use crate::translate::{
    EncodedVirtualHost, SharedResources, outbound_listener, outbound_route_encoded,
    translate_shared,
};

use eds::{EndpointViews, Interner, shared_with};
use nds::NameTables;
use snapshot::Resources;
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
    /// The key-independent resources of `mesh`, kept up to date even while no key is watched.
    shared: Shared,
    /// Keys some stream watches. A key whose sender has no receiver left is dropped.
    keys: HashMap<ClientKey, KeyState>,
}

/// What the cache keeps per client key: its snapshots' publisher and its outbound listener.
/// Its load assignments live in the published snapshot itself.
struct KeyState {
    /// Publishes the key's snapshots; its receiver count is the number of streams on the key.
    tx: watch::Sender<Arc<Snapshot>>,
    /// LDS `meshfleet_outbound` for the key's port, added to the shared API listeners.
    listener: Arc<Resource>,
    /// The key's clients have a verified identity: they get the secure clusters.
    secure: bool,
    /// The key's network: its name table.
    network: String,
    /// The key's clients get the listeners of virtual IPs bound.
    bind_vips: bool,
}

/// The resources every key is served alike, maintained once per mesh change.
struct Shared {
    /// CDS, LDS without the outbound listener, RDS (API routes and `meshfleet_outbound`);
    /// indexed like [`crate::resource::SNAPSHOT_TYPES`], the EDS slot stays empty. Keys'
    /// snapshots clone these, so they share every shard.
    types: [Resources; TYPES],
    /// CDS as clients with a verified identity get it: a service's secure variant of a cluster
    /// where it has one (mTLS to east-west gateways), else the same resource as in `types`.
    secure_clusters: Resources,
    /// LDS as clients without capture get it: the listeners of virtual IPs bound to their
    /// addresses, the API listeners the same as in `types`.
    bound_listeners: Resources,
    /// Per host, the resource names its service contributed, so a change can remove the names
    /// the service no longer has. Its load assignments are named like its clusters.
    contributions: HashMap<String, Contribution>,
    /// Per host, its virtual hosts, sorted by host so the outbound route is deterministic;
    /// kept encoded, since only their names and domains are read again.
    virtual_hosts: BTreeMap<String, Vec<EncodedVirtualHost>>,
    /// Every service's endpoints, encoded once per network some key is on: what every key's
    /// load assignments are assembled from.
    endpoints: EndpointViews,
    /// The name table (NDS) of each network some key is on.
    names: NameTables,
}

/// Names one service contributed, per type in [`crate::resource::SNAPSHOT_TYPES`] order (the
/// EDS slot is unused: load assignments are named like the clusters).
#[derive(Default)]
struct Contribution {
    names: [Vec<Arc<str>>; TYPES],
}

/// What a mesh change did to [`Shared`], and what every key still has to do for EDS.
#[derive(Default)]
struct Update {
    /// Per type, whether the shared resources changed.
    changed: [bool; TYPES],
    /// Load assignments to remove: names of clusters their service no longer has.
    stale: Vec<Arc<str>>,
    /// Services added or changed, whose load assignments every key recomputes.
    services: Vec<Arc<GlobalService>>,
    /// When the cache was handed the change: convergence time is measured from here.
    at: Option<Instant>,
}

impl SnapshotCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the mesh. Translates the key-independent resources of the services whose host
    /// was added, removed or changed once, recomputes those services' load assignments for
    /// every key in use, and publishes a new snapshot only to keys whose resources actually
    /// changed. Returns whether any service changed.
    ///
    /// # Caveats
    /// CPU-bound (translation happens here, under the cache lock, over a few threads when many
    /// services changed): call it from a blocking context for big meshes. Pass unchanged
    /// services as the same `Arc` to skip comparing them by value.
    pub fn set_mesh(&self, mesh: Mesh) -> bool {
        let at = Instant::now();
        let mut state = self.lock();
        let changed = changed_hosts(&state.mesh, &mesh);
        state.mesh = mesh;
        self.publish_changes(&mut state, changed, true, at)
    }

    /// Applies `changes` to the mesh: each host's service as it is now (`None`: gone). The
    /// same as [`SnapshotCache::set_mesh`] with a mesh that differs in those hosts alone, without
    /// looking at the others: O(changed hosts). Returns whether any service changed.
    pub fn update(&self, changes: impl IntoIterator<Item = HostChange>) -> bool {
        let at = Instant::now();
        let mut state = self.lock();
        let mut changed = Vec::new();
        let mut labels_may_change = false;
        for (host, svc) in changes {
            let old = match &svc {
                Some(svc) => state.mesh.services.insert(host.clone(), svc.clone()),
                None => state.mesh.services.remove(&host),
            };
            let same = match (&old, &svc) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
                (None, None) => true,
                _ => false,
            };
            if !same {
                labels_may_change |= [&old, &svc].into_iter().flatten().any(|s| names_labels(s));
                changed.push((host, svc));
            }
        }
        self.publish_changes(&mut state, changed, labels_may_change, at)
    }

    /// Translates and publishes `changed` hosts, already in `state.mesh`.
    fn publish_changes(
        &self,
        state: &mut State,
        changed: Vec<HostChange>,
        labels_may_change: bool,
        at: Instant,
    ) -> bool {
        state.keys.retain(|_, k| k.tx.receiver_count() > 0);
        let State { shared, keys, .. } = &mut *state;
        shared.endpoints.retain(keys.keys());
        shared.names.retain(keys.keys());
        if changed.is_empty() {
            return false;
        }
        if labels_may_change {
            let keys = failover_label_keys(&state.mesh);
            self.inner.label_keys.send_if_modified(|cur| {
                let modified = **cur != keys;
                if modified {
                    *cur = Arc::new(keys);
                }
                modified
            });
        }
        let State { shared, keys, .. } = &mut *state;
        let mut update = shared.apply(changed);
        update.at = Some(at);
        publish(keys, shared, &update);
        true
    }

    /// The key's snapshots: the current one at once, then each new one. The first watcher of
    /// a key pays for the key's load assignments; the key is dropped once no receiver is left.
    pub fn watch(&self, key: &ClientKey) -> watch::Receiver<Arc<Snapshot>> {
        let mut state = self.lock();
        // A key whose last stream just left is revived, not translated again.
        if let Some(ks) = state.keys.get(key) {
            return ks.tx.subscribe();
        }
        state.keys.retain(|_, k| k.tx.receiver_count() > 0);
        let State { mesh, shared, keys } = &mut *state;
        shared.endpoints.ensure(&key.network, mesh);
        shared.names.ensure(&key.network);
        let others: Vec<Arc<Snapshot>> = keys.values().map(|k| k.current()).collect();
        let (ks, rx) = KeyState::build(key, mesh, shared, &others);
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
    failover_label_keys_of(mesh.services.values().map(|s| &**s))
}

/// [`failover_label_keys`] of `services`, without a [`Mesh`] to hold them.
pub fn failover_label_keys_of<'a>(
    services: impl IntoIterator<Item = &'a GlobalService>,
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for svc in services {
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

/// Applies `update` to every key's snapshot, computing each key's load assignments of the
/// changed services, and publishes the snapshots that changed.
fn publish(keys: &HashMap<ClientKey, KeyState>, shared: &Shared, update: &Update) {
    let keys: Vec<(&ClientKey, &KeyState)> = keys.iter().collect();
    // Worth a few threads only when there are many load assignments to compute.
    let parallel = update.services.len() >= PARALLEL_MIN_SERVICES;
    let mut interner = Interner::default();
    // A batch at a time, so that at most one batch's load assignments wait to be interned.
    for batch in keys.chunks(cores()) {
        let eds: Vec<Vec<Resource>> = par_map(batch, parallel, |(key, _)| {
            let services = update.services.iter();
            services
                .flat_map(|svc| shared.endpoints.load_assignments(svc, key))
                .collect()
        });
        for ((_, ks), eds) in batch.iter().zip(eds) {
            let eds = eds.into_iter().map(|r| interner.intern(r));
            if let Some(snapshot) = ks.apply(shared, update, eds) {
                ks.tx.send_replace(Arc::new(snapshot));
            }
        }
    }
}

/// A host whose service was added (`Some`), changed (`Some`) or removed (`None`).
pub type HostChange = (String, Option<Arc<GlobalService>>);

/// Whether `svc`'s policy names client labels (Istio's `failoverPriority`).
fn names_labels(svc: &GlobalService) -> bool {
    matches!(&svc.locality, LocalityPolicy::Istio(s) if !s.failover_priority.is_empty())
}

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

/// Indexes into [`crate::resource::SNAPSHOT_TYPES`] (checked by a test).
const TYPE_CLUSTER: usize = 0;
const TYPE_ENDPOINT: usize = 1;
const TYPE_LISTENER: usize = 2;
const TYPE_ROUTE: usize = 3;
const TYPE_NAME_TABLE: usize = 5;

/// Services to translate from which the work is spread over threads.
const PARALLEL_MIN_SERVICES: usize = 16;

impl Default for Shared {
    /// The empty mesh's: no services, and a `meshfleet_outbound` route without virtual hosts.
    fn default() -> Self {
        let mut shared = Self {
            types: Default::default(),
            secure_clusters: Resources::default(),
            bound_listeners: Resources::default(),
            contributions: HashMap::new(),
            virtual_hosts: BTreeMap::new(),
            endpoints: EndpointViews::default(),
            names: NameTables::default(),
        };
        shared.types[TYPE_ROUTE].insert(Arc::new(outbound_route_encoded([])));
        shared
    }
}

impl Shared {
    /// Applies `changes`: the shared resources of each changed service replace what its host
    /// contributed before, and the outbound route is rebuilt once if any virtual host changed.
    fn apply(&mut self, changes: Vec<HostChange>) -> Update {
        let mut update = Update::default();
        let mut routes_changed = false;
        let parallel = changes.len() >= PARALLEL_MIN_SERVICES;
        let translated = par_map(&changes, parallel, |(_, svc)| {
            let mut res = svc.as_deref().map(translate_shared).unwrap_or_default();
            let vhosts = std::mem::take(&mut res.virtual_hosts);
            // Not `into_iter().collect()`: that would reuse the messages' allocation, ten times
            // the size of what it keeps.
            let mut encoded = Vec::with_capacity(vhosts.len());
            encoded.extend(vhosts.into_iter().map(EncodedVirtualHost::new));
            (res, encoded)
        });
        self.endpoints.refresh(&changes);
        update.changed[TYPE_NAME_TABLE] = self.names.refresh(&changes);
        for ((host, svc), (res, vhosts)) in changes.into_iter().zip(translated) {
            self.replace_service(&mut update, &host, svc.is_some(), res);
            routes_changed |= self.replace_virtual_hosts(&host, vhosts);
            update.services.extend(svc);
        }
        if routes_changed {
            let route = outbound_route_encoded(self.virtual_hosts.values().flatten());
            update.changed[TYPE_ROUTE] |= self.types[TYPE_ROUTE].insert(Arc::new(route)).1;
        }
        update
    }

    /// Puts the resources of `res` in place of what `host` contributed before (`present` =
    /// the service still exists); its virtual hosts are replaced apart.
    fn replace_service(
        &mut self,
        update: &mut Update,
        host: &str,
        present: bool,
        res: SharedResources,
    ) {
        let old = self.contributions.remove(host).unwrap_or_default();
        let SharedResources {
            clusters,
            secure_clusters,
            mut api_listeners,
            api_routes,
            service_listeners,
            bound_service_listeners,
            ..
        } = res;
        api_listeners.extend(service_listeners);
        let mut new = Contribution::default();
        // Per type: the resources every key gets, and those some keys get instead (named alike).
        let lists = [
            (TYPE_CLUSTER, clusters, secure_clusters),
            (TYPE_LISTENER, api_listeners, bound_service_listeners),
            (TYPE_ROUTE, api_routes, Vec::new()),
        ];
        for (ty, list, mut variants) in lists {
            for r in list {
                let r = Arc::new(r);
                if let Some(other) = self.variant_of(ty) {
                    let variant = match variants.iter().position(|s| s.name == r.name) {
                        Some(i) => Arc::new(variants.swap_remove(i)),
                        None => r.clone(),
                    };
                    update.changed[ty] |= other.insert(variant).1;
                }
                let (name, changed) = self.types[ty].insert(r);
                update.changed[ty] |= changed;
                new.names[ty].push(name);
            }
            for name in &old.names[ty] {
                if !new.names[ty].contains(name) {
                    update.changed[ty] |= self.types[ty].remove(name);
                    if let Some(other) = self.variant_of(ty) {
                        other.remove(name);
                    }
                    if ty == TYPE_CLUSTER {
                        update.stale.push(name.clone());
                    }
                }
            }
        }
        if present {
            self.contributions.insert(host.to_owned(), new);
        }
    }

    /// Puts `vhosts` in place of `host`'s; returns whether they changed.
    fn replace_virtual_hosts(&mut self, host: &str, vhosts: Vec<EncodedVirtualHost>) -> bool {
        if vhosts.is_empty() {
            return self.virtual_hosts.remove(host).is_some();
        }
        if self.virtual_hosts.get(host) == Some(&vhosts) {
            return false;
        }
        self.virtual_hosts.insert(host.to_owned(), vhosts);
        true
    }

    /// The resources of type `ty` that some keys get instead of `types[ty]`: CDS for secure
    /// keys, LDS for keys that bind virtual IPs.
    fn variant_of(&mut self, ty: usize) -> Option<&mut Resources> {
        match ty {
            TYPE_CLUSTER => Some(&mut self.secure_clusters),
            TYPE_LISTENER => Some(&mut self.bound_listeners),
            _ => None,
        }
    }

    /// CDS for clients with (`secure`) or without a verified identity.
    fn clusters(&self, secure: bool) -> &Resources {
        if secure {
            &self.secure_clusters
        } else {
            &self.types[TYPE_CLUSTER]
        }
    }

    /// The shared listeners (with virtual IPs bound: `bind`) plus `outbound`: copies only the
    /// shard `outbound` lands in.
    fn listeners(&self, outbound: &Arc<Resource>, bind: bool) -> Resources {
        let shared = if bind {
            &self.bound_listeners
        } else {
            &self.types[TYPE_LISTENER]
        };
        let mut listeners = shared.clone();
        listeners.insert(outbound.clone());
        listeners
    }
}

impl KeyState {
    /// A key's state and first snapshot: the shared resources, the key's outbound listener
    /// and the whole mesh's load assignments for `key`, sharing those equal to one in `others`.
    fn build(
        key: &ClientKey,
        mesh: &Mesh,
        shared: &Shared,
        others: &[Arc<Snapshot>],
    ) -> (Self, watch::Receiver<Arc<Snapshot>>) {
        let listener = Arc::new(outbound_listener(key));
        let mut snapshot = Snapshot {
            generation: 1,
            ..Snapshot::default()
        };
        snapshot.types[TYPE_CLUSTER] = shared.clusters(key.secure).clone();
        snapshot.types[TYPE_ROUTE] = shared.types[TYPE_ROUTE].clone();
        snapshot.types[TYPE_LISTENER] = shared.listeners(&listener, key.bind_vips);
        snapshot.types[TYPE_NAME_TABLE].insert(shared.names.table(&key.network));
        let services: Vec<&Arc<GlobalService>> = mesh.services.values().collect();
        let parallel = services.len() >= PARALLEL_MIN_SERVICES;
        let eds = par_map(&services, parallel, |svc| {
            shared.endpoints.load_assignments(svc, key)
        });
        let resources = &mut snapshot.types[TYPE_ENDPOINT];
        let clusters = Some(&shared.types[TYPE_CLUSTER]);
        for r in eds.into_iter().flatten() {
            resources.insert_named(shared_with(others, r), clusters);
        }
        snapshot.finish();
        let (tx, rx) = watch::channel(Arc::new(snapshot));
        let secure = key.secure;
        (
            Self {
                tx,
                listener,
                secure,
                network: key.network.clone(),
                bind_vips: key.bind_vips,
            },
            rx,
        )
    }

    /// The snapshot last published.
    fn current(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// The next snapshot after `update`, given the key's load assignments of the services it
    /// changed; `None` if the key's resources did not change.
    fn apply(
        &self,
        shared: &Shared,
        update: &Update,
        eds: impl IntoIterator<Item = Arc<Resource>>,
    ) -> Option<Snapshot> {
        let mut snapshot = Snapshot::clone(&self.current());
        let mut changed = false;
        let resources = &mut snapshot.types[TYPE_ENDPOINT];
        for name in &update.stale {
            changed |= resources.remove(name);
        }
        for r in eds {
            changed |= resources
                .insert_named(r, Some(&shared.types[TYPE_CLUSTER]))
                .1;
        }
        if update.changed[TYPE_CLUSTER] {
            snapshot.types[TYPE_CLUSTER] = shared.clusters(self.secure).clone();
        }
        if update.changed[TYPE_ROUTE] {
            snapshot.types[TYPE_ROUTE] = shared.types[TYPE_ROUTE].clone();
        }
        if update.changed[TYPE_LISTENER] {
            snapshot.types[TYPE_LISTENER] = shared.listeners(&self.listener, self.bind_vips);
        }
        if update.changed[TYPE_NAME_TABLE] {
            snapshot.types[TYPE_NAME_TABLE].insert(shared.names.table(&self.network));
        }
        if !changed && !update.changed.contains(&true) {
            return None;
        }
        snapshot.generation += 1;
        snapshot.changed_at = update.at;
        snapshot.finish();
        Some(snapshot)
    }
}

/// `f` over `items`, in order, spread over one thread per core when `parallel`.
fn par_map<T: Sync, R: Send>(items: &[T], parallel: bool, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let min_per_thread = if parallel { 1 } else { items.len() };
    meshfleet_model::parallel::map_ordered(items, min_per_thread, f)
}

fn cores() -> usize {
    meshfleet_model::parallel::cores()
}
