//! What the admin endpoints read: the catalog served, the problems and the bindings of the last
//! reconcile, readiness. Written only by the reconcile loop ([`crate::run`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use meshfleet_catalog::Catalog;
use meshfleet_model::problem::Problem;
use meshfleet_propagation::plan::Bindings;

/// What the admin endpoints read; written only by the reconcile loop.
#[derive(Default)]
pub struct State {
    /// The catalog currently served.
    pub(crate) catalog: RwLock<Arc<Catalog>>,
    /// Problems of the last reconcile: parse errors of the sources, catalog problems, then
    /// propagation problems.
    pub(crate) problems: RwLock<Arc<Vec<Problem>>>,
    /// Catalog problems alone, to merge with the propagation problems of a tick.
    pub(crate) catalog_problems: RwLock<Arc<Vec<Problem>>>,
    /// Propagation problems of the last plan.
    pub(crate) propagation_problems: RwLock<Arc<Vec<Problem>>>,
    /// The bindings of the last plan (empty without `--state-dir`).
    pub(crate) bindings: RwLock<Arc<Bindings>>,
    /// Set once the first catalog is served and the xDS port is bound.
    pub(crate) ready: AtomicBool,
    /// How many times the catalog was rebuilt.
    pub(crate) reconciles: AtomicU64,
}

impl State {
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("state lock").clone()
    }

    pub fn problems(&self) -> Arc<Vec<Problem>> {
        self.problems.read().expect("state lock").clone()
    }

    pub fn bindings(&self) -> Arc<Bindings> {
        self.bindings.read().expect("state lock").clone()
    }

    /// Sets the problems of one half and publishes the merged list, logging new problems once.
    pub(crate) fn publish_problems(
        &self,
        catalog: Option<Vec<Problem>>,
        propagation: Option<Vec<Problem>>,
    ) {
        if let Some(problems) = catalog {
            *self.catalog_problems.write().expect("state lock") = Arc::new(problems);
        }
        if let Some(problems) = propagation {
            *self.propagation_problems.write().expect("state lock") = Arc::new(problems);
        }
        let merged: Vec<Problem> = self
            .catalog_problems
            .read()
            .expect("state lock")
            .iter()
            .chain(self.propagation_problems.read().expect("state lock").iter())
            .cloned()
            .collect();
        let before = self.problems();
        let before: HashSet<&Problem> = before.iter().collect();
        for problem in merged.iter().filter(|p| !before.contains(p)) {
            tracing::warn!(%problem, "config problem");
        }
        *self.problems.write().expect("state lock") = Arc::new(merged);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }
}
