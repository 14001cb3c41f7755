//! A rebalance through `meshfleet schedule`: a ResourceBinding document whose
//! `spec.rescheduleTriggeredAt` (as Karmada's WorkloadRebalancer sets it) is later than its
//! `status.lastScheduledTime` is scheduled afresh; the result, fed back, stays as it is.

use std::path::Path;
use std::process::Command;

/// Three clusters with 10 CPUs free each, and a Deployment of 6 one-CPU replicas divided by
/// available replicas.
const FLEET: &str = "
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member1}
spec: {region: us-east, zone: us-east-1a}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member2}
spec: {region: us-east, zone: us-east-1b}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member3}
spec: {region: us-west, zone: us-west-2a}
status:
  conditions: [{type: Ready, status: 'True'}]
  resourceSummary: {allocatable: {cpu: '10', pods: '110'}}
---
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

/// Every replica on member1 (as after a failover), scheduled at 07:00; a rebalance asked for
/// at `asked`.
fn binding(asked: &str) -> String {
    format!(
        "
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {{name: web-deployment, namespace: shop}}
spec:
  resource: {{apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}}
  replicas: 6
  clusters: [{{name: member1, replicas: 6}}]
  rescheduleTriggeredAt: '{asked}'
status:
  lastScheduledTime: '2026-11-22T07:00:00Z'
"
    )
}

/// `meshfleet schedule -o json` on `config`: the one binding it prints.
fn schedule(config: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(["schedule", "-o", "json", "--config"])
        .arg(config)
        .output()
        .expect("running meshfleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "meshfleet schedule: {stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = list["items"].as_array().expect("a List");
    assert_eq!(items.len(), 1, "{list}");
    items[0].clone()
}

fn clusters(binding: &serde_json::Value) -> Vec<(String, i64)> {
    binding["spec"]["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().expect("name").to_owned();
            (name, t["replicas"].as_i64().unwrap_or(0))
        })
        .collect()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect()
}

#[test]
fn schedule_divides_afresh_when_a_rebalance_is_asked() {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("fleet.yaml"), FLEET).unwrap();
    let document = config.path().join("binding.yaml");

    // Asked before the last scheduling: ignored, the previous result stands.
    std::fs::write(&document, binding("2026-11-22T06:00:00Z")).unwrap();
    let steady = schedule(config.path());
    assert_eq!(clusters(&steady), pairs(&[("member1", 6)]));

    // Asked after it: 6 replicas over member1 (10 free + its 6), member2 and member3 (10 each).
    std::fs::write(&document, binding("2026-11-22T07:30:00Z")).unwrap();
    let fresh = schedule(config.path());
    assert_eq!(
        clusters(&fresh),
        pairs(&[("member1", 2), ("member2", 2), ("member3", 2)])
    );
    assert_eq!(
        fresh["spec"]["rescheduleTriggeredAt"],
        "2026-11-22T07:30:00Z"
    );
    let scheduled = fresh["status"]["lastScheduledTime"].as_str().expect("set");
    assert!(scheduled > "2026-11-22T07:30:00Z", "{scheduled}");

    // The result as the next previous result: the request is behind it, nothing moves.
    let text = serde_norway::to_string(&fresh).unwrap();
    std::fs::write(&document, text).unwrap();
    let again = schedule(config.path());
    assert_eq!(clusters(&again), clusters(&fresh));
}
