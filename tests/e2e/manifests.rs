//! The install (`manifests/`), rendered as a user renders it (`kubectl kustomize`, offline):
//! least-privilege RBAC that still covers everything `meshfleet run --kube` reads and writes,
//! and a Deployment and Service as the README describes them.

use std::path::PathBuf;
use std::process::Command;

use meshfleet_runtime::kube::objects::{
    CLUSTERS, DEFAULT_TEMPLATES, DESTINATION_RULES, ENDPOINT_SLICES, GATEWAY_POLICIES, LEASES,
    NODES, Resource, SECRETS, SERVICE_EXPORTS, SERVICES,
};
use serde::Deserialize;
use serde_json::Value;

fn kustomize(dir: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&path)
        .output()
        .expect("kubectl not found: run `make setup` (tests/setup.sh installs kubernetes-client)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    docs.iter().filter(move |d| d["kind"] == kind)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// No wildcard anywhere, nothing bound to cluster-admin.
fn least_privilege(docs: &[Value]) {
    for role in of_kind(docs, "ClusterRole").chain(of_kind(docs, "Role")) {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(!strings(&rule[field]).contains(&"*"), "wildcard in {role}");
            }
        }
    }
    for binding in of_kind(docs, "ClusterRoleBinding").chain(of_kind(docs, "RoleBinding")) {
        assert_ne!(binding["roleRef"]["name"], "cluster-admin", "{binding}");
    }
}

/// Whether some rule of `kind` roles grants `verb` on `resource`.
fn allows(docs: &[Value], kind: &str, resource: &Resource, verb: &str) -> bool {
    of_kind(docs, kind).any(|role| {
        role["rules"].as_array().unwrap().iter().any(|rule| {
            strings(&rule["apiGroups"]).contains(&resource.group)
                && strings(&rule["resources"]).contains(&resource.plural)
                && strings(&rule["verbs"]).contains(&verb)
                && rule.get("resourceNames").is_none()
        })
    })
}

#[test]
fn the_gateway_install_is_least_privilege_and_covers_what_meshfleet_watches() {
    let docs = kustomize("manifests");
    least_privilege(&docs);
    let mut watched = GATEWAY_POLICIES.to_vec();
    watched.extend([CLUSTERS, DESTINATION_RULES]);
    watched.extend(DEFAULT_TEMPLATES);
    for resource in &watched {
        for verb in ["list", "watch"] {
            assert!(
                allows(&docs, "ClusterRole", resource, verb),
                "cannot {verb} {resource}"
            );
        }
    }
    // Remote secrets and the Lease only in meshfleet's namespace.
    assert!(!allows(&docs, "ClusterRole", &SECRETS, "list"));
    assert!(allows(&docs, "Role", &SECRETS, "watch"));
    assert!(allows(&docs, "Role", &LEASES, "create"));
    // Every CRD is there, and every namespaced object lands in meshfleet-system.
    assert_eq!(of_kind(&docs, "CustomResourceDefinition").count(), 8);
    let deployment = of_kind(&docs, "Deployment").next().expect("a Deployment");
    assert_eq!(deployment["metadata"]["namespace"], "meshfleet-system");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(strings(&container["args"]), ["run", "--kube"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(container["readinessProbe"]["httpGet"]["path"] == "/readyz");
    assert!(container["livenessProbe"]["httpGet"]["path"] == "/healthz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    let service = of_kind(&docs, "Service").next().expect("a Service");
    let ports: Vec<i64> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    for port in [15010, 15012, 15014, 15053] {
        assert!(ports.contains(&port), "port {port} in {ports:?}");
    }
}

#[test]
fn the_member_install_allows_the_watches_and_the_copies() {
    let docs = kustomize("manifests/member");
    least_privilege(&docs);
    for resource in [
        SERVICES,
        ENDPOINT_SLICES,
        SERVICE_EXPORTS,
        DESTINATION_RULES,
        NODES,
    ] {
        for verb in ["list", "watch"] {
            assert!(
                allows(&docs, "ClusterRole", &resource, verb),
                "cannot {verb} {resource}"
            );
        }
    }
    for resource in &DEFAULT_TEMPLATES {
        for verb in ["patch", "create", "delete", "list"] {
            assert!(
                allows(&docs, "ClusterRole", resource, verb),
                "cannot {verb} {resource}"
            );
        }
    }
    let cacerts = of_kind(&docs, "Role").next().expect("the cacerts Role");
    assert_eq!(cacerts["metadata"]["namespace"], "istio-system");
}

#[test]
fn the_agent_install_runs_the_agent_with_the_members_rights_and_little_in_the_gateway() {
    let docs = kustomize("manifests/agent");
    least_privilege(&docs);
    let agent = of_kind(&docs, "Deployment")
        .next()
        .expect("the agent's Deployment");
    let container = &agent["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(strings(&container["args"])[0], "agent");
    assert_eq!(
        agent["spec"]["template"]["spec"]["serviceAccountName"],
        "meshfleet-reader"
    );
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/agent/gateway-rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let gateway: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect();
    least_privilege(&gateway);
    // The agent only reads its Works and reports: nothing else is writable.
    for role in of_kind(&gateway, "Role").chain(of_kind(&gateway, "ClusterRole")) {
        for rule in role["rules"].as_array().unwrap() {
            for verb in strings(&rule["verbs"]) {
                let status = strings(&rule["resources"])
                    .iter()
                    .all(|r| r.ends_with("/status"));
                assert!(matches!(verb, "get" | "list" | "watch") || status, "{rule}");
            }
        }
    }
}
