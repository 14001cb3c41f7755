use serde_json::{Value, json};

use super::super::prune::prune;

fn pruned(kind: &str, mut doc: Value) -> Value {
    prune(&mut doc, kind);
    doc
}

#[test]
fn server_fields_and_status_go() {
    let doc = json!({"kind": "ConfigMap", "metadata": {
        "name": "c", "namespace": "default", "labels": {"a": "b"}, "annotations": {"x": "y"},
        "uid": "1", "resourceVersion": "2", "selfLink": "/x", "creationTimestamp": "t",
        "generation": 3, "managedFields": [], "deletionTimestamp": "t",
        "deletionGracePeriodSeconds": 30, "ownerReferences": [], "finalizers": ["f"]},
        "data": {"k": "v"}, "status": {"x": 1}});
    assert_eq!(
        pruned("ConfigMap", doc),
        json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default",
            "labels": {"a": "b"}, "annotations": {"x": "y"}}, "data": {"k": "v"}})
    );
}

#[test]
fn service_cluster_ips_go_unless_headless() {
    let svc = |spec: Value| json!({"kind": "Service", "spec": spec});
    let cases = [
        (
            svc(
                json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "healthCheckNodePort": 30000,
            "ports": [{"port": 80, "nodePort": 30080}]}),
            ),
            svc(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
        ),
        (
            svc(json!({"clusterIP": "None", "clusterIPs": ["None"]})),
            svc(json!({"clusterIP": "None", "clusterIPs": ["None"]})),
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(pruned("Service", doc), want);
    }
}

#[test]
fn job_generated_selector_and_labels_go() {
    let labels = json!({"app": "pi", "controller-uid": "u", "job-name": "pi",
        "batch.kubernetes.io/controller-uid": "u", "batch.kubernetes.io/job-name": "pi"});
    let generated = json!({"kind": "Job", "spec": {"ttlSecondsAfterFinished": 100,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
        "template": {"metadata": {"labels": labels}}}});
    assert_eq!(
        pruned("Job", generated),
        json!({"kind": "Job", "spec": {"template": {"metadata": {"labels": {"app": "pi"}}}}})
    );
    let manual = json!({"kind": "Job", "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"controller-uid": "u"}},
        "template": {"metadata": {"labels": {"controller-uid": "u"}}}}});
    assert_eq!(pruned("Job", manual.clone()), manual);
}

#[test]
fn service_account_token_secrets_go() {
    let sa = |secrets: Value| json!({"kind": "ServiceAccount", "metadata": {"name": "build"}, "secrets": secrets});
    assert_eq!(
        pruned(
            "ServiceAccount",
            sa(json!([{"name": "build-token-abcde"}, {"name": "registry"}]))
        ),
        sa(json!([{"name": "registry"}]))
    );
    assert_eq!(
        pruned("ServiceAccount", sa(json!([{"name": "build-token-abcde"}]))),
        json!({"kind": "ServiceAccount", "metadata": {"name": "build"}})
    );
}

#[test]
fn odd_shapes_are_left_alone() {
    for (kind, doc) in [
        ("Service", json!({"spec": "x", "status": 1})),
        ("Job", json!({"spec": {"selector": 1, "template": []}})),
        ("ServiceAccount", json!({"secrets": [1, {"name": 2}]})),
    ] {
        let mut want = doc.clone();
        want.as_object_mut().expect("object").remove("status");
        assert_eq!(pruned(kind, doc), want);
    }
    assert_eq!(pruned("ConfigMap", json!("text")), json!("text"));
}
