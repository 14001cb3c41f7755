//! Propagation as a user drives it: `meshfleet schedule` and `meshfleet render` on Karmada's own
//! nginx sample (`examples/karmada`, unchanged), then `meshfleet run --state-dir` keeping the
//! member clusters' manifests up to date as templates change, a cluster fails and a zone is
//! chosen. No kube-apiserver can run here: the directory sink is the member clusters.

use meshfleet_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use meshfleet_demo::envoy::eventually;
use meshfleet_demo::fleet::write_atomic;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada")
}

fn meshfleet(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(args)
        .output()
        .expect("running meshfleet");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "meshfleet {args:?}: {stderr}");
    (stdout, stderr)
}

fn yaml(path: &Path) -> serde_norway::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).expect("written YAML parses")
}

/// A copy of `examples/karmada` to change.
fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(examples()).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

#[test]
fn karmadas_nginx_sample_schedules_and_renders_as_karmada_does() {
    let config = examples();
    let (stdout, stderr) = meshfleet(&[
        "schedule",
        "--config",
        config.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(!stderr.contains("warning"), "{stderr}");
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "ResourceBinding");
    assert_eq!(items[0]["metadata"]["name"], "nginx-deployment");
    assert_eq!(
        items[0]["spec"]["clusters"],
        serde_json::json!([{"name": "member1", "replicas": 1}, {"name": "member2", "replicas": 1}])
    );
    assert_eq!(items[0]["status"]["conditions"][0]["status"], "True");

    let out = tempfile::tempdir().unwrap();
    meshfleet(&[
        "render",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let member1 = yaml(
        &out.path()
            .join("clusters/member1/default/deployment-nginx.yaml"),
    );
    let member2 = yaml(
        &out.path()
            .join("clusters/member2/default/deployment-nginx.yaml"),
    );
    assert!(!out.path().join("clusters/member3").exists());
    assert_eq!(member1["spec"]["replicas"], 1);
    assert_eq!(member1["metadata"]["namespace"], "default");
    // Karmada's sample OverridePolicy: annotations on member1, labels on member2.
    assert_eq!(member1["metadata"]["annotations"]["env"], "skoala-stage");
    assert_eq!(member2["metadata"]["labels"]["env"], "skoala-dev");
    assert_eq!(member2["metadata"]["labels"]["env-stat"], "skoala-stage");
    let labels = &member2["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["topology.kubernetes.io/region"], "us-east");
    assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1b");
    assert_eq!(labels["topology.istio.io/cluster"], "member2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_keeps_the_clusters_up_to_date_and_fails_over() {
    let config = config_copy();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (mut controller, _, admin) =
        support::serve_with(config.path(), &["--state-dir", &state_dir]).await;
    let member1 = state
        .path()
        .join("clusters/member1/default/deployment-nginx.yaml");
    let member2 = state
        .path()
        .join("clusters/member2/default/deployment-nginx.yaml");
    let replicas = |path: &Path| -> anyhow::Result<i64> {
        let value: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(path)?)?;
        value["spec"]["replicas"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("no replicas"))
    };
    let wait = |path: PathBuf, want: i64| async move {
        eventually(Duration::from_secs(20), || async {
            let got = replicas(&path)?;
            anyhow::ensure!(
                got == want,
                "{}: replicas {got}, want {want}",
                path.display()
            );
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    };
    wait(member1.clone(), 1).await;
    wait(member2.clone(), 1).await;

    // Scale the template: both copies follow.
    let deployment = config.path().join("deployment.yaml");
    let text = std::fs::read_to_string(&deployment)
        .unwrap()
        .replace("replicas: 2", "replicas: 6");
    write_atomic(&deployment, &text).unwrap();
    wait(member1.clone(), 3).await;
    wait(member2.clone(), 3).await;

    // member1 has been down for an hour: past the 300 s toleration, its replicas move to
    // member2, and its copy stays for the grace period (no new copy reports ready).
    let clusters = config.path().join("clusters.yaml");
    let text = std::fs::read_to_string(&clusters).unwrap();
    let down = text.replacen(
        "  - type: Ready\n    status: \"True\"",
        "  - type: Ready\n    status: \"False\"\n    lastTransitionTime: \"2020-01-01T00:00:00Z\"",
        1,
    );
    assert_ne!(down, text);
    write_atomic(&clusters, &down).unwrap();
    wait(member2.clone(), 6).await;
    assert_eq!(
        replicas(&member1).unwrap(),
        3,
        "the evicted copy is kept while the new one comes up"
    );
    let bindings = support::admin(admin, "/debug/bindings").await.unwrap();
    let bindings: serde_json::Value = serde_json::from_str(&bindings).unwrap();
    let spec = &bindings["items"][0]["spec"];
    assert_eq!(
        spec["clusters"],
        serde_json::json!([{"name": "member2", "replicas": 6}])
    );
    assert_eq!(spec["gracefulEvictionTasks"][0]["fromCluster"], "member1");

    // A restart schedules from the stored bindings (state/bindings/), not afresh: nothing
    // moves, the eviction goes on.
    assert!(
        state
            .path()
            .join("bindings/default/deployment-nginx.yaml")
            .exists()
    );
    controller.kill().await.unwrap();
    let (_controller, _, admin) =
        support::serve_with(config.path(), &["--state-dir", &state_dir]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = support::admin(admin, "/debug/bindings").await.unwrap();
    let restarted: serde_json::Value = serde_json::from_str(&restarted).unwrap();
    assert_eq!(restarted["items"][0]["spec"]["clusters"], spec["clusters"]);
    assert_eq!(
        restarted["items"][0]["spec"]["gracefulEvictionTasks"],
        spec["gracefulEvictionTasks"]
    );
    assert_eq!(
        (replicas(&member1).unwrap(), replicas(&member2).unwrap()),
        (3, 6)
    );

    // member2's copy reports ready: the old copy goes.
    let observed = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nginx\n  namespace: default\n  labels: {multicluster.kubernetes.io/source-cluster: member2}\nstatus: {readyReplicas: 6}\n";
    write_atomic(&config.path().join("observed.yaml"), observed).unwrap();
    eventually(Duration::from_secs(20), || async {
        anyhow::ensure!(!member1.exists(), "{} still there", member1.display());
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zones_instance_writes_only_its_zone_and_bad_input_costs_only_itself() {
    let config = config_copy();
    let broken = "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: broken}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]\n  overrideRules:\n  - targetCluster: {clusterNames: [member2]}\n    overriders:\n      plaintext: [{path: /spec/nothing/here, operator: replace, value: 1}]\n";
    write_atomic(&config.path().join("broken.yaml"), broken).unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (_controller, _, admin) = support::serve_with(
        config.path(),
        &["--state-dir", &state_dir, "--zone", "us-east-1a"],
    )
    .await;
    let member1 = state
        .path()
        .join("clusters/member1/default/deployment-nginx.yaml");
    eventually(Duration::from_secs(20), || async {
        anyhow::ensure!(member1.exists(), "not written yet");
        Ok(())
    })
    .await
    .unwrap();
    assert!(
        !state.path().join("clusters/member2").exists(),
        "member2 is in us-east-1b"
    );
    let problems = support::admin(admin, "/debug/problems").await.unwrap();
    assert!(
        problems.contains("not rendered for cluster member2")
            && problems.contains("OverridePolicy default/broken"),
        "{problems}"
    );
}

#[test]
fn a_dry_run_that_cannot_place_everything_says_so_and_exits_2() {
    let config = config_copy();
    // A second Deployment no cluster fits, an override that cannot apply to member2, and a
    // policy Karmada would refuse.
    let extra = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: lost, labels: {app: lost}}\nspec: {replicas: 1}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: lost}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: lost}]\n  placement: {clusterAffinity: {clusterNames: [member9]}}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: broken}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]\n  overrideRules:\n  - targetCluster: {clusterNames: [member2]}\n    overriders: {plaintext: [{path: /spec/nothing/here, operator: replace, value: 1}]}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: refused}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: other}]\n  placement: {spreadConstraints: [{spreadByField: cluster, minGroups: 3, maxGroups: 1}]}\n";
    std::fs::write(config.path().join("extra.yaml"), extra).unwrap();
    let out = tempfile::tempdir().unwrap();
    let config_arg = config.path().to_str().unwrap();
    for args in [
        vec!["schedule", "--config", config_arg],
        vec![
            "render",
            "--config",
            config_arg,
            "--out",
            out.path().to_str().unwrap(),
        ],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
            .args(&args)
            .output()
            .expect("running meshfleet");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Deployment default/lost: not scheduled by PropagationPolicy default/lost (NoClusterFit)"),
            "{stderr}"
        );
        assert!(
            stderr.contains("extra.yaml#3 spec.placement.spreadConstraints[0].maxGroups: maxGroups lower than minGroups is not allowed"),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "1 document(s) refused, 1 binding(s) not scheduled, 1 cop(ies) not rendered"
            ),
            "{stderr}"
        );
    }
    // Everything else is written: nginx on member1, and nothing half-done on member2.
    let clusters = out.path().join("clusters");
    assert!(
        clusters
            .join("member1/default/deployment-nginx.yaml")
            .exists()
    );
    assert!(
        !clusters
            .join("member2/default/deployment-nginx.yaml")
            .exists()
    );
}
