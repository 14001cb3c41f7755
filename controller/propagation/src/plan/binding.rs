//! One binding: failover on the previous result, then the scheduler, then Karmada's
//! ResourceBinding shape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meshfleet_api::{
    BindingCondition, Cluster, GracefulEvictionTask, ObjectKey, ObjectMeta, PropagationPolicy,
    ResourceBinding, ResourceBindingSpec, ResourceBindingStatus, TargetCluster,
};
use meshfleet_index::Index;
use meshfleet_model::problem::{Problem, Source};

use super::super::failover;
use super::super::scheduler::{self, Request};
use super::super::templates::Template;
use super::super::workload::Requirements;
use super::{ANNOTATION_FAILBACK, Fleet};

/// What a binding is scheduled from besides the fleet and its policy.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct History<'a> {
    /// The last result: the planner's own, else the config's ResourceBinding document.
    pub last: Option<&'a ResourceBinding>,
    /// The config's ResourceBinding document for the template, where a rebalance is asked
    /// for (`spec.rescheduleTriggeredAt`).
    pub document: Option<&'a ResourceBinding>,
}

impl History<'_> {
    /// The last rebalance asked for, if any: `spec.rescheduleTriggeredAt` of the document, else
    /// of the last result (which keeps it, as a Karmada binding does).
    fn rebalance(&self) -> Option<&str> {
        [self.document, self.last]
            .into_iter()
            .flatten()
            .find_map(|b| b.spec.reschedule_triggered_at.as_deref())
    }

    /// Karmada's `RescheduleRequired` (`pkg/util/binding.go`): a rebalance asked for after the
    /// last successful scheduling. Never before a first one: without `lastScheduledTime`, the
    /// first scheduling is still to come, and it is fresh anyway.
    fn rebalance_due(&self) -> bool {
        let asked = self.rebalance().and_then(failover::parse_time);
        let last = self
            .last
            .and_then(|b| b.status.last_scheduled_time.as_deref())
            .and_then(failover::parse_time);
        matches!((asked, last), (Some(asked), Some(last)) if asked > last)
    }
}

/// Failover, then the scheduler: the template's binding.
pub(super) fn schedule(
    fleet: &Fleet<'_>,
    template: &Template<'_>,
    policy: &PropagationPolicy,
    history: History<'_>,
    replicas: i32,
    requirements: &Requirements,
    problems: &mut Vec<Problem>,
) -> ResourceBinding {
    let last = history.last;
    let placement = &policy.spec.placement;
    let by_name: BTreeMap<&str, &Arc<Cluster>> = fleet
        .by_name
        .iter()
        .map(|(n, i)| (*n, &fleet.clusters[*i]))
        .collect();
    let last_targets = last.map(|b| b.spec.clusters.as_slice()).unwrap_or_default();
    let evictions = failover::evictions(
        last_targets,
        &by_name,
        &placement.cluster_tolerations,
        fleet.now,
    );
    let evicted: BTreeSet<&str> = evictions.iter().map(|e| e.cluster.as_str()).collect();
    let mut tasks = last
        .map(|b| b.spec.graceful_eviction_tasks.clone())
        .unwrap_or_default();
    if !purges_directly(policy) {
        let grace = policy
            .spec
            .failover
            .as_ref()
            .and_then(|f| f.application.as_ref())
            .and_then(|a| a.grace_period_seconds);
        let new: Vec<GracefulEvictionTask> = evictions
            .iter()
            .filter(|e| !tasks.iter().any(|t| t.from_cluster == e.cluster))
            .map(|e| failover::eviction_task(e, grace, fleet.now))
            .collect();
        tasks.extend(new);
    }
    let kept: Vec<TargetCluster> = if failback(policy) {
        Vec::new()
    } else {
        last_targets
            .iter()
            .filter(|t| !evicted.contains(t.name.as_str()))
            .cloned()
            .collect()
    };
    let evicting: BTreeSet<String> = tasks.iter().map(|t| t.from_cluster.clone()).collect();
    let affinity = last
        .filter(|_| !failback(policy))
        .and_then(|b| b.status.scheduler_observed_affinity_name.as_deref());
    let request = Request {
        placement,
        replicas,
        requirements,
        clusters: &fleet.clusters,
        previous: &kept,
        evicting: &evicting,
        affinity,
        fresh: history.rebalance_due(),
    };
    let mut observed = affinity.map(str::to_owned);
    let mut scheduled_at = last.and_then(|b| b.status.last_scheduled_time.clone());
    let mut result = scheduler::schedule(&request);
    // A cluster whose copy is being evicted is left out, so that replicas go elsewhere. When
    // there is nowhere else, and it has recovered (back in the fleet, no NoExecute taint), it
    // is a candidate again: the binding is not left unschedulable with its old copy kept.
    if result.is_err() {
        let recovered: BTreeSet<String> = evicting
            .iter()
            .filter(|name| {
                by_name
                    .get(name.as_str())
                    .is_some_and(|c| !c.spec.taints.iter().any(|t| t.effect == "NoExecute"))
            })
            .cloned()
            .collect();
        if !recovered.is_empty() {
            let still: BTreeSet<String> = evicting.difference(&recovered).cloned().collect();
            result = scheduler::schedule(&Request {
                evicting: &still,
                ..request
            });
        }
    }
    let (clusters, condition) = match result {
        Ok(decision) => {
            observed = decision.affinity_name;
            scheduled_at = Some(failover::format_time(fleet.now));
            (decision.clusters, scheduled())
        }
        Err(unschedulable) => {
            problems.push(Problem::new(
                Source::from(template.key),
                format!(
                    "not scheduled by {} ({}): {}",
                    super::checks::policy_name(policy),
                    unschedulable.reason,
                    unschedulable.message
                ),
            ));
            let condition = BindingCondition {
                type_: "Scheduled".to_owned(),
                status: "False".to_owned(),
                reason: unschedulable.reason,
                message: unschedulable.message,
            };
            (kept, condition)
        }
    };
    let ready = clusters
        .iter()
        .all(|t| copy_ready(fleet.index, template, &t.name, t.replicas));
    tasks.retain(|t| !failover::task_done(t, &clusters, ready, fleet.now));
    let mut binding = binding_for(template, policy, replicas, clusters, tasks, condition);
    binding.status.scheduler_observed_affinity_name = observed;
    binding.status.last_scheduled_time = scheduled_at;
    binding.spec.reschedule_triggered_at = history.rebalance().map(str::to_owned);
    binding
}

pub(super) fn scheduled() -> BindingCondition {
    BindingCondition {
        type_: "Scheduled".to_owned(),
        status: "True".to_owned(),
        reason: "Success".to_owned(),
        message: "Binding has been scheduled successfully.".to_owned(),
    }
}

/// The ResourceBinding (or ClusterResourceBinding) for a template, named as Karmada names it.
pub(super) fn binding_for(
    template: &Template<'_>,
    policy: &PropagationPolicy,
    replicas: i32,
    clusters: Vec<TargetCluster>,
    tasks: Vec<GracefulEvictionTask>,
    condition: BindingCondition,
) -> ResourceBinding {
    let mut labels = BTreeMap::new();
    if policy.is_cluster_scoped() {
        labels.insert(
            "clusterpropagationpolicy.karmada.io/name".to_owned(),
            policy.metadata.name.clone(),
        );
    } else {
        labels.insert(
            "propagationpolicy.karmada.io/namespace".to_owned(),
            policy.metadata.namespace_or_default().to_owned(),
        );
        labels.insert(
            "propagationpolicy.karmada.io/name".to_owned(),
            policy.metadata.name.clone(),
        );
    }
    ResourceBinding {
        api_version: "work.karmada.io/v1alpha2".to_owned(),
        kind: if template.namespace.is_empty() {
            "ClusterResourceBinding"
        } else {
            "ResourceBinding"
        }
        .to_owned(),
        metadata: ObjectMeta {
            name: format!(
                "{}-{}",
                template.meta.name,
                template.kind.to_ascii_lowercase()
            ),
            namespace: (!template.namespace.is_empty()).then(|| template.namespace.to_owned()),
            labels,
            annotations: BTreeMap::new(),
        },
        spec: ResourceBindingSpec {
            resource: template.reference(),
            replicas,
            replica_requirements: None,
            placement: Some(policy.spec.placement.clone()),
            clusters,
            graceful_eviction_tasks: tasks,
            propagate_deps: policy.spec.propagate_deps,
            failover: policy.spec.failover.clone(),
            conflict_resolution: policy.spec.conflict_resolution.clone(),
            required_by: Vec::new(),
            reschedule_triggered_at: None,
        },
        status: ResourceBindingStatus {
            conditions: vec![condition],
            ..ResourceBindingStatus::default()
        },
    }
}

/// Whether the copy on `cluster` is up: an observed copy (same kind, namespace and name, with
/// the `multicluster.kubernetes.io/source-cluster` label) with `readyReplicas` at least
/// `replicas`, or, for kinds without replicas, present.
fn copy_ready(index: &Index, template: &Template<'_>, cluster: &str, replicas: i32) -> bool {
    let key = ObjectKey {
        cluster: Arc::from(cluster),
        ..template.key.clone()
    };
    let Some(meshfleet_api::Object::Generic(observed)) = index.get(&key) else {
        return false;
    };
    if replicas <= 0 {
        return true;
    }
    let ready = observed
        .raw
        .get("status")
        .and_then(|s| s.get("readyReplicas"))
        .and_then(serde_norway::Value::as_i64)
        .unwrap_or(0);
    ready >= i64::from(replicas)
}

pub(super) fn is_divided(policy: &PropagationPolicy) -> bool {
    policy
        .spec
        .placement
        .replica_scheduling
        .as_ref()
        .and_then(|r| r.replica_scheduling_type.as_deref())
        == Some("Divided")
}

fn failback(policy: &PropagationPolicy) -> bool {
    policy.metadata.annotation(ANNOTATION_FAILBACK) == Some("true")
}

/// `spec.failover.cluster.purgeMode: Directly`: an evicted copy goes at once.
fn purges_directly(policy: &PropagationPolicy) -> bool {
    policy
        .spec
        .failover
        .as_ref()
        .and_then(|f| f.cluster.as_ref())
        .and_then(|c| c.purge_mode.as_deref())
        == Some("Directly")
}

#[cfg(test)]
mod tests;
