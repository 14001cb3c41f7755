//! Where each member cluster is: its locality, its network, and each network's east-west gateway.

use std::collections::{BTreeMap, BTreeSet};
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

impl Topology {
    /// From every Cluster, in name order (so "the first cluster with a gateway" is
    /// deterministic).
    pub(crate) fn new<'a>(
        clusters: impl IntoIterator<Item = &'a Arc<Cluster>>,
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut topology = Self::default();
        for cluster in clusters {
            let site = Site {
                locality: locality(cluster).map(Arc::new),
                network: Arc::from(cluster.network()),
                cluster: Arc::from(cluster.name()),
            };
            match cluster.east_west_gateway() {
                Ok(Some(gateway)) => {
                    topology
                        .gateways
                        .entry(site.network.clone())
                        .or_insert_with(|| {
                            Arc::new(Gateway {
                                address: gateway.address,
                                port: gateway.port,
                            })
                        });
                }
                Ok(None) => {}
                Err(message) => problems.push(
                    Problem::new(
                        Source::object("Cluster", "", cluster.name()),
                        format!("{message}; no east-west gateway"),
                    )
                    .at(if cluster.spec.east_west_gateway.is_some() {
                        "spec.eastWestGateway".to_owned()
                    } else {
                        format!("metadata.annotations[\"{ANNOTATION_EAST_WEST_GATEWAY}\"]")
                    }),
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
