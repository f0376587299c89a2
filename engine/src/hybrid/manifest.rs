//! The hybrid manifest `durlab.manifest`: which base and which increments hold the state, in
//! order, with a generation number and a CRC32C (a damaged manifest is detected, never
//! half-parsed). Byte layout: `docs/format.md`, "Hybrid manifest".
//!
//! ```text
//! durlab-manifest 1
//! generation 7
//! base durlab.3.base.snap 1000
//! incr durlab.3.incr.aof 1000
//! incr durlab.4.incr.aof 5000
//! crc32c 1a2b3c4d
//! ```

use std::path::{Path, PathBuf};

use crate::Lsn;
use crate::backend::atomic::{CrashPoints, rewrite_atomic};
use crate::backend::{Backend, OpenMode, read_exact_at};
use crate::error::{Error, Result};

/// File name of the manifest inside a hybrid data directory.
pub const MANIFEST_FILE_NAME: &str = "durlab.manifest";
const FIRST_LINE: &str = "durlab-manifest 1";
/// A manifest is a few lines; anything much larger is not one.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The base snapshot of a hybrid directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseFile {
    pub name: String,
    /// The base holds the state after commands `1..=lsn`.
    pub lsn: Lsn,
}

/// One increment: a log file whose first record is `base_lsn + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrFile {
    pub name: String,
    pub base_lsn: Lsn,
}

/// A decoded, verified manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Raised by every installation; the highest is the newest.
    pub generation: u64,
    pub base: Option<BaseFile>,
    /// In LSN order; never empty (the last one receives appends).
    pub incrs: Vec<IncrFile>,
}

/// The file name of the base written by rewrite number `seq`.
pub fn base_name(seq: u64) -> String {
    format!("durlab.{seq}.base.snap")
}

/// The file name of the increment started by rewrite number `seq` (1 for a new directory).
pub fn incr_name(seq: u64) -> String {
    format!("durlab.{seq}.incr.aof")
}

/// The `seq` of a base or increment file name (`durlab.<seq>.base.snap`,
/// `durlab.<seq>.incr.aof`, with or without a `.tmp` or quarantine suffix).
pub fn seq_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("durlab.")?;
    let (seq, kind) = rest.split_once('.')?;
    if !(kind.starts_with("base.snap") || kind.starts_with("incr.aof")) {
        return None;
    }
    seq.parse().ok()
}

/// Names in a manifest must be plain names of the two kinds (no paths).
fn valid_name(name: &str, suffix: &str) -> bool {
    name.strip_prefix("durlab.")
        .and_then(|r| r.strip_suffix(suffix))
        .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
}

impl Manifest {
    /// Every file the manifest lists, base first.
    pub fn files(&self) -> Vec<&str> {
        let base = self.base.iter().map(|b| b.name.as_str());
        base.chain(self.incrs.iter().map(|i| i.name.as_str()))
            .collect()
    }

    /// The text form, checksum line included.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{FIRST_LINE}\ngeneration {}\n", self.generation);
        if let Some(b) = &self.base {
            text.push_str(&format!("base {} {}\n", b.name, b.lsn));
        }
        for i in &self.incrs {
            text.push_str(&format!("incr {} {}\n", i.name, i.base_lsn));
        }
        let crc = crc32c::crc32c(text.as_bytes());
        text.push_str(&format!("crc32c {crc:08x}\n"));
        text.into_bytes()
    }

    /// Parses and verifies a manifest; the checksum is checked before anything else is read.
    ///
    /// # Errors
    /// `(offset, reason)` for a missing or wrong checksum, or any line out of the grammar.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Manifest, (u64, String)> {
        let body_end = bytes
            .strip_suffix(b"\n")
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
            .map(|i| i + 1)
            .ok_or((0, "no checksum line (truncated manifest)".to_string()))?;
        let (body, crc_line) = bytes.split_at(body_end);
        let stored = std::str::from_utf8(crc_line)
            .ok()
            .and_then(|l| l.strip_prefix("crc32c "))
            .and_then(|l| l.strip_suffix('\n'))
            // Lowercase only: one spelling per checksum, so no flipped bit goes unnoticed.
            .filter(|h| h.len() == 8 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or((body_end as u64, "bad checksum line".to_string()))?;
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err((
                body_end as u64,
                format!(
                    "manifest checksum mismatch (stored {stored:08x}, computed {computed:08x})"
                ),
            ));
        }
        let text = std::str::from_utf8(body)
            .map_err(|e| (e.valid_up_to() as u64, "not UTF-8".to_string()))?;
        let body_len = body.len() as u64;
        let mut offset = 0u64;
        let mut lines = text.lines().map(|l| {
            let at = offset;
            offset += l.len() as u64 + 1;
            (at, l)
        });
        let bad = |at: u64, what: &str| (at, format!("bad manifest line: {what}"));
        match lines.next() {
            Some((_, FIRST_LINE)) => {}
            _ => return Err((0, format!("first line is not '{FIRST_LINE}'"))),
        }
        let (at, line) = lines
            .next()
            .ok_or((body_len, "no generation line".to_string()))?;
        let generation = line
            .strip_prefix("generation ")
            .and_then(|g| g.parse().ok())
            .ok_or_else(|| bad(at, line))?;
        let mut manifest = Manifest {
            generation,
            base: None,
            incrs: Vec::new(),
        };
        for (at, line) in lines {
            let mut words = line.split(' ');
            let (kind, name, lsn) = match (words.next(), words.next(), words.next(), words.next()) {
                (Some(k), Some(n), Some(l), None) => {
                    (k, n, l.parse::<Lsn>().map_err(|_| bad(at, line))?)
                }
                _ => return Err(bad(at, line)),
            };
            match kind {
                "base"
                    if manifest.base.is_none()
                        && manifest.incrs.is_empty()
                        && valid_name(name, ".base.snap") =>
                {
                    manifest.base = Some(BaseFile {
                        name: name.to_string(),
                        lsn,
                    });
                }
                "incr" if valid_name(name, ".incr.aof") => manifest.incrs.push(IncrFile {
                    name: name.to_string(),
                    base_lsn: lsn,
                }),
                _ => return Err(bad(at, line)),
            }
        }
        if manifest.incrs.is_empty() {
            return Err((body_len, "manifest lists no increment".to_string()));
        }
        Ok(manifest)
    }
}

/// Reads and verifies the manifest at `path`.
///
/// # Errors
/// [`Error::Corrupt`] naming the file and offset when it does not verify; I/O errors
/// (`NotFound` included).
pub fn read(backend: &dyn Backend, path: &Path) -> Result<Manifest> {
    let file = backend
        .open(path, OpenMode::Existing)
        .map_err(|e| Error::io("open", path, None, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, None, e))?;
    let corrupt = |offset, reason| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if len > MAX_MANIFEST_BYTES {
        return Err(corrupt(0, format!("manifest of {len} bytes is too large")));
    }
    let mut bytes = vec![0u8; len as usize];
    read_exact_at(file.as_ref(), &mut bytes, 0).map_err(|e| Error::io("read", path, Some(0), e))?;
    Manifest::decode(&bytes).map_err(|(offset, reason)| corrupt(offset, reason))
}

/// The crash points of one manifest installation (rewrite installs two manifests).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Install {
    /// The first manifest of a new directory.
    Create,
    /// Listing the new increment next to the old files, when appends switch to it.
    Switch,
    /// Listing only the new base and the new increment, when the rewrite completes.
    Final,
}

/// Installs `manifest` in `dir` atomically (`backend::atomic::rewrite_atomic`): temp file,
/// write, fdatasync, rename over the old manifest, fsync of the directory. Returns its path.
///
/// # Errors
/// I/O failures or an injected crash point; the old manifest stays in force unless the
/// failure came after the rename.
pub(crate) fn install(
    backend: &dyn Backend,
    dir: &Path,
    manifest: &Manifest,
    stage: Install,
) -> Result<PathBuf> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let (after_temp_write, after_rename) = match stage {
        Install::Create => (None, None),
        Install::Switch => (
            Some("rewrite.switch_manifest.after_temp_write"),
            Some("rewrite.switch_manifest.after_rename"),
        ),
        Install::Final => (
            Some("rewrite.final_manifest.after_temp_write"),
            Some("rewrite.final_manifest.after_rename"),
        ),
    };
    let points = CrashPoints {
        after_temp_write,
        after_rename,
        ..CrashPoints::default()
    };
    rewrite_atomic(backend, &path, points, |file, temp| {
        file.write_all_at(&manifest.encode(), 0)
            .map_err(|e| Error::io("write", temp, Some(0), e))
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            generation: 7,
            base: Some(BaseFile {
                name: base_name(3),
                lsn: 1000,
            }),
            incrs: vec![
                IncrFile {
                    name: incr_name(3),
                    base_lsn: 1000,
                },
                IncrFile {
                    name: incr_name(4),
                    base_lsn: 5000,
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_text() {
        let m = sample();
        let bytes = m.encode();
        assert!(
            String::from_utf8_lossy(&bytes)
                .starts_with("durlab-manifest 1\ngeneration 7\nbase durlab.3.base.snap 1000\n")
        );
        assert_eq!(Manifest::decode(&bytes), Ok(m));
    }

    #[test]
    fn every_flip_and_truncation_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(Manifest::decode(&bad).is_err(), "flip {bit} of byte {i}");
            }
        }
        for len in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn names_and_seqs() {
        assert_eq!(seq_of("durlab.12.incr.aof"), Some(12));
        assert_eq!(seq_of("durlab.3.base.snap.tmp"), Some(3));
        assert_eq!(seq_of("durlab.manifest"), None);
        assert!(!valid_name("durlab.../x.incr.aof", ".incr.aof"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = Manifest::decode(&bytes);
        }
    }
}
