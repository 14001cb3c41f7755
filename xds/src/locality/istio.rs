//! Istio's locality load balancing (a DestinationRule's `localityLbSetting`), ported from
//! `pilot/pkg/networking/core/loadbalancer/loadbalancer.go`: `ApplyLocalityLoadBalancer`,
//! `applyLocalityWeights`, `applyLocalityFailover`, `applyFailoverPriorities`,
//! `applyFailoverPriorityPerLocality`, and `util.LocalityMatch` / `util.LbPriority`.
//!
//! Every locality starts with its endpoint weights' sum as weight and priority 0 (Istio's
//! endpoint builder). Then, unless `enabled: false`:
//! - `distribute` given: the first rule whose `from` matches the client re-weights the
//!   localities each `to` entry matches; localities no entry matches lose their endpoints.
//!   No failover is applied.
//! - otherwise, only with outlier detection: `failoverPriority` splits each locality by how
//!   many leading labels its endpoints share with the client, then `failover` (if also given)
//!   ranks by locality on top; without `failoverPriority`, localities are ranked by locality
//!   (`LbPriority`, with `failover` pushing regions other than its `to` one step further).
//!
//! # Caveats
//! - Istio iterates a `distribute[].to` map in random order; we follow the rule's order, which
//!   makes the result deterministic (it only matters when one locality matches two entries).
//! - Weights are computed in 64-bit integers: Istio's `uint32` products can overflow, ours don't,
//!   and `ceil` of an exact quotient replaces `math.Ceil` of a float.

use std::borrow::Cow;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3::{LbEndpoint, LocalityLbEndpoints};

use super::{Labels, LocalityGroup, compact_priorities, endpoint_weight_sum, to_proto, weight};
use crate::model::{ClientKey, Distribute, Failover, LocalityLbSetting};

/// Istio's `LbPriority` levels per locality failover step (0..=4); used to keep the priorities
/// `failoverPriority` assigned while ranking by locality on top of them.
const LOCALITY_LEVELS: u32 = 5;
/// `LbPriority` of a locality in another region.
const OTHER_REGION: u32 = 3;
/// Priority of another region that `failover` does not name as the target.
const NOT_FAILOVER_TARGET: u32 = 4;

/// Istio's `ApplyLocalityLoadBalancer` over freshly built localities (see the module docs).
pub(super) fn assign(
    setting: &LocalityLbSetting,
    has_outlier_detection: bool,
    groups: Vec<LocalityGroup<'_>>,
    client: &ClientKey,
) -> Vec<LocalityLbEndpoints> {
    let (mut out, labels) = initial(groups);
    if setting.enabled == Some(false) {
        return out;
    }
    let locality = to_proto(&client.locality);
    if !setting.distribute.is_empty() {
        apply_locality_weights(&locality, &mut out, &setting.distribute);
    } else if has_outlier_detection {
        if !setting.failover_priority.is_empty() {
            out =
                apply_failover_priorities(out, &labels, &client.labels, &setting.failover_priority);
            if !setting.failover.is_empty() {
                apply_locality_failover(&locality, &mut out, &setting.failover);
            }
        } else {
            apply_locality_failover(&locality, &mut out, &setting.failover);
        }
    }
    out
}

/// One `LocalityLbEndpoints` per group (weight = sum of endpoint weights, priority 0), and the
/// groups' endpoint labels beside them.
fn initial<'a>(
    groups: Vec<LocalityGroup<'a>>,
) -> (Vec<LocalityLbEndpoints>, Vec<Vec<Cow<'a, Labels>>>) {
    groups
        .into_iter()
        .map(|g| {
            let sum = endpoint_weight_sum(&g.endpoints);
            let locality = LocalityLbEndpoints {
                locality: Some(to_proto(g.locality)),
                lb_endpoints: g.endpoints,
                load_balancing_weight: weight(sum.max(1)),
                ..Default::default()
            };
            (locality, g.labels)
        })
        .unzip()
}

/// Istio's `applyLocalityWeights`.
fn apply_locality_weights(
    client: &core::Locality,
    out: &mut [LocalityLbEndpoints],
    distribute: &[Distribute],
) {
    let Some(rule) = distribute.iter().find(|d| locality_match(client, &d.from)) else {
        return;
    };
    let mut unmatched = vec![true; out.len()];
    for (to, to_weight) in &rule.to {
        let matched: Vec<usize> = (0..out.len())
            .filter(|&i| {
                unmatched[i]
                    && out[i]
                        .locality
                        .as_ref()
                        .is_some_and(|l| locality_match(l, to))
            })
            .collect();
        let total: u64 = matched.iter().map(|&i| current_weight(&out[i])).sum();
        for &i in &matched {
            unmatched[i] = false;
            let share = ceil_div(current_weight(&out[i]) * u64::from(*to_weight), total);
            if share > 0 {
                out[i].load_balancing_weight = weight(u32::try_from(share).unwrap_or(u32::MAX));
            }
        }
    }
    for (locality, _) in out.iter_mut().zip(unmatched).filter(|(_, u)| *u) {
        locality.lb_endpoints.clear();
    }
}

/// A locality's weight before `distribute` (Istio counts a missing weight as 1).
fn current_weight(locality: &LocalityLbEndpoints) -> u64 {
    u64::from(locality.load_balancing_weight.map_or(1, |w| w.value))
}

fn ceil_div(numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        0
    } else {
        numerator.div_ceil(denominator)
    }
}

/// Istio's `applyLocalityFailover`: priority = earlier priority * 5 + `LbPriority`, where a
/// region other than `failover.to` (for the client's region) ranks 4; then compacted.
fn apply_locality_failover(
    client: &core::Locality,
    out: &mut [LocalityLbEndpoints],
    failover: &[Failover],
) {
    let target = failover.iter().find(|f| f.from == client.region);
    for locality in out.iter_mut() {
        let mut priority = lb_priority(client, locality.locality.as_ref());
        if priority == OTHER_REGION
            && target.is_some_and(|f| locality.locality.as_ref().is_none_or(|l| l.region != f.to))
        {
            priority = NOT_FAILOVER_TARGET;
        }
        locality.priority = locality
            .priority
            .saturating_mul(LOCALITY_LEVELS)
            .saturating_add(priority);
    }
    compact_priorities(out);
}

/// Istio's `applyFailoverPriorities`: splits every locality by label match (see
/// [`split_by_label_match`]) and compacts the priorities. Does nothing when the client has no
/// labels, as Istio.
fn apply_failover_priorities(
    out: Vec<LocalityLbEndpoints>,
    labels: &[Vec<Cow<'_, Labels>>],
    client: &Labels,
    failover_priority: &[String],
) -> Vec<LocalityLbEndpoints> {
    if client.is_empty() || out.is_empty() {
        return out;
    }
    let rules: Vec<_> = failover_priority
        .iter()
        .map(|r| priority_label(r))
        .collect();
    let mut split = Vec::with_capacity(out.len());
    for (i, locality) in out.into_iter().enumerate() {
        let group_labels = labels.get(i).map_or(&[][..], Vec::as_slice);
        split.extend(split_by_label_match(locality, group_labels, client, &rules));
    }
    compact_priorities(&mut split);
    split
}

/// Istio's `applyFailoverPriorityPerLocality`: an endpoint whose labels first differ from the
/// client's at rule `j` (of `n`) gets priority `n - j`; matching all gives 0. One locality per
/// priority used, best first, weighted by its endpoints.
fn split_by_label_match(
    mut locality: LocalityLbEndpoints,
    labels: &[Cow<'_, Labels>],
    client: &Labels,
    rules: &[(&str, Option<&str>)],
) -> Vec<LocalityLbEndpoints> {
    let endpoints = std::mem::take(&mut locality.lb_endpoints);
    let mut by_priority: BTreeMap<usize, Vec<LbEndpoint>> = BTreeMap::new();
    for (j, endpoint) in endpoints.into_iter().enumerate() {
        let priority = label_priority(labels.get(j).map(|l| &**l), client, rules);
        by_priority.entry(priority).or_default().push(endpoint);
    }
    by_priority
        .into_iter()
        .map(|(priority, lb_endpoints)| LocalityLbEndpoints {
            load_balancing_weight: weight(endpoint_weight_sum(&lb_endpoints)),
            priority: u32::try_from(priority).unwrap_or(u32::MAX),
            lb_endpoints,
            ..locality.clone()
        })
        .collect()
}

fn label_priority(
    endpoint: Option<&Labels>,
    client: &Labels,
    rules: &[(&str, Option<&str>)],
) -> usize {
    for (j, (name, value)) in rules.iter().enumerate() {
        let wanted = value.unwrap_or_else(|| client.get(*name).map_or("", String::as_str));
        let actual = endpoint
            .and_then(|l| l.get(*name))
            .map_or("", String::as_str);
        if wanted != actual {
            return rules.len() - j;
        }
    }
    0
}

/// A `failoverPriority` entry: `label`, or `label=value` to match `value` instead of the
/// client's own (Istio's `priorityLabelOverrides`: only with exactly one `=`).
fn priority_label(rule: &str) -> (&str, Option<&str>) {
    let mut parts = rule.split('=');
    let name = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (Some(value), None) => (name, Some(value)),
        _ => (name, None),
    }
}

/// Istio's `util.LocalityMatch`: `rule` is `region[/zone[/subzone]]`; `*` matches anything,
/// and a missing zone or subzone matches any.
fn locality_match(locality: &core::Locality, rule: &str) -> bool {
    let mut parts = rule.split('/');
    let (region, zone, subzone) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    (region == "*" || locality.region == region)
        && (zone == "*" || zone.is_empty() || locality.zone == zone)
        && (subzone == "*" || subzone.is_empty() || locality.sub_zone == subzone)
}

/// Istio's `util.LbPriority`: 0 same subzone, 1 same zone, 2 same region, 3 other.
fn lb_priority(client: &core::Locality, endpoint: Option<&core::Locality>) -> u32 {
    let empty = core::Locality::default();
    let endpoint = endpoint.unwrap_or(&empty);
    if client.region != endpoint.region {
        OTHER_REGION
    } else if client.zone != endpoint.zone {
        2
    } else if client.sub_zone != endpoint.sub_zone {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
