//! The bindings of `meshfleet run --state-dir S`, kept in `S/bindings/` as ResourceBinding
//! documents (`<namespace>/<kind>-<name>.yaml`; `_cluster/` for cluster-scoped templates):
//! written as they change, read back when `run` starts, so that a restart schedules from the
//! last results, as Karmada's scheduler does from its ResourceBindings, instead of afresh (which
//! could move replicas a failover or a rescale put elsewhere). They are also what
//! `meshfleet schedule` can be given to start from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshfleet_api::{Object, ObjectReference, ResourceBinding};
use meshfleet_propagation::plan::Bindings;

use crate::fs::write_atomic;

/// Where a `run --state-dir` keeps its bindings.
#[derive(Debug)]
pub struct BindingStore {
    dir: PathBuf,
    /// What was last written, by template: the binding and its file.
    written: BTreeMap<ObjectReference, (Arc<ResourceBinding>, PathBuf)>,
}

impl BindingStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("bindings"),
            written: BTreeMap::new(),
        }
    }

    /// The bindings written by an earlier run; a file that does not parse is skipped and
    /// logged (its binding is scheduled afresh).
    pub fn load(&mut self) -> Bindings {
        let mut bindings = Bindings::new();
        for path in yaml_files(&self.dir) {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let name = path.display().to_string();
            let contents = meshfleet_api::yaml::parse_file(&name, &text);
            for problem in &contents.problems {
                tracing::warn!(%problem, "a stored binding is skipped");
            }
            for document in contents.documents {
                if let Object::ResourceBinding(binding) = document.object {
                    let reference = binding.spec.resource.clone();
                    self.written
                        .insert(reference.clone(), (binding.clone(), path.clone()));
                    bindings.insert(reference, binding);
                }
            }
        }
        bindings
    }

    /// Writes the bindings that changed since the last call and removes those that are gone.
    /// Unchanged bindings (shared with the last call) cost nothing.
    ///
    /// # Errors
    /// The first file that could not be written or removed; the others are still tried.
    pub fn save(&mut self, bindings: &Bindings) -> std::io::Result<()> {
        let mut first_error = None;
        let mut written = BTreeMap::new();
        for (reference, binding) in bindings {
            let path = self.path_of(binding);
            let same = self
                .written
                .get(reference)
                .is_some_and(|(last, last_path)| {
                    *last_path == path && (Arc::ptr_eq(last, binding) || **last == **binding)
                });
            if !same {
                let result = serde_norway::to_string(&**binding)
                    .map_err(std::io::Error::other)
                    .and_then(|text| write_atomic(&path, text.as_bytes()));
                if let Err(error) = result {
                    first_error.get_or_insert(error);
                    continue;
                }
            }
            written.insert(reference.clone(), (binding.clone(), path));
        }
        for (reference, (_, path)) in &self.written {
            let still_there = written.get(reference).is_some_and(|(_, p)| p == path);
            if !still_there
                && let Err(error) = std::fs::remove_file(path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                first_error.get_or_insert(error);
            }
        }
        self.written = written;
        first_error.map_or(Ok(()), Err)
    }

    fn path_of(&self, binding: &Arc<ResourceBinding>) -> PathBuf {
        let resource = &binding.spec.resource;
        let namespace = resource.namespace.as_deref().unwrap_or("_cluster");
        let safe = |s: &str| s.replace(['/', '\\'], "_");
        self.dir.join(safe(namespace)).join(format!(
            "{}-{}.yaml",
            safe(&resource.kind.to_lowercase()),
            safe(&resource.name)
        ))
    }
}

/// `*.yaml` files one and two levels below `dir`.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(dir) else {
        return out;
    };
    for namespace in namespaces.flatten() {
        let Ok(files) = std::fs::read_dir(namespace.path()) else {
            continue;
        };
        out.extend(
            files
                .flatten()
                .map(|f| f.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
        );
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfleet_propagation::fixtures::{FLEET, NGINX, index, now};
    use meshfleet_propagation::plan::plan;

    #[test]
    fn bindings_are_kept_read_back_and_removed_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let planned = plan(
            &index(&[("fleet.yaml", FLEET), ("nginx.yaml", NGINX)]),
            &Bindings::new(),
            now(),
        );
        let mut store = BindingStore::new(dir.path());
        store.save(&planned.bindings).unwrap();
        let file = dir.path().join("bindings/default/deployment-nginx.yaml");
        assert!(file.exists());
        let loaded = BindingStore::new(dir.path()).load();
        assert_eq!(loaded, planned.bindings);

        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        store.save(&planned.bindings).unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            modified,
            "unchanged, not written"
        );
        store.save(&Bindings::new()).unwrap();
        assert!(!file.exists());
    }
}
