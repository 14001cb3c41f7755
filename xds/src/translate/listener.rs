//! LDS: the `meshfleet_outbound` HTTP listener, a listener per virtual IP and port, and API
//! listeners for proxyless gRPC.
//!
//! HTTP listeners carry an HTTP connection manager that takes its routes from RDS over ADS and
//! ends in the router filter; a TCP port's listener a TCP proxy to its cluster. Every filter has
//! a `typed_config` (Envoy 1.36 rejects filters without).
//!
//! A sidecar reaches `<VIP>:<port>` as Istio's do: its connections are captured (iptables
//! REDIRECT to the outbound port), `meshfleet_outbound` restores their original destination
//! (`original_dst` listener filter) and hands each to the listener of that address
//! (`use_original_dst`), which does not bind a socket of its own. A client without capture
//! (Istio's `INTERCEPTION_MODE: NONE`) gets the same listeners bound to their addresses, with
//! `freebind`: routing the virtual IP range to the host (`ip route add local <range> dev lo`)
//! brings its connections to them.

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TrafficDirection, address, socket_address,
};
use envoy_types::pb::envoy::config::listener::v3::{
    AdditionalAddress, ApiListener, Filter, FilterChain, Listener, ListenerFilter, filter,
    listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::BoolValue;

use super::{OUTBOUND, ads, route, to_any};
use crate::resource::{self, Resource};

/// Every client's outbound listener binds all addresses.
const ANY_ADDRESS: &str = "0.0.0.0";
const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const ROUTER: &str = "envoy.filters.http.router";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";

/// The listener [`OUTBOUND`] on `0.0.0.0:<port>`: HTTP, and the hand-off of captured
/// connections to the listener of their original destination.
pub(super) fn outbound(port: u32) -> Listener {
    let hcm = http_connection_manager(OUTBOUND, OUTBOUND);
    Listener {
        name: OUTBOUND.to_owned(),
        address: Some(socket_address(ANY_ADDRESS, port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: HTTP_CONNECTION_MANAGER.to_owned(),
                config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
            }],
            ..Default::default()
        }],
        listener_filters: vec![ListenerFilter {
            name: ORIGINAL_DST.to_owned(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(to_any(
                &OriginalDst {},
            ))),
            ..Default::default()
        }],
        use_original_dst: Some(BoolValue { value: true }),
        traffic_direction: TrafficDirection::Outbound.into(),
        ..Default::default()
    }
}

/// Istio's name of the listener of `address:port`: `<address>_<port>`.
pub fn service_listener_name(address: &str, port: u32) -> String {
    format!("{address}_{port}")
}

/// Whether `name` is a listener of [`service_listener`]: `<IP>_<port>`.
pub fn is_service_listener(name: &str) -> bool {
    name.rsplit_once('_').is_some_and(|(ip, port)| {
        ip.parse::<std::net::IpAddr>().is_ok() && port.parse::<u16>().is_ok()
    })
}

/// The listener of one port of a service with virtual IPs `addresses` (the first names it; the
/// others are additional addresses): HTTP through the routes of [`OUTBOUND`], TCP through a
/// TCP proxy to `cluster`. `bind`: bound to its addresses (freebind); otherwise reached only by
/// the hand-off from [`OUTBOUND`].
pub(super) fn service_listener(
    addresses: &[String],
    port: u32,
    http: bool,
    cluster: &str,
    bind: bool,
) -> Listener {
    let name = service_listener_name(&addresses[0], port);
    let filter = if http {
        let hcm = http_connection_manager(&format!("outbound_{name}"), OUTBOUND);
        Filter {
            name: HTTP_CONNECTION_MANAGER.to_owned(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
        }
    } else {
        let proxy = TcpProxy {
            stat_prefix: cluster.to_owned(),
            cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.to_owned())),
            ..Default::default()
        };
        Filter {
            name: TCP_PROXY.to_owned(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(&proxy))),
        }
    };
    Listener {
        address: Some(socket_address(&addresses[0], port)),
        additional_addresses: addresses[1..]
            .iter()
            .map(|a| AdditionalAddress {
                address: Some(socket_address(a, port)),
                ..Default::default()
            })
            .collect(),
        name,
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..Default::default()
        }],
        traffic_direction: TrafficDirection::Outbound.into(),
        bind_to_port: (!bind).then_some(BoolValue { value: false }),
        freebind: bind.then_some(BoolValue { value: true }),
        ..Default::default()
    }
}

fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// For gRPC's `xds:///<name>:<port>`: the API listener `<name>:<port>` and its route
/// configuration (same name) routing to `cluster`.
pub(super) fn api_listener(name: &str, port: u32, cluster: &str) -> (Resource, Resource) {
    let routes = route::api_route(name, port, cluster);
    let hcm = http_connection_manager(&routes.name, &routes.name);
    let listener = Listener {
        name: routes.name.clone(),
        api_listener: Some(ApiListener {
            api_listener: Some(to_any(&hcm)),
        }),
        ..Default::default()
    };
    (
        Resource::new(&listener.name, resource::LISTENER, &listener),
        Resource::new(&routes.name, resource::ROUTE, &routes),
    )
}

/// HTTP (codec auto-detected) with routes from RDS `route_config_name` over ADS, then the
/// router.
pub(super) fn http_connection_manager(
    stat_prefix: &str,
    route_config_name: &str,
) -> HttpConnectionManager {
    HttpConnectionManager {
        codec_type: http_connection_manager::CodecType::Auto.into(),
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config_name.to_owned(),
        })),
        http_filters: vec![HttpFilter {
            name: ROUTER.to_owned(),
            config_type: Some(http_filter::ConfigType::TypedConfig(to_any(
                &Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    }
}
