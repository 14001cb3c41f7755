//! The fleet benchmark: prints figures, asserts nothing.
//!
//! For each size (10k, 100k, 1M endpoints over 100 clusters, 10,000 global services, 20 client
//! localities) it measures
//! - cold start: load the config directory, build the catalog, first full snapshot for one
//!   client locality, then for all 20;
//! - resident memory after that;
//! - with 1,000 ADS streams open (each subscribed to 20 ClusterLoadAssignments, ACKing every
//!   response): one endpoint change to the updated ClusterLoadAssignment received on every
//!   stream, p50 / p99 / max over repeated changes.
//!
//! `cargo bench -p meshfleet --bench fleet` (all sizes) or
//! `cargo bench -p meshfleet --bench fleet -- 1000000` (one size).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{memory, ms, pct};

use futures::StreamExt;
use meshfleet_catalog::Catalog;
use meshfleet_index::Index;
use meshfleet_model::{ClientKey, Locality, Mesh};
use meshfleet_runtime::source::ConfigDir;
use meshfleet_xds::cache::SnapshotCache;
use meshfleet_xds::pb::envoy::config::core::v3::{Locality as PbLocality, Node};
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshfleet_xds::resource::ENDPOINT;
use meshfleet_xds::server::AdsServer;
use tokio::sync::mpsc;

const CLUSTERS: usize = 100;
const SERVICES: usize = 10_000;
const LOCALITIES: usize = 20;
const STREAMS: usize = 1_000;
const SUBSCRIBED: usize = 20;
const CHANGES: usize = 30;

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = match std::env::args().skip(1).find_map(|a| a.parse().ok()) {
        Some(size) => vec![size],
        None => vec![10_000, 100_000, 1_000_000],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "meshfleet fleet bench: {CLUSTERS} clusters, {SERVICES} services, {LOCALITIES} localities, {STREAMS} ADS streams"
    );
    for endpoints in sizes {
        rt.block_on(bench(endpoints))?;
    }
    Ok(())
}

/// Cluster `c` lives in locality `c % 20`: regions r0..r3, five zones each.
fn locality(c: usize) -> Locality {
    let l = c % LOCALITIES;
    Locality::new(
        &format!("r{}", l / 5),
        &format!("r{}-z{}", l / 5, l % 5),
        "",
    )
}

/// Writes the fleet: 100 Clusters, 10k Service templates, and for each service EndpointSlices in
/// `per_service_clusters` clusters so that the total is `endpoints`.
fn write_fleet(dir: &Path, endpoints: usize) -> anyhow::Result<()> {
    let per_service = endpoints / SERVICES;
    let spread = per_service.clamp(1, 10);
    let per_slice = per_service / spread;
    let mut out = String::new();
    for c in 0..CLUSTERS {
        let l = locality(c);
        let _ = write!(
            out,
            "---\napiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {{name: c{c}}}\nspec: {{region: {}, zone: {}}}\n",
            l.region, l.zone
        );
    }
    std::fs::write(dir.join("clusters.yaml"), &out)?;
    for chunk in 0..10 {
        out.clear();
        for s in (chunk * SERVICES / 10)..((chunk + 1) * SERVICES / 10) {
            let _ = write!(
                out,
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{s}, namespace: bench, annotations: {{meshfleet.io/global: \"true\"}}}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n"
            );
            for k in 0..spread {
                let c = (s * 7 + k * 10) % CLUSTERS;
                let _ = write!(
                    out,
                    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{s}-c{c}, namespace: bench, labels: {{kubernetes.io/service-name: s{s}, multicluster.kubernetes.io/source-cluster: c{c}}}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints:\n"
                );
                for e in 0..per_slice {
                    let _ = writeln!(
                        out,
                        "- addresses: [\"10.{}.{}.{}\"]",
                        c,
                        (s * per_slice + e) / 250 % 250,
                        e % 250 + 1
                    );
                }
            }
        }
        std::fs::write(dir.join(format!("services-{chunk}.yaml")), &out)?;
    }
    Ok(())
}

fn key(l: usize) -> ClientKey {
    ClientKey {
        locality: locality(l),
        listener_port: 15001,
        ..ClientKey::default()
    }
}

async fn bench(endpoints: usize) -> anyhow::Result<()> {
    println!("\n== {endpoints} endpoints");
    let dir = tempfile::tempdir()?;
    write_fleet(dir.path(), endpoints)?;

    let start = Instant::now();
    let mut index = Index::default();
    ConfigDir::new(dir.path().to_owned()).load(&mut index);
    let loaded = start.elapsed();
    let catalog = Catalog::build(&index);
    let built = start.elapsed();
    let mesh = catalog.mesh();
    let served: usize = mesh
        .services
        .values()
        .flat_map(|s| &s.ports)
        .map(|p| p.endpoints.len())
        .sum();
    anyhow::ensure!(
        served == endpoints,
        "catalog has {served} endpoints, expected {endpoints}"
    );
    let cache = SnapshotCache::default();
    cache.set_mesh(mesh.clone());
    let first = cache.watch(&key(0));
    let snapshot_one = start.elapsed();
    let watches: Vec<_> = (1..LOCALITIES).map(|l| cache.watch(&key(l))).collect();
    let snapshot_all = start.elapsed();
    println!(
        "cold start: load {:.2} s, catalog {:.2} s, first snapshot {:.2} s (total {:.2} s); all {LOCALITIES} localities {:.2} s",
        loaded.as_secs_f64(),
        (built - loaded).as_secs_f64(),
        (snapshot_one - built).as_secs_f64(),
        snapshot_one.as_secs_f64(),
        snapshot_all.as_secs_f64()
    );
    // `meshfleet run` keeps the index and the catalog it serves: so does the bench.
    println!("resident memory after cold start: {}", memory());

    streams(&cache, mesh).await?;
    println!("resident memory with {STREAMS} streams: {}", memory());
    drop((first, watches, catalog, index));
    Ok(())
}

/// Opens the streams, then changes one endpoint of one service `CHANGES` times.
async fn streams(cache: &SnapshotCache, mut mesh: Mesh) -> anyhow::Result<()> {
    let server = AdsServer::new(cache.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server.into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let hot = mesh.services.keys().next().cloned().expect("a service");
    let hot_cluster = format!("outbound|80||{hot}");
    let names: Vec<String> = mesh
        .services
        .keys()
        .skip(1)
        .take(SUBSCRIBED - 1)
        .map(|h| format!("outbound|80||{h}"))
        .chain([hot_cluster.clone()])
        .collect();

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let started = Instant::now();
    for s in 0..STREAMS {
        let client = AggregatedDiscoveryServiceClient::new(channel.clone())
            .max_decoding_message_size(64 << 20);
        tokio::spawn(run_stream(
            client,
            s % LOCALITIES,
            names.clone(),
            seen_tx.clone(),
        ));
    }
    // Every stream's first response.
    for _ in 0..STREAMS {
        seen_rx.recv().await;
    }
    println!(
        "{STREAMS} streams subscribed and served in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let mut per_stream = Vec::new();
    let mut all_streams = Vec::new();
    for change in 0..CHANGES {
        let svc = mesh.services.get_mut(&hot).expect("hot service");
        let svc = Arc::make_mut(svc);
        svc.ports[0].endpoints[0].weight = 2 + change as u32;
        let t0 = Instant::now();
        cache.set_mesh(mesh.clone());
        let mut got = BTreeMap::new();
        while got.len() < STREAMS {
            let (stream, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await?
                .expect("streams alive");
            if at >= t0 {
                got.entry(stream).or_insert(at - t0);
            }
        }
        per_stream.extend(got.values().copied());
        all_streams.push(*got.values().max().expect("streams"));
    }
    per_stream.sort();
    all_streams.sort();
    println!(
        "one endpoint change -> updated ClusterLoadAssignment on a stream: p50 {:.1} ms, p99 {:.1} ms; on all {STREAMS} streams: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({CHANGES} changes)",
        ms(pct(&per_stream, 50.0)),
        ms(pct(&per_stream, 99.0)),
        ms(pct(&all_streams, 50.0)),
        ms(pct(&all_streams, 99.0)),
        ms(*all_streams.last().expect("changes")),
    );
    Ok(())
}

/// One ADS client: EDS for `names`, ACKs every response, reports each receipt.
async fn run_stream(
    mut client: AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    l: usize,
    names: Vec<String>,
    seen: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let loc = locality(l);
    let node = Node {
        id: format!("bench-{l}"),
        locality: Some(PbLocality {
            region: loc.region,
            zone: loc.zone,
            sub_zone: String::new(),
        }),
        ..Node::default()
    };
    let _ = tx.send(DiscoveryRequest {
        node: Some(node),
        type_url: ENDPOINT.to_owned(),
        resource_names: names.clone(),
        ..DiscoveryRequest::default()
    });
    let Ok(response) = client
        .stream_aggregated_resources(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
    else {
        return;
    };
    let id = seen_id();
    let mut responses = response.into_inner();
    while let Some(Ok(response)) = responses.next().await {
        let _ = seen.send((id, Instant::now()));
        let _ = tx.send(DiscoveryRequest {
            type_url: ENDPOINT.to_owned(),
            resource_names: names.clone(),
            version_info: response.version_info,
            response_nonce: response.nonce,
            ..DiscoveryRequest::default()
        });
    }
}

fn seen_id() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
