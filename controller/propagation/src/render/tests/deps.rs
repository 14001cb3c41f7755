use serde_json::json;

use super::super::{Dependency, dependencies};

fn dep(kind: &'static str, name: &str) -> Dependency {
    Dependency {
        kind,
        name: name.to_owned(),
    }
}

#[test]
fn deployment_volumes_env_pull_secrets_and_service_account() {
    let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {
        "serviceAccountName": "web-sa",
        "imagePullSecrets": [{"name": "registry"}],
        "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "init-env"}}]}],
        "containers": [{"name": "app",
            "envFrom": [{"secretRef": {"name": "app-secrets"}}, {"configMapRef": {"name": "app-env"}}],
            "env": [{"name": "A", "value": "x"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "app-env", "key": "b"}}},
                    {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
        "volumes": [
            {"name": "config", "configMap": {"name": "app-config"}},
            {"name": "certs", "secret": {"secretName": "tls"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "all", "projected": {"sources": [
                {"configMap": {"name": "projected-cm"}}, {"secret": {"name": "projected-secret"}},
                {"serviceAccountToken": {"path": "token"}}]}},
            {"name": "csi", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-creds"}}},
            {"name": "ceph", "cephfs": {"monitors": [], "secretRef": {"name": "ceph"}}},
            {"name": "empty", "emptyDir": {}}]}}}});
    assert_eq!(
        dependencies("Deployment", &deployment),
        vec![
            dep("ConfigMap", "app-config"),
            dep("ConfigMap", "app-env"),
            dep("ConfigMap", "init-env"),
            dep("ConfigMap", "projected-cm"),
            dep("PersistentVolumeClaim", "data"),
            dep("Secret", "app-secrets"),
            dep("Secret", "ceph"),
            dep("Secret", "csi-creds"),
            dep("Secret", "db"),
            dep("Secret", "projected-secret"),
            dep("Secret", "registry"),
            dep("Secret", "tls"),
            dep("ServiceAccount", "web-sa"),
        ]
    );
}

#[test]
fn default_service_account_is_not_a_dependency() {
    let pod = |sa: &str| json!({"kind": "Pod", "spec": {"serviceAccountName": sa}});
    assert_eq!(dependencies("Pod", &pod("default")), vec![]);
    assert_eq!(dependencies("Pod", &pod("")), vec![]);
    assert_eq!(
        dependencies("Pod", &pod("runner")),
        vec![dep("ServiceAccount", "runner")]
    );
}

#[test]
fn kinds_and_odd_shapes() {
    let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "volumes": [{"configMap": {"name": "script"}}]}}}}}});
    assert_eq!(
        dependencies("CronJob", &cron),
        vec![dep("ConfigMap", "script")]
    );
    let ingress = json!({"spec": {"tls": [{"secretName": "web-tls"}, {"hosts": ["a"]}, {"secretName": "web-tls"}]}});
    assert_eq!(
        dependencies("Ingress", &ingress),
        vec![dep("Secret", "web-tls")]
    );
    let with_volume =
        json!({"spec": {"template": {"spec": {"volumes": [{"configMap": {"name": "x"}}]}}}});
    // Karmada's interpreter has no ReplicaSet or Service entry.
    assert_eq!(dependencies("ReplicaSet", &with_volume), vec![]);
    assert_eq!(dependencies("Service", &with_volume), vec![]);
    for odd in [
        json!({"spec": "x"}),
        json!({"spec": {"template": {"spec": {"volumes": "x",
        "containers": [1, {"env": [{"valueFrom": {"secretKeyRef": {"name": 5}}}]}]}}}}),
    ] {
        assert_eq!(dependencies("Deployment", &odd), vec![]);
    }
}
