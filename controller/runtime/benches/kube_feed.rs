//! The kube source's costs, as a bench binary that prints its figures:
//! `cargo bench -p meshfleet-runtime --bench kube_feed [-- CLUSTERS]`.
//!
//! - **Watch events into the index**: CLUSTERS members (100 by default), each with 100
//!   exported Services and one EndpointSlice of 10 endpoints per Service, listed (as a watch's
//!   first list arrives) and then changed slice by slice (as MODIFIED events arrive, in the
//!   batches the watcher hands over), through the same feed `run --kube` uses: served JSON
//!   labelled with its cluster, read into typed objects, put into the index under the
//!   cluster's origin. Events per second, on one thread; the HTTP transport is not in it.
//! - **Memory per watched cluster**: resident memory after every member's objects are in,
//!   less before, divided by CLUSTERS.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use meshfleet_index::{Index, Origin};
use meshfleet_runtime::kube::feed::{Change, Health, IndexFeed, Refused, Target};
use meshfleet_runtime::kube::objects::{ENDPOINT_SLICES, SERVICES};
use serde_json::{Value, json};
use tokio::sync::watch;

const SERVICES_PER_CLUSTER: usize = 100;
const ENDPOINTS_PER_SLICE: usize = 10;
const BATCH: usize = 1024;

fn service(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": "demo", "resourceVersion": "1",
            "annotations": {"meshfleet.io/global": "true"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn slice(cluster: usize, i: usize, generation: usize) -> Value {
    let endpoints: Vec<Value> = (0..ENDPOINTS_PER_SLICE)
        .map(|e| {
            json!({"addresses": [format!("10.{}.{}.{}", cluster % 250, i % 250, e + 1)],
                "conditions": {"ready": !(e + generation).is_multiple_of(7)},
                "nodeName": format!("node-{e}"), "zone": "zone-a"})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "demo",
            "resourceVersion": generation.to_string(),
            "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints})
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let clusters: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let (changed, _rx) = watch::channel(0);
    let target = Target {
        index: Arc::new(Mutex::new(Index::default())),
        changed: Arc::new(changed),
    };
    let health = Health::default();
    let mut feeds: Vec<(IndexFeed, IndexFeed)> = (0..clusters)
        .map(|c| {
            let name = format!("member-{c}");
            let refused = Arc::new(Refused::default());
            let feed = |resource| {
                IndexFeed::new(
                    target.clone(),
                    Origin::cluster(&name),
                    resource,
                    Some(name.clone()),
                    refused.clone(),
                )
            };
            (feed(SERVICES), feed(ENDPOINT_SLICES))
        })
        .collect();

    let before = rss_mib();
    let started = Instant::now();
    let mut events = 0usize;
    for (c, (services, slices)) in feeds.iter_mut().enumerate() {
        let listed: Vec<Value> = (0..SERVICES_PER_CLUSTER).map(service).collect();
        services.take(vec![Change::Relist(listed)], &health);
        let listed: Vec<Value> = (0..SERVICES_PER_CLUSTER).map(|i| slice(c, i, 1)).collect();
        slices.take(vec![Change::Relist(listed)], &health);
        events += 2 * SERVICES_PER_CLUSTER;
    }
    let listed_in = started.elapsed();
    let after = rss_mib();
    println!(
        "list: {clusters} clusters, {events} objects in {:.2} s: {:.0} objects/s",
        listed_in.as_secs_f64(),
        events as f64 / listed_in.as_secs_f64()
    );
    println!(
        "memory: {:.1} MiB for {clusters} clusters' objects: {:.2} MiB per watched cluster ({} Services, {} EndpointSlices of {} endpoints each)",
        after - before,
        (after - before) / clusters as f64,
        SERVICES_PER_CLUSTER,
        SERVICES_PER_CLUSTER,
        ENDPOINTS_PER_SLICE
    );

    // MODIFIED events, round-robin over the clusters, in watcher-sized batches.
    let rounds = 3;
    let mut modified = 0usize;
    let started = Instant::now();
    for generation in 2..2 + rounds {
        for (c, (_, slices)) in feeds.iter_mut().enumerate() {
            let batch: Vec<Change> = (0..SERVICES_PER_CLUSTER)
                .map(|i| Change::Apply(slice(c, i, generation)))
                .collect();
            for chunk in batch.chunks(BATCH) {
                let chunk: Vec<Change> = chunk
                    .iter()
                    .map(|c| match c {
                        Change::Apply(v) => Change::Apply(v.clone()),
                        _ => unreachable!(),
                    })
                    .collect();
                modified += chunk.len();
                slices.take(chunk, &health);
            }
        }
    }
    let took = started.elapsed();
    println!(
        "watch: {modified} MODIFIED EndpointSlice events over {clusters} clusters in {:.2} s: {:.0} events/s into the index",
        took.as_secs_f64(),
        modified as f64 / took.as_secs_f64()
    );
    let index = target.index.lock().unwrap();
    assert_eq!(
        index.endpoint_slices().count(),
        clusters * SERVICES_PER_CLUSTER
    );
}
