use serde_json::{Value, json};

use super::render_for;
use meshfleet_api::fixtures::cluster;

fn east() -> meshfleet_api::Cluster {
    cluster("east-1")
        .region("us-east")
        .zone("us-east-1a")
        .subzone("rack-7")
        .network("net-east")
        .build()
}

fn locality() -> Value {
    json!({
        "topology.kubernetes.io/region": "us-east",
        "topology.kubernetes.io/zone": "us-east-1a",
        "topology.istio.io/subzone": "rack-7",
        "topology.istio.io/network": "net-east",
        "topology.istio.io/cluster": "east-1",
        "app": "web"
    })
}

const MANAGED: &str = "meshfleet.io/managed";

#[test]
fn every_workload_kind_labels_its_pods() {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}});
    let cases = [
        ("apps/v1", "Deployment", json!({"template": template})),
        ("apps/v1", "StatefulSet", json!({"template": template})),
        ("apps/v1", "DaemonSet", json!({"template": template})),
        ("apps/v1", "ReplicaSet", json!({"template": template})),
        ("batch/v1", "Job", json!({"template": template})),
        (
            "batch/v1",
            "CronJob",
            json!({"jobTemplate": {"spec": {"template": template}}}),
        ),
    ];
    for (api_version, kind, spec) in cases {
        let doc = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let mut want = doc.clone();
        want["metadata"]["labels"] = json!({MANAGED: "true"});
        let labels = match kind {
            "CronJob" => &mut want["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
            _ => &mut want["spec"]["template"]["metadata"]["labels"],
        };
        *labels = locality();
        assert_eq!(render_for(&doc, &east(), None, &[]), Ok(want), "{kind}");
    }
}

#[test]
fn a_pod_is_labelled_itself() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "a", "image": "a"}]}});
    let mut want = pod.clone();
    let mut labels = locality();
    labels[MANAGED] = json!("true");
    want["metadata"]["labels"] = labels;
    assert_eq!(render_for(&pod, &east(), None, &[]), Ok(want));
}

#[test]
fn other_kinds_get_only_the_managed_label() {
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
    let mut want = svc.clone();
    want["metadata"]["labels"] = json!({MANAGED: "true"});
    assert_eq!(render_for(&svc, &east(), None, &[]), Ok(want));
}

#[test]
fn zone_only_when_the_cluster_has_one() {
    let doc = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"}, "spec": {}});
    let cases = [
        (cluster("a").zones(&["z1"]).build(), Some("z1")),
        (cluster("b").zone("z1").zones(&["z1"]).build(), Some("z1")),
        (cluster("c").zones(&["z1", "z2"]).build(), None),
        (cluster("d").zone("z1").zones(&["z2"]).build(), None),
        (cluster("e").build(), None),
    ];
    for (c, zone) in cases {
        let got = render_for(&doc, &c, None, &[]).expect("renders");
        let mut want = json!({"topology.istio.io/cluster": c.name()});
        if let Some(zone) = zone {
            want["topology.kubernetes.io/zone"] = json!(zone);
        }
        assert_eq!(
            got["spec"]["template"]["metadata"]["labels"],
            want,
            "{}",
            c.name()
        );
    }
}

/// Locality labels are written after the overrides: a policy cannot remove or fake them.
#[test]
fn locality_wins_over_overrides() {
    let doc = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {MANAGED: "false"}},
        "spec": {"template": {"metadata": {"labels": {"topology.istio.io/cluster": "x"}}}}});
    let p = super::policy(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: op}\n\
         spec:\n  overrideRules:\n  - overriders:\n      plaintext:\n\
         \x20     - {path: /spec/template/metadata/labels, operator: replace, value: {topology.kubernetes.io/region: fake}}\n",
    );
    let got = render_for(&doc, &cluster("c").region("us-west").build(), None, &[p]);
    assert_eq!(
        got,
        Ok(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {MANAGED: "true"}},
            "spec": {"template": {"metadata": {"labels": {
                "topology.kubernetes.io/region": "us-west", "topology.istio.io/cluster": "c"}}}}}))
    );
}

#[test]
fn replicas_are_revised_before_overrides() {
    let doc = |kind: &str, spec: Value| {
        json!({"apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
    };
    let c = cluster("c").build();
    let cases = [
        (
            doc("Deployment", json!({"replicas": 10})),
            json!({"replicas": 3}),
        ),
        (doc("StatefulSet", json!({})), json!({"replicas": 3})),
        (
            doc("ReplicaSet", json!({"replicas": 1})),
            json!({"replicas": 3}),
        ),
        (
            doc("Job", json!({"parallelism": 6, "completions": 6})),
            json!({"parallelism": 3, "completions": 6}),
        ),
        (doc("DaemonSet", json!({})), json!({})),
    ];
    for (template, want_spec) in cases {
        let got = render_for(&template, &c, Some(3), &[]).expect("renders");
        let mut spec = got["spec"].clone();
        spec.as_object_mut().expect("spec").remove("template");
        assert_eq!(spec, want_spec, "{}", template["kind"]);
    }
    let p = super::policy(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: op}\n\
         spec:\n  overrideRules:\n  - overriders:\n      plaintext: [{path: /spec/replicas, operator: replace, value: 7}]\n",
    );
    let got = render_for(
        &doc("Deployment", json!({"replicas": 10})),
        &c,
        Some(3),
        &[p],
    )
    .expect("renders");
    assert_eq!(got["spec"]["replicas"], json!(7));
}

#[test]
fn odd_templates_give_errors_not_panics() {
    let c = cluster("c").build();
    let cases = [
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": "x"}),
            Some(2),
            "cannot set replicas: /spec is not an object",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"template": []}}),
            None,
            "cannot write labels: /spec/template is not an object",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "labels": "x"}}),
            None,
            "cannot write labels: /metadata/labels is not an object",
        ),
    ];
    for (template, replicas, want) in cases {
        let got = render_for(&template, &c, replicas, &[]).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_owned()));
    }
}
