//! mmap backend: log appends into reserved space are stores into a shared file mapping.
//!
//! A store into a `MAP_SHARED` mapping puts the bytes in the page cache, exactly where
//! `pwrite(2)` puts them: they survive kill -9 and are made durable by the same `fdatasync(2)`.
//! It costs a memory copy instead of a system call, so `everysec` and `no` acknowledge below
//! the syscall floor.
//!
//! A store into a file hole would allocate a block at page-fault time, and on a full disk that
//! fault kills the process with SIGBUS instead of returning `ENOSPC`. So a write goes through
//! the mapping only inside the range this handle itself reserved with [`BackendFile::allocate`]
//! or wrote with `pwrite` (blocks already reserved); every other write is a `pwrite`. The
//! engine therefore refuses this backend for a log without preallocation (see
//! [`crate::config::Prealloc`]). A write followed by a sync ([`BackendFile::write_all_at_sync`],
//! policy `always`) is a `pwrite` too: each sync write-protects the pages again, and a store
//! after it would pay a page fault. Reads, syncs, size changes, renames and directory syncs are
//! the pwrite backend's system calls.
//!
//! A media error while faulting in a mapped page is a SIGBUS too (pwrite would return `EIO`):
//! the price of this backend. Space reserved by `fallocate` reads as zeros without touching
//! the device, so appends into it never read from the disk.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Advice, MmapOptions, MmapRaw};
use parking_lot::Mutex;

use super::pwrite::{PwriteBackend, allocate_file, open_file, pread, pwrite_all};
use super::{Backend, BackendFile, OpenMode};

/// Each mapping covers one aligned window of the file this long (mapped on first use).
const WINDOW_BYTES: u64 = 64 << 20;
/// At most this many windows stay mapped per file (the oldest is unmapped first): bounds the
/// address space a long-lived log holds.
const MAX_WINDOWS: usize = 4;
/// A store past the prefaulted range prefaults this much reserved space beyond its end with
/// one `madvise(MADV_POPULATE_WRITE)`: one system call instead of a page fault per fresh page.
/// The prefaulted pages are dirty zeros, so a sync may write up to this much extra.
const PREFAULT_AHEAD_BYTES: u64 = 256 << 10;
const PAGE_BYTES: u64 = 4096;

/// Stores into a shared mapping for writes inside reserved space; plain POSIX calls otherwise.
#[derive(Debug, Default)]
pub struct MmapBackend {
    plain: PwriteBackend,
}

impl MmapBackend {
    /// The backend has no state; creating it cannot fail.
    pub fn new() -> Self {
        MmapBackend::default()
    }
}

impl Backend for MmapBackend {
    /// Opens `path` like the pwrite backend; nothing is mapped until the first store.
    ///
    /// # Errors
    /// `AlreadyExists` / `NotFound` depending on `mode`, or any other OS error.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        Ok(Arc::new(MmapFile {
            file: open_file(path, mode)?,
            maps: Mutex::new(Maps::default()),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.plain.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.plain.remove(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.plain.hard_link(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.plain.sync_dir(dir)
    }

    fn name(&self) -> String {
        "mmap".into()
    }
}

/// The reserved range and the windows mapped so far.
#[derive(Debug, Default)]
struct Maps {
    /// Bytes whose blocks this handle reserved or wrote; always within the file's size. A
    /// store here cannot need a new block.
    reserved: Range<u64>,
    /// (window index, its mapping), least recently mapped first.
    windows: Vec<(u64, MmapRaw)>,
    /// File offset up to which stores have prefaulted (a hint: later syncs write-protect the
    /// pages again, and unmapped windows lose their page tables; both only cost faults).
    prefaulted_end: u64,
    /// The kernel refused `MADV_POPULATE_WRITE` (before Linux 5.14): stores fault page by page.
    no_prefault: bool,
}

impl Maps {
    /// Extends `reserved` by `[start, end)` when the two touch; a range apart from it is
    /// forgotten (its later writes are pwrites: correct, only slower).
    fn note_reserved(&mut self, start: u64, end: u64) {
        let r = &mut self.reserved;
        if r.is_empty() {
            *r = start..end;
        } else if start <= r.end && end >= r.start {
            *r = r.start.min(start)..r.end.max(end);
        }
    }

    /// Prefaults `[start, end)` (within `reserved`) writable, window by window. A refusal
    /// turns prefaulting off; the stores then fault page by page (same bytes, only slower).
    fn prefault(&mut self, file: &File, start: u64, end: u64) -> io::Result<()> {
        let mut at = start;
        while at < end && !self.no_prefault {
            let index = at / WINDOW_BYTES;
            let within = at % WINDOW_BYTES;
            let n = (end - at).min(WINDOW_BYTES - within);
            let map = self.window(file, index)?;
            if map
                .advise_range(Advice::PopulateWrite, within as usize, n as usize)
                .is_err()
            {
                self.no_prefault = true;
            }
            at += n;
        }
        self.prefaulted_end = end;
        Ok(())
    }

    fn window(&mut self, file: &File, index: u64) -> io::Result<&MmapRaw> {
        let found = self.windows.iter().rposition(|(i, _)| *i == index);
        let at = match found {
            Some(at) => at,
            None => {
                if self.windows.len() >= MAX_WINDOWS {
                    self.windows.remove(0);
                }
                // Mapping past the end of the file is allowed; only stores there would fault, and
                // stores go only into `reserved`, which lies within the file.
                let map = MmapOptions::new()
                    .offset(index * WINDOW_BYTES)
                    .len(WINDOW_BYTES as usize)
                    .map_raw(file)?;
                self.windows.push((index, map));
                self.windows.len() - 1
            }
        };
        Ok(&self.windows[at].1)
    }
}

/// A file of [`MmapBackend`].
#[derive(Debug)]
struct MmapFile {
    file: File,
    maps: Mutex<Maps>,
}

impl MmapFile {
    /// Copies `buf` to `offset` through the mappings if it lies in the reserved range; returns
    /// false (nothing written) otherwise.
    fn store(&self, buf: &[u8], offset: u64) -> io::Result<bool> {
        let end = offset + buf.len() as u64;
        let mut maps = self.maps.lock();
        if buf.is_empty() || offset < maps.reserved.start || end > maps.reserved.end {
            return Ok(false);
        }
        if end > maps.prefaulted_end && !maps.no_prefault {
            let from = maps.prefaulted_end.max(offset) / PAGE_BYTES * PAGE_BYTES;
            let to = (end + PREFAULT_AHEAD_BYTES).min(maps.reserved.end);
            maps.prefault(&self.file, from, to)?;
        }
        let (mut at, mut rest) = (offset, buf);
        while !rest.is_empty() {
            let index = at / WINDOW_BYTES;
            let within = (at % WINDOW_BYTES) as usize;
            let n = rest.len().min(WINDOW_BYTES as usize - within);
            let map = maps.window(&self.file, index)?;
            // SAFETY: `within + n <= WINDOW_BYTES`, the mapping's length, so the destination
            // lies inside the live mapping `map`; `rest` is a separate heap or stack buffer, so
            // the ranges do not overlap. No Rust reference to the mapped bytes exists (only this
            // raw copy, under the `maps` lock), so a concurrent `pread` or the kernel's writeback
            // reading them is no aliasing violation. The range lies in `reserved`, within the
            // file's size with blocks reserved, so the store cannot fault with SIGBUS for lack
            // of space.
            unsafe {
                std::ptr::copy_nonoverlapping(rest.as_ptr(), map.as_mut_ptr().add(within), n);
            }
            at += n as u64;
            rest = &rest[n..];
        }
        Ok(true)
    }
}

impl MmapFile {
    /// A plain `pwrite(2)`; the range then counts as reserved.
    fn pwrite(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        pwrite_all(&self.file, buf, offset)?;
        self.maps
            .lock()
            .note_reserved(offset, offset + buf.len() as u64);
        Ok(())
    }
}

impl BackendFile for MmapFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        pread(&self.file, buf, offset)
    }

    /// A store through the mapping inside reserved space; `pwrite(2)` (looping on short
    /// writes) elsewhere, after which that range counts as reserved.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.store(buf, offset)? {
            return Ok(());
        }
        self.pwrite(buf, offset)
    }

    /// `pwrite(2)` then `fdatasync(2)` (policy `always`): after every fdatasync the kernel
    /// write-protects the synced pages again, so a store would pay a page fault per sync.
    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.pwrite(buf, offset)?;
        self.file.sync_data()
    }

    /// `fdatasync(2)`: covers stores through the mapping as well as pwrites (one page cache).
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// `ftruncate(2)`; a shrink also shrinks the reserved range, so no store lands past the end.
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut maps = self.maps.lock();
        // Shrink first: a failed extension leaves a smaller range, never one past the end.
        let r = &mut maps.reserved;
        r.end = r.end.min(len);
        r.start = r.start.min(r.end);
        self.file.set_len(len)
    }

    /// `fallocate(2)` mode 0; the range then counts as reserved.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        allocate_file(&self.file, offset, len)?;
        self.maps.lock().note_reserved(offset, offset + len);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_exact_at;
    use super::*;

    fn open(dir: &Path) -> MmapFile {
        MmapFile {
            file: open_file(&dir.join("f"), OpenMode::CreateNew).unwrap(),
            maps: Mutex::default(),
        }
    }

    #[test]
    fn stores_only_inside_reserved_space_and_reads_back_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let f = open(dir.path());
        assert!(
            !f.store(b"abc", 0).unwrap(),
            "nothing reserved yet: a pwrite"
        );
        f.write_all_at(b"header", 0).unwrap(); // a pwrite: 0..6 now reserved
        f.allocate(6, 8 << 10).unwrap();
        assert!(f.store(b"mapped", 100).unwrap());
        assert!(!f.store(b"past", (8 << 10) + 6).unwrap(), "past the end");
        let mut back = [0u8; 6];
        read_exact_at(&f, &mut back, 100).unwrap();
        assert_eq!(&back, b"mapped");
        f.set_len(50).unwrap();
        assert!(!f.store(b"mapped", 100).unwrap(), "shrunk below the range");
        assert!(f.store(b"x", 49).unwrap());
    }

    #[test]
    fn stores_prefault_ahead_within_reserved_space_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = open(dir.path());
        let reserved = PREFAULT_AHEAD_BYTES + 8 * PAGE_BYTES;
        f.allocate(0, reserved).unwrap();
        assert!(f.store(b"rec", 10).unwrap());
        let ahead = f.maps.lock().prefaulted_end;
        assert_eq!(
            ahead,
            13 + PREFAULT_AHEAD_BYTES,
            "prefaulted past the store"
        );
        assert!(
            !f.maps.lock().no_prefault,
            "this kernel (5.14+) takes the advice"
        );
        assert!(f.store(b"next", ahead - 2).unwrap());
        assert_eq!(
            f.maps.lock().prefaulted_end,
            reserved,
            "never past reserved space"
        );
        assert_eq!(
            f.len().unwrap(),
            reserved,
            "prefaulting does not grow the file"
        );
        let mut back = vec![0xffu8; reserved as usize];
        read_exact_at(&f, &mut back, 0).unwrap();
        let mut want = vec![0u8; reserved as usize];
        want[10..13].copy_from_slice(b"rec");
        want[ahead as usize - 2..ahead as usize + 2].copy_from_slice(b"next");
        assert!(
            back == want,
            "prefaulted pages read as zeros around the stores"
        );
    }

    #[test]
    fn a_store_across_windows_lands_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = open(dir.path());
        let start = WINDOW_BYTES - 3;
        f.allocate(0, WINDOW_BYTES + 4096).unwrap();
        assert!(f.store(b"abcdef", start).unwrap());
        let mut back = [0u8; 6];
        read_exact_at(&f, &mut back, start).unwrap();
        assert_eq!(&back, b"abcdef");
    }
}
