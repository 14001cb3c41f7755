//! The process metrics Prometheus' own clients export (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, ...), read from `/proc/self` at each
//! scrape; `prometheus-client` has no collector of its own. Linux only: elsewhere nothing is
//! reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on every Linux
/// architecture Rust targets.
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads the process's figures from `/proc` at each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One scrape's figures; a figure that could not be read is left out.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    start_time_seconds: Option<f64>,
}

impl Figures {
    fn read() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat");
        let stat = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |i: usize| stat.get(i).and_then(|v| v.parse::<f64>().ok());
        let status = read("/proc/self/status").unwrap_or_default();
        let btime = read("/proc/stat").and_then(|s| labelled(&s, "btime"));
        let limits = read("/proc/self/limits").unwrap_or_default();
        Self {
            // utime + stime, fields 14 and 15 of stat(5).
            cpu_seconds: field(11)
                .zip(field(12))
                .map(|(u, s)| (u + s) / TICKS_PER_SECOND),
            resident_bytes: labelled(&status, "VmRSS:").map(|kb| kb * 1024.0),
            virtual_bytes: labelled(&status, "VmSize:").map(|kb| kb * 1024.0),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds: labelled(&limits, "Max open files"),
            // starttime, field 22, is in ticks since boot.
            start_time_seconds: btime.zip(field(19)).map(|(b, t)| b + t / TICKS_PER_SECOND),
        }
    }
}

/// The fields of `/proc/self/stat` after the command name, from field 3 (`state`) on.
fn stat_fields(stat: &str) -> Vec<&str> {
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().collect()
}

/// The first number after `label` on the line that starts with it.
fn labelled(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let f = Figures::read();
        if let Some(v) = f.cpu_seconds {
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(v).encode(m)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                f.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                f.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                f.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                f.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                f.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(v).encode(m)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stat_fields_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 4 0 12345 999";
        let fields = stat_fields(stat);
        assert_eq!(fields[0], "S");
        assert_eq!((fields[11], fields[12], fields[19]), ("250", "50", "12345"));
        assert_eq!(labelled("VmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048.0));
        assert_eq!(
            labelled(
                "Max open files            20000                20000                files\n",
                "Max open files"
            ),
            Some(20000.0)
        );
    }

    #[test]
    fn this_process_has_figures() {
        let f = Figures::read();
        assert!(f.cpu_seconds.is_some_and(|s| s >= 0.0), "{f:?}");
        assert!(f.resident_bytes.is_some_and(|b| b > 0.0), "{f:?}");
        assert!(f.open_fds.is_some_and(|n| n >= 3.0), "{f:?}");
        assert!(f.start_time_seconds.is_some_and(|t| t > 1.0e9), "{f:?}");
    }
}
