//! Istio DestinationRules for global services: which rule applies to which service, Istio's
//! validation of `localityLbSetting` and `outlierDetection`, and their mapping to the xDS model.
//!
//! Validation follows Istio's (`pkg/config/validation`: `ValidateLocalityLbSetting`,
//! `validateOutlierDetection`); a setting that fails it is reported and ignored, as Istio's
//! webhook would have refused it. One difference: overlapping `to` localities in one `distribute`
//! rule are a warning and kept in the written order (Istio's check there depends on Go's random
//! map order, so it accepts or refuses the same rule by chance).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use meshfleet_model as model;

use meshfleet_api::{self as api, DestinationRule};
use meshfleet_model::problem::{Problem, Source};

const LOCALITY_LB: &str = "spec.trafficPolicy.loadBalancer.localityLbSetting";
const OUTLIER: &str = "spec.trafficPolicy.outlierDetection";

/// Istio's root namespace: rules there apply to services of every namespace that have none of
/// their own.
pub(crate) const ROOT_NAMESPACE: &str = "istio-system";

/// The DestinationRule that applies to each global service, by (namespace, name).
///
/// Istio's lookup for a client outside the service's namespace (`PushContext.destinationRule`):
/// the rules of the service's namespace, then those of the root namespace, each only if
/// exported to every namespace; within a namespace the most specific host wins (an exact name
/// over a wildcard, a longer wildcard over a shorter one). meshfleet serves every client the
/// same configuration, so a rule Istio shows only to some namespaces' clients (`exportTo`
/// naming namespaces, or a rule in a third namespace) applies to none and is reported.
#[derive(Clone, Debug, Default)]
pub(super) struct Rules {
    by_service: BTreeMap<(String, String), Arc<DestinationRule>>,
}

/// A rule's host, resolved as Istio resolves it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HostPattern {
    /// One name (`reviews.default.svc.cluster.local`; a short name is completed with the
    /// rule's namespace).
    Exact(String),
    /// Every name ending with this suffix (`.default.svc.cluster.local` from
    /// `*.default.svc.cluster.local`; empty for `*`).
    Suffix(String),
}

impl HostPattern {
    fn of(host: &str, rule_namespace: &str) -> Option<Self> {
        if host.is_empty() {
            return None;
        }
        if let Some(suffix) = host.strip_prefix('*') {
            return (suffix.is_empty() || suffix.starts_with('.'))
                .then(|| Self::Suffix(suffix.to_owned()));
        }
        if !host.contains('.') {
            return Some(Self::Exact(format!(
                "{host}.{rule_namespace}.svc.cluster.local"
            )));
        }
        Some(Self::Exact(host.to_owned()))
    }

    /// How specifically it matches `host`: `None` when it does not; more is more specific.
    fn specificity(&self, host: &str) -> Option<usize> {
        match self {
            Self::Exact(name) => (name == host).then_some(usize::MAX),
            Self::Suffix(suffix) => host.ends_with(suffix.as_str()).then_some(suffix.len()),
        }
    }
}

/// The names a global service answers to, as a rule's host may name it.
fn service_hosts(namespace: &str, name: &str) -> [String; 3] {
    [
        format!("{name}.{namespace}.global"),
        format!("{name}.{namespace}.svc.clusterset.local"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

impl Rules {
    /// Finds the rule of every exported service (see the type's docs); of several equally
    /// specific rules in one namespace the first by name wins and the others are reported.
    pub(crate) fn new<'a>(
        destination_rules: impl IntoIterator<Item = &'a Arc<DestinationRule>>,
        exported: &BTreeSet<(String, String)>,
        problems: &mut Vec<Problem>,
    ) -> Self {
        // Rules by namespace, in (namespace, name) order, with their resolved hosts.
        let mut by_namespace: BTreeMap<&str, Vec<(HostPattern, &Arc<DestinationRule>)>> =
            BTreeMap::new();
        for rule in destination_rules {
            let namespace = rule.metadata.namespace_or_default();
            if let Some(pattern) = HostPattern::of(&rule.spec.host, namespace) {
                by_namespace
                    .entry(namespace)
                    .or_default()
                    .push((pattern, rule));
            }
        }
        for rules in by_namespace.values_mut() {
            rules.sort_by(|a, b| a.1.metadata.name.cmp(&b.1.metadata.name));
        }
        // Rules by the one name they give, for the rules no client of another namespace sees.
        let mut exact: HashMap<&str, Vec<(&str, &Arc<DestinationRule>)>> = HashMap::new();
        for (rule_namespace, candidates) in &by_namespace {
            for (pattern, rule) in candidates {
                if let HostPattern::Exact(host) = pattern {
                    exact
                        .entry(host.as_str())
                        .or_default()
                        .push((rule_namespace, rule));
                }
            }
        }
        let mut rules = Self::default();
        // Rules that name a service but that no client of another namespace sees.
        let mut unseen: BTreeMap<(String, String), String> = BTreeMap::new();
        for (namespace, name) in exported {
            let hosts = service_hosts(namespace, name);
            let best = |candidates: &[(HostPattern, &'a Arc<DestinationRule>)]| {
                let mut matching: Vec<(usize, &'a Arc<DestinationRule>)> = candidates
                    .iter()
                    .filter_map(|(pattern, rule)| {
                        let specificity =
                            hosts.iter().filter_map(|h| pattern.specificity(h)).max()?;
                        Some((specificity, *rule))
                    })
                    .collect();
                let top = matching.iter().map(|(s, _)| *s).max()?;
                matching.retain(|(s, _)| *s == top);
                Some(
                    matching
                        .into_iter()
                        .map(|(_, rule)| rule)
                        .collect::<Vec<_>>(),
                )
            };
            let exported_to_all = |rule: &&Arc<DestinationRule>| {
                let export_to = &rule.spec.export_to;
                export_to.is_empty() || export_to.iter().any(|e| e == "*")
            };
            let mut chosen = None;
            for tier in [namespace.as_str(), ROOT_NAMESPACE] {
                let Some(candidates) = by_namespace.get(tier) else {
                    continue;
                };
                let visible: Vec<_> = candidates
                    .iter()
                    .filter(|(_, rule)| exported_to_all(rule))
                    .cloned()
                    .collect();
                if let Some(found) = best(&visible) {
                    chosen = Some(found);
                    break;
                }
            }
            if let Some(found) = &chosen {
                let first = found[0];
                for other in &found[1..] {
                    problems.push(
                        Problem::new(
                            source(other),
                            format!(
                                "{namespace}/{name} also has DestinationRule {}/{}, which wins; ignored",
                                first.metadata.namespace_or_default(),
                                first.metadata.name
                            ),
                        )
                        .at("spec.host"),
                    );
                }
                rules
                    .by_service
                    .insert((namespace.clone(), name.clone()), first.clone());
            }
            // Rules that name this service exactly but that Istio shows only to some clients.
            let naming = hosts.iter().filter_map(|h| exact.get(h.as_str())).flatten();
            for (rule_namespace, rule) in naming {
                let rule_namespace = *rule_namespace;
                let applied = chosen
                    .as_ref()
                    .is_some_and(|found| found.iter().any(|r| Arc::ptr_eq(r, *rule)));
                let seen_by_all = exported_to_all(rule)
                    && (rule_namespace == namespace || rule_namespace == ROOT_NAMESPACE);
                if applied || seen_by_all {
                    continue;
                }
                let why = if exported_to_all(rule) {
                    format!("in Istio it applies only to clients in namespace {rule_namespace}")
                } else {
                    format!(
                        "its exportTo ({}) shows it only to some namespaces' clients",
                        rule.spec.export_to.join(", ")
                    )
                };
                unseen.insert(
                        (rule_namespace.to_string(), rule.metadata.name.clone()),
                        format!(
                            "{why}; meshfleet serves every client the same configuration, so it is not applied to {namespace}/{name} (put it in namespace {namespace} or {ROOT_NAMESPACE}, exported to every namespace)"
                        ),
                    );
            }
        }
        for ((rule_namespace, rule_name), message) in unseen {
            problems.push(
                Problem::new(
                    Source::object("DestinationRule", &rule_namespace, &rule_name),
                    message,
                )
                .at("spec.host"),
            );
        }
        rules
    }

    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<&Arc<DestinationRule>> {
        self.by_service
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The services whose rule differs between `self` and `other` (another rule, or the same
    /// rule changed).
    pub(crate) fn changed_services(&self, other: &Self) -> BTreeSet<(String, String)> {
        let keys = self.by_service.keys().chain(other.by_service.keys());
        keys.filter(
            |k| match (self.by_service.get(*k), other.by_service.get(*k)) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
                (a, b) => a.is_some() != b.is_some(),
            },
        )
        .cloned()
        .collect()
    }
}

/// `DestinationRule team-a/api`.
pub(super) fn source(rule: &DestinationRule) -> Source {
    Source::object(
        "DestinationRule",
        rule.metadata.namespace_or_default(),
        &rule.metadata.name,
    )
}

/// What a rule says, once validated: each part `None` when absent or invalid.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RulePolicy {
    pub setting: Option<model::LocalityLbSetting>,
    pub outlier: Option<model::OutlierDetection>,
}

pub(super) fn rule_policy(rule: &DestinationRule, problems: &mut Vec<Problem>) -> RulePolicy {
    let policy = rule.spec.traffic_policy.as_ref();
    let outlier_spec = policy.and_then(|p| p.outlier_detection.as_ref());
    let lb = policy
        .and_then(|p| p.load_balancer.as_ref())
        .and_then(|lb| lb.locality_lb_setting.as_ref());
    let mut report = |findings: Vec<(String, String)>, what: &str| {
        for (field, message) in findings {
            problems.push(Problem::new(source(rule), format!("{message}{what}")).at(field));
        }
    };
    let outlier = outlier_spec.and_then(|spec| {
        let errors = check_outlier(spec);
        let valid = errors.is_empty();
        report(errors, "; outlierDetection ignored");
        valid.then(|| outlier_detection(spec))
    });
    let setting = lb.and_then(|lb| {
        // An invalid outlierDetection is ignored: failover has none to rely on.
        let check = check_locality_lb(lb, outlier.is_some());
        let valid = check.errors.is_empty();
        report(check.errors, "; localityLbSetting ignored");
        report(check.warnings, "");
        valid.then(|| locality_lb_setting(lb))
    });
    RulePolicy { setting, outlier }
}

fn locality_lb_setting(lb: &api::LocalityLbSetting) -> model::LocalityLbSetting {
    model::LocalityLbSetting {
        enabled: lb.enabled,
        distribute: lb
            .distribute
            .iter()
            .map(|d| model::Distribute {
                from: d.from.clone(),
                to: d.to.clone(),
            })
            .collect(),
        failover: lb
            .failover
            .iter()
            .map(|f| model::Failover {
                from: f.from.clone(),
                to: f.to.clone(),
            })
            .collect(),
        failover_priority: lb.failover_priority.clone(),
    }
}

/// Istio's `outlierDetection` with Istio's (Envoy's) defaults made explicit: 5 consecutive 5xx,
/// interval 10s, base ejection time 30s, at most 10% ejected, panic threshold 0%. Gateway errors
/// count only when set; local-origin failures only with `splitExternalLocalOriginErrors`.
pub(super) fn outlier_detection(spec: &api::OutlierDetection) -> model::OutlierDetection {
    let ms = |d: Option<api::Duration>, default: u64| {
        d.map_or(default, |d| {
            u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX)
        })
    };
    model::OutlierDetection {
        consecutive_5xx: Some(spec.consecutive_5xx_errors.unwrap_or(5)),
        consecutive_gateway_errors: spec.consecutive_gateway_errors,
        consecutive_local_origin_failures: spec
            .split_external_local_origin_errors
            .then(|| spec.consecutive_local_origin_failures.unwrap_or(5)),
        interval_ms: ms(spec.interval, 10_000),
        base_ejection_time_ms: ms(spec.base_ejection_time, 30_000),
        // Istio sets it only when > 0; Envoy's default is 10.
        max_ejection_percent: spec
            .max_ejection_percent
            .filter(|p| *p > 0)
            .map_or(10, |p| p.unsigned_abs()),
        min_health_percent: spec.min_health_percent.map_or(0, i32::unsigned_abs),
    }
}

/// Istio's `validateOutlierDetection`: durations of at least 1ms in whole milliseconds,
/// percentages in 0..=100. Returns (field, message) per error.
fn check_outlier(spec: &api::OutlierDetection) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for (name, duration) in [
        ("interval", spec.interval),
        ("baseEjectionTime", spec.base_ejection_time),
    ] {
        let Some(duration) = duration else { continue };
        let message = if duration.0 < std::time::Duration::from_millis(1) {
            "duration must be greater than 1ms"
        } else if duration.0.subsec_nanos() % 1_000_000 != 0 {
            "only durations to ms precision are supported"
        } else {
            continue;
        };
        errors.push((format!("{OUTLIER}.{name}"), message.to_owned()));
    }
    for (name, percent) in [
        ("maxEjectionPercent", spec.max_ejection_percent),
        ("minHealthPercent", spec.min_health_percent),
    ] {
        if let Some(p) = percent.filter(|p| !(0..=100).contains(p)) {
            errors.push((
                format!("{OUTLIER}.{name}"),
                format!("percentage {p} is not in range 0..100"),
            ));
        }
    }
    errors
}

/// Findings of Istio's `ValidateLocalityLbSetting`, as (field, message).
#[derive(Debug, Default, PartialEq)]
struct Check {
    errors: Vec<(String, String)>,
    warnings: Vec<(String, String)>,
}

const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

fn check_locality_lb(lb: &api::LocalityLbSetting, has_outlier: bool) -> Check {
    let mut check = Check::default();
    let mut error = |field: String, message: String| check.errors.push((field, message));
    if !lb.distribute.is_empty() && !lb.failover.is_empty() {
        error(
            LOCALITY_LB.to_owned(),
            "can not simultaneously specify 'distribute' and 'failover'".to_owned(),
        );
        return check;
    }
    let topology_priority = lb
        .failover_priority
        .iter()
        .enumerate()
        .find(|(_, l)| TOPOLOGY_LABELS.contains(&l.as_str()));
    if let (false, Some((i, label))) = (lb.failover.is_empty(), topology_priority) {
        error(
            format!("{LOCALITY_LB}.failoverPriority[{i}]"),
            format!(
                "can not simultaneously set 'failover' and topology label '{label}' in 'failoverPriority'"
            ),
        );
        return check;
    }
    check_distribute(lb, &mut check);
    if (!lb.failover.is_empty() || !lb.failover_priority.is_empty()) && !has_outlier {
        check.warnings.push((
            LOCALITY_LB.to_owned(),
            "outlier detection policy must be provided for failover; without it there is no failover".to_owned(),
        ));
    }
    for (i, failover) in lb.failover.iter().enumerate() {
        let field = format!("{LOCALITY_LB}.failover[{i}]");
        if failover.from == failover.to {
            check.errors.push((
                field.clone(),
                "locality lb failover settings must specify different regions".to_owned(),
            ));
        }
        if failover.from.contains('/') || failover.to.contains('/') {
            check.errors.push((
                field.clone(),
                "locality lb failover only specify region".to_owned(),
            ));
        }
        if failover.from.contains('*') || failover.to.contains('*') {
            check.errors.push((
                field,
                "locality lb failover region should not contain '*' wildcard".to_owned(),
            ));
        }
    }
    check
}

fn check_distribute(lb: &api::LocalityLbSetting, check: &mut Check) {
    for (i, rule) in lb.distribute.iter().enumerate() {
        let field = format!("{LOCALITY_LB}.distribute[{i}].to");
        if let Some((locality, _)) = rule.to.iter().find(|(_, w)| *w == 0 || *w > 100) {
            check.errors.push((
                format!("{field}[{locality:?}]"),
                "locality weight must be in range [1, 100]".to_owned(),
            ));
            return;
        }
        let total: u64 = rule.to.iter().map(|(_, w)| u64::from(*w)).sum();
        if total != 100 {
            check
                .errors
                .push((field, format!("total locality weight {total} != 100")));
            return;
        }
        for (locality, _) in &rule.to {
            if let Err(error) = check_locality(locality) {
                check
                    .errors
                    .push((format!("{field}[{locality:?}]"), error.to_string()));
            }
        }
        for (a, (first, _)) in rule.to.iter().enumerate() {
            for (second, _) in &rule.to[a + 1..] {
                if overlap(first, second) {
                    check.warnings.push((
                        field.clone(),
                        format!(
                            "localities {first:?} and {second:?} overlap; kept in the written order"
                        ),
                    ));
                }
            }
        }
    }
    let froms: Vec<&str> = lb.distribute.iter().map(|d| d.from.as_str()).collect();
    if let Err((i, error)) = check_sources(&froms) {
        check.errors.push((
            format!("{LOCALITY_LB}.distribute[{i}].from"),
            error.to_string(),
        ));
    }
}

/// Why a locality of a rule, or a `from` of a `distribute`, is refused; the messages are
/// Istio's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum LocalityError {
    /// More than one `*`, or one not at the end.
    #[error("locality {locality} wildcard '*' number can not exceed 1 and must be in the end")]
    MisplacedWildcard { locality: String },
    /// An empty region, zone or subzone.
    #[error("locality {locality} must not contain empty region/zone/subzone info")]
    EmptyPart { locality: String },
    /// A `from` covered by an earlier one.
    #[error("locality {locality} overlap with previous specified ones")]
    OverlapsEarlier { locality: String },
}

/// One locality of a rule: at most one `*`, only at the end; no empty region, zone or subzone.
fn check_locality(locality: &str) -> Result<(), LocalityError> {
    let stars = locality.matches('*').count();
    if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
        return Err(LocalityError::MisplacedWildcard {
            locality: locality.to_owned(),
        });
    }
    if locality.splitn(3, '/').any(str::is_empty) {
        return Err(LocalityError::EmptyPart {
            locality: locality.to_owned(),
        });
    }
    Ok(())
}

/// Whether some locality matches both rules (Istio's `LocalityMatch`: `*` or a missing part
/// matches anything).
fn overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.splitn(3, '/').collect(), b.splitn(3, '/').collect());
    (0..3).all(|i| {
        let (x, y) = (
            a.get(i).copied().unwrap_or("*"),
            b.get(i).copied().unwrap_or("*"),
        );
        x == "*" || y == "*" || x == y
    })
}

/// Istio's `validateLocalities` over the `from`s in the written order: a `from` may not be
/// covered by an earlier one. Returns the index and message of the first error.
fn check_sources(froms: &[&str]) -> Result<(), (usize, LocalityError)> {
    // region → zone → subzones; "*" marks "all of it".
    let mut seen: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for (i, locality) in froms.iter().copied().enumerate() {
        check_locality(locality).map_err(|m| (i, m))?;
        let overlapping = || {
            Err((
                i,
                LocalityError::OverlapsEarlier {
                    locality: locality.to_owned(),
                },
            ))
        };
        if seen.contains_key("*") {
            return overlapping();
        }
        let parts: Vec<&str> = locality.splitn(3, '/').collect();
        match parts.as_slice() {
            [region] => {
                if seen.contains_key(region) {
                    return overlapping();
                }
                seen.insert(region, BTreeMap::from([("*", BTreeSet::from(["*"]))]));
            }
            [region, zone] => {
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") || zones.contains_key(zone) {
                    return overlapping();
                }
                zones.insert(zone, BTreeSet::from(["*"]));
            }
            [region, zone, subzone, ..] => {
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") {
                    return overlapping();
                }
                let subzones = zones.entry(zone).or_default();
                if subzones.contains("*") || !subzones.insert(subzone) {
                    return overlapping();
                }
            }
            [] => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
