//! What the benchmarks share: percentiles, units, memory.

use std::time::Duration;

/// The `p`th percentile of `sorted` (nearest rank).
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[allow(dead_code)] // not every benchmark prints microseconds
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// VmRSS and VmHWM from /proc/self/status.
pub fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    format!("rss {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}
