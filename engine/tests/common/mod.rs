//! Shared test helpers: every engine test body runs once per real backend.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use durlab_engine::aof::LOG_FILE_NAME;
use durlab_engine::backend::{Backend, BackendFile, OpenMode};
use durlab_engine::{
    BackendKind, Command, Engine, EngineConfig, FsyncPolicy, Prealloc, RecoveryReport,
};

/// Instantiates each listed `fn name(kind: BackendKind)` as one test per backend:
/// `name::pwrite`, `name::uring` and `name::mmap`.
#[macro_export]
macro_rules! over_backends {
    ($($name:ident),+ $(,)?) => {
        $crate::over_kinds!([pwrite = Pwrite, uring = Uring, mmap = Mmap]; $($name),+);
    };
}

/// Like [`over_backends`], for bodies that need a log without preallocation (they cut or
/// extend the file at its end): `name::pwrite` and `name::uring`. The mmap backend refuses
/// such a log; it writes the same bytes, and recovery reads through the same code.
#[macro_export]
macro_rules! over_unpreallocated_backends {
    ($($name:ident),+ $(,)?) => {
        $crate::over_kinds!([pwrite = Pwrite, uring = Uring]; $($name),+);
    };
}

/// `mod name { #[test] fn kind() { super::name(BackendKind::Kind) } ... }` per listed name.
#[macro_export]
macro_rules! over_kinds {
    ($kinds:tt; $($name:ident),+) => {
        $( $crate::over_kinds!(@one $kinds $name); )+
    };
    (@one [$($test:ident = $kind:ident),+] $name:ident) => {
        mod $name {
            $(
                #[test]
                fn $test() {
                    super::$name(durlab_engine::BackendKind::$kind)
                }
            )+
        }
    };
}

pub fn config(dir: &Path, kind: BackendKind, policy: FsyncPolicy) -> EngineConfig {
    let mut c = EngineConfig::new(dir).backend(kind).policy(policy);
    c.prealloc_chunk_bytes = 64 << 10;
    if kind == BackendKind::Mmap {
        c.prealloc = Prealloc::Fallocate; // mmap refuses a log without preallocation
    }
    c
}

pub fn open(config: &EngineConfig) -> (Engine, RecoveryReport) {
    Engine::open(config.clone()).unwrap_or_else(|e| panic!("open {:?}: {e}", config.dir))
}

/// The n-th command of a small deterministic write sequence touching every type.
pub fn command(n: u64) -> Command {
    let key = format!("k{}", n % 17).into_bytes();
    match n % 5 {
        0 => Command::Set {
            key,
            value: format!("value-{n}").into_bytes(),
        },
        1 => Command::IncrBy {
            key: format!("c{}", n % 3).into_bytes(),
            delta: n as i64,
        },
        2 => Command::HSet {
            key: b"h".to_vec(),
            fields: vec![(format!("f{}", n % 7).into_bytes(), n.to_le_bytes().to_vec())],
        },
        3 => Command::ZAdd {
            key: b"z".to_vec(),
            members: vec![(n as f64 / 3.0, format!("m{}", n % 11).into_bytes())],
        },
        _ => Command::XAdd {
            key: b"s".to_vec(),
            id: durlab_engine::keyspace::XAddId::Auto,
            fields: vec![(b"n".to_vec(), n.to_string().into_bytes())],
            maxlen: Some(5),
        },
    }
}

/// Writes commands 1..=n through a fresh engine and returns it.
pub fn write_n(config: &EngineConfig, n: u64) -> Engine {
    let (engine, _) = open(config);
    for i in 1..=n {
        let ack = engine.execute_next(command).expect("execute");
        assert_eq!(ack.lsn, Some(i));
    }
    engine
}

/// The keyspace after applying commands 1..=n to a fresh in-memory keyspace.
pub fn expected_after(n: u64) -> durlab_engine::Keyspace {
    let mut ks = durlab_engine::Keyspace::new();
    for i in 1..=n {
        ks.apply(&command(i));
    }
    ks
}

/// The keyspace's contents as a sorted list, for equality checks.
pub fn dump(ks: &durlab_engine::Keyspace) -> Vec<(Vec<u8>, durlab_engine::keyspace::Entry)> {
    let mut v: Vec<_> = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join(LOG_FILE_NAME)
}

pub fn all_prealloc() -> [Prealloc; 3] {
    [Prealloc::None, Prealloc::Fallocate, Prealloc::Zero]
}

/// Whether `kind` opens a log with `prealloc` (mmap needs preallocated space).
pub fn supports(kind: BackendKind, prealloc: Prealloc) -> bool {
    !(kind == BackendKind::Mmap && prealloc == Prealloc::None)
}

/// A lying backend over a real one, to show that a check of directory syncs can fail: the
/// first directory fsync after each rename reports success without syncing (an engine that
/// forgot it). Everything else, including that rename, is the real backend's I/O.
#[derive(Debug)]
pub struct SkipsDirSyncAfterRename {
    pub inner: Arc<dyn Backend>,
    renamed: AtomicBool,
}

impl SkipsDirSyncAfterRename {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        SkipsDirSyncAfterRename {
            inner,
            renamed: AtomicBool::new(false),
        }
    }
}

impl Backend for SkipsDirSyncAfterRename {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        self.inner.open(path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        self.renamed.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.renamed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.sync_dir(dir)
    }
    fn name(&self) -> String {
        format!("skips-dir-sync-after-rename({})", self.inner.name())
    }
}
