//! `meshfleet run`: wires the sources (the config directory, or with `--kube` the Kubernetes
//! watches), the index, the catalog, the xDS cache, propagation and the servers (ADS, DNS,
//! admin) together.
//!
//! ```text
//!  ConfigDir::watch | kube feeds ──changed──> reconcile loop: Catalog ──> SnapshotCache ──> ADS streams
//!                                   │                          └──> DNS table, State (admin)
//!                    tick (5 s) ──> └─> propagation loop: Planner::plan ──> apply ──> DirSink | KubeSink
//!                                                         └──> State (admin: /debug/bindings)
//! ```
//!
//! The two loops run apart: a member API server that answers slowly holds back propagation,
//! never what proxies are served. Propagation also runs on a tick: failover is a matter of time
//! (a toleration runs out, a grace period ends) as well as of change.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use meshfleet_xds::cache::SnapshotCache;
use meshfleet_xds::server::{AdsServer, Limits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::RunArgs;
use crate::apply::apply_with;
use crate::bindings::BindingStore;
use crate::cacerts::ClusterCas;
use crate::kube::sink::KubeSink;
use crate::mtls::{CaSecrets, MeshCa};
use crate::sink::{ApplyManifests, DirSink};
use crate::source::ConfigDir;
use crate::state::{Alive, State};
use meshfleet_catalog::Incremental;
use meshfleet_dns::NameTable;
use meshfleet_dns::server::DnsHandler;
use meshfleet_index::{Index, kinds};
use meshfleet_propagation::plan::Planner;

/// How often propagation is planned again without a change (failover runs on the clock).
const PROPAGATION_TICK: Duration = Duration::from_secs(5);

/// A running controller: its bound addresses and its tasks. Dropping it does not stop it; call
/// [`Controller::shutdown`].
pub struct Controller {
    pub xds_addr: SocketAddr,
    /// DNS, on UDP and TCP.
    pub dns_addr: SocketAddr,
    /// The mTLS port, when a CA directory was given.
    pub xds_tls_addr: Option<SocketAddr>,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    pub ads: AdsServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Controller {
    /// Loads the config directory, builds the first catalog, binds the ports and starts serving.
    pub async fn start(args: &RunArgs) -> anyhow::Result<Self> {
        let index = Arc::new(Mutex::new(Index::default()));
        let state = Arc::new(State::default());
        let (changed_tx, changed_rx) = watch::channel(0);
        // The config directory (loaded before anything is served), or the kube watches.
        let mut source = None;
        let mut kube = None;
        match &args.config {
            Some(config) => {
                crate::ensure_dir(config)?;
                let mut dir = ConfigDir::new(config.clone())
                    .with_limits(args.source_limits)
                    .reporting_to(state.source_up());
                dir.load(&mut index.lock().expect("index lock"));
                source = Some(dir);
            }
            None => {
                anyhow::ensure!(args.kube.kube, "either --config DIR or --kube is needed");
                kube = Some(
                    crate::kube::start(
                        &args.kube,
                        index.clone(),
                        Arc::new(changed_tx.clone()),
                        state.source_up(),
                    )
                    .await?,
                );
            }
        }
        anyhow::ensure!(
            args.zone.is_none() || args.state_dir.is_some() || kube.is_some(),
            "--zone needs --state-dir or --kube: it says which clusters to write to"
        );
        let cache = SnapshotCache::default();
        let cas = || {
            args.ca_dir
                .clone()
                .map(|dir| ClusterCas::new(dir, args.ca_check_interval))
        };
        let mut kube_status = None;
        let propagation = match (&args.state_dir, &kube) {
            (_, Some(kube)) => {
                // The bindings are kept under the state directory when one is given.
                let mut store = args.state_dir.as_deref().map(BindingStore::new);
                let previous = store.as_mut().map(BindingStore::load).unwrap_or_default();
                let sink = KubeSink::new(kube.clients.clone(), kube.leader.clone())
                    .with_pull_mode(kube.pull.clone());
                // Bindings and templates get their status from the copies.
                kube_status = Some(crate::kube::status::Reporter::new(
                    kube.pull.gateway.clone(),
                    kube.clients.clone(),
                    kube.pull.clone(),
                    sink.failures_handle(),
                    state.clone(),
                    kube.leader.clone(),
                ));
                Some(Arc::new(Mutex::new(Propagation {
                    planner: Planner::starting_from(previous),
                    store,
                    sink: Box::new(sink),
                    zone: args.zone.clone(),
                    retry: false,
                    cas: cas(),
                    gate: Some((kube.leader.clone(), kube.synced.clone())),
                })))
            }
            (Some(dir), None) => {
                // A restart schedules from the last bindings, not afresh.
                let mut store = BindingStore::new(dir);
                let previous = store.load();
                if !previous.is_empty() {
                    tracing::info!(
                        bindings = previous.len(),
                        "starting from the stored bindings"
                    );
                }
                Some(Arc::new(Mutex::new(Propagation {
                    planner: Planner::starting_from(previous),
                    store: Some(store),
                    sink: Box::new(DirSink::new(dir)),
                    zone: args.zone.clone(),
                    retry: false,
                    cas: cas(),
                    gate: None,
                })))
            }
            (None, None) => None,
        };
        let catalog = Arc::new(Mutex::new(Incremental::with_vip_ranges(
            args.dns.dns_vip_range,
            args.dns.dns_vip_range_v6,
        )));
        let dns = Arc::new(Dns::new());
        reconcile(&index, &catalog, &cache, &state, &dns);
        if let Some(propagation) = &propagation {
            let (index, propagation, state) = (index.clone(), propagation.clone(), state.clone());
            tokio::task::spawn_blocking(move || propagate(&index, &propagation, &state, true))
                .await
                .context("the first propagation panicked")?;
        }

        let mesh_ca = match &args.ca_dir {
            Some(dir) => Some(Arc::new(
                MeshCa::load(dir.clone(), args.ca_check_interval)
                    .map_err(|e| anyhow::anyhow!(e))?,
            )),
            None => None,
        };
        let limits = &args.xds_limits;
        let mut ads = AdsServer::new(cache.clone())
            .with_instance_id(instance_id())
            .with_limits(Limits {
                max_request_bytes: limits.xds_max_request_bytes,
                max_resources_per_request: limits.xds_max_resources_per_request,
                ..Limits::default()
            })
            .with_syncz(limits.xds_plaintext_debug);
        let secrets = mesh_ca
            .as_ref()
            .map(|ca| CaSecrets::new(ca.clone(), args.workload_cert_ttl));
        if let Some(secrets) = &secrets {
            ads = ads.with_secrets(secrets.clone());
        }
        let streams_per_connection = limits.xds_max_streams_per_connection;
        let xds = TcpListener::bind(args.xds_addr)
            .await
            .with_context(|| format!("binding xDS address {}", args.xds_addr))?;
        let admin = TcpListener::bind(args.admin_addr)
            .await
            .with_context(|| format!("binding admin address {}", args.admin_addr))?;
        let (xds_addr, admin_addr) = (xds.local_addr()?, admin.local_addr()?);
        let xds_tls = match &mesh_ca {
            Some(_) => Some(
                TcpListener::bind(args.xds_tls_addr)
                    .await
                    .with_context(|| format!("binding mTLS xDS address {}", args.xds_tls_addr))?,
            ),
            None => None,
        };
        let xds_tls_addr = xds_tls.as_ref().map(TcpListener::local_addr).transpose()?;
        let (dns_udp, dns_tcp) = bind_dns(args.dns_addr).await?;
        let dns_addr = dns_udp.local_addr()?;
        let dns_handler = DnsHandler::new(dns.table.subscribe(), dns_upstream(&args.dns))
            .with_zones(meshfleet_dns::zones::ClientZones::merge(
                args.dns.dns_client_zone.iter().cloned(),
            ));

        // Woken when what the catalog is built from changes outside the index (gateway names).
        let wake = Arc::new(tokio::sync::Notify::new());
        let gateway_resolver = match meshfleet_dns::server::gateway_resolver(&args.dns.dns_upstream)
        {
            Ok(resolver) => Some(crate::gateways::resolve_loop(
                index.clone(),
                catalog.clone(),
                resolver,
                changed_rx.clone(),
                wake.clone(),
                args.dns.gateway_min_ttl,
            )),
            Err(error) => {
                tracing::warn!(%error, "east-west gateways given by hostname are not resolved");
                None
            }
        };
        let mut tasks = vec![
            tokio::spawn(while_alive(
                state.alive("reconcile loop"),
                reconcile_loop(
                    Triggers {
                        changed: changed_rx.clone(),
                        wake,
                    },
                    index.clone(),
                    catalog,
                    cache,
                    state.clone(),
                    dns,
                ),
            )),
            tokio::spawn(while_alive(
                state.alive("xDS server"),
                serve_xds(xds, ads.clone(), streams_per_connection),
            )),
            tokio::spawn(crate::admin::serve(admin, state.clone(), ads.clone())),
            tokio::spawn(while_alive(
                state.alive("DNS server"),
                meshfleet_dns::server::serve(dns_udp, dns_tcp, dns_handler),
            )),
        ];
        if let Some(propagation) = propagation {
            tasks.push(tokio::spawn(while_alive(
                state.alive("propagation loop"),
                propagation_loop(changed_rx, index.clone(), state.clone(), propagation),
            )));
        }
        if let Some(source) = source {
            tasks.push(tokio::spawn(while_alive(
                state.alive("config source"),
                source.watch(index.clone(), changed_tx),
            )));
        }
        if let Some(kube) = kube {
            tasks.extend(kube.tasks);
        }
        if let Some(reporter) = kube_status {
            tasks.push(tokio::spawn(reporter.run()));
        }
        if let Some(resolve) = gateway_resolver {
            tasks.push(tokio::spawn(while_alive(
                state.alive("gateway resolver"),
                resolve,
            )));
        }
        if let (Some(listener), Some(ca), Some(secrets)) = (xds_tls, mesh_ca, secrets) {
            tasks.push(tokio::spawn(secrets.renew_loop()));
            tasks.push(tokio::spawn(while_alive(
                state.alive("mTLS xDS server"),
                crate::mtls::serve(
                    listener,
                    ads.clone(),
                    ca,
                    args.workload_cert_ttl,
                    streams_per_connection,
                ),
            )));
        }
        state.ready.store(true, Ordering::Release);
        let config = args.config.as_ref().map_or_else(
            || "the Kubernetes API (--kube)".to_owned(),
            |c| c.display().to_string(),
        );
        tracing::info!(%xds_addr, ?xds_tls_addr, %dns_addr, %admin_addr, %config, "meshfleet is serving");
        Ok(Self {
            xds_addr,
            dns_addr,
            xds_tls_addr,
            admin_addr,
            state,
            ads,
            tasks,
        })
    }

    /// Stops every task of this controller.
    pub fn shutdown(self) {
        self.state.shutting_down.store(true, Ordering::Release);
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

pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Propagation in `run`: the planner keeps the last bindings, the sink what it wrote.
struct Propagation {
    planner: Planner,
    sink: Box<dyn ApplyManifests + Send>,
    /// `--zone`: write only to this zone's clusters.
    zone: Option<String>,
    /// Set when an apply failed: the next one covers every cluster.
    retry: bool,
    /// `--ca-dir`: each cluster's `cacerts` Secret goes with its manifests.
    cas: Option<ClusterCas>,
    /// The bindings, kept under the state directory (when there is one).
    store: Option<BindingStore>,
    /// With `--kube`: whether this replica holds the Lease, and whether the gateway's objects
    /// have all been listed. Only then does it write.
    gate: Option<(watch::Receiver<bool>, watch::Receiver<bool>)>,
}

/// What makes the reconcile loop build the catalog again.
struct Triggers {
    /// The index changed (the config source bumps it).
    changed: watch::Receiver<u64>,
    /// Something else the catalog reads changed (east-west gateway addresses).
    wake: Arc<tokio::sync::Notify>,
}

/// Rebuilds the catalog whenever the index changes (or what else it reads: gateway addresses).
/// Bursts of changes are coalesced by the watch channel: only the latest state is built.
async fn reconcile_loop(
    Triggers { mut changed, wake }: Triggers,
    index: Arc<Mutex<Index>>,
    catalog: Arc<Mutex<Incremental>>,
    cache: SnapshotCache,
    state: Arc<State>,
    dns: Arc<Dns>,
) {
    loop {
        tokio::select! {
            changed = changed.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = wake.notified() => {}
        }
        let (index, catalog) = (index.clone(), catalog.clone());
        let (cache, state, dns) = (cache.clone(), state.clone(), dns.clone());
        // Building the catalog and translating is CPU work: keep it off the async workers.
        let done =
            tokio::task::spawn_blocking(move || reconcile(&index, &catalog, &cache, &state, &dns))
                .await;
        if let Err(error) = done {
            tracing::error!(%error, "reconcile panicked; keeping the last catalog");
        }
    }
}

/// Plans and applies whenever the index changes, and again on a tick (failover runs on the
/// clock). Apart from the catalog's loop: a member API server that answers slowly holds back
/// propagation, never what is served to proxies.
async fn propagation_loop(
    mut changed: watch::Receiver<u64>,
    index: Arc<Mutex<Index>>,
    state: Arc<State>,
    propagation: Arc<Mutex<Propagation>>,
) {
    let mut tick = tokio::time::interval(PROPAGATION_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let full = tokio::select! {
            changed = changed.changed() => {
                if changed.is_err() {
                    return;
                }
                false
            }
            _ = tick.tick() => true,
        };
        let (index, state, propagation) = (index.clone(), state.clone(), propagation.clone());
        let done =
            tokio::task::spawn_blocking(move || propagate(&index, &propagation, &state, full))
                .await;
        if let Err(error) = done {
            tracing::error!(%error, "propagation panicked; keeping the last bindings");
        }
    }
}

/// One propagation pass, on a blocking thread: plan against the index, write through the sink. After a change only
/// the clusters whose manifests changed are written; on a tick (`full`), and after a failed
/// apply, every cluster is brought in line.
fn propagate(index: &Mutex<Index>, propagation: &Mutex<Propagation>, state: &State, full: bool) {
    let mut propagation = propagation.lock().expect("propagation lock");
    let Propagation {
        planner,
        sink,
        zone,
        retry,
        cas,
        store,
        gate,
    } = &mut *propagation;
    if let Some((leader, synced)) = gate {
        if !*synced.borrow() {
            // A partial view of the gateway's objects must not prune anything.
            return;
        }
        if !*leader.borrow() {
            // Planned again, and everything applied, once this replica holds the Lease.
            *retry = true;
            return;
        }
    }
    // The planner reads no EndpointSlice; what it reads is copied (shared objects) so that it
    // plans without holding the index's lock.
    let snapshot = index
        .lock()
        .expect("index lock")
        .snapshot_without(&[kinds::ENDPOINT_SLICE]);
    let clusters: Vec<_> = snapshot.clusters().cloned().collect();
    let now = SystemTime::now();
    let plan = planner.plan(&snapshot, now);
    let (extra, ca_problems) = match cas {
        Some(cas) => cas.secrets(
            clusters
                .iter()
                .filter(|c| zone.as_deref().is_none_or(|z| c.zones().contains(&z)))
                .map(|c| c.name()),
            now,
        ),
        None => Default::default(),
    };
    let only = if full || *retry {
        None
    } else {
        plan.changed.as_ref()
    };
    // Called on a blocking thread: the sink's I/O (files, API calls) is driven from here,
    // never from an async worker.
    let result = tokio::runtime::Handle::current().block_on(apply_with(
        sink.as_mut(),
        plan.desired(),
        &extra,
        &clusters,
        zone.as_deref(),
        only,
    ));
    *retry = result.is_err();
    match result {
        Ok(applied) if applied.written + applied.removed > 0 => tracing::info!(
            bindings = plan.bindings.len(),
            written = applied.written,
            removed = applied.removed,
            "propagated"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(error = %anyhow::Error::from(error), "propagation not fully applied")
        }
    }
    if let Some(Err(error)) = store.as_mut().map(|s| s.save(&plan.bindings)) {
        tracing::error!(%error, "cannot keep the bindings under the state directory");
    }
    state.set_bindings(plan.bindings.clone());
    let mut problems = plan.problems.clone();
    problems.extend(ca_problems);
    state.publish_problems(None, Some(problems));
}

/// One pass: index → catalog → xDS cache and admin state. Problems new since the last pass
/// are logged once.
fn reconcile(
    index: &Mutex<Index>,
    catalog: &Mutex<Incremental>,
    cache: &SnapshotCache,
    state: &State,
    dns: &Dns,
) {
    let started = std::time::Instant::now();
    let mut incremental = catalog.lock().expect("catalog lock");
    // The index is locked only to read what changed; the services are built after.
    let (work, index_problems, clusters) = {
        let mut index = index.lock().expect("index lock");
        let work = incremental.collect(&index);
        index.trim_changes(work.generation());
        let clusters: Vec<_> = index
            .clusters()
            .map(|c| crate::view::ClusterView::of(c))
            .collect();
        (work, index.problems(), clusters)
    };
    state.set_clusters(clusters);
    let collected = started.elapsed();
    let rebuilt = work.len();
    let mut catalog = incremental.build(work);
    let built = started.elapsed();
    // Everything a user has to fix: the sources' problems first, as `meshfleet catalog` shows.
    catalog.lead_with(index_problems);
    let problems = catalog.problems.clone();
    // The cache hears of the services that changed, and of nothing else.
    let changes = incremental.take_changes();
    let dns_changed = dns.affected_by(&changes);
    cache.update(changes);
    if dns_changed || dns.table.borrow().is_empty() {
        dns.publish(&catalog.mesh());
    }
    tracing::info!(
        services = catalog.services.len(),
        rebuilt,
        problems = problems.len(),
        collect_ms = collected.as_secs_f64() * 1e3,
        build_ms = (built - collected).as_secs_f64() * 1e3,
        translate_ms = (started.elapsed() - built).as_secs_f64() * 1e3,
        "catalog built"
    );
    state.set_catalog(catalog);
    state.publish_problems(Some(problems), None);
}

/// DNS's part of the reconcile: the name table, built again when services changed.
struct Dns {
    table: watch::Sender<Arc<NameTable>>,
    /// The services as DNS last saw them, to tell which changes DNS answers differently.
    seen: Mutex<std::collections::HashMap<String, Arc<meshfleet_model::GlobalService>>>,
}

impl Dns {
    fn new() -> Self {
        Self {
            table: watch::Sender::new(Arc::new(NameTable::default())),
            seen: Mutex::default(),
        }
    }

    /// Whether `changes` change what DNS answers (a service added or removed, its names,
    /// families or named ports, a headless service's endpoints); remembers them either way.
    fn affected_by(
        &self,
        changes: &[(String, Option<Arc<meshfleet_model::GlobalService>>)],
    ) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut affected = false;
        for (host, now) in changes {
            let before = match now {
                Some(service) => seen.insert(host.clone(), service.clone()),
                None => seen.remove(host),
            };
            affected |= match (&before, now) {
                (Some(a), Some(b)) => !meshfleet_dns::same_answers(a, b),
                (None, None) => false,
                _ => true,
            };
        }
        affected
    }

    fn publish(&self, mesh: &meshfleet_model::Mesh) {
        self.table.send_replace(Arc::new(NameTable::build(mesh)));
    }
}

/// UDP and TCP on the same address (the port UDP got, when it was 0).
async fn bind_dns(addr: SocketAddr) -> anyhow::Result<(tokio::net::UdpSocket, TcpListener)> {
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .with_context(|| format!("binding DNS address {addr} (UDP)"))?;
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding DNS address {addr} (TCP)"))?;
    Ok((udp, tcp))
}

/// The resolver other names are forwarded to; without one, they are refused.
fn dns_upstream(args: &crate::DnsArgs) -> Option<meshfleet_dns::server::TokioResolver> {
    match meshfleet_dns::server::forwarder(&args.dns_upstream) {
        Ok(resolver) => Some(resolver),
        Err(error) => {
            tracing::warn!(%error, "DNS forwards no name; only the mesh's names are answered");
            None
        }
    }
}

/// Runs `task`, holding `alive` until it ends (returns, or unwinds from a panic).
async fn while_alive(alive: Alive, task: impl Future<Output = ()>) {
    let _alive = alive;
    task.await;
}

/// This instance's name in xDS responses' `control_plane`, so that replicas can be told apart
/// as istiod's are: the pod's name (`POD_NAME`, from the downward API), else the host's.
fn instance_id() -> String {
    instance_id_from(
        |var| std::env::var(var).ok(),
        || std::fs::read_to_string("/etc/hostname").ok(),
    )
}

fn instance_id_from(
    env: impl Fn(&str) -> Option<String>,
    hostname_file: impl FnOnce() -> Option<String>,
) -> String {
    let named =
        |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    named(env("POD_NAME"))
        .or_else(|| named(env("HOSTNAME")))
        .or_else(|| named(hostname_file()))
        .unwrap_or_else(|| "meshfleet".to_owned())
}

async fn serve_xds(listener: TcpListener, ads: AdsServer, streams_per_connection: u32) {
    // TCP_NODELAY as tonic sets it on connections it accepts itself: small responses and ACKs
    // must not wait for a delayed ACK.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            conn.inspect(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            })
        },
    );
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(Some(streams_per_connection))
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
    let mut directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| default_level.to_owned());
    // hickory logs every DNS query at info: only its warnings, unless asked for by name.
    if !directives.contains("hickory") {
        directives.push_str(
            ",hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=warn",
        );
    }
    // kube-rs logs every failed request at error, and a watch's every reconnect: meshfleet
    // reports what they mean (a member not ready, a problem naming the object) itself.
    if !directives.contains("kube") {
        directives.push_str(",kube_client=off,kube_runtime=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_is_named_by_its_pod_else_its_host() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |var: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        fn file(text: Option<&'static str>) -> impl FnOnce() -> Option<String> {
            move || text.map(str::to_owned)
        }
        assert_eq!(
            instance_id_from(
                env(&[("POD_NAME", "meshfleet-7d9f"), ("HOSTNAME", "h")]),
                file(None)
            ),
            "meshfleet-7d9f"
        );
        assert_eq!(
            instance_id_from(
                env(&[("POD_NAME", " "), ("HOSTNAME", "node-1")]),
                file(None)
            ),
            "node-1"
        );
        assert_eq!(instance_id_from(env(&[]), file(Some("box\n"))), "box");
        assert_eq!(instance_id_from(env(&[]), file(None)), "meshfleet");
    }
}
