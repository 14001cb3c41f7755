//! The ADS server's metrics under the names istiod gives them, so that an operator's
//! dashboards and alerts for istiod work unchanged; and what the registry of clients says at
//! scrape time (in sync, behind, rejecting; versions acknowledged).
//!
//! Names and labels follow Istio 1.30 (`pilot/pkg/xds/monitoring.go`, `pkg/xds/monitoring.go`):
//! `pilot_xds`, `pilot_xds_pushes{type}` (`cds` … and `cds_senderr` …),
//! `pilot_total_xds_rejects{type}`, `pilot_xds_{cds,eds,lds,rds,sds}_reject`,
//! `pilot_xds_expired_nonce`, `pilot_proxy_convergence_time`. istiod's exporter drops
//! OpenMetrics' `_total` suffix from its sums ([`IstioCounter`]); its reject gauges carry the
//! node id and error as labels, which meshfleet leaves out (labels are fixed strings here).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::service::status::v3::ConfigStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::resource::TYPES;
use crate::server::metrics::{SHORT_TYPES, TypeLabel};
use crate::server::stream::Connected;

/// `pilot_xds_pushes`' `type` values for responses that could not be sent.
const SEND_ERROR_TYPES: [&str; TYPES] = [
    "cds_senderr",
    "eds_senderr",
    "lds_senderr",
    "rds_senderr",
    "sds_senderr",
    "nds_senderr",
];

/// `pilot_proxy_convergence_time`'s buckets: Istio's (0.1 s to 30 s) with finer ones below,
/// where meshfleet's pushes land.
const CONVERGENCE_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0,
];

/// A counter exposed as istiod exposes its sums: under its own name, without `_total` (typed
/// `unknown`, so that the sample keeps the family's name).
#[derive(Clone, Debug, Default)]
pub(super) struct IstioCounter(Counter);

impl IstioCounter {
    pub(super) fn inc(&self) {
        self.0.inc();
    }
}

impl TypedMetric for IstioCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for IstioCounter {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// istiod's metrics, kept beside meshfleet's own. Clones share their values.
#[derive(Clone, Debug)]
pub(super) struct IstioMetrics {
    /// `pilot_xds_pushes`, per type, and per type's send errors.
    pushes: [IstioCounter; TYPES],
    send_errors: [IstioCounter; TYPES],
    pushes_family: Family<TypeLabel, IstioCounter>,
    /// `pilot_total_xds_rejects`, per type.
    rejects: [IstioCounter; TYPES],
    rejects_family: Family<TypeLabel, IstioCounter>,
    /// `pilot_xds_cds_reject` … `pilot_xds_sds_reject`.
    rejects_by_name: [Gauge; TYPES],
    /// `pilot_xds_expired_nonce`.
    expired_nonces: IstioCounter,
    /// `pilot_proxy_convergence_time`: from the cache being handed a change to the transport
    /// taking each response it caused.
    convergence: Histogram,
}

impl Default for IstioMetrics {
    fn default() -> Self {
        let (pushes_family, rejects_family) = (Family::default(), Family::default());
        let of = |family: &Family<TypeLabel, IstioCounter>, types: [&'static str; TYPES]| {
            types.map(|r#type| family.get_or_create(&TypeLabel { r#type }).clone())
        };
        Self {
            pushes: of(&pushes_family, SHORT_TYPES),
            send_errors: of(&pushes_family, SEND_ERROR_TYPES),
            rejects: of(&rejects_family, SHORT_TYPES),
            pushes_family,
            rejects_family,
            rejects_by_name: Default::default(),
            expired_nonces: IstioCounter::default(),
            convergence: Histogram::new(CONVERGENCE_BUCKETS),
        }
    }
}

impl IstioMetrics {
    /// Registers every metric under its Istio name; `clients` is meshfleet's gauge of
    /// connected streams, which `pilot_xds` is.
    pub(super) fn register(&self, registry: &mut Registry, clients: &Gauge) {
        registry.register(
            "pilot_xds",
            "Number of endpoints connected to this pilot using XDS",
            clients.clone(),
        );
        registry.register(
            "pilot_xds_pushes",
            "Pilot build and send errors for lds, rds, cds and eds",
            self.pushes_family.clone(),
        );
        registry.register(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy",
            self.rejects_family.clone(),
        );
        for (short, gauge) in SHORT_TYPES.iter().zip(&self.rejects_by_name) {
            let name = format!("pilot_xds_{short}_reject");
            let help = format!("Pilot rejected {} configs", short.to_uppercase());
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "pilot_xds_expired_nonce",
            "Total number of XDS requests with an expired nonce",
            self.expired_nonces.clone(),
        );
        registry.register(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required configuration",
            self.convergence.clone(),
        );
    }

    pub(super) fn push(&self, i: usize) {
        self.pushes[i].inc();
    }

    pub(super) fn send_error(&self, i: usize) {
        self.send_errors[i].inc();
    }

    pub(super) fn reject(&self, i: usize) {
        self.rejects[i].inc();
        self.rejects_by_name[i].inc();
    }

    pub(super) fn expired_nonce(&self) {
        self.expired_nonces.inc();
    }

    pub(super) fn converged(&self, seconds: f64) {
        self.convergence.observe(seconds);
    }
}

/// The registry of connected clients, read at each scrape.
#[derive(Debug)]
pub(super) struct ClientsCollector {
    pub clients: Arc<Mutex<BTreeMap<u64, Arc<Mutex<Connected>>>>>,
}

/// What a client is, over the types it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sync {
    /// Every response acknowledged.
    Synced,
    /// Some response not acknowledged yet.
    Behind,
    /// The last response of some type rejected.
    Rejecting,
}

impl Sync {
    fn label(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Behind => "behind",
            Self::Rejecting => "rejecting",
        }
    }
}

/// `(type, version)` as labels of `meshfleet_xds_clients_acked`.
type VersionLabels = [(&'static str, String); 2];

/// Clients per sync state, and per type and version acknowledged.
struct Tally {
    states: BTreeMap<Sync, i64>,
    versions: BTreeMap<(&'static str, String), i64>,
}

impl ClientsCollector {
    /// Clients per sync state, and per type and version acknowledged.
    fn tally(&self) -> Tally {
        let mut states =
            BTreeMap::from([(Sync::Synced, 0), (Sync::Behind, 0), (Sync::Rejecting, 0)]);
        let mut versions = BTreeMap::new();
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        for client in clients.values() {
            let client = client.lock().unwrap_or_else(|e| e.into_inner());
            let types = &client.status.types;
            if types.is_empty() {
                continue;
            }
            let state = types
                .values()
                .map(|t| match t.config_status() {
                    ConfigStatus::Error => Sync::Rejecting,
                    ConfigStatus::Synced => Sync::Synced,
                    _ => Sync::Behind,
                })
                .max()
                .unwrap_or(Sync::Synced);
            *states.entry(state).or_default() += 1;
            for (short, t) in types.iter().filter(|(_, t)| !t.version_acked.is_empty()) {
                *versions
                    .entry((*short, t.version_acked.clone()))
                    .or_default() += 1;
            }
        }
        Tally { states, versions }
    }
}

impl Collector for ClientsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Tally { states, versions } = self.tally();
        let mut clients = encoder.encode_descriptor(
            "meshfleet_xds_clients",
            "Connected clients by sync state: synced, behind (a response not acknowledged yet), rejecting (the last response of some type rejected)",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in states {
            let labels = [("state", state.label())];
            ConstGauge::new(count).encode(clients.encode_family(&labels)?)?;
        }
        let mut acked = encoder.encode_descriptor(
            "meshfleet_xds_clients_acked",
            "Clients by the version of each type they last acknowledged",
            None,
            MetricType::Gauge,
        )?;
        for ((short, version), count) in versions {
            let labels: VersionLabels = [("type", short.to_owned()), ("version", version)];
            ConstGauge::new(count).encode(acked.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
