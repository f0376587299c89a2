//! Key and value-size distributions, deterministic given the generator.

use rand::{Rng, RngExt};

/// Zipf over ranks `0..n` (rank 0 the most frequent; weight of rank k is 1/(k+1)^s), sampled
/// by rejection-inversion (Hörmann & Derflinger 1996, as in Apache Commons RNG): O(1) time
/// and memory per draw for any n, any s > 0; about 1.1 uniform draws per sample.
#[derive(Debug, Clone, Copy)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// Zipf over `n >= 1` ranks with exponent `s > 0`.
    ///
    /// # Panics
    /// If `n == 0` or `s` is not a finite positive number (scenario parsing rules both out).
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(
            n >= 1 && s > 0.0 && s.is_finite(),
            "zipf needs n >= 1 and s > 0"
        );
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `0..n`.
    #[inline]
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        loop {
            let u01: f64 = rng.random();
            let u = self.h_integral_n + u01 * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64 - 1;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1+x)/x, stable near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1)/x, stable near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// How a key index in `0..count` is drawn.
#[derive(Debug, Clone, Copy)]
pub enum KeyDist {
    Uniform { count: u64 },
    Zipf(Zipf),
}

impl KeyDist {
    /// How many key indexes it draws from.
    pub fn count(&self) -> u64 {
        match self {
            KeyDist::Uniform { count } => *count,
            KeyDist::Zipf(z) => z.n as u64,
        }
    }

    /// A key index.
    #[inline]
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match self {
            KeyDist::Uniform { count } => rng.random_range(0..*count),
            KeyDist::Zipf(z) => z.sample(rng),
        }
    }
}

/// Value sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSize {
    Fixed(u32),
    Uniform { min: u32, max: u32 },
}

impl ValueSize {
    /// A size.
    #[inline]
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        match *self {
            ValueSize::Fixed(b) => b as usize,
            ValueSize::Uniform { min, max } => rng.random_range(min..=max) as usize,
        }
    }

    /// The mean size.
    pub fn mean(&self) -> f64 {
        match *self {
            ValueSize::Fixed(b) => f64::from(b),
            ValueSize::Uniform { min, max } => (f64::from(min) + f64::from(max)) / 2.0,
        }
    }

    /// Smallest and largest size.
    pub fn bounds(&self) -> (u32, u32) {
        match *self {
            ValueSize::Fixed(b) => (b, b),
            ValueSize::Uniform { min, max } => (min, max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::rng::SplitMix64;

    /// Frequencies of a small zipf match the exact pmf within a few standard deviations.
    #[test]
    fn zipf_matches_pmf() {
        for &s in &[0.5, 0.99, 1.0, 1.2, 2.0] {
            let n = 20u64;
            let z = Zipf::new(n, s);
            let mut rng = SplitMix64::new(42);
            let draws = 200_000;
            let mut counts = vec![0u64; n as usize];
            for _ in 0..draws {
                counts[z.sample(&mut rng) as usize] += 1;
            }
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
            for (k, &c) in counts.iter().enumerate() {
                let p = ((k + 1) as f64).powf(-s) / norm;
                let expect = p * draws as f64;
                let sd = (draws as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (c as f64 - expect).abs() < 5.0 * sd + 1.0,
                    "s={s} k={k}: {c} vs {expect:.0}"
                );
            }
        }
    }

    #[test]
    fn zipf_stays_in_range_for_large_n() {
        let z = Zipf::new(10_000_000, 0.99);
        let mut rng = SplitMix64::new(1);
        for _ in 0..100_000 {
            assert!(z.sample(&mut rng) < 10_000_000);
        }
        let one = Zipf::new(1, 1.5);
        assert_eq!(one.sample(&mut rng), 0);
    }
}
