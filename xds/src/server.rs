//! The ADS server: `StreamAggregatedResources` (SotW) and `DeltaAggregatedResources` (Delta).
//!
//! ```text
//!  gRPC stream ──> stream::run (one task) ──select! (biased: requests first)
//!                    ├─ request  ──> Sotw / Delta::on_request: ACK, NACK, subscription
//!                    ├─ room in the outbox ──> Sotw / Delta::next_response ──> outbox ──> client
//!                    ├─ snapshot ──> the latest is kept; the next response is computed from it
//!                    └─ failover label keys changed ──> re-key
//!  SnapshotCache ──watch(key)──> snapshot
//!  registry (ClientStatus per stream) ──> status(), istio.io/debug/syncz
//! ```
//!
//! As in go-control-plane, the cache owns data and versions and a stream owns nonces and
//! subscriptions; they meet at [`SnapshotCache::watch`]. Unlike go-control-plane, a NACK is
//! state: recorded, shown, and never answered by resending the rejected version.
//!
//! # Choices
//! - A request for a type meshfleet does not serve is logged and counted
//!   (`meshfleet_xds_unknown_type_total`) and not answered; the stream stays up.
//! - A first request whose node metadata cannot be used ends the stream with
//!   `invalid_argument` naming the field. A missing node or node id is accepted (id `""`).
//! - When a cluster (listener) changes, its load assignment (route configuration) is sent
//!   again after it, if subscribed, so that Envoy can finish warming the new cluster.
//! - Clients whose labels matter to some `failoverPriority` move to a new cache key when the
//!   mesh's set of such label keys changes.
//! - SotW responses carry the cache's encoded bodies to the gRPC encoder ([`Prepared`],
//!   [`AdsService`]): a body is copied once per send, into the frame.
//! - A stream queues at most one response for the transport and computes the next only when
//!   it is taken (module `outbox`): a client that does not read holds up one response, never
//!   a backlog of outdated ones.
//! - `istio.io/debug/syncz` names every client and its metadata: it is answered only where
//!   [`AdsServer::with_syncz`] allows it; elsewhere the stream ends with `UNAUTHENTICATED`,
//!   as istiod ends a debug request from a client without a verified identity.

mod delta;
mod grpc;
mod istio_metrics;
mod metrics;
mod node;
mod outbox;
mod sotw;
mod state;
mod status;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::cache::SnapshotCache;
use crate::resource::Resource;

pub use grpc::{AdsService, MessageCodec, Prepared};
pub use metrics::{Metrics, SHORT_TYPES, short_type};
pub use node::{
    DEFAULT_LISTENER_PORT, META_LABELS, META_LISTENER_PORT, META_NETWORK, NodeError, NodeInfo,
};
pub use outbox::OutboxStream;
pub use status::{ClientStatus, Nack, StreamKind, TypeStatus, format_rfc3339};
pub use stream::StreamError;

use delta::Delta;
use istio_metrics::ClientsCollector;
use outbox::Queued;
use prometheus_client::registry::Registry;
use sotw::Sotw;
use stream::{Connected, Protocol, Registration};

/// Largest gRPC message sent by default ([`Limits::max_response_bytes`]): a full CDS for
/// 10,000 services is tens of MiB.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// What one client may ask of the server; beyond it, its stream ends with
/// `RESOURCE_EXHAUSTED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request message, in bytes.
    pub max_request_bytes: usize,
    /// Most resource names one request may name (subscribed and unsubscribed together).
    pub max_resources_per_request: usize,
    /// Largest response sent; a larger one ends the stream with `RESOURCE_EXHAUSTED` and is
    /// counted as a push error (`pilot_xds_pushes{type="cds_senderr"}`, ...).
    pub max_response_bytes: usize,
}

impl Default for Limits {
    /// 4 MiB and 100,000 names: a request naming every cluster of a 10,000-service mesh with
    /// long names fits in a tenth of that.
    fn default() -> Self {
        Self {
            max_request_bytes: 4 << 20,
            max_resources_per_request: 100_000,
            max_response_bytes: MAX_MESSAGE_SIZE,
        }
    }
}

/// Where the server reads the time (NACKs, connections); tests pass a fixed clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A response stream as tonic takes it.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A client the mTLS port verified: the SPIFFE ID of its certificate and the member cluster
/// whose CA issued it. The transport puts it in each request's extensions (as tonic's
/// `ConnectInfo`); streams on the plaintext port have none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
    pub identity: String,
    /// The member cluster named by the issuing CA (`L=<cluster>`).
    pub cluster: String,
}

/// The secrets a verified client is served over SDS, named as istio-agent names them
/// (`default`: its certificate and key; `ROOTCA`: the trust bundle).
pub type Secrets = Arc<[Arc<Resource>]>;

/// Where verified clients' secrets come from (the mesh CA); kept current by the source, which
/// renews certificates and follows root rotations.
pub trait SecretSource: Send + Sync + 'static {
    /// The secrets of `peer`, as a receiver that sees every renewal.
    ///
    /// # Errors
    /// Why `peer` cannot have secrets (its cluster has no CA); the stream then serves none.
    fn watch(&self, peer: &Peer) -> Result<watch::Receiver<Secrets>, String>;
}

/// The ADS service; cheap to clone (all clones share streams, status and metrics).
#[derive(Clone)]
pub struct AdsServer {
    /// Where streams get their snapshots.
    cache: SnapshotCache,
    /// Counters of all streams.
    metrics: Arc<Metrics>,
    /// Connected clients by stream id, for [`AdsServer::status`] and syncz.
    clients: Arc<Mutex<BTreeMap<u64, Arc<Mutex<Connected>>>>>,
    /// Source of stream ids.
    next_stream: Arc<AtomicU64>,
    /// `control_plane.identifier` of every response, naming this instance the way istioctl
    /// reads it (its ISTIOD column).
    control_plane_id: Arc<str>,
    clock: Clock,
    /// What one client may ask.
    limits: Limits,
    /// Whether `istio.io/debug/syncz` is answered: it hands out every client's node id and
    /// metadata.
    syncz: bool,
    /// Secrets for verified clients; `None`: SDS serves nothing.
    secrets: Option<Arc<dyn SecretSource>>,
}

impl AdsServer {
    pub fn new(cache: SnapshotCache) -> Self {
        Self {
            cache,
            metrics: Arc::default(),
            clients: Arc::default(),
            next_stream: Arc::default(),
            control_plane_id: control_plane_id("meshfleet"),
            clock: Arc::new(SystemTime::now),
            limits: Limits::default(),
            syncz: false,
            secrets: None,
        }
    }

    /// Serves SDS to verified clients ([`Peer`]) from `source`.
    pub fn with_secrets(mut self, source: Arc<dyn SecretSource>) -> Self {
        self.secrets = Some(source);
        self
    }

    /// Answers `istio.io/debug/syncz` on ADS streams (off by default: a client that asks
    /// without it gets `UNAUTHENTICATED`).
    pub fn with_syncz(mut self, allowed: bool) -> Self {
        self.syncz = allowed;
        self
    }

    /// Names this instance in responses' `control_plane` (e.g. the pod name).
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.control_plane_id = control_plane_id(&id.into());
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The tonic service, with the message size limits of its [`Limits`]; SotW responses
    /// are written from the cache's encoded bodies (see [`AdsService`]).
    pub fn into_service(self) -> AdsService {
        AdsService::new(self)
    }

    /// The generated tonic service over [`AggregatedDiscoveryService`], which copies every
    /// SotW resource into a `DiscoveryResponse` first; [`AdsServer::into_service`] does not.
    pub fn into_generated_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        let limits = self.limits;
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Registers every metric of the server in `registry` (the root one): meshfleet's under
    /// `meshfleet_xds_`, istiod's names (`pilot_xds`, `pilot_xds_pushes`,
    /// `pilot_proxy_convergence_time`, ...), and the clients' sync states, read at each scrape
    /// (`meshfleet_xds_clients{state}`, `meshfleet_xds_clients_acked{type,version}`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics
            .register(registry.sub_registry_with_prefix("meshfleet_xds"));
        self.metrics.register_istio(registry);
        registry.register_collector(Box::new(ClientsCollector {
            clients: self.clients.clone(),
        }));
    }

    /// Every connected client, in connection order.
    pub fn status(&self) -> Vec<ClientStatus> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .values()
            .map(|c| {
                let c = c.lock().unwrap_or_else(|e| e.into_inner());
                let mut status = c.status.clone();
                status.queued_responses = c.queued.responses.load(Ordering::Relaxed);
                status.queued_bytes = c.queued.bytes.load(Ordering::Relaxed);
                status
            })
            .collect()
    }

    /// Serves a SotW stream from any request stream (a test's, or the generated service's),
    /// as whole messages.
    pub fn serve_sotw<S>(&self, requests: S) -> ReceiverStream<Result<DiscoveryResponse, Status>>
    where
        S: Stream<Item = Result<DiscoveryRequest, Status>> + Send + Unpin + 'static,
    {
        whole_messages(self.serve_sotw_prepared(requests))
    }

    /// Serves a SotW stream whose responses still hold the cache's bodies.
    pub fn serve_sotw_prepared<S>(&self, requests: S) -> OutboxStream<Prepared>
    where
        S: Stream<Item = Result<DiscoveryRequest, Status>> + Send + Unpin + 'static,
    {
        self.spawn(Sotw::default(), requests, None)
    }

    /// Serves a Delta stream from any request stream.
    pub fn serve_delta<S>(&self, requests: S) -> OutboxStream<DeltaDiscoveryResponse>
    where
        S: Stream<Item = Result<DeltaDiscoveryRequest, Status>> + Send + Unpin + 'static,
    {
        self.spawn(Delta::default(), requests, None)
    }

    /// [`AdsServer::serve_sotw_prepared`] for a client `peer`, verified by the transport.
    pub fn serve_sotw_for<S>(&self, requests: S, peer: Option<Peer>) -> OutboxStream<Prepared>
    where
        S: Stream<Item = Result<DiscoveryRequest, Status>> + Send + Unpin + 'static,
    {
        self.spawn(Sotw::default(), requests, peer)
    }

    /// [`AdsServer::serve_delta`] for a client `peer`, verified by the transport.
    pub fn serve_delta_for<S>(
        &self,
        requests: S,
        peer: Option<Peer>,
    ) -> OutboxStream<DeltaDiscoveryResponse>
    where
        S: Stream<Item = Result<DeltaDiscoveryRequest, Status>> + Send + Unpin + 'static,
    {
        self.spawn(Delta::default(), requests, peer)
    }

    fn spawn<P, S>(&self, proto: P, requests: S, peer: Option<Peer>) -> OutboxStream<P::Response>
    where
        P: Protocol,
        S: Stream<Item = Result<P::Request, Status>> + Send + Unpin + 'static,
    {
        let (tx, rx) = outbox::outbox(self.metrics.clone());
        tokio::spawn(stream::run(self.clone(), proto, requests, tx, peer));
        rx
    }

    /// Adds a client to the registry; it leaves when the returned guard drops.
    fn register(
        &self,
        node: Node,
        info: &NodeInfo,
        kind: StreamKind,
        queued: Arc<Queued>,
        peer: Option<&Peer>,
    ) -> Registration {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let status = ClientStatus {
            node_id: info.id.clone(),
            locality: info.locality.clone(),
            network: info.network.clone(),
            kind,
            identity: peer.map(|p| p.identity.clone()),
            connected_at: (self.clock)(),
            types: BTreeMap::new(),
            queued_responses: 0,
            queued_bytes: 0,
        };
        let client = Arc::new(Mutex::new(Connected {
            node,
            status,
            queued,
        }));
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.insert(id, client.clone());
        drop(clients);
        Registration::new(self.clone(), id, client)
    }
}

/// SotW responses as whole messages, each resource copied into its `Any`.
fn whole_messages(
    mut prepared: OutboxStream<Prepared>,
) -> ReceiverStream<Result<DiscoveryResponse, Status>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(response) = prepared.next().await {
            if tx.send(response.map(Prepared::into_message)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Istio's control plane identifier: `{"Component", "ID", "Info": {"version"}}` as JSON.
fn control_plane_id(instance: &str) -> Arc<str> {
    let id = serde_json::json!({
        "Component": "meshfleet",
        "ID": instance,
        "Info": { "version": env!("CARGO_PKG_VERSION") },
    });
    Arc::from(id.to_string())
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request.extensions().get::<Peer>().cloned();
        let responses = whole_messages(self.serve_sotw_for(request.into_inner(), peer));
        Ok(Response::new(Box::pin(responses)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let peer = request.extensions().get::<Peer>().cloned();
        let responses = self.serve_delta_for(request.into_inner(), peer);
        Ok(Response::new(Box::pin(responses)))
    }
}
