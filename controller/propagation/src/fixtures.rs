//! Fixtures for tests of propagation, here and (feature `fixtures`) in the crates that apply
//! plans: a fleet of four clusters, Karmada's nginx sample, a fixed clock.

use std::time::SystemTime;

use meshfleet_api::yaml::parse_file;
use meshfleet_index::{Index, Origin};

use crate::failover;

pub const NOW: &str = "2026-11-22T08:00:00Z";

pub fn now() -> SystemTime {
    failover::parse_time(NOW).unwrap()
}

pub fn index(files: &[(&str, &str)]) -> Index {
    let mut index = Index::default();
    for (name, text) in files {
        index.reset(&Origin::file(name), parse_file(name, text));
    }
    index
}

/// Four clusters over two regions, as in the demo.
pub const FLEET: &str = "
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member1, labels: {env: prod}}
spec: {region: us-east, zone: us-east-1a, provider: aws, network: net-east}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member2, labels: {env: prod}}
spec: {region: us-east, zone: us-east-1b, provider: aws, network: net-east}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member3}
spec: {region: us-west, zone: us-west-2a, provider: gcp, network: net-west}
---
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: member4}
spec: {region: us-west, zone: us-west-2b, provider: gcp, network: net-west}
";

/// Karmada's `samples/nginx`: the Deployment and its PropagationPolicy, unchanged.
pub const NGINX: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - image: nginx
        name: nginx
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: nginx-propagation
spec:
  resourceSelectors:
    - apiVersion: apps/v1
      kind: Deployment
      name: nginx
  placement:
    clusterAffinity:
      clusterNames:
        - member1
        - member2
    replicaScheduling:
      replicaDivisionPreference: Weighted
      replicaSchedulingType: Divided
      weightPreference:
        staticWeightList:
          - targetCluster:
              clusterNames:
                - member1
            weight: 1
          - targetCluster:
              clusterNames:
                - member2
            weight: 1
";
