//! What the benchmark measures besides time: peak resident memory and end-to-end latency.

use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};

/// The process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`), or
/// `None` where the system does not report it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak resident set size to the current one (writing `5` to
/// `/proc/self/clear_refs`, Linux 4.0+), so that each run of a multi-query benchmark
/// reports its own peak. Returns whether the reset worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// End-to-end latencies in microseconds, recorded by every worker's sink into one
/// histogram (each worker records into its own and merges once at the end, so recording
/// takes no lock).
#[derive(Clone)]
pub struct LatencyRecorder {
    merged: Arc<Mutex<Histogram<u64>>>,
}

/// Latencies above this (an hour, in µs) are clamped: the histogram's range.
const MAX_LATENCY_US: u64 = 3_600_000_000;

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        LatencyRecorder { merged: Arc::new(Mutex::new(new_histogram())) }
    }

    /// A histogram for one worker, merged back with [`merge`](Self::merge).
    pub fn local(&self) -> Histogram<u64> {
        new_histogram()
    }

    /// Adds one worker's latencies.
    pub fn merge(&self, local: &Histogram<u64>) {
        let mut merged = self.merged.lock().unwrap_or_else(|e| e.into_inner());
        // Both histograms have the same range, so adding cannot fail; a failure would
        // only lose latency samples, never results.
        let _ = merged.add(local);
    }

    /// Count, p50, p99 and max in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let h = self.merged.lock().unwrap_or_else(|e| e.into_inner());
        LatencySummary {
            samples: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

/// Records one latency into a worker's histogram.
pub fn record(h: &mut Histogram<u64>, latency_us: u64) {
    h.saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits over 1 µs .. 1 h: about 0.1% resolution. The bounds are
    // constants that satisfy `new_with_bounds`'s rules (low >= 1, high >= 2 * low,
    // sigfig <= 5), so this cannot fail at run time.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Latency percentiles of a run.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Outputs whose latency was recorded.
    pub samples: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_reported_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = peak_rss_bytes().expect("VmHWM on Linux");
            assert!(rss > 1024 * 1024, "a running test process has more than 1 MiB resident: {rss}");
        }
    }

    #[test]
    fn percentiles_of_merged_workers() {
        let recorder = LatencyRecorder::new();
        let mut a = recorder.local();
        let mut b = recorder.local();
        for us in 1..=900 {
            record(&mut a, us);
        }
        for us in 901..=1000 {
            record(&mut b, us);
        }
        recorder.merge(&a);
        recorder.merge(&b);
        let s = recorder.summary();
        assert_eq!(s.samples, 1000);
        assert!((499..=501).contains(&s.p50_us), "{s:?}");
        assert!((989..=991).contains(&s.p99_us), "{s:?}");
        assert_eq!(s.max_us, 1000);
    }
}
