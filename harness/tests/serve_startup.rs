//! `durlab serve`'s startup and `durlab recover`'s prediction of it, as child processes on real
//! directories (issue 18 rows 7-12): a torn tail is cut with a warning naming file, offset and
//! bytes, and the quarantine copy holds exactly those bytes; a full disk leaves no quarantine
//! file; a directory of leftovers that may hold data is refused by both; a Redis or unrelated
//! directory is not taken for a durlab one; each of a table of directories is predicted by
//! `recover` exactly as `serve` then treats it; and the one 64 MiB command limit.

mod resp_support;

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use durlab_engine::{Command, Engine, EngineConfig, FsyncPolicy, Persistence};
use durlab_harness::servers::Target;
use resp_support::{cli, require, start};

/// What `durlab serve` did on a directory.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    /// It listened, having recovered to this LSN.
    Started(u64),
    /// It exited before listening.
    Refused,
}

/// Starts `durlab serve` on `dir` (plus `extra` arguments); once it listens, runs `with` on
/// its address, then kills it. Returns what it did and its stderr.
fn serve_with(dir: &Path, extra: &[&str], with: impl FnOnce(&str)) -> (Served, String) {
    let mut child = Process::new(env!("CARGO_BIN_EXE_durlab"))
        .args(["serve", "--port", "0", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start durlab serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening = line.strip_prefix("listening ").map(str::trim);
    if let Some(addr) = listening {
        with(addr);
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(_) = listening else {
        assert!(
            !out.status.success(),
            "exited 0 without listening: {stderr}"
        );
        return (Served::Refused, stderr);
    };
    let lsn = stderr
        .split("recovered LSN ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no recovered LSN in {stderr}"));
    (Served::Started(lsn), stderr)
}

fn serve(dir: &Path) -> (Served, String) {
    serve_with(dir, &[], |_| {})
}

/// `durlab recover DIR [flag]`: exit status and stdout + stderr.
fn recover(dir: &Path, flag: Option<&str>) -> (bool, String) {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_durlab"));
    cmd.arg("recover").arg(dir).args(flag);
    let out = cmd.output().expect("run durlab recover");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What `durlab recover` says serve would do.
fn predicted(text: &str) -> Served {
    if text.contains("recovery would refuse to start") {
        Served::Refused
    } else if text.contains("recovery would start empty") {
        Served::Started(0)
    } else {
        let lsn = text
            .split("recovery would reach LSN ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no prediction in {text}"));
        Served::Started(lsn)
    }
}

/// A log of three records in `dir` (created); returns the log's path and length.
fn three_records(dir: &Path) -> (PathBuf, u64) {
    let (engine, _) = Engine::open(EngineConfig::new(dir).policy(FsyncPolicy::Always)).unwrap();
    for i in 0..3u8 {
        engine
            .execute(Command::Set {
                key: vec![b'k', i],
                value: vec![b'v'; 20],
            })
            .unwrap();
    }
    drop(engine);
    let log = dir.join("durlab.aof");
    let len = fs::metadata(&log).unwrap().len();
    (log, len)
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// A torn append followed by preallocated zeros: one non-zero byte, then 74 zeros.
const TORN: [u8; 75] = {
    let mut b = [0u8; 75];
    b[0] = 0xAB;
    b
};

#[test]
fn recover_fix_quarantines_exactly_the_bytes_it_cuts() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, good) = three_records(tmp.path());
    append(&log, &TORN);
    let (ok, text) = recover(tmp.path(), None);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("torn tail at byte {good} (75 bytes)")),
        "{text}"
    );
    assert!(
        text.contains("(the torn tail can be cut with --fix)"),
        "{text}"
    );
    let (ok, text) = recover(tmp.path(), Some("--fix"));
    assert!(ok, "{text}");
    let kept = tmp.path().join(format!("durlab.aof.{good}.quarantine"));
    assert!(
        text.contains(&format!(
            "fixed: {}: cut 75 bytes at byte {good} (truncated record), after the last valid record; they are kept in {}",
            log.display(),
            kept.display()
        )),
        "{text}"
    );
    assert_eq!(fs::metadata(&log).unwrap().len(), good);
    assert_eq!(
        fs::read(&kept).unwrap(),
        TORN,
        "the copy holds every byte cut"
    );
}

#[test]
fn serve_warns_of_the_torn_tail_it_cuts() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, good) = three_records(tmp.path());
    append(&log, &TORN);
    let (served, stderr) = serve(tmp.path());
    assert_eq!(served, Served::Started(3), "{stderr}");
    let kept = tmp.path().join(format!("durlab.aof.{good}.quarantine"));
    assert!(
        stderr.contains(&format!(
            "durlab serve: recovery: {}: cut 75 bytes at byte {good} (truncated record), after the last valid record; they are kept in {}",
            log.display(),
            kept.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&kept).unwrap(), TORN);
    // A clean restart says nothing about recovery.
    let (served, stderr) = serve(tmp.path());
    assert_eq!(served, Served::Started(3));
    assert!(!stderr.contains("recovery:"), "{stderr}");
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let st = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a tmpfs at {} failed: this test needs root (as scripts/test.sh runs)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(&self.0).status();
    }
}

#[test]
fn serve_on_a_full_disk_keeps_the_torn_tail_and_leaves_no_quarantine_file() {
    let tmp = tempfile::tempdir().unwrap();
    let fs_dir = Tmpfs::mount(&tmp.path().join("small"), "1m");
    let dir = fs_dir.0.join("data");
    let (log, good) = three_records(&dir);
    append(&log, &vec![0xAB; 300_000]);
    // Fill the file system.
    let mut filler = fs::File::create(fs_dir.0.join("filler")).unwrap();
    let chunk = vec![1u8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);
    let before = fs::read(&log).unwrap();
    let (served, stderr) = serve(&dir);
    assert_eq!(served, Served::Refused, "{stderr}");
    // The cut takes more than it leaves: the bytes before it are written as a new log, which
    // is what finds no room.
    assert!(
        stderr.contains("disk full") && stderr.contains("durlab.aof.tmp"),
        "{stderr}"
    );
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["durlab.aof"],
        "no quarantine file, no partial new log"
    );
    assert!(fs::read(&log).unwrap() == before, "nothing cut");
    // With room again, the same start cuts and keeps every byte.
    fs::remove_file(fs_dir.0.join("filler")).unwrap();
    let (served, stderr) = serve(&dir);
    assert_eq!(served, Served::Started(3), "{stderr}");
    let kept = fs::read(dir.join(format!("durlab.aof.{good}.whole.quarantine"))).unwrap();
    assert!(kept == before, "the whole log as it was");
    assert!(fs::read(&log).unwrap() == before[..good as usize]);
}

#[test]
fn leftovers_that_may_hold_data_are_refused_by_serve_and_recover_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tmp_snap = dir.join("durlab.snap.tmp");
    fs::write(&tmp_snap, vec![0x5A; 5000]).unwrap();
    let why = format!(
        "refusing to start empty: durlab.aof is missing from {}, which holds only leftovers of interrupted operations that may hold data (durlab.snap.tmp: 5000 bytes)",
        dir.display()
    );
    let (served, stderr) = serve(dir);
    assert_eq!(served, Served::Refused);
    assert!(stderr.contains(&why), "{stderr}");
    assert!(
        stderr.contains("move them out of the directory"),
        "{stderr}"
    );
    let (ok, text) = recover(dir, None);
    assert!(!ok, "{text}");
    assert_eq!(predicted(&text), Served::Refused);
    assert!(
        text.contains("which holds only leftovers of interrupted operations that may hold data (durlab.snap.tmp: 5000 bytes)"),
        "{text}"
    );
    assert!(!text.contains("healthy"), "{text}");
    assert!(!text.contains("--fix"), "{text}");
    let names: Vec<_> = fs::read_dir(dir).unwrap().collect();
    assert_eq!(names.len(), 1, "refusals change nothing");
}

#[test]
fn recover_on_a_redis_or_unrelated_directory_says_no_durlab_files_are_there() {
    require(&["redis-server", "redis-cli"]);
    let tmp = tempfile::tempdir().unwrap();
    let server = start(
        Target::Redis,
        FsyncPolicy::Always,
        Persistence::Aof,
        tmp.path(),
    );
    assert_eq!(cli(&server, &["SET", "k", "v"]).trim(), "OK");
    assert_eq!(cli(&server, &["SAVE"]).trim(), "OK");
    let redis_dir = server.spec().dir.clone();
    drop(server);
    let (ok, text) = recover(&redis_dir, None);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "{}: no durlab files (durlab.aof, durlab.snap, durlab.manifest, ...); it holds 2 other file(s): appendonlydir, dump.rdb. Not a durlab data directory",
            redis_dir.display()
        )),
        "{text}"
    );
    assert!(!text.contains("healthy"), "{text}");

    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), b"x").unwrap();
    let (ok, text) = recover(&other, None);
    assert!(!ok && text.contains("1 other file(s): notes.txt"), "{text}");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let (ok, text) = recover(&empty, None);
    assert!(
        !ok && text.contains("no durlab files (the directory is empty)"),
        "{text}"
    );
}

#[test]
fn recover_messages_are_true_for_their_case() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let (ok, text) = recover(&missing, None);
    assert!(!ok);
    assert!(text.contains("no such directory"), "{text}");
    assert!(!text.contains("not a directory"), "{text}");
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let (ok, text) = recover(&file, None);
    assert!(!ok && text.contains("not a directory"), "{text}");

    // Bad magic: refused, and no word of --fix, which cannot help.
    let bad = tmp.path().join("bad-magic");
    let (log, _) = three_records(&bad);
    let mut bytes = fs::read(&log).unwrap();
    bytes[0] ^= 0xFF;
    fs::write(&log, &bytes).unwrap();
    let (ok, text) = recover(&bad, Some("--check"));
    assert!(
        !ok && text.contains("recovery would refuse to start"),
        "{text}"
    );
    assert!(!text.contains("--fix"), "{text}");
    let (ok, text) = recover(&bad, Some("--fix"));
    assert!(
        !ok && text.contains("nothing to fix: no torn tail"),
        "{text}"
    );
    assert!(fs::read(&log).unwrap() == bytes);

    // A bad manifest: likewise.
    let hybrid = tmp.path().join("bad-manifest");
    fs::create_dir(&hybrid).unwrap();
    let cfg = EngineConfig::new(&hybrid).persistence(Persistence::Hybrid);
    drop(Engine::open(cfg).unwrap());
    fs::write(hybrid.join("durlab.manifest"), b"not a manifest").unwrap();
    let (ok, text) = recover(&hybrid, None);
    assert!(
        !ok && text.contains("recovery would refuse to start"),
        "{text}"
    );
    assert!(!text.contains("--fix"), "{text}");
}

/// One directory of the prediction table: its name and how to build it.
type Case = (&'static str, fn(&Path));

fn cases() -> Vec<Case> {
    vec![
        ("healthy", |d| {
            three_records(d);
        }),
        ("torn tail", |d| append(&three_records(d).0, &TORN)),
        ("damage in the middle", |d| {
            let (log, _) = three_records(d);
            let mut b = fs::read(&log).unwrap();
            b[100] ^= 0xFF;
            fs::write(&log, b).unwrap();
        }),
        ("bad magic", |d| {
            let (log, _) = three_records(d);
            let mut b = fs::read(&log).unwrap();
            b[0] ^= 0xFF;
            fs::write(&log, b).unwrap();
        }),
        ("empty log", |d| {
            fs::write(d.join("durlab.aof"), b"").unwrap()
        }),
        ("log of zeros", |d| {
            fs::write(d.join("durlab.aof"), [0u8; 4096]).unwrap()
        }),
        ("log of junk", |d| {
            fs::write(d.join("durlab.aof"), [7u8; 40]).unwrap()
        }),
        ("leftover that may hold data", |d| {
            fs::write(d.join("durlab.snap.tmp"), [1u8; 5000]).unwrap()
        }),
        ("leftover that holds no key", |d| {
            fs::write(d.join("durlab.manifest.tmp"), [1u8; 100]).unwrap()
        }),
        ("data file without the log", |d| {
            fs::write(d.join("durlab.7.incr.aof"), [1u8; 500]).unwrap()
        }),
        ("unrelated files", |d| {
            fs::write(d.join("dump.rdb"), b"REDIS0011").unwrap()
        }),
        ("empty directory", |_| {}),
    ]
}

#[test]
fn recover_predicts_exactly_what_serve_does() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, build) in cases() {
        let dir = tmp.path().join(name.replace(' ', "-"));
        fs::create_dir(&dir).unwrap();
        build(&dir);
        let (_, text) = recover(&dir, None);
        let prediction = predicted(&text);
        let (served, stderr) = serve(&dir);
        assert_eq!(
            prediction, served,
            "{name}: recover said\n{text}\nserve did\n{stderr}"
        );
    }
}

/// Sends SET k <value of `n` bytes> and returns the first reply line.
fn set_reply(addr: &str, n: usize, send_value: bool) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${n}\r\n").as_bytes())
        .unwrap();
    if send_value {
        let chunk = vec![b'x'; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            s.write_all(&chunk[..k]).unwrap();
            left -= k;
        }
        s.write_all(b"\r\n").unwrap();
    }
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") && s.read(&mut byte).unwrap() == 1 {
        reply.push(byte[0]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn one_command_size_limit_stated_by_both_sides() {
    const LIMIT: usize = 64 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A bulk limit above the log's record limit is refused at startup, naming it.
    let (served, stderr) = serve_with(&dir, &["--max-bulk-bytes", "536870912"], |_| {});
    assert_eq!(served, Served::Refused);
    assert!(
        stderr.contains(
            "--max-bulk-bytes 536870912 exceeds the log's record limit of 67108864 bytes"
        ),
        "{stderr}"
    );
    let (served, stderr) = serve_with(&dir, &[], |addr| {
        // A bulk over the limit: Redis's own protocol error.
        assert_eq!(
            set_reply(addr, LIMIT + 1, false),
            "-ERR Protocol error: invalid bulk length\r\n"
        );
        // Under the bulk limit but over the record limit with the key: refused, naming it.
        let reply = set_reply(addr, LIMIT - 2, true);
        assert!(
            reply.starts_with("-ERR command payload of ")
                && reply.contains("exceeds the record limit of 67108864 bytes"),
            "{reply}"
        );
        assert_eq!(set_reply(addr, LIMIT - 100, true), "+OK\r\n");
    });
    assert_eq!(served, Served::Started(0), "{stderr}");
}

/// Every file of `dir` with its bytes (to show a directory was not touched).
fn snapshot_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// `recover --persistence MODE` runs the engine's own recovery on a scratch copy: for every
/// mode and every directory of the table (plus a lone snapshot, which only mode `snapshot`
/// loads), it says exactly what `serve --persistence MODE` then does, and leaves the
/// directory as it was.
#[test]
fn recover_with_a_mode_predicts_exactly_what_serve_in_that_mode_does() {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = cases();
    all.push(("lone snapshot", |d| {
        let config = EngineConfig::new(d).persistence(Persistence::Snapshot);
        let (engine, _) = Engine::open(config).unwrap();
        engine
            .execute(Command::Set {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            })
            .unwrap();
        engine.save().unwrap();
    }));
    let (mut refused, mut started) = (0, 0);
    for mode in ["aof", "snapshot", "aof+snapshot", "hybrid"] {
        for (name, build) in &all {
            let dir = tmp
                .path()
                .join(format!("{mode}-{}", name.replace(' ', "-")));
            fs::create_dir(&dir).unwrap();
            build(&dir);
            let before = snapshot_of(&dir);
            let out = Process::new(env!("CARGO_BIN_EXE_durlab"))
                .arg("recover")
                .arg(&dir)
                .args(["--persistence", mode])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                before,
                snapshot_of(&dir),
                "{mode} {name}: recover changed the directory"
            );
            let serve_line = format!("durlab serve --persistence {mode} would ");
            let prediction = match text.split(&serve_line).nth(1) {
                Some(rest) if rest.starts_with("refuse to start") => Served::Refused,
                Some(rest) => Served::Started(
                    rest.strip_prefix("start at LSN ")
                        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("{mode} {name}: {text}")),
                ),
                // No durlab files at all: nothing to predict, and recover says so.
                None => {
                    assert!(text.contains("no durlab files"), "{mode} {name}: {text}");
                    continue;
                }
            };
            assert_eq!(
                out.status.success(),
                prediction != Served::Refused,
                "{text}"
            );
            let (served, stderr) = serve_with(&dir, &["--persistence", mode], |_| {});
            assert_eq!(
                prediction, served,
                "{mode} {name}: recover said\n{text}\nserve did\n{stderr}"
            );
            if served != Served::Refused {
                started += 1;
            } else {
                refused += 1;
                // The same refusal, in the same words.
                let why = text.split("would refuse to start: ").nth(1).unwrap().trim();
                assert!(stderr.contains(why), "{mode} {name}: {why}\nvs\n{stderr}");
            }
        }
    }
    // The table holds directories serve starts on and directories it refuses, in every mode.
    assert!(
        refused >= 4 && started >= 4,
        "{refused} refused, {started} started"
    );
}
