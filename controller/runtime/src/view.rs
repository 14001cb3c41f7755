//! The fleet view on the admin port: one page (`/`, its script and style embedded in the
//! binary) and the JSON it reads, `/api/fleet` and `/api/services`.
//!
//! ```text
//!  reconcile ──> State: catalog, clusters, bindings, problems ─┐
//!  ADS server ──> connected clients (locality, sync state) ────┼─> /api/fleet
//!                                                              └─> /api/services?q=&offset=&limit=&without_zone=
//!                                                                   per service on the page: the split
//!                                                                   each client locality gets (explain)
//! ```
//!
//! Everything is read from `Arc` snapshots the reconcile loop publishes, and the splits are
//! computed on a blocking thread for one page of services at a time: the page never holds a
//! lock the control plane needs, and its cost does not grow with the fleet.

use std::collections::{BTreeMap, BTreeSet};

use meshfleet_api::Cluster;
use meshfleet_catalog::{Catalog, PolicySource};
use meshfleet_model::{Locality, LocalityPolicy};
use meshfleet_xds::explain::{self, Failure};
use meshfleet_xds::pb::envoy::service::status::v3::ConfigStatus;
use meshfleet_xds::server::ClientStatus;
use serde::{Deserialize, Serialize};

/// The page: HTML with its style and script inline, nothing fetched from elsewhere.
pub const PAGE: &str = include_str!("view/index.html");

/// Most services one `/api/services` call returns.
pub const MAX_PAGE: usize = 200;
/// Most client localities a page computes splits for.
pub const MAX_LOCALITIES: usize = 50;

/// One member cluster as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub region: String,
    pub zone: String,
    pub ready: bool,
    pub network: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub taints: Vec<String>,
    /// `status.resourceSummary.allocatable`, as the Cluster gives it (`cpu`, `memory`, `pods`).
    pub allocatable: BTreeMap<String, serde_json::Value>,
}

impl ClusterView {
    pub fn of(cluster: &Cluster) -> Self {
        Self {
            name: cluster.name().to_owned(),
            region: cluster.region().unwrap_or_default().to_owned(),
            zone: cluster.zone().unwrap_or_default().to_owned(),
            ready: cluster.ready(),
            network: cluster.network().to_owned(),
            gateway: cluster
                .spec
                .east_west_gateway
                .as_ref()
                .map(|g| format!("{}:{}", g.address, g.port)),
            taints: cluster
                .spec
                .taints
                .iter()
                .map(|t| match &t.value {
                    Some(v) => format!("{}={}:{}", t.key, v, t.effect),
                    None => format!("{}:{}", t.key, t.effect),
                })
                .collect(),
            allocatable: cluster
                .status
                .resource_summary
                .as_ref()
                .map(|s| s.allocatable.clone())
                .unwrap_or_default(),
        }
    }
}

/// `/api/fleet`: zones and their clusters, connected clients per locality, propagation per
/// cluster, problems.
#[derive(Debug, Serialize)]
pub struct Fleet {
    pub zones: Vec<Zone>,
    pub clients: Vec<ClientGroup>,
    pub propagation: Vec<ClusterPropagation>,
    pub services: usize,
    /// The first problems, and how many there are.
    pub problems: Vec<String>,
    pub problem_count: usize,
}

#[derive(Debug, Serialize)]
pub struct Zone {
    pub region: String,
    pub zone: String,
    pub clusters: Vec<ClusterView>,
}

/// The clients of one locality and network, by sync state.
#[derive(Debug, Serialize)]
pub struct ClientGroup {
    pub locality: Locality,
    pub network: String,
    pub connected: usize,
    /// Every type they asked for acknowledged.
    pub synced: usize,
    /// A response not acknowledged yet.
    pub behind: usize,
    /// Their last responses rejected, with the rejections' messages (distinct, the first few).
    pub rejected: usize,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ClusterPropagation {
    pub cluster: String,
    pub bindings: usize,
    pub replicas: i64,
    /// Copies kept there while being moved elsewhere.
    pub evicting: usize,
}

/// Builds `/api/fleet`.
pub fn fleet(
    clusters: &[ClusterView],
    catalog: &Catalog,
    clients: &[ClientStatus],
    bindings: &meshfleet_propagation::plan::Bindings,
    problems: &[meshfleet_model::problem::Problem],
) -> Fleet {
    let mut zones: BTreeMap<(String, String), Vec<ClusterView>> = BTreeMap::new();
    for c in clusters {
        zones
            .entry((c.region.clone(), c.zone.clone()))
            .or_default()
            .push(c.clone());
    }
    let mut groups: BTreeMap<(Locality, String), ClientGroup> = BTreeMap::new();
    for client in clients {
        let group = groups
            .entry((client.locality.clone(), client.network.clone()))
            .or_insert_with(|| ClientGroup {
                locality: client.locality.clone(),
                network: client.network.clone(),
                connected: 0,
                synced: 0,
                behind: 0,
                rejected: 0,
                errors: Vec::new(),
            });
        group.connected += 1;
        let states: Vec<ConfigStatus> = client.types.values().map(|t| t.config_status()).collect();
        if states.contains(&ConfigStatus::Error) {
            group.rejected += 1;
            for t in client.types.values() {
                if let Some(nack) = &t.last_nack
                    && group.errors.len() < 5
                    && !group.errors.contains(&nack.message)
                {
                    group.errors.push(nack.message.clone());
                }
            }
        } else if states.contains(&ConfigStatus::Stale) {
            group.behind += 1;
        } else {
            group.synced += 1;
        }
    }
    let mut propagation: BTreeMap<String, ClusterPropagation> = BTreeMap::new();
    for binding in bindings.values() {
        for target in &binding.spec.clusters {
            let p = propagation
                .entry(target.name.clone())
                .or_insert_with(|| ClusterPropagation {
                    cluster: target.name.clone(),
                    bindings: 0,
                    replicas: 0,
                    evicting: 0,
                });
            p.bindings += 1;
            p.replicas += i64::from(target.replicas);
        }
        for task in &binding.spec.graceful_eviction_tasks {
            if let Some(p) = propagation.get_mut(&task.from_cluster) {
                p.evicting += 1;
            }
        }
    }
    Fleet {
        zones: zones
            .into_iter()
            .map(|((region, zone), clusters)| Zone {
                region,
                zone,
                clusters,
            })
            .collect(),
        clients: groups.into_values().collect(),
        propagation: propagation.into_values().collect(),
        services: catalog.services.len(),
        problems: problems.iter().take(50).map(ToString::to_string).collect(),
        problem_count: problems.len(),
    }
}

/// `/api/services` query.
#[derive(Debug, Default, Deserialize)]
pub struct ServicesQuery {
    /// Part of the host name, case-insensitive.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub limit: Option<usize>,
    /// What if this zone failed (empty: as it is).
    #[serde(default)]
    pub without_zone: String,
}

#[derive(Debug, Serialize)]
pub struct Services {
    /// Services matching the query, before paging.
    pub total: usize,
    pub offset: usize,
    /// The client localities the splits are computed for: connected clients', else every
    /// zone's.
    pub from: Vec<Locality>,
    pub items: Vec<ServiceView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub host: String,
    pub ports: Vec<u32>,
    pub rule: String,
    /// Where the locality policy came from.
    pub policy_source: PolicySource,
    /// Ready and all endpoints per zone.
    pub endpoints: BTreeMap<String, (usize, usize)>,
    pub splits: Vec<SplitView>,
}

/// What one client locality gets.
#[derive(Debug, Serialize)]
pub struct SplitView {
    pub from: Locality,
    /// The client's network; empty for the default one.
    pub network: String,
    /// Percent per zone it sends to (by region/zone), in order.
    pub to: Vec<(String, f64)>,
    /// The split differs from what the `meshfleet.io/locality-weights` annotation asks for
    /// the client's own zone (by more than a point), and why that may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs: Option<String>,
}

/// Builds one page of `/api/services`.
pub fn services(
    catalog: &Catalog,
    clusters: &[ClusterView],
    clients: &[ClientStatus],
    query: &ServicesQuery,
) -> Services {
    let needle = query.q.to_ascii_lowercase();
    let matching: Vec<_> = catalog
        .services
        .iter()
        .filter(|s| needle.is_empty() || s.service.host.contains(&needle))
        .collect();
    let mut from: BTreeSet<(Locality, String)> = clients
        .iter()
        .map(|c| (c.locality.clone(), c.network.clone()))
        .collect();
    if from.is_empty() {
        from = clusters
            .iter()
            .filter(|c| !c.region.is_empty())
            .map(|c| (Locality::new(&c.region, &c.zone, ""), c.network.clone()))
            .collect();
    }
    // The localities clients declare are theirs to choose: at most this many, the most
    // populated first, so that a page costs the same whatever clients send.
    if from.len() > MAX_LOCALITIES {
        let mut counts: BTreeMap<&(Locality, String), usize> = BTreeMap::new();
        for c in clients {
            if let Some(key) = from.get(&(c.locality.clone(), c.network.clone())) {
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut ranked: Vec<_> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        from = ranked
            .into_iter()
            .take(MAX_LOCALITIES)
            .map(|(k, _)| k.clone())
            .collect();
    }
    let label_keys =
        meshfleet_xds::cache::failover_label_keys_of(catalog.services.iter().map(|s| &*s.service));
    let failure = Failure {
        zones: Some(query.without_zone.clone())
            .filter(|z| !z.is_empty())
            .into_iter()
            .collect(),
        ..Failure::default()
    };
    let limit = query.limit.unwrap_or(50).min(MAX_PAGE);
    let items = matching
        .iter()
        .skip(query.offset)
        .take(limit)
        .map(|s| {
            let svc = &s.service;
            let mut endpoints: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            if let Some(port) = svc.ports.first() {
                for e in &port.endpoints {
                    let zone = endpoints.entry(e.locality.zone.clone()).or_default();
                    zone.0 += usize::from(e.ready);
                    zone.1 += 1;
                }
            }
            // The service is translated once for the page, each locality's load assignment on top.
            let mut explainer = explain::Explainer::new(svc, None).ok();
            let splits = from
                .iter()
                .filter_map(|(locality, network)| {
                    let key = explain::client_key(
                        locality.clone(),
                        network,
                        BTreeMap::new(),
                        &label_keys,
                    );
                    let split = explainer.as_mut()?.split(&key, &failure);
                    let mut to: BTreeMap<String, f64> = BTreeMap::new();
                    for l in &split.localities {
                        let name = format!("{}/{}", l.locality.region, l.locality.zone);
                        *to.entry(name).or_default() += l.percent;
                    }
                    let differs = differs(&svc.locality, locality, &to, &endpoints, &failure);
                    Some(SplitView {
                        from: locality.clone(),
                        network: network.clone(),
                        to: to
                            .into_iter()
                            .map(|(k, v)| (k, (v * 10.0).round() / 10.0))
                            .collect(),
                        differs,
                    })
                })
                .collect();
            ServiceView {
                host: svc.host.clone(),
                ports: svc.ports.iter().map(|p| p.port).collect(),
                rule: explain::rule(svc),
                policy_source: s.policy_source.clone(),
                endpoints,
                splits,
            }
        })
        .collect();
    Services {
        total: matching.len(),
        offset: query.offset,
        from: from.into_iter().map(|(l, _)| l).collect(),
        items,
    }
}

/// Whether a client in `client` gets its zone's share as the tiers ask (the `zone` tier's
/// weight, over the named tiers), and if not, the likely reason.
fn differs(
    policy: &LocalityPolicy,
    client: &Locality,
    to: &BTreeMap<String, f64>,
    endpoints: &BTreeMap<String, (usize, usize)>,
    failure: &Failure,
) -> Option<String> {
    let LocalityPolicy::Tiers(t) = policy else {
        return None;
    };
    let named = [t.subzone, t.zone, t.region, t.remote];
    let total: u32 = named.iter().flatten().sum();
    let local = t.subzone.unwrap_or(0) + t.zone.unwrap_or(0);
    if total == 0 {
        return None;
    }
    let intended = 100.0 * f64::from(local) / f64::from(total);
    let got = to
        .get(&format!("{}/{}", client.region, client.zone))
        .copied()
        .unwrap_or(0.0);
    if (got - intended).abs() <= 1.0 {
        return None;
    }
    let why = match endpoints.get(&client.zone) {
        _ if failure.zones.contains(&client.zone) => "the client's zone fails in this what-if",
        None => "no endpoint in the client's zone",
        Some((0, _)) => "no ready endpoint in the client's zone",
        Some((ready, all)) if ready < all => "part of the client's zone is not ready",
        // Otherwise the tiers moved weight between themselves (a tier without endpoints gives
        // its weight to the nearest with some): as the annotation means.
        _ => return None,
    };
    Some(format!(
        "{got:.1}% stays in {}, the annotation asks {intended:.1}%: {why}",
        client.zone
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meshfleet_catalog::CatalogService;
    use meshfleet_model::{Endpoint, GlobalService, Protocol, ServicePort};

    use super::*;

    fn endpoint(address: &str, zone: &str, ready: bool) -> Endpoint {
        Endpoint {
            address: address.to_owned(),
            additional_addresses: Box::default(),
            port: 8080,
            locality: Arc::new(Locality::new("r", zone, "")),
            network: Arc::from(""),
            cluster: Arc::from(zone),
            weight: 1,
            ready,
            gateway: None,
            labels: Default::default(),
        }
    }

    fn catalog(n: usize) -> Catalog {
        let services = (0..n)
            .map(|i| {
                let service = GlobalService {
                    name: format!("svc{i:05}"),
                    namespace: "ns".to_owned(),
                    host: format!("svc{i:05}.ns.global"),
                    aliases: Vec::new(),
                    ports: vec![ServicePort {
                        name: "http".to_owned(),
                        port: 80,
                        protocol: Protocol::Http,
                        endpoints: vec![
                            endpoint("10.0.0.1", "a", i % 2 == 0),
                            endpoint("10.0.1.1", "b", true),
                        ],
                    }],
                    locality: LocalityPolicy::default(),
                    outlier_detection: Some(Default::default()),
                    dns: Default::default(),
                };
                Arc::new(CatalogService {
                    service: Arc::new(service),
                    exported_by: Default::default(),
                    clusters: Vec::new(),
                    policy_source: PolicySource::Default,
                })
            })
            .collect();
        Catalog {
            services,
            problems: Vec::new(),
        }
    }

    fn cluster(name: &str, zone: &str) -> ClusterView {
        ClusterView {
            name: name.to_owned(),
            region: "r".to_owned(),
            zone: zone.to_owned(),
            ready: true,
            network: String::new(),
            gateway: None,
            taints: Vec::new(),
            allocatable: BTreeMap::new(),
        }
    }

    #[test]
    fn a_page_of_ten_thousand_services_computes_only_its_own_splits() {
        let catalog = catalog(10_000);
        let clusters = [cluster("a-1", "a"), cluster("b-1", "b")];
        let query = ServicesQuery {
            q: "SVC09".to_owned(),
            offset: 10,
            limit: Some(5),
            ..ServicesQuery::default()
        };
        let page = services(&catalog, &clusters, &[], &query);
        assert_eq!(page.total, 1_000, "svc09000 to svc09999");
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.items[0].host, "svc09010.ns.global");
        assert_eq!(
            page.from.len(),
            2,
            "every zone, when no client is connected"
        );
        let from_a = &page.items[0].splits[0];
        assert_eq!(
            from_a.to,
            vec![("r/a".to_owned(), 99.0), ("r/b".to_owned(), 1.0)]
        );
        assert!(from_a.differs.is_none());
        // An odd service: its zone-a endpoint is not ready, so zone a is not even sent.
        let odd = &page.items[1].splits[0];
        assert_eq!(odd.to, vec![("r/b".to_owned(), 100.0)]);
        assert!(
            odd.differs
                .as_deref()
                .is_some_and(|d| d.contains("no ready endpoint")),
            "{odd:?}"
        );
        let too_many = ServicesQuery {
            limit: Some(100_000),
            ..ServicesQuery::default()
        };
        assert_eq!(
            services(&catalog, &clusters, &[], &too_many).items.len(),
            MAX_PAGE
        );
    }

    #[test]
    fn a_what_if_moves_the_split_and_says_why() {
        let catalog = catalog(1);
        let clusters = [cluster("a-1", "a"), cluster("b-1", "b")];
        let query = ServicesQuery {
            without_zone: "a".to_owned(),
            ..ServicesQuery::default()
        };
        let page = services(&catalog, &clusters, &[], &query);
        let from_a = &page.items[0].splits[0];
        assert_eq!(
            from_a.to,
            vec![("r/a".to_owned(), 0.0), ("r/b".to_owned(), 100.0)]
        );
        assert!(from_a.differs.as_deref().unwrap().contains("what-if"));
    }

    #[test]
    fn the_fleet_groups_clusters_by_zone_and_counts_propagation() {
        let clusters = [
            cluster("a-2", "a"),
            cluster("a-1", "a"),
            cluster("b-1", "b"),
        ];
        let bindings = Default::default();
        let f = fleet(&clusters, &catalog(3), &[], &bindings, &[]);
        assert_eq!(f.zones.len(), 2);
        assert_eq!(f.zones[0].clusters.len(), 2);
        assert_eq!(f.services, 3);
        assert_eq!(f.problem_count, 0);
    }
}
