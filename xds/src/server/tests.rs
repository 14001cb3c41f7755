//! Fake ADS clients that check the protocol on every response they receive: nonces strictly
//! increase, the type URL is one the client asked for, versions are set, every resource has
//! the response's type. They keep what they were sent, as Envoy would, so tests can compare
//! whole states.

mod delta;
mod misc;
mod sds;
mod sotw;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{Locality as PbLocality, Node};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::{Any, Struct, Value, value::Kind};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use futures::{FutureExt, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;

use super::*;
use crate::cache::fixtures::*;
use crate::model::Mesh;
use crate::resource::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SYNCZ};

/// How long a test waits for a response that must come.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A server over a cache holding `mesh`, with a fixed clock.
fn server(mesh: Mesh) -> (SnapshotCache, AdsServer) {
    let cache = SnapshotCache::new();
    cache.set_mesh(mesh);
    let clock: Clock = Arc::new(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let server = AdsServer::new(cache.clone())
        .with_instance_id("test-0")
        .with_clock(clock);
    (cache, server)
}

/// An Envoy-like node in `locality` with metadata `meta`.
fn node(id: &str, locality: &str, meta: &[(&str, Kind)]) -> Node {
    let l = crate::model::Locality::parse(locality);
    Node {
        id: id.to_owned(),
        locality: Some(PbLocality {
            region: l.region,
            zone: l.zone,
            sub_zone: l.subzone,
        }),
        metadata: Some(Struct {
            fields: meta
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        Value {
                            kind: Some(v.clone()),
                        },
                    )
                })
                .collect(),
        }),
        ..Default::default()
    }
}

fn east(id: &str) -> Node {
    node(id, "us-east/us-east-1a/", &[])
}

/// The name of a resource of one of the four snapshot types, decoded from its body.
fn resource_name(any: &Any) -> String {
    let v = any.value.as_slice();
    match any.type_url.as_str() {
        CLUSTER => Cluster::decode(v).unwrap().name,
        ENDPOINT => ClusterLoadAssignment::decode(v).unwrap().cluster_name,
        LISTENER => Listener::decode(v).unwrap().name,
        ROUTE => RouteConfiguration::decode(v).unwrap().name,
        SECRET => Secret::decode(v).unwrap().name,
        other => panic!("unexpected resource type {other}"),
    }
}

/// A resource's content version, computed the way [`crate::resource::Resource`] does.
fn body_version(any: &Any) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&any.value))
}

/// What a client holds: per type, name → version.
type Held = BTreeMap<String, BTreeMap<String, String>>;

/// Yields until the server's stream tasks have run, then sleeps a little for good measure.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// A SotW client.
struct SotwClient {
    tx: mpsc::UnboundedSender<Result<DiscoveryRequest, Status>>,
    rx: mpsc::Receiver<Result<DiscoveryResponse, Status>>,
    node: Option<Node>,
    /// Last nonce received: the next must be greater.
    last_nonce: u64,
    /// Types asked for: a response of any other type is a protocol error.
    asked: BTreeSet<String>,
    /// What the client holds, per type (CDS / LDS replaced per response, EDS / RDS merged).
    held: Held,
}

impl SotwClient {
    fn connect(server: &AdsServer, node: Node) -> Self {
        Self::connect_as(server, node, None)
    }

    /// A client the transport verified as `peer`.
    fn connect_as(server: &AdsServer, node: Node, peer: Option<Peer>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let responses =
            whole_messages(server.serve_sotw_for(UnboundedReceiverStream::new(rx), peer));
        Self {
            tx,
            rx: responses.into_inner(),
            node: Some(node),
            last_nonce: 0,
            asked: BTreeSet::new(),
            held: Held::new(),
        }
    }

    fn send(&mut self, mut req: DiscoveryRequest) {
        req.node = self.node.take();
        self.asked.insert(req.type_url.clone());
        self.tx.send(Ok(req)).expect("stream open");
    }

    /// A first request for `ty` (empty nonce).
    fn request(&mut self, ty: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            type_url: ty.to_owned(),
            resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Default::default()
        });
    }

    fn ack(&mut self, resp: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: resp.version_info.clone(),
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Default::default()
        });
    }

    fn nack(&mut self, resp: &DiscoveryResponse, names: &[&str], last_good: &str, message: &str) {
        self.send(DiscoveryRequest {
            version_info: last_good.to_owned(),
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.to_owned(),
                details: Vec::new(),
            }),
            ..Default::default()
        });
    }

    /// The next response, checked.
    async fn recv(&mut self) -> DiscoveryResponse {
        let next = tokio::time::timeout(RECV_TIMEOUT, self.rx.recv()).await;
        let resp = next
            .expect("response in time")
            .expect("stream open")
            .expect("not an error");
        self.check(&resp);
        resp
    }

    /// The next response, which must be of `ty`; returns it and its resource names.
    async fn recv_type(&mut self, ty: &str) -> (DiscoveryResponse, Vec<String>) {
        let resp = self.recv().await;
        assert_eq!(resp.type_url, ty, "response type");
        let names = resp.resources.iter().map(resource_name).collect();
        (resp, names)
    }

    /// The stream's error status.
    async fn recv_error(&mut self) -> Status {
        let next = tokio::time::timeout(RECV_TIMEOUT, self.rx.recv()).await;
        next.expect("in time")
            .expect("stream open")
            .expect_err("an error")
    }

    /// Nothing was sent.
    async fn expect_silence(&mut self) {
        settle().await;
        match self.rx.try_recv() {
            Err(TryRecvError::Empty) => {}
            other => panic!("expected no response, got {other:?}"),
        }
    }

    fn check(&mut self, resp: &DiscoveryResponse) {
        let nonce: u64 = resp.nonce.parse().expect("numeric nonce");
        assert!(
            nonce > self.last_nonce,
            "nonce {nonce} after {}",
            self.last_nonce
        );
        self.last_nonce = nonce;
        assert!(
            self.asked.contains(&resp.type_url),
            "unasked type {}",
            resp.type_url
        );
        assert!(resp.control_plane.is_some());
        if resp.type_url == SYNCZ {
            return;
        }
        assert!(!resp.version_info.is_empty(), "version_info set");
        assert!(resp.resources.iter().all(|r| r.type_url == resp.type_url));
        let held = self.held.entry(resp.type_url.clone()).or_default();
        if resp.type_url == CLUSTER || resp.type_url == LISTENER {
            held.clear();
        }
        for r in &resp.resources {
            held.insert(resource_name(r), body_version(r));
        }
    }
}

/// A Delta client.
struct DeltaClient {
    tx: mpsc::UnboundedSender<Result<DeltaDiscoveryRequest, Status>>,
    rx: OutboxStream<DeltaDiscoveryResponse>,
    node: Option<Node>,
    last_nonce: u64,
    asked: BTreeSet<String>,
    /// What the client holds, per type, after applying upserts and removals.
    held: Held,
}

impl DeltaClient {
    fn connect(server: &AdsServer, node: Node) -> Self {
        Self::connect_as(server, node, None)
    }

    /// A client the transport verified as `peer`.
    fn connect_as(server: &AdsServer, node: Node, peer: Option<Peer>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: server.serve_delta_for(UnboundedReceiverStream::new(rx), peer),
            node: Some(node),
            last_nonce: 0,
            asked: BTreeSet::new(),
            held: Held::new(),
        }
    }

    fn send(&mut self, mut req: DeltaDiscoveryRequest) {
        req.node = self.node.take();
        self.asked.insert(req.type_url.clone());
        self.tx.send(Ok(req)).expect("stream open");
    }

    fn subscribe(&mut self, ty: &str, names: &[&str]) {
        self.send(DeltaDiscoveryRequest {
            type_url: ty.to_owned(),
            resource_names_subscribe: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Default::default()
        });
    }

    fn unsubscribe(&mut self, ty: &str, names: &[&str]) {
        self.send(DeltaDiscoveryRequest {
            type_url: ty.to_owned(),
            resource_names_unsubscribe: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Default::default()
        });
    }

    fn ack(&mut self, resp: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        });
    }

    fn nack(&mut self, resp: &DeltaDiscoveryResponse, message: &str) {
        self.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.to_owned(),
                details: Vec::new(),
            }),
            ..Default::default()
        });
    }

    async fn recv(&mut self) -> DeltaDiscoveryResponse {
        let next = tokio::time::timeout(RECV_TIMEOUT, self.rx.next()).await;
        let resp = next
            .expect("response in time")
            .expect("stream open")
            .expect("not an error");
        self.check(&resp);
        resp
    }

    /// The next response, which must be of `ty`: its sorted upserted and removed names.
    async fn recv_type(&mut self, ty: &str) -> (DeltaDiscoveryResponse, Vec<String>, Vec<String>) {
        let resp = self.recv().await;
        assert_eq!(resp.type_url, ty, "response type");
        let mut upserts: Vec<String> = resp.resources.iter().map(|r| r.name.clone()).collect();
        upserts.sort();
        let mut removed = resp.removed_resources.clone();
        removed.sort();
        (resp, upserts, removed)
    }

    async fn expect_silence(&mut self) {
        settle().await;
        if let Some(other) = self.rx.next().now_or_never() {
            panic!("expected no response, got {other:?}");
        }
    }

    fn check(&mut self, resp: &DeltaDiscoveryResponse) {
        let nonce: u64 = resp.nonce.parse().expect("numeric nonce");
        assert!(
            nonce > self.last_nonce,
            "nonce {nonce} after {}",
            self.last_nonce
        );
        self.last_nonce = nonce;
        assert!(
            self.asked.contains(&resp.type_url),
            "unasked type {}",
            resp.type_url
        );
        if resp.type_url == SYNCZ {
            return;
        }
        assert!(
            !resp.system_version_info.is_empty(),
            "system_version_info set"
        );
        let held = self.held.entry(resp.type_url.clone()).or_default();
        for r in &resp.resources {
            let body = r.resource.as_ref().expect("resource body");
            assert_eq!(body.type_url, resp.type_url);
            assert_eq!(r.name, resource_name(body));
            assert_eq!(r.version, body_version(body), "version is the content hash");
            held.insert(r.name.clone(), r.version.clone());
        }
        for name in &resp.removed_resources {
            held.remove(name);
        }
    }
}
