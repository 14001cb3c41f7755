//! Counters of the ADS server, as `prometheus-client` metrics: registered by whoever serves
//! `/metrics` ([`crate::server::AdsServer::register_metrics`]), cheap to bump from every
//! stream. Each is also kept under istiod's name where istiod has one (module
//! `istio_metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use std::time::Duration;

use crate::cache::type_index;
use crate::resource::TYPES;
use crate::server::istio_metrics::IstioMetrics;

/// Short names of [`crate::resource::SNAPSHOT_TYPES`], used as the fixed `type` label values.
pub const SHORT_TYPES: [&str; TYPES] = ["cds", "eds", "lds", "rds", "sds", "nds"];

/// The short name (`cds`, `eds`, `lds`, `rds`) of a snapshot type URL.
pub fn short_type(type_url: &str) -> Option<&'static str> {
    type_index(type_url).map(|i| SHORT_TYPES[i])
}

/// The `type` label of per-type metrics: one of [`SHORT_TYPES`], never free text.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TypeLabel {
    pub r#type: &'static str,
}

/// The ADS server's metrics. Clones share their values.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Streams currently open.
    streams_open: Gauge,
    /// Streams ever accepted.
    streams: Counter,
    /// Requests received on all streams.
    requests: Counter,
    /// Responses sent, per type.
    pushes: Family<TypeLabel, Counter>,
    /// NACKs received, per type.
    nacks: Family<TypeLabel, Counter>,
    /// Requests ignored because their nonce was not the last one sent.
    stale_nonces: Counter,
    /// Requests for a type meshfleet does not serve.
    unknown_types: Counter,
    /// `istio.io/debug/syncz` requests answered.
    syncz: Counter,
    /// Responses computed and not yet taken by the transport, over all streams.
    queued_responses: Gauge,
    /// Their encoded size.
    queued_bytes: Gauge,
    /// A stream's queue depth each time it queues a response: bounded by the outbox.
    queue_depth: Histogram,
    /// The same events under istiod's names.
    istio: IstioMetrics,
    /// The counters of `pushes` and `nacks`, per type in [`SHORT_TYPES`] order: bumped
    /// without the family's lock.
    pushes_by_type: [Counter; TYPES],
    nacks_by_type: [Counter; TYPES],
}

impl Default for Metrics {
    /// Every per-type counter exists from the start, at 0.
    fn default() -> Self {
        let (pushes, nacks) = (Family::default(), Family::default());
        let of = |family: &Family<TypeLabel, Counter>| {
            SHORT_TYPES.map(|r#type| family.get_or_create(&TypeLabel { r#type }).clone())
        };
        Self {
            pushes_by_type: of(&pushes),
            nacks_by_type: of(&nacks),
            pushes,
            nacks,
            streams_open: Gauge::default(),
            streams: Counter::default(),
            requests: Counter::default(),
            stale_nonces: Counter::default(),
            unknown_types: Counter::default(),
            syncz: Counter::default(),
            queued_responses: Gauge::default(),
            queued_bytes: Gauge::default(),
            queue_depth: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0]),
            istio: IstioMetrics::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric in `registry` (names as given, e.g. under a `meshfleet_xds`
    /// prefix: `meshfleet_xds_streams_open`, `meshfleet_xds_pushes_total{type="eds"}`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "streams_open",
            "ADS streams open",
            self.streams_open.clone(),
        );
        registry.register("streams", "ADS streams accepted", self.streams.clone());
        registry.register(
            "requests",
            "Discovery requests received",
            self.requests.clone(),
        );
        registry.register("pushes", "Discovery responses sent", self.pushes.clone());
        registry.register("nacks", "Responses rejected by clients", self.nacks.clone());
        registry.register(
            "stale_nonces",
            "Requests ignored for a stale nonce",
            self.stale_nonces.clone(),
        );
        registry.register(
            "unknown_type",
            "Requests for a type not served",
            self.unknown_types.clone(),
        );
        registry.register(
            "syncz",
            "istio.io/debug/syncz requests answered",
            self.syncz.clone(),
        );
        registry.register(
            "queued_responses",
            "Responses computed and not yet taken by the transport",
            self.queued_responses.clone(),
        );
        registry.register(
            "queued_bytes",
            "Encoded size of the responses queued",
            self.queued_bytes.clone(),
        );
        registry.register(
            "stream_queue_depth",
            "Responses a stream has queued, each time it queues one",
            self.queue_depth.clone(),
        );
    }

    /// Registers istiod's names (`pilot_xds`, `pilot_xds_pushes`, ...) in `registry`, which
    /// must not add a prefix.
    pub fn register_istio(&self, registry: &mut Registry) {
        self.istio.register(registry, &self.streams_open);
    }

    pub fn streams_open(&self) -> i64 {
        self.streams_open.get()
    }

    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Responses sent of `type_url` (0 for types not in the snapshot).
    pub fn pushes(&self, type_url: &str) -> u64 {
        type_index(type_url).map_or(0, |i| self.pushes_by_type[i].get())
    }

    /// NACKs received over all types.
    pub fn nacks(&self) -> u64 {
        self.nacks_by_type.iter().map(Counter::get).sum()
    }

    pub fn stale_nonces(&self) -> u64 {
        self.stale_nonces.get()
    }

    pub fn unknown_types(&self) -> u64 {
        self.unknown_types.get()
    }

    pub(crate) fn stream_opened(&self) {
        self.streams_open.inc();
        self.streams.inc();
    }

    pub(crate) fn stream_closed(&self) {
        self.streams_open.dec();
    }

    pub(crate) fn request(&self) {
        self.requests.inc();
    }

    pub(crate) fn push(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            self.pushes_by_type[i].inc();
            self.istio.push(i);
        }
    }

    /// A response of `type_url` could not be sent (it is over the size limit).
    pub(crate) fn send_error(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            self.istio.send_error(i);
        }
    }

    pub(crate) fn nack(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            self.nacks_by_type[i].inc();
            self.istio.reject(i);
        }
    }

    pub(crate) fn stale_nonce(&self) {
        self.stale_nonces.inc();
        self.istio.expired_nonce();
    }

    /// The transport took a response caused by a change the cache was handed `since` ago.
    pub(crate) fn converged(&self, since: Duration) {
        self.istio.converged(since.as_secs_f64());
    }

    pub(crate) fn unknown_type(&self) {
        self.unknown_types.inc();
    }

    pub(crate) fn syncz(&self) {
        self.syncz.inc();
    }

    /// A stream queued a response of `bytes`; it now has `depth` queued.
    pub(crate) fn enqueued(&self, bytes: usize, depth: usize) {
        self.queued_responses.inc();
        self.queued_bytes.inc_by(bytes as i64);
        self.queue_depth.observe(depth as f64);
    }

    /// The transport took a response of `bytes` (or the client left it unread).
    pub(crate) fn dequeued(&self, bytes: usize) {
        self.queued_responses.dec();
        self.queued_bytes.dec_by(bytes as i64);
    }

    /// Responses queued over all streams.
    pub fn queued_responses(&self) -> i64 {
        self.queued_responses.get()
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;
    use crate::resource::{CLUSTER, ENDPOINT, SNAPSHOT_TYPES};

    #[test]
    fn registers_every_metric_under_the_prefix() {
        let m = Metrics::default();
        let mut registry = Registry::default();
        m.register(registry.sub_registry_with_prefix("meshfleet_xds"));
        m.stream_opened();
        m.push(CLUSTER);
        m.push(CLUSTER);
        m.nack(ENDPOINT);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        assert!(
            out.contains("# TYPE meshfleet_xds_streams_open gauge\nmeshfleet_xds_streams_open 1\n"),
            "{out}"
        );
        assert!(
            out.contains("meshfleet_xds_pushes_total{type=\"cds\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("meshfleet_xds_pushes_total{type=\"eds\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("meshfleet_xds_nacks_total{type=\"eds\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("meshfleet_xds_streams_total 1\n"), "{out}");
        assert_eq!(SNAPSHOT_TYPES.len(), SHORT_TYPES.len());
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("meshfleet_xds_"), "{line}");
        }
    }
}
