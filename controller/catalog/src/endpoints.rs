//! A global service's endpoints, from its EndpointSlices in every member cluster: each address
//! with the locality and network of its cluster and, across networks, its gateway.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use meshfleet_model::Endpoint;

use super::ports::PortSpec;
use super::topology::{Site, Topology};
use meshfleet_api::{
    ANNOTATION_WEIGHT, EndpointPort, EndpointSlice, LABEL_SOURCE_CLUSTER, ObjectKey,
};
use meshfleet_model::problem::{Problem, Source};

/// Per port (in the order of the service's ports), its endpoints; and the clusters they are in.
#[derive(Debug, Default)]
pub(super) struct Endpoints {
    pub per_port: Vec<Vec<Endpoint>>,
    pub clusters: BTreeSet<String>,
}

/// The endpoints of `slices` (one service's, in one namespace) for `ports`.
pub(super) fn endpoints(
    ports: &[PortSpec],
    slices: &[Arc<EndpointSlice>],
    topology: &Topology,
    problems: &mut Vec<Problem>,
) -> Endpoints {
    let mut out = Endpoints {
        per_port: vec![Vec::new(); ports.len()],
        clusters: BTreeSet::new(),
    };
    // The pod behind each endpoint, when its slice names it (parallel to `per_port`; borrowed
    // from the slices).
    let mut pods: Vec<Vec<Option<(&str, &str)>>> = vec![Vec::new(); ports.len()];
    for slice in slices {
        let Some((cluster, site)) = placed(slice, topology, problems) else {
            continue;
        };
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            if slice.address_type != "FQDN" {
                problems.push(
                    Problem::new(
                        source(slice),
                        format!("unsupported addressType {:?}; skipped", slice.address_type),
                    )
                    .at("addressType"),
                );
            }
            continue;
        }
        let template = Endpoint {
            address: String::new(),
            additional_addresses: Box::default(),
            port: 0,
            locality: site.locality.clone().unwrap_or_default(),
            network: site.network.clone(),
            cluster: site.cluster.clone(),
            weight: weight(slice, problems),
            ready: true,
            gateway: topology.gateway(&site.network).cloned(),
            labels: Arc::new(labels(slice, cluster, site)),
        };
        let matched = match_ports(ports, slice);
        // Endpoints of one slice in one zone share their placement.
        let mut zoned: BTreeMap<&str, Endpoint> = BTreeMap::new();
        for (i, endpoint) in slice.endpoints.iter().enumerate() {
            if endpoint.addresses.is_empty() {
                problems.push(
                    Problem::new(source(slice), "endpoint has no addresses; skipped")
                        .at(format!("endpoints[{i}].addresses")),
                );
                continue;
            }
            let located = match endpoint.zone.as_deref() {
                Some(zone) if !zone.is_empty() && zone != template.locality.zone => zoned
                    .entry(zone)
                    .or_insert_with(|| in_zone(&template, zone)),
                _ => &template,
            };
            // One endpoint is one pod, reached at its first address: discovery.k8s.io/v1
            // defines no meaning for the others, and kube-proxy reads only the first.
            let address = &endpoint.addresses[0];
            if let Err(message) = check_address(address, &slice.address_type) {
                problems.push(
                    Problem::new(source(slice), format!("{message}; endpoint skipped"))
                        .at(format!("endpoints[{i}].addresses[0]")),
                );
                continue;
            }
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind == "Pod" && !r.name.is_empty())
                .map(|r| (r.namespace.as_str(), r.name.as_str()));
            for &(port_index, target) in &matched {
                out.per_port[port_index].push(Endpoint {
                    address: address.clone(),
                    port: target,
                    ready: endpoint.ready(),
                    ..located.clone()
                });
                pods[port_index].push(pod);
            }
        }
        if !matched.is_empty() {
            out.clusters.insert(cluster.to_owned());
        }
    }
    for (endpoints, pods) in out.per_port.iter_mut().zip(pods) {
        *endpoints = one_per_pod(std::mem::take(endpoints), pods);
        endpoints.sort_by(|a, b| {
            (&a.locality, &a.cluster, &a.address, a.port).cmp(&(
                &b.locality,
                &b.cluster,
                &b.address,
                b.port,
            ))
        });
    }
    out
}

/// Merges the endpoints of one pod (same cluster, same `targetRef`): a dual-stack pod is in an
/// IPv4 and an IPv6 slice, and one pod may briefly be in two slices of one family while they
/// are rebalanced. It is one host: at its IPv4 address (as Istio, which skips a dual-stack
/// pod's IPv6 slice), with its other addresses as additional ones. Endpoints without a pod
/// are kept as they are.
fn one_per_pod(endpoints: Vec<Endpoint>, pods: Vec<Option<(&str, &str)>>) -> Vec<Endpoint> {
    if pods.iter().all(Option::is_none) {
        return endpoints;
    }
    let mut out: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
    let mut by_pod: HashMap<(Arc<str>, &str, &str), usize> = HashMap::new();
    for (endpoint, pod) in endpoints.into_iter().zip(pods) {
        let Some((namespace, name)) = pod else {
            out.push(endpoint);
            continue;
        };
        let key = (endpoint.cluster.clone(), namespace, name);
        let Some(&at) = by_pod.get(&key) else {
            by_pod.insert(key, out.len());
            out.push(endpoint);
            continue;
        };
        let kept = &mut out[at];
        if kept.address == endpoint.address || kept.additional_addresses.contains(&endpoint.address)
        {
            continue;
        }
        let mut addresses: Vec<String> = std::iter::once(std::mem::take(&mut kept.address))
            .chain(std::mem::take(&mut kept.additional_addresses))
            .chain(std::iter::once(endpoint.address))
            .collect();
        // IPv4 first; otherwise as they came.
        addresses.sort_by_key(|a| !a.contains('.') || a.contains(':'));
        kept.address = addresses.remove(0);
        kept.additional_addresses = addresses.into_boxed_slice();
        // Ready if it is ready in any of its slices.
        kept.ready |= endpoint.ready;
    }
    out
}

/// The slice's cluster and where it is; `None` (with a problem) when it cannot be placed.
fn placed<'a>(
    slice: &'a EndpointSlice,
    topology: &'a Topology,
    problems: &mut Vec<Problem>,
) -> Option<(&'a str, &'a Site)> {
    let field = format!("metadata.labels[\"{LABEL_SOURCE_CLUSTER}\"]");
    let Some(cluster) = slice.metadata.source_cluster() else {
        problems.push(Problem::new(source(slice), "no source cluster; slice skipped").at(field));
        return None;
    };
    let Some(site) = topology.site(cluster) else {
        problems.push(
            Problem::new(
                source(slice),
                format!("unknown cluster {cluster:?}; slice skipped"),
            )
            .at(field),
        );
        return None;
    };
    if site.locality.is_none() {
        problems.push(Problem::new(
            source(slice),
            format!("Cluster {cluster} has no spec.region; slice skipped"),
        ));
        return None;
    }
    Some((cluster, site))
}

/// (index of the service port, target port on the endpoint) for each service port the slice
/// serves: same name, or the single unnamed port of a slice for a single-port service.
fn match_ports(ports: &[PortSpec], slice: &EndpointSlice) -> Vec<(usize, u32)> {
    // Service ports are TCP (UDP and SCTP ones are left out): so are the slice ports that can
    // serve them. An absent protocol is TCP, as in Kubernetes.
    let tcp: Vec<&EndpointPort> = slice
        .ports
        .iter()
        .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .collect();
    let mut matched = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let by_name = tcp.iter().find(|p| p.name() == port.name);
        let single = match (ports.len(), tcp.as_slice()) {
            (1, [only]) if only.name().is_empty() => Some(only),
            _ => None,
        };
        if let Some(target) = by_name.or(single).and_then(|p| p.port) {
            matched.push((i, target));
        }
    }
    matched
}

/// The endpoint as placed in `zone` (the zone of its node, from the slice), which differs from
/// its cluster's first zone: clusters can span zones, and Istio places each endpoint by its own
/// node.
fn in_zone(template: &Endpoint, zone: &str) -> Endpoint {
    let mut endpoint = template.clone();
    let mut locality = (*endpoint.locality).clone();
    locality.zone = zone.to_owned();
    endpoint.locality = Arc::new(locality);
    let mut labels = (*endpoint.labels).clone();
    labels.insert("topology.kubernetes.io/zone".to_owned(), zone.to_owned());
    endpoint.labels = Arc::new(labels);
    endpoint
}

/// Why an endpoint's address is not one Envoy can connect to.
#[derive(Debug, thiserror::Error)]
enum AddressError {
    /// The address is not an IP address.
    #[error("address {address:?} is not an IP address")]
    ParseAddress {
        address: String,
        #[source]
        source: std::net::AddrParseError,
    },
    /// The address is an IP of the other family than the slice's `addressType`.
    #[error("address {address:?} is not {address_type}")]
    MatchAddressType {
        address: String,
        address_type: String,
    },
}

/// An address Envoy can connect to, of the slice's address type.
fn check_address(address: &str, address_type: &str) -> Result<(), AddressError> {
    match (address.parse::<std::net::IpAddr>(), address_type) {
        (Ok(std::net::IpAddr::V4(_)), "IPv4") | (Ok(std::net::IpAddr::V6(_)), "IPv6") => Ok(()),
        (Ok(_), _) => Err(AddressError::MatchAddressType {
            address: address.to_owned(),
            address_type: address_type.to_owned(),
        }),
        (Err(source), _) => Err(AddressError::ParseAddress {
            address: address.to_owned(),
            source,
        }),
    }
}

/// `meshfleet.io/weight`, default 1; Envoy wants at least 1.
fn weight(slice: &EndpointSlice, problems: &mut Vec<Problem>) -> u32 {
    let Some(value) = slice.metadata.annotation(ANNOTATION_WEIGHT) else {
        return 1;
    };
    match value.trim().parse::<u32>() {
        Ok(weight) if weight >= 1 => weight,
        _ => {
            problems.push(
                Problem::new(
                    source(slice),
                    format!("weight {value:?} is not an integer >= 1; using 1"),
                )
                .at(format!("metadata.annotations[\"{ANNOTATION_WEIGHT}\"]")),
            );
            1
        }
    }
}

/// The slice's labels, then the topology labels of its cluster (which win: the cluster decides
/// where the endpoint is).
fn labels(slice: &EndpointSlice, cluster: &str, site: &Site) -> BTreeMap<String, String> {
    let mut labels = slice.metadata.labels.clone();
    let locality = site.locality.clone().unwrap_or_default();
    let mut set = |key: &str, value: &str| {
        labels.insert(key.to_owned(), value.to_owned());
    };
    set("topology.kubernetes.io/region", &locality.region);
    set("topology.kubernetes.io/zone", &locality.zone);
    if !locality.subzone.is_empty() {
        set("topology.istio.io/subzone", &locality.subzone);
    }
    set("topology.istio.io/network", &site.network);
    set("topology.istio.io/cluster", cluster);
    labels
}

/// `EndpointSlice team-a/api-x (cluster east-1)`: made only when there is a problem to report.
fn source(slice: &EndpointSlice) -> Source {
    Source::from(&ObjectKey::of(
        &slice.api_version,
        "EndpointSlice",
        &slice.metadata,
    ))
}
