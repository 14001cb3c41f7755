//! Plans applied through the directory sink: what the planner decides is what lands in the
//! member clusters' directories, incrementally and afresh alike.

use std::collections::BTreeMap;

use meshfleet_api::yaml::parse_file;
use meshfleet_index::{Index, Origin};
use meshfleet_propagation::fixtures::{FLEET, NGINX, index, now};
use meshfleet_propagation::plan::{Bindings, Plan, Planner, plan};

use futures::executor::block_on;

use crate::apply::apply;
use crate::sink::DirSink;

#[test]
fn deleting_a_policy_leaves_its_copies_and_deleting_the_template_removes_them() {
    let (deployment, policy) = NGINX.split_once("---").unwrap();
    let mut index = index(&[
        ("fleet.yaml", FLEET),
        ("deployment.yaml", deployment),
        ("policy.yaml", policy),
        (
            "other.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: never-propagated}\n",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DirSink::new(dir.path());
    let clusters: Vec<_> = index.clusters().cloned().collect();
    let mut planner = Planner::default();
    let full = |planner: &mut Planner, index: &Index, sink: &mut DirSink| {
        let plan = planner.plan(index, now());
        block_on(apply(sink, plan.desired(), &clusters, None, None)).unwrap();
        tree(dir.path()).into_keys().collect::<Vec<_>>()
    };
    let copies = [
        "clusters/member1/default/deployment-nginx.yaml",
        "clusters/member2/default/deployment-nginx.yaml",
    ];
    assert_eq!(full(&mut planner, &index, &mut sink), copies);

    // As in Karmada: the policy goes, the copies stay (also for a sink started afresh).
    index.forget(&Origin::file("policy.yaml"));
    assert_eq!(full(&mut planner, &index, &mut sink), copies);
    let mut restarted = DirSink::new(dir.path());
    assert_eq!(
        full(&mut Planner::default(), &index, &mut restarted),
        copies
    );

    // The template goes: so do its copies.
    index.forget(&Origin::file("deployment.yaml"));
    assert_eq!(full(&mut planner, &index, &mut sink), Vec::<String>::new());
}

/// Every file below `root`, with its text.
fn tree(root: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// What a plan holds, comparable: bindings, manifests by hash, kept keys.
type Summary = (Bindings, Vec<(String, String, u64)>, Vec<(String, String)>);

fn summary(plan: &Plan) -> Summary {
    let manifests = plan
        .manifests
        .iter()
        .flat_map(|(c, m)| {
            m.iter()
                .map(move |(k, v)| (c.clone(), k.to_string(), v.hash))
        })
        .collect();
    let keep = plan
        .keep
        .iter()
        .flat_map(|(c, k)| k.iter().map(move |k| (c.clone(), k.to_string())))
        .collect();
    (plan.bindings.clone(), manifests, keep)
}

#[test]
fn the_incremental_planner_agrees_with_a_fresh_plan_after_every_change() {
    let deps = "
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: web, image: web:1, envFrom: [{configMapRef: {name: web-config}}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: shop}
spec: {replicas: 2}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  propagateDeps: true
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
  placement:
    clusterAffinity: {clusterNames: [member1, member3]}
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Weighted}
";
    let steps: [(&str, Option<String>); 7] = [
        (
            "deps.yaml",
            Some(deps.replace("replicas: 3", "replicas: 5")),
        ),
        (
            "deps.yaml",
            Some(deps.replace("data: {a: b}", "data: {a: c}")),
        ),
        (
            "deps.yaml",
            Some(deps.replace("image: web:1", "image: web:2")),
        ),
        (
            "deps.yaml",
            Some(deps.replace(
                "{name: other, namespace: shop}",
                "{name: renamed, namespace: shop}",
            )),
        ),
        (
            "more.yaml",
            Some(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lonely, namespace: shop}\n"
                    .to_owned(),
            ),
        ),
        (
            "deps.yaml",
            Some(deps.replace(
                "clusterNames: [member1, member3]",
                "clusterNames: [member1]",
            )),
        ),
        ("deps.yaml", None),
    ];
    let mut index = index(&[("fleet.yaml", FLEET), ("deps.yaml", deps)]);
    let mut planner = Planner::default();
    let first = summary(planner.plan(&index, now()));
    assert_eq!(first, summary(&plan(&index, &Bindings::new(), now())));
    // A sink applied with what each plan changed holds what a full apply would.
    let incremental_dir = tempfile::tempdir().unwrap();
    let mut sink = DirSink::new(incremental_dir.path());
    let clusters: Vec<_> = index.clusters().cloned().collect();
    let current = planner.current();
    block_on(apply(&mut sink, current.desired(), &clusters, None, None)).unwrap();
    for (file, text) in steps {
        let before = planner.current().bindings.clone();
        match &text {
            Some(text) => index.reset(&Origin::file(file), parse_file(file, text)),
            None => index.forget(&Origin::file(file)),
        };
        let incremental = summary(planner.plan(&index, now()));
        let changed = planner.current().changed.clone();
        assert_eq!(
            incremental,
            summary(&plan(&index, &before, now())),
            "after {file}"
        );
        // Changing the policy or removing it plans everything again; nothing else does.
        let policy_changed = text.as_deref().is_none_or(|t| t.contains("[member1]"));
        assert_eq!(changed.is_none(), policy_changed, "after {file}");

        let current = planner.current();
        let only = current.changed.as_ref();
        block_on(apply(&mut sink, current.desired(), &clusters, None, only)).unwrap();
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = plan(&index, &before, now());
        let mut fresh_sink = DirSink::new(fresh_dir.path());
        block_on(apply(
            &mut fresh_sink,
            fresh.desired(),
            &clusters,
            None,
            None,
        ))
        .unwrap();
        assert_eq!(
            tree(incremental_dir.path()),
            tree(fresh_dir.path()),
            "after {file}"
        );
    }
    assert!(planner.current().manifests.values().all(|m| m.is_empty()));
}
