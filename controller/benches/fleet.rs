//! The fleet benchmark: prints figures, asserts nothing.
//!
//! For each size (10k, 100k, 1M endpoints over 100 clusters, 10,000 global services, 20 client
//! localities) it runs the `meshfleet run` binary, as a process of its own, on a config
//! directory with one file per service, and measures what a user would:
//! - cold start: from start to `/readyz` (load the directory, build the catalog, translate);
//! - the first snapshot of each of the 20 client localities: 20 ADS streams, one per
//!   locality, until each has its first response;
//! - the controller's resident memory after cold start and with 1,000 ADS streams open (each
//!   subscribed to 20 ClusterLoadAssignments, ACKing every response), read from its
//!   `/proc/<pid>/status`: the bench's own clients are not counted;
//! - from the source: one endpoint's address changed in its service's file until every one of
//!   the 1,000 streams has received the updated ClusterLoadAssignment, p50 / p99 / max over
//!   repeated changes (after a few not counted). This includes the file watcher's debounce
//!   (100 ms), which is also shown subtracted.
//!
//! `RUST_LOG=meshfleet_runtime=info` shows the controller's own account of each change.
//!
//! `cargo bench -p meshfleet --bench fleet` (all sizes) or
//! `cargo bench -p meshfleet --bench fleet -- 1000000` (one size).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{memory_of, ms, pct};

use futures::StreamExt;
use meshfleet_demo::envoy::{eventually, free_port};
use meshfleet_demo::traffic::get;
use meshfleet_model::Locality;
use meshfleet_runtime::fs::write_atomic;
use meshfleet_xds::pb::envoy::config::core::v3::{Locality as PbLocality, Node};
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use meshfleet_xds::resource::ENDPOINT;
use tokio::sync::mpsc;

const CLUSTERS: usize = 100;
const SERVICES: usize = 10_000;
const LOCALITIES: usize = 20;
const STREAMS: usize = 1_000;
const SUBSCRIBED: usize = 20;
const STREAMS_PER_CONNECTION: usize = 100;
const CHANGES: usize = 50;
/// Changes made first and not counted: the first pushes after 1,000 streams connect warm up.
const WARM_UP: usize = 3;

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

/// The config file of service `s`: its Service and its EndpointSlices in `spread` clusters
/// (`per_slice` endpoints each). `first` replaces the first endpoint's address.
fn service_file(s: usize, spread: usize, per_slice: usize, first: Option<&str>) -> String {
    let mut out = String::new();
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
            let address = match first {
                Some(first) if k == 0 && e == 0 => first.to_owned(),
                _ => format!(
                    "10.{}.{}.{}",
                    c,
                    (s * per_slice + e) / 250 % 250,
                    e % 250 + 1
                ),
            };
            let _ = writeln!(out, "- addresses: [\"{address}\"]");
        }
    }
    out
}

/// How a fleet of `endpoints` is spread: (clusters per service, endpoints per slice).
fn shape(endpoints: usize) -> (usize, usize) {
    let per_service = endpoints / SERVICES;
    let spread = per_service.clamp(1, 10);
    (spread, per_service / spread)
}

/// Writes the fleet: `clusters.yaml` with 100 Clusters, and `services/s<i>.yaml` per service.
fn write_fleet(dir: &Path, endpoints: usize) -> anyhow::Result<()> {
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
    std::fs::create_dir_all(dir.join("services"))?;
    let (spread, per_slice) = shape(endpoints);
    for s in 0..SERVICES {
        let file = dir.join(format!("services/s{s}.yaml"));
        std::fs::write(file, service_file(s, spread, per_slice, None))?;
    }
    Ok(())
}

async fn bench(endpoints: usize) -> anyhow::Result<()> {
    println!("\n== {endpoints} endpoints");
    let dir = tempfile::tempdir()?;
    write_fleet(dir.path(), endpoints)?;
    let addr =
        || -> anyhow::Result<SocketAddr> { Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?))) };
    let (xds_addr, admin_addr) = (addr()?, addr()?);
    let start = Instant::now();
    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .arg("run")
        .arg("--config")
        .arg(dir.path())
        .args(["--xds-addr", &xds_addr.to_string()])
        .args(["--admin-addr", &admin_addr.to_string()])
        .args(["--dns-addr", &addr()?.to_string()])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .spawn()?;
    let pid = controller.id().expect("a running controller");
    eventually(Duration::from_secs(120), || async {
        let (status, _) = get(admin_addr, "localhost", "/readyz").await?;
        anyhow::ensure!(status == 200, "not ready");
        Ok(())
    })
    .await?;
    let cold = start.elapsed();
    let (_, catalog) = get(admin_addr, "localhost", "/debug/catalog").await?;
    let catalog: serde_json::Value = serde_json::from_str(&catalog)?;
    let served: usize = catalog["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["ports"].as_array().into_iter().flatten())
        .map(|p| p["endpoints"].as_array().map_or(0, Vec::len))
        .sum();
    anyhow::ensure!(
        served == endpoints,
        "catalog has {served} endpoints, expected {endpoints}"
    );
    println!(
        "cold start (load, catalog, translate, ready): {:.2} s",
        cold.as_secs_f64()
    );
    println!(
        "controller's resident memory after cold start: {}",
        memory_of(pid)
    );

    let hot = "outbound|80||s0.bench.global".to_owned();
    let names: Vec<String> = (0..SUBSCRIBED)
        .map(|s| format!("outbound|80||s{s}.bench.global"))
        .collect();
    // Streams share connections, 100 to one: within the controller's per-connection limit.
    let mut channels = Vec::new();
    for _ in 0..STREAMS.div_ceil(STREAMS_PER_CONNECTION) {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{xds_addr}"))?;
        channels.push(endpoint.connect().await?);
    }
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant, bool)>();
    let open = |s: usize| {
        let channel = channels[s / STREAMS_PER_CONNECTION].clone();
        let client =
            AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(64 << 20);
        tokio::spawn(run_stream(
            client,
            s,
            s % LOCALITIES,
            names.clone(),
            hot.clone(),
            seen_tx.clone(),
        ))
    };
    // One stream per locality first: each locality's first snapshot.
    let started = Instant::now();
    for s in 0..LOCALITIES {
        open(s);
    }
    for _ in 0..LOCALITIES {
        seen_rx.recv().await;
    }
    println!(
        "first snapshots of all {LOCALITIES} client localities: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    for s in LOCALITIES..STREAMS {
        open(s);
    }
    for _ in LOCALITIES..STREAMS {
        seen_rx.recv().await;
    }
    println!(
        "{} more streams subscribed and served in {:.2} s",
        STREAMS - LOCALITIES,
        started.elapsed().as_secs_f64()
    );
    println!(
        "controller's resident memory with {STREAMS} streams: {}",
        memory_of(pid)
    );
    let view = |path: &'static str| async move {
        let mut took = Vec::new();
        for _ in 0..10 {
            let t0 = Instant::now();
            let (status, _) = get(admin_addr, "localhost", path).await?;
            anyhow::ensure!(status == 200, "{path}: {status}");
            took.push(t0.elapsed());
        }
        took.sort();
        anyhow::Ok(ms(took[took.len() / 2]))
    };
    println!(
        "fleet view with {STREAMS} clients in {LOCALITIES} localities (median of 10): /api/fleet {:.1} ms, \
         /api/services (a page of 25, a split per locality each) {:.1} ms, searched {:.1} ms",
        view("/api/fleet").await?,
        view("/api/services?limit=25").await?,
        view("/api/services?limit=25&q=s99").await?,
    );
    changes(dir.path(), endpoints, &mut seen_rx).await?;
    controller.kill().await?;
    Ok(())
}

/// Changes the first endpoint of `s0` in its file `CHANGES` times; each time, waits until every
/// stream has received the updated ClusterLoadAssignment.
async fn changes(
    dir: &Path,
    endpoints: usize,
    seen: &mut mpsc::UnboundedReceiver<(usize, Instant, bool)>,
) -> anyhow::Result<()> {
    let (spread, per_slice) = shape(endpoints);
    let file = dir.join("services/s0.yaml");
    let mut all_streams = Vec::new();
    for change in 0..WARM_UP + CHANGES {
        let address = format!("10.254.{}.{}", change / 250, change % 250 + 1);
        let text = service_file(0, spread, per_slice, Some(&address));
        let t0 = Instant::now();
        write_atomic(&file, text)?;
        let mut got = BTreeMap::new();
        while got.len() < STREAMS {
            let (stream, at, hot) = tokio::time::timeout(Duration::from_secs(30), seen.recv())
                .await?
                .expect("streams alive");
            if hot && at >= t0 {
                got.entry(stream).or_insert(at - t0);
            }
        }
        if change >= WARM_UP {
            all_streams.push(*got.values().max().expect("streams"));
        }
    }
    all_streams.sort();
    let debounce = Duration::from_millis(100);
    let after = |d: Duration| ms(d.saturating_sub(debounce));
    println!(
        "one endpoint changed in a file -> updated ClusterLoadAssignment on all {STREAMS} streams: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms; after the 100 ms debounce: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms ({CHANGES} changes)",
        ms(pct(&all_streams, 50.0)),
        ms(pct(&all_streams, 90.0)),
        ms(pct(&all_streams, 99.0)),
        after(pct(&all_streams, 50.0)),
        after(pct(&all_streams, 90.0)),
        after(pct(&all_streams, 99.0)),
    );
    if std::env::var_os("FLEET_BENCH_EACH").is_some() {
        let each: Vec<String> = all_streams
            .iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect();
        println!("each change, sorted (ms): {}", each.join(" "));
    }
    Ok(())
}

/// One ADS client: EDS for `names`, ACKs every response, reports each receipt (and whether it
/// held `hot`).
async fn run_stream(
    mut client: AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    id: usize,
    l: usize,
    names: Vec<String>,
    hot: String,
    seen: mpsc::UnboundedSender<(usize, Instant, bool)>,
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
    let mut responses = response.into_inner();
    while let Some(Ok(response)) = responses.next().await {
        let at = Instant::now();
        let held = response.resources.iter().any(|r| {
            use prost::Message as _;
            meshfleet_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment::decode(
                r.value.as_slice(),
            )
            .is_ok_and(|cla| cla.cluster_name == hot)
        });
        let _ = seen.send((id, at, held));
        let _ = tx.send(DiscoveryRequest {
            type_url: ENDPOINT.to_owned(),
            resource_names: names.clone(),
            version_info: response.version_info,
            response_nonce: response.nonce,
            ..DiscoveryRequest::default()
        });
    }
}
