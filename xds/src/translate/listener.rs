//! LDS: the `meshfleet_outbound` HTTP listener, and API listeners for proxyless gRPC.
//!
//! Both carry an HTTP connection manager that takes its routes from RDS over ADS and ends in
//! the router filter. Every filter has a `typed_config` (Envoy 1.36 rejects filters without).

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::listener::v3::{
    ApiListener, Filter, FilterChain, Listener, filter,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};

use super::{OUTBOUND, ads, route, to_any};
use crate::resource::{self, Resource};

/// Every client's outbound listener binds all addresses.
const ANY_ADDRESS: &str = "0.0.0.0";
const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const ROUTER: &str = "envoy.filters.http.router";

/// The listener [`OUTBOUND`] on `0.0.0.0:<port>`.
pub(super) fn outbound(port: u32) -> Listener {
    let hcm = http_connection_manager(OUTBOUND, OUTBOUND);
    Listener {
        name: OUTBOUND.to_owned(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: ANY_ADDRESS.to_owned(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: HTTP_CONNECTION_MANAGER.to_owned(),
                config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
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
