use serde_json::{Value, json};

use super::{policy, render_for};
use meshfleet_api::fixtures::cluster;

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "web", "labels": {"app": "nginx"}},
        "spec": {"replicas": 2}})
}

/// A policy that writes `value` to `/spec/owner` (so the last one applied shows).
fn writer(kind: &str, namespace: Option<&str>, name: &str, selectors: &str, value: &str) -> String {
    let ns = namespace
        .map(|n| format!(", namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}{ns}}}\nspec:\n\
         \x20 resourceSelectors: {selectors}\n\
         \x20 overrideRules:\n  - overriders:\n      plaintext: [{{path: /spec/owner, operator: add, value: {value}}}]\n"
    )
}

fn owner(overrides: &[&str]) -> Value {
    let policies: Vec<_> = overrides.iter().map(|y| policy(y)).collect();
    let got =
        render_for(&deployment(), &cluster("member1").build(), None, &policies).expect("renders");
    got["spec"]["owner"].clone()
}

const BY_KIND: &str = "[{apiVersion: apps/v1, kind: Deployment}]";
const BY_LABEL: &str =
    "[{apiVersion: apps/v1, kind: Deployment, labelSelector: {matchLabels: {app: nginx}}}]";
const BY_NAME: &str = "[{apiVersion: apps/v1, kind: Deployment, name: nginx}]";

#[test]
fn implicit_priority_then_name_decides_who_wins() {
    let cases: [(&[String], &str); 5] = [
        // A name beats a label selector beats apiVersion + kind, whatever the names.
        (
            &[
                writer("OverridePolicy", Some("web"), "a", BY_NAME, "name"),
                writer("OverridePolicy", Some("web"), "z", BY_LABEL, "label"),
            ],
            "name",
        ),
        (
            &[
                writer("OverridePolicy", Some("web"), "a", BY_LABEL, "label"),
                writer("OverridePolicy", Some("web"), "z", BY_KIND, "kind"),
            ],
            "label",
        ),
        // No selectors counts as apiVersion + kind; then names in ascending order, last wins.
        (
            &[
                writer("OverridePolicy", Some("web"), "b", "[]", "all"),
                writer("OverridePolicy", Some("web"), "a", BY_KIND, "kind"),
            ],
            "all",
        ),
        // Namespaced policies apply after cluster ones, even the less precise.
        (
            &[
                writer("OverridePolicy", Some("web"), "a", "[]", "namespaced"),
                writer("ClusterOverridePolicy", None, "z", BY_NAME, "cluster"),
            ],
            "namespaced",
        ),
        // A policy in another namespace, or selecting another name, does not apply.
        (
            &[
                writer("ClusterOverridePolicy", None, "a", BY_KIND, "cluster"),
                writer("OverridePolicy", Some("db"), "z", "[]", "other-namespace"),
                writer(
                    "OverridePolicy",
                    Some("web"),
                    "z",
                    "[{apiVersion: apps/v1, kind: Deployment, name: redis}]",
                    "other",
                ),
            ],
            "cluster",
        ),
    ];
    for (policies, want) in cases {
        let yaml: Vec<&str> = policies.iter().map(String::as_str).collect();
        assert_eq!(owner(&yaml), json!(want), "{policies:?}");
    }
}

#[test]
fn cluster_scoped_resources_get_only_cluster_policies() {
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}, "spec": {}});
    let policies = [
        policy(&writer(
            "OverridePolicy",
            Some("default"),
            "a",
            "[]",
            "namespaced",
        )),
        policy(&writer("ClusterOverridePolicy", None, "b", "[]", "cluster")),
    ];
    let got = render_for(&namespace, &cluster("m").build(), None, &policies);
    assert_eq!(
        got,
        Ok(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "web", "labels": {"meshfleet.io/managed": "true"}},
            "spec": {"owner": "cluster"}}))
    );
}

#[test]
fn rules_apply_to_their_target_clusters_in_order() {
    let p = policy(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: op, namespace: web}\n\
         spec:\n  overrideRules:\n\
         \x20 - targetCluster: {clusterNames: [member1]}\n    overriders:\n      plaintext: [{path: /spec/replicas, operator: replace, value: 5}]\n\
         \x20 - targetCluster: {fieldSelector: {matchExpressions: [{key: region, operator: In, values: [cn-north-1]}]}}\n\
         \x20   overriders:\n      labelsOverrider: [{operator: add, value: {region: north}}]\n\
         \x20 - overriders:\n      annotationsOverrider: [{operator: add, value: {all: 'yes'}}]\n",
    );
    let north = cluster("member2").region("cn-north-1").build();
    let got = render_for(&deployment(), &north, None, std::slice::from_ref(&p)).expect("renders");
    assert_eq!(got["spec"]["replicas"], json!(2));
    assert_eq!(
        got["metadata"],
        json!({"name": "nginx", "namespace": "web", "annotations": {"all": "yes"},
            "labels": {"app": "nginx", "region": "north", "meshfleet.io/managed": "true"}})
    );
    let member1 =
        render_for(&deployment(), &cluster("member1").build(), None, &[p]).expect("renders");
    assert_eq!(member1["spec"]["replicas"], json!(5));
}

#[test]
fn deprecated_target_cluster_and_overriders_still_apply() {
    let p = policy(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: old, namespace: web}\n\
         spec:\n  targetCluster: {clusterNames: [member1]}\n  overriders:\n\
         \x20   plaintext: [{path: /spec/missing/x, operator: replace, value: 1}]\n",
    );
    let err = render_for(
        &deployment(),
        &cluster("member1").build(),
        None,
        std::slice::from_ref(&p),
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("OverridePolicy web/old spec.overriders.plaintext[0]: path /spec/missing/x does not exist".to_owned())
    );
    assert!(render_for(&deployment(), &cluster("member2").build(), None, &[p]).is_ok());
}

/// Within a rule: image, command, args, labels, annotations, field, plaintext — so plaintext
/// sees (and can undo) what the image overrider did.
#[test]
fn overriders_apply_in_karmada_order() {
    let template = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}});
    let p = policy(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: op, namespace: web}\n\
         spec:\n  overrideRules:\n  - overriders:\n\
         \x20     plaintext:\n      - {path: /metadata/labels/seen, operator: replace, value: by-plaintext}\n\
         \x20     - {path: /spec/template/spec/containers/0/image, operator: replace, value: nginx:2}\n\
         \x20     labelsOverrider: [{operator: add, value: {seen: by-labels}}]\n\
         \x20     imageOverrider: [{component: Registry, operator: add, value: reg.example}]\n",
    );
    let got = render_for(&template, &cluster("m").build(), None, &[p]);
    assert_eq!(
        got,
        Ok(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "web",
                "labels": {"seen": "by-plaintext", "meshfleet.io/managed": "true"}},
            "spec": {"template": {
                "metadata": {"labels": {"topology.istio.io/cluster": "m"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}}))
    );
}
