//! Sinks: where rendered manifests go. Every sink makes a member cluster hold exactly what
//! propagation wants there, through one async trait, [`ApplyManifests`]: the directory sink
//! ([`DirSink`]) writes files; a Kubernetes sink (server-side apply) implements the same trait.
//!
//! ```text
//!  Plan (pure) ──Desired──> apply::apply ──per cluster──> dyn ApplyManifests ──> files | API calls
//!                                                         └─ SinkError: the operation, where, why
//! ```
//!
//! # Errors
//! A [`SinkError`] names the operation that failed (write, remove, read back), the place
//! (a file path, an API resource path) and the cause, whatever the sink: a file system's
//! `io::Error` or an API server's answer travel as the `source`.

mod dir;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use meshfleet_propagation::manifest::{Keep, ManifestKey, Manifests};

pub use dir::{CLUSTER_SCOPED_DIR, DirSink};

/// The cause of a failed sink operation: an `io::Error` for files, a client's error for an API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a sink's operations return: boxed, so that sinks can be chosen at run time
/// (`dyn ApplyManifests`).
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SinkError>> + Send + 'a>>;

/// What an apply did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A cluster, namespace, kind or name that cannot address anything in this sink (`..`, a
    /// `/`, empty).
    #[error("{what} {name:?} cannot be used as a path component")]
    InvalidName { what: &'static str, name: String },
    /// Two manifests would land in one place: in the directory sink, kinds that differ only in
    /// API group (Istio's and the Gateway API's `Gateway`). The first (in key order) keeps it.
    #[error("{key} would be written to {location}, which holds {owner}")]
    PlaceTaken {
        location: String,
        key: String,
        owner: String,
    },
    /// Writing (creating or updating) one manifest failed.
    #[error("writing {location}")]
    WriteManifest {
        location: String,
        #[source]
        source: BoxError,
    },
    /// Removing one manifest failed.
    #[error("removing {location}")]
    RemoveManifest {
        location: String,
        #[source]
        source: BoxError,
    },
    /// This replica does not hold the Lease: another one writes. Nothing was written.
    #[error("this replica does not hold the leader Lease; another one writes")]
    Standby,
    /// Reading back what the sink holds failed.
    #[error("reading {location}")]
    ReadState {
        location: String,
        #[source]
        source: BoxError,
    },
}

/// Makes member clusters hold what propagation wants there.
pub trait ApplyManifests: Send {
    /// Makes `cluster` hold `desired`: creates and updates what differs, removes what this sink
    /// put there before and is neither desired nor in `keep`.
    ///
    /// # Errors
    /// The first manifest that could not be written or removed; the others are still applied.
    fn apply<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
    ) -> SinkFuture<'a, Applied>;

    /// Like [`ApplyManifests::apply`], when only the manifests under `keys` may have changed
    /// since the last apply to `cluster`: a sink may look at those alone. The default applies
    /// everything.
    ///
    /// # Errors
    /// As [`ApplyManifests::apply`].
    fn apply_keys<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
        keys: &'a BTreeSet<ManifestKey>,
    ) -> SinkFuture<'a, Applied> {
        let _ = keys;
        self.apply(cluster, desired, keep)
    }

    /// The clusters this sink holds manifests in (to empty those no longer in the fleet).
    fn clusters(&mut self) -> SinkFuture<'_, Vec<String>>;
}
