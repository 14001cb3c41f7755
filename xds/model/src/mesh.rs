//! The mesh as xDS, DNS and the CA see it: global services, their ports and endpoints, each
//! endpoint with the locality and network of the cluster it runs in, and the locality policy that
//! says how a client's traffic is spread over localities. Nothing here knows about Kubernetes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

/// Where a workload or a client runs: Istio's `region/zone/subzone`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

impl Locality {
    pub fn new(region: &str, zone: &str, subzone: &str) -> Self {
        Self {
            region: region.to_owned(),
            zone: zone.to_owned(),
            subzone: subzone.to_owned(),
        }
    }

    /// Parses `region/zone/subzone` (trailing parts optional), as Istio writes localities.
    pub fn parse(s: &str) -> Self {
        let mut parts = s.splitn(3, '/');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        Self {
            region: next(),
            zone: next(),
            subzone: next(),
        }
    }
}

impl std::fmt::Display for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.region, self.zone, self.subzone)
    }
}

/// The application protocol of a service port, from its `appProtocol` or name prefix (Istio's rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Http2,
    Grpc,
    Tcp,
}

/// One backend of a global service port. What it shares with the other endpoints of its
/// cluster (locality, network, cluster, gateway, labels) is shared, not copied: a mesh of a
/// million endpoints holds each of those once per cluster or slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    /// Pod IP as the endpoint's own network reaches it.
    pub address: String,
    /// The pod's IPs of its other families (a dual-stack pod: its IPv6 address beside the
    /// IPv4 one); Envoy tries them too (`additional_addresses`).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub additional_addresses: Box<[String]>,
    /// Target port on the pod for this service port.
    pub port: u32,
    /// Locality of the member cluster the endpoint runs in (of its node, when the cluster
    /// spans zones).
    pub locality: Arc<Locality>,
    /// Network of that cluster; clients on another network go through `gateway`.
    pub network: Arc<str>,
    /// Member cluster the endpoint was observed in.
    pub cluster: Arc<str>,
    /// Load-balancing weight (EndpointSlice hints or 1).
    pub weight: u32,
    /// EndpointSlice `conditions.ready`; endpoints that are not ready are not sent to clients.
    pub ready: bool,
    /// East-west gateway (`host`, port 15443) of the endpoint's network, if it has one.
    pub gateway: Option<Arc<Gateway>>,
    /// Labels Istio's `failoverPriority` matches on (pod labels plus the topology labels);
    /// shared by every endpoint of one EndpointSlice.
    pub labels: Arc<BTreeMap<String, String>>,
}

/// An east-west gateway: where traffic for another network enters it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Gateway {
    pub address: String,
    pub port: u32,
    /// The other addresses of a gateway given by hostname (it resolved to several): Envoy
    /// tries them when `address` does not answer.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub additional_addresses: Box<[String]>,
}

/// A port of a global service with the endpoints that serve it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServicePort {
    pub name: String,
    pub port: u32,
    pub protocol: Protocol,
    pub endpoints: Vec<Endpoint>,
}

/// One exported service, merged over all clusters that have it (namespace sameness).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GlobalService {
    pub name: String,
    pub namespace: String,
    /// `<svc>.<ns>.global`: cluster names are `outbound|<port>||<host>`.
    pub host: String,
    /// Other names routed to the same clusters: `<svc>.<ns>.svc.clusterset.local`.
    pub aliases: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub locality: LocalityPolicy,
    /// Envoy outlier detection for the service's clusters; `None` = none. Istio's failover
    /// (`failover`, `failoverPriority`) applies only where this is set, as in Istio.
    pub outlier_detection: Option<OutlierDetection>,
    /// What DNS answers for the service besides its ports.
    pub dns: ServiceDns,
}

/// What DNS needs of a service besides its ports (the MCS DNS specification, KEP-1645).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceDns {
    /// `clusterIP: None`: its names answer the ready endpoints' addresses, not a virtual IP.
    pub headless: bool,
    /// Families of its virtual IPs (`ipFamilies`; IPv4 when none is given).
    pub ipv4: bool,
    pub ipv6: bool,
    /// Its virtual IPs (ClusterSetIP services), allocated by the catalog: DNS answers them,
    /// and xDS and NDS use the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip6: Option<std::net::Ipv6Addr>,
    /// A headless service answers a client in a known zone with that zone's endpoints only
    /// (`meshfleet.io/dns-answers: local-only`); otherwise its zone's first.
    pub local_only: bool,
    /// Ready endpoints with a hostname (`<hostname>.<cluster>.<svc>.<ns>.svc.clusterset.local`
    /// for a headless service), in cluster then hostname order.
    pub named: Vec<NamedEndpoint>,
}

impl Default for ServiceDns {
    fn default() -> Self {
        Self {
            headless: false,
            local_only: false,
            ipv4: true,
            ipv6: false,
            vip: None,
            vip6: None,
            named: Vec::new(),
        }
    }
}

/// An endpoint with a DNS label of its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NamedEndpoint {
    pub cluster: String,
    pub hostname: String,
    /// Its addresses, every family.
    pub addresses: Vec<String>,
}

impl GlobalService {
    /// Istio's cluster name for one port of this service.
    pub fn cluster_name(&self, port: u32) -> String {
        format!("outbound|{port}||{}", self.host)
    }
}

/// How a client's traffic is spread over localities.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LocalityPolicy {
    /// meshfleet's tiers, from the `meshfleet.io/locality-weights` annotation.
    Tiers(TierWeights),
    /// An Istio DestinationRule's `localityLbSetting`, applied with Istio's algorithm.
    Istio(LocalityLbSetting),
}

impl Default for LocalityPolicy {
    fn default() -> Self {
        Self::Tiers(TierWeights::default())
    }
}

/// Percent of traffic per locality tier, relative to the client. `None` = tier not named:
/// its endpoints fall into the nearest named tier further out (`remote` takes all the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TierWeights {
    /// Same region, zone and subzone.
    pub subzone: Option<u32>,
    /// Same region and zone (`local`).
    pub zone: Option<u32>,
    /// Same region.
    pub region: Option<u32>,
    /// Everything else.
    pub remote: Option<u32>,
}

impl TierWeights {
    pub const fn new(
        subzone: Option<u32>,
        zone: Option<u32>,
        region: Option<u32>,
        remote: Option<u32>,
    ) -> Self {
        Self {
            subzone,
            zone,
            region,
            remote,
        }
    }
}

impl Default for TierWeights {
    /// `local=99,remote=1`.
    fn default() -> Self {
        Self {
            subzone: None,
            zone: Some(99),
            region: None,
            remote: Some(1),
        }
    }
}

/// Istio's `LocalityLoadBalancerSetting` (networking.istio.io DestinationRule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbSetting {
    /// `enabled: false` turns locality load balancing off for the host.
    pub enabled: Option<bool>,
    pub distribute: Vec<Distribute>,
    pub failover: Vec<Failover>,
    pub failover_priority: Vec<String>,
}

/// `distribute[]`: from a locality (wildcards allowed), percent of traffic to each `to` locality.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Distribute {
    pub from: String,
    /// Kept in the order the rule wrote them (Istio iterates a map; we fix the order).
    pub to: Vec<(String, u32)>,
}

/// `failover[]`: region to fail over to when the client's region has no healthy endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Failover {
    pub from: String,
    pub to: String,
}

/// Envoy outlier detection, as an Istio DestinationRule's `outlierDetection` sets it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_local_origin_failures: Option<u32>,
    pub interval_ms: u64,
    pub base_ejection_time_ms: u64,
    pub max_ejection_percent: u32,
    /// Istio's `minHealthPercent`: Envoy's healthy panic threshold.
    pub min_health_percent: u32,
}

impl Default for OutlierDetection {
    /// What every exported service gets without a DestinationRule. A backend that refuses or
    /// drops a connection is ejected at once (local-origin errors, counted apart from HTTP
    /// 5xx), so when a zone dies its share moves to the next tier within a request or two.
    fn default() -> Self {
        Self {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: None,
            consecutive_local_origin_failures: Some(1),
            interval_ms: 1_000,
            base_ejection_time_ms: 15_000,
            max_ejection_percent: 100,
            min_health_percent: 0,
        }
    }
}

/// The whole mesh at one moment; services sorted by host.
#[derive(Clone, Debug, Default)]
pub struct Mesh {
    pub services: BTreeMap<String, Arc<GlobalService>>,
}

/// What distinguishes one client's view from another's: clients with equal keys share one
/// snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ClientKey {
    pub locality: Locality,
    /// Istio's `NETWORK` node metadata; empty = the default network.
    pub network: String,
    /// Port of the `meshfleet_outbound` listener (`MESHFLEET_LISTENER_PORT`, default 15001).
    pub listener_port: u32,
    /// Only the labels some `failoverPriority` names, so that other labels do not split the cache.
    pub labels: BTreeMap<String, String>,
    /// The client has a verified identity and its certificate over SDS (the mTLS port): it
    /// reaches other networks' east-west gateways with Istio's mutual TLS.
    pub secure: bool,
    /// The client's connections are not captured (Istio's `INTERCEPTION_MODE: NONE`): the
    /// listeners of virtual IPs bind their addresses instead of waiting for a hand-off.
    pub bind_vips: bool,
}
