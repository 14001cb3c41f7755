//! NDS: Istio's DNS name table (`istio.networking.nds.v1.NameTable`), so that istio-agent's
//! DNS proxy answers global names on the client's own host, with the virtual IPs meshfleet's
//! DNS answers.
//!
//! ```text
//!  NameTable.table (map<string, NameInfo>)
//!   <svc>.<ns>.global                          ips: VIP, VIP6 (ClusterSetIP)
//!   <svc>.<ns>.svc.clusterset.local            or the ready endpoints of the client's
//!                                              network (headless)
//!   <hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local   a named endpoint, same network
//! ```
//!
//! As Istio 1.30.3 builds it (`pkg/dns/server/name_table.go`): registry `Kubernetes`, no short
//! name or namespace (the agent would expand those into `cluster.local` names), a headless
//! service's addresses only from the client's network (a connection to a pod address cannot
//! cross a network gateway), and a service with no address left is not in the table.
//!
//! A protobuf map is a repeated field of entries, so the table is written entry by entry: each
//! service's entries are encoded once ([`ServiceNames`]) and a network's table is the
//! concatenation of its services' entries in host order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use prost::Message;

use crate::model::GlobalService;
use crate::resource::{self, Resource};

/// Stands for every network that none of a service's endpoints names: it matches endpoints
/// without a network only (no network name holds a NUL).
const OTHER: &str = "\0";

/// Istio's registry name for Kubernetes services.
const REGISTRY: &str = "Kubernetes";

/// `istio.networking.nds.v1.NameTable`.
#[derive(Clone, PartialEq, Message)]
pub struct NameTable {
    /// Host name to its addresses.
    #[prost(map = "string, message", tag = "1")]
    pub table: HashMap<String, NameInfo>,
}

/// `istio.networking.nds.v1.NameTable.NameInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct NameInfo {
    #[prost(string, repeated, tag = "1")]
    pub ips: Vec<String>,
    #[prost(string, tag = "2")]
    pub registry: String,
    #[prost(string, tag = "3")]
    pub shortname: String,
    #[prost(string, tag = "4")]
    pub namespace: String,
    #[prost(string, repeated, tag = "5")]
    pub alt_hosts: Vec<String>,
}

/// One map entry, as protobuf encodes `map<string, NameInfo>`.
#[derive(Clone, PartialEq, Message)]
struct Entry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<NameInfo>,
}

/// The encoded entries one service contributes to name tables.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceNames {
    /// A ClusterSetIP service: its virtual IPs, the same for every client.
    Fixed(Bytes),
    /// A headless service: per network, its entries as that network's clients see them. The
    /// entry for `""` (clients that name no network) holds every ready endpoint; the one for
    /// [`OTHER`], what a client on a network no endpoint names sees.
    PerNetwork(BTreeMap<String, Bytes>),
    /// Nothing to answer (no virtual IP allocated, no ready endpoint).
    None,
}

impl ServiceNames {
    /// The entries of `svc`, for every network its endpoints are on.
    pub fn new(svc: &GlobalService) -> Self {
        if !svc.dns.headless {
            let mut ips = Vec::new();
            ips.extend(svc.dns.vip.map(|ip| ip.to_string()));
            ips.extend(svc.dns.vip6.map(|ip| ip.to_string()));
            if ips.is_empty() {
                return Self::None;
            }
            let mut buf = Vec::new();
            for name in names(svc) {
                encode_entry(&mut buf, name, ips.clone());
            }
            return Self::Fixed(buf.into());
        }
        let networks: BTreeSet<&str> = svc
            .ports
            .iter()
            .flat_map(|p| &p.endpoints)
            .map(|e| &*e.network)
            .chain(["", OTHER])
            .collect();
        let mut out = BTreeMap::new();
        for network in networks {
            let buf = headless_entries(svc, network);
            if !buf.is_empty() {
                out.insert(network.to_owned(), Bytes::from(buf));
            }
        }
        if out.is_empty() {
            Self::None
        } else {
            Self::PerNetwork(out)
        }
    }

    /// The entries a client on `network` gets.
    pub fn for_network(&self, network: &str) -> Option<&Bytes> {
        match self {
            Self::Fixed(b) => Some(b),
            // A network none of the service's endpoints names sees the unnamed network's.
            Self::PerNetwork(by) => by.get(network).or_else(|| by.get(OTHER)),
            Self::None => None,
        }
    }
}
/// The name table of a client on `network`, from every service's entries in host order.
pub fn name_table<'a>(
    services: impl IntoIterator<Item = &'a ServiceNames>,
    network: &str,
) -> Resource {
    let chunks = services
        .into_iter()
        .filter_map(|s| s.for_network(network).cloned())
        .collect();
    Resource::from_chunks("", resource::NAME_TABLE, chunks)
}

/// The names a service answers to: `<svc>.<ns>.global` and its aliases.
fn names(svc: &GlobalService) -> impl Iterator<Item = &str> {
    std::iter::once(svc.host.as_str()).chain(svc.aliases.iter().map(String::as_str))
}

/// Istio's `InNetwork`: the same network, or either one unnamed.
fn same_network(client: &str, endpoint: &str) -> bool {
    client.is_empty() || endpoint.is_empty() || client == endpoint
}

/// A headless service's entries for clients on `network`: its names answer the ready
/// endpoints' addresses of that network, and each named endpoint of that network its own.
fn headless_entries(svc: &GlobalService, network: &str) -> Vec<u8> {
    let mut ips = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    for e in svc.ports.iter().flat_map(|p| &p.endpoints) {
        if e.ready && same_network(network, &e.network) {
            ips.insert(e.address.as_str());
            ips.extend(e.additional_addresses.iter().map(String::as_str));
            clusters.insert(&*e.cluster);
        }
    }
    let mut buf = Vec::new();
    if ips.is_empty() {
        return buf;
    }
    let ips: Vec<String> = ips.into_iter().map(str::to_owned).collect();
    for name in names(svc) {
        encode_entry(&mut buf, name, ips.clone());
    }
    for named in &svc.dns.named {
        if clusters.contains(named.cluster.as_str()) {
            let host = format!(
                "{}.{}.{}.{}.svc.clusterset.local",
                named.hostname, named.cluster, svc.name, svc.namespace
            );
            encode_entry(&mut buf, &host, named.addresses.clone());
        }
    }
    buf
}

fn encode_entry(buf: &mut Vec<u8>, host: &str, ips: Vec<String>) {
    let entry = Entry {
        key: host.to_owned(),
        value: Some(NameInfo {
            ips,
            registry: REGISTRY.to_owned(),
            ..Default::default()
        }),
    };
    prost::encoding::message::encode(1, &entry, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::fixtures::service;
    use crate::model::NamedEndpoint;
    use std::sync::Arc;

    fn decode(r: &Resource) -> BTreeMap<String, Vec<String>> {
        assert_eq!(r.name, "");
        assert_eq!(r.type_url(), resource::NAME_TABLE);
        let table = NameTable::decode(&*r.body.to_vec()).expect("a NameTable");
        table
            .table
            .into_iter()
            .map(|(host, info)| {
                assert_eq!(info.registry, "Kubernetes");
                assert_eq!((info.shortname.as_str(), info.namespace.as_str()), ("", ""));
                (host, info.ips)
            })
            .collect()
    }

    fn table(services: &[ServiceNames], network: &str) -> BTreeMap<String, Vec<String>> {
        decode(&name_table(services, network))
    }

    #[test]
    fn a_clusterset_ip_service_answers_its_virtual_ips_under_both_names() {
        let mut svc = (*service("echo").http(80).vip("240.240.0.7").build()).clone();
        svc.dns.vip6 = Some("2001:2::7".parse().unwrap());
        let names = [ServiceNames::new(&svc)];
        let want = vec!["240.240.0.7".to_owned(), "2001:2::7".to_owned()];
        let expected = BTreeMap::from([
            ("echo.default.global".to_owned(), want.clone()),
            ("echo.default.svc.clusterset.local".to_owned(), want),
        ]);
        assert_eq!(table(&names, ""), expected);
        assert_eq!(
            table(&names, "net-b"),
            expected,
            "the same on every network"
        );
    }

    #[test]
    fn a_service_without_an_address_is_left_out() {
        let no_vip = service("echo")
            .http(80)
            .endpoint("10.0.0.1", "r/z/")
            .build();
        let unready = service("db")
            .headless()
            .tcp(5432)
            .not_ready("10.0.0.2", "r/z/")
            .build();
        assert_eq!(ServiceNames::new(&no_vip), ServiceNames::None);
        assert_eq!(ServiceNames::new(&unready), ServiceNames::None);
        assert!(table(&[], "").is_empty());
    }

    #[test]
    fn a_headless_service_answers_the_ready_endpoints_of_the_clients_network() {
        let mut svc = (*service("db")
            .headless()
            .tcp(5432)
            .endpoint("10.0.0.1", "r/z/")
            .not_ready("10.0.0.9", "r/z/")
            .remote_endpoint("10.1.0.1", "net-b", "gw.b")
            .build())
        .clone();
        let local_named = NamedEndpoint {
            cluster: "c1".into(),
            hostname: "db-0".into(),
            addresses: vec!["10.0.0.1".into()],
        };
        svc.dns.named = vec![local_named];
        for e in svc.ports.iter_mut().flat_map(|p| &mut p.endpoints) {
            if e.address == "10.0.0.1" {
                e.network = Arc::from("net-a");
            }
            if e.address == "10.1.0.1" {
                e.cluster = Arc::from("c2");
            }
        }
        let names = [ServiceNames::new(&svc)];
        let ips = |host: &str, network: &str| table(&names, network).get(host).cloned();
        let host = "db.default.global";
        assert_eq!(ips(host, "net-a"), Some(vec!["10.0.0.1".to_owned()]));
        assert_eq!(ips(host, "net-b"), Some(vec!["10.1.0.1".to_owned()]));
        assert_eq!(
            ips(host, ""),
            Some(vec!["10.0.0.1".to_owned(), "10.1.0.1".to_owned()]),
            "a client without a network sees every network, as Istio's InNetwork"
        );
        assert_eq!(ips(host, "net-c"), None, "no endpoint of its network");
        let named = "db-0.c1.db.default.svc.clusterset.local";
        assert_eq!(ips(named, "net-a"), Some(vec!["10.0.0.1".to_owned()]));
        assert_eq!(
            ips(named, "net-b"),
            None,
            "a named endpoint of another network"
        );
    }

    #[test]
    fn endpoints_without_a_network_are_seen_from_every_network() {
        let svc = service("db")
            .headless()
            .tcp(5432)
            .endpoint("10.0.0.1", "r/z/")
            .remote_endpoint("10.1.0.1", "net-b", "gw.b")
            .build();
        let names = [ServiceNames::new(&svc)];
        let ips = |network: &str| table(&names, network)["db.default.global"].clone();
        assert_eq!(ips("net-b"), vec!["10.0.0.1", "10.1.0.1"]);
        assert_eq!(ips("net-z"), vec!["10.0.0.1"]);
    }

    #[test]
    fn the_table_is_the_encoding_of_the_whole_message() {
        let a = service("a").http(80).vip("240.240.0.1").build();
        let b = service("b").http(80).vip("240.240.0.2").build();
        let names = [ServiceNames::new(&a), ServiceNames::new(&b)];
        let r = name_table(&names, "");
        let decoded = NameTable::decode(&*r.body.to_vec()).unwrap();
        assert_eq!(decoded.table.len(), 4);
        // Decoding and encoding again gives the same entries (map order aside).
        let again = NameTable::decode(&*decoded.encode_to_vec()).unwrap();
        assert_eq!(again, decoded);
    }
}
