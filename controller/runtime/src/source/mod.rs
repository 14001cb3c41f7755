//! The config-directory source: every `*.yaml` / `*.yml` below a directory, multi-document, read
//! into the [`Index`] one file at a time, then watched.
//!
//! ```text
//!  notify (inotify, recursive) ──events──> debounce 100 ms ──> changed paths ──> read, hash
//!  or polling every 2 s ──────────────────> rescan ───────────┘     │ bytes unchanged: skip
//!  deadlines (emptied files, kept clusters), root check every 2 s ──┘ └─> parse ──> Index::reset
//!                                                                          └─> changed.send_modify(+1)
//! ```
//!
//! Hidden files and directories (a leading `.`) are skipped: editors' swap files, and the
//! `..data` / `..<timestamp>` directories behind a mounted ConfigMap, whose visible files are
//! symlinks into them (a change there rescans the directory).
//!
//! What an accident must not do:
//! - **Block or balloon.** Only regular files are read, never waiting on one (a FIFO), and at
//!   most `--max-file-bytes` of each; each real directory is walked once (`read`, `walk`).
//! - **Empty the fleet.** A directory that cannot be read (moved away, unmounted) keeps what it
//!   held in effect, says so as a problem under `./`, sets `meshfleet_config_source_up` to 0
//!   and makes `/readyz` fail until it is back. A subdirectory that cannot be listed keeps its
//!   files.
//! - **Move workloads.** A file that becomes empty (a shell's `>` truncates before it writes)
//!   keeps what it defined until it has stayed empty for `--empty-file-grace`. A Cluster that
//!   disappears from its file is kept, as unreachable (`Ready=Unknown`, reason
//!   `RemovedFromConfig`), for `--removed-cluster-grace`: workloads tolerate it as they
//!   tolerate any unreachable cluster, and nothing moves if it comes back in time.

mod read;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{mpsc, watch};

use meshfleet_api::yaml::Document;
use meshfleet_api::{Cluster, Condition, Object, ObjectKey};
use meshfleet_index::{Contents, Index, Origin};
use meshfleet_model::problem::{Problem, Source};

pub use meshfleet_api::yaml::parse_file;

use crate::SourceLimits;

/// Quiet time after a file-system event before the changed files are read: an editor's save is
/// several events (write a temp file, rename it over the old one).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A steady stream of events is read at least this often.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often the directory is rescanned when file-system events are not available, and how
/// often a watched root is checked (it may be moved away, unmounted, or mounted anew).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// The origin under which problems of the directory itself (not of one file) are kept.
const DIRECTORY: &str = "./";
/// Reason of the Ready condition of a Cluster kept after it left its file.
pub const REASON_REMOVED: &str = "RemovedFromConfig";

/// A directory of YAML manifests. See the module docs.
#[derive(Debug)]
pub struct ConfigDir {
    /// The directory, as given.
    root: PathBuf,
    limits: SourceLimits,
    /// What this source last applied of each file, by path relative to `root`.
    files: BTreeMap<String, FileState>,
    /// Clusters no longer defined by their file, kept as unreachable until their deadline.
    kept: BTreeMap<ObjectKey, KeptCluster>,
    /// Files whose kept clusters are in the index (under [`Origin::Kept`]).
    kept_origins: BTreeSet<String>,
    /// Problems of the directory itself (cannot be read or listed, loops, names), by the
    /// directory they are about; kept in the index under [`DIRECTORY`].
    walk_problems: BTreeMap<String, Vec<Problem>>,
    /// 1 while the root can be read, 0 when it cannot (`meshfleet_config_source_up`).
    up: Gauge,
    /// Files parsed so far; shared, so that it can be read while `watch` runs.
    parsed: Arc<AtomicU64>,
    /// When set, `watch` rescans at this interval instead of following file-system events.
    poll_every: Option<Duration>,
    /// `root` as the file-system events name it (canonical), once `watch` has started.
    events_root: Option<PathBuf>,
}

/// What was last applied of one file.
#[derive(Debug, Default)]
struct FileState {
    /// Hash of its bytes (`None`: it could not be read). Bytes that did not change are not
    /// parsed again.
    hash: Option<u64>,
    /// How many objects it defines.
    objects: usize,
    /// The Clusters it defines.
    clusters: BTreeMap<ObjectKey, Arc<Cluster>>,
    /// Since when it has been empty while it still had objects in effect.
    emptied: Option<SystemTime>,
}

/// A Cluster kept after it left its file.
#[derive(Debug)]
struct KeptCluster {
    /// The file it was defined in.
    file: String,
    /// Until when it is kept.
    until: SystemTime,
    /// The cluster as it was, marked unreachable since it left.
    object: Object,
}

/// What reading one file means for the index.
#[derive(Debug)]
enum Update {
    Apply(String, Contents),
    Remove(String),
}

/// How a watch of the root ended.
enum Ended {
    /// Nobody listens any more.
    Closed,
    /// The root is another directory now (mounted anew, moved back): watch it afresh.
    Rewatch,
}

impl ConfigDir {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            limits: SourceLimits::default(),
            files: BTreeMap::new(),
            kept: BTreeMap::new(),
            kept_origins: BTreeSet::new(),
            walk_problems: BTreeMap::new(),
            up: Gauge::default(),
            parsed: Arc::new(AtomicU64::new(0)),
            poll_every: None,
            events_root: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets the size cap and the grace periods (see [`SourceLimits`]).
    pub fn with_limits(mut self, limits: SourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reports whether the root can be read in `up` (1 or 0), e.g. a registered metric.
    pub fn reporting_to(mut self, up: Gauge) -> Self {
        up.set(self.up.get());
        self.up = up;
        self
    }

    /// Makes [`ConfigDir::watch`] rescan every `every` instead of using file-system events (for
    /// file systems without them, e.g. some network mounts).
    pub fn polling(mut self, every: Duration) -> Self {
        self.poll_every = Some(every);
        self
    }

    /// The number of files parsed so far (a file whose bytes did not change is not parsed again).
    /// Clone it before [`ConfigDir::watch`] to follow it while the watch runs.
    pub fn parse_count(&self) -> Arc<AtomicU64> {
        self.parsed.clone()
    }

    /// Reads every YAML file below the root (in path order) into `index`, and removes from it the
    /// files this source loaded before that are gone. Returns whether the index changed.
    ///
    /// # Errors
    /// None: a file or document that does not parse is a problem in [`Index::problems`], and the
    /// rest is loaded. A root that cannot be read is a problem too, and keeps what was loaded
    /// from it before.
    pub fn load(&mut self, index: &mut Index) -> bool {
        let now = SystemTime::now();
        let updates = self.updates(Batch::everything(), now);
        self.apply(updates, index, now)
    }

    /// Follows changes below the root until `changed` has no receivers: re-reads only the files
    /// that changed (added, modified, removed or renamed, including by an editor's
    /// write-to-temp-and-rename), applies them to `index`, and bumps `changed` (+1) only when
    /// the index actually changed.
    ///
    /// Uses the platform's file-system events (recursive), debounced by 100 ms. If they cannot be
    /// started (or [`ConfigDir::polling`] was asked for), it logs that and rescans the directory
    /// every [`POLL_INTERVAL`] instead, parsing only files whose bytes changed.
    ///
    /// # Caveats
    /// Changes made between [`ConfigDir::load`] and the start of the watch are picked up by one
    /// rescan when the watch starts. Files are read on the blocking pool; the index lock is held
    /// only while the updates are applied.
    pub async fn watch(mut self, index: Arc<Mutex<Index>>, changed: watch::Sender<u64>) {
        if let Some(every) = self.poll_every {
            return self.poll(every, index, changed).await;
        }
        loop {
            let events_root = self
                .root
                .canonicalize()
                .unwrap_or_else(|_| self.root.clone());
            let (tx, rx) = mpsc::unbounded_channel();
            let watcher = notify::recommended_watcher(move |event| {
                // The receiver is gone only when the watch is over.
                let _ = tx.send(event);
            })
            .and_then(|mut watcher| {
                watcher.watch(&events_root, RecursiveMode::Recursive)?;
                Ok(watcher)
            });
            self.events_root = Some(events_root);
            let watcher = match watcher {
                Ok(watcher) => watcher,
                Err(error) if self.root.is_dir() => {
                    tracing::warn!(%error, root = %self.root.display(), every = ?POLL_INTERVAL,
                        "cannot watch the config directory for changes; polling it instead");
                    return self.poll(POLL_INTERVAL, index, changed).await;
                }
                Err(_) => {
                    // The root is not there (yet again): say so, and try again shortly.
                    self = self.sync(Batch::everything(), &index, &changed).await;
                    if changed.is_closed() {
                        return;
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                }
            };
            let ended;
            (self, ended) = self.follow(watcher, rx, &index, &changed).await;
            match ended {
                Ended::Closed => return,
                Ended::Rewatch => {
                    tracing::info!(root = %self.root.display(), "the config directory changed under its name; watching it afresh");
                }
            }
        }
    }

    async fn follow(
        mut self,
        _watcher: notify::RecommendedWatcher,
        mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        index: &Arc<Mutex<Index>>,
        changed: &watch::Sender<u64>,
    ) -> (Self, Ended) {
        tracing::info!(root = %self.root.display(), "watching the config directory");
        let watched = root_identity(&self.root);
        self = self.sync(Batch::everything(), index, changed).await;
        let mut root_check = tokio::time::Instant::now() + POLL_INTERVAL;
        loop {
            let wake = self
                .next_deadline()
                .map_or(root_check, |at| root_check.min(at));
            let first = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => Some(event),
                    None => return (self, Ended::Closed),
                },
                () = tokio::time::sleep_until(wake) => None,
            };
            if changed.is_closed() {
                return (self, Ended::Closed);
            }
            let mut batch = Batch::default();
            if let Some(first) = first {
                batch.add(first);
                let deadline = tokio::time::Instant::now() + MAX_DELAY;
                loop {
                    let wait = DEBOUNCE
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    match tokio::time::timeout(wait, events.recv()).await {
                        Ok(Some(event)) => batch.add(event),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            if tokio::time::Instant::now() >= root_check {
                root_check = tokio::time::Instant::now() + POLL_INTERVAL;
                let now = root_identity(&self.root);
                if now.is_some() && now != watched {
                    return (self, Ended::Rewatch);
                }
                if now.is_none() {
                    batch.everything = true;
                }
            }
            // Deadlines are looked at by every sync, so an empty batch is worth one when one
            // has passed.
            let due = self
                .next_deadline()
                .is_some_and(|at| at <= tokio::time::Instant::now());
            if !batch.is_empty() || due {
                self = self.sync(batch, index, changed).await;
            }
        }
    }

    async fn poll(
        mut self,
        every: Duration,
        index: Arc<Mutex<Index>>,
        changed: watch::Sender<u64>,
    ) {
        tracing::info!(root = %self.root.display(), ?every, "polling the config directory");
        loop {
            self = self.sync(Batch::everything(), &index, &changed).await;
            tokio::time::sleep(every).await;
            if changed.is_closed() {
                return;
            }
        }
    }

    /// Reads what `batch` names (on the blocking pool), applies it, and bumps `changed` if the
    /// index changed.
    async fn sync(
        self,
        batch: Batch,
        index: &Arc<Mutex<Index>>,
        changed: &watch::Sender<u64>,
    ) -> Self {
        let index = index.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut dir = self;
            let now = SystemTime::now();
            let updates = dir.updates(batch, now);
            let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
            let did_change = dir.apply(updates, &mut index, now);
            (dir, did_change)
        });
        let (dir, did_change) = match task.await {
            Ok(done) => done,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        if did_change {
            changed.send_modify(|version| *version = version.wrapping_add(1));
        }
        dir
    }

    /// The earliest time something held must be looked at again: an emptied file's grace, a
    /// kept cluster's end.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        let files = self
            .files
            .values()
            .filter_map(|f| f.emptied)
            .map(|since| since + self.limits.empty_file_grace);
        let clusters = self.kept.values().map(|k| k.until);
        let at = files.chain(clusters).min()?;
        let from_now = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(tokio::time::Instant::now() + from_now)
    }

    fn updates(&mut self, batch: Batch, now: SystemTime) -> Vec<Update> {
        // Nothing below a root that cannot be read is gone: it is out of reach.
        if let Err(error) = std::fs::read_dir(&self.root) {
            self.root_lost(&error);
            return Vec::new();
        }
        if self.up.get() != 1 {
            if self.walk_problems.contains_key(DIRECTORY) {
                tracing::info!(root = %self.root.display(), "the config directory can be read again");
            }
            self.up.set(1);
        }
        let targets: Vec<(Target, &PathBuf)> =
            batch.paths.iter().map(|p| (self.target(p), p)).collect();
        // A directory that changed is read as part of the whole tree: only a walk from the
        // root knows which real directories it has seen, so a second link to one (`ln -s .
        // loop`) is not read again under another name.
        let tree = batch.everything || targets.iter().any(|(t, _)| matches!(t, Target::Tree));
        let mut updates = Vec::new();
        if tree {
            updates = self.rescan(now);
        } else {
            for (target, path) in targets {
                if let Target::File(rel) = target {
                    updates.extend(self.read(&rel, path, now, false));
                }
            }
        }
        // An emptied file whose grace has passed is read again, whatever its bytes.
        let due: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| {
                f.emptied
                    .is_some_and(|since| since + self.limits.empty_file_grace <= now)
            })
            .map(|(rel, _)| rel.clone())
            .collect();
        for rel in due {
            let path = self.root.join(&rel);
            updates.extend(self.read(&rel, &path, now, true));
        }
        updates
    }

    /// The root cannot be read: everything stays as it is, and that is said.
    fn root_lost(&mut self, error: &std::io::Error) {
        let message = format!(
            "cannot read the config directory {}: {error}; everything read from it stays in effect until it is back",
            self.root.display()
        );
        let problem = Problem::new(Source::file(DIRECTORY), message);
        if self.walk_problems.get(DIRECTORY) != Some(&vec![problem.clone()]) {
            tracing::error!(%problem, "config directory unreadable");
        }
        self.walk_problems.clear();
        self.walk_problems
            .insert(DIRECTORY.to_owned(), vec![problem]);
        self.up.set(0);
    }

    /// What an event on `path` asks for.
    fn target(&self, path: &Path) -> Target {
        let root = self.events_root.as_deref().unwrap_or(&self.root);
        let stripped = path
            .strip_prefix(root)
            .or_else(|_| path.strip_prefix(&self.root));
        let Some(rel) = stripped.ok().and_then(relative_name) else {
            return Target::Ignore;
        };
        if rel.is_empty() || rel.split('/').any(|c| c.starts_with("..")) {
            // The root itself, or a ConfigMap's `..data` switching to a new version.
            return Target::Tree;
        }
        if rel.split('/').any(|c| c.starts_with('.')) {
            return Target::Ignore;
        }
        let prefix = format!("{rel}/");
        // A directory, or one that is gone: one with files, or one the walk said something of
        // (a symlink loop removed).
        let known_dir = || {
            self.files.keys().any(|f| f.starts_with(&prefix))
                || self.walk_problems.keys().any(|d| d.starts_with(&prefix))
        };
        if path.is_dir() || (!path.exists() && known_dir()) {
            return Target::Tree;
        }
        if walk::is_yaml(path) {
            Target::File(rel)
        } else {
            Target::Ignore
        }
    }

    /// Reads every YAML file of the tree, and forgets the known ones that are gone. Files below
    /// a directory that cannot be listed are kept as they were.
    fn rescan(&mut self, now: SystemTime) -> Vec<Update> {
        let listing = match walk::list(&self.root) {
            Ok(listing) => listing,
            Err(error) => {
                self.root_lost(&error);
                return Vec::new();
            }
        };
        // This walk's problems replace those found before.
        self.walk_problems.clear();
        for problem in &listing.problems {
            let Source::File { path, .. } = &problem.source else {
                continue;
            };
            self.walk_problems
                .entry(path.clone())
                .or_default()
                .push(problem.clone());
        }
        let mut updates: Vec<Update> = listing
            .files
            .iter()
            .filter_map(|(rel, path)| self.read(rel, path, now, false))
            .collect();
        let unlisted: Vec<String> = listing.unlisted.iter().map(|d| format!("{d}/")).collect();
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|f| {
                listing.files.binary_search_by(|(r, _)| r.cmp(f)).is_err()
                    && !unlisted.iter().any(|d| f.starts_with(d.as_str()))
            })
            .cloned()
            .collect();
        updates.extend(gone.iter().filter_map(|f| self.forget(f)));
        updates
    }

    /// Reads one file; `None` when its bytes are the ones last applied (unless `force`).
    fn read(&mut self, rel: &str, path: &Path, now: SystemTime, force: bool) -> Option<Update> {
        let bytes = match read::read_regular(path, self.limits.max_file_bytes) {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => return self.forget(rel),
            Err(error) => {
                let state = self.files.entry(rel.to_owned()).or_default();
                state.hash = None;
                state.emptied = None;
                let problem = Problem::new(Source::file(rel), error.to_string());
                let contents = Contents {
                    problems: vec![problem],
                    unreadable: true,
                    ..Default::default()
                };
                return Some(Update::Apply(rel.to_owned(), contents));
            }
        };
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        let state = self.files.entry(rel.to_owned()).or_default();
        if state.hash.replace(hash) == Some(hash) && !force {
            return None;
        }
        self.parsed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(file = rel, "reading config file");
        let contents = match std::str::from_utf8(&bytes) {
            Ok(text) => parse_file(rel, text),
            Err(error) => Contents {
                problems: vec![Problem::new(
                    Source::file(rel),
                    format!("not UTF-8: {error}"),
                )],
                unreadable: true,
                ..Default::default()
            },
        };
        drop(bytes);
        let emptied = contents.documents.is_empty()
            && contents.rejected.is_empty()
            && contents.problems.is_empty()
            && !contents.unreadable;
        let grace = self.limits.empty_file_grace;
        if emptied && state.objects > 0 && !grace.is_zero() {
            let since = *state.emptied.get_or_insert(now);
            if now < since + grace {
                let problem = Problem::new(
                    Source::file(rel),
                    format!(
                        "is empty; what it defines is deleted once it has stayed empty for {}",
                        humantime::format_duration(grace)
                    ),
                );
                let contents = Contents {
                    problems: vec![problem],
                    unreadable: true,
                    ..Default::default()
                };
                return Some(Update::Apply(rel.to_owned(), contents));
            }
        }
        state.emptied = None;
        if !contents.unreadable {
            state.objects = contents.documents.len() + contents.rejected.len();
        }
        Some(Update::Apply(rel.to_owned(), contents))
    }

    fn forget(&mut self, rel: &str) -> Option<Update> {
        self.files.get(rel)?;
        tracing::debug!(file = rel, "config file removed");
        Some(Update::Remove(rel.to_owned()))
    }

    /// Applies `updates` to `index`, then what this source keeps on its own: the Clusters that
    /// left their files, and the directory's problems. Returns whether the index changed.
    fn apply(&mut self, updates: Vec<Update>, index: &mut Index, now: SystemTime) -> bool {
        let mut changed = false;
        for update in updates {
            changed |= match update {
                Update::Apply(file, contents) => {
                    self.follow_clusters(&file, Some(&contents), now);
                    index.reset(&Origin::file(&file), contents)
                }
                Update::Remove(file) => {
                    self.follow_clusters(&file, None, now);
                    self.files.remove(&file);
                    index.forget(&Origin::file(&file))
                }
            };
        }
        changed |= self.publish_kept(index, now);
        changed |= self.publish_walk_problems(index);
        changed
    }

    /// Notes which Clusters `file` defines now (`None`: the file is gone): those it defined
    /// before and no longer does are kept, as unreachable; those it defines again are not.
    fn follow_clusters(&mut self, file: &str, contents: Option<&Contents>, now: SystemTime) {
        let Some(state) = self.files.get_mut(file) else {
            return;
        };
        let mut now_defined = BTreeMap::new();
        if let Some(contents) = contents {
            if contents.unreadable {
                // The index keeps all the file held: so does this.
                return;
            }
            for document in &contents.documents {
                if let Object::Cluster(cluster) = &document.object {
                    now_defined.insert(document.object.key(), cluster.clone());
                }
            }
            // A refused edit keeps the cluster's last valid version in effect.
            for (_, key) in &contents.rejected {
                if let Some(cluster) = state.clusters.get(key) {
                    now_defined.insert(key.clone(), cluster.clone());
                }
            }
        }
        let before = std::mem::replace(&mut state.clusters, now_defined);
        for key in state.clusters.keys() {
            self.kept.remove(key);
        }
        let grace = self.limits.removed_cluster_grace;
        for (key, cluster) in before {
            if state.clusters.contains_key(&key) || grace.is_zero() {
                continue;
            }
            let until = now + grace;
            let object = Object::Cluster(Arc::new(unreachable_since(&cluster, file, now, until)));
            tracing::warn!(cluster = cluster.name(), file, until = %humantime::format_rfc3339_seconds(until),
                "cluster removed from its file; kept as unreachable until then");
            self.kept.insert(
                key,
                KeptCluster {
                    file: file.to_owned(),
                    until,
                    object,
                },
            );
        }
    }

    /// Puts the kept Clusters in the index, each under the file it left, dropping those whose
    /// time is up and those another origin defines now (moved to another file).
    fn publish_kept(&mut self, index: &mut Index, now: SystemTime) -> bool {
        self.kept.retain(|key, kept| {
            let elsewhere = index
                .definers(key)
                .any(|origin| !matches!(origin, Origin::Kept(_)));
            if kept.until <= now && !elsewhere {
                tracing::info!(%key, "removed cluster's grace period is over; it is gone");
            }
            kept.until > now && !elsewhere
        });
        let mut by_file: BTreeMap<&str, Vec<Document>> = BTreeMap::new();
        for kept in self.kept.values() {
            let documents = by_file.entry(kept.file.as_str()).or_default();
            documents.push(Document {
                index: documents.len(),
                object: kept.object.clone(),
            });
        }
        let mut changed = false;
        for file in &self.kept_origins {
            if !by_file.contains_key(file.as_str()) {
                changed |= index.forget(&Origin::kept(file));
            }
        }
        let origins = by_file.keys().map(|f| (*f).to_owned()).collect();
        for (file, documents) in by_file {
            let contents = Contents {
                documents,
                ..Contents::default()
            };
            changed |= index.reset(&Origin::kept(file), contents);
        }
        self.kept_origins = origins;
        changed
    }

    fn publish_walk_problems(&mut self, index: &mut Index) -> bool {
        let origin = Origin::file(DIRECTORY);
        if self.walk_problems.is_empty() {
            return index.forget(&origin);
        }
        let contents = Contents {
            problems: self.walk_problems.values().flatten().cloned().collect(),
            ..Contents::default()
        };
        index.reset(&origin, contents)
    }
}

/// `cluster`, marked unreachable since `since` because it left `file`.
fn unreachable_since(
    cluster: &Cluster,
    file: &str,
    since: SystemTime,
    until: SystemTime,
) -> Cluster {
    let mut cluster = cluster.clone();
    cluster.status.conditions.retain(|c| c.type_ != "Ready");
    cluster.status.conditions.push(Condition {
        type_: "Ready".to_owned(),
        status: "Unknown".to_owned(),
        reason: Some(REASON_REMOVED.to_owned()),
        message: Some(format!(
            "removed from {file}; kept as unreachable until {}, then gone",
            humantime::format_rfc3339_seconds(until)
        )),
        last_transition_time: Some(humantime::format_rfc3339_seconds(since).to_string()),
    });
    cluster
}

/// The root's (device, inode), when it is a directory that can be read.
fn root_identity(root: &Path) -> Option<(u64, u64)> {
    std::fs::read_dir(root).ok()?;
    let metadata = std::fs::metadata(root).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

enum Target {
    Ignore,
    File(String),
    /// A directory changed: the tree is read again.
    Tree,
}

/// File-system events collected during one debounce window.
#[derive(Debug, Default)]
struct Batch {
    paths: Vec<PathBuf>,
    /// Events were lost or unclear: rescan the whole directory.
    everything: bool,
}

impl Batch {
    fn everything() -> Self {
        Self {
            paths: Vec::new(),
            everything: true,
        }
    }

    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.everything
    }

    fn add(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "config directory watch error; rescanning");
                self.everything = true;
                return;
            }
        };
        if event.need_rescan() {
            self.everything = true;
        }
        match event.kind {
            // Opening and reading (ours included) change nothing; a closed write ends one.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return,
            _ => {}
        }
        for path in event.paths {
            if !self.paths.contains(&path) {
                self.paths.push(path);
            }
        }
    }
}

/// `a/b.yaml` from a relative path; `None` if it leaves the root.
fn relative_name(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests;
