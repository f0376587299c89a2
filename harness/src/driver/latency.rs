//! Acknowledgement latency histograms (nanoseconds, 3 significant digits).

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// Largest latency tracked exactly: one hour. Longer ones are recorded as one hour.
const MAX_NS: u64 = 3_600_000_000_000;

/// One writer's (or a merged) latency histogram.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

/// Summary of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummaryUs {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram (fixed size: recording never allocates).
    pub fn new() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"),
        }
    }

    /// Records one latency in nanoseconds (saturating at one hour).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Latency) {
        self.hist.add(&other.hist).expect("histograms share bounds");
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// p50, p99, p99.9 and max, in µs (all 0 when empty).
    pub fn summary_us(&self) -> LatencySummaryUs {
        if self.hist.is_empty() {
            return LatencySummaryUs::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummaryUs {
            p50: us(self.hist.value_at_quantile(0.50)),
            p99: us(self.hist.value_at_quantile(0.99)),
            p999: us(self.hist.value_at_quantile(0.999)),
            max: us(self.hist.max()),
        }
    }

    /// The histogram in HdrHistogram's V2 format (values in ns), base64-encoded: readable by
    /// every HdrHistogram implementation, and mergeable.
    pub fn to_v2_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.hist, &mut bytes)
            .expect("serializing into a Vec cannot fail");
        crate::results::encode::base64(&bytes)
    }

    /// The inverse of [`Latency::to_v2_base64`]: the histogram as serialized (its own bounds
    /// and counts, exactly), e.g. from `run.json`.
    ///
    /// # Errors
    /// A message saying why the text is not base64 or not a V2 histogram.
    pub fn from_v2_base64(text: &str) -> Result<Latency, String> {
        let bytes = crate::results::encode::base64_decode(text)?;
        let hist = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("not an HdrHistogram V2 serialization: {e:?}"))?;
        Ok(Latency { hist })
    }

    /// The underlying histogram (values in ns).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_merge() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for i in 1..=1000 {
            a.record_ns(i * 1000);
        }
        b.record_ns(5_000_000);
        a.merge(&b);
        let s = a.summary_us();
        assert_eq!(a.count(), 1001);
        assert!((s.p50 - 500.0).abs() < 2.0, "{s:?}");
        assert!((s.max - 5000.0).abs() < 5.0, "{s:?}");
        let back = Latency::from_v2_base64(&a.to_v2_base64()).unwrap();
        assert_eq!(back.count(), 1001);
        assert_eq!(back.summary_us(), s);
        assert!(Latency::from_v2_base64("AAAA").is_err());
    }
}
