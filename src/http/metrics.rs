//! Counters and one latency histogram, rendered as Prometheus text. Small on
//! purpose: a mutex-protected map is plenty at webhook rates.

use std::collections::BTreeMap;
use std::sync::Mutex;

const BUCKETS_MS: [f64; 10] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    sum_ms: f64,
    total: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
    histograms: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// `name` is a metric name with labels, e.g. `frontdesk_messages_in_total{channel="sms"}`.
    pub fn increment(&self, name: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry(name.to_string()).or_insert(0) += 1;
    }

    pub fn observe_ms(&self, name: &str, milliseconds: f64) {
        let mut histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = histograms.entry(name.to_string()).or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS_MS) {
            if milliseconds <= bound {
                *count += 1;
            }
        }
        histogram.sum_ms += milliseconds;
        histogram.total += 1;
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Prometheus text exposition; `gauges` are added as given.
    pub fn render(&self, gauges: &[(&str, i64)]) -> String {
        let mut out = String::new();
        for (name, value) in self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.push_str(&format!("{name} {value}\n"));
        }
        for (name, histogram) in self
            .histograms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (count, bound) in histogram.counts.iter().zip(BUCKETS_MS) {
                out.push_str(&format!(
                    "{name}_bucket{{le=\"{}\"}} {count}\n",
                    bound / 1000.0
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{{le=\"+Inf\"}} {}\n",
                histogram.total
            ));
            out.push_str(&format!("{name}_sum {}\n", histogram.sum_ms / 1000.0));
            out.push_str(&format!("{name}_count {}\n", histogram.total));
        }
        for (name, value) in gauges {
            out.push_str(&format!("{name} {value}\n"));
        }
        out
    }
}
