//! A global service's ports and their protocols (Istio's protocol selection).

use std::sync::Arc;

use meshfleet_model::Protocol;

use meshfleet_api::{Service, ServicePortSpec};
use meshfleet_model::problem::{Problem, Source};

/// A port of a global service, before its endpoints are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PortSpec {
    /// Empty when unnamed.
    pub name: String,
    pub port: u32,
    pub protocol: Protocol,
}

/// The template's ports when there is a template, else the union (by name) of the observed
/// copies' ports, the first cluster by name deciding a port's number. UDP and SCTP ports are left
/// out: the mesh proxies TCP only, as Istio does.
pub(super) fn service_ports(
    template: Option<&Arc<Service>>,
    observed: &[Arc<Service>],
    problems: &mut Vec<Problem>,
) -> Vec<PortSpec> {
    if let Some(template) = template {
        return template.spec.ports.iter().filter_map(port_spec).collect();
    }
    let mut ports: Vec<(PortSpec, &str)> = Vec::new();
    for service in observed {
        let cluster = service.source_cluster().unwrap_or_default();
        for (i, spec) in service.spec.ports.iter().enumerate() {
            let Some(port) = port_spec(spec) else {
                continue;
            };
            match ports.iter().find(|(p, _)| p.name == port.name) {
                None => ports.push((port, cluster)),
                Some((first, first_cluster)) if first.port != port.port => problems.push(
                    Problem::new(
                        Source::object(
                            "Service",
                            service.metadata.namespace_or_default(),
                            &service.metadata.name,
                        )
                        .in_cluster(cluster),
                        format!(
                            "port {:?} is {} here but {} in cluster {first_cluster}, which wins",
                            port.name, port.port, first.port
                        ),
                    )
                    .at(format!("spec.ports[{i}].port")),
                ),
                Some(_) => {}
            }
        }
    }
    ports.into_iter().map(|(p, _)| p).collect()
}

fn port_spec(spec: &ServicePortSpec) -> Option<PortSpec> {
    let transport = spec.protocol.as_deref().unwrap_or("TCP");
    if !transport.eq_ignore_ascii_case("TCP") {
        return None;
    }
    Some(PortSpec {
        name: spec.name().to_owned(),
        port: spec.port,
        protocol: protocol(spec.port, spec.name(), spec.app_protocol.as_deref()),
    })
}

/// Ports for which Istio does not sniff: unnamed, they are TCP.
const WELL_KNOWN_TCP_PORTS: &[u32] = &[25, 53, 3306, 27017];

/// Istio's rule (`kube.ConvertProtocol`): `appProtocol` if set, else the port name's prefix
/// before `-` (`http-api` → http), case-insensitive; a name Istio does not know is HTTP here
/// (Istio would sniff), except on well-known TCP ports.
pub(super) fn protocol(port: u32, name: &str, app_protocol: Option<&str>) -> Protocol {
    let name = match app_protocol {
        Some("kubernetes.io/h2c") => return Protocol::Http2,
        Some("kubernetes.io/ws") => return Protocol::Http,
        Some("kubernetes.io/wss") => return Protocol::Tcp,
        Some(app_protocol) => app_protocol,
        None => name,
    };
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("grpc-web") {
        return Protocol::Http;
    }
    let prefix = lower.split('-').next().unwrap_or_default();
    match prefix {
        "http" | "http_proxy" => Protocol::Http,
        "http2" => Protocol::Http2,
        "grpc" => Protocol::Grpc,
        "tcp" | "udp" | "https" | "tls" | "mongo" | "redis" | "mysql" | "hbone" => Protocol::Tcp,
        _ if WELL_KNOWN_TCP_PORTS.contains(&port) => Protocol::Tcp,
        _ => Protocol::Http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_selection() {
        let cases = [
            (80, "http", None, Protocol::Http),
            (80, "http-api", None, Protocol::Http),
            (80, "HTTP2-x", None, Protocol::Http2),
            (9090, "grpc", None, Protocol::Grpc),
            (9090, "grpc-web", None, Protocol::Http),
            (5432, "tcp-postgres", None, Protocol::Tcp),
            (443, "https", None, Protocol::Tcp),
            (80, "", None, Protocol::Http),
            (3306, "", None, Protocol::Tcp),
            (80, "web", None, Protocol::Http),
            (80, "tcp", Some("http2"), Protocol::Http2),
            (80, "http", Some("grpc"), Protocol::Grpc),
            (80, "web", Some("kubernetes.io/h2c"), Protocol::Http2),
            (80, "http", Some("tcp"), Protocol::Tcp),
        ];
        for (port, name, app, want) in cases {
            assert_eq!(protocol(port, name, app), want, "{port} {name} {app:?}");
        }
    }
}
