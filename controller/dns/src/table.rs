//! The names meshfleet answers for, built from the mesh: a pure function, so every instance
//! answers alike.
//!
//! Per global service (the MCS DNS specification, KEP-1645, and Istio's `.global`):
//!
//! ```text
//!  <svc>.<ns>.svc.clusterset.local.  A / AAAA   ClusterSetIP: its virtual IPs; headless: its
//!  <svc>.<ns>.global.                             ready endpoints' addresses
//!  _<port>._tcp.<svc>.<ns>.svc.clusterset.local.  SRV  per named port: the service name, or
//!                                                      each named endpoint of a headless one
//!  <hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local.  A / AAAA  headless endpoints with a
//!                                                          hostname
//! ```
//!
//! A name that exists with no record of the type asked (including the names between a zone and
//! its records, such as `<ns>.svc.clusterset.local.`) is NODATA; a name under a zone that does
//! not exist is NXDOMAIN; both carry the zone's SOA, whose minimum is the negative TTL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use meshfleet_model::{GlobalService, Mesh};
use xxhash_rust::xxh3::Xxh3;

/// The zones meshfleet is authoritative for.
pub const ZONES: [&str; 2] = ["clusterset.local.", "global."];
/// TTL of answers: as short as CoreDNS's for Kubernetes names, since endpoints move.
pub const TTL: u32 = 5;

/// Whether DNS answers `a` and `b` alike: the same names, families, named ports, and for a
/// headless service the same ready endpoints in the same zones. An endpoint change of a
/// ClusterSetIP service changes nothing DNS answers.
pub fn same_answers(a: &GlobalService, b: &GlobalService) -> bool {
    let ports = |s: &GlobalService| {
        s.ports
            .iter()
            .map(|p| (p.name.clone(), p.port))
            .collect::<Vec<_>>()
    };
    fn endpoints(s: &GlobalService) -> Vec<(&String, &[String], &String)> {
        s.ports
            .iter()
            .flat_map(|p| &p.endpoints)
            .filter(|e| e.ready)
            .map(|e| (&e.address, &*e.additional_addresses, &e.locality.zone))
            .collect()
    }
    a.name == b.name
        && a.namespace == b.namespace
        && a.host == b.host
        && a.dns == b.dns
        && ports(a) == ports(b)
        && (!a.dns.headless || endpoints(a) == endpoints(b))
}

/// What one name holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    a: BTreeSet<Ipv4Addr>,
    aaaa: BTreeSet<Ipv6Addr>,
    /// (port, target), in order.
    srv: BTreeSet<(u16, String)>,
    /// The zone of each endpoint address (headless services): a client's zone comes first.
    zones: BTreeMap<IpAddr, Arc<str>>,
    /// Only the client's zone's addresses, when its zone is known.
    local_only: bool,
}

/// The answer to one question.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Records of the type asked.
    Records(Vec<Record>),
    /// The name exists, without records of that type.
    NoData { soa: Record },
    /// The name does not exist in the zone.
    NxDomain { soa: Record },
    /// Not under a zone of meshfleet's: forward it.
    NotOurs,
}

/// What one name answers, compact: records are made per query from these (most names hold
/// one address, and a table holds tens of thousands).
#[derive(Clone, Debug, Default, PartialEq)]
struct Records {
    /// Addresses in order, each with its endpoint's zone (`None`: a virtual IP, everyone's).
    addresses: Box<[(IpAddr, Option<Arc<str>>)]>,
    /// SRV (port, target), in order.
    srv: Box<[(u16, Name)]>,
    local_only: bool,
}

impl Records {
    /// The address records of family `v6` for a client in `zone`: its zone's first (or
    /// alone, `local_only`), each group in address order.
    fn addresses(&self, owner: &Name, v6: bool, zone: Option<&str>) -> Vec<Record> {
        let family = self.addresses.iter().filter(|(ip, _)| ip.is_ipv6() == v6);
        let local = |z: &Option<Arc<str>>| match (zone, z) {
            (Some(zone), Some(z)) => &**z == zone,
            _ => true,
        };
        let mut ordered: Vec<&IpAddr> = family
            .clone()
            .filter(|(_, z)| local(z))
            .map(|(ip, _)| ip)
            .collect();
        if zone.is_none() || !self.local_only {
            ordered.extend(family.filter(|(_, z)| !local(z)).map(|(ip, _)| ip));
        }
        ordered
            .into_iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => record(owner, RData::A(A(*v4))),
                IpAddr::V6(v6) => record(owner, RData::AAAA(AAAA(*v6))),
            })
            .collect()
    }

    fn srv(&self, owner: &Name) -> Vec<Record> {
        self.srv
            .iter()
            .map(|(port, target)| {
                // Equal priority and weight for every target, as the MCS spec writes them.
                record(owner, RData::SRV(SRV::new(0, 50, *port, target.clone())))
            })
            .collect()
    }
}

/// The names of a mesh while a table is built: lowercase, fully qualified (trailing dot),
/// including the names between a zone and its records.
#[derive(Default)]
struct Names {
    nodes: HashMap<String, Node>,
}

/// Every name meshfleet answers for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NameTable {
    /// What queries read: every name with its records.
    records: HashMap<LowerName, Records>,
    /// The zones and their SOA.
    zones: Vec<(LowerName, Record)>,
    /// The zones' SOA serial: a hash of the content, the same on every instance.
    serial: u32,
}

impl NameTable {
    /// The names of `mesh`; ClusterSetIP services answer the virtual IPs the catalog gave them.
    pub fn build(mesh: &Mesh) -> Self {
        let mut names = Names::default();
        for zone in ZONES {
            names.nodes.entry(zone.to_owned()).or_default();
        }
        for svc in mesh.services.values() {
            names.add_service(svc);
        }
        let sorted: BTreeMap<&String, &Node> = names.nodes.iter().collect();
        let mut hash = Xxh3::new();
        for (name, node) in sorted {
            hash.update(format!("{name}{node:?}").as_bytes());
        }
        let serial = (hash.digest() & u64::from(u32::MAX)) as u32;
        Self {
            zones: ZONES
                .iter()
                .filter_map(|z| Some((LowerName::from(Name::from_ascii(z).ok()?), soa(z, serial))))
                .collect(),
            records: names
                .nodes
                .iter()
                .filter_map(|(name, node)| {
                    let owner = Name::from_ascii(name).ok()?;
                    Some((LowerName::new(&owner), records_of(node)))
                })
                .collect(),
            serial,
        }
    }

    /// How many names the table holds (including those between zones and records).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Names {
    fn add_service(&mut self, svc: &GlobalService) {
        let base =
            format!("{}.{}.svc.clusterset.local.", svc.name, svc.namespace).to_ascii_lowercase();
        let global = format!("{}.", svc.host).to_ascii_lowercase();
        let mut node = Node {
            local_only: svc.dns.local_only,
            ..Node::default()
        };
        if svc.dns.headless {
            for ep in svc.ports.iter().flat_map(|p| &p.endpoints) {
                if ep.ready {
                    let zone: Arc<str> = Arc::from(ep.locality.zone.as_str());
                    for address in std::iter::once(&ep.address).chain(&ep.additional_addresses) {
                        if let Some(ip) = add_address(&mut node, address) {
                            node.zones.insert(ip, zone.clone());
                        }
                    }
                }
            }
        } else {
            node.a.extend(svc.dns.vip);
            node.aaaa.extend(svc.dns.vip6);
        }
        self.insert(&global, node.clone());
        // SRV per named port; for a headless service, one per named endpoint.
        let mut targets = vec![base.clone()];
        if svc.dns.headless {
            targets.clear();
            for named in &svc.dns.named {
                let name =
                    format!("{}.{}.{base}", named.hostname, named.cluster).to_ascii_lowercase();
                let mut host = Node::default();
                for address in &named.addresses {
                    add_address(&mut host, address);
                }
                self.insert(&name, host);
                targets.push(name);
            }
        }
        self.insert(&base, node);
        for port in svc.ports.iter().filter(|p| !p.name.is_empty()) {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let name = format!("_{}._tcp.{base}", port.name).to_ascii_lowercase();
            let srv = Node {
                srv: targets.iter().map(|t| (number, t.clone())).collect(),
                ..Node::default()
            };
            self.insert(&name, srv);
        }
    }

    /// Adds `node` at `name` (merged with what is there), and every name between it and its
    /// zone as existing.
    fn insert(&mut self, name: &str, node: Node) {
        let entry = self.nodes.entry(name.to_owned()).or_default();
        entry.a.extend(node.a);
        entry.aaaa.extend(node.aaaa);
        entry.srv.extend(node.srv);
        entry.zones.extend(node.zones);
        entry.local_only |= node.local_only;
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.is_empty() || ZONES.contains(&rest) {
                break;
            }
            self.nodes.entry(parent.to_owned()).or_default();
            rest = parent;
        }
    }
}

impl NameTable {
    /// The answer to `name` (any case; with or without the trailing dot) of type `ty`, for a
    /// client in `zone` (when known).
    pub fn lookup(&self, name: &str, ty: RecordType, zone: Option<&str>) -> Answer {
        let mut text = name.to_owned();
        if !text.ends_with('.') {
            text.push('.');
        }
        match Name::from_ascii(&text) {
            Ok(name) => self.answer(&LowerName::new(&name), ty, zone),
            Err(_) => Answer::NotOurs,
        }
    }

    /// The answer to `name` of type `ty` for a client in `zone`: what a query reads; it
    /// allocates only the records it returns.
    pub fn answer(&self, name: &LowerName, ty: RecordType, zone: Option<&str>) -> Answer {
        let Some((zone_name, soa)) = self.zones.iter().find(|(z, _)| z.zone_of(name)) else {
            return Answer::NotOurs;
        };
        let Some(records) = self.records.get(name) else {
            return Answer::NxDomain { soa: soa.clone() };
        };
        let apex = name == zone_name;
        let owner = Name::from(name.clone());
        let found: Vec<Record> = match ty {
            RecordType::A => records.addresses(&owner, false, zone),
            RecordType::AAAA => records.addresses(&owner, true, zone),
            RecordType::SRV => records.srv(&owner),
            RecordType::SOA if apex => vec![soa.clone()],
            RecordType::ANY => {
                let mut all = records.addresses(&owner, false, zone);
                all.extend(records.addresses(&owner, true, zone));
                all.extend(records.srv(&owner));
                if apex {
                    all.push(soa.clone());
                }
                all
            }
            _ => Vec::new(),
        };
        if found.is_empty() {
            Answer::NoData { soa: soa.clone() }
        } else {
            Answer::Records(found)
        }
    }
}

/// The SOA of `zone`: its TTL and minimum are the negative-caching TTL.
fn soa(zone: &str, serial: u32) -> Record {
    let name = |s: &str| Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    let soa = SOA::new(
        name(&format!("ns.dns.{zone}")),
        name(&format!("hostmaster.{zone}")),
        serial,
        7200,
        1800,
        86400,
        TTL,
    );
    Record::from_rdata(name(zone), TTL, RData::SOA(soa))
}

/// What `node` answers, compact.
fn records_of(node: &Node) -> Records {
    let v4 = node.a.iter().map(|ip| IpAddr::V4(*ip));
    let v6 = node.aaaa.iter().map(|ip| IpAddr::V6(*ip));
    Records {
        addresses: v4
            .chain(v6)
            .map(|ip| (ip, node.zones.get(&ip).cloned()))
            .collect(),
        srv: node
            .srv
            .iter()
            .filter_map(|(port, target)| Some((*port, Name::from_ascii(target).ok()?)))
            .collect(),
        local_only: node.local_only,
    }
}

fn record(owner: &Name, rdata: RData) -> Record {
    Record::from_rdata(owner.clone(), TTL, rdata)
}

/// Adds `address` to `node`'s records of its family; returns it, if it is an address.
fn add_address(node: &mut Node, address: &str) -> Option<IpAddr> {
    let ip = address.parse::<IpAddr>().ok()?;
    match ip {
        IpAddr::V4(v4) => node.a.insert(v4),
        IpAddr::V6(v6) => node.aaaa.insert(v6),
    };
    Some(ip)
}

#[cfg(test)]
pub(crate) mod tests;
