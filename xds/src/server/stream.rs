//! One ADS stream: a task that reads requests, watches its key's snapshot, and sends what a
//! [`Protocol`] (SotW or Delta) decides. Deciding is synchronous; only this loop does I/O.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use envoy_types::pb::envoy::config::core::v3::{ControlPlane, Node};
use envoy_types::pb::google::protobuf::Any;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::{Code, Status};

use crate::cache::{Snapshot, SnapshotCache};
use crate::model::ClientKey;
use crate::resource::SECRET;
use crate::server::node::{NodeError, NodeInfo};
use crate::server::outbox::{Outbox, Queued};
use crate::server::status::{
    ClientStatus, StreamKind, TypeStatus, client_config, client_config_any,
};
use crate::server::{AdsServer, Peer, Secrets, metrics::short_type};

/// How SotW and Delta differ: their messages, and how they answer requests and new snapshots.
pub(super) trait Protocol: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    const KIND: StreamKind;

    fn node(req: &Self::Request) -> Option<&Node>;
    /// How many resource names `req` carries (subscribed and unsubscribed).
    fn resource_count(req: &Self::Request) -> usize;
    /// Encoded size of a response, for the queue's accounting.
    fn size(response: &Self::Response) -> usize;
    /// Type URL of a response.
    fn type_url(response: &Self::Response) -> &str;
    /// Applies one request (ACK, NACK, subscription) to the stream's state. Returns a response
    /// that does not come from the snapshot (syncz), to be sent before any other.
    fn on_request(
        &mut self,
        ctx: &mut StreamCtx,
        req: Self::Request,
    ) -> Result<Option<Self::Response>, StreamError>;
    /// The next response the state calls for, from `ctx.current`, in
    /// [`crate::resource::SNAPSHOT_TYPES`] order; `None` when the client is up to date.
    fn next_response(&mut self, ctx: &mut StreamCtx) -> Option<Self::Response>;
}

/// Why a stream ended with an error; mapped to a gRPC status in [`StreamError::into_status`].
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("parse node")]
    ParseNode(#[from] NodeError),
    #[error("watch snapshot")]
    WatchSnapshot(#[source] tokio::task::JoinError),
    #[error("snapshot cache closed")]
    CacheClosed,
    /// A request named more resources than [`crate::server::Limits`] allow.
    #[error("a request names {count} resources, more than the {limit} allowed")]
    TooManyResources { count: usize, limit: usize },
    /// The request stream failed: a message that does not decode, one over the size limit, or
    /// the transport.
    #[error("read request")]
    ReadRequest(#[source] Status),
    /// A response came out larger than [`crate::server::Limits`] allow to send.
    #[error("a response of {size} bytes is over the {limit} bytes allowed")]
    ResponseTooLarge { size: usize, limit: usize },
    /// `istio.io/debug/syncz` was asked for where it is not served (the plaintext port, unless
    /// `--xds-plaintext-debug`).
    #[error("authentication required: istio.io/debug/syncz is not served to this client")]
    DebugNotAllowed,
}

impl StreamError {
    /// The one place stream errors become gRPC statuses.
    pub fn into_status(self) -> Status {
        match self {
            Self::ParseNode(e) => Status::invalid_argument(e.to_string()),
            Self::WatchSnapshot(_) | Self::CacheClosed => Status::internal(self.to_string()),
            Self::TooManyResources { .. } | Self::ResponseTooLarge { .. } => {
                Status::resource_exhausted(self.to_string())
            }
            // As istiod answers a debug request from a client without a verified identity.
            Self::DebugNotAllowed => Status::unauthenticated(self.to_string()),
            // tonic reports a message over the limit as OUT_OF_RANGE; gRPC's servers say
            // RESOURCE_EXHAUSTED.
            Self::ReadRequest(status) => match status.code() {
                Code::OutOfRange | Code::ResourceExhausted => {
                    Status::resource_exhausted(format!("request too large: {}", status.message()))
                }
                Code::InvalidArgument | Code::Internal => {
                    Status::invalid_argument(format!("malformed request: {}", status.message()))
                }
                _ => status,
            },
        }
    }
}

/// What a protocol handler may read and use besides its own per-type state.
pub(super) struct StreamCtx {
    /// Metrics, registry, clock and the cache.
    pub server: AdsServer,
    /// The client as its first request described it.
    pub node: NodeInfo,
    /// The cache key the stream watches.
    pub key: ClientKey,
    /// The key's latest snapshot.
    pub current: Arc<Snapshot>,
    /// This client's entry in the server's registry.
    client: Arc<Mutex<Connected>>,
    /// Last nonce sent on the stream: nonces strictly increase per stream.
    nonce: u64,
    /// When the change the last response pushes reached the cache; `None` when it answers a
    /// request.
    pub pushed_change: Option<Instant>,
}

/// A connected client in the server's registry.
#[derive(Debug)]
pub(super) struct Connected {
    /// The node of the client's first request: syncz echoes its id and metadata.
    pub node: Node,
    /// What the admin page shows; updated per type by [`StreamCtx::publish`].
    pub status: ClientStatus,
    /// What the stream has queued for the transport, shown with the status.
    pub queued: Arc<Queued>,
}

impl StreamCtx {
    pub(super) fn next_nonce(&mut self) -> String {
        self.nonce += 1;
        self.nonce.to_string()
    }

    pub(super) fn now(&self) -> SystemTime {
        (self.server.clock)()
    }

    /// Publishes the status of `ty` to the registry.
    pub(super) fn publish(&self, ty: &str, status: &TypeStatus) {
        if let Some(short) = short_type(ty) {
            let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
            client.status.types.insert(short, status.clone());
        }
    }

    /// Names this control plane instance in every response.
    pub(super) fn control_plane(&self) -> ControlPlane {
        ControlPlane {
            identifier: self.server.control_plane_id.to_string(),
        }
    }

    /// One `ClientConfig` per connected client that subscribed to some snapshot type, keyed
    /// by node id (clients that only ask for debug types, like istioctl, are left out).
    pub(super) fn syncz(&self) -> Result<Vec<(String, Any)>, StreamError> {
        if !self.server.syncz {
            return Err(StreamError::DebugNotAllowed);
        }
        self.server.metrics.syncz();
        let clients = self
            .server
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let configs = clients
            .values()
            .filter_map(|c| {
                let c = c.lock().unwrap_or_else(|e| e.into_inner());
                let config = client_config(&c.node, &c.status);
                (!c.status.types.is_empty())
                    .then(|| (c.node.id.clone(), client_config_any(&config)))
            })
            .collect();
        Ok(configs)
    }
}

/// Runs one stream to its end. Errors are sent to the client as a gRPC status.
pub(super) async fn run<P, S>(
    server: AdsServer,
    proto: P,
    input: S,
    out: Outbox<P::Response>,
    peer: Option<Peer>,
) where
    P: Protocol,
    S: Stream<Item = Result<P::Request, Status>> + Send + Unpin + 'static,
{
    if let Err(err) = serve(server, proto, input, &out, peer).await {
        tracing::info!(error = %err, "ads stream failed");
        out.fail(err.into_status()).await;
    }
}

async fn serve<P, S>(
    server: AdsServer,
    mut proto: P,
    mut input: S,
    out: &Outbox<P::Response>,
    peer: Option<Peer>,
) -> Result<(), StreamError>
where
    P: Protocol,
    S: Stream<Item = Result<P::Request, Status>> + Send + Unpin + 'static,
{
    let limit = server.limits().max_resources_per_request;
    let within = |req: &P::Request| match P::resource_count(req) {
        count if count > limit => Err(StreamError::TooManyResources { count, limit }),
        _ => Ok(()),
    };
    let first = match input.next().await {
        Some(Ok(first)) => {
            within(&first)?;
            first
        }
        Some(Err(status)) => return Err(StreamError::ReadRequest(status)),
        None => return Ok(()),
    };
    let node = P::node(&first).cloned().unwrap_or_default();
    let mut info = NodeInfo::parse(&node)?;
    let mut secrets = watch_secrets(&server, peer.as_ref(), &info.id);
    info.secure = secrets.is_some();
    let mut label_keys = server.cache.label_keys();
    let key = info.key(&label_keys.borrow_and_update());
    let mut snapshots = watch_blocking(&server.cache, key.clone()).await?;
    let registration = server.register(node, &info, P::KIND, out.queued.clone(), peer.as_ref());
    let current = with_secrets(&snapshots.borrow_and_update(), secrets.as_mut());
    let mut ctx = StreamCtx {
        server,
        node: info,
        key,
        current,
        client: registration.client.clone(),
        nonce: 0,
        pushed_change: None,
    };
    tracing::info!(node = %ctx.node.id, kind = ?P::KIND, "ads stream opened");
    // Answers that do not come from the snapshot (syncz), sent before the next push.
    let mut answers = VecDeque::new();
    answers.extend(proto.on_request(&mut ctx, first)?);
    // The state may call for a response: computed once there is room for it.
    let mut dirty = true;
    loop {
        tokio::select! {
            biased;
            // Requests first: an ACK or a subscription change must be applied before the next
            // response is computed, and a fast-changing mesh must not starve the client's
            // requests. Not while answers wait: a client that does not read is not read.
            req = input.next(), if answers.is_empty() => match req {
                Some(Ok(req)) => {
                    within(&req)?;
                    answers.extend(proto.on_request(&mut ctx, req)?);
                    dirty = true;
                }
                Some(Err(status)) => {
                    tracing::debug!(node = %ctx.node.id, %status, "ads stream request failed");
                    return Err(StreamError::ReadRequest(status));
                }
                None => return Ok(()),
            },
            // Computed only when there is room, from the latest snapshot: nothing outdated
            // waits in the queue.
            permit = out.reserve(), if dirty || !answers.is_empty() => {
                let Some(permit) = permit else {
                    return Ok(());
                };
                ctx.pushed_change = None;
                match answers.pop_front().or_else(|| proto.next_response(&mut ctx)) {
                    Some(response) => {
                        let size = within_size(&ctx, P::type_url(&response), P::size(&response))?;
                        out.send(permit, response, size, ctx.pushed_change);
                    }
                    None => dirty = false,
                }
            }
            res = snapshots.changed() => {
                res.map_err(|_| StreamError::CacheClosed)?;
                ctx.current = with_secrets(&snapshots.borrow_and_update(), secrets.as_mut());
                dirty = true;
            }
            () = renewed(&mut secrets) => {
                ctx.current = with_secrets(&snapshots.borrow(), secrets.as_mut());
                dirty = true;
            }
            res = label_keys.changed() => {
                res.map_err(|_| StreamError::CacheClosed)?;
                let key = ctx.node.key(&label_keys.borrow_and_update());
                rekey(&mut ctx, &mut snapshots, key).await?;
                ctx.current = with_secrets(&ctx.current, secrets.as_mut());
                dirty = true;
            }
        }
    }
}

/// The secrets of a verified client, if the server has a source for them. A client that
/// cannot have any (its cluster has no CA) is served none, and the reason is logged.
fn watch_secrets(
    server: &AdsServer,
    peer: Option<&Peer>,
    node: &str,
) -> Option<watch::Receiver<Secrets>> {
    let (peer, source) = (peer?, server.secrets.as_ref()?);
    match source.watch(peer) {
        Ok(rx) => Some(rx),
        Err(reason) => {
            tracing::warn!(node, identity = %peer.identity, %reason, "no secrets for this client");
            None
        }
    }
}

/// `base` with the client's own secrets as its SDS resources (none without a verified
/// identity: a key's snapshot holds no secrets).
fn with_secrets(
    base: &Arc<Snapshot>,
    secrets: Option<&mut watch::Receiver<Secrets>>,
) -> Arc<Snapshot> {
    match secrets {
        Some(rx) => Arc::new(base.overlay(SECRET, &rx.borrow_and_update())),
        None => base.clone(),
    }
}

/// Resolves when the client's secrets were renewed; never if it has none, or once their
/// source is gone (the last ones stay served).
async fn renewed(secrets: &mut Option<watch::Receiver<Secrets>>) {
    if let Some(rx) = secrets
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// `size` if a response of `ty` that big may be sent; else the push is counted as failed.
fn within_size(ctx: &StreamCtx, ty: &str, size: usize) -> Result<usize, StreamError> {
    let limit = ctx.server.limits().max_response_bytes;
    if size > limit {
        ctx.server.metrics.send_error(ty);
        return Err(StreamError::ResponseTooLarge { size, limit });
    }
    Ok(size)
}

/// Moves the stream to `key` (the mesh's failover label keys changed); what differs is pushed
/// next.
async fn rekey(
    ctx: &mut StreamCtx,
    snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    key: ClientKey,
) -> Result<(), StreamError> {
    if key == ctx.key {
        return Ok(());
    }
    *snapshots = watch_blocking(&ctx.server.cache, key.clone()).await?;
    ctx.key = key;
    ctx.current = snapshots.borrow_and_update().clone();
    Ok(())
}

/// Watches `key`; the first watcher of a key translates the whole mesh, so off the runtime.
async fn watch_blocking(
    cache: &SnapshotCache,
    key: ClientKey,
) -> Result<watch::Receiver<Arc<Snapshot>>, StreamError> {
    let cache = cache.clone();
    tokio::task::spawn_blocking(move || cache.watch(&key))
        .await
        .map_err(StreamError::WatchSnapshot)
}

/// Removes the client from the registry when its stream ends, however it ends.
pub(super) struct Registration {
    /// The server whose registry and metrics hold the client.
    server: AdsServer,
    /// The stream's key in the registry.
    id: u64,
    /// The registry entry, which the stream updates as it sends and is acknowledged.
    pub client: Arc<Mutex<Connected>>,
}

impl Registration {
    pub(super) fn new(server: AdsServer, id: u64, client: Arc<Mutex<Connected>>) -> Self {
        server.metrics.stream_opened();
        Self { server, id, client }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut clients = self
            .server
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        clients.remove(&self.id);
        self.server.metrics.stream_closed();
        tracing::info!(stream = self.id, "ads stream closed");
    }
}
