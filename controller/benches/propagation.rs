//! The propagation benchmark: prints figures, asserts nothing.
//!
//! 10,000 Deployments in 100 namespaces over 100 member clusters (4 regions, 20 zones, 2
//! providers, each with a resource summary), claimed by four ClusterPropagationPolicies (one per
//! strategy: Duplicated over a region; Divided by static weights with a zone spread; Divided by
//! available replicas; Aggregated), and one ClusterOverridePolicy rewriting every image's
//! registry. It measures
//! - scheduling alone: bindings per second and the time per binding (p50 / p99 / max);
//! - the first full plan (claim, schedule, render) and the first full write to a directory sink;
//! - resident memory after that;
//! - one template change (the file re-read, the plan redone, the sink applied) to the new file
//!   written: p50 / p99 / max over repeated changes.
//!
//! `cargo bench -p meshfleet --bench propagation` (10,000 workloads) or
//! `cargo bench -p meshfleet --bench propagation -- 50000`.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use support::{memory, ms, pct, us};

use futures::executor::block_on;
use meshfleet_api::yaml::parse_file;
use meshfleet_index::{Index, Origin};
use meshfleet_propagation::claim::claim;
use meshfleet_propagation::plan::Planner;
use meshfleet_propagation::scheduler::{self, Request};
use meshfleet_propagation::templates::templates;
use meshfleet_propagation::workload::workload;
use meshfleet_runtime::apply::apply;
use meshfleet_runtime::sink::DirSink;

const CLUSTERS: usize = 100;
const NAMESPACES: usize = 100;
const CHANGES: usize = 200;

fn main() -> anyhow::Result<()> {
    let workloads: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    println!("meshfleet propagation bench: {workloads} workloads, {CLUSTERS} clusters, 2 cores");
    let mut index = Index::default();
    let started = Instant::now();
    index.reset(
        &Origin::file("fleet.yaml"),
        parse_file("fleet.yaml", &fleet()),
    );
    let mut files = Vec::new();
    for ns in 0..NAMESPACES {
        let name = format!("ns{ns}.yaml");
        let text = workloads_file(ns, workloads / NAMESPACES, 0);
        index.reset(&Origin::file(&name), parse_file(&name, &text));
        files.push(name);
    }
    let problems = index.problems();
    anyhow::ensure!(problems.is_empty(), "fixture problems: {problems:?}");
    println!("load: {:.0} ms", ms(started.elapsed()));

    schedule_only(&index);

    let now = SystemTime::now();
    let mut planner = Planner::default();
    let started = Instant::now();
    let plan = planner.plan(&index, now);
    let planned = started.elapsed();
    let copies: usize = plan.manifests.values().map(|m| m.len()).sum();
    let unscheduled = plan
        .bindings
        .values()
        .filter(|b| b.status.conditions.iter().any(|c| c.status != "True"))
        .count();
    println!(
        "full plan: {} bindings, {copies} manifests, {unscheduled} unscheduled, {} problems in {:.0} ms ({:.0} bindings/s)",
        plan.bindings.len(),
        plan.problems.len(),
        ms(planned),
        plan.bindings.len() as f64 / planned.as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let mut sink = DirSink::new(dir.path());
    let clusters: Vec<_> = index.clusters().cloned().collect();
    let started = Instant::now();
    let applied = block_on(apply(&mut sink, plan.desired(), &clusters, None, None))?;
    println!(
        "full write: {} files in {:.0} ms",
        applied.written,
        ms(started.elapsed())
    );
    println!("memory after plan and write: {}", memory());
    // Measure changes in steady state, not behind the write-back of the full write.
    std::process::Command::new("sync").status()?;

    let mut latencies = Vec::new();
    let (mut parsing, mut planning, mut applying) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for change in 1..=CHANGES {
        let ns = change % NAMESPACES;
        let text = workloads_file(ns, workloads / NAMESPACES, change);
        let started = Instant::now();
        let name = &files[ns];
        index.reset(&Origin::file(name), parse_file(name, &text));
        let parsed = Instant::now();
        let plan = planner.plan(&index, now);
        let planned = Instant::now();
        let only = plan.changed.as_ref();
        let applied = block_on(apply(&mut sink, plan.desired(), &clusters, None, only))?;
        let done = Instant::now();
        latencies.push(done - started);
        parsing += parsed - started;
        planning += planned - parsed;
        applying += done - planned;
        anyhow::ensure!(applied.written >= 1, "change {change} wrote nothing");
    }
    let per = |d: Duration| ms(d) / CHANGES as f64;
    println!(
        "one change, mean: re-read the file {:.1} ms, plan {:.1} ms, write {:.1} ms",
        per(parsing),
        per(planning),
        per(applying)
    );
    latencies.sort();
    println!(
        "one template change to file written: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({CHANGES} changes)",
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 99.0)),
        ms(latencies[latencies.len() - 1])
    );
    println!("memory at the end: {}", memory());
    Ok(())
}

/// The scheduler alone, binding by binding, as the plan calls it.
fn schedule_only(index: &Index) {
    let policies: Vec<_> = index.propagation_policies().collect();
    let clusters: Vec<_> = index.clusters().cloned().collect();
    let evicting = BTreeSet::new();
    let mut times = Vec::new();
    let started = Instant::now();
    for template in templates(index) {
        let Some(claimed) = claim(policies.iter().copied(), &template.id()) else {
            continue;
        };
        let json = template.json().expect("fixture is JSON");
        let workload = workload(template.kind, &json).expect("fixture workload");
        let one = Instant::now();
        let request = Request {
            placement: &claimed.policy.spec.placement,
            replicas: workload.replicas,
            requirements: &workload.requirements,
            clusters: &clusters,
            previous: &[],
            evicting: &evicting,
            affinity: None,
            fresh: false,
        };
        let decision = scheduler::schedule(&request);
        times.push(one.elapsed());
        std::hint::black_box(decision.ok());
    }
    let total: Duration = times.iter().sum();
    let wall = started.elapsed();
    times.sort();
    println!(
        "scheduling: {} bindings, {:.0} bindings/s (scheduler time {:.0} ms; with claim and parse {:.0} ms); per binding p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        times.len(),
        times.len() as f64 / total.as_secs_f64(),
        ms(total),
        ms(wall),
        us(pct(&times, 50.0)),
        us(pct(&times, 99.0)),
        us(times[times.len() - 1])
    );
}

/// 100 clusters: cluster `c` in region `r{c%4}`, zone `r{c%4}-z{c%5}`, providers by region.
fn fleet() -> String {
    let mut out = String::new();
    for c in 0..CLUSTERS {
        let (region, zone) = (c % 4, c % 5);
        let provider = if region < 2 { "aws" } else { "gcp" };
        let _ = write!(
            out,
            "---\napiVersion: cluster.karmada.io/v1alpha1\nkind: Cluster\nmetadata: {{name: c{c:03}, labels: {{tier: t{}}}}}\nspec: {{region: r{region}, zone: r{region}-z{zone}, provider: {provider}}}\nstatus:\n  conditions: [{{type: Ready, status: 'True'}}]\n  resourceSummary:\n    allocatable: {{cpu: '64', memory: 256Gi, pods: '110'}}\n    allocated: {{cpu: '{}', memory: 64Gi, pods: '30'}}\n",
            c % 3,
            8 + c % 20
        );
    }
    out.push_str(POLICIES);
    out
}

const POLICIES: &str = "
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: duplicated}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, labelSelector: {matchLabels: {strategy: duplicated}}}]
  placement:
    clusterAffinity: {fieldSelector: {matchExpressions: [{key: region, operator: In, values: [r1]}]}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: static}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, labelSelector: {matchLabels: {strategy: static}}}]
  placement:
    clusterAffinity: {labelSelector: {matchLabels: {tier: t0}}}
    spreadConstraints:
    - {spreadByField: zone, minGroups: 2, maxGroups: 3}
    - {spreadByField: cluster, minGroups: 2, maxGroups: 6}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {fieldSelector: {matchExpressions: [{key: provider, operator: In, values: [aws]}]}}, weight: 2}
        - {targetCluster: {fieldSelector: {matchExpressions: [{key: provider, operator: In, values: [gcp]}]}}, weight: 1}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: dynamic}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, labelSelector: {matchLabels: {strategy: dynamic}}}]
  placement:
    spreadConstraints:
    - {spreadByField: region, minGroups: 2, maxGroups: 2}
    - {spreadByField: cluster, minGroups: 3, maxGroups: 10}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: aggregated}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, labelSelector: {matchLabels: {strategy: aggregated}}}]
  placement:
    clusterAffinity: {fieldSelector: {matchExpressions: [{key: provider, operator: In, values: [gcp]}]}}
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}
---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterOverridePolicy
metadata: {name: mirror}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
  overrideRules:
  - targetCluster: {fieldSelector: {matchExpressions: [{key: provider, operator: In, values: [gcp]}]}}
    overriders:
      imageOverrider: [{component: Registry, operator: replace, value: mirror.gcp.example}]
";

const STRATEGIES: [&str; 4] = ["duplicated", "static", "dynamic", "aggregated"];

/// Namespace `ns`'s Deployments; `version` changes the first one's image tag and replicas.
fn workloads_file(ns: usize, count: usize, version: usize) -> String {
    let mut out = String::new();
    for w in 0..count {
        let strategy = STRATEGIES[(ns + w) % 4];
        let (tag, replicas) = if w == 0 {
            (version, 4 + version % 5)
        } else {
            (0, 2 + w % 7)
        };
        let _ = write!(
            out,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app{w}, namespace: ns{ns}, labels: {{strategy: {strategy}}}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: app{w}}}}}\n  template:\n    metadata: {{labels: {{app: app{w}}}}}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/team/app{w}:1.{tag}\n        resources: {{requests: {{cpu: 250m, memory: 512Mi}}}}\n"
        );
    }
    out
}
