//! The directory sink: each member cluster's manifests as files, where a pull agent, a GitOps
//! tool or a person reads them.
//!
//! ```text
//!  <state-dir>/clusters/<cluster>/<namespace>/<kind>-<name>.yaml
//!                                 _cluster/   (cluster-scoped kinds)
//! ```
//!
//! # Guarantees
//! - A file is written to a temporary file in its directory, then renamed over the old one: a
//!   reader, or a crash of meshfleet, sees the old file or the new one, never half of one.
//!   (Files are not fsynced one by one: after a power loss the directory is made right again
//!   by the next apply, which compares every file with what it should hold.)
//! - Unchanged manifests are not rewritten; what is no longer desired is removed, except the
//!   keys the caller asks to keep (their new rendering failed: the last good copy stays).
//! - Removing a file that is already gone is success.
//!
//! # Caveats
//! File I/O is blocking: the futures this sink returns do their work when polled. The runtime
//! drives the sink from a blocking thread, never from an async worker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use meshfleet_propagation::manifest::{Keep, Manifest, ManifestKey, Manifests};

use super::{Applied, ApplyManifests, SinkError, SinkFuture};
use crate::fs::write_atomic;

/// Writes each cluster's manifests under `<root>/clusters/<cluster>/`.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
    /// What each cluster's directory holds. Loaded from disk the first time a cluster is
    /// applied, then kept up to date, so an apply reads no files.
    clusters: HashMap<String, ClusterFiles>,
}

/// One cluster's directory, as a [`DirSink`] knows it.
#[derive(Debug, Default)]
struct ClusterFiles {
    /// Files found on disk that this sink has not matched to a manifest yet: path relative to
    /// the cluster's directory → hash of the bytes. The first apply matches or removes them.
    found: BTreeMap<PathBuf, u64>,
    /// What this sink has put there, by manifest: path and hash of the bytes.
    written: HashMap<ManifestKey, (PathBuf, u64)>,
    /// The manifest each written path holds.
    owners: HashMap<PathBuf, ManifestKey>,
}

/// Writes `manifest` at `dir/path` unless the file already holds it. Returns whether it wrote.
fn write_one(
    dir: &Path,
    path: &Path,
    manifest: &Manifest,
    before: Option<u64>,
) -> Result<bool, SinkError> {
    if before == Some(manifest.hash) {
        return Ok(false);
    }
    let path = dir.join(path);
    write_atomic(&path, manifest.yaml.as_bytes()).map_err(|source| SinkError::WriteManifest {
        location: path.display().to_string(),
        source: source.into(),
    })?;
    Ok(true)
}

/// The directory of cluster-scoped manifests (a namespace cannot contain `_`).
pub const CLUSTER_SCOPED_DIR: &str = "_cluster";

impl DirSink {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: state_dir.into().join("clusters"),
            clusters: HashMap::new(),
        }
    }

    /// `<cluster>/<namespace>/<kind>-<name>.yaml`, relative to `<state-dir>/clusters`.
    ///
    /// # Errors
    /// A name that would leave its directory (`..`, `/`, empty).
    pub fn relative_path(cluster: &str, key: &ManifestKey) -> Result<PathBuf, SinkError> {
        let namespace = if key.namespace.is_empty() {
            CLUSTER_SCOPED_DIR
        } else {
            component("namespace", &key.namespace)?
        };
        let file = format!(
            "{}-{}.yaml",
            component("kind", &key.kind)?.to_ascii_lowercase(),
            component("name", &key.name)?
        );
        Ok(Path::new(component("cluster", cluster)?)
            .join(namespace)
            .join(file))
    }

    fn load(&mut self, cluster: &str) -> Result<&mut ClusterFiles, SinkError> {
        if !self.clusters.contains_key(cluster) {
            let dir = self.root.join(cluster);
            let mut files = ClusterFiles::default();
            scan(&dir, Path::new(""), &mut files.found)?;
            self.clusters.insert(cluster.to_owned(), files);
        }
        Ok(self.clusters.get_mut(cluster).expect("loaded above"))
    }
}

impl ClusterFiles {
    /// Brings `key`'s file to `manifest`, unless this sink knows it already holds it.
    fn put(
        &mut self,
        dir: &Path,
        cluster: &str,
        key: &ManifestKey,
        manifest: &Manifest,
        applied: &mut Applied,
    ) -> Result<(), SinkError> {
        let (path, before) = match self.written.get(key) {
            // The common case, an unchanged manifest, costs one lookup.
            Some((_, hash)) if *hash == manifest.hash => {
                applied.unchanged += 1;
                return Ok(());
            }
            Some((path, hash)) => (path.clone(), Some(*hash)),
            None => {
                let path = file_of(cluster, key)?;
                if let Some(owner) = self.owners.get(&path) {
                    return Err(SinkError::PlaceTaken {
                        location: path.display().to_string(),
                        key: key.to_string(),
                        owner: owner.to_string(),
                    });
                }
                let before = self.found.remove(&path);
                (path, before)
            }
        };
        // The last good copy stays on error; the next apply tries again.
        match write_one(dir, &path, manifest, before) {
            Ok(true) => applied.written += 1,
            Ok(false) => applied.unchanged += 1,
            Err(error) => {
                // A file found on disk stays known, to be matched or removed later.
                if let (false, Some(hash)) = (self.written.contains_key(key), before) {
                    self.found.insert(path, hash);
                }
                return Err(error);
            }
        }
        self.owners.insert(path.clone(), key.clone());
        self.written.insert(key.clone(), (path, manifest.hash));
        Ok(())
    }

    /// Removes `key`'s file, if this sink wrote one.
    fn take(
        &mut self,
        dir: &Path,
        key: &ManifestKey,
        applied: &mut Applied,
    ) -> Result<(), SinkError> {
        if let Some((path, _)) = self.written.get(key) {
            remove(&dir.join(path))?;
            self.owners.remove(path);
            self.written.remove(key);
            applied.removed += 1;
        }
        Ok(())
    }
}

impl DirSink {
    fn apply_now(
        &mut self,
        cluster: &str,
        desired: &Manifests,
        keep: Keep<'_>,
    ) -> Result<Applied, SinkError> {
        let dir = self.root.join(component("cluster", cluster)?);
        let files = self.load(cluster)?;
        let mut applied = Applied::default();
        let mut first_error = None;
        // What goes, first: its path may be what a new manifest is to be written at.
        let stale: Vec<ManifestKey> = files
            .written
            .keys()
            .filter(|k| !desired.contains_key(*k) && !keep.contains(k))
            .cloned()
            .collect();
        for key in stale {
            if let Err(error) = files.take(&dir, &key, &mut applied) {
                first_error.get_or_insert(error);
            }
        }
        for (key, manifest) in desired {
            if let Err(error) = files.put(&dir, cluster, key, manifest, &mut applied) {
                first_error.get_or_insert(error);
            }
        }
        if !files.found.is_empty() {
            let kept: HashMap<PathBuf, &ManifestKey> = keep
                .iter()
                .filter_map(|k| Some((file_of(cluster, k).ok()?, k)))
                .collect();
            for (path, hash) in std::mem::take(&mut files.found) {
                // A kept file is this sink's from now on: removed once no longer kept.
                if let Some(key) = kept.get(&path) {
                    files.owners.insert(path.clone(), (*key).clone());
                    files.written.insert((*key).clone(), (path, hash));
                    continue;
                }
                match remove(&dir.join(&path)) {
                    Ok(()) => applied.removed += 1,
                    Err(error) => {
                        files.found.insert(path, 0);
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(applied),
        }
    }

    /// Looks at `keys` alone once the cluster's directory is known and every file found there
    /// has been matched; until then, applies everything.
    fn apply_keys_now(
        &mut self,
        cluster: &str,
        desired: &Manifests,
        keep: Keep<'_>,
        keys: &BTreeSet<ManifestKey>,
    ) -> Result<Applied, SinkError> {
        let dir = self.root.join(component("cluster", cluster)?);
        let Some(files) = self
            .clusters
            .get_mut(cluster)
            .filter(|f| f.found.is_empty())
        else {
            return self.apply_now(cluster, desired, keep);
        };
        let mut applied = Applied::default();
        let mut first_error = None;
        // What goes, first, then what is new or changed (as in a full apply).
        let (puts, takes): (Vec<&ManifestKey>, Vec<&ManifestKey>) =
            keys.iter().partition(|k| desired.contains_key(*k));
        for key in takes.into_iter().filter(|k| !keep.contains(k)) {
            if let Err(error) = files.take(&dir, key, &mut applied) {
                first_error.get_or_insert(error);
            }
        }
        for key in puts {
            let manifest = &desired[key];
            if let Err(error) = files.put(&dir, cluster, key, manifest, &mut applied) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(applied),
        }
    }

    fn clusters_now(&mut self) -> Result<Vec<String>, SinkError> {
        let mut clusters: BTreeSet<String> = self.clusters.keys().cloned().collect();
        match std::fs::read_dir(&self.root) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        clusters.insert(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SinkError::ReadState {
                    location: self.root.display().to_string(),
                    source: source.into(),
                });
            }
        }
        Ok(clusters.into_iter().collect())
    }
}

impl ApplyManifests for DirSink {
    fn apply<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
    ) -> SinkFuture<'a, Applied> {
        Box::pin(async move { self.apply_now(cluster, desired, keep) })
    }

    fn apply_keys<'a>(
        &'a mut self,
        cluster: &'a str,
        desired: &'a Manifests,
        keep: Keep<'a>,
        keys: &'a BTreeSet<ManifestKey>,
    ) -> SinkFuture<'a, Applied> {
        Box::pin(async move { self.apply_keys_now(cluster, desired, keep, keys) })
    }

    fn clusters(&mut self) -> SinkFuture<'_, Vec<String>> {
        Box::pin(async move { self.clusters_now() })
    }
}

fn file_of(cluster: &str, key: &ManifestKey) -> Result<PathBuf, SinkError> {
    let path = DirSink::relative_path(cluster, key)?;
    Ok(path
        .strip_prefix(cluster)
        .map(Path::to_path_buf)
        .unwrap_or(path))
}

/// A name usable as one path component.
fn component<'a>(what: &'static str, name: &'a str) -> Result<&'a str, SinkError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.');
    if bad {
        return Err(SinkError::InvalidName {
            what,
            name: name.to_owned(),
        });
    }
    Ok(name)
}

/// Every `*.yaml` file below `dir`, with the hash of its bytes.
fn scan(dir: &Path, relative: &Path, files: &mut BTreeMap<PathBuf, u64>) -> Result<(), SinkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SinkError::ReadState {
                location: dir.display().to_string(),
                source: source.into(),
            });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = relative.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            scan(&path, &name, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let bytes = std::fs::read(&path).map_err(|source| SinkError::ReadState {
                location: path.display().to_string(),
                source: source.into(),
            })?;
            files.insert(name, xxhash_rust::xxh3::xxh3_64(&bytes));
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), SinkError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SinkError::RemoveManifest {
                location: path.display().to_string(),
                source: source.into(),
            });
        }
    }
    // An emptied namespace directory goes too; one that is not empty stays.
    if let Some(dir) = path.parent() {
        drop(std::fs::remove_dir(dir));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use futures::executor::block_on;

    use super::*;

    fn key(kind: &str, namespace: &str, name: &str) -> ManifestKey {
        ManifestKey {
            group: if kind == "Deployment" { "apps" } else { "" }.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn manifests(items: &[(ManifestKey, Value)]) -> Manifests {
        items
            .iter()
            .map(|(k, v)| (k.clone(), Arc::new(Manifest::encode(v).unwrap())))
            .collect()
    }

    fn files(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    stack.push(entry.path());
                } else {
                    let rel = entry.path().strip_prefix(root).unwrap().to_owned();
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn writes_paths_and_removes_what_is_no_longer_desired() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        let deploy = key("Deployment", "web", "nginx");
        let ns = key("Namespace", "", "web");
        let desired = manifests(&[
            (
                deploy.clone(),
                serde_json::json!({"kind": "Deployment", "spec": {"replicas": 2}}),
            ),
            (ns.clone(), serde_json::json!({"kind": "Namespace"})),
        ]);
        let applied = block_on(sink.apply("east-1", &desired, Keep::none())).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: 2,
                removed: 0,
                unchanged: 0
            }
        );
        assert_eq!(
            files(dir.path()),
            [
                "clusters/east-1/_cluster/namespace-web.yaml",
                "clusters/east-1/web/deployment-nginx.yaml"
            ]
        );
        let text =
            std::fs::read_to_string(dir.path().join("clusters/east-1/web/deployment-nginx.yaml"))
                .unwrap();
        assert_eq!(text, "kind: Deployment\nspec:\n  replicas: 2\n");

        // Same again: nothing written. Then the Deployment goes away.
        let applied = block_on(sink.apply("east-1", &desired, Keep::none())).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: 0,
                removed: 0,
                unchanged: 2
            }
        );
        let only_ns = manifests(&[(ns, serde_json::json!({"kind": "Namespace"}))]);
        let applied = block_on(sink.apply("east-1", &only_ns, Keep::none())).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: 0,
                removed: 1,
                unchanged: 1
            }
        );
        assert_eq!(
            files(dir.path()),
            ["clusters/east-1/_cluster/namespace-web.yaml"]
        );
    }

    #[test]
    fn a_keyed_apply_looks_at_its_keys_alone_and_a_full_one_at_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            key("ConfigMap", "web", "a"),
            key("ConfigMap", "web", "b"),
            key("ConfigMap", "web", "c"),
        );
        let v = |n: u32| serde_json::json!({"kind": "ConfigMap", "data": {"n": n.to_string()}});
        let none = BTreeSet::new();
        let keys = |ks: &[&ManifestKey]| ks.iter().map(|k| (*k).clone()).collect::<BTreeSet<_>>();

        // Before the first full apply, a keyed one applies everything: files found on disk
        // must be matched first.
        let mut sink = DirSink::new(dir.path());
        let first = manifests(&[(a.clone(), v(1)), (b.clone(), v(1))]);
        let applied =
            block_on(sink.apply_keys("east-1", &first, Keep::none(), &keys(&[&a]))).unwrap();
        assert_eq!((applied.written, applied.removed), (2, 0));

        // b changes and c appears, but only c is named: b's file is left as it was.
        let second = manifests(&[(a.clone(), v(1)), (b.clone(), v(2)), (c.clone(), v(1))]);
        let applied =
            block_on(sink.apply_keys("east-1", &second, Keep::none(), &keys(&[&c]))).unwrap();
        assert_eq!(
            (applied.written, applied.removed, applied.unchanged),
            (1, 0, 0)
        );
        let b_file = dir.path().join("clusters/east-1/web/configmap-b.yaml");
        assert!(std::fs::read_to_string(&b_file).unwrap().contains("'1'"));

        // a goes away; kept c is left alone even though it is not desired.
        let third = manifests(&[(b.clone(), v(2))]);
        let applied = block_on(sink.apply_keys(
            "east-1",
            &third,
            Keep {
                here: &keys(&[&c]),
                everywhere: &none,
                except: &none,
            },
            &keys(&[&a, &c]),
        ))
        .unwrap();
        assert_eq!((applied.written, applied.removed), (0, 1));
        assert_eq!(
            files(dir.path()),
            [
                "clusters/east-1/web/configmap-b.yaml",
                "clusters/east-1/web/configmap-c.yaml"
            ]
        );

        // A full apply brings b up to date and, c no longer kept, removes it.
        let applied = block_on(sink.apply("east-1", &third, Keep::none())).unwrap();
        assert_eq!((applied.written, applied.removed), (1, 1));
        assert!(std::fs::read_to_string(&b_file).unwrap().contains("'2'"));
        assert_eq!(files(dir.path()), ["clusters/east-1/web/configmap-b.yaml"]);
    }

    #[test]
    fn a_new_sink_finds_what_an_earlier_one_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let deploy = key("Deployment", "web", "nginx");
        let desired = manifests(&[(deploy, serde_json::json!({"kind": "Deployment"}))]);
        block_on(DirSink::new(dir.path()).apply("east-1", &desired, Keep::none())).unwrap();

        let mut restarted = DirSink::new(dir.path());
        assert_eq!(block_on(restarted.clusters()).unwrap(), ["east-1"]);
        let applied = block_on(restarted.apply("east-1", &desired, Keep::none())).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: 0,
                removed: 0,
                unchanged: 1
            }
        );
        let applied = block_on(restarted.apply("east-1", &Manifests::new(), Keep::none())).unwrap();
        assert_eq!(applied.removed, 1);
        assert_eq!(files(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn kept_keys_stay_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        let deploy = key("Deployment", "web", "nginx");
        let desired = manifests(&[(deploy.clone(), serde_json::json!({"kind": "Deployment"}))]);
        block_on(sink.apply("east-1", &desired, Keep::none())).unwrap();
        let kept = BTreeSet::from([deploy]);
        let none = BTreeSet::new();
        // Kept in this cluster, or kept everywhere: the file stays, also for a sink that
        // finds it on disk after a restart.
        for keep in [
            Keep {
                here: &kept,
                everywhere: &none,
                except: &none,
            },
            Keep {
                here: &none,
                everywhere: &kept,
                except: &none,
            },
        ] {
            let applied = block_on(sink.apply("east-1", &Manifests::new(), keep)).unwrap();
            assert_eq!(applied, Applied::default());
            let applied =
                block_on(DirSink::new(dir.path()).apply("east-1", &Manifests::new(), keep))
                    .unwrap();
            assert_eq!(applied, Applied::default());
            assert_eq!(
                files(dir.path()),
                ["clusters/east-1/web/deployment-nginx.yaml"]
            );
        }
    }

    #[test]
    fn a_kept_file_found_after_a_restart_goes_once_no_longer_kept() {
        let dir = tempfile::tempdir().unwrap();
        let deploy = key("Deployment", "web", "nginx");
        let desired = manifests(&[(deploy.clone(), serde_json::json!({"kind": "Deployment"}))]);
        block_on(DirSink::new(dir.path()).apply("east-1", &desired, Keep::none())).unwrap();
        let (kept, none) = (BTreeSet::from([deploy]), BTreeSet::new());
        let keep = Keep {
            here: &none,
            everywhere: &kept,
            except: &none,
        };
        let mut restarted = DirSink::new(dir.path());
        let applied = block_on(restarted.apply("east-1", &Manifests::new(), keep)).unwrap();
        assert_eq!(applied, Applied::default());
        let applied = block_on(restarted.apply("east-1", &Manifests::new(), Keep::none())).unwrap();
        assert_eq!(applied.removed, 1);
        assert_eq!(files(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn kinds_that_differ_only_in_group_do_not_share_a_file_silently() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        let gateway = |group: &str| ManifestKey {
            group: group.to_owned(),
            kind: "Gateway".to_owned(),
            namespace: "web".to_owned(),
            name: "edge".to_owned(),
        };
        let (api, istio) = (
            gateway("gateway.networking.k8s.io"),
            gateway("networking.istio.io"),
        );
        let both = manifests(&[
            (
                api.clone(),
                serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1"}),
            ),
            (
                istio.clone(),
                serde_json::json!({"apiVersion": "networking.istio.io/v1"}),
            ),
        ]);
        let error = block_on(sink.apply("east-1", &both, Keep::none())).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("Gateway.networking.istio.io web/edge"),
            "{message}"
        );
        assert!(
            message.contains("holds Gateway.gateway.networking.k8s.io web/edge"),
            "{message}"
        );
        let file = dir.path().join("clusters/east-1/web/gateway-edge.yaml");
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .contains("gateway.networking.k8s.io")
        );
        // The first goes: the second takes the file.
        let second = manifests(&[(
            istio,
            serde_json::json!({"apiVersion": "networking.istio.io/v1"}),
        )]);
        block_on(sink.apply("east-1", &second, Keep::none())).unwrap();
        assert!(
            std::fs::read_to_string(&file)
                .unwrap()
                .contains("networking.istio.io")
        );
    }

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for (cluster, name) in [
            ("..", "x"),
            ("east-1", "../x"),
            ("east-1", ""),
            ("a/b", "x"),
        ] {
            let result = DirSink::relative_path(cluster, &key("ConfigMap", "web", name));
            assert!(
                matches!(result, Err(SinkError::InvalidName { .. })),
                "{cluster} {name}: {result:?}"
            );
        }
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.yaml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(files(dir.path()), ["a/b.yaml"]);
    }
}
