//! What the admin endpoints read: the catalog served, the problems and the bindings of the last
//! reconcile, readiness. Written only by the reconcile loop ([`crate::run`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use meshfleet_catalog::Catalog;
use meshfleet_model::problem::Problem;
use meshfleet_propagation::plan::Bindings;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
    /// The member clusters as the fleet view shows them, from the last reconcile.
    pub(crate) clusters: RwLock<Arc<Vec<crate::view::ClusterView>>>,
    /// Set once the first catalog is served and the xDS port is bound.
    pub(crate) ready: AtomicBool,
    /// What `/metrics` shows of the controller itself, kept with the values above.
    metrics: StateMetrics,
    /// The long-running loops (the source's watch, the reconcile loop, the xDS server) that
    /// have stopped: one that stops is a controller that no longer follows its inputs.
    stopped: Mutex<Vec<&'static str>>,
    /// Set when the controller is stopped on purpose: its tasks end without being at fault.
    pub(crate) shutting_down: AtomicBool,
}

/// Marks a loop stopped when dropped: when the loop returns, fails or panics.
pub(crate) struct Alive {
    state: Arc<State>,
    name: &'static str,
}

impl Drop for Alive {
    fn drop(&mut self) {
        if self.state.shutting_down.load(Ordering::Acquire) {
            return;
        }
        tracing::error!(task = self.name, "a long-running task stopped");
        self.state
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.name);
    }
}

/// The controller's own metrics (the ADS server has its own): gauges set when the state
/// changes, so a scrape reads numbers and takes no lock.
#[derive(Clone, Debug, Default)]
struct StateMetrics {
    catalog_services: Gauge,
    catalog_endpoints: Gauge,
    propagation_bindings: Gauge,
    config_problems: Gauge,
    config_source_up: Gauge,
    reconciles: Counter,
}

/// New problems logged by one publish at most; the rest are counted in one line.
const LOGGED_PROBLEMS: usize = 20;

impl State {
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("state lock").clone()
    }

    pub fn problems(&self) -> Arc<Vec<Problem>> {
        self.problems.read().expect("state lock").clone()
    }

    pub fn clusters(&self) -> Arc<Vec<crate::view::ClusterView>> {
        self.clusters.read().expect("state lock").clone()
    }

    pub fn set_clusters(&self, clusters: Vec<crate::view::ClusterView>) {
        *self.clusters.write().expect("state lock") = Arc::new(clusters);
    }

    pub fn bindings(&self) -> Arc<Bindings> {
        self.bindings.read().expect("state lock").clone()
    }

    /// Serves `catalog` from now on.
    pub(crate) fn set_catalog(&self, catalog: Catalog) {
        let endpoints: usize = catalog.services.iter().map(|s| s.endpoint_count()).sum();
        self.metrics
            .catalog_services
            .set(i64::try_from(catalog.services.len()).unwrap_or(i64::MAX));
        self.metrics
            .catalog_endpoints
            .set(i64::try_from(endpoints).unwrap_or(i64::MAX));
        self.metrics.reconciles.inc();
        *self.catalog.write().expect("state lock") = Arc::new(catalog);
    }

    /// The bindings of the last plan.
    pub(crate) fn set_bindings(&self, bindings: Bindings) {
        self.metrics
            .propagation_bindings
            .set(i64::try_from(bindings.len()).unwrap_or(i64::MAX));
        *self.bindings.write().expect("state lock") = Arc::new(bindings);
    }

    /// Registers the controller's metrics in `registry` (under a `meshfleet` prefix:
    /// `meshfleet_catalog_services`, ...).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.metrics;
        registry.register(
            "catalog_services",
            "Exported global services in the catalog",
            m.catalog_services.clone(),
        );
        registry.register(
            "catalog_endpoints",
            "Endpoints over all global services and ports",
            m.catalog_endpoints.clone(),
        );
        registry.register(
            "propagation_bindings",
            "ResourceBindings of the last propagation plan",
            m.propagation_bindings.clone(),
        );
        registry.register(
            "config_problems",
            "Documents or objects reported as invalid by the last reconcile",
            m.config_problems.clone(),
        );
        registry.register(
            "config_source_up",
            "1 while the config directory can be read; 0 when it cannot (what it held stays in effect)",
            m.config_source_up.clone(),
        );
        registry.register(
            "reconciles",
            "Catalog builds since start",
            m.reconciles.clone(),
        );
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
        let mut new = merged.iter().filter(|p| !before.contains(p));
        for problem in new.by_ref().take(LOGGED_PROBLEMS) {
            tracing::warn!(%problem, "config problem");
        }
        let more = new.count();
        if more > 0 {
            tracing::warn!(
                more,
                "more new config problems than logged; /debug/problems lists them all"
            );
        }
        self.metrics
            .config_problems
            .set(i64::try_from(merged.len()).unwrap_or(i64::MAX));
        *self.problems.write().expect("state lock") = Arc::new(merged);
    }

    /// Ready: the sources were read once, the first catalog is served, every loop runs and
    /// the config directory can be read.
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// [`State::is_ready`], with why not.
    ///
    /// # Errors
    /// What keeps the controller from being ready.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::Acquire) {
            return Err("starting".to_owned());
        }
        let stopped = self.stopped();
        if !stopped.is_empty() {
            return Err(format!("stopped: {}", stopped.join(", ")));
        }
        if self.metrics.config_source_up.get() != 1 {
            return Err(
                "the config directory cannot be read (see /debug/problems); serving what it held"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether the config directory can be read (1) or not (0), as its source reports it.
    pub(crate) fn source_up(&self) -> Gauge {
        self.metrics.config_source_up.clone()
    }

    /// The long-running tasks that stopped; healthy when none did.
    pub fn stopped(&self) -> Vec<&'static str> {
        self.stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A guard for the task `name`: hold it for as long as the task runs.
    pub(crate) fn alive(self: &Arc<Self>, name: &'static str) -> Alive {
        Alive {
            state: self.clone(),
            name,
        }
    }

    /// How many times the catalog was built.
    pub fn reconciles(&self) -> u64 {
        self.metrics.reconciles.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_task_makes_the_controller_unhealthy_and_not_ready() {
        let state = Arc::new(State::default());
        state.ready.store(true, Ordering::Release);
        state.source_up().set(1);
        let running = state.alive("reconcile loop");
        assert!(state.is_ready());
        assert!(state.stopped().is_empty());
        drop(running);
        assert_eq!(state.stopped(), ["reconcile loop"]);
        assert!(!state.is_ready());
    }

    #[test]
    fn tasks_stopped_on_purpose_are_not_faults() {
        let state = Arc::new(State::default());
        let running = state.alive("xDS server");
        state.shutting_down.store(true, Ordering::Release);
        drop(running);
        assert!(state.stopped().is_empty());
    }
}
