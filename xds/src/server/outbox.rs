//! A stream's responses on their way to the transport.
//!
//! ```text
//!  stream::run ──reserve (waits for room)──> compute the next response from the latest
//!              ──send──> [ at most OUTBOX_CAPACITY ] ──OutboxStream──> tonic ──> client
//! ```
//!
//! The stream computes a response only once there is room for it, from the latest snapshot.
//! A client that does not read holds up what is already queued and nothing more: meanwhile
//! newer snapshots replace each other in the cache's watch, as istiod's push queue
//! (`pilot/pkg/xds/pushqueue.go`) merges a pending push for a connection into a newer one
//! instead of queueing it behind. What is queued is counted per stream and in [`Metrics`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use tokio::sync::mpsc;
use tonic::Status;

use crate::server::metrics::Metrics;

/// Responses a stream may have computed that the transport has not taken yet.
pub(super) const OUTBOX_CAPACITY: usize = 1;

/// What one stream has queued, for its status and the metrics.
#[derive(Debug, Default)]
pub(super) struct Queued {
    /// Responses queued.
    pub responses: AtomicUsize,
    /// Their encoded size.
    pub bytes: AtomicUsize,
}

/// One queued response and its encoded size.
pub(super) struct Item<T> {
    response: Result<T, Status>,
    bytes: usize,
    /// When the cache was handed the change that caused this response, if one did.
    changed_at: Option<Instant>,
}

/// The sending half, held by the stream's task.
pub(super) struct Outbox<T> {
    tx: mpsc::Sender<Item<T>>,
    /// Shared with the receiving half and the client's registry entry.
    pub queued: Arc<Queued>,
    /// Totals over every stream.
    metrics: Arc<Metrics>,
}

/// A permit to queue one response.
pub(super) type Permit<'a, T> = mpsc::Permit<'a, Item<T>>;

/// A stream's outbox and the response stream tonic reads from it.
pub(super) fn outbox<T>(metrics: Arc<Metrics>) -> (Outbox<T>, OutboxStream<T>) {
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let queued = Arc::new(Queued::default());
    let stream = OutboxStream {
        rx,
        queued: queued.clone(),
        metrics: metrics.clone(),
    };
    (
        Outbox {
            tx,
            queued,
            metrics,
        },
        stream,
    )
}

impl<T> Outbox<T> {
    /// Waits for room for one response; `None` once the client is gone.
    pub(super) async fn reserve(&self) -> Option<Permit<'_, T>> {
        self.tx.reserve().await.ok()
    }

    /// Queues `response`, of `bytes` encoded bytes, in the room `permit` holds; `changed_at`
    /// is when the change it pushes reached the cache.
    pub(super) fn send(
        &self,
        permit: Permit<'_, T>,
        response: T,
        bytes: usize,
        changed_at: Option<Instant>,
    ) {
        let depth = self.queued.responses.fetch_add(1, Ordering::Relaxed) + 1;
        self.queued.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.metrics.enqueued(bytes, depth);
        permit.send(Item {
            response: Ok(response),
            bytes,
            changed_at,
        });
    }

    /// Ends the stream with `status`, after what is queued.
    pub(super) async fn fail(&self, status: Status) {
        let item = Item {
            response: Err(status),
            bytes: 0,
            changed_at: None,
        };
        let _ = self.tx.send(item).await;
    }
}

/// The receiving half: the response stream handed to tonic.
pub struct OutboxStream<T> {
    rx: mpsc::Receiver<Item<T>>,
    queued: Arc<Queued>,
    metrics: Arc<Metrics>,
}

impl<T> OutboxStream<T> {
    fn taken(&self, item: &Item<T>) {
        if item.response.is_ok() {
            self.queued.responses.fetch_sub(1, Ordering::Relaxed);
            self.queued.bytes.fetch_sub(item.bytes, Ordering::Relaxed);
            self.metrics.dequeued(item.bytes);
        }
    }

    /// The transport took `item`: the change that caused it has reached the client's stream.
    fn delivered(&self, item: &Item<T>) {
        if let Some(at) = item.changed_at {
            self.metrics.converged(at.elapsed());
        }
    }
}

impl<T> Stream for OutboxStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                self.taken(&item);
                self.delivered(&item);
                Poll::Ready(Some(item.response))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for OutboxStream<T> {
    /// What the client left unread is no longer queued.
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(item) = self.rx.try_recv() {
            self.taken(&item);
        }
    }
}
