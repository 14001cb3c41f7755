//! The config-directory source: every `*.yaml` / `*.yml` below a directory, multi-document, read
//! into the [`Index`] one file at a time, then watched.
//!
//! ```text
//!  notify (inotify, recursive) ──events──> debounce 100 ms ──> changed paths ──> read, hash
//!  or polling every 2 s ──────────────────> rescan ───────────┘     │ bytes unchanged: skip
//!                                                                  └─> parse ──> Index::reset
//!                                                                          └─> changed.send_modify(+1)
//! ```
//!
//! Hidden files and directories (a leading `.`) are skipped: editors' swap files, and the
//! `..data` / `..<timestamp>` directories behind a mounted ConfigMap, whose visible files are
//! symlinks into them (a change there rescans the directory).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use meshfleet_index::{Contents, Index, Origin};
use meshfleet_model::problem::{Problem, Source};

pub use meshfleet_api::yaml::parse_file;

/// Quiet time after a file-system event before the changed files are read: an editor's save is
/// several events (write a temp file, rename it over the old one).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A steady stream of events is read at least this often.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often the directory is rescanned when file-system events are not available.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Symlinked directories can form loops; nobody nests configuration deeper than this.
const MAX_DEPTH: usize = 32;

/// A directory of YAML manifests. See the module docs.
#[derive(Debug)]
pub struct ConfigDir {
    /// The directory, as given.
    root: PathBuf,
    /// Hash of each file's bytes as last applied, by path relative to `root` (`None`: it could
    /// not be read). Bytes that did not change are not parsed again.
    files: BTreeMap<String, Option<u64>>,
    /// Files parsed so far; shared, so that it can be read while `watch` runs.
    parsed: Arc<AtomicU64>,
    /// When set, `watch` rescans at this interval instead of following file-system events.
    poll_every: Option<Duration>,
    /// `root` as the file-system events name it (canonical), once `watch` has started.
    events_root: Option<PathBuf>,
}

/// What reading one file means for the index.
#[derive(Debug)]
enum Update {
    Apply(String, Contents),
    Remove(String),
}

impl ConfigDir {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            files: BTreeMap::new(),
            parsed: Arc::new(AtomicU64::new(0)),
            poll_every: None,
            events_root: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
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
    /// rest is loaded. A root that cannot be read is logged and loads nothing.
    pub fn load(&mut self, index: &mut Index) -> bool {
        if !self.root.is_dir() {
            tracing::warn!(root = %self.root.display(), "the config directory does not exist or is not a directory");
        }
        let updates = self.rescan("");
        apply(updates, index)
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
        match watcher {
            Ok(watcher) => self.follow(watcher, rx, index, changed).await,
            Err(error) => {
                tracing::warn!(%error, root = %self.root.display(), every = ?POLL_INTERVAL,
                    "cannot watch the config directory for changes; polling it instead");
                self.poll(POLL_INTERVAL, index, changed).await;
            }
        }
    }

    async fn follow(
        mut self,
        _watcher: notify::RecommendedWatcher,
        mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        index: Arc<Mutex<Index>>,
        changed: watch::Sender<u64>,
    ) {
        tracing::info!(root = %self.root.display(), "watching the config directory");
        self = self.sync(Batch::everything(), &index, &changed).await;
        while let Some(first) = events.recv().await {
            let mut batch = Batch::default();
            batch.add(first);
            let deadline = tokio::time::Instant::now() + MAX_DELAY;
            loop {
                let wait =
                    DEBOUNCE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                match tokio::time::timeout(wait, events.recv()).await {
                    Ok(Some(event)) => batch.add(event),
                    Ok(None) | Err(_) => break,
                }
            }
            if changed.is_closed() {
                return;
            }
            if !batch.is_empty() {
                self = self.sync(batch, &index, &changed).await;
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
            let updates = dir.updates(batch);
            let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
            let did_change = apply(updates, &mut index);
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

    fn updates(&mut self, batch: Batch) -> Vec<Update> {
        if batch.everything {
            return self.rescan("");
        }
        let mut updates = Vec::new();
        for path in &batch.paths {
            match self.target(path) {
                Target::Ignore => {}
                Target::File(rel) => updates.extend(self.read(&rel, path)),
                Target::Tree(rel) => updates.extend(self.rescan(&rel)),
            }
        }
        updates
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
            return Target::Tree(String::new());
        }
        if rel.split('/').any(|c| c.starts_with('.')) {
            return Target::Ignore;
        }
        let prefix = format!("{rel}/");
        if path.is_dir() || (!path.exists() && self.files.keys().any(|f| f.starts_with(&prefix))) {
            return Target::Tree(rel);
        }
        if is_yaml(path) {
            Target::File(rel)
        } else {
            Target::Ignore
        }
    }

    /// Reads every YAML file below `rel` ("" = the root), and forgets the known ones that are gone.
    fn rescan(&mut self, rel: &str) -> Vec<Update> {
        let mut found = Vec::new();
        let dir = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        list_yaml_files(&dir, rel, 0, &mut found);
        found.sort();
        let mut updates: Vec<Update> = found
            .iter()
            .filter_map(|(rel, path)| self.read(rel, path))
            .collect();
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|f| {
                f.starts_with(&prefix) && found.binary_search_by(|(r, _)| r.cmp(f)).is_err()
            })
            .cloned()
            .collect();
        updates.extend(gone.iter().filter_map(|f| self.forget(f)));
        updates
    }

    /// Reads one file; `None` when its bytes are the ones last applied.
    fn read(&mut self, rel: &str, path: &Path) -> Option<Update> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return self.forget(rel),
            Err(error) => {
                self.files.insert(rel.to_owned(), None);
                let problem = Problem::new(Source::file(rel), format!("cannot read: {error}"));
                let contents = Contents {
                    problems: vec![problem],
                    unreadable: true,
                    ..Default::default()
                };
                return Some(Update::Apply(rel.to_owned(), contents));
            }
        };
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        if self.files.insert(rel.to_owned(), Some(hash)) == Some(Some(hash)) {
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
        Some(Update::Apply(rel.to_owned(), contents))
    }

    fn forget(&mut self, rel: &str) -> Option<Update> {
        self.files.remove(rel)?;
        tracing::debug!(file = rel, "config file removed");
        Some(Update::Remove(rel.to_owned()))
    }
}

fn apply(updates: Vec<Update>, index: &mut Index) -> bool {
    let mut changed = false;
    for update in updates {
        changed |= match update {
            Update::Apply(file, contents) => index.reset(&Origin::file(&file), contents),
            Update::Remove(file) => index.forget(&Origin::file(&file)),
        };
    }
    changed
}

enum Target {
    Ignore,
    File(String),
    Tree(String),
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

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Appends every visible YAML file below `dir` (following symlinks) as (relative name, path).
fn list_yaml_files(dir: &Path, rel: &str, depth: usize, out: &mut Vec<(String, PathBuf)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot list config directory");
            return;
        }
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            if depth < MAX_DEPTH {
                list_yaml_files(&path, &child, depth + 1, out);
            }
        } else if is_yaml(&path) {
            out.push((child, path));
        }
    }
}

#[cfg(test)]
mod tests;
