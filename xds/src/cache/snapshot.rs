//! One client key's resources at one moment, and how a subscription selects from them.
//!
//! Each type's resources are split into [`SHARDS`] maps by a hash of the name. A new snapshot
//! shares every shard it did not touch with the one before, so building it costs
//! O(changed resources), and so does comparing two snapshots ([`Snapshot::changes_since`]):
//! shards that are the same allocation are skipped without looking inside.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::resource::{CLUSTER, LISTENER, NAME_TABLE, Resource, SNAPSHOT_TYPES, TYPES};
use crate::translate::{OUTBOUND, is_service_listener};

/// Number of shards per type: enough that one endpoint change copies a few dozen entries of a
/// 10,000-cluster snapshot, few enough that an empty snapshot stays small.
pub const SHARDS: usize = 128;

type Shard = BTreeMap<Arc<str>, Arc<Resource>>;

/// The index of `type_url` in [`SNAPSHOT_TYPES`], if it is a type a snapshot holds.
pub fn type_index(type_url: &str) -> Option<usize> {
    SNAPSHOT_TYPES.iter().position(|t| *t == type_url)
}

/// The resources of one type, sharded by name.
#[derive(Clone, Debug)]
pub(crate) struct Resources {
    /// `SHARDS` maps; untouched ones are shared with earlier snapshots.
    shards: Vec<Arc<Shard>>,
    /// Number of resources over all shards.
    len: usize,
    /// Wrapping sum of the hashes of every `(name, version)` pair: order-independent, so it
    /// can be kept up to date per change and equal content gives an equal digest everywhere.
    digest: u128,
}

impl Default for Resources {
    fn default() -> Self {
        let empty = Arc::new(Shard::new());
        Self {
            shards: vec![empty; SHARDS],
            len: 0,
            digest: 0,
        }
    }
}

fn shard_of(name: &str) -> usize {
    (xxh3_64(name.as_bytes()) % SHARDS as u64) as usize
}

fn pair_hash(name: &str, version: &str) -> u128 {
    let mut h = Xxh3::new();
    h.update(name.as_bytes());
    h.update(&[0xff]);
    h.update(version.as_bytes());
    h.digest128()
}

impl Resources {
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Resource>> {
        self.shards[shard_of(name)].get(name)
    }

    fn key(&self, name: &str) -> Option<&Arc<str>> {
        self.shards[shard_of(name)]
            .get_key_value(name)
            .map(|(k, _)| k)
    }

    /// Inserts `res` unless a resource of that name and version is already there. Returns the
    /// stored name and whether anything changed.
    pub(crate) fn insert(&mut self, res: Arc<Resource>) -> (Arc<str>, bool) {
        self.insert_named(res, None)
    }

    /// [`Resources::insert`], naming a new entry with `names`' copy of the name if it has one:
    /// load assignments are named like clusters, so every key's EDS shares the CDS names.
    pub(crate) fn insert_named(
        &mut self,
        res: Arc<Resource>,
        names: Option<&Self>,
    ) -> (Arc<str>, bool) {
        let i = shard_of(&res.name);
        if let Some((name, old)) = self.shards[i].get_key_value(res.name.as_str())
            && old.version == res.version
        {
            return (name.clone(), false);
        }
        let shard = Arc::make_mut(&mut self.shards[i]);
        let name = match shard.get_key_value(res.name.as_str()) {
            Some((name, old)) => {
                self.digest = self.digest.wrapping_sub(pair_hash(name, &old.version));
                name.clone()
            }
            None => {
                self.len += 1;
                names
                    .and_then(|n| n.key(&res.name))
                    .cloned()
                    .unwrap_or_else(|| Arc::from(res.name.as_str()))
            }
        };
        self.digest = self.digest.wrapping_add(pair_hash(&name, &res.version));
        shard.insert(name.clone(), res);
        (name, true)
    }

    /// Removes `name`; returns whether it was there.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        let i = shard_of(name);
        if !self.shards[i].contains_key(name) {
            return false;
        }
        if let Some(old) = Arc::make_mut(&mut self.shards[i]).remove(name) {
            self.digest = self.digest.wrapping_sub(pair_hash(name, &old.version));
            self.len -= 1;
        }
        true
    }

    fn version(&self) -> String {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(&self.digest.to_le_bytes());
        bytes[16..].copy_from_slice(&(self.len as u64).to_le_bytes());
        format!("{:016x}", xxh3_64(&bytes))
    }

    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<Resource>)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

/// A name whose resource differs between two snapshots.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<'a> {
    pub name: &'a Arc<str>,
    /// The resource in the later snapshot; `None` = removed.
    pub now: Option<&'a Arc<Resource>>,
}

/// Everything one client key is served, per type in [`SNAPSHOT_TYPES`].
///
/// # Guarantees
/// - Versions are content hashes: two instances with equal input have equal versions.
/// - A snapshot never changes once published; the cache publishes a new one.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Counts published snapshots of this key: lets streams and tests tell them apart.
    pub(crate) generation: u64,
    /// Resources per type, indexed like [`SNAPSHOT_TYPES`].
    pub(crate) types: [Resources; TYPES],
    /// Per-type version strings, derived from `types` when the snapshot is finished.
    pub(crate) versions: [String; TYPES],
    /// When the cache was handed the change this snapshot publishes (`None` for a key's first
    /// snapshot): streams measure convergence from it.
    pub(crate) changed_at: Option<Instant>,
}

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn changed_at(&self) -> Option<Instant> {
        self.changed_at
    }

    /// The content version of `type_url`; empty for a type a snapshot does not hold.
    pub fn version(&self, type_url: &str) -> &str {
        type_index(type_url).map_or("", |i| &self.versions[i])
    }

    pub fn get(&self, type_url: &str, name: &str) -> Option<&Arc<Resource>> {
        self.types[type_index(type_url)?].get(name)
    }

    pub fn len(&self, type_url: &str) -> usize {
        type_index(type_url).map_or(0, |i| self.types[i].len)
    }

    /// All resources of `type_url`, in a fixed order (shard, then name).
    pub fn iter(&self, type_url: &str) -> impl Iterator<Item = &Arc<Resource>> {
        type_index(type_url)
            .into_iter()
            .flat_map(|i| self.types[i].iter().map(|(_, r)| r))
    }

    /// The resources of `type_url` that `subscription` selects, sorted by name for named
    /// subscriptions. Names that do not exist are left out.
    pub fn resources(&self, type_url: &str, subscription: &Subscription) -> Vec<Arc<Resource>> {
        let Some(i) = type_index(type_url) else {
            return Vec::new();
        };
        if subscription.wildcard {
            return self.types[i]
                .iter()
                .filter(|(name, _)| subscription.matches(type_url, name))
                .map(|(_, r)| r.clone())
                .collect();
        }
        let mut names: Vec<&str> = subscription.names.iter().map(|n| &**n).collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|n| self.types[i].get(n).cloned())
            .collect()
    }

    /// Names of `type_url` whose resource differs between `earlier` and `self`: added,
    /// updated or removed. Costs O(shards + entries of the shards that differ).
    pub fn changes_since<'a>(&'a self, earlier: &'a Self, type_url: &str) -> Vec<Change<'a>> {
        let Some(i) = type_index(type_url) else {
            return Vec::new();
        };
        let (now, before) = (&self.types[i], &earlier.types[i]);
        let mut out = Vec::new();
        for (a, b) in now.shards.iter().zip(&before.shards) {
            if !Arc::ptr_eq(a, b) {
                diff_shard(a, b, &mut out);
            }
        }
        out
    }

    /// The snapshot's own copy of `name` if it has a resource so named, so that subscriptions
    /// of many streams share one allocation per name.
    pub fn intern(&self, type_url: &str, name: &str) -> Arc<str> {
        type_index(type_url)
            .and_then(|i| self.types[i].key(name))
            .cloned()
            .unwrap_or_else(|| Arc::from(name))
    }

    /// This snapshot with `resources` as the whole of `type_url`: a stream's own secrets over
    /// its key's snapshot. Every other type shares its shards with `self`.
    pub fn overlay(&self, type_url: &str, resources: &[Arc<Resource>]) -> Self {
        let mut out = self.clone();
        if let Some(i) = type_index(type_url) {
            let mut own = Resources::default();
            for r in resources {
                own.insert(r.clone());
            }
            out.versions[i] = own.version();
            out.types[i] = own;
        }
        out
    }

    /// Recomputes the per-type versions; called once per published snapshot.
    pub(crate) fn finish(&mut self) {
        for (v, r) in self.versions.iter_mut().zip(&self.types) {
            *v = r.version();
        }
    }
}

fn diff_shard<'a>(now: &'a Shard, before: &'a Shard, out: &mut Vec<Change<'a>>) {
    for (name, res) in now {
        match before.get(name) {
            Some(old) if Arc::ptr_eq(old, res) || old.version == res.version => {}
            _ => out.push(Change {
                name,
                now: Some(res),
            }),
        }
    }
    for name in before.keys() {
        if !now.contains_key(name) {
            out.push(Change { name, now: None });
        }
    }
}

/// Which resources of one type a client asked for.
///
/// Wildcard semantics (meshfleet's): CDS wildcard = every cluster; LDS wildcard = the
/// `meshfleet_outbound` listener and the listeners of virtual IPs (`<VIP>_<port>`; API
/// listeners for proxyless gRPC are served by name); the name table's = its one resource; EDS
/// and RDS are by name only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The client subscribed to the type's wildcard (empty initial list, or `*`).
    pub wildcard: bool,
    /// Names subscribed explicitly.
    pub names: HashSet<Arc<str>>,
}

impl Subscription {
    pub fn wildcard() -> Self {
        Self {
            wildcard: true,
            names: HashSet::new(),
        }
    }

    /// A subscription from a SotW `resource_names` list (or a Delta initial subscribe list):
    /// empty or `*` means wildcard for CDS and LDS. Names are interned from `snapshot`.
    pub fn from_names<S: AsRef<str>>(type_url: &str, names: &[S], snapshot: &Snapshot) -> Self {
        let wildcard_type = Self::has_wildcard(type_url);
        let mut sub = Self {
            wildcard: wildcard_type && names.is_empty(),
            names: HashSet::with_capacity(names.len()),
        };
        for name in names {
            match name.as_ref() {
                "*" => sub.wildcard = wildcard_type,
                n => {
                    sub.names.insert(snapshot.intern(type_url, n));
                }
            }
        }
        sub
    }

    /// Whether `type_url` has a wildcard subscription (CDS, LDS and the name table).
    pub fn has_wildcard(type_url: &str) -> bool {
        type_url == CLUSTER || type_url == LISTENER || type_url == NAME_TABLE
    }

    /// Whether a resource `name` of `type_url` is selected.
    pub fn matches(&self, type_url: &str, name: &str) -> bool {
        self.names.contains(name)
            || (self.wildcard
                && match type_url {
                    CLUSTER | NAME_TABLE => true,
                    LISTENER => name == OUTBOUND || is_service_listener(name),
                    _ => false,
                })
    }
}
