//! The recording filesystem on a real FUSE mount (these machines run the tests as root with
//! /dev/fuse: the tests run in CI and never skip): passthrough, the exact trace of a scripted
//! sequence of file operations, pre-existing files, `durlab fs` around a command, and the
//! removal of a stale mount left by a killed run.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use durlab_engine::backend::recording::{Op, Segment, read_trace};
use durlab_harness::recfs::RecordingMount;

struct Dirs {
    _tmp: tempfile::TempDir,
    backing: PathBuf,
    mnt: PathBuf,
    trace: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    fs::create_dir(&backing).unwrap();
    Dirs {
        backing,
        mnt: tmp.path().join("mnt"),
        trace: tmp.path().join("io.trace"),
        _tmp: tmp,
    }
}

fn bytes(data: &[Segment]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in data {
        match s {
            Segment::Bytes(b) => out.extend_from_slice(b),
            Segment::Zeros(n) => out.resize(out.len() + *n as usize, 0),
        }
    }
    out
}

/// An op with paths made relative to `root` and data flattened, for exact comparison.
fn show(op: &Op, root: &Path) -> String {
    let rel = |p: &Path| p.strip_prefix(root).unwrap().display().to_string();
    match op {
        Op::Create { file, path } => format!("create {file} {}", rel(path)),
        Op::Open { file, path } => format!("open {file} {}", rel(path)),
        Op::Preexisting { file, path, len } => format!("preexisting {file} {} {len}", rel(path)),
        Op::BaseData { file, offset, data } => {
            format!(
                "base {file} @{offset} {:?}",
                String::from_utf8_lossy(&bytes(data))
            )
        }
        Op::Write { file, offset, data } => {
            format!(
                "write {file} @{offset} {:?}",
                String::from_utf8_lossy(&bytes(data))
            )
        }
        Op::SyncData { file, .. } => format!("sync {file}"),
        Op::SetLen { file, len } => format!("set_len {file} {len}"),
        Op::Allocate { file, offset, len } => format!("allocate {file} @{offset} +{len}"),
        Op::Rename { from, to } => format!("rename {} {}", rel(from), rel(to)),
        Op::Remove { path } => format!("remove {}", rel(path)),
        Op::SyncDir { dir, .. } => format!("sync_dir {}", rel(dir)),
        Op::MkDir { path } => format!("mkdir {}", rel(path)),
        Op::RemoveDir { path } => format!("rmdir {}", rel(path)),
        Op::Link { from, to } => format!("link {} {}", rel(from), rel(to)),
        other => format!("{other:?}"),
    }
}

#[test]
fn passthrough_reads_back_through_the_mount_and_in_the_backing_directory() {
    let d = dirs();
    let mount = RecordingMount::mount(&d.backing, &d.mnt, &d.trace).unwrap();
    let m = mount.mountpoint().to_path_buf();
    let mut f = File::create(m.join("a")).unwrap();
    f.write_all(b"hello, durable world").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(m.join("a"), m.join("b")).unwrap();
    let f = OpenOptions::new().write(true).open(m.join("b")).unwrap();
    f.set_len(5).unwrap();
    f.write_all_at(b"!", 5).unwrap();
    f.sync_data().unwrap();
    drop(f);
    // O_APPEND: the kernel passes the file's end as the offset.
    let mut f = OpenOptions::new().append(true).open(m.join("b")).unwrap();
    f.write_all(b"?").unwrap();
    drop(f);
    let mut through = Vec::new();
    File::open(m.join("b"))
        .unwrap()
        .read_to_end(&mut through)
        .unwrap();
    assert_eq!(through, b"hello!?");
    assert_eq!(fs::read(d.backing.join("b")).unwrap(), b"hello!?");
    assert!(!m.join("a").exists() && !d.backing.join("a").exists());
    let names: Vec<_> = fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["b"]);
    mount.unmount().unwrap();
    // Unmounted: the mount point is an empty directory again, the backing file stays.
    assert_eq!(fs::read_dir(&d.mnt).unwrap().count(), 0);
    assert_eq!(fs::read(d.backing.join("b")).unwrap(), b"hello!?");
}

#[test]
fn a_scripted_sequence_yields_exactly_the_expected_trace() {
    let d = dirs();
    fs::write(d.backing.join("old"), b"from before").unwrap();
    fs::create_dir(d.backing.join("sub")).unwrap();
    let mount = RecordingMount::mount(&d.backing, &d.mnt, &d.trace).unwrap();
    let m = mount.mountpoint().to_path_buf();

    let f = File::create(m.join("a")).unwrap();
    f.write_all_at(b"one", 0).unwrap();
    f.write_all_at(b"two", 3).unwrap();
    f.sync_data().unwrap();
    fs::rename(m.join("a"), m.join("b")).unwrap();
    File::open(&m).unwrap().sync_all().unwrap();
    fs::create_dir(m.join("d")).unwrap();
    let g = File::create(m.join("d/c")).unwrap();
    g.write_all_at(b"x", 0).unwrap();
    nix::fcntl::fallocate(&g, nix::fcntl::FallocateFlags::empty(), 0, 8192).unwrap();
    g.sync_all().unwrap();
    f.set_len(2).unwrap();
    drop((f, g));
    fs::hard_link(m.join("b"), m.join("d/l")).unwrap();
    fs::remove_file(m.join("b")).unwrap();
    let mut old = OpenOptions::new().append(true).open(m.join("old")).unwrap();
    old.write_all(b"!").unwrap();
    drop(old);
    fs::remove_file(m.join("d/c")).unwrap();
    fs::remove_file(m.join("d/l")).unwrap();
    fs::remove_dir(m.join("d")).unwrap();
    fs::remove_dir(m.join("sub")).unwrap();
    mount.unmount().unwrap();

    let trace = read_trace(&d.trace).unwrap();
    assert_eq!(trace.torn_tail, None);
    let got: Vec<String> = trace.entries.iter().map(|e| show(&e.op, &m)).collect();
    let want = [
        "preexisting 0 old 11",
        "base 0 @0 \"from before\"",
        "create 1 a",
        "write 1 @0 \"one\"",
        "write 1 @3 \"two\"",
        "sync 1",
        "rename a b",
        "sync_dir ",
        "mkdir d",
        "create 2 d/c",
        "write 2 @0 \"x\"",
        "allocate 2 @0 +8192",
        "sync 2",
        "set_len 1 2",
        "link b d/l",
        "remove b",
        "write 0 @11 \"!\"",
        "remove d/c",
        "remove d/l",
        "rmdir d",
        "rmdir sub",
    ];
    assert_eq!(got, want);
    // Timestamps are monotonic; every sync covers the entries recorded before it began.
    for w in trace.entries.windows(2) {
        assert!(w[0].t_ns <= w[1].t_ns);
    }
    for e in &trace.entries {
        if let Op::SyncData { begin_seq, .. } | Op::SyncDir { begin_seq, .. } = e.op {
            assert!(begin_seq <= e.seq);
        }
    }
    let Op::SyncData { begin_seq, .. } = trace.entries[5].op else {
        panic!()
    };
    assert_eq!(begin_seq, 5, "the fdatasync covers both writes");
}

#[test]
fn bad_mount_points_are_refused_with_their_path() {
    let d = dirs();
    fs::create_dir(&d.mnt).unwrap();
    fs::write(d.mnt.join("x"), b"").unwrap();
    let e = RecordingMount::mount(&d.backing, &d.mnt, &d.trace).unwrap_err();
    assert!(e.to_string().contains("is not empty"), "{e}");
    let inside = d.backing.join("m");
    let e = RecordingMount::mount(&d.backing, &inside, &d.trace).unwrap_err();
    assert!(e.to_string().contains("must not contain each other"), "{e}");
    fs::write(&d.trace, b"").unwrap();
    let e =
        RecordingMount::mount(&d.backing, &d.backing.with_file_name("m2"), &d.trace).unwrap_err();
    assert!(
        e.to_string().contains(&d.trace.display().to_string()),
        "{e}"
    );
}

fn durlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_durlab"))
}

/// `durlab fs` over `d`'s backing directory and mount point, recording to `trace`.
fn durlab_fs(d: &Dirs, trace: &Path) -> Command {
    let mut c = durlab();
    c.arg("fs")
        .arg("--backing")
        .arg(&d.backing)
        .arg("--mount")
        .arg(&d.mnt)
        .arg("--trace")
        .arg(trace);
    c
}

#[test]
fn durlab_fs_runs_a_command_on_the_mount_and_unmounts() {
    let d = dirs();
    let out = durlab_fs(&d, &d.trace)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "echo hi > {0}/f && mv {0}/f {0}/g",
            d.mnt.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unmounted; 3 trace entries"), "{stderr}");
    assert_eq!(fs::read(d.backing.join("g")).unwrap(), b"hi\n");
    let trace = read_trace(&d.trace).unwrap();
    let root = d.mnt.canonicalize().unwrap();
    let got: Vec<String> = trace.entries.iter().map(|e| show(&e.op, &root)).collect();
    assert_eq!(got, ["create 0 f", "write 0 @0 \"hi\\n\"", "rename f g"]);
    // A failing command's status is passed on.
    let out = durlab_fs(&d, &d.trace.with_extension("2"))
        .args(["--", "false"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_stale_mount_of_a_killed_run_is_removed_with_a_message() {
    let d = dirs();
    let mut child = durlab_fs(&d, &d.trace).spawn().unwrap();
    fs::write(d.backing.join("marker"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.mnt.join("marker").exists() {
        assert!(Instant::now() < deadline, "durlab fs did not mount");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    let e = fs::metadata(&d.mnt).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    // The next mount there detaches the stale one, says so, and works.
    let out = durlab_fs(&d, &d.trace.with_extension("2"))
        .args(["--", "test", "-e"])
        .arg(d.mnt.join("marker"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("removed a stale mount"), "{stderr}");
    fs::metadata(&d.mnt).unwrap();
}

#[test]
fn without_dev_fuse_it_fails_naming_the_cause_and_runs_nothing() {
    // A private mount namespace whose /dev is an empty tmpfs: no /dev/fuse in it.
    let d = dirs();
    let marker = d.backing.join("ran");
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none /dev && exec \"$0\" fs --backing {} --mount {} --trace {} -- touch {}",
            d.backing.display(),
            d.mnt.display(),
            d.trace.display(),
            marker.display()
        ))
        .arg(env!("CARGO_BIN_EXE_durlab"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("FUSE is not available: /dev/fuse") && stderr.contains("never falls back"),
        "{stderr}"
    );
    assert!(
        !marker.exists(),
        "the command must not run on unrecorded I/O"
    );
    assert!(!d.trace.exists(), "no trace is started");
}
