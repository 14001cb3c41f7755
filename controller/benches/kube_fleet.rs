//! `meshfleet run --kube` at fleet size: prints figures, asserts nothing.
//!
//! CLUSTERS member clusters (100 by default) and a gateway cluster, each a Kubernetes API
//! emulator (PyPI `kmock`, all in one Python process; `make setup` installs it). Each member
//! holds a Node, SERVICES exported Services (20) and one EndpointSlice of 10 endpoints each.
//! The `meshfleet run --kube` binary runs as a process of its own and is measured as a user
//! would:
//! - **registration**: from the CLUSTERS remote secrets being written to the gateway until
//!   the catalog holds every member's endpoints (`meshfleet_catalog_endpoints`), with every
//!   member watched (5 watches each: Services, EndpointSlices, ServiceExports,
//!   DestinationRules, Nodes);
//! - **memory per watched cluster**: resident memory with every member watched, less before
//!   any was registered, over CLUSTERS (the bench's and the emulators' memory not counted);
//! - **applies per second**: a template ConfigMap times APPLIES (100) propagated to every
//!   member, from the policy being written until every copy is in the members. The emulator
//!   (one Python thread for every cluster) bounds this figure, not meshfleet.
//!
//! `cargo bench -p meshfleet --bench kube_fleet [-- CLUSTERS]`

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::ListParams;
use meshfleet_demo::envoy::{eventually, free_port};
use meshfleet_runtime::kube::objects::{
    ENDPOINT_SLICES, NODES, PROPAGATION_POLICIES, Resource, SECRETS, SERVICES,
};
use meshfleet_testkit::kube::{Emulators, create};
use serde_json::{Value, json};

const SERVICES_PER_CLUSTER: usize = 20;
const ENDPOINTS_PER_SLICE: usize = 10;
const APPLIES: usize = 100;
const NS: &str = "meshfleet-system";
const CONFIG_MAPS: Resource = Resource::new("", "v1", "ConfigMap", "configmaps");

/// CPU time (user and system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

async fn populate(client: kube::Client, cluster: usize) {
    create(
        &client,
        &NODES,
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/region": "region-a",
            "topology.kubernetes.io/zone": format!("zone-{}", cluster % 3)}},
        "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
    for i in 0..SERVICES_PER_CLUSTER {
        create(
            &client,
            &SERVICES,
            json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc-{i}"), "namespace": "demo",
                "annotations": {"meshfleet.io/global": "true"}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        )
        .await;
        let endpoints: Vec<Value> = (0..ENDPOINTS_PER_SLICE)
            .map(|e| {
                json!({"addresses": [format!("10.{}.{}.{}", cluster % 250, i, e + 1)],
                "conditions": {"ready": true}, "nodeName": "node-1"})
            })
            .collect();
        create(
            &client,
            &ENDPOINT_SLICES,
            json!({"apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": format!("svc-{i}-abc"), "namespace": "demo",
                "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints}),
        )
        .await;
    }
}

async fn metric(admin: std::net::SocketAddr, name: &str) -> f64 {
    let body = meshfleet_testkit::admin(admin, "/metrics")
        .await
        .unwrap_or_default();
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let clusters: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(clusters));
}

async fn run(clusters: usize) {
    let names: Vec<String> = (0..clusters).map(|c| format!("member-{c}")).collect();
    let mut all: Vec<&str> = vec!["gateway"];
    all.extend(names.iter().map(String::as_str));
    let emulators = Emulators::start(&all);
    let gateway = emulators.client("gateway").await;
    let started = Instant::now();
    let mut members = Vec::new();
    for name in &names {
        members.push(emulators.client(name).await);
    }
    futures::stream::iter(members.iter().cloned().enumerate())
        .for_each_concurrent(16, |(c, client)| populate(client, c))
        .await;
    println!(
        "{clusters} members populated ({} objects) in {:.1} s",
        clusters * (1 + 2 * SERVICES_PER_CLUSTER),
        started.elapsed().as_secs_f64()
    );

    let kubeconfig = emulators.kubeconfig_file("gateway");
    let (xds, admin, dns) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args([
            "run",
            "--kube",
            "--kubeconfig",
            &kubeconfig,
            "--kube-namespace",
            NS,
        ])
        .args(["--xds-addr", &format!("127.0.0.1:{xds}")])
        .args(["--admin-addr", &admin_addr.to_string()])
        .args(["--dns-addr", &format!("127.0.0.1:{dns}")])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("starting meshfleet");
    let pid = controller.id().unwrap();
    eventually(Duration::from_secs(60), || {
        meshfleet_testkit::admin(admin_addr, "/readyz")
    })
    .await
    .expect("ready");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid);

    // Register every member at once, as remote secrets.
    let registered = Instant::now();
    let cpu_before = cpu_seconds(pid);
    for name in &names {
        create(
            &gateway,
            &SECRETS,
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("istio-remote-secret-{name}"), "namespace": NS,
                "labels": {"istio/multiCluster": "true"}},
            "stringData": {name.clone(): emulators.kubeconfig(name)}}),
        )
        .await;
    }
    let expected = (clusters * SERVICES_PER_CLUSTER * ENDPOINTS_PER_SLICE) as f64;
    eventually(Duration::from_secs(600), || async {
        let endpoints = metric(admin_addr, "meshfleet_catalog_endpoints").await;
        anyhow::ensure!(endpoints >= expected, "{endpoints} of {expected} endpoints");
        Ok(())
    })
    .await
    .expect("every member's endpoints");
    let took = registered.elapsed();
    let registration_cpu = cpu_seconds(pid) - cpu_before;
    let objects = clusters * (1 + 2 * SERVICES_PER_CLUSTER);
    println!(
        "registration: {clusters} members, {objects} objects ({expected} endpoints) watched into the catalog in {:.2} s ({:.0} objects/s)",
        took.as_secs_f64(),
        objects as f64 / took.as_secs_f64()
    );
    println!(
        "registration: meshfleet's CPU {registration_cpu:.2} s for it ({:.0} µs per object)",
        registration_cpu * 1e6 / objects as f64
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    println!(
        "memory: {:.1} MiB before registration, {:.1} MiB with {clusters} members watched: {:.2} MiB per watched cluster",
        before / 1024.0,
        after / 1024.0,
        (after - before) / 1024.0 / clusters as f64
    );

    // Applies: APPLIES ConfigMaps to every member.
    for i in 0..APPLIES {
        create(
            &gateway,
            &CONFIG_MAPS,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("settings-{i}"), "namespace": "default",
                "labels": {"bench": "applies"}},
            "data": {"index": i.to_string()}}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let applying = Instant::now();
    let cpu_before = cpu_seconds(pid);
    create(
        &gateway,
        &PROPAGATION_POLICIES,
        json!({"apiVersion": "meshfleet.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "settings", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap",
                "labelSelector": {"matchLabels": {"bench": "applies"}}}],
            "placement": {"clusterAffinity": {"clusterNames": names}}}}),
    )
    .await;
    let wanted = APPLIES * clusters;
    // Counted every second: the emulators serve the counting lists too.
    eventually(Duration::from_secs(1200), || async {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let mut copies = 0;
        for member in &members {
            let api = CONFIG_MAPS.api(member, "default");
            copies += api
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|c| {
                    c.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("settings-"))
                })
                .count();
        }
        anyhow::ensure!(copies >= wanted, "{copies} of {wanted} copies");
        Ok(())
    })
    .await
    .expect("every copy applied");
    let took = applying.elapsed();
    let applies_cpu = cpu_seconds(pid) - cpu_before;
    println!(
        "applies: meshfleet's CPU {applies_cpu:.2} s for them ({:.0} µs per apply: {:.0} applies/s per core, the API servers aside)",
        applies_cpu * 1e6 / wanted as f64,
        wanted as f64 / applies_cpu.max(1e-9)
    );
    println!(
        "applies: {wanted} copies ({APPLIES} ConfigMaps to {clusters} members) in {:.1} s: {:.0} applies/s (against the emulator)",
        took.as_secs_f64(),
        wanted as f64 / took.as_secs_f64()
    );
    let _ = controller.kill().await;
}
