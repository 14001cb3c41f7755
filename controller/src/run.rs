//! `meshfleet run`: wires the config-directory source, the index, the catalog, the xDS cache and
//! the servers (ADS, admin) together.
//!
//! ```text
//!  ConfigDir::watch ──changed──> reconcile: Catalog::build ──> SnapshotCache::set_mesh ──> ADS streams
//!                                          └──> State (admin: /debug/catalog, /debug/problems)
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use meshfleet_xds::cache::SnapshotCache;
use meshfleet_xds::server::AdsServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::cli::RunArgs;
use crate::index::Index;
use crate::problem::Problem;
use crate::source::ConfigDir;

/// What the admin endpoints read; written only by the reconcile loop.
#[derive(Default)]
pub struct State {
    /// The catalog currently served.
    catalog: RwLock<Arc<Catalog>>,
    /// Problems of the last reconcile: parse errors of the sources, then catalog problems.
    problems: RwLock<Arc<Vec<Problem>>>,
    /// Set once the first catalog is served and the xDS port is bound.
    ready: AtomicBool,
    /// How many times the catalog was rebuilt.
    reconciles: AtomicU64,
}

impl State {
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("state lock").clone()
    }

    pub fn problems(&self) -> Arc<Vec<Problem>> {
        self.problems.read().expect("state lock").clone()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }
}

/// A running controller: its bound addresses and its tasks. Dropping it does not stop it; call
/// [`Controller::shutdown`].
pub struct Controller {
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    pub ads: AdsServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Controller {
    /// Loads the config directory, builds the first catalog, binds the ports and starts serving.
    pub async fn start(args: &RunArgs) -> anyhow::Result<Self> {
        let index = Arc::new(Mutex::new(Index::default()));
        let mut source = ConfigDir::new(args.config.clone());
        source.load(&mut index.lock().expect("index lock"));
        let cache = SnapshotCache::default();
        let state = Arc::new(State::default());
        reconcile(&index, &cache, &state);

        let ads = AdsServer::new(cache.clone());
        let xds = TcpListener::bind(args.xds_addr)
            .await
            .with_context(|| format!("binding xDS address {}", args.xds_addr))?;
        let admin = TcpListener::bind(args.admin_addr)
            .await
            .with_context(|| format!("binding admin address {}", args.admin_addr))?;
        let (xds_addr, admin_addr) = (xds.local_addr()?, admin.local_addr()?);

        let (changed_tx, changed_rx) = watch::channel(0);
        let tasks = vec![
            tokio::spawn(source.watch(index.clone(), changed_tx)),
            tokio::spawn(reconcile_loop(changed_rx, index, cache, state.clone())),
            tokio::spawn(serve_xds(xds, ads.clone())),
            tokio::spawn(crate::admin::serve(admin, state.clone(), ads.clone())),
        ];
        state.ready.store(true, Ordering::Release);
        tracing::info!(%xds_addr, %admin_addr, config = %args.config.display(), "meshfleet is serving");
        Ok(Self {
            xds_addr,
            admin_addr,
            state,
            ads,
            tasks,
        })
    }

    /// Stops every task of this controller.
    pub fn shutdown(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// `meshfleet run --config DIR`: serve until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let controller = Controller::start(&args).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    controller.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Rebuilds the catalog whenever the index changes. Bursts of changes are coalesced by the
/// watch channel: only the latest state is built.
async fn reconcile_loop(
    mut changed: watch::Receiver<u64>,
    index: Arc<Mutex<Index>>,
    cache: SnapshotCache,
    state: Arc<State>,
) {
    while changed.changed().await.is_ok() {
        let (index, cache, state) = (index.clone(), cache.clone(), state.clone());
        // Building the catalog and translating is CPU work: keep it off the async workers.
        let done = tokio::task::spawn_blocking(move || reconcile(&index, &cache, &state)).await;
        if let Err(error) = done {
            tracing::error!(%error, "reconcile panicked; keeping the last catalog");
        }
    }
}

/// One pass: index → catalog → xDS cache and admin state. Problems new since the last pass
/// are logged once.
fn reconcile(index: &Mutex<Index>, cache: &SnapshotCache, state: &State) {
    let state_problems = state.problems();
    let catalog = Catalog::build_reporting(&index.lock().expect("index lock"));
    let problems = catalog.problems.clone();
    let before: HashSet<&Problem> = state_problems.iter().collect();
    for problem in problems.iter().filter(|p| !before.contains(p)) {
        tracing::warn!(%problem, "config problem");
    }
    cache.set_mesh(catalog.mesh());
    tracing::info!(
        services = catalog.services.len(),
        problems = problems.len(),
        "catalog built"
    );
    *state.catalog.write().expect("state lock") = Arc::new(catalog);
    *state.problems.write().expect("state lock") = Arc::new(problems);
    state.reconciles.fetch_add(1, Ordering::Relaxed);
}

async fn serve_xds(listener: TcpListener, ads: AdsServer) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(ads.into_service())
        .serve_with_incoming(incoming)
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "xDS server stopped");
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `default_level`), `MESHFLEET_LOG_FORMAT=json`
/// for JSON.
pub fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("MESHFLEET_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests, the demo) keeps the first subscriber.
    drop(result);
}
