//! The same test bodies run over every real backend (as in okaywal): each `fn` below takes a
//! `&dyn Backend`, and `backend_tests!` instantiates it once per backend.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use durlab_engine::backend::pwrite::PwriteBackend;
use durlab_engine::backend::uring::UringBackend;
use durlab_engine::backend::{Backend, BackendFile, OpenMode, read_exact_at};

fn pwrite() -> PwriteBackend {
    PwriteBackend::new()
}

fn uring() -> UringBackend {
    match UringBackend::new() {
        Ok(b) => b,
        Err(e) => panic!("io_uring must be available on this machine: {e}"),
    }
}

/// Instantiates each listed body for both backends: `pwrite::name` and `uring::name`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod pwrite_backend {
            $( #[test] fn $name() { super::$name(&super::pwrite()); } )*
        }
        mod uring_backend {
            $( #[test] fn $name() { super::$name(&super::uring()); } )*
        }
    };
}

backend_tests!(
    create_new_and_existing,
    round_trip_at_offsets,
    write_sync_then_read,
    large_write,
    set_len_truncates_and_extends,
    allocate_extends_with_zeros,
    rename_replaces_target,
    remove_file,
    sync_dir_ok_and_missing,
    concurrent_write_and_sync,
    len_tracks_writes,
    empty_writes,
    short_write_then_efbig,
    data_end_hides_no_data,
);

/// A deterministic, position-dependent pattern so misplaced bytes show up.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn read_all(f: &dyn BackendFile) -> Vec<u8> {
    let mut buf = vec![0u8; f.len().unwrap() as usize];
    read_exact_at(f, &mut buf, 0).unwrap();
    buf
}

fn create(b: &dyn Backend, path: &Path) -> Arc<dyn BackendFile> {
    b.open(path, OpenMode::CreateNew).unwrap()
}

fn create_new_and_existing(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let e = b.open(&p, OpenMode::Existing).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let f = create(b, &p);
    f.write_all_at(b"hello", 0).unwrap();
    drop(f);
    let e = b.open(&p, OpenMode::CreateNew).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    let f = b.open(&p, OpenMode::Existing).unwrap();
    assert_eq!(read_all(&*f), b"hello");
}

fn round_trip_at_offsets(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    let a = pattern(1000, 1);
    let c = pattern(333, 7);
    f.write_all_at(&a, 0).unwrap();
    f.write_all_at(&c, 5000).unwrap();
    f.write_all_at(b"xyz", 10).unwrap();
    assert_eq!(f.len().unwrap(), 5333);
    let all = read_all(&*f);
    let mut want = a.clone();
    want[10..13].copy_from_slice(b"xyz");
    want.resize(5000, 0);
    want.extend_from_slice(&c);
    assert_eq!(all, want);
    // read_at past the end returns 0; a read straddling the end returns the rest.
    let mut buf = [0u8; 16];
    assert_eq!(f.read_at(&mut buf, 6000).unwrap(), 0);
    assert_eq!(f.read_at(&mut buf, 5330).unwrap(), 3);
    assert_eq!(&buf[..3], &c[330..]);
}

fn write_sync_then_read(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    let mut want = Vec::new();
    for i in 0..50u8 {
        let rec = pattern(100 + i as usize, i);
        f.write_all_at_sync(&rec, want.len() as u64).unwrap();
        want.extend_from_slice(&rec);
    }
    f.sync_data().unwrap();
    assert_eq!(read_all(&*f), want);
    // Reopened through the backend, the contents are the same.
    drop(f);
    let f = b.open(&dir.path().join("f"), OpenMode::Existing).unwrap();
    assert_eq!(read_all(&*f), want);
}

fn large_write(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    let big = pattern(8 << 20, 3);
    f.write_all_at(&big, 4096).unwrap();
    f.write_all_at_sync(&big, 4096 + big.len() as u64).unwrap();
    assert_eq!(f.len().unwrap(), 4096 + 2 * big.len() as u64);
    let all = read_all(&*f);
    assert!(all[..4096].iter().all(|&x| x == 0));
    assert_eq!(&all[4096..4096 + big.len()], &big[..]);
    assert_eq!(&all[4096 + big.len()..], &big[..]);
}

fn set_len_truncates_and_extends(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    let data = pattern(10_000, 9);
    f.write_all_at(&data, 0).unwrap();
    f.set_len(4000).unwrap();
    assert_eq!(f.len().unwrap(), 4000);
    assert_eq!(read_all(&*f), &data[..4000]);
    f.set_len(12_000).unwrap();
    assert_eq!(f.len().unwrap(), 12_000);
    let all = read_all(&*f);
    assert_eq!(&all[..4000], &data[..4000]);
    assert!(
        all[4000..].iter().all(|&x| x == 0),
        "extension must read as zeros"
    );
    f.set_len(0).unwrap();
    assert_eq!(f.len().unwrap(), 0);
}

/// Whether `data_end` (for `[from, bytes.len())`) leaves out only zeros: every non-zero byte
/// of `bytes` at or after `from` lies below it.
fn check_data_end(bytes: &[u8], from: u64, data_end: u64) -> Result<(), String> {
    match bytes.iter().rposition(|&b| b != 0) {
        Some(last) if last as u64 >= from && last as u64 >= data_end => Err(format!(
            "byte {last} is not zero but data_end({from}) says {data_end}"
        )),
        _ => Ok(()),
    }
}

/// `data_end` never leaves out a non-zero byte, over sparse layouts (data, holes, a
/// preallocated region, an `fallocate`d one written into), from every start; and it does
/// skip the hole at the end of a file extended past its data with `set_len` (else it would
/// save nothing).
/// The companion: the same check fails for an answer one block short.
fn data_end_hides_no_data(b: &dyn Backend) {
    const MB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let layouts: [&[(u64, usize)]; 4] = [
        &[(0, 100)],
        &[(0, 5000), (3 * MB, 10)],
        &[(MB, 1), (2 * MB + 4095, 2)],
        &[],
    ];
    for (i, layout) in layouts.iter().enumerate() {
        let f = create(b, &dir.path().join(format!("f{i}")));
        for &(at, len) in *layout {
            f.write_all_at(&pattern(len, 1 + i as u8), at).unwrap();
        }
        f.set_len(8 * MB).unwrap();
        if i == 2 {
            f.allocate(4 * MB, MB).unwrap();
            f.write_all_at(b"x", 4 * MB + 77).unwrap();
        }
        let bytes = read_all(&*f);
        let len = bytes.len() as u64;
        let last = bytes
            .iter()
            .rposition(|&x| x != 0)
            .map_or(0, |p| p as u64 + 1);
        for from in [0, 1, 4095, 4096, 5000, MB, 3 * MB + 5, 4 * MB + 100, len] {
            let end = f.data_end(from, len).unwrap();
            assert!(
                (from..=len).contains(&end),
                "layout {i}: data_end({from}) = {end}"
            );
            check_data_end(&bytes, from, end).unwrap_or_else(|e| panic!("layout {i}: {e}"));
            if end > from && end > last && i != 2 {
                // Past the last data byte: at most the rest of its block is counted (a
                // file system may count an `fallocate`d range as data: layout 2 has one).
                assert!(
                    end - last < 4096,
                    "layout {i}: data_end({from}) = {end}, last {last}"
                );
            }
            if last > from {
                let short = end - 4096.min(end - from);
                assert!(
                    check_data_end(&bytes, from, short.min(last - 1)).is_err(),
                    "layout {i}: an answer below the last data byte is caught"
                );
            }
        }
    }
}

fn allocate_extends_with_zeros(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    f.write_all_at(b"head", 0).unwrap();
    f.allocate(0, 1 << 20).unwrap();
    assert_eq!(f.len().unwrap(), 1 << 20);
    f.allocate(1 << 20, 4096).unwrap();
    assert_eq!(f.len().unwrap(), (1 << 20) + 4096);
    // Allocating inside the file never shrinks it; len 0 is a no-op.
    f.allocate(100, 10).unwrap();
    f.allocate(0, 0).unwrap();
    assert_eq!(f.len().unwrap(), (1 << 20) + 4096);
    let all = read_all(&*f);
    assert_eq!(&all[..4], b"head");
    assert!(all[4..].iter().all(|&x| x == 0));
    // Writing into the allocated range works and keeps the size.
    f.write_all_at_sync(b"tail", 5000).unwrap();
    assert_eq!(f.len().unwrap(), (1 << 20) + 4096);
}

fn rename_replaces_target(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("new"), dir.path().join("cur"));
    create(b, &from)
        .write_all_at_sync(b"new contents", 0)
        .unwrap();
    create(b, &to).write_all_at_sync(b"old", 0).unwrap();
    b.rename(&from, &to).unwrap();
    b.sync_dir(dir.path()).unwrap();
    assert!(!from.exists());
    let f = b.open(&to, OpenMode::Existing).unwrap();
    assert_eq!(read_all(&*f), b"new contents");
    let e = b.rename(&from, &to).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

fn remove_file(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    drop(create(b, &p));
    b.remove(&p).unwrap();
    b.sync_dir(dir.path()).unwrap();
    assert!(!p.exists());
    assert_eq!(b.remove(&p).unwrap_err().kind(), io::ErrorKind::NotFound);
}

fn sync_dir_ok_and_missing(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    drop(create(b, &dir.path().join("f")));
    b.sync_dir(dir.path()).unwrap();
    let e = b.sync_dir(&dir.path().join("missing")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        b.sync_dir(&dir.path().join("f")).is_err(),
        "a regular file is not a directory"
    );
}

/// A writer appends records while an "everysec"-style thread calls `sync_data` in a loop:
/// neither may fail, and the final contents are exactly what was written.
fn concurrent_write_and_sync(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    let stop = Arc::new(AtomicBool::new(false));
    let syncer = {
        let (f, stop) = (Arc::clone(&f), Arc::clone(&stop));
        thread::spawn(move || {
            let mut syncs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                f.sync_data().unwrap();
                syncs += 1;
            }
            syncs
        })
    };
    let mut want = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut i = 0u32;
    while Instant::now() < deadline || i < 200 {
        let rec = pattern(64 + (i % 200) as usize, i as u8);
        if i.is_multiple_of(50) {
            f.write_all_at_sync(&rec, want.len() as u64).unwrap();
        } else {
            f.write_all_at(&rec, want.len() as u64).unwrap();
        }
        want.extend_from_slice(&rec);
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let syncs = syncer.join().unwrap();
    assert!(syncs > 0);
    f.sync_data().unwrap();
    assert_eq!(read_all(&*f), want);
}

fn len_tracks_writes(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    assert_eq!(f.len().unwrap(), 0);
    f.write_all_at(&[1; 10], 0).unwrap();
    assert_eq!(f.len().unwrap(), 10);
    f.write_all_at(&[2; 10], 100).unwrap();
    assert_eq!(f.len().unwrap(), 110);
    f.write_all_at(&[3; 5], 0).unwrap();
    assert_eq!(f.len().unwrap(), 110);
}

fn empty_writes(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let f = create(b, &dir.path().join("f"));
    f.write_all_at(&[], 0).unwrap();
    f.write_all_at_sync(&[], 0).unwrap();
    assert_eq!(f.len().unwrap(), 0);
}

/// Runs `body` in a child process (this test binary re-executed on one test), where it may
/// change process-wide state such as resource limits without disturbing other tests.
fn in_child(test: &str, body: impl FnOnce()) {
    const VAR: &str = "DURLAB_BACKEND_TEST_CHILD";
    if std::env::var_os(VAR).is_some() {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child test {test} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child ran no test"
    );
}

/// With `RLIMIT_FSIZE` just above 4096, an 8 KiB `write_all_at_sync` at offset 0 is cut short
/// by the kernel. The backend must resubmit the remainder (for io_uring: after the linked
/// fsync completed with -ECANCELED) and then report the kernel's EFBIG for it, leaving exactly
/// the first `LIMIT` bytes in the file.
fn short_write_then_efbig(b: &dyn Backend) {
    const LIMIT: u64 = 4096 + 100;
    let test = format!("{}::short_write_then_efbig", module_for(b));
    in_child(&test, || {
        let dir = tempfile::tempdir().unwrap();
        let f = create(b, &dir.path().join("f"));
        // SAFETY: setting a signal disposition to SIG_IGN and lowering a resource limit in this
        // single-purpose child process; no Rust invariants depend on either.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: libc::RLIM_INFINITY,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let data = pattern(8192, 5);
        let e = f.write_all_at_sync(&data, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG), "got {e}");
        assert_eq!(f.len().unwrap(), LIMIT);
        assert_eq!(read_all(&*f), &data[..LIMIT as usize]);
        let e = f.write_all_at(&data, LIMIT - 10).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFBIG), "got {e}");
        assert_eq!(read_all(&*f)[LIMIT as usize - 10..], data[..10]);
    });
}

fn module_for(b: &dyn Backend) -> &'static str {
    match b.name().as_str() {
        "pwrite" => "pwrite_backend",
        _ => "uring_backend",
    }
}

#[test]
fn uring_backend_is_available() {
    let b = uring();
    assert_eq!(b.name(), "uring");
}

#[test]
fn backend_names() {
    assert_eq!(pwrite().name(), "pwrite");
    assert_eq!(uring().name(), "uring");
}

#[test]
fn open_backend_builds_both() {
    use durlab_engine::BackendKind;
    for kind in [BackendKind::Pwrite, BackendKind::Uring] {
        let b = durlab_engine::backend::open_backend(kind).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = b.open(&dir.path().join("f"), OpenMode::CreateNew).unwrap();
        f.write_all_at_sync(b"abc", 0).unwrap();
        assert_eq!(read_all(&*f), b"abc");
    }
}
