//! The hybrid manifest's grammar and name rules, each with a valid checksum (so the rule, not
//! the checksum, is what rejects), exact error offsets, and the size limit at its edge.

use std::fs;

use durlab_engine::backend::pwrite::PwriteBackend;
use durlab_engine::hybrid::manifest::{
    self, BaseFile, IncrFile, MANIFEST_FILE_NAME, Manifest, base_name, incr_name, seq_of,
};
use durlab_engine::{Engine, EngineConfig, Error, Persistence};

/// `body` with its checksum line: what `Manifest::encode` would append.
fn sealed(body: &str) -> Vec<u8> {
    format!("{body}crc32c {:08x}\n", crc32c::crc32c(body.as_bytes())).into_bytes()
}

fn decode(body: &str) -> Result<Manifest, (u64, String)> {
    Manifest::decode(&sealed(body))
}

const HEAD: &str = "durlab-manifest 1\ngeneration 7\n";

/// Asserts that `body` is refused for its line starting at byte `at`.
fn refused_at(body: &str, at: usize) {
    let (offset, reason) = decode(body).expect_err(body);
    assert_eq!(offset, at as u64, "{body}: {reason}");
    let line = body[at..].lines().next().unwrap();
    assert_eq!(reason, format!("bad manifest line: {line}"));
}

#[test]
fn names_and_sequence_numbers() {
    assert_eq!(base_name(3), "durlab.3.base.snap");
    assert_eq!(incr_name(12), "durlab.12.incr.aof");
    assert_eq!(seq_of("durlab.12.incr.aof"), Some(12));
    assert_eq!(seq_of("durlab.7.base.snap"), Some(7));
    assert_eq!(seq_of("durlab.7.base.snap.tmp"), Some(7));
    assert_eq!(seq_of("durlab.4.incr.aof.100.quarantine"), Some(4));
    assert_eq!(seq_of("durlab.3.other"), None);
    assert_eq!(seq_of("durlab.x.incr.aof"), None);
    assert_eq!(seq_of("durlab.manifest"), None);
}

#[test]
fn files_lists_base_first() {
    let m = Manifest {
        generation: 2,
        base: Some(BaseFile {
            name: base_name(2),
            lsn: 10,
        }),
        incrs: vec![
            IncrFile {
                name: incr_name(2),
                base_lsn: 10,
            },
            IncrFile {
                name: incr_name(3),
                base_lsn: 20,
            },
        ],
    };
    assert_eq!(
        m.files(),
        vec![
            "durlab.2.base.snap",
            "durlab.2.incr.aof",
            "durlab.3.incr.aof"
        ]
    );
    let text = String::from_utf8(m.encode()).unwrap();
    let body = "durlab-manifest 1\ngeneration 2\nbase durlab.2.base.snap 10\n\
                incr durlab.2.incr.aof 10\nincr durlab.3.incr.aof 20\n";
    assert_eq!(text.as_bytes(), sealed(body));
    assert_eq!(Manifest::decode(text.as_bytes()), Ok(m));
}

#[test]
fn grammar_rules_with_valid_checksums() {
    let base = "base durlab.1.base.snap 5\n";
    let incr = "incr durlab.1.incr.aof 5\n";
    let ok = format!("{HEAD}{base}{incr}");
    assert_eq!(decode(&ok).unwrap().base.unwrap().lsn, 5);
    // A manifest without a base (a directory never rewritten).
    assert!(decode(&format!("{HEAD}{incr}")).unwrap().base.is_none());
    let at = HEAD.len();
    // A second base, before or after the increments.
    refused_at(&format!("{HEAD}{base}{base}{incr}"), at + base.len());
    refused_at(&format!("{HEAD}{incr}{base}"), at + incr.len());
    // Names that are paths or not of their kind.
    for name in [
        "../x",
        "durlab.1.base.snap/../../x",
        "durlab..base.snap",
        "durlab.1x.base.snap",
        "durlab.1.incr.aof",
        "x.1.base.snap",
    ] {
        refused_at(&format!("{HEAD}base {name} 5\n{incr}"), at);
    }
    for name in [
        "../x",
        "durlab..incr.aof",
        "durlab.a.incr.aof",
        "durlab.1.base.snap",
        "/tmp/durlab.1.incr.aof",
    ] {
        refused_at(&format!("{HEAD}incr {name} 5\n"), at);
    }
    // Words: too few, too many, a bad number, an unknown kind.
    refused_at(
        &format!("{HEAD}{incr}incr durlab.2.incr.aof\n"),
        at + incr.len(),
    );
    refused_at(
        &format!("{HEAD}{incr}incr durlab.2.incr.aof 5 6\n"),
        at + incr.len(),
    );
    refused_at(
        &format!("{HEAD}{incr}incr durlab.2.incr.aof -5\n"),
        at + incr.len(),
    );
    refused_at(
        &format!("{HEAD}{incr}snap durlab.2.incr.aof 5\n"),
        at + incr.len(),
    );
    // The third of three increments: offsets keep counting lines.
    let third = format!("{HEAD}{incr}{incr}incr ../x 5\n");
    refused_at(&third, at + 2 * incr.len());
    // Header lines.
    assert_eq!(
        decode(&format!("durlab-manifest 2\ngeneration 7\n{incr}")).unwrap_err(),
        (0, "first line is not 'durlab-manifest 1'".to_string())
    );
    refused_at(&format!("durlab-manifest 1\ngeneration x\n{incr}"), 18);
    assert_eq!(
        decode("durlab-manifest 1\n").unwrap_err(),
        (18, "no generation line".to_string())
    );
    assert_eq!(
        decode(HEAD).unwrap_err(),
        (HEAD.len() as u64, "manifest lists no increment".to_string())
    );
}

#[test]
fn checksum_line_rules() {
    let body = format!("{HEAD}incr durlab.1.incr.aof 5\n");
    let crc = crc32c::crc32c(body.as_bytes());
    let with = |line: String| {
        let mut b = body.clone().into_bytes();
        b.extend_from_slice(line.as_bytes());
        Manifest::decode(&b)
    };
    assert!(with(format!("crc32c {crc:08x}\n")).is_ok());
    // One spelling only: uppercase hex is refused even though it names the same number.
    let upper = format!("crc32c {crc:08X}\n");
    if upper != format!("crc32c {crc:08x}\n") {
        assert_eq!(
            with(upper).unwrap_err(),
            (body.len() as u64, "bad checksum line".to_string())
        );
    }
    // Not eight digits (the number without its padding, or with one more).
    assert_eq!(
        with(format!("crc32c 0{crc:08x}\n")).unwrap_err(),
        (body.len() as u64, "bad checksum line".to_string())
    );
    let err = with(format!("crc32c {:08x}\n", crc ^ 1)).unwrap_err();
    assert_eq!(err.0, body.len() as u64);
    assert!(err.1.starts_with("manifest checksum mismatch"), "{}", err.1);
    // A manifest whose checksum starts with a zero digit: seven digits are refused.
    let (body7, crc7) = (0u64..)
        .map(|g| {
            let b = format!("durlab-manifest 1\ngeneration {g}\nincr durlab.1.incr.aof 5\n");
            let c = crc32c::crc32c(b.as_bytes());
            (b, c)
        })
        .find(|(_, c)| *c < 0x1000_0000)
        .unwrap();
    let mut short = body7.clone().into_bytes();
    short.extend_from_slice(format!("crc32c {crc7:x}\n").as_bytes());
    assert_eq!(
        Manifest::decode(&short).unwrap_err(),
        (body7.len() as u64, "bad checksum line".to_string())
    );
}

/// A valid manifest of exactly `len` bytes (many increments), built with one encode.
fn manifest_of_len(len: usize) -> Vec<u8> {
    let head = "durlab-manifest 1\ngeneration 1\n".len();
    let crc_line = "crc32c 00000000\n".len();
    let line =
        |seq: usize, lsn_digits: usize| "incr  \n".len() + incr_name(seq as u64).len() + lsn_digits;
    let mut digits = Vec::new();
    let mut total = head + crc_line;
    while total + line(digits.len() + 1, 1) <= len {
        total += line(digits.len() + 1, 1);
        digits.push(1usize);
    }
    // Lengthen LSNs digit by digit (up to 19 digits each) to reach the exact size.
    let mut i = 0;
    while total < len {
        if digits[i] < 19 {
            digits[i] += 1;
            total += 1;
        }
        i = (i + 1) % digits.len();
    }
    let m = Manifest {
        generation: 1,
        base: None,
        incrs: digits
            .iter()
            .enumerate()
            .map(|(i, &d)| IncrFile {
                name: incr_name(i as u64 + 1),
                base_lsn: "1".repeat(d).parse().unwrap(),
            })
            .collect(),
    };
    let bytes = m.encode();
    assert_eq!(bytes.len(), len);
    bytes
}

#[test]
fn manifest_size_limit_is_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MANIFEST_FILE_NAME);
    let backend = PwriteBackend::new();
    fs::write(&path, manifest_of_len(1 << 20)).unwrap();
    let m = manifest::read(&backend, &path).expect("exactly 1 MiB is allowed");
    assert!(m.incrs.len() > 1000);
    fs::write(&path, manifest_of_len((1 << 20) + 1)).unwrap();
    match manifest::read(&backend, &path).expect_err("over 1 MiB") {
        Error::Corrupt { offset, reason, .. } => {
            assert_eq!(offset, 0);
            assert_eq!(
                reason,
                format!("manifest of {} bytes is too large", (1 << 20) + 1)
            );
        }
        other => panic!("{other}"),
    }
}

/// Quarantine copies next to a hybrid directory's files are neither data nor leftovers; an
/// increment that no manifest lists is a leftover.
#[test]
fn hybrid_leftovers_exclude_quarantine_copies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.persistence = Persistence::Hybrid;
    let (engine, _) = Engine::open(cfg.clone()).unwrap();
    drop(engine);
    let q = dir.path().join("durlab.1.incr.aof.64.quarantine");
    fs::write(&q, b"cut bytes").unwrap();
    let stray = dir.path().join("durlab.9.incr.aof");
    fs::write(&stray, b"unlisted").unwrap();
    let (engine, report) = Engine::open(cfg).unwrap();
    drop(engine);
    assert_eq!(report.leftover_files, vec![stray]);
}
