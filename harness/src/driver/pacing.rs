//! Open-loop pacing: commands issued at a stated target rate on a schedule of arrival times
//! drawn from a seeded distribution, independent of how fast the target answers (as
//! memtier's `--rate`), with latency measured from each command's scheduled arrival (so a
//! target that falls behind shows it in its latency instead of hiding it: no coordinated
//! omission). docs/results.md, "Target rate", says what the results record.
//!
//! The schedule belongs to the driver, never to the command generator: the command sequence
//! of a seed is the same at every rate (the golden sequence of `workload::generator` is
//! untouched); only when each command is sent changes.
//!
//! A run with `writers` threads (or connections) splits the rate evenly: each stream has its
//! own seeded schedule at `ops_per_sec / writers`. Independent Poisson streams add up to a
//! Poisson stream of the whole rate; uniform streams are offset by a fraction of their gap
//! each, so that together they arrive evenly spaced as well.
//!
//! A driver that is behind schedule issues at once (never skips an arrival): the achieved rate
//! then falls below the target, which [`RateRecord`] reports with a warning.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::workload::rng::SplitMix64;

/// Highest target rate accepted, commands per second (above it a flat-out run is the
/// honest description).
pub const MAX_OPS_PER_SEC: f64 = 10_000_000.0;

/// Lowest target rate accepted, commands per second.
pub const MIN_OPS_PER_SEC: f64 = 0.01;

/// A run "achieved" its target rate when its acknowledged write commands reach at least this
/// fraction of the count the target implies over the time the trials ran, less
/// [`ACHIEVED_SIGMAS`] standard deviations of a Poisson count of that mean (a 1 s trial at a
/// few hundred a second sees under a hundred arrivals, whose count varies by 10%); a target
/// that cannot keep up falls far below.
pub const ACHIEVED_FRACTION: f64 = 0.9;

/// See [`ACHIEVED_FRACTION`].
pub const ACHIEVED_SIGMAS: f64 = 3.0;

/// Write commands acknowledged over some seconds of workload (one trial's, or several
/// trials' added up): what an achieved rate is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AckedWrites {
    pub writes: u64,
    pub secs: f64,
}

impl AckedWrites {
    /// Writes per second (0 over no time).
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.writes as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Both added up.
    pub fn plus(self, other: AckedWrites) -> AckedWrites {
        AckedWrites {
            writes: self.writes + other.writes,
            secs: self.secs + other.secs,
        }
    }
}

/// Longest single sleep while waiting for an arrival, so that a stop request is seen soon.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// How arrival times are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Exponentially distributed gaps (a Poisson process): independent clients.
    #[default]
    Poisson,
    /// Fixed gaps of exactly 1 / rate.
    Uniform,
}

impl Arrivals {
    /// The name used on the command line, in scenario files and in results.
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Uniform => "uniform",
        }
    }
}

impl fmt::Display for Arrivals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arrivals {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "poisson" => Ok(Arrivals::Poisson),
            "uniform" => Ok(Arrivals::Uniform),
            other => Err(format!(
                "unknown arrivals '{other}': expected poisson or uniform"
            )),
        }
    }
}

/// An open-loop target rate: commands (reads and writes) per second over all writers, and how
/// their arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub ops_per_sec: f64,
    pub arrivals: Arrivals,
}

impl Rate {
    /// A checked rate.
    ///
    /// # Errors
    /// A message when `ops_per_sec` is not a finite number in
    /// [[`MIN_OPS_PER_SEC`], [`MAX_OPS_PER_SEC`]].
    pub fn new(ops_per_sec: f64, arrivals: Arrivals) -> Result<Rate, String> {
        if !(MIN_OPS_PER_SEC..=MAX_OPS_PER_SEC).contains(&ops_per_sec) {
            return Err(format!(
                "rate {ops_per_sec} ops/s is outside [{MIN_OPS_PER_SEC}, {MAX_OPS_PER_SEC}] (omit it to run flat-out)"
            ));
        }
        Ok(Rate {
            ops_per_sec,
            arrivals,
        })
    }

    /// `<rate> ops/s <arrivals>`, for notes and tables.
    pub fn describe(&self) -> String {
        format!("{} ops/s {}", self.ops_per_sec, self.arrivals)
    }
}

/// A rate given on the command line: `--rate OPS_PER_SEC`, or `--rate flat-out` to run as
/// fast as the target answers (overriding a scenario's rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateArg {
    FlatOut,
    OpsPerSec(f64),
}

impl FromStr for RateArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "flat-out" {
            return Ok(RateArg::FlatOut);
        }
        let v: f64 = s
            .parse()
            .map_err(|_| format!("--rate '{s}': expected commands per second or flat-out"))?;
        Rate::new(v, Arrivals::Poisson)?;
        Ok(RateArg::OpsPerSec(v))
    }
}

/// The rate a run uses: `--rate`/`--arrivals` over the scenario's `rate`.
///
/// # Errors
/// `--arrivals` given for a run without a rate (flat-out has no arrivals).
pub fn resolve(
    scenario: Option<Rate>,
    rate: Option<RateArg>,
    arrivals: Option<Arrivals>,
) -> Result<Option<Rate>, String> {
    let chosen = match rate {
        Some(RateArg::FlatOut) => None,
        Some(RateArg::OpsPerSec(v)) => Some(Rate::new(
            v,
            scenario.map_or(Arrivals::default(), |r| r.arrivals),
        )?),
        None => scenario,
    };
    match (chosen, arrivals) {
        (Some(r), Some(a)) => Ok(Some(Rate { arrivals: a, ..r })),
        (None, Some(a)) => Err(format!(
            "--arrivals {a} needs a target rate (--rate or the scenario's [workload] rate): a flat-out run has no arrivals"
        )),
        (r, None) => Ok(r),
    }
}

/// The seeded arrival times of one of `streams` streams sharing a [`Rate`]: offsets from the
/// start of the run, nanoseconds, non-decreasing. Same (rate, streams, stream, seed), same
/// schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    gap_ns: f64,
    arrivals: Arrivals,
    rng: SplitMix64,
    /// The next arrival, ns from the start (fractional: gaps of uniform arrivals add exactly).
    next_ns: f64,
}

impl Schedule {
    /// Stream `stream` (0-based) of `streams` sharing `rate`, seeded with `seed`.
    pub fn new(rate: Rate, streams: u32, stream: u32, seed: u64) -> Schedule {
        let streams = streams.max(1);
        let gap_ns = 1e9 * f64::from(streams) / rate.ops_per_sec;
        let mut rng = SplitMix64::new(
            seed ^ u64::from(stream)
                .wrapping_add(1)
                .wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        let next_ns = match rate.arrivals {
            Arrivals::Poisson => exponential(&mut rng, gap_ns),
            // Evenly interleaved: stream i starts i/streams of a gap in.
            Arrivals::Uniform => gap_ns * f64::from(stream % streams) / f64::from(streams),
        };
        Schedule {
            gap_ns,
            arrivals: rate.arrivals,
            rng,
            next_ns,
        }
    }

    /// The mean gap between two arrivals of this stream, ns.
    pub fn mean_gap_ns(&self) -> f64 {
        self.gap_ns
    }

    /// The next arrival's offset from the start, ns.
    pub fn next_ns(&mut self) -> u64 {
        let at = self.next_ns;
        self.next_ns += match self.arrivals {
            Arrivals::Poisson => exponential(&mut self.rng, self.gap_ns),
            Arrivals::Uniform => self.gap_ns,
        };
        at as u64
    }
}

/// An exponentially distributed gap with mean `mean_ns` (inverse transform of a uniform in
/// (0, 1]).
fn exponential(rng: &mut SplitMix64, mean_ns: f64) -> f64 {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    -u.ln() * mean_ns
}

/// One writer's pacing: the arrivals of its [`Schedule`] as instants from `start`.
#[derive(Debug, Clone)]
pub struct Pacer {
    schedule: Schedule,
    start: Instant,
    next: Instant,
}

impl Pacer {
    /// A pacer for stream `stream` of `streams` sharing `rate`, its clock starting at `start`.
    pub fn new(rate: Rate, streams: u32, stream: u32, seed: u64, start: Instant) -> Pacer {
        let mut schedule = Schedule::new(rate, streams, stream, seed);
        let next = start + Duration::from_nanos(schedule.next_ns());
        Pacer {
            schedule,
            start,
            next,
        }
    }

    /// The next arrival, not yet taken.
    pub fn peek(&self) -> Instant {
        self.next
    }

    /// Takes the next arrival and returns it.
    pub fn take(&mut self) -> Instant {
        let at = self.next;
        self.next = self.start + Duration::from_nanos(self.schedule.next_ns());
        at
    }

    /// Sleeps until `at` in slices of at most [`MAX_SLEEP`]; false (early) once `stop()`
    /// turns true.
    pub fn sleep_until(at: Instant, stop: impl Fn() -> bool) -> bool {
        loop {
            let now = Instant::now();
            if now >= at {
                return true;
            }
            if stop() {
                return false;
            }
            std::thread::sleep((at - now).min(MAX_SLEEP));
        }
    }

    /// Sleeps until the next arrival (not at all when it has passed: a late driver catches
    /// up by issuing at once), takes it and returns its scheduled instant, from which the
    /// command's latency counts. `None`, without waiting it out, when the arrival falls after
    /// `deadline` or `stop()` turns true while waiting.
    pub fn wait_next(
        &mut self,
        deadline: Option<Instant>,
        stop: impl Fn() -> bool,
    ) -> Option<Instant> {
        if deadline.is_some_and(|d| self.next > d) || !Pacer::sleep_until(self.next, stop) {
            return None;
        }
        Some(self.take())
    }
}

/// What a rated run's results record about its rate (`rate` in `crash-*.json`,
/// docs/results.md "Target rate"). A flat-out run records none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateRecord {
    /// The target, commands (reads and writes) per second over all writers.
    pub target_ops_per_sec: f64,
    pub arrivals: Arrivals,
    /// The write commands per second the target implies: the target times the mix's write
    /// share (what acknowledgements, and so the achieved rate, can be counted in).
    pub target_write_ops_per_sec: f64,
    /// Acknowledged write commands per second, measured over the trials (acknowledged before
    /// each crash, over the time from the start of the workload to the crash).
    pub achieved_write_ops_per_sec: f64,
    /// `achieved_write_ops_per_sec / target_write_ops_per_sec`.
    pub achieved_ratio: f64,
    /// The count reached [`ACHIEVED_FRACTION`] of the target's (less Poisson noise); when false the target could not keep up,
    /// the trials ran closer to flat-out than to the stated rate, and `warning` says so.
    pub achieved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl RateRecord {
    /// The record of `rate` given the mix's `write_fraction` and the write commands `done`
    /// acknowledged over the trials' time (see [`ACHIEVED_FRACTION`]).
    pub fn new(rate: Rate, write_fraction: f64, done: AckedWrites) -> RateRecord {
        let target_writes = rate.ops_per_sec * write_fraction;
        let achieved = done.per_sec();
        let ratio = if target_writes > 0.0 {
            achieved / target_writes
        } else {
            1.0
        };
        let expected = target_writes * done.secs;
        let ok =
            done.writes as f64 >= ACHIEVED_FRACTION * expected - ACHIEVED_SIGMAS * expected.sqrt();
        RateRecord {
            target_ops_per_sec: rate.ops_per_sec,
            arrivals: rate.arrivals,
            target_write_ops_per_sec: target_writes,
            achieved_write_ops_per_sec: achieved,
            achieved_ratio: ratio,
            achieved: ok,
            warning: (!ok).then(|| {
                format!(
                    "target rate not achieved: {achieved:.0} of {target_writes:.0} write commands/s ({:.0}%); the target could not keep up, so these trials show its flat-out behaviour, not the stated rate's",
                    ratio * 100.0
                )
            }),
        }
    }

    /// `300 ops/s poisson, achieved 99%` (or `NOT achieved`), for tables.
    pub fn describe(&self) -> String {
        format!(
            "{} ops/s {}, {} {:.0}%",
            self.target_ops_per_sec,
            self.arrivals,
            if self.achieved {
                "achieved"
            } else {
                "NOT achieved:"
            },
            self.achieved_ratio * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rate: Rate, streams: u32, stream: u32, seed: u64, n: usize) -> Vec<u64> {
        let mut s = Schedule::new(rate, streams, stream, seed);
        (0..n).map(|_| s.next_ns()).collect()
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other() {
        let r = Rate::new(500.0, Arrivals::Poisson).unwrap();
        assert_eq!(draws(r, 2, 1, 7, 1000), draws(r, 2, 1, 7, 1000));
        assert_ne!(draws(r, 2, 1, 7, 1000), draws(r, 2, 1, 8, 1000));
        assert_ne!(draws(r, 2, 0, 7, 1000), draws(r, 2, 1, 7, 1000));
    }

    #[test]
    fn poisson_mean_gap_is_one_over_the_stream_rate() {
        let r = Rate::new(2000.0, Arrivals::Poisson).unwrap();
        let n = 100_000;
        let t = draws(r, 4, 3, 11, n);
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "not sorted");
        // 4 streams share 2000/s: each at 500/s, mean gap 2 ms. The mean of 100k exponential
        // gaps has a relative standard error of 1/sqrt(100k) = 0.3%: 2% is over 6 sigma.
        let mean = t[n - 1] as f64 / n as f64;
        assert!((mean / 2e6 - 1.0).abs() < 0.02, "mean gap {mean} ns");
        // Exponential: the fraction of gaps above the mean is e^-1 = 0.368.
        let above = t.windows(2).filter(|w| (w[1] - w[0]) as f64 > 2e6).count();
        let frac = above as f64 / (n - 1) as f64;
        assert!((frac - (-1f64).exp()).abs() < 0.01, "{frac}");
    }

    #[test]
    fn uniform_streams_interleave_evenly() {
        let r = Rate::new(1000.0, Arrivals::Uniform).unwrap();
        let a = draws(r, 2, 0, 1, 5);
        let b = draws(r, 2, 1, 1, 5);
        assert_eq!(a, vec![0, 2_000_000, 4_000_000, 6_000_000, 8_000_000]);
        assert_eq!(
            b,
            vec![1_000_000, 3_000_000, 5_000_000, 7_000_000, 9_000_000]
        );
    }

    #[test]
    fn rate_args_and_resolution() {
        assert_eq!("flat-out".parse::<RateArg>(), Ok(RateArg::FlatOut));
        assert_eq!("250".parse::<RateArg>(), Ok(RateArg::OpsPerSec(250.0)));
        for bad in ["0", "-3", "nan", "inf", "fast"] {
            assert!(bad.parse::<RateArg>().is_err(), "{bad}");
        }
        let scen = Rate::new(300.0, Arrivals::Uniform).ok();
        assert_eq!(resolve(scen, None, None).unwrap(), scen);
        assert_eq!(resolve(scen, Some(RateArg::FlatOut), None).unwrap(), None);
        let r = resolve(scen, Some(RateArg::OpsPerSec(50.0)), None)
            .unwrap()
            .unwrap();
        assert_eq!((r.ops_per_sec, r.arrivals), (50.0, Arrivals::Uniform));
        let r = resolve(
            None,
            Some(RateArg::OpsPerSec(50.0)),
            Some(Arrivals::Uniform),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.arrivals, Arrivals::Uniform);
        let e = resolve(None, None, Some(Arrivals::Uniform)).unwrap_err();
        assert!(e.contains("needs a target rate"), "{e}");
    }

    #[test]
    fn record_flags_a_rate_not_achieved() {
        let r = Rate::new(1000.0, Arrivals::Poisson).unwrap();
        let done = |writes, secs| AckedWrites { writes, secs };
        let ok = RateRecord::new(r, 0.8, done(7900, 10.0));
        assert!(ok.achieved && ok.warning.is_none(), "{ok:?}");
        let slow = RateRecord::new(r, 0.8, done(4000, 10.0));
        assert!(!slow.achieved);
        assert!((slow.achieved_ratio - 0.5).abs() < 1e-9);
        assert!(slow.warning.unwrap().contains("not achieved"));
        // 80 expected: 0.9 x 80 - 3 x sqrt(80) = 45.2 is still within Poisson noise of it.
        assert!(RateRecord::new(r, 0.8, done(46, 0.1)).achieved);
        assert!(!RateRecord::new(r, 0.8, done(45, 0.1)).achieved);
        assert_eq!(done(3, 1.0).plus(done(5, 3.0)), done(8, 4.0));
        assert_eq!(done(8, 4.0).per_sec(), 2.0);
        assert_eq!(done(8, 0.0).per_sec(), 0.0);
    }

    #[test]
    fn pacer_stops_at_the_deadline_without_waiting() {
        let r = Rate::new(MIN_OPS_PER_SEC, Arrivals::Uniform).unwrap();
        let start = Instant::now();
        let mut p = Pacer::new(r, 1, 0, 3, start);
        // The first uniform arrival of stream 0 is at the start.
        assert_eq!(p.wait_next(None, || false), Some(start));
        // The next is 100 s later: past a deadline 1 ms away, so none, at once.
        assert_eq!(
            p.wait_next(Some(start + Duration::from_millis(1)), || false),
            None
        );
    }
}
