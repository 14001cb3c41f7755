//! Fixture builders shared by the locality tests.

use std::borrow::Cow;

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::{
    Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::{Labels, LocalityGroup};
use crate::model::{ClientKey, Locality};

/// A locality that lives for the whole test run, so groups can borrow it.
pub(super) fn loc(s: &str) -> &'static Locality {
    Box::leak(Box::new(Locality::parse(s)))
}

/// An endpoint at `ip:10001` with `weight`.
pub(super) fn ep(ip: &str, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: ip.to_owned(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(10001)),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        load_balancing_weight: Some(UInt32Value { value: weight }),
        ..Default::default()
    }
}

/// A group in `locality` with endpoints of weight 1 at `ips`, without labels.
pub(super) fn group(locality: &str, ips: &[&str]) -> LocalityGroup<'static> {
    weighted(locality, &ips.iter().map(|ip| (*ip, 1)).collect::<Vec<_>>())
}

/// A group in `locality` with endpoints `(ip, weight)`, without labels.
pub(super) fn weighted(locality: &str, eps: &[(&str, u32)]) -> LocalityGroup<'static> {
    LocalityGroup {
        locality: loc(locality),
        endpoints: eps.iter().map(|(ip, w)| ep(ip, *w)).collect(),
        labels: Vec::new(),
    }
}

/// A group in `locality` with endpoints of weight 1 `(ip, labels)`.
pub(super) fn labelled(locality: &str, eps: &[(&str, &[(&str, &str)])]) -> LocalityGroup<'static> {
    LocalityGroup {
        locality: loc(locality),
        endpoints: eps.iter().map(|(ip, _)| ep(ip, 1)).collect(),
        labels: eps.iter().map(|(_, l)| Cow::Owned(labels(l))).collect(),
    }
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A client in `locality` on the default network with `labels`.
pub(super) fn client(locality: &str, labels: Labels) -> ClientKey {
    ClientKey {
        locality: Locality::parse(locality),
        network: String::new(),
        listener_port: 15001,
        labels,
        secure: false,
        bind_vips: false,
    }
}

/// What a test compares: per output locality, `region/zone/subzone`, weight, priority and the
/// endpoint addresses.
#[derive(Debug, PartialEq)]
pub(super) struct Row {
    pub locality: String,
    pub weight: u32,
    pub priority: u32,
    pub ips: Vec<String>,
}

pub(super) fn row(locality: &str, weight: u32, priority: u32, ips: &[&str]) -> Row {
    Row {
        locality: Locality::parse(locality).to_string(),
        weight,
        priority,
        ips: ips.iter().map(|ip| (*ip).to_owned()).collect(),
    }
}

pub(super) fn rows(out: &[LocalityLbEndpoints]) -> Vec<Row> {
    out.iter()
        .map(|l| {
            let locality = l.locality.clone().unwrap_or_default();
            Row {
                locality: format!(
                    "{}/{}/{}",
                    locality.region, locality.zone, locality.sub_zone
                ),
                weight: l.load_balancing_weight.map_or(0, |w| w.value),
                priority: l.priority,
                ips: l.lb_endpoints.iter().map(ip_of).collect(),
            }
        })
        .collect()
}

fn ip_of(ep: &LbEndpoint) -> String {
    let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = &ep.host_identifier else {
        return String::new();
    };
    match e.address.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(s)) => s.address.clone(),
        _ => String::new(),
    }
}
