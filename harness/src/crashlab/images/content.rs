//! A file's bytes as sparse 4 KiB pages: writes of 64 MiB of zeros (preallocation) cost
//! nothing, and materialising a file writes only its non-zero pages. Pages are shared between
//! copies until written (a copy costs a pointer per page), so the crash states of one trace
//! share the bytes they have in common ([`super::history`]).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use durlab_engine::backend::recording::Segment;

/// Bytes per page.
pub(crate) const PAGE_BYTES: u64 = 4096;

/// A file's content: pages absent from the map read as zeros; `size` is the file length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Content {
    pages: BTreeMap<u64, Arc<[u8; PAGE_BYTES as usize]>>,
    size: u64,
    /// Only the size is kept (every operation sizes the file as it would, and no page is
    /// stored): what ordering images by size needs, for a fraction of the work.
    sizes_only: bool,
}

impl Content {
    /// A content that keeps only its size, starting at `size` (see [`Content::size`]).
    pub(crate) fn sizes_only(size: u64) -> Content {
        Content {
            pages: BTreeMap::new(),
            size,
            sizes_only: true,
        }
    }

    /// Whether only the size is kept ([`Content::sizes_only`]).
    pub(crate) fn is_sizes_only(&self) -> bool {
        self.sizes_only
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Copies `bytes` to `offset`, extending the size to cover them.
    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) {
        if self.sizes_only {
            self.size = self.size.max(offset + bytes.len() as u64);
            return;
        }
        let mut at = offset;
        let mut rest = bytes;
        while !rest.is_empty() {
            let page = at / PAGE_BYTES;
            let in_page = (at % PAGE_BYTES) as usize;
            let n = rest.len().min(PAGE_BYTES as usize - in_page);
            // Zeros written over a hole leave the hole (an absent page reads as zeros): a log
            // preallocated with written zeros is megabytes of them, and each image would
            // otherwise write them all out again.
            // One lookup per page (the tail of a log is written a few bytes at a time).
            match self.pages.entry(page) {
                Entry::Occupied(mut p) => {
                    Arc::make_mut(p.get_mut())[in_page..in_page + n].copy_from_slice(&rest[..n]);
                }
                Entry::Vacant(v) => {
                    if rest[..n].iter().any(|&b| b != 0) {
                        let mut p = [0u8; PAGE_BYTES as usize];
                        p[in_page..in_page + n].copy_from_slice(&rest[..n]);
                        v.insert(Arc::new(p));
                    }
                }
            }
            rest = &rest[n..];
            at += n as u64;
        }
        self.size = self.size.max(offset + bytes.len() as u64);
    }

    /// Zeros `[offset, offset + len)`, extending the size to cover it.
    pub(crate) fn zero(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = offset + len;
        self.zero_pages(offset, end);
        self.size = self.size.max(end);
    }

    fn zero_pages(&mut self, offset: u64, end: u64) {
        let first_full = offset.div_ceil(PAGE_BYTES);
        let last_full = end / PAGE_BYTES; // exclusive
        if first_full < last_full {
            let doomed: Vec<u64> = self
                .pages
                .range(first_full..last_full)
                .map(|(&k, _)| k)
                .collect();
            for k in doomed {
                self.pages.remove(&k);
            }
        }
        for page in [offset / PAGE_BYTES, end.saturating_sub(1) / PAGE_BYTES] {
            if let Some(p) = self.pages.get_mut(&page) {
                let from = offset.max(page * PAGE_BYTES);
                let to = end.min((page + 1) * PAGE_BYTES);
                if from < to {
                    Arc::make_mut(p)
                        [(from - page * PAGE_BYTES) as usize..(to - page * PAGE_BYTES) as usize]
                        .fill(0);
                }
            }
        }
    }

    /// Applies a recorded write: segments laid end to end from `offset`.
    pub(crate) fn write_segments(&mut self, offset: u64, data: &[Segment]) {
        let mut at = offset;
        for s in data {
            match s {
                Segment::Bytes(b) => self.write(at, b),
                Segment::Zeros(n) => self.zero(at, *n),
            }
            at += s.len();
        }
    }

    /// Applies only the bytes of a recorded write (segments from `offset`) that fall in
    /// `[from, to)`.
    pub(crate) fn write_segments_range(
        &mut self,
        offset: u64,
        data: &[Segment],
        from: u64,
        to: u64,
    ) {
        let mut at = offset;
        for s in data {
            let (a, b) = (at.max(from), (at + s.len()).min(to));
            if a < b {
                match s {
                    Segment::Bytes(bytes) => {
                        self.write(a, &bytes[(a - at) as usize..(b - at) as usize])
                    }
                    Segment::Zeros(_) => self.zero(a, b - a),
                }
            }
            at += s.len();
        }
    }

    /// `ftruncate`: shrinking drops the bytes past `len` (a later extension reads zeros).
    pub(crate) fn set_len(&mut self, len: u64) {
        if len < self.size {
            self.zero_pages(len, self.size);
        }
        self.size = len;
    }

    /// Copies `[from, to)` of `src` into the same range of `self` (zeros where `src` holds
    /// none), extending the size to cover it: one read of a file by a copying tool.
    pub(crate) fn copy_range(&mut self, src: &Content, from: u64, to: u64) {
        let mut at = from;
        while at < to {
            let page = at / PAGE_BYTES;
            let in_page = (at % PAGE_BYTES) as usize;
            let n = (to - at).min(PAGE_BYTES - in_page as u64);
            match src.pages.get(&page) {
                Some(p) => self.write(at, &p[in_page..in_page + n as usize]),
                None => self.zero(at, n),
            }
            at += n;
        }
    }

    /// `fallocate` mode 0: the size grows to at least `offset + len`; content is unchanged.
    pub(crate) fn allocate(&mut self, offset: u64, len: u64) {
        self.size = self.size.max(offset + len);
    }

    /// Runs of non-zero-page data inside the size, without copying: each run of contiguous
    /// pages as its offset and the pages' bytes (the last cut at the size); the caller
    /// writes them and then sets the length to [`Content::size`].
    pub(crate) fn page_runs(&self) -> Vec<(u64, Vec<&[u8]>)> {
        let mut out: Vec<(u64, Vec<&[u8]>)> = Vec::new();
        let mut next_page = None;
        for (&page, bytes) in self.pages.range(..self.size.div_ceil(PAGE_BYTES)) {
            let n = (self.size - page * PAGE_BYTES).min(PAGE_BYTES) as usize;
            match out.last_mut() {
                Some((_, run)) if next_page == Some(page) => run.push(&bytes[..n]),
                _ => out.push((page * PAGE_BYTES, vec![&bytes[..n]])),
            }
            next_page = Some(page + 1);
        }
        out
    }

    /// Feeds what [`Content::page_runs`] holds (the size, then each page's index and its
    /// bytes within the size) to `h`, without copying: equal feeds, equal files.
    pub(crate) fn hash_into(&self, h: &mut impl std::hash::Hasher) {
        h.write_u64(self.size);
        for (&page, bytes) in self.pages.range(..self.size.div_ceil(PAGE_BYTES)) {
            let n = (self.size - page * PAGE_BYTES).min(PAGE_BYTES) as usize;
            h.write_u64(page);
            h.write(&bytes[..n]);
        }
    }

    /// The byte at `at` (0 past the end or in a hole; tests).
    #[cfg(test)]
    pub(crate) fn byte(&self, at: u64) -> u8 {
        self.pages
            .get(&(at / PAGE_BYTES))
            .map_or(0, |p| p[(at % PAGE_BYTES) as usize])
    }

    /// The whole content as one buffer (tests and small files).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size as usize];
        for (off, pages) in self.page_runs() {
            let bytes = pages.concat();
            v[off as usize..off as usize + bytes.len()].copy_from_slice(&bytes);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same operations on a plain Vec<u8>.
    #[derive(Default)]
    struct Plain(Vec<u8>);

    impl Plain {
        fn write(&mut self, off: u64, b: &[u8]) {
            let end = off as usize + b.len();
            if self.0.len() < end {
                self.0.resize(end, 0);
            }
            self.0[off as usize..end].copy_from_slice(b);
        }
    }

    proptest::proptest! {
        #[test]
        fn matches_a_plain_buffer(ops in proptest::collection::vec(
            (0u8..5, 0u64..20_000, 0u64..9_000, proptest::num::u8::ANY), 0..40))
        {
            let mut c = Content::default();
            let mut p = Plain::default();
            for (kind, off, len, byte) in ops {
                match kind {
                    0 => {
                        let b = vec![byte | 1; len as usize];
                        c.write(off, &b);
                        p.write(off, &b);
                    }
                    1 => {
                        c.zero(off, len);
                        if len > 0 {
                            p.write(off, &vec![0; len as usize]);
                        }
                    }
                    // Zeros written (over holes, which stay holes, and over data).
                    4 => {
                        let b = vec![0; len as usize];
                        c.write(off, &b);
                        p.write(off, &b);
                    }
                    2 => {
                        c.set_len(off);
                        p.0.resize(off as usize, 0);
                    }
                    _ => {
                        c.allocate(off, len);
                        let end = (off + len) as usize;
                        if p.0.len() < end {
                            p.0.resize(end, 0);
                        }
                    }
                }
                proptest::prop_assert_eq!(c.size(), p.0.len() as u64);
            }
            proptest::prop_assert!(c.to_vec() == p.0);
        }
    }
}
