//! What the benchmarks share: percentiles, units, memory.

use std::time::Duration;

/// The `p`th percentile of `sorted` (nearest rank).
pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[allow(dead_code)] // not every benchmark prints microseconds
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// VmRSS and VmHWM of this process.
#[allow(dead_code)] // not every benchmark runs in-process
pub(crate) fn memory() -> String {
    memory_at("/proc/self/status")
}

/// VmRSS and VmHWM of process `pid`.
#[allow(dead_code)] // not every benchmark runs a process of its own
pub(crate) fn memory_of(pid: u32) -> String {
    memory_at(&format!("/proc/{pid}/status"))
}

fn memory_at(path: &str) -> String {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    format!("rss {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}
