//! Doing: hands a plan's manifests to a sink, cluster by cluster, and nothing else.
//!
//! With a zone (`meshfleet run --zone`), only that zone's clusters are written: each zone's
//! instance writes to its own clusters, and all of them plan alike.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meshfleet_api::Cluster;

use meshfleet_propagation::manifest::{Desired, Keep, ManifestKey, Manifests};
use meshfleet_propagation::plan::Changes;

use crate::sink::{Applied, ApplyManifests, SinkError};

/// Why some clusters were not brought up to date; the others were.
#[derive(Debug, thiserror::Error)]
#[error("applying to {failed} cluster(s) failed; first, cluster {cluster}")]
pub struct ApplyError {
    pub failed: usize,
    pub cluster: String,
    #[source]
    pub source: SinkError,
}

/// Makes every cluster of `clusters` (in `zone`, when given) hold its `manifests`, keeping the
/// `keep` keys as they are. With `only` (what a plan changed), only those clusters, and in them
/// only those keys, are looked at. Without a zone or `only`, clusters the sink holds manifests
/// for but that are no longer in the fleet are emptied.
///
/// # Errors
/// The first cluster that failed, and how many did; every other cluster is still applied.
pub async fn apply(
    sink: &mut dyn ApplyManifests,
    desired: Desired<'_>,
    clusters: &[Arc<Cluster>],
    zone: Option<&str>,
    only: Option<&Changes>,
) -> Result<Applied, ApplyError> {
    apply_with(sink, desired, &Extra::default(), clusters, zone, only).await
}

/// Manifests meshfleet adds to a plan's, per cluster (each cluster's `cacerts` Secret), and
/// keys to keep as they are where such a manifest could not be made this time.
#[derive(Debug, Default)]
pub struct Extra {
    pub manifests: BTreeMap<String, Manifests>,
    pub keep: BTreeMap<String, BTreeSet<ManifestKey>>,
}

/// [`apply`], with `extra` manifests and keys to keep beside the plan's.
///
/// # Errors
/// As [`apply`].
pub async fn apply_with(
    sink: &mut dyn ApplyManifests,
    desired: Desired<'_>,
    extra: &Extra,
    clusters: &[Arc<Cluster>],
    zone: Option<&str>,
    only: Option<&Changes>,
) -> Result<Applied, ApplyError> {
    let empty_manifests = Manifests::new();
    let empty_keep = BTreeSet::new();
    let Desired {
        manifests,
        keep,
        keep_everywhere,
        dependencies,
    } = desired;
    let mut targets: Vec<&str> = clusters
        .iter()
        .filter(|c| zone.is_none_or(|z| c.zones().contains(&z)))
        .map(|c| c.name())
        .filter(|c| only.is_none_or(|o| o.contains_key(*c)))
        .collect();
    let mut gone = Vec::new();
    if zone.is_none() && only.is_none() {
        let known: BTreeSet<&str> = clusters.iter().map(|c| c.name()).collect();
        match sink.clusters().await {
            Ok(held) => {
                gone = held
                    .into_iter()
                    .filter(|c| !known.contains(c.as_str()))
                    .collect()
            }
            Err(error) => tracing::warn!(%error, "cannot list the clusters the sink holds"),
        }
    }
    let in_fleet = targets.len();
    targets.extend(gone.iter().map(String::as_str));
    let mut total = Applied::default();
    let mut failure: Option<ApplyError> = None;
    for (i, cluster) in targets.into_iter().enumerate() {
        let planned = manifests.get(cluster).unwrap_or(&empty_manifests);
        let kept = keep.get(cluster).unwrap_or(&empty_keep);
        // The plan's own maps are shared; a cluster with extras gets copies with them added.
        let merged_manifests;
        let merged_keep;
        let (desired, keep) = if i < in_fleet {
            let planned = match extra.manifests.get(cluster) {
                Some(more) => {
                    merged_manifests = planned
                        .iter()
                        .chain(more)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Manifests>();
                    &merged_manifests
                }
                None => planned,
            };
            let kept = match extra.keep.get(cluster) {
                Some(more) => {
                    merged_keep = kept.union(more).cloned().collect::<BTreeSet<_>>();
                    &merged_keep
                }
                None => kept,
            };
            let keep = Keep {
                here: kept,
                everywhere: keep_everywhere,
                except: dependencies,
            };
            (planned, keep)
        } else {
            (&empty_manifests, Keep::none())
        };
        let result = match only.and_then(|o| o.get(cluster)) {
            Some(keys) => sink.apply_keys(cluster, desired, keep, keys).await,
            None => sink.apply(cluster, desired, keep).await,
        };
        match result {
            Ok(applied) => {
                total.written += applied.written;
                total.removed += applied.removed;
                total.unchanged += applied.unchanged;
            }
            Err(source) => match &mut failure {
                Some(f) => f.failed += 1,
                None => {
                    failure = Some(ApplyError {
                        failed: 1,
                        cluster: cluster.to_owned(),
                        source,
                    });
                }
            },
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(total),
    }
}

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use std::collections::BTreeMap;

    use meshfleet_api::fixtures::cluster;
    use meshfleet_propagation::manifest::{Manifest, ManifestKey};

    use crate::sink::DirSink;

    fn key(name: &str) -> ManifestKey {
        ManifestKey {
            group: String::new(),
            kind: "ConfigMap".to_owned(),
            namespace: "web".to_owned(),
            name: name.to_owned(),
        }
    }

    fn one(name: &str) -> Manifests {
        let manifest = Manifest::encode(&serde_json::json!({"kind": "ConfigMap"})).unwrap();
        Manifests::from([(key(name), Arc::new(manifest))])
    }

    #[test]
    fn a_zone_writes_only_its_clusters_and_departed_clusters_are_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        let east = cluster("east-1").region("us-east").zone("us-east-1a").arc();
        let west = cluster("west-1").region("us-west").zone("us-west-2a").arc();
        let manifests = BTreeMap::from([
            ("east-1".to_owned(), one("a")),
            ("west-1".to_owned(), one("b")),
        ]);
        let fleet = [east.clone(), west];
        let (keep, everywhere) = (BTreeMap::new(), BTreeSet::new());
        let desired = Desired {
            manifests: &manifests,
            keep: &keep,
            keep_everywhere: &everywhere,
            dependencies: &everywhere,
        };
        let applied =
            block_on(apply(&mut sink, desired, &fleet, Some("us-east-1a"), None)).unwrap();
        assert_eq!(applied.written, 1);
        assert!(
            dir.path()
                .join("clusters/east-1/web/configmap-a.yaml")
                .exists()
        );
        assert!(!dir.path().join("clusters/west-1").exists());

        let applied = block_on(apply(&mut sink, desired, &fleet, None, None)).unwrap();
        assert_eq!((applied.written, applied.unchanged), (1, 1));
        // west-1 leaves the fleet: its manifests go.
        let applied = block_on(apply(&mut sink, desired, &[east], None, None)).unwrap();
        assert_eq!(applied.removed, 1);
        assert!(
            !dir.path()
                .join("clusters/west-1/web/configmap-b.yaml")
                .exists()
        );
    }
}
