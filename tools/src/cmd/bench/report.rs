//! Benchmark figures: computed once from the merged histogram, printed as
//! aligned lines or JSON.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

const GIB: f64 = (1u64 << 30) as f64;

/// What a finished run measured.
pub struct Totals<'a> {
    pub elapsed: Duration,
    /// Process CPU time (user + system) over the run.
    pub cpu: Duration,
    pub latencies_ns: &'a Histogram<u64>,
}

/// Everything `bench` reports; field names are the JSON keys.
#[derive(Debug, Serialize, PartialEq)]
pub struct BenchReport {
    pub pattern: &'static str,
    pub block_bytes: u64,
    pub depth: u32,
    pub seconds_requested: u64,
    pub region_bytes: u64,
    pub elapsed_seconds: f64,
    pub ios: u64,
    pub bytes: u64,
    /// Decimal megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Binary mebibytes (2^20) per second.
    pub mib_per_s: f64,
    pub iops: f64,
    pub latency_us: Latency,
    pub cpu_seconds: f64,
    /// CPU seconds per GiB moved.
    pub cpu_seconds_per_gib: f64,
}

/// Latency in microseconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct Latency {
    pub avg: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl BenchReport {
    pub fn new(
        pattern: &'static str,
        block_bytes: u64,
        depth: u32,
        seconds_requested: u64,
        region_bytes: u64,
        totals: Totals<'_>,
    ) -> BenchReport {
        let h = totals.latencies_ns;
        let ios = h.len();
        let bytes = ios.saturating_mul(block_bytes);
        let secs = totals.elapsed.as_secs_f64().max(1e-9);
        let cpu = totals.cpu.as_secs_f64();
        let empty = ios == 0;
        let q = |quantile: f64| {
            if empty {
                0.0
            } else {
                us(h.value_at_quantile(quantile))
            }
        };
        BenchReport {
            pattern,
            block_bytes,
            depth,
            seconds_requested,
            region_bytes,
            elapsed_seconds: secs,
            ios,
            bytes,
            mb_per_s: bytes as f64 / secs / 1e6,
            mib_per_s: bytes as f64 / secs / (1u64 << 20) as f64,
            iops: ios as f64 / secs,
            latency_us: Latency {
                avg: if empty { 0.0 } else { h.mean() / 1000.0 },
                min: if empty { 0.0 } else { us(h.min()) },
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p99_9: q(0.999),
                max: if empty { 0.0 } else { us(h.max()) },
            },
            cpu_seconds: cpu,
            cpu_seconds_per_gib: if bytes == 0 {
                0.0
            } else {
                cpu / (bytes as f64 / GIB)
            },
        }
    }

    /// Aligned `key: value` lines.
    pub fn human(&self) -> String {
        let l = &self.latency_us;
        let rows = [
            (
                "pattern",
                format!(
                    "{}, {}-byte I/Os, depth {}, over {} bytes",
                    self.pattern, self.block_bytes, self.depth, self.region_bytes
                ),
            ),
            (
                "time",
                format!(
                    "{:.2} s ({} s asked)",
                    self.elapsed_seconds, self.seconds_requested
                ),
            ),
            (
                "moved",
                format!("{} bytes in {} I/Os", self.bytes, self.ios),
            ),
            (
                "throughput",
                format!("{:.1} MB/s ({:.1} MiB/s)", self.mb_per_s, self.mib_per_s),
            ),
            ("iops", format!("{:.0}", self.iops)),
            (
                "latency us",
                format!(
                    "avg {:.1} min {:.1} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
                    l.avg, l.min, l.p50, l.p90, l.p99, l.p99_9, l.max
                ),
            ),
            (
                "cpu",
                format!(
                    "{:.2} s user+sys, {:.3} s per GiB",
                    self.cpu_seconds, self.cpu_seconds_per_gib
                ),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        rows.iter()
            .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values_ns: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 600_000_000_000, 3).unwrap();
        for &v in values_ns {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn figures_follow_from_the_samples() {
        // 1000 I/Os of 1 MiB in 2 s: 524.288 MB/s, 500 MiB/s, 500 IOPS.
        let mut values = vec![100_000u64; 990];
        values.extend([5_000_000u64; 10]);
        let h = histogram(&values);
        let r = BenchReport::new(
            "seq-read",
            1 << 20,
            4,
            2,
            1 << 30,
            Totals {
                elapsed: Duration::from_secs(2),
                cpu: Duration::from_millis(250),
                latencies_ns: &h,
            },
        );
        assert_eq!(r.ios, 1000);
        assert_eq!(r.bytes, 1000 << 20);
        assert!((r.mb_per_s - 524.288).abs() < 1e-6, "{}", r.mb_per_s);
        assert!((r.mib_per_s - 500.0).abs() < 1e-9);
        assert!((r.iops - 500.0).abs() < 1e-9);
        assert!(
            (r.latency_us.p50 - 100.0).abs() < 0.1,
            "{}",
            r.latency_us.p50
        );
        assert!((r.latency_us.p99 - 100.0).abs() < 0.1);
        assert!(
            (r.latency_us.p99_9 - 5000.0).abs() < 5.0,
            "{}",
            r.latency_us.p99_9
        );
        assert!((r.latency_us.max - 5000.0).abs() < 5.0);
        assert!(
            (r.latency_us.avg - 149.0).abs() < 0.5,
            "{}",
            r.latency_us.avg
        );
        // 0.25 s of CPU for 1000 MiB = 0.25 / (1000/1024) s per GiB.
        assert!((r.cpu_seconds_per_gib - 0.256).abs() < 1e-9);
        let text = r.human();
        assert!(
            text.contains("throughput: 524.3 MB/s (500.0 MiB/s)"),
            "{text}"
        );
        assert!(text.contains("iops:       500\n"), "{text}");
    }

    #[test]
    fn an_empty_run_reports_zeroes_not_nan() {
        let h = histogram(&[]);
        let r = BenchReport::new(
            "rand-read",
            4096,
            1,
            1,
            4096,
            Totals {
                elapsed: Duration::ZERO,
                cpu: Duration::ZERO,
                latencies_ns: &h,
            },
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN") && !json.contains("null"), "{json}");
        assert_eq!(r.latency_us.max, 0.0);
    }
}
