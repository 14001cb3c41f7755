//! The mTLS port's costs, as a bench binary that prints its figures:
//! `cargo bench -p meshfleet-runtime --bench mtls [-- IDENTITIES]`.
//!
//! - **Handshakes**: full TLS 1.3 handshakes with client certificates (no resumption) against
//!   `meshfleet run`'s mTLS listener on loopback, one client at a time and with as many
//!   concurrent clients as cores; a handshake counts once the server has verified the client
//!   and its gRPC server speaks (its first HTTP/2 frame).
//! - **SDS delivery**: IDENTITIES distinct verified clients (10,000 by default) each ask for
//!   `default` and `ROOTCA` on their own ADS stream, all at once; measured from the first
//!   request to the last response: a workload certificate issued per identity, then pushed.
//!   Streams are served in process (the transport's share is the handshake figure above).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use meshfleet_ca::store::RootDir;
use meshfleet_ca::{Algorithm, Authority, ROOT_VALIDITY, SpiffeId};
use meshfleet_runtime::mtls::{CaSecrets, MeshCa};
use meshfleet_xds::cache::SnapshotCache;
use meshfleet_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshfleet_xds::resource::SECRET;
use meshfleet_xds::server::{AdsServer, Peer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TRUST_DOMAIN: &str = "cluster.local";

fn main() {
    let identities: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(identities));
}

async fn run(identities: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root =
        Authority::generate_root(TRUST_DOMAIN, Algorithm::EcdsaP256, ROOT_VALIDITY).expect("root");
    RootDir::create(dir.path(), &root).expect("CA directory");
    let ca = Arc::new(MeshCa::load(dir.path().to_owned(), Duration::from_secs(60)).expect("CA"));
    let secrets = CaSecrets::new(ca.clone(), Duration::from_secs(24 * 3600));
    let ads = AdsServer::new(SnapshotCache::new()).with_secrets(secrets);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("meshfleet mTLS bench: {cores} cores, ECDSA P-256 CA");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(meshfleet_runtime::mtls::serve(
        listener,
        ads.clone(),
        ca,
        Duration::from_secs(3600),
        128,
    ));
    let client = Arc::new(client_config(dir.path()));
    handshake(&client, addr).await; // warm up: the server makes its configuration once
    for clients in [1, cores] {
        let per_client = 1_000;
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..per_client {
                        handshake(&client, addr).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("handshakes");
        }
        let total = started.elapsed();
        println!(
            "handshakes, {clients} client(s): {:.0}/s ({} in {:.2} s)",
            (clients * per_client) as f64 / total.as_secs_f64(),
            clients * per_client,
            total.as_secs_f64()
        );
    }

    let rss_before = rss_mib();
    let started = Instant::now();
    let streams: Vec<_> = (0..identities)
        .map(|i| {
            let peer = Peer {
                identity: format!("spiffe://{TRUST_DOMAIN}/ns/bench/sa/sa-{i}"),
                cluster: format!("cluster-{}", i % 100),
            };
            let request = DiscoveryRequest {
                type_url: SECRET.to_owned(),
                resource_names: vec!["default".to_owned(), "ROOTCA".to_owned()],
                node: Some(Default::default()),
                ..Default::default()
            };
            let requests = futures::stream::iter([Ok(request)]).chain(futures::stream::pending());
            ads.serve_sotw_for(Box::pin(requests), Some(peer))
        })
        .collect();
    let mut latencies = Vec::with_capacity(identities);
    let waits: Vec<_> = streams
        .into_iter()
        .map(|mut responses| {
            tokio::spawn(async move {
                let response = responses.next().await.expect("a response").expect("ok");
                assert_eq!(response.bodies.len(), 2, "default and ROOTCA");
                (started.elapsed(), responses)
            })
        })
        .collect();
    let mut open = Vec::with_capacity(identities);
    for wait in waits {
        let (latency, responses) = wait.await.expect("delivery");
        latencies.push(latency);
        open.push(responses);
    }
    let total = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "SDS to {identities} identities over 100 clusters: all delivered in {:.2} s ({:.0} identities/s); since the first request p50 {:.2} s, p99 {:.2} s; RSS +{} MiB",
        total.as_secs_f64(),
        identities as f64 / total.as_secs_f64(),
        at(0.5).as_secs_f64(),
        at(0.99).as_secs_f64(),
        rss_mib().saturating_sub(rss_before),
    );
    drop(open);
}

/// A client with a workload certificate from cluster bench-client's CA, trusting the root.
fn client_config(dir: &std::path::Path) -> rustls::ClientConfig {
    let store = RootDir::load(dir).expect("CA directory");
    let ca = store
        .cluster_authority("bench-client", std::time::SystemTime::now())
        .expect("cluster CA");
    let id = SpiffeId::new(TRUST_DOMAIN, "bench", "client");
    let issued = ca
        .issue_workload(&id, Duration::from_secs(3600))
        .expect("client certificate");
    let chain: Vec<CertificateDer<'static>> = std::iter::once(&issued.certificate)
        .chain(&issued.chain[..issued.chain.len() - 1])
        .map(|c| CertificateDer::from(c.der.clone()))
        .collect();
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(store.root.certificate().der.clone()))
        .expect("root");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Every handshake a full one.
    config.resumption = rustls::client::Resumption::disabled();
    config
}

async fn handshake(config: &Arc<rustls::ClientConfig>, addr: std::net::SocketAddr) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let name = ServerName::try_from("istiod.istio-system.svc").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    // The server's first HTTP/2 frame comes only once it has verified the client and handed
    // the connection to the gRPC server: a handshake counts when meshfleet is done with it.
    let mut first = [0u8; 9];
    let read = tls.read(&mut first).await.expect("the server speaks first");
    assert!(read > 0, "the server closed the connection");
    tls.shutdown().await.ok();
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}
