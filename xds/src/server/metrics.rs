//! Counters of the ADS server, rendered in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::cache::type_index;

/// Short names of [`crate::resource::SNAPSHOT_TYPES`], used as the fixed `type` label values.
pub const SHORT_TYPES: [&str; 4] = ["cds", "eds", "lds", "rds"];

/// The short name (`cds`, `eds`, `lds`, `rds`) of a snapshot type URL.
pub fn short_type(type_url: &str) -> Option<&'static str> {
    type_index(type_url).map(|i| SHORT_TYPES[i])
}

/// Atomic counters; cheap to bump from every stream.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Streams currently open (gauge).
    streams_open: AtomicI64,
    /// Streams ever accepted.
    streams_total: AtomicU64,
    /// Requests received on all streams.
    requests_total: AtomicU64,
    /// Responses sent, per type in `SNAPSHOT_TYPES` order.
    pushes_total: [AtomicU64; 4],
    /// NACKs received, per type in `SNAPSHOT_TYPES` order.
    nacks_total: [AtomicU64; 4],
    /// Requests ignored because their nonce was not the last one sent.
    stale_nonces_total: AtomicU64,
    /// Requests for a type meshfleet does not serve.
    unknown_type_total: AtomicU64,
    /// `istio.io/debug/syncz` requests answered.
    syncz_total: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn streams_open(&self) -> i64 {
        self.streams_open.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests_total.load(Ordering::Relaxed)
    }

    /// Responses sent of `type_url` (0 for types not in the snapshot).
    pub fn pushes(&self, type_url: &str) -> u64 {
        type_index(type_url).map_or(0, |i| self.pushes_total[i].load(Ordering::Relaxed))
    }

    /// NACKs received over all types.
    pub fn nacks(&self) -> u64 {
        self.nacks_total
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn stale_nonces(&self) -> u64 {
        self.stale_nonces_total.load(Ordering::Relaxed)
    }

    pub fn unknown_types(&self) -> u64 {
        self.unknown_type_total.load(Ordering::Relaxed)
    }

    pub(crate) fn stream_opened(&self) {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        bump(&self.streams_total);
    }

    pub(crate) fn stream_closed(&self) {
        self.streams_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn request(&self) {
        bump(&self.requests_total);
    }

    pub(crate) fn push(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            bump(&self.pushes_total[i]);
        }
    }

    pub(crate) fn nack(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            bump(&self.nacks_total[i]);
        }
    }

    pub(crate) fn stale_nonce(&self) {
        bump(&self.stale_nonces_total);
    }

    pub(crate) fn unknown_type(&self) {
        bump(&self.unknown_type_total);
    }

    pub(crate) fn syncz(&self) {
        bump(&self.syncz_total);
    }

    /// Appends all metrics in Prometheus text format, names prefixed `meshfleet_xds_`.
    pub fn render_prometheus(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let gauge = self.streams_open() as f64;
        metric(
            out,
            "streams_open",
            "gauge",
            "ADS streams open.",
            &[("", gauge)],
        );
        let scalar = |c: &AtomicU64| [("", load(c) as f64)];
        let counters = [
            (
                "streams_total",
                "ADS streams accepted.",
                &self.streams_total,
            ),
            (
                "requests_total",
                "Discovery requests received.",
                &self.requests_total,
            ),
            (
                "stale_nonces_total",
                "Requests ignored for a stale nonce.",
                &self.stale_nonces_total,
            ),
            (
                "unknown_type_total",
                "Requests for a type not served.",
                &self.unknown_type_total,
            ),
            (
                "syncz_total",
                "istio.io/debug/syncz requests answered.",
                &self.syncz_total,
            ),
        ];
        for (name, help, c) in counters {
            metric(out, name, "counter", help, &scalar(c));
        }
        let per_type = |cs: &[AtomicU64; 4]| -> Vec<(&str, f64)> {
            SHORT_TYPES
                .iter()
                .zip(cs)
                .map(|(t, c)| (*t, load(c) as f64))
                .collect()
        };
        let pushes = per_type(&self.pushes_total);
        metric(
            out,
            "pushes_total",
            "counter",
            "Discovery responses sent.",
            &pushes,
        );
        let nacks = per_type(&self.nacks_total);
        metric(
            out,
            "nacks_total",
            "counter",
            "Responses rejected by clients.",
            &nacks,
        );
    }
}

/// One metric family: `samples` are `(type label, value)`; an empty label means no labels.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP meshfleet_xds_{name} {help}");
    let _ = writeln!(out, "# TYPE meshfleet_xds_{name} {kind}");
    for (ty, value) in samples {
        if ty.is_empty() {
            let _ = writeln!(out, "meshfleet_xds_{name} {value}");
        } else {
            let _ = writeln!(out, "meshfleet_xds_{name}{{type=\"{ty}\"}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{CLUSTER, ENDPOINT, SNAPSHOT_TYPES};

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.stream_opened();
        m.push(CLUSTER);
        m.push(CLUSTER);
        m.nack(ENDPOINT);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        assert!(
            out.contains("# TYPE meshfleet_xds_streams_open gauge\nmeshfleet_xds_streams_open 1\n")
        );
        assert!(out.contains("meshfleet_xds_pushes_total{type=\"cds\"} 2\n"));
        assert!(out.contains("meshfleet_xds_pushes_total{type=\"eds\"} 0\n"));
        assert!(out.contains("meshfleet_xds_nacks_total{type=\"eds\"} 1\n"));
        assert!(out.contains("meshfleet_xds_streams_total 1\n"));
        assert_eq!(SNAPSHOT_TYPES.len(), SHORT_TYPES.len());
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("meshfleet_xds_"), "{line}");
        }
    }
}
