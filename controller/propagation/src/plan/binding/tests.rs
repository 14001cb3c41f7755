//! Rebalancing: a ResourceBinding document whose `spec.rescheduleTriggeredAt` is later than
//! its `status.lastScheduledTime` is scheduled afresh, once (Karmada 1.18's WorkloadRebalancer
//! and `Fresh` assignment mode).

use super::super::{Bindings, Plan, plan};
use super::History;
use crate::fixtures::{NOW, index, now};
use meshfleet_api::ResourceBinding;
use meshfleet_api::yaml::parse_file;

/// Three clusters with 10 CPUs free each.
const CLUSTERS: &str = "
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: a}
spec: {region: us-east, zone: us-east-1a}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: b}
spec: {region: us-east, zone: us-east-1b}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {region: us-west, zone: us-west-2a}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
";

/// Six replicas of one CPU each, divided by available replicas.
const WEB: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 6
  template:
    spec:
      containers: [{name: web, image: web, resources: {requests: {cpu: '1'}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}
";

/// The binding document: every replica on `clusters`, last scheduled at 07:00, with the
/// rebalance asked for at `asked` (if any) and the affinity term `term` (if any).
fn document(clusters: &str, asked: Option<&str>, term: Option<&str>) -> String {
    let asked = asked.map_or(String::new(), |t| {
        format!("  rescheduleTriggeredAt: '{t}'\n")
    });
    let term = term.map_or(String::new(), |t| {
        format!("  schedulerObservingAffinityName: {t}\n")
    });
    format!(
        "
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {{name: web-deployment, namespace: shop}}
spec:
  resource: {{apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}}
  replicas: 6
  clusters: {clusters}
{asked}status:
  lastScheduledTime: '2026-11-22T07:00:00Z'
{term}"
    )
}

fn web(plan: &Plan) -> &ResourceBinding {
    plan.bindings
        .values()
        .find(|b| b.spec.resource.name == "web")
        .expect("web is bound")
}

fn targets(plan: &Plan) -> Vec<(&str, i32)> {
    web(plan)
        .spec
        .clusters
        .iter()
        .map(|t| (t.name.as_str(), t.replicas))
        .collect()
}

fn binding(yaml: &str) -> ResourceBinding {
    let index = index(&[("binding.yaml", yaml)]);
    let binding = index.resource_bindings().next().expect("a binding").clone();
    (*binding).clone()
}

#[test]
fn a_rebalance_is_due_when_asked_after_the_last_scheduling() {
    // Karmada 1.18's TestRescheduleRequired (`pkg/util/binding_test.go`), plus times that do
    // not parse.
    let rows: [(&str, Option<&str>, Option<&str>, bool); 5] = [
        ("not asked", None, Some("2026-11-22T08:00:00Z"), false),
        ("never scheduled", Some("2026-11-22T08:00:00Z"), None, false),
        (
            "asked before the last scheduling",
            Some("2026-11-22T07:59:00Z"),
            Some("2026-11-22T08:00:00Z"),
            false,
        ),
        (
            "asked after the last scheduling",
            Some("2026-11-22T08:00:00Z"),
            Some("2026-11-22T07:59:00Z"),
            true,
        ),
        (
            "not a time",
            Some("soon"),
            Some("2026-11-22T07:59:00Z"),
            false,
        ),
    ];
    for (name, asked, last, due) in rows {
        let mut document = binding(&document("[]", None, None));
        document.spec.reschedule_triggered_at = asked.map(str::to_owned);
        document.status.last_scheduled_time = last.map(str::to_owned);
        let history = History {
            last: Some(&document),
            document: Some(&document),
        };
        assert_eq!(history.rebalance_due(), due, "{name}");
    }
}

#[test]
fn a_rebalance_divides_the_replicas_afresh_once() {
    let steady = document("[{name: a, replicas: 6}]", None, None);
    let asked = document(
        "[{name: a, replicas: 6}]",
        Some("2026-11-22T07:30:00Z"),
        None,
    );
    let stale = document(
        "[{name: a, replicas: 6}]",
        Some("2026-11-22T06:30:00Z"),
        None,
    );
    let planned = |binding: &str| {
        plan(
            &index(&[
                ("clusters.yaml", CLUSTERS),
                ("web.yaml", WEB),
                ("binding.yaml", binding),
            ]),
            &Bindings::new(),
            now(),
        )
    };
    // Without a rebalance, the previous result stands: same replicas, nothing to scale.
    assert_eq!(targets(&planned(&steady)), [("a", 6)]);
    assert_eq!(targets(&planned(&stale)), [("a", 6)]);
    // Asked after the last scheduling: 6 replicas over a (10 free + its 6), b and c (10 each).
    let fresh = planned(&asked);
    assert_eq!(targets(&fresh), [("a", 2), ("b", 2), ("c", 2)]);
    let binding = web(&fresh);
    assert_eq!(binding.status.last_scheduled_time.as_deref(), Some(NOW));
    assert_eq!(
        binding.spec.reschedule_triggered_at.as_deref(),
        Some("2026-11-22T07:30:00Z")
    );
    // Once done, the request is behind the new result: the next scheduling starts from it,
    // and the result keeps the request, with the document or without it.
    let history = History {
        last: Some(binding),
        document: Some(binding),
    };
    assert!(!history.rebalance_due());
    let without = index(&[("clusters.yaml", CLUSTERS), ("web.yaml", WEB)]);
    let next = plan(&without, &fresh.bindings, now());
    assert_eq!(targets(&next), [("a", 2), ("b", 2), ("c", 2)]);
    assert_eq!(
        web(&next).spec.reschedule_triggered_at.as_deref(),
        Some("2026-11-22T07:30:00Z")
    );
}

#[test]
fn a_rebalance_keeps_the_observed_affinity_term_as_karmada_1_18_does() {
    // Karmada 1.19 restarts `clusterAffinities` from the first term on a rebalance; 1.18, the
    // latest release, starts from the observed one.
    let policy = WEB.replace(
        "  placement:\n",
        "  placement:\n    clusterAffinities:\n    - {affinityName: primary, clusterNames: [a]}\n    - {affinityName: backup, clusterNames: [b, c]}\n",
    );
    let asked = document(
        "[{name: b, replicas: 6}]",
        Some("2026-11-22T07:30:00Z"),
        Some("backup"),
    );
    let mut index = index(&[("clusters.yaml", CLUSTERS), ("web.yaml", &policy)]);
    index.reset(
        &meshfleet_index::Origin::file("binding.yaml"),
        parse_file("binding.yaml", &asked),
    );
    let fresh = plan(&index, &Bindings::new(), now());
    // Afresh within the backup term: b (10 free + its 6) and c (10).
    assert_eq!(targets(&fresh), [("b", 4), ("c", 2)]);
    assert_eq!(
        web(&fresh)
            .status
            .scheduler_observed_affinity_name
            .as_deref(),
        Some("backup")
    );
}
