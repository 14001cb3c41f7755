//! Translation: one global service, seen from one client, into Envoy resources.
//!
//! ```text
//!  GlobalService ──┬─> per port: Cluster (CDS) ─────────── outbound|<port>||<host>
//!  + ClientKey     ├─> per port: ClusterLoadAssignment ─── grouped by locality, cross-network
//!  (for EDS only)  │             (EDS)                      endpoints merged at their gateway,
//!                  │                                        weights from `locality::assign`
//!                  ├─> per HTTP port: VirtualHost ────────> outbound_route: RDS meshfleet_outbound
//!                  └─> per HTTP port and name: api Listener + RouteConfiguration (proxyless gRPC)
//!  ClientKey ────────> outbound_listener: LDS meshfleet_outbound (HTTP on 0.0.0.0:<port>)
//! ```
//!
//! Only the load assignments ([`load_assignments`]) and the outbound listener depend on the
//! client; the rest ([`translate_shared`], [`outbound_route`]) is the same for every client.
//! Even load assignments mostly do not: their endpoints are encoded once per network
//! ([`ServiceEndpoints`]) and each client's adds only its locality weights and priorities.
//!
//! Translation is pure and deterministic: equal inputs give byte-identical resources, so every
//! instance computes the same versions. It iterates the model's vectors in order and sorted
//! maps only; protobuf maps hold at most one entry.

mod cluster;
mod eds;
mod endpoints;
mod listener;
mod nds;
mod route;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, config_source,
};
use envoy_types::pb::envoy::config::route::v3::VirtualHost;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use crate::model::{ClientKey, GlobalService, Protocol, ServicePort};
use crate::resource::{self, Resource};

pub use cluster::{SDS_DEFAULT, SDS_ROOT};
pub use eds::ServiceEndpoints;
pub use listener::{is_service_listener, service_listener_name};
pub use nds::{NameInfo, NameTable, ServiceNames, name_table};
pub use route::{EncodedVirtualHost, outbound_route_encoded};

/// Name of every client's HTTP listener and of the route configuration it uses.
pub const OUTBOUND: &str = "meshfleet_outbound";

/// What one global service contributes to every client's snapshot alike: nothing here depends
/// on the [`ClientKey`], so the cache computes it once per service change and shares it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedResources {
    /// CDS: one per port, named `outbound|<port>||<host>`.
    pub clusters: Vec<Resource>,
    /// Those of `clusters` that differ for clients with a verified identity (reaching gateways
    /// with mTLS), named alike.
    pub secure_clusters: Vec<Resource>,
    /// To be merged into the route configuration [`OUTBOUND`] (see [`outbound_route`]).
    pub virtual_hosts: Vec<VirtualHost>,
    /// LDS for proxyless gRPC: `<host>:<port>` and `<alias>:<port>` per HTTP port.
    pub api_listeners: Vec<Resource>,
    /// RDS for those API listeners, named like them.
    pub api_routes: Vec<Resource>,
    /// LDS `<VIP>_<port>` per port of a service with virtual IPs, reached by the hand-off
    /// from [`OUTBOUND`] (captured connections).
    pub service_listeners: Vec<Resource>,
    /// The same listeners bound to their addresses, for clients without capture
    /// ([`ClientKey::bind_vips`]), named alike.
    pub bound_service_listeners: Vec<Resource>,
}

/// Everything one global service contributes to one client's snapshot: [`translate_shared`]
/// and [`load_assignments`] together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceResources {
    /// CDS: one per port, named `outbound|<port>||<host>`.
    pub clusters: Vec<Resource>,
    /// EDS: one `ClusterLoadAssignment` per port (named like its cluster), computed for the
    /// client's locality and network.
    pub load_assignments: Vec<Resource>,
    /// To be merged into the route configuration [`OUTBOUND`] (see [`outbound_route`]).
    pub virtual_hosts: Vec<VirtualHost>,
    /// LDS for proxyless gRPC: `<host>:<port>` and `<alias>:<port>` per HTTP port.
    pub api_listeners: Vec<Resource>,
    /// RDS for those API listeners, named like them.
    pub api_routes: Vec<Resource>,
    /// LDS `<VIP>_<port>`, bound or not as `key` asks.
    pub service_listeners: Vec<Resource>,
}

/// Translates `svc` for the clients that share `key`.
///
/// Ports are taken in port order (a repeated port number counts once). TCP ports get a cluster
/// and endpoints only; HTTP, HTTP/2 and gRPC ports also get a virtual host and API listeners.
pub fn translate_service(svc: &GlobalService, key: &ClientKey) -> ServiceResources {
    let SharedResources {
        mut clusters,
        secure_clusters,
        virtual_hosts,
        api_listeners,
        api_routes,
        service_listeners,
        bound_service_listeners,
    } = translate_shared(svc);
    if key.secure {
        for secure in secure_clusters {
            if let Some(c) = clusters.iter_mut().find(|c| c.name == secure.name) {
                *c = secure;
            }
        }
    }
    ServiceResources {
        clusters,
        load_assignments: load_assignments(svc, key),
        virtual_hosts,
        api_listeners,
        api_routes,
        service_listeners: if key.bind_vips {
            bound_service_listeners
        } else {
            service_listeners
        },
    }
}

/// The key-independent part of [`translate_service`]: clusters, virtual hosts, API listeners
/// and their routes.
pub fn translate_shared(svc: &GlobalService) -> SharedResources {
    let ports = unique_ports(svc);
    let default_port = default_http_port(ports.values().copied());
    let addresses = virtual_ips(svc);
    let mut out = SharedResources::default();
    for port in ports.values() {
        let name = svc.cluster_name(port.port);
        let cluster = cluster::build(svc, port, &name);
        if let Some(secure) = cluster::secure(svc, port, &cluster) {
            out.secure_clusters
                .push(Resource::new(&name, resource::CLUSTER, &secure));
        }
        out.clusters
            .push(Resource::new(&name, resource::CLUSTER, &cluster));
        let http = port.protocol != Protocol::Tcp;
        if http {
            out.add_http_routing(
                svc,
                &addresses,
                port.port,
                Some(port.port) == default_port,
                &name,
            );
        }
        if !addresses.is_empty() {
            for (bind, list) in [
                (false, &mut out.service_listeners),
                (true, &mut out.bound_service_listeners),
            ] {
                let l = listener::service_listener(&addresses, port.port, http, &name, bind);
                list.push(Resource::new(&l.name, resource::LISTENER, &l));
            }
        }
    }
    out
}

/// The virtual IPs of `svc` as listener addresses, IPv4 first; none for a headless service.
fn virtual_ips(svc: &GlobalService) -> Vec<String> {
    if svc.dns.headless {
        return Vec::new();
    }
    let v4 = svc.dns.vip.map(|ip| ip.to_string());
    let v6 = svc.dns.vip6.map(|ip| ip.to_string());
    v4.into_iter().chain(v6).collect()
}

/// EDS for the clients of `key`: one `ClusterLoadAssignment` per port of `svc`, in port order,
/// each named like the port's cluster (so a service's load assignments and clusters always
/// have the same names). The cache keeps the [`ServiceEndpoints`] of each network instead and
/// calls [`ServiceEndpoints::load_assignments`] per key.
pub fn load_assignments(svc: &GlobalService, key: &ClientKey) -> Vec<Resource> {
    ServiceEndpoints::new(svc, &key.network).load_assignments(svc, key)
}

/// The ports of `svc` by number; of a repeated number, the first one the model lists.
fn unique_ports(svc: &GlobalService) -> BTreeMap<u32, &ServicePort> {
    svc.ports.iter().rev().map(|p| (p.port, p)).collect()
}

impl SharedResources {
    /// The virtual host and the API listeners (with their routes) of one HTTP port.
    fn add_http_routing(
        &mut self,
        svc: &GlobalService,
        vips: &[String],
        port: u32,
        with_bare_names: bool,
        cluster: &str,
    ) {
        let names = service_names(svc);
        // Requests to a virtual IP carry it as their authority (IPv6 in brackets).
        let vips: Vec<String> = vips
            .iter()
            .map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.clone()
                }
            })
            .collect();
        let mut domains = names.clone();
        domains.extend(vips.iter().map(String::as_str));
        self.virtual_hosts.push(route::service_virtual_host(
            &domains,
            port,
            with_bare_names,
            cluster,
        ));
        for name in names {
            let (listener, routes) = listener::api_listener(name, port, cluster);
            self.api_listeners.push(listener);
            self.api_routes.push(routes);
        }
    }
}

/// LDS [`OUTBOUND`]: an HTTP listener on `0.0.0.0:<key.listener_port>` whose connection manager
/// takes RDS [`OUTBOUND`] over ADS and ends with the router filter.
pub fn outbound_listener(key: &ClientKey) -> Resource {
    Resource::new(
        OUTBOUND,
        resource::LISTENER,
        &listener::outbound(key.listener_port),
    )
}

/// RDS [`OUTBOUND`] from all services' virtual hosts, sorted by name.
///
/// Envoy rejects a whole route configuration in which two virtual hosts share a domain, so a
/// domain already claimed by a virtual host earlier in name order is dropped from later ones,
/// and a virtual host left without domains is dropped: one bad service cannot take routing
/// down for the rest. The cache keeps [`EncodedVirtualHost`]s and calls
/// [`outbound_route_encoded`] instead: same bytes, without the messages.
pub fn outbound_route<'a>(vhosts: impl IntoIterator<Item = &'a VirtualHost>) -> Resource {
    let encoded: Vec<EncodedVirtualHost> = vhosts
        .into_iter()
        .map(|v| EncodedVirtualHost::new(v.clone()))
        .collect();
    outbound_route_encoded(&encoded)
}

/// The one HTTP port that also answers to the port-less names: 80 if the service has it, else
/// the lowest. `None` when no port speaks HTTP.
fn default_http_port<'a>(ports: impl Iterator<Item = &'a ServicePort>) -> Option<u32> {
    const HTTP_DEFAULT: u32 = 80;
    let http: Vec<u32> = ports
        .filter(|p| p.protocol != Protocol::Tcp)
        .map(|p| p.port)
        .collect();
    if http.contains(&HTTP_DEFAULT) {
        Some(HTTP_DEFAULT)
    } else {
        http.into_iter().min()
    }
}

/// The service's host, then its aliases, each once (an alias may repeat the host).
fn service_names(svc: &GlobalService) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::with_capacity(1 + svc.aliases.len());
    for name in std::iter::once(&svc.host).chain(&svc.aliases) {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
}

/// Resources of all kinds come from the ADS stream, in xDS v3.
fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3.into(),
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

/// `msg` packed into an `Any` with its `type.googleapis.com/<full name>` type URL.
fn to_any<M: Message + Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests;
