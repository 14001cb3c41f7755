//! EDS: a port's endpoints as the clients of one network see them, grouped by locality.
//!
//! Only ready endpoints are sent. Endpoints on the client's network are reached directly.
//! Endpoints on another network are reached through their network's east-west gateway: as
//! Istio's `EndpointsByNetworkFilter` does, all of one locality that use the same gateway
//! become a single endpoint at the gateway, weighted by the sum of their weights. Endpoints on
//! another network without a gateway cannot be reached and are dropped, and so is a locality
//! left without endpoints.
//!
//! Grouping depends on the client's network only, never on its locality: the groups are
//! encoded once per network and shared by every key (see [`super::eds`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    Address, Metadata, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    Endpoint as EnvoyEndpoint, LbEndpoint, endpoint::AdditionalAddress, lb_endpoint,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::cluster::tls_mode_istio;
use crate::locality::Labels;
use crate::model::{Endpoint, Gateway, Locality};

/// The endpoints of one locality that clients on one network may reach.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Group<'a> {
    /// Where these endpoints run.
    pub(super) locality: &'a Locality,
    /// The endpoints, each with its `load_balancing_weight` set (at least 1).
    pub(super) endpoints: Vec<LbEndpoint>,
    /// The labels of each endpoint, in the order of `endpoints`, for Istio's
    /// `failoverPriority`; empty unless labels were asked for.
    pub(super) labels: Vec<Arc<Labels>>,
}

/// Ready endpoints reachable from `network`, grouped by locality in locality order; endpoint
/// order within a locality is the model's, then the gateways in gateway order. Labels are
/// collected only `with_labels`.
pub(super) fn groups<'a>(
    endpoints: &'a [Endpoint],
    network: &str,
    with_labels: bool,
) -> Vec<Group<'a>> {
    let mut pending: BTreeMap<&'a Locality, Pending<'a>> = BTreeMap::new();
    for ep in endpoints.iter().filter(|ep| ep.ready) {
        let group = pending.entry(&*ep.locality).or_default();
        if same_or_unset(&ep.network, network) {
            let mut direct = lb_endpoint(&ep.address, ep.port, ep.weight.max(1));
            // A dual-stack pod is one host; Envoy connects to whichever address answers.
            add_addresses(&mut direct, &ep.additional_addresses, ep.port);
            group.direct.push(direct);
            if with_labels {
                group.direct_labels.push(ep.labels.clone());
            }
        } else if let Some(gateway) = &ep.gateway {
            group
                .gateways
                .entry(&**gateway)
                .and_modify(|merged| merged.add(ep))
                .or_insert_with(|| Merged::new(ep, with_labels));
        }
    }
    pending
        .into_iter()
        .filter_map(|(locality, p)| p.finish(locality, with_labels))
        .collect()
}

/// Whether a client on `client` reaches an endpoint on `endpoint` directly: as Istio's
/// `IsSameOrEmpty`, an unset network on either side matches every network (a plain Envoy
/// without `NETWORK` metadata, a cluster without `spec.network`).
fn same_or_unset(endpoint: &str, client: &str) -> bool {
    endpoint.is_empty() || client.is_empty() || endpoint == client
}

/// One locality's endpoints while grouping.
#[derive(Default)]
struct Pending<'a> {
    /// Endpoints on the client's network, in model order.
    direct: Vec<LbEndpoint>,
    /// Their labels, when wanted.
    direct_labels: Vec<Arc<Labels>>,
    /// Endpoints on other networks, merged per gateway.
    gateways: BTreeMap<&'a Gateway, Merged>,
}

impl<'a> Pending<'a> {
    fn finish(self, locality: &'a Locality, with_labels: bool) -> Option<Group<'a>> {
        let mut endpoints = self.direct;
        let mut labels = self.direct_labels;
        for (gateway, merged) in self.gateways {
            endpoints.push(gateway_endpoint(gateway, merged.weight));
            if with_labels {
                labels.push(Arc::new(merged.labels));
            }
        }
        (!endpoints.is_empty()).then_some(Group {
            locality,
            endpoints,
            labels,
        })
    }
}

/// Endpoints of one locality behind one gateway.
struct Merged {
    /// Sum of their weights (saturating): the gateway endpoint's weight.
    weight: u32,
    /// The labels they all share, for `failoverPriority` (empty unless labels are wanted).
    labels: Labels,
}

impl Merged {
    fn new(ep: &Endpoint, with_labels: bool) -> Self {
        Self {
            weight: ep.weight.max(1),
            labels: if with_labels {
                (*ep.labels).clone()
            } else {
                Labels::new()
            },
        }
    }

    fn add(&mut self, ep: &Endpoint) {
        self.weight = self.weight.saturating_add(ep.weight.max(1));
        self.labels.retain(|k, v| ep.labels.get(k) == Some(v));
    }
}

/// `address:port` as Envoy's `Address`.
fn socket(address: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// An endpoint at `address:port` with load-balancing `weight`.
fn lb_endpoint(address: &str, port: u32, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(socket(address, port)),
            ..Default::default()
        })),
        load_balancing_weight: Some(UInt32Value { value: weight }),
        ..Default::default()
    }
}

/// Gives `ep` the other `addresses` of its host, on `port`.
fn add_addresses(ep: &mut LbEndpoint, addresses: &[String], port: u32) {
    if let (false, Some(lb_endpoint::HostIdentifier::Endpoint(endpoint))) =
        (addresses.is_empty(), &mut ep.host_identifier)
    {
        endpoint.additional_addresses = addresses
            .iter()
            .map(|address| AdditionalAddress {
                address: Some(socket(address, port)),
            })
            .collect();
    }
}

/// Endpoint metadata that picks a cluster's transport socket.
const TRANSPORT_SOCKET_MATCH: &str = "envoy.transport_socket_match";

/// An east-west gateway as an endpoint: marked `tlsMode: istio`, so that a client with a
/// verified identity reaches it with Istio's mTLS (the cluster's transport socket match); for
/// other clients the mark matches nothing.
fn gateway_endpoint(gateway: &Gateway, weight: u32) -> LbEndpoint {
    let mut ep = lb_endpoint(&gateway.address, gateway.port, weight);
    // A gateway hostname that resolved to several addresses: Envoy tries the others too.
    add_addresses(&mut ep, &gateway.additional_addresses, gateway.port);
    ep.metadata = Some(Metadata {
        filter_metadata: [(TRANSPORT_SOCKET_MATCH.to_owned(), tls_mode_istio())].into(),
        ..Default::default()
    });
    ep
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::{Struct, Value, value};

    fn endpoint(ip: &str, locality: &str, network: &str) -> Endpoint {
        Endpoint {
            address: ip.to_owned(),
            additional_addresses: Box::default(),
            port: 8080,
            locality: Arc::new(Locality::parse(locality)),
            network: Arc::from(network),
            cluster: Arc::from(format!("{network}-cluster")),
            weight: 1,
            ready: true,
            gateway: None,
            labels: Default::default(),
        }
    }

    /// A gateway endpoint as Istio marks it for mTLS, written out independently.
    fn gateway_lb(ip: &str, weight: u32) -> LbEndpoint {
        let mut ep = lb_endpoint(ip, 15443, weight);
        let mode = Struct {
            fields: [(
                "tlsMode".to_owned(),
                Value {
                    kind: Some(value::Kind::StringValue("istio".to_owned())),
                },
            )]
            .into(),
        };
        ep.metadata = Some(Metadata {
            filter_metadata: [("envoy.transport_socket_match".to_owned(), mode)].into(),
            ..Default::default()
        });
        ep
    }

    fn via(mut ep: Endpoint, gateway: &str, weight: u32) -> Endpoint {
        ep.gateway = Some(Arc::new(Gateway {
            address: gateway.to_owned(),
            port: 15443,
            ..Default::default()
        }));
        ep.weight = weight;
        ep
    }

    fn labelled(mut ep: Endpoint, pairs: &[(&str, &str)]) -> Endpoint {
        ep.labels = Arc::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        ep
    }

    #[test]
    fn a_dual_stack_endpoint_is_one_host_with_an_additional_address() {
        let mut dual = endpoint("10.0.0.1", "r1/z1", "");
        dual.additional_addresses = vec!["fd00::1".to_owned()].into_boxed_slice();
        let groups = groups(std::slice::from_ref(&dual), "", false);
        let expected = {
            let mut one = lb_endpoint("10.0.0.1", 8080, 1);
            if let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = &mut one.host_identifier {
                e.additional_addresses = vec![AdditionalAddress {
                    address: Some(socket("fd00::1", 8080)),
                }];
            }
            one
        };
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].endpoints, vec![expected]);
    }

    #[test]
    fn groups_ready_endpoints_by_locality_in_order() {
        let mut not_ready = endpoint("10.0.0.9", "r1/z1", "");
        not_ready.ready = false;
        let mut heavy = endpoint("10.0.0.2", "r1/z1", "");
        heavy.weight = 5;
        let eps = vec![
            endpoint("10.1.0.1", "r2/z1", ""),
            endpoint("10.0.0.1", "r1/z1", ""),
            not_ready,
            heavy,
            endpoint("10.0.0.3", "r1/z1", ""),
        ];
        let groups = groups(&eps, "", false);
        let expected = vec![
            Group {
                locality: &eps[1].locality,
                endpoints: vec![
                    lb_endpoint("10.0.0.1", 8080, 1),
                    lb_endpoint("10.0.0.2", 8080, 5),
                    lb_endpoint("10.0.0.3", 8080, 1),
                ],
                labels: vec![],
            },
            Group {
                locality: &eps[0].locality,
                endpoints: vec![lb_endpoint("10.1.0.1", 8080, 1)],
                labels: vec![],
            },
        ];
        assert_eq!(groups, expected);
    }

    #[test]
    fn cross_network_endpoints_merge_per_locality_and_gateway() {
        let eps = vec![
            endpoint("10.0.0.1", "r1/z1", "net-a"),
            via(endpoint("10.9.0.1", "r1/z1", "net-b"), "192.0.2.1", 2),
            via(endpoint("10.9.0.2", "r1/z1", "net-b"), "192.0.2.1", 3),
            via(endpoint("10.8.0.1", "r1/z1", "net-c"), "192.0.2.3", 1),
            via(endpoint("10.9.1.1", "r2/z1", "net-b"), "192.0.2.1", 4),
            // Another network and no gateway: unreachable, and its locality disappears.
            endpoint("10.7.0.1", "r3/z1", "net-d"),
        ];
        let groups = groups(&eps, "net-a", false);
        let expected = vec![
            Group {
                locality: &eps[0].locality,
                endpoints: vec![
                    lb_endpoint("10.0.0.1", 8080, 1),
                    gateway_lb("192.0.2.1", 5),
                    gateway_lb("192.0.2.3", 1),
                ],
                labels: vec![],
            },
            Group {
                locality: &eps[4].locality,
                endpoints: vec![gateway_lb("192.0.2.1", 4)],
                labels: vec![],
            },
        ];
        assert_eq!(groups, expected);
    }

    #[test]
    fn an_unset_network_matches_every_network() {
        let eps = vec![
            endpoint("10.0.0.1", "r1/z1", ""),
            endpoint("10.0.0.2", "r1/z1", "net-a"),
            via(endpoint("10.0.0.3", "r1/z1", "net-b"), "192.0.2.1", 1),
        ];
        // A client without a network reaches every endpoint directly, as in Istio.
        let from_unset = groups(&eps, "", false);
        assert_eq!(
            from_unset[0].endpoints,
            vec![
                lb_endpoint("10.0.0.1", 8080, 1),
                lb_endpoint("10.0.0.2", 8080, 1),
                lb_endpoint("10.0.0.3", 8080, 1),
            ]
        );
        // A client on net-a reaches the endpoint without a network and its own directly, and
        // net-b through its gateway.
        let from_a = groups(&eps, "net-a", false);
        assert_eq!(
            from_a[0].endpoints,
            vec![
                lb_endpoint("10.0.0.1", 8080, 1),
                lb_endpoint("10.0.0.2", 8080, 1),
                gateway_lb("192.0.2.1", 1),
            ]
        );
    }

    #[test]
    fn merged_endpoint_keeps_the_labels_its_members_share() {
        let net = "topology.istio.io/network";
        let eps = vec![
            labelled(
                endpoint("10.0.0.1", "r1/z1", "net-a"),
                &[(net, "net-a"), ("app", "a")],
            ),
            labelled(
                via(endpoint("10.9.0.1", "r1/z1", "net-b"), "192.0.2.1", 1),
                &[(net, "net-b"), ("v", "1")],
            ),
            labelled(
                via(endpoint("10.9.0.2", "r1/z1", "net-b"), "192.0.2.1", 1),
                &[(net, "net-b"), ("v", "2")],
            ),
        ];
        let groups = groups(&eps, "net-a", true);
        let labels: Vec<Labels> = groups[0].labels.iter().map(|l| (**l).clone()).collect();
        assert_eq!(
            labels,
            vec![
                (*eps[0].labels).clone(),
                BTreeMap::from([(net.to_owned(), "net-b".to_owned())])
            ]
        );
    }

    #[test]
    fn zero_weight_counts_as_one() {
        let mut ep = endpoint("10.0.0.1", "r1/z1", "");
        ep.weight = 0;
        let eps = [ep];
        assert_eq!(
            groups(&eps, "", false)[0].endpoints,
            vec![lb_endpoint("10.0.0.1", 8080, 1)]
        );
    }
}
