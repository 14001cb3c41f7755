//! `meshfleet run --ca-dir DIR`: every member cluster gets its plug-in CA as the
//! `istio-system/cacerts` Secret, through the same sink as its workloads. Each cluster's CA is
//! issued once from the root in DIR and kept under `DIR/clusters/<cluster>/`, so restarts and
//! replicas reuse it; it is issued again when a third of its life is left, when the root is
//! rotated (`meshfleet ca rotate`), or when its files no longer verify. A cluster whose CA
//! cannot be made keeps the Secret it has, and the reason is a problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use meshfleet_ca::istio::SECRET;
use meshfleet_ca::store::RootDir;
use meshfleet_model::problem::{Problem, Source};
use meshfleet_propagation::manifest::{Manifest, ManifestKey};

use crate::apply::Extra;

/// The plug-in CAs of the fleet's clusters, from one CA directory.
#[derive(Debug)]
pub struct ClusterCas {
    dir: PathBuf,
    /// How long a cluster's Secret is used before its files are looked at again.
    recheck: Duration,
    /// Each cluster's Secret, and when its files were last looked at.
    cache: BTreeMap<String, (Arc<Manifest>, Instant)>,
}

/// The key of the Secret in every cluster.
pub fn secret_key() -> ManifestKey {
    ManifestKey {
        group: String::new(),
        kind: "Secret".to_owned(),
        namespace: "istio-system".to_owned(),
        name: "cacerts".to_owned(),
    }
}

impl ClusterCas {
    pub fn new(dir: PathBuf, recheck: Duration) -> Self {
        Self {
            dir,
            recheck,
            cache: BTreeMap::new(),
        }
    }

    /// The `cacerts` Secret of each of `clusters`, issuing what is missing or due; a cluster
    /// whose Secret cannot be made keeps its own, with a problem saying why.
    pub fn secrets<'a>(
        &mut self,
        clusters: impl IntoIterator<Item = &'a str>,
        now: SystemTime,
    ) -> (Extra, Vec<Problem>) {
        let mut extra = Extra::default();
        let mut problems = Vec::new();
        let mut root: Option<Result<RootDir, String>> = None;
        for cluster in clusters {
            if let Some((manifest, checked)) = self.cache.get(cluster)
                && checked.elapsed() < self.recheck
            {
                insert(&mut extra, cluster, manifest.clone());
                continue;
            }
            let loaded =
                root.get_or_insert_with(|| RootDir::load(&self.dir).map_err(|e| e.to_string()));
            let made = match loaded {
                Ok(root) => root
                    .cluster_ca(cluster, now)
                    .map_err(|e| e.to_string())
                    .and_then(|(files, new)| {
                        if new {
                            tracing::info!(cluster, "issued the cluster's intermediate CA");
                        }
                        secret_manifest(&files)
                    }),
                Err(error) => Err(format!("CA directory {}: {error}", self.dir.display())),
            };
            match made {
                Ok(manifest) => {
                    self.cache
                        .insert(cluster.to_owned(), (manifest.clone(), Instant::now()));
                    insert(&mut extra, cluster, manifest);
                }
                Err(message) => {
                    problems.push(Problem::new(
                        Source::object("Secret", "istio-system", "cacerts").in_cluster(cluster),
                        format!("{message}; the cluster keeps the Secret it has"),
                    ));
                    match self.cache.get(cluster) {
                        Some((manifest, _)) => insert(&mut extra, cluster, manifest.clone()),
                        None => {
                            extra
                                .keep
                                .entry(cluster.to_owned())
                                .or_insert_with(BTreeSet::new)
                                .insert(secret_key());
                        }
                    }
                }
            }
        }
        (extra, problems)
    }
}

fn insert(extra: &mut Extra, cluster: &str, manifest: Arc<Manifest>) {
    extra
        .manifests
        .entry(cluster.to_owned())
        .or_default()
        .insert(secret_key(), manifest);
}

/// The Secret among the plug-in files, as a manifest.
fn secret_manifest(files: &[(&'static str, String)]) -> Result<Arc<Manifest>, String> {
    let text = files
        .iter()
        .find(|(name, _)| *name == SECRET)
        .map(|(_, text)| text)
        .ok_or_else(|| format!("no {SECRET} among the plug-in files"))?;
    let value: serde_json::Value =
        serde_norway::from_str(text).map_err(|e| format!("{SECRET}: {e}"))?;
    Manifest::encode(&value)
        .map(Arc::new)
        .map_err(|e| format!("{SECRET}: {e}"))
}
