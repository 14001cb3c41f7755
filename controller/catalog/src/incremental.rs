//! The catalog kept up to date with the index, one change at a time.
//!
//! ```text
//!  Index::changes_since(seen) ──> keys changed ──collect (index locked: Arc clones only)──> Work
//!    Service, ServiceExport ──> that (namespace, name)                                       │
//!    EndpointSlice ──────────> the service it named before and the one it names now          │
//!    Cluster ────────────────> topology again; services with slices in a moved cluster       │
//!    DestinationRule ────────> rules again; services whose rule differs                      │
//!  Work ──build (no lock: endpoints, ports, policy, on every core)──> entries ──> Catalog
//! ```
//!
//! # Guarantees
//! - The catalog equals a full build of the same index ([`Catalog::build`] is this, from
//!   nothing), whatever the sequence of changes (checked by a test on random sequences).
//! - Work is proportional to the services a change touches, plus the topology or the rules when
//!   a Cluster or a DestinationRule changed. The index is locked only while the changed objects
//!   are read ([`Incremental::collect`]), never while services are built.
//!
//! # Caveats
//! When the index's change log no longer reaches back to what was seen (it was trimmed past
//! it), everything is collected and built again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use meshfleet_api::{DestinationRule, EndpointSlice, ObjectKey, Service, ServiceExport};
use meshfleet_index::{Index, kinds};
use meshfleet_model::problem::{Problem, Source};
use meshfleet_model::{GlobalService, parallel};

use crate::istio::Rules;
use crate::topology::{GatewayAddresses, Topology};
use crate::vip::{DEFAULT_V4, DEFAULT_V6, Range};
use crate::{
    Catalog, CatalogService, Export, ExportReason, Parts, build_service, global_annotation,
};

/// Below this many services per core the services are built on one thread.
const SERVICES_PER_THREAD: usize = 256;

/// A global service's key: namespace and name (namespace sameness).
pub type ServiceKey = (Arc<str>, Arc<str>);

/// The catalog and what it was built from, updated by the changes of the index. See the
/// module docs.
#[derive(Debug, Default)]
pub struct Incremental {
    /// The index generation the catalog reflects; `None` before the first build.
    seen: Option<u64>,
    /// EndpointSlices by the service they name, each by key (the order a full build reads them).
    slices: HashMap<ServiceKey, BTreeMap<ObjectKey, Arc<EndpointSlice>>>,
    /// The service each slice named when last seen: where to find it when it changes or goes.
    slice_owner: HashMap<ObjectKey, ServiceKey>,
    /// Where each cluster is, and what was wrong with the Clusters.
    topology: Arc<Topology>,
    topology_problems: Vec<Problem>,
    /// Every DestinationRule, as last read.
    destination_rules: Vec<Arc<DestinationRule>>,
    /// The rule of each exported service, and what was wrong with the rules' hosts.
    rules: Rules,
    rule_problems: Vec<Problem>,
    /// Every (namespace, name) with a Service or a ServiceExport: its global service when it is
    /// exported, and the problems found building it.
    entries: BTreeMap<ServiceKey, Entry>,
    /// The exported services by host: the catalog's order, kept as entries change.
    by_host: BTreeMap<String, Arc<CatalogService>>,
    /// Hosts whose global service changed since [`Incremental::take_changes`] was last called:
    /// its new service, `None` when it is gone.
    changed: BTreeMap<String, Option<Arc<GlobalService>>>,
    /// Virtual IPs of the ClusterSetIP services.
    vips: Vips,
    /// What the east-west gateways given by hostname resolved to.
    gateway_addresses: GatewayAddresses,
    /// The addresses changed since the topology was last read: read it again.
    gateways_moved: bool,
}

/// The virtual IPs of the catalog's ClusterSetIP services: allocated from the whole set of
/// such hosts (see [`crate::vip`]), again only when that set changes, so that an incremental
/// build gives what a full build gives.
#[derive(Debug)]
struct Vips {
    v4: Range,
    v6: Range,
    /// Hosts that get a virtual IP of each family.
    eligible: BTreeMap<String, (bool, bool)>,
    /// Their addresses.
    assigned: BTreeMap<String, (Option<Ipv4Addr>, Option<Ipv6Addr>)>,
}

impl Default for Vips {
    fn default() -> Self {
        Self {
            v4: DEFAULT_V4.parse().expect("a valid range"),
            v6: DEFAULT_V6.parse().expect("a valid range"),
            eligible: BTreeMap::new(),
            assigned: BTreeMap::new(),
        }
    }
}

impl Vips {
    /// Which families of virtual IP `service` gets: none for a headless one.
    fn families(service: &GlobalService) -> (bool, bool) {
        let dns = &service.dns;
        (!dns.headless && dns.ipv4, !dns.headless && dns.ipv6)
    }

    /// Records `host` as built (`None`: gone); returns whether the set of hosts changed.
    fn track(&mut self, host: &str, now: Option<(bool, bool)>) -> bool {
        let before = match now {
            Some(families) => self.eligible.insert(host.to_owned(), families),
            None => self.eligible.remove(host),
        };
        before != now
    }

    /// Allocates again from the current set.
    fn allocate(&mut self) {
        let hosts = |v6: bool| {
            self.eligible
                .iter()
                .filter(move |(_, (a, b))| if v6 { *b } else { *a })
                .map(|(h, _)| h.as_str())
        };
        let v4 = self.v4.allocate(hosts(false));
        let v6 = self.v6.allocate(hosts(true));
        self.assigned = self
            .eligible
            .keys()
            .map(|host| {
                let v4 = v4.get(host).and_then(|ip| match ip {
                    IpAddr::V4(ip) => Some(*ip),
                    IpAddr::V6(_) => None,
                });
                let v6 = v6.get(host).and_then(|ip| match ip {
                    IpAddr::V6(ip) => Some(*ip),
                    IpAddr::V4(_) => None,
                });
                (host.clone(), (v4, v6))
            })
            .collect();
    }

    fn of(&self, host: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        self.assigned.get(host).copied().unwrap_or_default()
    }
}

/// `service` with the virtual IPs `vips`.
fn with_vips(
    service: &GlobalService,
    (v4, v6): (Option<Ipv4Addr>, Option<Ipv6Addr>),
) -> GlobalService {
    let mut service = service.clone();
    service.dns.vip = v4;
    service.dns.vip6 = v6;
    service
}

/// One (namespace, name) of the catalog.
#[derive(Debug)]
struct Entry {
    service: Option<Arc<CatalogService>>,
    problems: Vec<Problem>,
}

/// What changed, read from the index: the inputs of every service to build again.
#[derive(Debug)]
pub struct Work {
    /// The index generation read.
    generation: u64,
    /// The topology, when a Cluster changed.
    topology: Option<(Topology, Vec<Problem>)>,
    /// The rules (all DestinationRules, the rule per service, problems), when they changed.
    rules: Option<(Vec<Arc<DestinationRule>>, Rules, Vec<Problem>)>,
    /// Services to build again with their inputs; `None`: nothing of that name is left.
    services: Vec<(ServiceKey, Option<Inputs>)>,
}

impl Work {
    /// The index generation this work brings the catalog to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many services are built again.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.topology.is_none() && self.rules.is_none()
    }
}

/// Everything one service is built from.
#[derive(Debug)]
struct Inputs {
    export: Export,
    /// Problems with its Services' and ServiceExport's annotations and names.
    problems: Vec<Problem>,
    slices: Vec<Arc<EndpointSlice>>,
    rule: Option<Arc<DestinationRule>>,
}

impl Incremental {
    /// The index generation the catalog reflects, once built.
    pub fn generation(&self) -> Option<u64> {
        self.seen
    }

    /// Reads from `index` what changed since the last build (everything, the first time):
    /// the changed objects and the inputs of each service they touch. Cheap (it clones
    /// `Arc`s), so it can run while the index is locked; [`Incremental::build`] does the work.
    pub fn collect(&mut self, index: &Index) -> Work {
        let generation = index.generation();
        let changes = self.seen.and_then(|seen| index.changes_since(seen));
        let mut dirty = BTreeSet::new();
        let (mut clusters_changed, mut rules_changed) = (changes.is_none(), changes.is_none());
        match changes {
            None => {
                self.slices.clear();
                self.slice_owner.clear();
                for slice in index.endpoint_slices() {
                    let key = ObjectKey::of(&slice.api_version, "EndpointSlice", &slice.metadata);
                    dirty.extend(self.track_slice(key, Some(slice)));
                }
                dirty.extend(self.entries.keys().cloned());
                dirty.extend(index.services().map(|s| service_key(&s.metadata)));
                dirty.extend(index.service_exports().map(|e| service_key(&e.metadata)));
            }
            Some(changes) => {
                for key in changes {
                    match &*key.kind {
                        kinds::SERVICE | kinds::SERVICE_EXPORT => {
                            dirty.insert((key.namespace.clone(), key.name.clone()));
                        }
                        kinds::ENDPOINT_SLICE => {
                            let slice = match index.get(key) {
                                Some(meshfleet_api::Object::EndpointSlice(s)) => Some(s),
                                _ => None,
                            };
                            dirty.extend(self.track_slice(key.clone(), slice));
                        }
                        kinds::CLUSTER => clusters_changed = true,
                        kinds::DESTINATION_RULE => rules_changed = true,
                        _ => {}
                    }
                }
            }
        }
        let topology = (clusters_changed || std::mem::take(&mut self.gateways_moved)).then(|| {
            let mut problems = Vec::new();
            let topology = Topology::new(index.clusters(), &self.gateway_addresses, &mut problems);
            dirty.extend(self.moved(&topology));
            (topology, problems)
        });
        let mut exports: BTreeMap<ServiceKey, Option<(Export, Vec<Problem>)>> = dirty
            .into_iter()
            .map(|key| {
                let export = export_of(index, &key);
                (key, export)
            })
            .collect();
        let rules = self.rules_after(index, rules_changed, &exports);
        if let Some((_, new_rules, _)) = &rules {
            for (namespace, name) in self.rules.changed_services(new_rules) {
                exports
                    .entry((Arc::from(namespace), Arc::from(name)))
                    .or_insert_with_key(|key| export_of(index, key));
            }
        }
        let rule_of = |key: &ServiceKey| {
            let rules = rules.as_ref().map_or(&self.rules, |(_, r, _)| r);
            rules.get(&key.0, &key.1).cloned()
        };
        let services = exports
            .into_iter()
            .map(|(key, export)| {
                let inputs = export.map(|(export, problems)| Inputs {
                    slices: self
                        .slices
                        .get(&key)
                        .map(|s| s.values().cloned().collect())
                        .unwrap_or_default(),
                    rule: rule_of(&key),
                    export,
                    problems,
                });
                (key, inputs)
            })
            .collect();
        Work {
            generation,
            topology,
            rules,
            services,
        }
    }

    /// An empty catalog whose ClusterSetIP services get virtual IPs from `v4` and `v6`
    /// (`Default`: Istio's `240.240.0.0/16` and `2001:2::/48`).
    pub fn with_vip_ranges(v4: Range, v6: Range) -> Self {
        Self {
            vips: Vips {
                v4,
                v6,
                ..Vips::default()
            },
            ..Self::default()
        }
    }

    /// Takes what the east-west gateway hostnames resolve to now; the next
    /// [`Incremental::collect`] reads the topology again if that changed anything. Returns
    /// whether it did.
    pub fn set_gateway_addresses(&mut self, addresses: GatewayAddresses) -> bool {
        if addresses == self.gateway_addresses {
            return false;
        }
        self.gateway_addresses = addresses;
        self.gateways_moved = true;
        true
    }

    /// Builds the services `work` names (on every core), and returns the whole catalog.
    pub fn build(&mut self, work: Work) -> Catalog {
        if let Some((topology, problems)) = work.topology {
            self.topology = Arc::new(topology);
            self.topology_problems = problems;
        }
        if let Some((destination_rules, rules, problems)) = work.rules {
            self.destination_rules = destination_rules;
            self.rules = rules;
            self.rule_problems = problems;
        }
        let topology = &self.topology;
        let mut built =
            parallel::map_ordered(&work.services, SERVICES_PER_THREAD, |(key, inputs)| {
                inputs
                    .as_ref()
                    .map(|inputs| build_entry(key, inputs, topology))
            });
        // A key's host is its own: `<name>.<namespace>.global`.
        let host_of = |key: &ServiceKey| format!("{}.{}.global", key.1, key.0);
        let mut reallocate = false;
        for ((key, _), entry) in work.services.iter().zip(&built) {
            let families = entry
                .as_ref()
                .and_then(|e| e.service.as_ref())
                .map(|s| Vips::families(&s.service));
            reallocate |= self.vips.track(&host_of(key), families);
        }
        if reallocate {
            self.vips.allocate();
        }
        // The services just built are this build's own: their virtual IPs are set in place.
        for ((key, _), entry) in work.services.iter().zip(&mut built) {
            let vips = self.vips.of(&host_of(key));
            if let Some(service) = entry.as_mut().and_then(|e| e.service.as_mut())
                && (service.service.dns.vip, service.service.dns.vip6) != vips
            {
                // Fresh from this build: set in place, without copying the endpoints.
                let entry = Arc::make_mut(service);
                match Arc::get_mut(&mut entry.service) {
                    Some(global) => (global.dns.vip, global.dns.vip6) = vips,
                    None => entry.service = Arc::new(with_vips(&entry.service, vips)),
                }
            }
        }
        let rebuilt: BTreeSet<String> = work.services.iter().map(|(k, _)| host_of(k)).collect();
        for ((key, _), entry) in work.services.into_iter().zip(built) {
            let host = host_of(&key);
            let now = entry.as_ref().and_then(|e| e.service.clone());
            let before = match &now {
                Some(service) => self.by_host.insert(host.clone(), service.clone()),
                None => self.by_host.remove(&host),
            };
            let differs = match (&before, &now) {
                (Some(a), Some(b)) => !Arc::ptr_eq(&a.service, &b.service),
                (None, None) => false,
                _ => true,
            };
            if differs {
                self.changed.insert(host, now.map(|s| s.service.clone()));
            }
            match entry {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
        if reallocate {
            self.move_vips(&rebuilt);
        }
        self.seen = Some(work.generation);
        self.catalog()
    }

    /// After an allocation, the services not built this time whose virtual IPs moved.
    fn move_vips(&mut self, rebuilt: &BTreeSet<String>) {
        let moved: Vec<(String, Arc<CatalogService>)> = self
            .by_host
            .iter()
            .filter(|(host, _)| !rebuilt.contains(*host))
            .filter_map(|(host, entry)| {
                let vips = self.vips.of(host);
                let dns = &entry.service.dns;
                ((dns.vip, dns.vip6) != vips).then(|| {
                    let mut entry = CatalogService::clone(entry);
                    entry.service = Arc::new(with_vips(&entry.service, vips));
                    (host.clone(), Arc::new(entry))
                })
            })
            .collect();
        for (host, entry) in moved {
            let key: ServiceKey = (
                Arc::from(entry.service.namespace.as_str()),
                Arc::from(entry.service.name.as_str()),
            );
            if let Some(e) = self.entries.get_mut(&key) {
                e.service = Some(entry.clone());
            }
            self.changed
                .insert(host.clone(), Some(entry.service.clone()));
            self.by_host.insert(host, entry);
        }
    }

    /// The global services changed by the builds since the last call, by host (`None`: gone):
    /// what the xDS cache needs to hear of, and nothing else.
    pub fn take_changes(&mut self) -> Vec<(String, Option<Arc<GlobalService>>)> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// The catalog as it stands: services by host; problems of the Clusters, of the rules'
    /// hosts, then of each service in (namespace, name) order.
    fn catalog(&self) -> Catalog {
        let services = self.by_host.values().cloned().collect();
        let problems = self
            .topology_problems
            .iter()
            .chain(&self.rule_problems)
            .chain(self.entries.values().flat_map(|e| &e.problems))
            .cloned()
            .collect();
        Catalog { services, problems }
    }

    /// Follows one slice to its current state (`None`: gone). Returns the services it named
    /// before and names now.
    fn track_slice(
        &mut self,
        key: ObjectKey,
        slice: Option<&Arc<EndpointSlice>>,
    ) -> Vec<ServiceKey> {
        let mut touched = Vec::new();
        if let Some(owner) = self.slice_owner.remove(&key) {
            if let Some(slices) = self.slices.get_mut(&owner) {
                slices.remove(&key);
                if slices.is_empty() {
                    self.slices.remove(&owner);
                }
            }
            touched.push(owner);
        }
        let owner = slice.and_then(|s| {
            let service = s.service_name()?;
            Some((s.clone(), (key.namespace.clone(), Arc::from(service))))
        });
        if let Some((slice, owner)) = owner {
            self.slices
                .entry(owner.clone())
                .or_default()
                .insert(key.clone(), slice);
            self.slice_owner.insert(key, owner.clone());
            touched.push(owner);
        }
        touched
    }

    /// Services with slices in a cluster whose place differs in `topology` (every service with
    /// slices when a gateway changed).
    fn moved(&self, topology: &Topology) -> Vec<ServiceKey> {
        let changed = self.topology.changed_clusters(topology);
        self.slices
            .iter()
            .filter(|(_, slices)| match &changed {
                None => true,
                Some(clusters) => slices.keys().any(|k| clusters.contains(&*k.cluster)),
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The rules again, when a DestinationRule changed or a service started or stopped being
    /// exported; `None` when they cannot have changed.
    fn rules_after(
        &self,
        index: &Index,
        rules_changed: bool,
        exports: &BTreeMap<ServiceKey, Option<(Export, Vec<Problem>)>>,
    ) -> Option<(Vec<Arc<DestinationRule>>, Rules, Vec<Problem>)> {
        let is_exported = |export: &Option<(Export, Vec<Problem>)>| {
            export.as_ref().is_some_and(|(e, _)| e.is_exported())
        };
        let was_exported =
            |key: &ServiceKey| self.entries.get(key).is_some_and(|e| e.service.is_some());
        let export_changed = exports
            .iter()
            .any(|(key, export)| is_exported(export) != was_exported(key));
        if !rules_changed && !export_changed {
            return None;
        }
        let owned = |(namespace, name): &ServiceKey| (namespace.to_string(), name.to_string());
        let mut exported: BTreeSet<(String, String)> = self
            .entries
            .iter()
            .filter(|(key, e)| e.service.is_some() && !exports.contains_key(*key))
            .map(|(key, _)| owned(key))
            .collect();
        exported.extend(
            exports
                .iter()
                .filter(|(_, export)| is_exported(export))
                .map(|(key, _)| owned(key)),
        );
        let destination_rules = if rules_changed {
            index.destination_rules().cloned().collect()
        } else {
            self.destination_rules.clone()
        };
        let mut problems = Vec::new();
        let rules = Rules::new(&destination_rules, &exported, &mut problems);
        Some((destination_rules, rules, problems))
    }
}

fn service_key(meta: &meshfleet_api::ObjectMeta) -> ServiceKey {
    (
        Arc::from(meta.namespace_or_default()),
        Arc::from(meta.name.as_str()),
    )
}

/// Why (and whether) `key` is exported, from its Services and ServiceExports; `None` when it
/// has neither.
fn export_of(index: &Index, (namespace, name): &ServiceKey) -> Option<(Export, Vec<Problem>)> {
    let services: Vec<&Arc<Service>> = index.services_named(namespace, name).collect();
    let exports: Vec<&Arc<ServiceExport>> = index.service_exports_named(namespace, name).collect();
    if services.is_empty() && exports.is_empty() {
        return None;
    }
    let mut export = Export::default();
    let mut problems = Vec::new();
    // The template (no source cluster) comes first, then the copies by cluster.
    for service in services {
        if global_annotation(service, &mut problems) {
            export.reasons.insert(ExportReason::Annotation);
        }
        match service.source_cluster() {
            Some(_) => export.observed.push(service.clone()),
            None => export.template = Some(service.clone()),
        }
    }
    if !exports.is_empty() {
        if export.template.is_none() && export.observed.is_empty() {
            problems.push(Problem::new(
                Source::object("ServiceExport", namespace, name),
                "no Service of that namespace and name; nothing exported",
            ));
        }
        export.reasons.insert(ExportReason::ServiceExport);
    }
    Some((export, problems))
}

fn build_entry(key: &ServiceKey, inputs: &Inputs, topology: &Topology) -> Entry {
    let mut problems = inputs.problems.clone();
    let service = inputs.export.is_exported().then(|| {
        let parts = Parts {
            slices: &inputs.slices,
            rule: inputs.rule.as_ref(),
            topology,
        };
        let (service, built) = build_service(key, &inputs.export, &parts);
        problems.extend(built);
        Arc::new(service)
    });
    Entry { service, problems }
}
