//! `durlab recover`: healthy, torn tail (reported, then cut with --fix keeping a copy), damage
//! in the middle (reported, never changed). Its prediction of `durlab serve`'s startup and its
//! messages per case are in serve_startup.rs.

use std::fs;
use std::path::Path;
use std::process::Command as Process;

use durlab_engine::{Command, Engine, EngineConfig, FsyncPolicy};

fn durlab_recover(dir: &Path, flag: Option<&str>) -> (bool, String) {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_durlab"));
    cmd.arg("recover").arg(dir);
    if let Some(f) = flag {
        cmd.arg(f);
    }
    let out = cmd.output().expect("run durlab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_log(dir: &Path, n: u64) {
    let (engine, _) = Engine::open(EngineConfig::new(dir).policy(FsyncPolicy::Always)).unwrap();
    for i in 0..n {
        engine
            .execute(Command::Set {
                key: format!("k{i}").into_bytes(),
                value: vec![b'v'; 40],
            })
            .unwrap();
    }
}

#[test]
fn healthy_torn_and_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    write_log(&dir, 50);
    let (ok, text) = durlab_recover(&dir, None);
    assert!(ok, "{text}");
    assert!(
        text.contains("LSN 1..=50") && text.contains("healthy"),
        "{text}"
    );

    let log = dir.join("durlab.aof");
    let len = fs::metadata(&log).unwrap().len();
    fs::write(&log, [fs::read(&log).unwrap(), b"torn!".to_vec()].concat()).unwrap();
    let (ok, text) = durlab_recover(&dir, Some("--check"));
    assert!(!ok, "a torn tail is a problem: {text}");
    assert!(text.contains(&format!("torn tail at byte {len}")), "{text}");
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        len + 5,
        "--check changes nothing"
    );

    let (ok, text) = durlab_recover(&dir, Some("--fix"));
    assert!(ok, "{text}");
    assert_eq!(fs::metadata(&log).unwrap().len(), len);
    let kept = dir.join(format!("durlab.aof.{len}.quarantine"));
    assert_eq!(fs::read(kept).unwrap(), b"torn!");
}

#[test]
fn damage_in_the_middle_is_reported_never_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    write_log(&dir, 50);
    let log = dir.join("durlab.aof");
    let mut bytes = fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    fs::write(&log, &bytes).unwrap();
    for flag in [None, Some("--fix")] {
        let (ok, text) = durlab_recover(&dir, flag);
        assert!(!ok, "{flag:?}: {text}");
        assert!(
            text.contains("durlab.aof at byte"),
            "names file and offset: {text}"
        );
        assert_eq!(
            fs::read(&log).unwrap(),
            bytes,
            "{flag:?} must not change a damaged log"
        );
    }
}

#[test]
fn missing_directory_is_an_error() {
    let (ok, text) = durlab_recover(Path::new("/nonexistent/durlab-data"), None);
    assert!(!ok);
    assert!(
        text.contains("/nonexistent/durlab-data: no such directory"),
        "{text}"
    );
}
