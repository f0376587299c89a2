//! `durlab fs`: mount the recording filesystem, run a command on it or wait for Ctrl-C, then
//! unmount and say what was recorded.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use super::CliError;
use crate::cli::FsArgs;
use crate::recfs::RecordingMount;

/// Runs `durlab fs`.
///
/// # Errors
/// A mount that fails (no FUSE, not allowed, bad directories), a command that cannot start,
/// or an unmount that fails. A command's own failure is passed on as its exit status.
pub fn run(args: &FsArgs) -> Result<(), CliError> {
    // SIGINT, SIGTERM and SIGCHLD are taken by sigwait below, in this thread only: block them
    // before the filesystem's threads start (they inherit the mask). Children get a clean mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGCHLD);
    signals
        .thread_block()
        .map_err(|e| CliError(format!("blocking signals: {e}")))?;
    let mount = RecordingMount::mount(&args.backing, &args.mountpoint, &args.trace)
        .map_err(|e| CliError(e.to_string()))?;
    eprintln!(
        "durlab fs: {} mounted at {}, recording to {}",
        args.backing.display(),
        mount.mountpoint().display(),
        args.trace.display()
    );
    if let (Some(after), Some(ms)) = (args.stall_after_ms, args.stall_ms) {
        let stall = mount.stall();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(after));
            stall.arm(Duration::from_millis(ms));
            eprintln!("durlab fs: the next fsync will be held for {ms} ms");
        });
    }
    let mut status = None;
    if let Some((program, rest)) = args.command.split_first() {
        let mut child = Command::new(program)
            .args(rest)
            .spawn()
            .map_err(|e| CliError(format!("starting {program}: {e}")))?;
        loop {
            if let Some(s) = child.try_wait()? {
                status = Some(s);
                break;
            }
            match signals.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(sig) => {
                    eprintln!("durlab fs: {sig}: stopping {program}");
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        Signal::SIGTERM,
                    );
                }
            }
        }
    } else {
        eprintln!("durlab fs: press Ctrl-C (or send SIGTERM) to unmount");
        loop {
            if let Ok(Signal::SIGINT | Signal::SIGTERM) = signals.wait() {
                break;
            }
        }
    }
    let (entries, ops, syncs, bytes) = (
        mount.entries(),
        mount.stats().ops.load(Ordering::Relaxed),
        mount.stats().syncs.load(Ordering::Relaxed),
        mount.stats().bytes_written.load(Ordering::Relaxed),
    );
    mount.unmount().map_err(|e| CliError(e.to_string()))?;
    eprintln!(
        "durlab fs: unmounted; {entries} trace entries ({ops} changes, {syncs} syncs, {bytes} bytes written) in {}",
        args.trace.display()
    );
    match status {
        Some(s) if !s.success() => Err(CliError(format!("{} exited: {s}", args.command[0]))),
        _ => Ok(()),
    }
}
