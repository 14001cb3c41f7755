//! RDS pieces: a virtual host per HTTP port, routing everything to the port's cluster with
//! Istio's defaults (no timeout, retries on a different host).

use std::collections::HashSet;

use bytes::Bytes;
use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    retry_policy::{RetryHostPredicate, retry_host_predicate},
    route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use prost::Message;
use prost::encoding::{self, WireType};

use super::{OUTBOUND, to_any};
use crate::resource::{self, Resource};

/// `RouteConfiguration.name`, `.virtual_hosts`; `VirtualHost.name`, `.domains`.
const NAME_FIELD: u32 = 1;
const VIRTUAL_HOSTS_FIELD: u32 = 2;
const DOMAINS_FIELD: u32 = 2;

/// Istio's default `retry_on`.
const RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
/// One more than Istio's 2, so that a request can still fail over after two dead hosts.
const NUM_RETRIES: u32 = 3;
/// Istio's default: how often Envoy may re-pick a host the predicate rejected.
const HOST_SELECTION_RETRY_MAX_ATTEMPTS: i64 = 5;
/// Retry on a host not tried before.
const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";

/// The virtual host `<host>:<port>` (`names[0]` is the host), answering to `<name>:<port>` for
/// each of `names`, and to the bare names too when `with_bare_names` (one port per service, so
/// that domains never collide).
pub(super) fn service_virtual_host(
    names: &[&str],
    port: u32,
    with_bare_names: bool,
    cluster: &str,
) -> VirtualHost {
    let mut domains: Vec<String> = names.iter().map(|name| format!("{name}:{port}")).collect();
    if with_bare_names {
        domains.extend(names.iter().map(|name| (*name).to_owned()));
    }
    let host = names.first().copied().unwrap_or_default();
    virtual_host(format!("{host}:{port}"), domains, cluster)
}

/// RDS for the proxyless gRPC listener `<name>:<port>`: one virtual host for `<name>:<port>`
/// and `<name>`, routing to `cluster`.
pub(super) fn api_route(name: &str, port: u32, cluster: &str) -> RouteConfiguration {
    let listener = format!("{name}:{port}");
    let vhost = virtual_host(
        listener.clone(),
        vec![listener.clone(), name.to_owned()],
        cluster,
    );
    RouteConfiguration {
        name: listener,
        virtual_hosts: vec![vhost],
        ..Default::default()
    }
}

fn virtual_host(name: String, domains: Vec<String>, cluster: &str) -> VirtualHost {
    VirtualHost {
        name,
        domains,
        routes: vec![route_to(cluster)],
        ..Default::default()
    }
}

/// Every path to `cluster`, with the timeout disabled (Istio's default) and retries.
fn route_to(cluster: &str) -> Route {
    let action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_owned())),
        timeout: Some(Duration::default()),
        retry_policy: Some(retry_policy()),
        ..Default::default()
    };
    Route {
        name: "default".to_owned(),
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_owned())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

/// Istio's default retry policy (`retry.DefaultPolicy`), with [`NUM_RETRIES`].
pub(super) fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: RETRY_ON.to_owned(),
        num_retries: Some(UInt32Value { value: NUM_RETRIES }),
        retry_host_predicate: vec![RetryHostPredicate {
            name: PREVIOUS_HOSTS.to_owned(),
            config_type: Some(retry_host_predicate::ConfigType::TypedConfig(to_any(
                &PreviousHostsPredicate {},
            ))),
        }],
        host_selection_retry_max_attempts: HOST_SELECTION_RETRY_MAX_ATTEMPTS,
        ..Default::default()
    }
}

/// A virtual host kept for the outbound route: its name and domains, and the rest of it
/// encoded. The route may drop some domains (claimed by an earlier virtual host); since
/// `name` and `domains` are the first two fields, the virtual host is still written as
/// `[name][kept domains][rest]` without re-encoding, and without keeping the message.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedVirtualHost {
    /// The virtual host's name: the route's sort key.
    name: String,
    /// Domains in the virtual host's order.
    domains: Vec<String>,
    /// Every other field, encoded.
    rest: Bytes,
}

impl EncodedVirtualHost {
    pub fn new(mut vhost: VirtualHost) -> Self {
        let name = std::mem::take(&mut vhost.name);
        let domains = std::mem::take(&mut vhost.domains);
        Self {
            name,
            domains,
            rest: Bytes::from(vhost.encode_to_vec()),
        }
    }

    /// Length of the virtual host with only `domains`, as a `virtual_hosts` field, and of its
    /// message alone.
    fn field_len(&self, domains: &[&str]) -> (usize, usize) {
        let domains_len: usize = domains
            .iter()
            .map(|d| encoding::key_len(DOMAINS_FIELD) + length_delimited_len(d.len()))
            .sum();
        let len = self.name_len() + domains_len + self.rest.len();
        let field = encoding::key_len(VIRTUAL_HOSTS_FIELD) + length_delimited_len(len);
        (field, len)
    }

    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            encoding::string::encoded_len(NAME_FIELD, &self.name)
        }
    }

    /// Writes the virtual host with only `domains` as a `virtual_hosts` field into `buf`.
    fn encode_field(&self, domains: &[&str], buf: &mut Vec<u8>) {
        let (_, len) = self.field_len(domains);
        encoding::encode_key(VIRTUAL_HOSTS_FIELD, WireType::LengthDelimited, buf);
        encoding::encode_varint(len as u64, buf);
        if !self.name.is_empty() {
            encoding::string::encode(NAME_FIELD, &self.name, buf);
        }
        for d in domains {
            encoding::encode_key(DOMAINS_FIELD, WireType::LengthDelimited, buf);
            encoding::encode_varint(d.len() as u64, buf);
            buf.extend_from_slice(d.as_bytes());
        }
        buf.extend_from_slice(&self.rest);
    }
}

fn length_delimited_len(len: usize) -> usize {
    encoding::encoded_len_varint(len as u64) + len
}

/// [`super::outbound_route`] from encoded virtual hosts: byte for byte the same resource.
pub fn outbound_route_encoded<'a>(
    vhosts: impl IntoIterator<Item = &'a EncodedVirtualHost>,
) -> Resource {
    let mut sorted: Vec<&EncodedVirtualHost> = vhosts.into_iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut claimed: HashSet<&str> = HashSet::new();
    let kept: Vec<(&EncodedVirtualHost, Vec<&str>)> = sorted
        .into_iter()
        .map(|vhost| {
            let domains = vhost.domains.iter().map(String::as_str);
            (vhost, domains.filter(|d| claimed.insert(d)).collect())
        })
        .filter(|(_, domains): &(_, Vec<&str>)| !domains.is_empty())
        .collect();
    let name = OUTBOUND.to_owned();
    let size = encoding::string::encoded_len(NAME_FIELD, &name)
        + kept.iter().map(|(v, d)| v.field_len(d).0).sum::<usize>();
    // Exact: a 10,000-service route is megabytes, kept as long as it is current.
    let mut buf = Vec::with_capacity(size);
    encoding::string::encode(NAME_FIELD, &name, &mut buf);
    for (vhost, domains) in &kept {
        vhost.encode_field(domains, &mut buf);
    }
    Resource::from_chunks(OUTBOUND, resource::ROUTE, vec![Bytes::from(buf)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outbound route built as one message and encoded.
    fn encoded_whole(vhosts: &[VirtualHost]) -> Resource {
        let mut sorted: Vec<&VirtualHost> = vhosts.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut claimed: HashSet<&str> = HashSet::new();
        let mut virtual_hosts = Vec::new();
        for vhost in sorted {
            let domains: Vec<String> = vhost
                .domains
                .iter()
                .filter(|d| claimed.insert(d.as_str()))
                .cloned()
                .collect();
            if !domains.is_empty() {
                virtual_hosts.push(VirtualHost {
                    domains,
                    ..vhost.clone()
                });
            }
        }
        let config = RouteConfiguration {
            name: OUTBOUND.to_owned(),
            virtual_hosts,
            ..Default::default()
        };
        Resource::new(OUTBOUND, resource::ROUTE, &config)
    }

    #[test]
    fn encoded_virtual_hosts_give_the_bytes_of_the_whole_route() {
        let b = ["b.ns.global", "b.ns.svc.clusterset.local"];
        let a = ["a.ns.global", "a.ns.svc.clusterset.local"];
        let mut unnamed = service_virtual_host(&["c.ns.global"], 8080, false, "outbound|c");
        unnamed.name.clear();
        let mut long = service_virtual_host(&["d.ns.global"], 80, true, "outbound|d");
        long.domains.push("x".repeat(300));
        let vhosts = vec![
            service_virtual_host(&b, 80, true, "outbound|80||b.ns.global"),
            service_virtual_host(&a, 80, true, "outbound|80||a.ns.global"),
            service_virtual_host(&a, 9090, false, "outbound|9090||a.ns.global"),
            // Claims only domains taken already: dropped.
            virtual_host("z:80".to_owned(), vec!["a.ns.global".to_owned()], "x"),
            // Shares one domain with `a`: keeps the others.
            virtual_host(
                "y:80".to_owned(),
                vec!["b.ns.global:80".to_owned(), "y:80".to_owned()],
                "y",
            ),
            unnamed,
            long,
        ];
        let encoded: Vec<EncodedVirtualHost> = vhosts
            .iter()
            .map(|v| EncodedVirtualHost::new(v.clone()))
            .collect();
        let got = outbound_route_encoded(&encoded);
        let expected = encoded_whole(&vhosts);
        assert_eq!(got.body.to_vec(), expected.body.to_vec());
        assert_eq!(got, expected);
        let empty: [&EncodedVirtualHost; 0] = [];
        assert_eq!(outbound_route_encoded(empty), encoded_whole(&[]));
    }
}
