//! Policies and templates as a user writes them, through `meshfleet schedule` and `meshfleet
//! render`: custom resources propagate, a suspended policy dispatches nothing, a policy Karmada
//! would refuse (an unknown field, a selector in another namespace) stops a dry run with exit
//! status 2, Karmada fields meshfleet does not act on are named, and a document nested too
//! deeply is refused at once. `meshfleet run` keeps a refused policy's last valid version in
//! effect, and holds a suspended policy's copies as they are.

use meshfleet_testkit as support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshfleet_demo::envoy::eventually;
use meshfleet_demo::fleet::write_atomic;

/// Karmada's three member clusters of `examples/karmada`.
const CLUSTERS: &str = include_str!("../../examples/karmada/clusters.yaml");

/// A config directory holding the clusters and `files`.
fn config(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clusters.yaml"), CLUSTERS).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// Runs the binary: exit status, stdout, stderr.
fn meshfleet(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(args)
        .output()
        .expect("running meshfleet");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `meshfleet schedule -o json`: exit status, the bindings, stderr.
fn schedule(dir: &Path) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let (code, stdout, stderr) =
        meshfleet(&["schedule", "--config", dir.to_str().unwrap(), "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    (code, items, stderr)
}

fn render(dir: &Path, out: &Path) -> (Option<i32>, String) {
    let (code, _, stderr) = meshfleet(&[
        "render",
        "--config",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (code, stderr)
}

#[test]
fn a_suspended_policy_schedules_but_leaves_the_clusters_as_they_are() {
    let nginx = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada/deployment.yaml"),
    )
    .unwrap();
    let policy = |suspension: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: nginx-propagation}}\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: nginx}}]\n  placement: {{clusterAffinity: {{clusterNames: [member1, member2]}}}}\n{suspension}"
        )
    };
    let dir = config(&[("deployment.yaml", &nginx), ("policy.yaml", &policy(""))]);
    let out = tempfile::tempdir().unwrap();
    assert_eq!(render(dir.path(), out.path()).0, Some(0));
    let copy = |cluster: &str| {
        out.path()
            .join(format!("clusters/{cluster}/default/deployment-nginx.yaml"))
    };
    let before = std::fs::read_to_string(copy("member1")).unwrap();

    // Suspended everywhere, then the template changes and member2's copy is gone: nothing is
    // written, changed or removed.
    std::fs::remove_file(copy("member2")).unwrap();
    let suspended = policy("  suspension: {dispatching: true}\n");
    std::fs::write(dir.path().join("policy.yaml"), &suspended).unwrap();
    std::fs::write(
        dir.path().join("deployment.yaml"),
        nginx.replace("image: nginx", "image: nginx:1.27"),
    )
    .unwrap();
    let (code, bindings, stderr) = schedule(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        bindings[0]["spec"]["clusters"],
        serde_json::json!([{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 2}])
    );
    assert_eq!(
        bindings[0]["status"]["conditions"][1],
        serde_json::json!({
            "type": "Dispatching",
            "status": "False",
            "reason": "SuspendDispatching",
            "message": "dispatching to every cluster is suspended by PropagationPolicy default/nginx-propagation: copies already there stay as they are"
        })
    );
    let (code, stderr) = render(dir.path(), out.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "0 written, 0 unchanged, 0 removed, 3 left as they are: dispatching suspended"
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(copy("member1")).unwrap(), before);
    assert!(!copy("member2").exists());

    // Suspended on member1 only: member2 gets the new template, member1 keeps the old one.
    let on_member1 = policy("  suspension: {dispatchingOnClusters: {clusterNames: [member1]}}\n");
    std::fs::write(dir.path().join("policy.yaml"), &on_member1).unwrap();
    assert_eq!(render(dir.path(), out.path()).0, Some(0));
    assert_eq!(std::fs::read_to_string(copy("member1")).unwrap(), before);
    assert!(
        std::fs::read_to_string(copy("member2"))
            .unwrap()
            .contains("nginx:1.27")
    );
}

/// What Karmada 1.18.2's API server refuses stops a dry run, with the file, the document and
/// the field.
/// Karmada's `samples/guestbook` (v1.18.2): a custom resource, its policies and its CRD's.
const GUESTBOOK: &str = "
apiVersion: webapp.my.domain/v1
kind: Guestbook
metadata:
  name: guestbook-sample
spec:
  size: 2
  configMapName: test
  alias: Name
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: example-policy
spec:
  resourceSelectors:
    - apiVersion: webapp.my.domain/v1
      kind: Guestbook
  placement:
    clusterAffinity:
      clusterNames:
        - member1
---
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata:
  name: guestbook-sample
spec:
  resourceSelectors:
  - apiVersion: webapp.my.domain/v1
    kind: Guestbook
  overrideRules:
  - targetCluster:
      clusterNames:
      - member1
    overriders:
      plaintext:
      - path: /spec/size
        operator: replace
        value: 4
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: guestbooks.webapp.my.domain
spec:
  group: webapp.my.domain
  names: {kind: Guestbook, plural: guestbooks, singular: guestbook}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata:
  name: example-policy
spec:
  resourceSelectors:
    - apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      name: guestbooks.webapp.my.domain
  placement:
    clusterAffinity:
      clusterNames:
        - member1
";

#[test]
fn a_custom_resource_propagates_like_any_template_and_one_no_policy_selects_is_left_alone() {
    let unselected = "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: wordcount}\nspec: {parallelism: 2}\n";
    let dir = config(&[("guestbook.yaml", GUESTBOOK), ("flink.yaml", unselected)]);
    let (code, bindings, stderr) = schedule(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let mut bound: Vec<(String, serde_json::Value)> = bindings
        .iter()
        .map(|b| {
            (
                b["spec"]["resource"]["kind"].as_str().unwrap().to_owned(),
                b["spec"]["clusters"].clone(),
            )
        })
        .collect();
    bound.sort_by(|a, b| a.0.cmp(&b.0));
    let member1 = serde_json::json!([{"name": "member1"}]);
    assert_eq!(
        bound,
        [
            ("CustomResourceDefinition".to_owned(), member1.clone()),
            ("Guestbook".to_owned(), member1)
        ]
    );
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = render(dir.path(), out.path());
    assert_eq!(code, Some(0), "{stderr}");
    let copy = out
        .path()
        .join("clusters/member1/default/guestbook-guestbook-sample.yaml");
    let copy: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&copy).unwrap()).unwrap();
    assert_eq!(copy["spec"]["size"], serde_norway::Value::from(4));
}

#[test]
fn a_policy_karmada_would_refuse_fails_the_dry_run_with_its_path() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 1}\n";
    let cases = [
        (
            "placement:\n    clusterAffinities:\n    - affinityName: primary\n      clusterNamess: [member1]\n",
            "policy.yaml#0 spec.placement.clusterAffinities[0].clusterNamess: unknown field",
        ),
        (
            "placement:\n    clusterAffinity:\n    clusterNames: [member1]\n",
            "policy.yaml#0 spec.placement.clusterNames: unknown field",
        ),
        (
            "placement: {clusterAffinity: {clusterNames: [member1]}}\n  suspension: {dispatching: true, dispatchingOnClusters: {clusterNames: [member2]}}\n",
            "policy.yaml#0 spec.suspension: suspension dispatching cannot co-exist with dispatchingOnClusters.clusterNames",
        ),
    ];
    for (spec, expected) in cases {
        let policy = format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: web, namespace: shop}}\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: web}}]\n  {spec}"
        );
        let dir = config(&[("web.yaml", deployment), ("policy.yaml", &policy)]);
        let (code, bindings, stderr) = schedule(dir.path());
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
        assert_eq!(
            bindings,
            Vec::<serde_json::Value>::new(),
            "nothing claims web"
        );
        let out = tempfile::tempdir().unwrap();
        let (code, stderr) = render(dir.path(), out.path());
        assert_eq!(code, Some(2), "{stderr}");
        assert!(!out.path().join("clusters/member1/shop").exists());
    }
    let other_namespace = "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: web, namespace: shop}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, namespace: billing}]\n";
    let dir = config(&[("web.yaml", deployment), ("policy.yaml", other_namespace)]);
    let (code, _, stderr) = schedule(dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("policy.yaml#0 spec.resourceSelectors[0].namespace: \"billing\": namespace of resource selector must be the same as the namespace of the policy (\"shop\")"),
        "{stderr}"
    );
}

#[test]
fn karmada_fields_meshfleet_does_not_act_on_are_named_and_the_rest_is_scheduled() {
    let dir = config(&[(
        "web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: web}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]\n  preserveResourcesOnDeletion: true\n  placement:\n    clusterAffinity: {clusterNames: [member1]}\n    workloadAffinity: {antiAffinity: {groupByLabelKey: app.io/group}}\n",
    )]);
    let (code, bindings, stderr) = schedule(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("web.yaml#1 spec.preserveResourcesOnDeletion: not supported by meshfleet (deleting the template removes its copies); ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("web.yaml#1 spec.placement.workloadAffinity: not supported by meshfleet"),
        "{stderr}"
    );
    assert_eq!(
        bindings[0]["spec"]["clusters"],
        serde_json::json!([{"name": "member1", "replicas": 1}])
    );
}

#[test]
fn a_deeply_nested_document_is_refused_at_once() {
    let depth = 100_000;
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let dir = config(&[("deep.yaml", &deep)]);
    let started = Instant::now();
    let (code, _, stderr) = schedule(dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("deep.yaml#0: nested deeper than 128 levels at line 4; not parsed"),
        "{stderr}"
    );
}

#[test]
fn fqdn_endpoints_are_said_to_be_ignored() {
    let dir = config(&[(
        "slice.yaml",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ext\n  labels: {kubernetes.io/service-name: ext, multicluster.kubernetes.io/source-cluster: member1}\naddressType: FQDN\nendpoints: [{addresses: [db.example.com]}]\n",
    )]);
    let (code, _, stderr) = schedule(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("slice.yaml#0 addressType: FQDN endpoints are not served: meshfleet, as Istio, reads only IPv4 and IPv6 EndpointSlices; ignored"),
        "{stderr}"
    );
}

/// Waits until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    eventually(Duration::from_secs(20), || async {
        anyhow::ensure!(done(), "not yet: {what}");
        Ok(())
    })
    .await
    .unwrap();
}

/// Whether the file at `path` exists and contains `text`.
fn holds(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_keeps_a_refused_policys_last_version_and_holds_a_suspended_ones_copies() {
    let nginx = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada/deployment.yaml"),
    )
    .unwrap();
    let policy = |placement: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: nginx-propagation}}\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: nginx}}]\n  placement:\n{placement}"
        )
    };
    let on_member1 = policy("    clusterAffinity:\n      clusterNames: [member1]\n");
    let dir = config(&[("deployment.yaml", &nginx), ("policy.yaml", &on_member1)]);
    let state = tempfile::tempdir().unwrap();
    let (_controller, _, admin) =
        support::serve_with(dir.path(), &["--state-dir", state.path().to_str().unwrap()]).await;
    let copy = |cluster: &str| {
        state
            .path()
            .join(format!("clusters/{cluster}/default/deployment-nginx.yaml"))
    };
    until("member1's copy", || copy("member1").exists()).await;

    // `clusterNames` one level too shallow: without it the policy would select every cluster.
    // It is refused, and the version before stays in effect.
    let misindented = policy("    clusterAffinity:\n    clusterNames: [member1]\n");
    write_atomic(&dir.path().join("policy.yaml"), &misindented).unwrap();
    eventually(Duration::from_secs(20), || async {
        let body = support::admin(admin, "/debug/problems").await?;
        anyhow::ensure!(
            body.contains("spec.placement.clusterNames"),
            "not yet: {body}"
        );
        Ok(())
    })
    .await
    .unwrap();
    let text = nginx.replace("replicas: 2", "replicas: 3");
    write_atomic(&dir.path().join("deployment.yaml"), &text).unwrap();
    until("member1's copy scaled", || {
        holds(&copy("member1"), "replicas: 3")
    })
    .await;
    assert!(!copy("member2").exists() && !copy("member3").exists());

    // Suspended: the binding follows the template, member1's copy does not.
    let suspended = format!("{on_member1}  suspension: {{dispatching: true}}\n");
    write_atomic(&dir.path().join("policy.yaml"), &suspended).unwrap();
    eventually(Duration::from_secs(20), || async {
        let body = support::admin(admin, "/debug/bindings").await?;
        anyhow::ensure!(body.contains("SuspendDispatching"), "not yet: {body}");
        Ok(())
    })
    .await
    .unwrap();
    let text = nginx.replace("replicas: 2", "replicas: 4");
    write_atomic(&dir.path().join("deployment.yaml"), &text).unwrap();
    eventually(Duration::from_secs(20), || async {
        let body = support::admin(admin, "/debug/bindings").await?;
        anyhow::ensure!(body.contains("\"replicas\":4"), "not yet: {body}");
        Ok(())
    })
    .await
    .unwrap();
    assert!(holds(&copy("member1"), "replicas: 3"));

    // Lifted: the copy catches up.
    write_atomic(&dir.path().join("policy.yaml"), &on_member1).unwrap();
    until("member1's copy scaled after the suspension", || {
        holds(&copy("member1"), "replicas: 4")
    })
    .await;
}
