//! What a client's Envoy does with what meshfleet sends it: the share of traffic each locality
//! gets, before or after a failure, computed from the very cluster and load assignment the
//! client is served.
//!
//! ```text
//!  GlobalService + ClientKey ──translate──> Cluster (CDS) + ClusterLoadAssignment (EDS)
//!  Failure (zones, clusters, N% unready) ──> hosts marked unhealthy, as outlier detection would
//!                                            eject them
//!      ──> Envoy's load balancer, on paper ──> Split: per locality, its priority and share
//! ```
//!
//! The arithmetic is Envoy's (1.36, `source/common/upstream/load_balancer_impl.cc`):
//! - a priority's health is `min(100, 140 × healthy / hosts)` (integers; the overprovisioning
//!   factor 1.4), the total availability `min(100, Σ health)`, and each priority takes
//!   `min(left, health × 100 / total)` of the load in order, the rounding remainder going to
//!   the first priority with any health (`distributeLoad`); with no health anywhere, the load
//!   goes by host count (total panic);
//! - a priority whose healthy hosts are below the cluster's panic threshold (Istio's
//!   `minHealthPercent`; 0 turns panic off) uses all its hosts by weight, localities aside;
//! - otherwise, with locality-weighted balancing, a locality's effective weight is its weight
//!   times `min(1, 1.4 × healthy / hosts)`; without it, hosts are picked by weight.
//!
//! Hosts behind an east-west gateway are one Envoy host, the gateway: it fails only when
//! everything behind it fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
use envoy_types::pb::envoy::config::core::v3::address;
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use prost::Message;
use serde::Serialize;

use crate::model::{ClientKey, Endpoint, GlobalService, Locality, LocalityPolicy};
use crate::translate::{ServiceEndpoints, translate_shared};

/// Envoy's default overprovisioning factor, in percent.
const OVERPROVISIONING: u64 = 140;

/// What fails, as outlier detection would see it: every endpoint in these zones or clusters,
/// and `unready_percent` of each locality's hosts (rounded, the last ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    pub zones: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
    pub unready_percent: u32,
}

/// The traffic split one client gets for one port of a service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Split {
    /// `outbound|<port>||<host>`.
    pub cluster: String,
    /// The rule that set the locality weights and priorities.
    pub rule: String,
    /// Percent of the load per priority, as Envoy spreads it.
    pub priority_load: Vec<u32>,
    /// Whether locality weights apply (else hosts are picked by weight across localities).
    pub locality_weighted: bool,
    /// Every locality the client can reach, in priority then locality order.
    pub localities: Vec<LocalityShare>,
    /// No host is healthy: Envoy spreads the load over all hosts anyway (total panic).
    pub total_panic: bool,
    /// No host is healthy and panic mode is off: requests fail (503, no healthy upstream).
    pub no_healthy_host: bool,
    /// Failed hosts outlier detection does not eject (its `max_ejection_percent`, or none
    /// configured): they keep their share, and the requests sent to them fail.
    pub not_ejected: usize,
}

/// One locality's part of a [`Split`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocalityShare {
    pub locality: Locality,
    pub priority: u32,
    /// The locality weight the client was sent.
    pub weight: u32,
    /// Envoy hosts, and how many of them are healthy after the failure.
    pub hosts: usize,
    pub healthy: usize,
    /// Percent of the client's requests that go here.
    pub percent: f64,
    /// How the locality stands to the client: `subzone`, `zone`, `region` or `remote`.
    pub relation: &'static str,
    /// The east-west gateway its endpoints are reached through, if on another network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_gateway: Option<String>,
    /// Its Envoy hosts: pods, or the gateway standing for those of another network.
    pub endpoints: Vec<HostHealth>,
}

/// One Envoy host of a [`LocalityShare`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostHealth {
    /// `address:port`.
    pub address: String,
    /// In rotation: up, or failed but not ejected.
    pub healthy: bool,
    /// Down in the what-if.
    pub failing: bool,
}

/// Why a split cannot be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error("{host} has no port {port} (ports: {ports:?})")]
    NoPort {
        host: String,
        port: u32,
        ports: Vec<u32>,
    },
}

/// The split `key`'s clients get for `port` of `svc` (its first port when `None`) after
/// `failure`.
///
/// # Errors
/// The service has no such port.
pub fn split(
    svc: &GlobalService,
    port: Option<u32>,
    key: &ClientKey,
    failure: &Failure,
) -> Result<Split, ExplainError> {
    Ok(Explainer::new(svc, port)?.split(key, failure))
}

/// Splits of one service port for many clients: what does not depend on the client (the
/// cluster, the endpoints encoded per network, the endpoints by address) is done once.
pub struct Explainer<'a> {
    svc: &'a GlobalService,
    name: String,
    locality_weighted: bool,
    panic_threshold: f64,
    /// The cluster's outlier detection's `max_ejection_percent` (Envoy's default 10);
    /// `None`: no outlier detection, nothing is ejected.
    max_ejection_percent: Option<u32>,
    /// Encoded endpoints per client network.
    views: HashMap<String, ServiceEndpoints>,
    /// Ready endpoints by their own address and port.
    direct: HashMap<(&'a str, u32), Vec<&'a Endpoint>>,
    /// Ready endpoints behind a gateway, by the gateway's address and port and their locality.
    behind: HashMap<(&'a str, u32, &'a Locality), Vec<&'a Endpoint>>,
}

impl<'a> Explainer<'a> {
    /// # Errors
    /// The service has no such port.
    pub fn new(svc: &'a GlobalService, port: Option<u32>) -> Result<Self, ExplainError> {
        let ports: Vec<u32> = svc.ports.iter().map(|p| p.port).collect();
        let port = port.or_else(|| ports.first().copied()).unwrap_or_default();
        let Some(model_port) = svc.ports.iter().find(|p| p.port == port) else {
            return Err(ExplainError::NoPort {
                host: svc.host.clone(),
                port,
                ports,
            });
        };
        let name = svc.cluster_name(port);
        let cluster = translate_shared(svc)
            .clusters
            .into_iter()
            .find(|c| c.name == name)
            .and_then(|c| Cluster::decode(&*c.body.to_vec()).ok())
            .unwrap_or_default();
        let lb = cluster.common_lb_config.clone().unwrap_or_default();
        let mut direct: HashMap<_, Vec<&Endpoint>> = HashMap::new();
        let mut behind: HashMap<_, Vec<&Endpoint>> = HashMap::new();
        for e in model_port.endpoints.iter().filter(|e| e.ready) {
            direct
                .entry((e.address.as_str(), e.port))
                .or_default()
                .push(e);
            if let Some(g) = &e.gateway
                && g.address != e.address
            {
                behind
                    .entry((g.address.as_str(), g.port, &*e.locality))
                    .or_default()
                    .push(e);
            }
        }
        Ok(Self {
            svc,
            locality_weighted: matches!(
                lb.locality_config_specifier,
                Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_))
            ),
            panic_threshold: lb.healthy_panic_threshold.map_or(50.0, |p| p.value),
            max_ejection_percent: cluster
                .outlier_detection
                .as_ref()
                .map(|od| od.max_ejection_percent.as_ref().map_or(10, |v| v.value)),
            name,
            views: HashMap::new(),
            direct,
            behind,
        })
    }

    /// The split `key`'s clients get after `failure`.
    pub fn split(&mut self, key: &ClientKey, failure: &Failure) -> Split {
        let svc = self.svc;
        let view = self
            .views
            .entry(key.network.clone())
            .or_insert_with(|| ServiceEndpoints::new(svc, &key.network));
        let cla = view
            .load_assignments(svc, key)
            .into_iter()
            .find(|r| r.name == self.name)
            .and_then(|r| ClusterLoadAssignment::decode(&*r.body.to_vec()).ok())
            .unwrap_or_default();
        compute(self, &cla, key, failure)
    }
}

/// The split from the load assignment `cla` one client got.
fn compute(
    x: &Explainer<'_>,
    cla: &ClusterLoadAssignment,
    key: &ClientKey,
    failure: &Failure,
) -> Split {
    let (svc, name, locality_weighted, panic_threshold) = (
        x.svc,
        x.name.clone(),
        x.locality_weighted,
        x.panic_threshold,
    );
    // Each Envoy host, with the model endpoints it stands for.
    let mut localities = Vec::new();
    for group in &cla.endpoints {
        let locality = group
            .locality
            .as_ref()
            .map(|l| Locality::new(&l.region, &l.zone, &l.sub_zone))
            .unwrap_or_default();
        let mut endpoints = Vec::new();
        let mut via_gateway = None;
        let mut host_weights = Vec::new();
        for lb_ep in &group.lb_endpoints {
            let Some((ip, ep_port)) = socket_of(lb_ep) else {
                continue;
            };
            let via = x.behind.get(&(ip.as_str(), ep_port, &locality));
            let is_gateway = via.is_some_and(|v| !v.is_empty());
            let behind: Vec<&Endpoint> = match via {
                Some(v) if !v.is_empty() => v.clone(),
                _ => x
                    .direct
                    .get(&(ip.as_str(), ep_port))
                    .into_iter()
                    .flatten()
                    .filter(|e| *e.locality == locality)
                    .copied()
                    .collect(),
            };
            if is_gateway {
                via_gateway = Some(format!("{ip}:{ep_port}"));
            }
            let failed = !behind.is_empty() && behind.iter().all(|e| fails(e, failure));
            endpoints.push(HostHealth {
                address: format!("{ip}:{ep_port}"),
                healthy: !failed,
                failing: failed,
            });
            host_weights.push(lb_ep.load_balancing_weight.as_ref().map_or(1, |w| w.value));
        }
        // N% of the locality's pods fail too: the last ones. A gateway stands for pods of
        // another network and stays up while any of them does.
        if via_gateway.is_none() {
            let total = endpoints.len();
            let unready = (total as f64 * f64::from(failure.unready_percent.min(100)) / 100.0)
                .round() as usize;
            for host in endpoints.iter_mut().skip(total - unready.min(total)) {
                host.healthy = false;
                host.failing = true;
            }
        }
        localities.push(Draft {
            share: LocalityShare {
                relation: relation(&key.locality, &locality),
                hosts: endpoints.len(),
                healthy: endpoints.iter().filter(|h| h.healthy).count(),
                weight: group.load_balancing_weight.as_ref().map_or(1, |w| w.value),
                priority: group.priority,
                percent: 0.0,
                locality,
                via_gateway,
                endpoints,
            },
            host_weights,
        });
    }
    localities.sort_by(|a, b| {
        (a.share.priority, &a.share.locality).cmp(&(b.share.priority, &b.share.locality))
    });
    // Outlier detection ejects failed hosts only while fewer than `max_ejection_percent` of the
    // cluster's hosts are ejected (none without outlier detection): the others stay in
    // rotation, and requests sent to them fail.
    let all_hosts: usize = localities.iter().map(|l| l.share.hosts).sum();
    let may_eject = x.max_ejection_percent.map_or(0, |pct| {
        (u64::from(pct.min(100)) * all_hosts as u64).div_ceil(100) as usize
    });
    let mut ejected = 0;
    let mut not_ejected = 0;
    for l in &mut localities {
        for host in l.share.endpoints.iter_mut().filter(|h| h.failing) {
            if ejected < may_eject {
                ejected += 1;
            } else {
                host.healthy = true;
                not_ejected += 1;
            }
        }
        l.share.healthy = l.share.endpoints.iter().filter(|h| h.healthy).count();
    }

    // Priorities: health, then load.
    let levels = localities
        .iter()
        .map(|l| l.share.priority as usize + 1)
        .max()
        .unwrap_or(0);
    let mut hosts = vec![0u64; levels];
    let mut healthy = vec![0u64; levels];
    for l in &localities {
        hosts[l.share.priority as usize] += l.share.hosts as u64;
        healthy[l.share.priority as usize] += l.share.healthy as u64;
    }
    let health: Vec<u64> = hosts
        .iter()
        .zip(&healthy)
        .map(|(&n, &h)| (OVERPROVISIONING * h).checked_div(n).unwrap_or(0).min(100))
        .collect();
    let total_health = health.iter().sum::<u64>().min(100);
    let no_healthy = total_health == 0 && hosts.iter().any(|&n| n > 0);
    // Panic mode is off at a threshold of 0 (Istio's default): no healthy host, no traffic.
    let total_panic = no_healthy && panic_threshold > 0.0;
    let load: Vec<u64> = if no_healthy && !total_panic {
        vec![0; levels]
    } else if total_panic {
        let all: u64 = hosts.iter().sum();
        let mut load: Vec<u64> = hosts.iter().map(|&n| n * 100 / all).collect();
        let rest = 100 - load.iter().sum::<u64>();
        if let Some(first) = hosts.iter().position(|&n| n > 0) {
            load[first] += rest;
        }
        load
    } else {
        distribute(&health, total_health)
    };

    // Within each priority.
    for p in 0..levels {
        let in_p: Vec<usize> = (0..localities.len())
            .filter(|&i| localities[i].share.priority as usize == p)
            .collect();
        // As Envoy's recalculatePerPriorityPanic: a priority can be in panic only while the
        // priorities together are less than fully available.
        let panic = total_panic
            || (total_health < 100
                && hosts[p] > 0
                && (100.0 * healthy[p] as f64 / hosts[p] as f64) < panic_threshold);
        let weights: Vec<f64> = in_p
            .iter()
            .map(|&i| {
                let l = &localities[i];
                if panic {
                    l.host_weights.iter().map(|&w| f64::from(w)).sum()
                } else if locality_weighted {
                    let availability = (OVERPROVISIONING as f64 / 100.0 * l.share.healthy as f64
                        / l.share.hosts.max(1) as f64)
                        .min(1.0);
                    f64::from(l.share.weight) * availability
                } else {
                    l.host_weights
                        .iter()
                        .zip(&l.share.endpoints)
                        .filter(|(_, h)| h.healthy)
                        .map(|(&w, _)| f64::from(w))
                        .sum()
                }
            })
            .collect();
        let sum: f64 = weights.iter().sum();
        for (&i, w) in in_p.iter().zip(weights) {
            localities[i].share.percent = if sum > 0.0 {
                load[p] as f64 * w / sum
            } else {
                0.0
            };
        }
    }
    Split {
        cluster: name,
        rule: rule(svc),
        priority_load: load.into_iter().map(|l| l as u32).collect(),
        locality_weighted,
        localities: localities.into_iter().map(|l| l.share).collect(),
        total_panic,
        no_healthy_host: no_healthy && !total_panic,
        not_ejected,
    }
}

/// A locality while its share is computed.
struct Draft {
    share: LocalityShare,
    /// Each host's load-balancing weight, in `share.endpoints` order.
    host_weights: Vec<u32>,
}

/// Envoy's `distributeLoad`: each priority in order takes what its health allows of what is
/// left; the rounding remainder goes to the first priority with any health.
fn distribute(health: &[u64], total: u64) -> Vec<u64> {
    let mut left = 100u64;
    let mut load = vec![0; health.len()];
    if total == 0 {
        return load;
    }
    for (i, h) in health.iter().enumerate() {
        load[i] = left.min(h * 100 / total);
        left -= load[i];
    }
    if let Some(first) = health.iter().position(|&h| h > 0) {
        load[first] += left;
    }
    load
}

fn fails(e: &Endpoint, failure: &Failure) -> bool {
    failure.zones.contains(&e.locality.zone) || failure.clusters.contains(&*e.cluster)
}

fn socket_of(
    ep: &envoy_types::pb::envoy::config::endpoint::v3::LbEndpoint,
) -> Option<(String, u32)> {
    let Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) = &ep.host_identifier else {
        return None;
    };
    match endpoint.address.as_ref()?.address.as_ref()? {
        address::Address::SocketAddress(s) => match s.port_specifier {
            Some(
                envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(
                    p,
                ),
            ) => Some((s.address.clone(), p)),
            _ => None,
        },
        _ => None,
    }
}

/// How `locality` stands to a client in `client`.
fn relation(client: &Locality, locality: &Locality) -> &'static str {
    if client.region != locality.region {
        "remote"
    } else if client.zone != locality.zone {
        "region"
    } else if client.subzone != locality.subzone {
        "zone"
    } else {
        "subzone"
    }
}

/// The rule behind the service's locality weights and priorities, in words.
pub fn rule(svc: &GlobalService) -> String {
    match &svc.locality {
        LocalityPolicy::Tiers(t) => {
            let tier = |name: &str, v: Option<u32>| v.map(|v| format!("{name}={v}"));
            let tiers: Vec<String> = [
                tier("subzone", t.subzone),
                tier("zone", t.zone),
                tier("region", t.region),
                tier("remote", t.remote),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!(
                "meshfleet.io/locality-weights tiers ({})",
                if tiers.is_empty() {
                    "none named".to_owned()
                } else {
                    tiers.join(",")
                }
            )
        }
        LocalityPolicy::Istio(s) if s.enabled == Some(false) => {
            "DestinationRule localityLbSetting enabled: false (no locality weighting)".to_owned()
        }
        LocalityPolicy::Istio(s) if !s.distribute.is_empty() => {
            "DestinationRule localityLbSetting distribute".to_owned()
        }
        LocalityPolicy::Istio(s) if !s.failover_priority.is_empty() => format!(
            "DestinationRule localityLbSetting failoverPriority {:?}",
            s.failover_priority
        ),
        LocalityPolicy::Istio(s) if !s.failover.is_empty() => {
            "DestinationRule localityLbSetting failover".to_owned()
        }
        LocalityPolicy::Istio(_) => {
            "DestinationRule localityLbSetting (Istio's default: priority by proximity)".to_owned()
        }
    }
}

/// The cache key of a client at `locality` on `network` with `labels`, as the ADS server keys
/// it: the topology labels added as Istio's `AugmentLabels` adds them, then only those some
/// `failoverPriority` names (`label_keys`) kept.
pub fn client_key(
    locality: Locality,
    network: &str,
    mut labels: BTreeMap<String, String>,
    label_keys: &BTreeSet<String>,
) -> ClientKey {
    for (k, v) in [
        ("topology.kubernetes.io/region", &locality.region),
        ("topology.kubernetes.io/zone", &locality.zone),
        ("topology.istio.io/subzone", &locality.subzone),
    ] {
        if !v.is_empty() {
            labels.insert(k.to_owned(), v.clone());
        }
    }
    if !network.is_empty() {
        labels
            .entry("topology.istio.io/network".to_owned())
            .or_insert_with(|| network.to_owned());
    }
    ClientKey {
        locality,
        network: network.to_owned(),
        listener_port: 15001,
        labels: crate::cache::restrict_labels(&labels, label_keys),
        secure: false,
        bind_vips: false,
    }
}

/// The zones the endpoints of `svc` are in: what `--without-zone` may name besides the
/// Clusters' zones.
pub fn zones(svc: &GlobalService) -> BTreeSet<String> {
    svc.ports
        .iter()
        .flat_map(|p| &p.endpoints)
        .map(|e| e.locality.zone.clone())
        .collect()
}

/// Per locality, the percent of a whole [`Split`] (rounded to 0.1), for display and tests.
pub fn percents(split: &Split) -> BTreeMap<String, f64> {
    split
        .localities
        .iter()
        .map(|l| (l.locality.to_string(), (l.percent * 10.0).round() / 10.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::fixtures::{key, service};
    use crate::model::{LocalityLbSetting, OutlierDetection};

    const EAST: &str = "us-east/us-east-1a/";
    const WEST: &str = "us-west/us-west-2a/";

    /// `n` endpoints in `east` and `n` in `west`, the first `dead` east ones in cluster `dead`.
    fn fleet(n: usize, dead: usize, policy: LocalityPolicy) -> GlobalService {
        let mut b = service("echo").http(80);
        for i in 0..n {
            b = b.endpoint(&format!("10.0.1.{i}"), EAST);
            b = b.endpoint(&format!("10.0.2.{i}"), WEST);
        }
        let mut svc = (*b.build()).clone();
        svc.locality = policy;
        let mut east = 0;
        for e in &mut svc.ports[0].endpoints {
            if e.locality.zone == "us-east-1a" {
                if east < dead {
                    e.cluster = Arc::from("dead");
                }
                east += 1;
            }
        }
        svc
    }

    fn shares(svc: &GlobalService, failure: &Failure) -> BTreeMap<String, f64> {
        percents(&split(svc, None, &key(EAST), failure).unwrap())
    }

    fn failing(clusters: &[&str], zones: &[&str], unready: u32) -> Failure {
        Failure {
            clusters: clusters.iter().map(|s| (*s).to_owned()).collect(),
            zones: zones.iter().map(|s| (*s).to_owned()).collect(),
            unready_percent: unready,
        }
    }

    fn istio() -> LocalityPolicy {
        LocalityPolicy::Istio(LocalityLbSetting::default())
    }

    #[test]
    fn default_tiers_keep_99_percent_in_zone_until_the_zone_fails() {
        let svc = fleet(3, 0, LocalityPolicy::default());
        let split = split(&svc, Some(80), &key(EAST), &Failure::default()).unwrap();
        assert_eq!(split.cluster, "outbound|80||echo.default.global");
        assert!(split.rule.contains("zone=99,remote=1"), "{}", split.rule);
        assert_eq!(split.priority_load, [100]);
        let p = percents(&split);
        assert_eq!((p[EAST], p[WEST]), (99.0, 1.0));
        assert_eq!(split.localities[0].relation, "subzone");
        assert_eq!(split.localities[1].relation, "remote");

        // The zone fails: its availability is 0, so is its weight.
        let p = shares(&svc, &failing(&[], &["us-east-1a"], 0));
        assert_eq!((p[EAST], p[WEST]), (0.0, 100.0));
        // Half of every locality unready: availability min(1, 1.4 × 0.5) = 0.7 everywhere.
        let p = shares(&svc, &failing(&[], &[], 50));
        assert_eq!((p[EAST], p[WEST]), (99.0, 1.0));
        // Half of the local zone only: 99 × 0.7 against 1.
        let svc = fleet(4, 2, LocalityPolicy::default());
        let p = shares(&svc, &failing(&["dead"], &[], 0));
        assert_eq!(p[EAST], (1000.0 * 69.3 / 70.3_f64).round() / 10.0);
    }

    #[test]
    fn istio_failover_spills_over_priorities_with_the_overprovisioning_factor() {
        // Istio's default: the client's zone at priority 0, the other region further down.
        let svc = fleet(4, 2, istio());
        let split = split(&svc, None, &key(EAST), &Failure::default()).unwrap();
        assert_eq!(split.localities[0].priority, 0);
        assert!(split.localities[1].priority > 0);
        assert_eq!(percents(&split)[EAST], 100.0);

        // 2 of 4 local hosts fail: priority 0 is 140 × 2 / 4 = 70 healthy, the rest spills.
        let split = super::split(&svc, None, &key(EAST), &failing(&["dead"], &[], 0)).unwrap();
        let p = percents(&split);
        assert_eq!((p[EAST], p[WEST]), (70.0, 30.0));
        assert_eq!(split.localities[0].healthy, 2);
        assert_eq!(split.localities[0].hosts, 4);

        // 1 of 4: 140 × 3 / 4 = 105, capped at 100: nothing spills.
        let svc1 = fleet(4, 1, istio());
        let p = shares(&svc1, &failing(&["dead"], &[], 0));
        assert_eq!(p[EAST], 100.0);
        // The local zone gone: all to the next priority.
        let p = shares(&svc, &failing(&[], &["us-east-1a"], 0));
        assert_eq!((p[EAST], p[WEST]), (0.0, 100.0));
        // Everything gone, panic off (meshfleet's and Istio's default threshold is 0): no
        // healthy host, requests fail.
        let everything = failing(&[], &["us-east-1a", "us-west-2a"], 0);
        let split = super::split(&svc, None, &key(EAST), &everything).unwrap();
        assert!(split.no_healthy_host && !split.total_panic);
        let p = percents(&split);
        assert_eq!((p[EAST], p[WEST]), (0.0, 0.0));
        // With a panic threshold: total panic, by host count over the priorities.
        let mut panicky = svc.clone();
        panicky.outlier_detection = Some(OutlierDetection {
            min_health_percent: 50,
            ..OutlierDetection::default()
        });
        let split = super::split(&panicky, None, &key(EAST), &everything).unwrap();
        assert!(split.total_panic);
        let p = percents(&split);
        assert_eq!((p[EAST], p[WEST]), (50.0, 50.0));
    }

    #[test]
    fn outlier_detection_ejects_no_more_than_its_max_ejection_percent() {
        // 8 hosts, 10%: one ejection; the other dead local host stays in rotation.
        let mut svc = fleet(4, 2, istio());
        svc.outlier_detection = Some(OutlierDetection {
            max_ejection_percent: 10,
            ..OutlierDetection::default()
        });
        let split = split(&svc, None, &key(EAST), &failing(&["dead"], &[], 0)).unwrap();
        assert_eq!(split.not_ejected, 1);
        assert_eq!(split.localities[0].healthy, 3, "one ejected of the two");
        // 140 × 3 / 4 = 105: nothing spills, and a quarter of the local requests fail.
        assert_eq!(percents(&split)[EAST], 100.0);
        // No outlier detection: nothing is ejected at all.
        svc.outlier_detection = None;
        let split = super::split(&svc, None, &key(EAST), &failing(&["dead"], &[], 0)).unwrap();
        assert_eq!(split.not_ejected, 2);
    }

    #[test]
    fn below_the_panic_threshold_a_priority_uses_every_host() {
        let mut svc = fleet(4, 3, istio());
        svc.outlier_detection = Some(OutlierDetection {
            min_health_percent: 50,
            ..OutlierDetection::default()
        });
        // 1 of 4 healthy: priority 0's health is 140 × 1 / 4 = 35, and with the next priority
        // fully healthy the total is 100, so (as in Envoy) no priority is in panic: 35% stays.
        let p = shares(&svc, &failing(&["dead"], &[], 0));
        assert_eq!((p[EAST], p[WEST]), (35.0, 65.0));
    }

    #[test]
    fn an_unknown_port_is_an_error() {
        let svc = fleet(1, 0, LocalityPolicy::default());
        let err = split(&svc, Some(81), &key(EAST), &Failure::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "echo.default.global has no port 81 (ports: [80])"
        );
    }

    #[test]
    fn envoys_distribute_load_gives_the_remainder_to_the_first_healthy_priority() {
        assert_eq!(distribute(&[70, 100], 100), [70, 30]);
        assert_eq!(distribute(&[0, 35, 35], 70), [0, 50, 50]);
        assert_eq!(distribute(&[33, 33, 33], 99), [34, 33, 33]);
        assert_eq!(distribute(&[0, 0], 0), [0, 0]);
    }
}
