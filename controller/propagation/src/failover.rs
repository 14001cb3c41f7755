//! Failover, as Karmada's taint manager and graceful eviction do it.
//!
//! ```text
//!  Cluster Ready=False ──> taints cluster.karmada.io/not-ready:NoSchedule + :NoExecute
//!  Cluster Ready=Unknown ─> taints cluster.karmada.io/unreachable:NoSchedule + :NoExecute
//!                              │ (added at the condition's lastTransitionTime)
//!                              v
//!  binding on that cluster: NoExecute not tolerated, or tolerated and tolerationSeconds passed
//!                              v
//!  evicted: the scheduler places its replicas elsewhere; a graceful eviction task keeps the old
//!  copy until the new placement is ready or the grace period ends
//! ```
//!
//! A Cluster without a Ready condition counts as ready: clusters written by hand in a config
//! directory need not carry a status. Every PropagationPolicy tolerates the not-ready and
//! unreachable `NoExecute` taints for 300 s unless it says otherwise, as Karmada's webhook
//! makes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshfleet_api::{Cluster, GracefulEvictionTask, Taint, TargetCluster, Toleration};

pub const TAINT_NOT_READY: &str = "cluster.karmada.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "cluster.karmada.io/unreachable";
/// How long a workload stays on a failed cluster unless its policy says otherwise.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;
/// How long an evicted copy is kept while its replacement comes up (Karmada's default
/// `--graceful-eviction-timeout`).
pub const DEFAULT_GRACE_PERIOD_SECONDS: i32 = 600;
/// `producer` of the eviction tasks this module creates.
pub const PRODUCER: &str = "TaintManager";
pub const REASON_TAINT_UNTOLERATED: &str = "TaintUntolerated";

/// The cluster with the taints in effect: its own, plus the health taints its Ready condition
/// calls for. Returns the same `Arc` when nothing is added.
pub fn with_health_taints(cluster: &Arc<Cluster>, now: SystemTime) -> Arc<Cluster> {
    let Some(ready) = cluster
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
    else {
        return cluster.clone();
    };
    let key = match ready.status.as_str() {
        "True" => return cluster.clone(),
        "False" => TAINT_NOT_READY,
        _ => TAINT_UNREACHABLE,
    };
    let since = ready
        .last_transition_time
        .clone()
        .unwrap_or_else(|| format_time(now));
    let mut tainted = (**cluster).clone();
    for effect in ["NoSchedule", "NoExecute"] {
        if !tainted
            .spec
            .taints
            .iter()
            .any(|t| t.key == key && t.effect == effect)
        {
            tainted.spec.taints.push(Taint {
                key: key.to_owned(),
                value: None,
                effect: effect.to_owned(),
                time_added: Some(since.clone()),
            });
        }
    }
    Arc::new(tainted)
}

/// Whether `toleration` tolerates `taint` (Kubernetes' rule).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        "Equal" => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// A policy's tolerations with Karmada's defaults for the health taints added.
pub fn with_default_tolerations(tolerations: &[Toleration]) -> Vec<Toleration> {
    let mut all = tolerations.to_vec();
    for key in [TAINT_NOT_READY, TAINT_UNREACHABLE] {
        let probe = Taint {
            key: key.to_owned(),
            value: None,
            effect: "NoExecute".to_owned(),
            time_added: None,
        };
        if !tolerations.iter().any(|t| tolerates(t, &probe)) {
            all.push(Toleration {
                key: Some(key.to_owned()),
                operator: Some("Exists".to_owned()),
                value: None,
                effect: Some("NoExecute".to_owned()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
            });
        }
    }
    all
}

/// Why a binding leaves a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eviction {
    pub cluster: String,
    pub replicas: i32,
    pub message: String,
}

/// The clusters of `previous` a binding must leave at `now`: those with a `NoExecute` taint
/// its tolerations do not tolerate, or tolerate for a time that has passed. `clusters` have
/// their health taints already ([`with_health_taints`]); a cluster no longer in the fleet is
/// left too.
pub fn evictions(
    previous: &[TargetCluster],
    clusters: &BTreeMap<&str, &Arc<Cluster>>,
    tolerations: &[Toleration],
    now: SystemTime,
) -> Vec<Eviction> {
    let tolerations = with_default_tolerations(tolerations);
    previous
        .iter()
        .filter_map(|target| {
            let message = match clusters.get(target.name.as_str()) {
                None => format!("cluster {} is no longer in the fleet", target.name),
                Some(cluster) => expired_taint(cluster, &tolerations, now)?,
            };
            Some(Eviction {
                cluster: target.name.clone(),
                replicas: target.replicas,
                message,
            })
        })
        .collect()
}

/// The first `NoExecute` taint of `cluster` that is not tolerated at `now`, described.
fn expired_taint(cluster: &Cluster, tolerations: &[Toleration], now: SystemTime) -> Option<String> {
    cluster
        .spec
        .taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .find_map(|taint| {
            let matching: Vec<&Toleration> =
                tolerations.iter().filter(|t| tolerates(t, taint)).collect();
            let describe = || match &taint.value {
                Some(v) => format!("{}={v}:{}", taint.key, taint.effect),
                None => format!("{}:{}", taint.key, taint.effect),
            };
            if matching.is_empty() {
                return Some(format!(
                    "cluster {} has untolerated taint {}",
                    cluster.name(),
                    describe()
                ));
            }
            // Tolerated forever when any matching toleration has no limit; else the longest.
            let seconds = matching
                .iter()
                .map(|t| t.toleration_seconds)
                .try_fold(i64::MIN, |max, s| s.map(|s| max.max(s)))?;
            let added = taint
                .time_added
                .as_deref()
                .and_then(parse_time)
                .unwrap_or(now);
            // A toleration too long to add to a time is one that never runs out.
            let until = added.checked_add(Duration::from_secs(
                u64::try_from(seconds.max(0)).unwrap_or(0),
            ))?;
            (now >= until).then(|| {
                format!(
                    "cluster {} has taint {} for longer than the {seconds}s tolerated",
                    cluster.name(),
                    describe()
                )
            })
        })
}

/// The task that keeps an evicted copy on its cluster for a grace period.
pub fn eviction_task(
    eviction: &Eviction,
    grace_period_seconds: Option<i32>,
    now: SystemTime,
) -> GracefulEvictionTask {
    GracefulEvictionTask {
        from_cluster: eviction.cluster.clone(),
        replicas: (eviction.replicas > 0).then_some(eviction.replicas),
        reason: REASON_TAINT_UNTOLERATED.to_owned(),
        message: Some(eviction.message.clone()),
        producer: PRODUCER.to_owned(),
        grace_period_seconds: Some(grace_period_seconds.unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS)),
        creation_timestamp: Some(format_time(now)),
    }
}

/// Whether a task is over at `now`: its grace period has passed, its cluster is a target again,
/// or every target is ready (`placement_ready`).
pub fn task_done(
    task: &GracefulEvictionTask,
    targets: &[TargetCluster],
    placement_ready: bool,
    now: SystemTime,
) -> bool {
    if targets.iter().any(|t| t.name == task.from_cluster) {
        return true;
    }
    if placement_ready && !targets.is_empty() {
        return true;
    }
    let created = task
        .creation_timestamp
        .as_deref()
        .and_then(parse_time)
        .unwrap_or(now);
    let grace = task
        .grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS);
    now >= created + Duration::from_secs(u64::try_from(grace.max(0)).unwrap_or(0))
}

/// RFC 3339, seconds precision, UTC.
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// RFC 3339 (`2026-11-22T08:00:00Z`, offsets and fractions accepted).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .or_else(|| parse_offset(text))
}

/// RFC 3339 with a numeric offset (`2026-11-22T10:00:00+02:00`).
fn parse_offset(text: &str) -> Option<SystemTime> {
    let split = text.len().checked_sub(6)?;
    if !text.is_char_boundary(split) {
        return None;
    }
    let (local, offset) = text.split_at(split);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let seconds = sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60);
    let local = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfleet_api::fixtures::cluster;

    fn at(text: &str) -> SystemTime {
        parse_time(text).unwrap()
    }

    fn target(name: &str, replicas: i32) -> TargetCluster {
        TargetCluster {
            name: name.to_owned(),
            replicas,
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.to_owned()),
            operator: Some("Exists".to_owned()),
            effect: Some("NoExecute".to_owned()),
            toleration_seconds: seconds,
            ..Toleration::default()
        }
    }

    #[test]
    fn times_parse_in_their_forms() {
        assert_eq!(
            format_time(at("2026-11-22T08:00:00Z")),
            "2026-11-22T08:00:00Z"
        );
        assert_eq!(
            format_time(at("2026-11-22T10:00:00+02:00")),
            "2026-11-22T08:00:00Z"
        );
        assert_eq!(
            format_time(at("2026-11-22T05:30:00-02:30")),
            "2026-11-22T08:00:00Z"
        );
        assert_eq!(
            format_time(at("2026-11-22T08:00:00.5Z")),
            "2026-11-22T08:00:00Z"
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn health_taints_follow_the_ready_condition() {
        let now = at("2026-11-22T08:10:00Z");
        let healthy = cluster("a").ready().arc();
        assert!(Arc::ptr_eq(&with_health_taints(&healthy, now), &healthy));
        let unknown = cluster("b").arc();
        assert!(with_health_taints(&unknown, now).spec.taints.is_empty());
        let down = with_health_taints(
            &cluster("c").not_ready_since("2026-11-22T08:00:00Z").arc(),
            now,
        );
        let taints: Vec<(&str, &str, Option<&str>)> = down
            .spec
            .taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str(), t.time_added.as_deref()))
            .collect();
        assert_eq!(
            taints,
            [
                (TAINT_NOT_READY, "NoSchedule", Some("2026-11-22T08:00:00Z")),
                (TAINT_NOT_READY, "NoExecute", Some("2026-11-22T08:00:00Z")),
            ]
        );
    }

    #[test]
    fn toleration_rules() {
        let taint = Taint {
            key: "dedicated".to_owned(),
            value: Some("gpu".to_owned()),
            effect: "NoSchedule".to_owned(),
            time_added: None,
        };
        let t = |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| {
            Toleration {
                key: key.map(str::to_owned),
                operator: op.map(str::to_owned),
                value: value.map(str::to_owned),
                effect: effect.map(str::to_owned),
                toleration_seconds: None,
            }
        };
        assert!(tolerates(
            &t(Some("dedicated"), None, Some("gpu"), None),
            &taint
        ));
        assert!(!tolerates(
            &t(Some("dedicated"), None, Some("cpu"), None),
            &taint
        ));
        assert!(tolerates(
            &t(Some("dedicated"), Some("Exists"), None, Some("NoSchedule")),
            &taint
        ));
        assert!(!tolerates(
            &t(Some("dedicated"), Some("Exists"), None, Some("NoExecute")),
            &taint
        ));
        assert!(tolerates(&t(None, Some("Exists"), None, None), &taint));
        assert!(!tolerates(&t(None, Some("Equal"), None, None), &taint));
    }

    #[test]
    fn a_failed_cluster_is_left_after_the_toleration_period() {
        let down = with_health_taints(
            &cluster("east-1")
                .not_ready_since("2026-11-22T08:00:00Z")
                .arc(),
            at("2026-11-22T08:00:00Z"),
        );
        let west = cluster("west-1").ready().arc();
        let clusters = BTreeMap::from([("east-1", &down), ("west-1", &west)]);
        let previous = [target("east-1", 2), target("west-1", 2)];
        // Default: 300 s.
        assert_eq!(
            evictions(&previous, &clusters, &[], at("2026-11-22T08:04:59Z")),
            vec![]
        );
        let evicted = evictions(&previous, &clusters, &[], at("2026-11-22T08:05:00Z"));
        assert_eq!(
            evicted,
            vec![Eviction {
                cluster: "east-1".to_owned(),
                replicas: 2,
                message: "cluster east-1 has taint cluster.karmada.io/not-ready:NoExecute for longer than the 300s tolerated".to_owned(),
            }]
        );
        // A policy's own toleration: 30 s; without a limit: never.
        let short = [toleration(TAINT_NOT_READY, Some(30))];
        assert_eq!(
            evictions(&previous, &clusters, &short, at("2026-11-22T08:00:30Z")).len(),
            1
        );
        let forever = [toleration(TAINT_NOT_READY, None)];
        assert_eq!(
            evictions(&previous, &clusters, &forever, at("2027-01-01T00:00:00Z")),
            vec![]
        );
    }

    #[test]
    fn an_untolerated_no_execute_taint_evicts_at_once_and_a_vanished_cluster_too() {
        let tainted = cluster("east-1")
            .ready()
            .taint("maintenance", Some("true"), "NoExecute")
            .arc();
        let clusters = BTreeMap::from([("east-1", &tainted)]);
        let previous = [target("east-1", 1), target("gone", 1)];
        let now = at("2026-11-22T08:00:00Z");
        let messages: Vec<String> = evictions(&previous, &clusters, &[], now)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            messages,
            [
                "cluster east-1 has untolerated taint maintenance=true:NoExecute",
                "cluster gone is no longer in the fleet"
            ]
        );
    }

    #[test]
    fn eviction_tasks_end_on_readiness_return_or_timeout() {
        let now = at("2026-11-22T08:00:00Z");
        let eviction = Eviction {
            cluster: "east-1".to_owned(),
            replicas: 2,
            message: "m".to_owned(),
        };
        let task = eviction_task(&eviction, Some(60), now);
        assert_eq!(
            task.creation_timestamp.as_deref(),
            Some("2026-11-22T08:00:00Z")
        );
        let targets = [target("west-1", 4)];
        assert!(!task_done(
            &task,
            &targets,
            false,
            at("2026-11-22T08:00:59Z")
        ));
        assert!(task_done(
            &task,
            &targets,
            false,
            at("2026-11-22T08:01:00Z")
        ));
        assert!(task_done(&task, &targets, true, now));
        assert!(task_done(&task, &[target("east-1", 2)], false, now));
    }
}
