//! The plan as a whole, from YAML as users write it: Karmada's own samples, failover, deps and
//! every kind of bad input.

use super::binding::scheduled;
use super::*;
use crate::fixtures::{FLEET, NGINX, index, now};
use meshfleet_api::yaml::parse_file;
use meshfleet_index::Origin;

fn targets(plan: &Plan, kind: &str, namespace: Option<&str>, name: &str) -> Vec<(String, i32)> {
    let binding = binding(plan, kind, namespace, name);
    binding
        .spec
        .clusters
        .iter()
        .map(|t| (t.name.clone(), t.replicas))
        .collect()
}

fn binding<'a>(
    plan: &'a Plan,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> &'a ResourceBinding {
    plan.bindings
        .iter()
        .find(|(r, _)| r.kind == kind && r.namespace.as_deref() == namespace && r.name == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no binding for {kind} {name}: {:?}", plan.bindings.keys()))
}

fn pairs(items: &[(&str, i32)]) -> Vec<(String, i32)> {
    items.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect()
}

fn manifest(plan: &Plan, cluster: &str, kind: &str, name: &str) -> Option<serde_json::Value> {
    plan.manifests
        .get(cluster)?
        .iter()
        .find_map(|(k, v)| (k.kind == kind && k.name == name).then(|| v.decode().unwrap()))
}

fn messages(plan: &Plan) -> Vec<String> {
    plan.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn karmadas_nginx_sample_divides_two_replicas_one_each() {
    let plan = plan(
        &index(&[("fleet.yaml", FLEET), ("nginx.yaml", NGINX)]),
        &Bindings::new(),
        now(),
    );
    assert_eq!(messages(&plan), Vec::<String>::new());
    assert_eq!(
        targets(&plan, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)])
    );
    let b = binding(&plan, "Deployment", Some("default"), "nginx");
    assert_eq!(b.metadata.name, "nginx-deployment");
    assert_eq!(b.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(b.spec.replicas, 2);
    assert_eq!(b.status.conditions, vec![scheduled()]);
    let copy = manifest(&plan, "member1", "Deployment", "nginx").unwrap();
    assert_eq!(copy["spec"]["replicas"], 1);
    let labels = &copy["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["topology.kubernetes.io/region"], "us-east");
    assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1a");
    assert_eq!(labels["topology.istio.io/network"], "net-east");
    assert_eq!(labels["topology.istio.io/cluster"], "member1");
    assert_eq!(labels["app"], "nginx");
    assert!(manifest(&plan, "member3", "Deployment", "nginx").is_none());
}

#[test]
fn duplicated_by_region_and_a_service_template_goes_along() {
    let config = "
apiVersion: v1
kind: Service
metadata: {name: api, namespace: team-a}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: team-a}
spec: {replicas: 3, template: {spec: {containers: [{name: api, image: api:1}]}}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: api, namespace: team-a}
spec:
  resourceSelectors:
  - {apiVersion: apps/v1, kind: Deployment}
  - {apiVersion: v1, kind: Service, name: api}
  placement:
    clusterAffinity:
      fieldSelector:
        matchExpressions: [{key: region, operator: In, values: [us-west]}]
";
    let plan = plan(
        &index(&[("fleet.yaml", FLEET), ("api.yaml", config)]),
        &Bindings::new(),
        now(),
    );
    assert_eq!(messages(&plan), Vec::<String>::new());
    let want = pairs(&[("member3", 3), ("member4", 3)]);
    assert_eq!(targets(&plan, "Deployment", Some("team-a"), "api"), want);
    assert_eq!(
        targets(&plan, "Service", Some("team-a"), "api"),
        pairs(&[("member3", 0), ("member4", 0)])
    );
    // Duplicated: each copy keeps the template's replicas.
    assert_eq!(
        manifest(&plan, "member4", "Deployment", "api").unwrap()["spec"]["replicas"],
        3
    );
    assert!(manifest(&plan, "member4", "Service", "api").is_some());
    assert!(!plan.manifests.contains_key("member1"));
}

#[test]
fn bad_input_is_reported_and_the_rest_is_still_planned() {
    let config = "
apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {name: nowhere}
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: team-a}
spec: {replicas: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: contested, namespace: team-a}
spec: {replicas: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lost, namespace: team-a}
spec: {replicas: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread, namespace: team-a}
spec: {replicas: 4}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: zero, namespace: team-a}
spec: {replicas: 4}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: good, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: good}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: b-second, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: contested}]
  placement: {clusterAffinity: {clusterNames: [member3]}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: a-first, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: contested}]
  placement: {clusterAffinity: {clusterNames: [member2]}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: lost, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: lost}]
  placement: {clusterAffinity: {labelSelector: {matchLabels: {env: nowhere}}}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: spread, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: spread}]
  placement:
    spreadConstraints: [{spreadByField: region, minGroups: 3, maxGroups: 3}, {spreadByField: cluster, minGroups: 3}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: zero, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: zero}]
  placement:
    clusterAffinity: {clusterNames: [member1, member3]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 0}
        - {targetCluster: {clusterNames: [member3]}, weight: 0}
---
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: broken, namespace: team-a}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: good}]
  overrideRules:
  - targetCluster: {clusterNames: [member1]}
    overriders:
      plaintext: [{path: /spec/nothing/here, operator: replace, value: 1}]
";
    let plan = plan(
        &index(&[("fleet.yaml", FLEET), ("bad.yaml", config)]),
        &Bindings::new(),
        now(),
    );
    let problems = messages(&plan);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("Cluster nowhere spec.region: no region"),
        "{problems:#?}"
    );
    assert!(
        has(
            "Deployment team-a/contested: claimed by PropagationPolicy team-a/a-first and, at equal priority, by PropagationPolicy team-a/b-second"
        ),
        "{problems:#?}"
    );
    assert!(
        has("Deployment team-a/lost: not scheduled"),
        "{problems:#?}"
    );
    assert!(
        has("Deployment team-a/spread: not scheduled"),
        "{problems:#?}"
    );
    assert!(
        has(
            "PropagationPolicy team-a/zero spec.placement.replicaScheduling.weightPreference.staticWeightList: weights sum to 0"
        ),
        "{problems:#?}"
    );
    assert!(
        has("Deployment team-a/good: not rendered for cluster member1"),
        "{problems:#?}"
    );
    assert!(has("OverridePolicy team-a/broken"), "{problems:#?}");

    assert_eq!(
        targets(&plan, "Deployment", Some("team-a"), "contested"),
        pairs(&[("member2", 1)])
    );
    let lost = binding(&plan, "Deployment", Some("team-a"), "lost");
    assert_eq!(lost.spec.clusters, vec![]);
    assert_eq!(lost.status.conditions[0].status, "False");
    assert!(!lost.status.conditions[0].reason.is_empty());
    assert_eq!(
        binding(&plan, "Deployment", Some("team-a"), "spread")
            .status
            .conditions[0]
            .status,
        "False"
    );
    // Weights summing to 0: divided equally, as Karmada does.
    assert_eq!(
        targets(&plan, "Deployment", Some("team-a"), "zero"),
        pairs(&[("member1", 2), ("member3", 2)])
    );
    // The override that does not apply: scheduled, not rendered there, its last copy kept.
    assert_eq!(
        targets(&plan, "Deployment", Some("team-a"), "good"),
        pairs(&[("member1", 2)])
    );
    assert!(manifest(&plan, "member1", "Deployment", "good").is_none());
    assert_eq!(
        plan.keep["member1"]
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["good"]
    );
}

const FAILOVER: &str = "
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {name: east-1}
spec: {region: us-east, zone: us-east-1a}
status:
  conditions:
  - {type: Ready, status: 'False', lastTransitionTime: '2026-11-22T07:50:00Z'}
---
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {name: west-1}
spec: {region: us-west, zone: us-west-2a}
status:
  conditions:
  - {type: Ready, status: 'True'}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 2}
---
apiVersion: meshfleet.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    clusterAffinity: {clusterNames: [east-1, west-1]}
    spreadConstraints: [{spreadByField: cluster, maxGroups: 1, minGroups: 1}]
---
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {name: web-deployment, namespace: shop}
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: shop, name: web}
  clusters: [{name: east-1, replicas: 2}]
";

#[test]
fn a_failed_cluster_is_left_after_the_toleration_and_its_copy_kept_until_the_new_one_is_ready() {
    let index = index(&[("failover.yaml", FAILOVER)]);
    // 10 minutes after the failure: past the default 300 s.
    let plan = plan(&index, &Bindings::new(), now());
    assert_eq!(messages(&plan), Vec::<String>::new());
    let web = binding(&plan, "Deployment", Some("shop"), "web");
    assert_eq!(
        targets(&plan, "Deployment", Some("shop"), "web"),
        pairs(&[("west-1", 2)])
    );
    let tasks: Vec<(&str, &str)> = web
        .spec
        .graceful_eviction_tasks
        .iter()
        .map(|t| (t.from_cluster.as_str(), t.reason.as_str()))
        .collect();
    assert_eq!(tasks, [("east-1", "TaintUntolerated")]);
    assert!(
        manifest(&plan, "east-1", "Deployment", "web").is_some(),
        "old copy kept"
    );
    assert!(manifest(&plan, "west-1", "Deployment", "web").is_some());

    // The new copy reports ready: the old one goes.
    let observed = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {multicluster.kubernetes.io/source-cluster: west-1}
status: {readyReplicas: 2}
";
    let mut with_status = index;
    with_status.reset(
        &Origin::file("observed.yaml"),
        parse_file("observed.yaml", observed),
    );
    let next = super::plan(&with_status, &plan.bindings, now());
    assert_eq!(
        binding(&next, "Deployment", Some("shop"), "web")
            .spec
            .graceful_eviction_tasks,
        vec![]
    );
    assert!(manifest(&next, "east-1", "Deployment", "web").is_none());
}

#[test]
fn within_the_toleration_period_the_binding_stays() {
    let index = index(&[("failover.yaml", FAILOVER)]);
    let early = failover::parse_time("2026-11-22T07:52:00Z").unwrap();
    let plan = plan(&index, &Bindings::new(), early);
    assert_eq!(
        targets(&plan, "Deployment", Some("shop"), "web"),
        pairs(&[("east-1", 2)])
    );
}

#[test]
fn a_binding_in_the_config_keeps_its_policy_until_a_preempting_one_comes() {
    let newcomer = "
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: newcomer}
spec:
  priority: 10
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]
  placement: {clusterAffinity: {clusterNames: [member3]}}
";
    // As Karmada wrote it: claimed by nginx-propagation.
    let claimed = "
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata:
  name: nginx-deployment
  namespace: default
  annotations:
    propagationpolicy.karmada.io/name: nginx-propagation
    propagationpolicy.karmada.io/namespace: default
spec:
  resource: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: nginx}
  clusters: [{name: member1, replicas: 1}, {name: member2, replicas: 1}]
";
    let fresh = index(&[
        ("fleet.yaml", FLEET),
        ("nginx.yaml", NGINX),
        ("new.yaml", newcomer),
    ]);
    let plan = plan(&fresh, &Bindings::new(), now());
    assert_eq!(
        targets(&plan, "Deployment", Some("default"), "nginx"),
        pairs(&[("member3", 2)]),
        "unclaimed, the higher priority wins"
    );
    let held = index(&[
        ("fleet.yaml", FLEET),
        ("nginx.yaml", NGINX),
        ("new.yaml", newcomer),
        ("binding.yaml", claimed),
    ]);
    let plan = super::plan(&held, &Bindings::new(), now());
    assert_eq!(
        targets(&plan, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)]),
        "claimed, it stays"
    );
    let preempting = newcomer.replace("priority: 10", "priority: 10\n  preemption: Always");
    let mut held = held;
    held.reset(
        &Origin::file("new.yaml"),
        parse_file("new.yaml", &preempting),
    );
    let plan = super::plan(&held, &Bindings::new(), now());
    assert_eq!(
        targets(&plan, "Deployment", Some("default"), "nginx"),
        pairs(&[("member3", 2)]),
        "preempted"
    );
}

#[test]
fn a_divided_jobs_completions_follow_its_parallelism() {
    let job = "
apiVersion: batch/v1
kind: Job
metadata: {name: pi, namespace: batch}
spec:
  parallelism: 6
  completions: 9
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: perl}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: pi, namespace: batch}
spec:
  resourceSelectors: [{apiVersion: batch/v1, kind: Job}]
  placement:
    clusterAffinity: {clusterNames: [member1, member3]}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [member1]}, weight: 1}
        - {targetCluster: {clusterNames: [member3]}, weight: 2}
";
    let index = index(&[("fleet.yaml", FLEET), ("job.yaml", job)]);
    let plan = plan(&index, &Bindings::new(), now());
    assert_eq!(
        targets(&plan, "Job", Some("batch"), "pi"),
        pairs(&[("member1", 2), ("member3", 4)])
    );
    let spec = |cluster| {
        let job = manifest(&plan, cluster, "Job", "pi").expect("copy");
        (
            job["spec"]["parallelism"].clone(),
            job["spec"]["completions"].clone(),
        )
    };
    assert_eq!(spec("member1"), (2.into(), 3.into()));
    assert_eq!(spec("member3"), (4.into(), 6.into()));
}

#[test]
fn after_failover_to_a_backup_term_it_stays_there_unless_failback_is_asked() {
    let policy = |annotations: &str| {
        format!(
            "
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: web, namespace: shop{annotations}}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: web}}]
  failover: {{cluster: {{purgeMode: Directly}}}}
  placement:
    clusterAffinities:
    - {{affinityName: primary, clusterNames: [east-1]}}
    - {{affinityName: backup, clusterNames: [west-1]}}
"
        )
    };
    let clusters = FAILOVER.split("---\napiVersion: apps/v1").next().unwrap();
    let recovered = clusters.replace("status: 'False'", "status: 'True'");
    for (annotations, back) in [
        ("", false),
        (", annotations: {meshfleet.io/failback: 'true'}", true),
    ] {
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 2}\n";
        let mut index = index(&[
            ("clusters.yaml", clusters),
            ("web.yaml", deployment),
            ("policy.yaml", &policy(annotations)),
        ]);
        let first = plan(&index, &Bindings::new(), now());
        let web = binding(&first, "Deployment", Some("shop"), "web");
        assert_eq!(
            targets(&first, "Deployment", Some("shop"), "web"),
            pairs(&[("west-1", 2)])
        );
        assert_eq!(
            web.status.scheduler_observed_affinity_name.as_deref(),
            Some("backup")
        );

        index.reset(
            &Origin::file("clusters.yaml"),
            parse_file("clusters.yaml", &recovered),
        );
        let next = plan(&index, &first.bindings, now());
        let (cluster, term) = if back {
            ("east-1", "primary")
        } else {
            ("west-1", "backup")
        };
        let web = binding(&next, "Deployment", Some("shop"), "web");
        assert_eq!(
            targets(&next, "Deployment", Some("shop"), "web"),
            pairs(&[(cluster, 2)]),
            "failback {back}"
        );
        assert_eq!(
            web.status.scheduler_observed_affinity_name.as_deref(),
            Some(term)
        );
    }
}

#[test]
fn service_exports_and_destination_rules_propagate_like_any_template() {
    let config = "
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: web, namespace: shop}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: mcs, namespace: shop}
spec:
  resourceSelectors:
  - {apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport}
  - {apiVersion: networking.istio.io/v1, kind: DestinationRule}
  placement: {clusterAffinity: {clusterNames: [member1, member3]}}
";
    let index = index(&[("fleet.yaml", FLEET), ("mcs.yaml", config)]);
    let plan = plan(&index, &Bindings::new(), now());
    assert_eq!(messages(&plan), Vec::<String>::new());
    for kind in ["ServiceExport", "DestinationRule"] {
        assert_eq!(
            targets(&plan, kind, Some("shop"), "web"),
            pairs(&[("member1", 0), ("member3", 0)]),
            "{kind}"
        );
    }
    let rule = manifest(&plan, "member3", "DestinationRule", "web").expect("copy");
    assert_eq!(
        rule["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"],
        3
    );
    assert!(manifest(&plan, "member1", "ServiceExport", "web").is_some());
}

#[test]
fn a_template_edited_into_invalid_replicas_keeps_its_copies() {
    let mut index = index(&[("fleet.yaml", FLEET), ("nginx.yaml", NGINX)]);
    let first = plan(&index, &Bindings::new(), now());
    assert_eq!(
        targets(&first, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)])
    );
    let broken = NGINX.replace("replicas: 2", "replicas: -5");
    index.reset(
        &Origin::file("nginx.yaml"),
        parse_file("nginx.yaml", &broken),
    );
    let next = plan(&index, &first.bindings, now());
    let nginx = binding(&next, "Deployment", Some("default"), "nginx");
    assert_eq!(nginx.status.conditions[0].reason, "InvalidTemplate");
    assert_eq!(
        targets(&next, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)])
    );
    // No new copy anywhere; the last ones are kept.
    assert!(manifest(&next, "member1", "Deployment", "nginx").is_none());
    for cluster in ["member1", "member2"] {
        assert_eq!(next.keep[cluster].len(), 1, "{cluster}");
    }
    let message = messages(&next).join("\n");
    assert!(message.contains("its copies stay as they are"), "{message}");
}

#[test]
fn dependencies_follow_their_workload() {
    let config = "
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data: {a: b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  template:
    spec:
      serviceAccountName: web
      containers: [{name: web, image: web:1, envFrom: [{configMapRef: {name: web-config}}]}]
      volumes: [{name: missing, secret: {secretName: not-defined-here}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  propagateDeps: true
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement: {clusterAffinity: {clusterNames: [member3]}}
";
    let plan = plan(
        &index(&[("fleet.yaml", FLEET), ("deps.yaml", config)]),
        &Bindings::new(),
        now(),
    );
    assert_eq!(messages(&plan), Vec::<String>::new());
    let kinds: Vec<String> = plan.manifests["member3"]
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap shop/web-config",
            "ServiceAccount shop/web",
            "Deployment.apps shop/web"
        ]
    );
    // As Karmada's attached binding: no clusters of its own, required by the workload's.
    let config_map = binding(&plan, "ConfigMap", Some("shop"), "web-config");
    assert_eq!(config_map.spec.clusters, vec![]);
    let by: Vec<(&str, &str, Vec<&str>)> = config_map
        .spec
        .required_by
        .iter()
        .map(|b| {
            let clusters = b.clusters.iter().map(|t| t.name.as_str()).collect();
            (b.namespace.as_str(), b.name.as_str(), clusters)
        })
        .collect();
    assert_eq!(by, [("shop", "web-deployment", vec!["member3"])]);
}

#[test]
fn an_istio_routing_kind_no_policy_propagates_is_said_to_have_no_effect() {
    let istio = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: shop}
spec: {hosts: [api.example.com], resolution: DNS}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
";
    let plan = plan(
        &index(&[("fleet.yaml", FLEET), ("istio.yaml", istio)]),
        &Bindings::new(),
        now(),
    );
    let why = |kind: &str| {
        format!(
            "no effect: meshfleet's xDS and DNS do not read a {kind} (of Istio's kinds they read only DestinationRules), and no policy propagates it to member clusters"
        )
    };
    assert_eq!(
        messages(&plan),
        [
            format!("ServiceEntry shop/external: {}", why("ServiceEntry")),
            format!("VirtualService shop/reviews: {}", why("VirtualService")),
        ]
    );
}

#[test]
fn clusters_that_vanish_and_come_back_take_their_workload_back() {
    // nginx goes to member1 and member2 only. Both vanish (a clusters file emptied): the
    // binding cannot be placed, its copies are kept by eviction tasks. When they are back, the
    // binding is placed on them again rather than left unschedulable with the old copies.
    let fleet = index(&[("fleet.yaml", FLEET), ("nginx.yaml", NGINX)]);
    let first = plan(&fleet, &Bindings::new(), now());
    assert_eq!(
        targets(&first, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)])
    );
    let gone = index(&[("nginx.yaml", NGINX)]);
    let during = plan(&gone, &first.bindings, now());
    let nginx = binding(&during, "Deployment", Some("default"), "nginx");
    assert_eq!(nginx.spec.clusters, vec![]);
    assert_eq!(nginx.spec.graceful_eviction_tasks.len(), 2);

    let back = plan(&fleet, &during.bindings, now());
    assert_eq!(
        targets(&back, "Deployment", Some("default"), "nginx"),
        pairs(&[("member1", 1), ("member2", 1)])
    );
    let nginx = binding(&back, "Deployment", Some("default"), "nginx");
    assert_eq!(nginx.spec.graceful_eviction_tasks, vec![]);
    assert_eq!(nginx.status.conditions[0].status, "True");
    for cluster in ["member1", "member2"] {
        let copy = manifest(&back, cluster, "Deployment", "nginx").expect("copy");
        assert_eq!(copy["spec"]["replicas"], 1, "{cluster}");
    }
    assert!(manifest(&back, "member3", "Deployment", "nginx").is_none());
}
