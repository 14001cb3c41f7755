//! Locality-weighted load balancing: per client locality, which localities get what share.
//!
//! ```text
//!  endpoints of one port, grouped by locality ──┐
//!  the service's LocalityPolicy ────────────────┼─> assign ─> LocalityLbEndpoints
//!  the client's ClientKey (locality, labels) ───┘              (load_balancing_weight, priority)
//! ```
//!
//! Two policies, picked per service ([`LocalityPolicy`]):
//! - **Tiers** (`meshfleet.io/locality-weights`, module `tiers`): a percentage per tier of
//!   closeness (subzone, zone, region, remote), split over the tier's localities.
//! - **Istio** (a DestinationRule's `localityLbSetting`, module `istio`): Istio's own algorithm,
//!   `distribute`, `failover` and `failoverPriority`, ported from
//!   `pilot/pkg/networking/core/loadbalancer/loadbalancer.go`.
//!
//! Everything here is a pure function of its inputs, so clients with equal [`ClientKey`]s get
//! byte-identical assignments.

mod istio;
mod tiers;

use std::borrow::Cow;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3::{LbEndpoint, LocalityLbEndpoints};
use envoy_types::pb::google::protobuf::UInt32Value;

use crate::model::{ClientKey, Locality, LocalityPolicy};

/// Endpoint labels, as Istio's `failoverPriority` matches them.
pub type Labels = BTreeMap<String, String>;

/// The endpoints one client may reach in one locality, before locality weights and priorities.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalityGroup<'a> {
    /// Where these endpoints run.
    pub locality: &'a Locality,
    /// The endpoints, each with its `load_balancing_weight` set (at least 1).
    pub endpoints: Vec<LbEndpoint>,
    /// The labels of each endpoint, in the order of `endpoints`. Only Istio's
    /// `failoverPriority` reads them; left empty when [`needs_labels`] is false.
    pub labels: Vec<Cow<'a, Labels>>,
}

/// Locality weights and priorities of `groups`, as `client` must see them under `policy`.
///
/// `has_outlier_detection` says whether the service's clusters eject failing hosts: Istio
/// applies `failover` and `failoverPriority` only then, since without ejection Envoy never
/// leaves priority 0.
///
/// # Tiers
/// Each locality joins the most specific named tier it matches (a missing `remote` counts as
/// `remote=0`); a tier without endpoints gives its weight to the nearest tier with some (ties:
/// the more local); a tier's weight is split over its localities by endpoint weight, scaled so
/// that priority 0 sums to about 1,000,000; tiers left at weight 0 go to priority 1
/// (failover only) with their endpoint weights.
///
/// # Istio
/// Istio's `ApplyLocalityLoadBalancer`, exactly: `enabled: false` leaves every locality at
/// priority 0 with its endpoint weight; `distribute` re-weights (rounding up) and empties
/// localities no `to` names; otherwise, only with outlier detection, `failoverPriority` and/or
/// `failover` set compacted priorities.
///
/// # Guarantees
/// - Every returned locality has a `load_balancing_weight` of at least 1.
/// - Priorities start at 0 and have no gaps.
/// - Output order follows input order (for `failoverPriority`, a locality's split parts follow
///   each other, best priority first).
pub fn assign(
    policy: &LocalityPolicy,
    has_outlier_detection: bool,
    groups: Vec<LocalityGroup<'_>>,
    client: &ClientKey,
) -> Vec<LocalityLbEndpoints> {
    match policy {
        LocalityPolicy::Tiers(weights) => tiers::assign(weights, groups, &client.locality),
        LocalityPolicy::Istio(setting) => {
            istio::assign(setting, has_outlier_detection, groups, client)
        }
    }
}

/// Whether the service's clusters need `locality_weighted_lb_config`, without which Envoy
/// ignores locality weights.
///
/// Tiers always do. For Istio this is Istio's `applyLocalityLoadBalancer` rule (with
/// `ENABLE_LOCALITY_WEIGHTED_LB_CONFIG` at its default, off): set when `distribute` is given,
/// or when failover applies (`failover` or `failoverPriority` given, with outlier detection);
/// never when `enabled: false`.
pub fn uses_locality_weights(policy: &LocalityPolicy, has_outlier_detection: bool) -> bool {
    match policy {
        LocalityPolicy::Tiers(_) => true,
        LocalityPolicy::Istio(s) if s.enabled == Some(false) => false,
        LocalityPolicy::Istio(s) => {
            !s.distribute.is_empty()
                || (has_outlier_detection
                    && (!s.failover.is_empty() || !s.failover_priority.is_empty()))
        }
    }
}

/// Whether [`assign`] reads endpoint labels, i.e. whether Istio's `failoverPriority` applies.
/// Translation skips computing labels otherwise.
pub fn needs_labels(policy: &LocalityPolicy, has_outlier_detection: bool) -> bool {
    match policy {
        LocalityPolicy::Tiers(_) => false,
        LocalityPolicy::Istio(s) => {
            has_outlier_detection
                && s.enabled != Some(false)
                && s.distribute.is_empty()
                && !s.failover_priority.is_empty()
        }
    }
}

/// Envoy's form of a locality.
pub fn to_proto(locality: &Locality) -> core::Locality {
    core::Locality {
        region: locality.region.clone(),
        zone: locality.zone.clone(),
        sub_zone: locality.subzone.clone(),
    }
}

/// Sum of the endpoints' weights, saturating at `u32::MAX` as Istio's `addUint32` does.
fn endpoint_weight_sum(endpoints: &[LbEndpoint]) -> u32 {
    endpoints.iter().fold(0u32, |sum, ep| {
        sum.saturating_add(ep.load_balancing_weight.map_or(1, |w| w.value))
    })
}

fn weight(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// Renumbers priorities to 0..N without gaps, keeping their order (Envoy rejects gaps).
fn compact_priorities(localities: &mut [LocalityLbEndpoints]) {
    let mut used: Vec<u32> = localities.iter().map(|l| l.priority).collect();
    used.sort_unstable();
    used.dedup();
    for locality in localities {
        // `used` holds every priority, so the search always finds it.
        let rank = used.binary_search(&locality.priority).unwrap_or_default();
        locality.priority = u32::try_from(rank).unwrap_or(u32::MAX);
    }
}

#[cfg(test)]
mod test_support;
