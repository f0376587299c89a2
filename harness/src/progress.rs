//! Progress on stderr: an indicatif bar on a terminal, plain lines otherwise, nothing with
//! `--quiet`. Never writes to stdout (which may carry `--json`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs shorter than this get no bar, only the closing line.
const BAR_MIN: Duration = Duration::from_secs(3);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Quiet,
}

impl Mode {
    /// `Quiet` if asked, `Bar` when stderr is a terminal, else `Lines`.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

/// What a run is heading for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    Duration(Duration),
    Commands(u64),
    /// Crash trials (`tick` counts trials done).
    Trials(u64),
}

/// Progress of one configuration.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    goal: Goal,
    prefix: String,
    last_line: Instant,
}

impl Progress {
    /// Starts showing `label` (configuration `index` of `total`, 1-based).
    pub fn begin(mode: Mode, index: usize, total: usize, label: &str, goal: Goal) -> Progress {
        let prefix = format!("[{index}/{total}] {label}");
        let long = match goal {
            Goal::Duration(d) => d >= BAR_MIN,
            Goal::Commands(n) => n >= 1_000_000,
            Goal::Trials(n) => n >= 2,
        };
        let bar = (mode == Mode::Bar && long).then(|| {
            let (len, template) = match goal {
                Goal::Duration(d) => (d.as_millis() as u64, "{prefix} [{bar:30}] {elapsed}/{msg}"),
                Goal::Commands(n) => (n, "{prefix} [{bar:30}] {pos}/{len} writes"),
                Goal::Trials(n) => (n, "{prefix} [{bar:30}] {pos}/{len} trials, {elapsed}"),
            };
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(prefix.clone());
            if let Goal::Duration(d) = goal {
                bar.set_message(format!("{:.0}s", d.as_secs_f64()));
            }
            bar
        });
        if mode == Mode::Lines {
            eprintln!("{prefix}: running");
        }
        Progress {
            mode,
            bar,
            goal,
            prefix,
            last_line: Instant::now(),
        }
    }

    /// A progress that shows nothing.
    pub fn hidden() -> Progress {
        Progress::begin(Mode::Quiet, 1, 1, "", Goal::Commands(0))
    }

    /// Reports `elapsed` time and the highest LSN so far (trials done, for [`Goal::Trials`]).
    pub fn tick(&mut self, elapsed: Duration, last_lsn: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(match self.goal {
                Goal::Duration(_) => elapsed.as_millis() as u64,
                Goal::Commands(_) | Goal::Trials(_) => last_lsn,
            });
        } else if self.mode == Mode::Lines && self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_line = Instant::now();
            let unit = match self.goal {
                Goal::Trials(_) => "trials",
                _ => "writes",
            };
            eprintln!(
                "{}: {:.0} s, {last_lsn} {unit}",
                self.prefix,
                elapsed.as_secs_f64()
            );
        }
    }

    /// Ends the display with `summary`.
    pub fn finish(self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Quiet {
            eprintln!("{}: {summary}", self.prefix);
        }
    }

    /// Prints a message line (not in quiet mode).
    pub fn note(mode: Mode, line: &str) {
        if mode != Mode::Quiet {
            eprintln!("{line}");
        }
    }
}
