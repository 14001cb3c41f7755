//! The cache's EDS: each service's endpoints encoded once per network some key is on, and the
//! load assignments keys assemble from them, kept once however many keys computed them.
//!
//! ```text
//!  set_mesh: changed service ──> ServiceEndpoints::new per network in use ──┐
//!  watch(key on a new network) ──> ServiceEndpoints::new per service ────────┤
//!                                                                             v
//!  per key: ServiceEndpoints::load_assignments(svc, key) ──> rope of shared chunks ──> intern
//! ```
//!
//! The encoded endpoints are what dominates EDS memory; keys hold ropes pointing into them, and
//! keys that see a service alike hold one rope (see [`Interner`] and [`shared_with`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{HostChange, PARALLEL_MIN_SERVICES, TYPE_ENDPOINT, par_map};
use crate::cache::Snapshot;
use crate::model::{ClientKey, GlobalService, Mesh};
use crate::resource::Resource;
use crate::translate::{ServiceEndpoints, load_assignments};

/// Encoded endpoints of every service, per network.
#[derive(Default)]
pub(super) struct EndpointViews {
    /// Network → host → that service's endpoints as the network's clients see them. Only
    /// networks of keys in use are kept, and updated on every service change.
    by_network: HashMap<String, HashMap<String, ServiceEndpoints>>,
}

impl EndpointViews {
    /// Encodes every service of `mesh` for `network`, unless that is done already.
    pub(super) fn ensure(&mut self, network: &str, mesh: &Mesh) {
        if self.by_network.contains_key(network) {
            return;
        }
        let services: Vec<&Arc<GlobalService>> = mesh.services.values().collect();
        let parallel = services.len() >= PARALLEL_MIN_SERVICES;
        let views = par_map(&services, parallel, |svc| {
            (svc.host.clone(), ServiceEndpoints::new(svc, network))
        });
        self.by_network
            .insert(network.to_owned(), views.into_iter().collect());
    }

    /// Re-encodes the services of `changes` for every network kept; forgets removed ones.
    pub(super) fn refresh(&mut self, changes: &[HostChange]) {
        let parallel = changes.len() >= PARALLEL_MIN_SERVICES;
        for (network, views) in &mut self.by_network {
            let encoded = par_map(changes, parallel, |(_, svc)| {
                svc.as_deref()
                    .map(|svc| ServiceEndpoints::new(svc, network))
            });
            for ((host, _), view) in changes.iter().zip(encoded) {
                match view {
                    Some(view) => views.insert(host.clone(), view),
                    None => views.remove(host),
                };
            }
        }
    }

    /// Forgets the networks no key in `keys` is on.
    pub(super) fn retain<'a>(&mut self, keys: impl IntoIterator<Item = &'a ClientKey>) {
        let in_use: BTreeSet<&str> = keys.into_iter().map(|k| k.network.as_str()).collect();
        self.by_network
            .retain(|network, _| in_use.contains(network.as_str()));
    }

    /// The load assignments of `svc` for `key`, from the encoded endpoints of `key.network`
    /// (encoded on the spot if the network is not kept, which callers avoid).
    pub(super) fn load_assignments(&self, svc: &GlobalService, key: &ClientKey) -> Vec<Resource> {
        match self
            .by_network
            .get(&key.network)
            .and_then(|views| views.get(&svc.host))
        {
            Some(view) => view.load_assignments(svc, key),
            None => load_assignments(svc, key),
        }
    }
}

/// Load assignments of one update, each kept once however many keys computed it: clients in
/// localities that see a service alike (often most of them) share one allocation.
#[derive(Default)]
pub(super) struct Interner {
    /// By version (the body's hash); equal versions are checked by name and body.
    seen: HashMap<String, Vec<Arc<Resource>>>,
}

impl Interner {
    pub(super) fn intern(&mut self, r: Resource) -> Arc<Resource> {
        let same = self.seen.entry(r.version.clone()).or_default();
        if let Some(found) = same.iter().find(|e| ***e == r) {
            return found.clone();
        }
        let r = Arc::new(r);
        same.push(r.clone());
        r
    }
}

/// `r`, or the equal load assignment one of `others` already holds.
pub(super) fn shared_with(others: &[Arc<Snapshot>], r: Resource) -> Arc<Resource> {
    others
        .iter()
        .find_map(|o| {
            o.types[TYPE_ENDPOINT]
                .get(&r.name)
                .filter(|e| e.version == r.version && ***e == r)
        })
        .cloned()
        .unwrap_or_else(|| Arc::new(r))
}
