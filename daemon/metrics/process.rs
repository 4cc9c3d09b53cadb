//! The process's own readings (CPU, memory, open files, start time), from `/proc/self`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Readings refreshed at each scrape.
#[derive(Clone, Default)]
pub struct ProcessMetrics {
    cpu_seconds: Counter<f64, AtomicU64>,
    resident_bytes: Gauge,
    open_fds: Gauge,
    start_time: Gauge<f64, AtomicU64>,
}

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_BYTES: i64 = 4096;

impl ProcessMetrics {
    /// Reads `/proc/self`; leaves a reading as it was when its file cannot be read.
    pub(super) fn read(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th,
            // starttime the 20th.
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            let spent = (number(11) + number(12)) / TICKS_PER_SECOND;
            // A counter only goes up: it catches up with the kernel's total.
            let behind = spent - self.cpu_seconds.get();
            if behind > 0.0 {
                self.cpu_seconds.inc_by(behind);
            }
            if let Some(boot) = boot_time() {
                self.start_time.set(boot + number(19) / TICKS_PER_SECOND);
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let pages = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(0);
            self.resident_bytes.set(pages * PAGE_BYTES);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
    }

    /// Registers the readings under Prometheus's standard `process_` names.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory",
            self.resident_bytes.clone(),
        );
        registry.register("process_open_fds", "Open file descriptors", self.open_fds.clone());
        registry.register(
            "process_start_time_seconds",
            "Start time since the Unix epoch",
            self.start_time.clone(),
        );
    }
}

/// The system's boot time (Unix seconds), from `/proc/stat`.
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}
