//! `durlab probe`: the raw device limits that engine figures are divided by.
//!
//! Bare `pwrite`+`fdatasync` loops (no engine) on a growing, a fallocated and a zero-filled
//! file, for 64 B and 4 KiB records; O_DIRECT and buffered sequential write throughput. All
//! through [`durlab_engine::rawio`].

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use durlab_engine::Prealloc;
use durlab_engine::rawio::{self, FileKind, Limit};
use serde::{Deserialize, Serialize};

/// One figure per file layout and record size.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct PerCase {
    pub append_64: f64,
    pub append_4k: f64,
    pub fallocate_64: f64,
    pub fallocate_4k: f64,
    pub zeroed_64: f64,
    pub zeroed_4k: f64,
}

impl PerCase {
    fn slot(&mut self, kind: FileKind, record_bytes: usize) -> &mut f64 {
        match (kind, record_bytes == 64) {
            (FileKind::Append, true) => &mut self.append_64,
            (FileKind::Append, false) => &mut self.append_4k,
            (FileKind::Fallocate, true) => &mut self.fallocate_64,
            (FileKind::Fallocate, false) => &mut self.fallocate_4k,
            (FileKind::Zeroed, true) => &mut self.zeroed_64,
            (FileKind::Zeroed, false) => &mut self.zeroed_4k,
        }
    }

    /// The figure for `kind` and the record size nearest to `record_bytes` (64 or 4096).
    pub fn get(&self, kind: FileKind, record_bytes: f64) -> f64 {
        let mut copy = *self;
        *copy.slot(kind, nearest_record(record_bytes))
    }
}

/// 64 or 4096, whichever is nearer to `bytes` on a log scale (the cut is at 512 B).
pub fn nearest_record(bytes: f64) -> usize {
    if bytes < 512.0 { 64 } else { 4096 }
}

/// The probe file layout that matches an engine preallocation mode.
pub fn kind_for(prealloc: Prealloc) -> FileKind {
    match prealloc {
        Prealloc::None => FileKind::Append,
        Prealloc::Fallocate => FileKind::Fallocate,
        Prealloc::Zero => FileKind::Zeroed,
    }
}

/// Everything `durlab probe` measures (the JSON of `durlab probe --json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    /// pwrite+fdatasync operations per second.
    pub fdatasync_iops: PerCase,
    /// Median latency of one pwrite+fdatasync, µs.
    pub fdatasync_p50_us: PerCase,
    /// 99th percentile latency of one pwrite+fdatasync, µs.
    pub fdatasync_p99_us: PerCase,
    /// O_DIRECT sequential writes (1 MiB blocks), MB/s (10^6 B); null when the file system
    /// refuses O_DIRECT (tmpfs, some overlays).
    pub direct_write_mb_s: Option<f64>,
    /// Buffered sequential writes (1 MiB blocks) plus one final fdatasync, MB/s.
    pub buffered_write_mb_s: f64,
    /// Whether the short (`--quick`) variant ran.
    pub quick: bool,
    /// Where the probe files were.
    pub dir: PathBuf,
    /// Time limit of each pwrite+fdatasync loop, seconds.
    pub seconds_per_case: f64,
}

/// Sizes of one probe.
#[derive(Debug, Clone, Copy)]
struct Budget {
    limit: Limit,
    stream_bytes: u64,
}

fn budget(quick: bool) -> Budget {
    if quick {
        Budget {
            limit: Limit {
                ops: 4_000,
                duration: Duration::from_millis(500),
            },
            stream_bytes: 32 << 20,
        }
    } else {
        Budget {
            limit: Limit {
                ops: 50_000,
                duration: Duration::from_secs(2),
            },
            stream_bytes: 256 << 20,
        }
    }
}

/// Runs the probe in `dir` (files are created there and removed afterwards).
///
/// # Errors
/// Any I/O error of the loops, naming the case.
pub fn run(dir: &Path, quick: bool) -> io::Result<ProbeResult> {
    let b = budget(quick);
    let mut iops = PerCase::default();
    let mut p50 = PerCase::default();
    let mut p99 = PerCase::default();
    let path = dir.join("durlab-probe.dat");
    for kind in FileKind::ALL {
        for record in [64usize, 4096] {
            let ctx = |e: io::Error| {
                io::Error::new(
                    e.kind(),
                    format!("probe {} {record} B in {}: {e}", kind.name(), dir.display()),
                )
            };
            let file =
                rawio::prepare_file(&path, kind, b.limit.ops * record as u64).map_err(ctx)?;
            let run = rawio::pwrite_fdatasync_loop(&file, record, b.limit).map_err(ctx)?;
            *iops.slot(kind, record) = run.ops_per_sec();
            *p50.slot(kind, record) = run.percentile_ns(0.50) as f64 / 1000.0;
            *p99.slot(kind, record) = run.percentile_ns(0.99) as f64 / 1000.0;
            drop(file);
            let _ = std::fs::remove_file(&path);
        }
    }
    let direct = match rawio::direct_write_mb_s(dir, b.stream_bytes, 1 << 20) {
        Ok(v) => Some(v),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("probe O_DIRECT write in {}: {e}", dir.display()),
            ));
        }
    };
    let buffered = rawio::buffered_write_mb_s(dir, b.stream_bytes, 1 << 20).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("probe buffered write in {}: {e}", dir.display()),
        )
    })?;
    Ok(ProbeResult {
        fdatasync_iops: iops,
        fdatasync_p50_us: p50,
        fdatasync_p99_us: p99,
        direct_write_mb_s: direct,
        buffered_write_mb_s: buffered,
        quick,
        dir: dir.to_owned(),
        seconds_per_case: b.limit.duration.as_secs_f64(),
    })
}

/// One quick pwrite+fdatasync case (`--quick` budget) in `dir`: ops/s for `kind` and the
/// record size nearest `record_bytes`. `bench` runs it right before and after each `always`
/// configuration so that `ratio_to_probe` compares figures taken moments apart.
///
/// # Errors
/// Any I/O error of the loop.
pub fn matching_iops(dir: &Path, kind: FileKind, record_bytes: f64) -> io::Result<f64> {
    let b = budget(true);
    let record = nearest_record(record_bytes);
    let path = dir.join("durlab-probe-adjacent.dat");
    let file = rawio::prepare_file(&path, kind, b.limit.ops * record as u64)?;
    let run = rawio::pwrite_fdatasync_loop(&file, record, b.limit)?;
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(run.ops_per_sec())
}

/// The probe as a readable table.
pub fn render(p: &ProbeResult) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "probe in {} ({})\n",
        p.dir.display(),
        if p.quick { "quick" } else { "full" }
    ));
    out.push_str("pwrite+fdatasync   record   ops/s      p50 us     p99 us\n");
    for kind in FileKind::ALL {
        for (record, name) in [(64.0, "64 B"), (4096.0, "4 KiB")] {
            out.push_str(&format!(
                "{:<18} {:<8} {:<10.0} {:<10.1} {:.1}\n",
                kind.name(),
                name,
                p.fdatasync_iops.get(kind, record),
                p.fdatasync_p50_us.get(kind, record),
                p.fdatasync_p99_us.get(kind, record)
            ));
        }
    }
    match p.direct_write_mb_s {
        Some(v) => out.push_str(&format!("O_DIRECT sequential write: {v:.0} MB/s\n")),
        None => out.push_str("O_DIRECT sequential write: not supported by this file system\n"),
    }
    out.push_str(&format!(
        "buffered sequential write + fdatasync: {:.0} MB/s\n",
        p.buffered_write_mb_s
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_record_and_kind() {
        assert_eq!(nearest_record(64.0), 64);
        assert_eq!(nearest_record(300.0), 64);
        assert_eq!(nearest_record(1000.0), 4096);
        assert_eq!(kind_for(Prealloc::Zero), FileKind::Zeroed);
        let mut p = PerCase::default();
        *p.slot(FileKind::Fallocate, 4096) = 7.0;
        assert_eq!(p.get(FileKind::Fallocate, 8000.0), 7.0);
    }
}
