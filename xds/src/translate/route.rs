//! RDS pieces: a virtual host per HTTP port, routing everything to the port's cluster with
//! Istio's defaults (no timeout, retries on a different host).

use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    retry_policy::{RetryHostPredicate, retry_host_predicate},
    route, route_action, route_match,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use super::to_any;

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
