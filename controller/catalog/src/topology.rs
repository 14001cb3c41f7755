//! Where each member cluster is: its locality, its network, and each network's east-west gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use meshfleet_model::{Gateway, Locality};

use meshfleet_api::{ANNOTATION_EAST_WEST_GATEWAY, Cluster};
use meshfleet_model::problem::{Problem, Source};

/// One member cluster's place in the mesh.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Site {
    /// `None` when the Cluster has no region: its endpoints cannot be placed.
    pub locality: Option<Arc<Locality>>,
    /// Istio network; empty = the default network.
    pub network: Arc<str>,
    /// The cluster's name, shared by its endpoints.
    pub cluster: Arc<str>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Topology {
    sites: BTreeMap<String, Site>,
    /// Per network, the gateway of its first cluster (by name) that has one.
    gateways: BTreeMap<Arc<str>, Arc<Gateway>>,
}

/// The addresses each east-west gateway hostname resolved to (sorted, IPv4 first); a name
/// absent or without addresses has none yet.
pub type GatewayAddresses = BTreeMap<String, Vec<IpAddr>>;

/// The hostnames the Clusters give as east-west gateways: what is to be resolved.
pub fn gateway_hostnames<'a>(
    clusters: impl IntoIterator<Item = &'a Arc<Cluster>>,
) -> BTreeSet<String> {
    clusters
        .into_iter()
        .filter_map(|c| c.east_west_gateway().ok().flatten())
        .filter_map(|g| {
            g.hostname()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        })
        .collect()
}

impl Topology {
    /// From every Cluster, in name order (so "the first cluster with a gateway" is
    /// deterministic); a gateway given by hostname takes its `resolved` addresses.
    pub(crate) fn new<'a>(
        clusters: impl IntoIterator<Item = &'a Arc<Cluster>>,
        resolved: &GatewayAddresses,
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut topology = Self::default();
        for cluster in clusters {
            let site = Site {
                locality: locality(cluster).map(Arc::new),
                network: Arc::from(cluster.network()),
                cluster: Arc::from(cluster.name()),
            };
            let at = || {
                if cluster.spec.east_west_gateway.is_some() {
                    "spec.eastWestGateway".to_owned()
                } else {
                    format!("metadata.annotations[\"{ANNOTATION_EAST_WEST_GATEWAY}\"]")
                }
            };
            match cluster.east_west_gateway() {
                Ok(Some(_)) if topology.gateways.contains_key(&site.network) => {}
                Ok(Some(gateway)) => {
                    let addresses: Vec<String> = match gateway.hostname() {
                        None => vec![gateway.address.clone()],
                        Some(host) => {
                            let key = host.trim_end_matches('.').to_ascii_lowercase();
                            let ips = resolved.get(&key).map(Vec::as_slice).unwrap_or_default();
                            ips.iter().map(ToString::to_string).collect()
                        }
                    };
                    let Some((first, rest)) = addresses.split_first() else {
                        problems.push(
                            Problem::new(
                                Source::object("Cluster", "", cluster.name()),
                                format!(
                                    "east-west gateway {:?} has no address yet (resolving it); \
                                     no east-west gateway until it has",
                                    gateway.address
                                ),
                            )
                            .at(at()),
                        );
                        topology.sites.insert(cluster.name().to_owned(), site);
                        continue;
                    };
                    topology.gateways.insert(
                        site.network.clone(),
                        Arc::new(Gateway {
                            address: first.clone(),
                            port: gateway.port,
                            additional_addresses: rest.into(),
                        }),
                    );
                }
                Ok(None) => {}
                Err(message) => problems.push(
                    Problem::new(
                        Source::object("Cluster", "", cluster.name()),
                        format!("{message}; no east-west gateway"),
                    )
                    .at(at()),
                ),
            }
            topology.sites.insert(cluster.name().to_owned(), site);
        }
        topology
    }

    pub(crate) fn site(&self, cluster: &str) -> Option<&Site> {
        self.sites.get(cluster)
    }

    pub(crate) fn gateway(&self, network: &str) -> Option<&Arc<Gateway>> {
        self.gateways.get(network)
    }

    /// The clusters whose place differs between `self` and `other`, or `None` when a network's
    /// gateway changed (every service with endpoints may be touched).
    pub(crate) fn changed_clusters(&self, other: &Self) -> Option<BTreeSet<String>> {
        if self.gateways != other.gateways {
            return None;
        }
        let names = self.sites.keys().chain(other.sites.keys());
        Some(
            names
                .filter(|c| self.sites.get(*c) != other.sites.get(*c))
                .cloned()
                .collect(),
        )
    }
}

fn locality(cluster: &Cluster) -> Option<Locality> {
    Some(Locality::new(
        cluster.region()?,
        cluster.zone().unwrap_or_default(),
        cluster.subzone().unwrap_or_default(),
    ))
}
