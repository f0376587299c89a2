//! RESP2 parser and encoder: round trips, bounds with Redis's error texts, incremental
//! parsing, and (proptest) arbitrary bytes never panic.

use durlab_harness::resp::parse::{Scanned, Scanner, parse_request, parse_value, split_inline};
use durlab_harness::resp::{Limits, Value, encode};
use proptest::prelude::*;

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn command_round_trip_and_incremental() {
    let args: Vec<Vec<u8>> = vec![b"SET".to_vec(), b"k".to_vec(), vec![0, b'\r', b'\n', 255]];
    let mut buf = Vec::new();
    encode::command(&mut buf, &args);
    encode::command(&mut buf, &[b"PING"]);
    // Every strict prefix of the first request is incomplete, never an error.
    let first_len = buf.len() - b"*1\r\n$4\r\nPING\r\n".len();
    for cut in 0..first_len {
        assert_eq!(parse_request(&buf[..cut], &limits()), Ok(None), "cut {cut}");
    }
    let (got, used) = parse_request(&buf, &limits()).unwrap().unwrap();
    assert_eq!((got, used), (args, first_len));
    let (got, _) = parse_request(&buf[used..], &limits()).unwrap().unwrap();
    assert_eq!(got, vec![b"PING".to_vec()]);
}

#[test]
fn value_round_trip() {
    let v = Value::Array(vec![
        Value::ok(),
        Value::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
        Value::Int(-42),
        Value::Bulk(vec![1, 2, 3, b'\r', b'\n']),
        Value::Nil,
        Value::NilArray,
        Value::Array(vec![
            Value::bulk("0-1"),
            Value::Array(vec![Value::bulk("v"), Value::bulk("")]),
        ]),
    ]);
    let bytes = encode::to_vec(&v);
    for cut in 0..bytes.len() {
        assert_eq!(parse_value(&bytes[..cut], &limits()), Ok(None), "cut {cut}");
    }
    assert_eq!(parse_value(&bytes, &limits()), Ok(Some((v, bytes.len()))));
}

#[test]
fn inline_commands_split_like_redis() {
    let (args, used) = parse_request(b"set k \"a b\\x41\\n\" 'it\\'s'\r\nPING\r\n", &limits())
        .unwrap()
        .unwrap();
    assert_eq!(
        args,
        vec![
            b"set".to_vec(),
            b"k".to_vec(),
            b"a bA\n".to_vec(),
            b"it's".to_vec()
        ]
    );
    assert_eq!(used, b"set k \"a b\\x41\\n\" 'it\\'s'\r\n".len());
    assert_eq!(parse_request(b"\r\n", &limits()), Ok(Some((vec![], 2))));
    let e = split_inline(b"get \"k").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Protocol error: unbalanced quotes in request"
    );
    assert!(split_inline(b"get \"k\"x").is_err());
}

#[test]
fn bounds_give_protocol_errors() {
    let small = Limits {
        max_bulk_bytes: 10,
        max_array_len: 3,
        max_inline_bytes: 16,
        max_request_bytes: 20,
        max_depth: 2,
    };
    let err = |b: &[u8]| parse_request(b, &small).unwrap_err().to_string();
    assert_eq!(err(b"*4\r\n"), "Protocol error: invalid multibulk length");
    assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
    assert_eq!(err(b"*1\r\n$11\r\n"), "Protocol error: invalid bulk length");
    assert_eq!(err(b"*1\r\n$-2\r\n"), "Protocol error: invalid bulk length");
    assert_eq!(
        err(b"*1\r\n+x\r\n"),
        "Protocol error: expected '$', got '+'"
    );
    assert_eq!(
        err(b"*1\r\n$1\r\nab\r\n"),
        "Protocol error: bulk string not terminated by CRLF"
    );
    assert_eq!(
        err(b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n"),
        "Protocol error: request exceeds the query buffer limit"
    );
    assert_eq!(err(&[b'a'; 17]), "Protocol error: too big inline request");
    assert_eq!(
        err(b"*11111111111111111"),
        "Protocol error: too big mbulk count string"
    );
    // A declared length is never allocated before its bytes arrive.
    let huge = Limits::default();
    assert_eq!(parse_request(b"*1\r\n$536870912\r\n", &huge), Ok(None));
    assert!(parse_request(b"*1\r\n$536870913\r\n", &huge).is_err());
    // Replies nest only so deep.
    assert!(parse_value(b"*1\r\n*1\r\n*1\r\n:1\r\n", &small).is_err());
}

/// A [`Scanner`] fed a request a few bytes at a time (resuming each call) finds the same
/// request, error text and length as one parse of the whole buffer.
#[test]
fn scanner_resumes_to_the_same_result() {
    let mut multi = Vec::new();
    encode::command(&mut multi, &[&b"SET"[..], b"k", &[0, b'\r', b'\n', 255]]);
    let cases: [&[u8]; 5] = [
        &multi,
        b"set k \"a b\" 'c'\r\n",
        b"*2\r\n$3\r\nGET\r\n:1\r\n",
        b"*1\r\n$1\r\nab\r\n",
        b"*0\r\n",
    ];
    for whole in cases {
        let expected = parse_request(whole, &limits());
        for step in [1, 2, 3, 7] {
            let mut scanner = Scanner::new();
            let mut got = Ok(None);
            let mut end = 0;
            while end < whole.len() {
                end = (end + step).min(whole.len());
                got = scanner.scan(&whole[..end], &limits()).map(|s| {
                    s.map(|s| match s {
                        Scanned::Spans { used } => {
                            let args = scanner.spans().iter();
                            let args = args.map(|&(at, len)| whole[at..at + len].to_vec());
                            (args.collect(), used)
                        }
                        Scanned::Inline { args, used } => (args, used),
                    })
                });
                if !matches!(got, Ok(None)) {
                    break;
                }
            }
            assert_eq!(got, expected, "{whole:?} in steps of {step}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let small = Limits { max_bulk_bytes: 64, max_array_len: 8, max_inline_bytes: 64, max_request_bytes: 256, max_depth: 4 };
        for l in [small, Limits::default()] {
            if let Ok(Some((_, used))) = parse_request(&bytes, &l) {
                prop_assert!(used <= bytes.len());
            }
            if let Ok(Some((_, used))) = parse_value(&bytes, &l) {
                prop_assert!(used <= bytes.len());
            }
        }
    }

    #[test]
    fn resp_like_bytes_never_panic(parts in proptest::collection::vec(
        prop_oneof![Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"-1".to_vec()),
                    Just(b"3".to_vec()), Just(b"+OK".to_vec()), Just(b":".to_vec()), Just(b"\"".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..4)], 0..40)) {
        let bytes: Vec<u8> = parts.concat();
        let _ = parse_request(&bytes, &limits());
        let _ = parse_value(&bytes, &limits());
    }

    #[test]
    fn commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6)) {
        let mut buf = Vec::new();
        encode::command(&mut buf, &args);
        prop_assert_eq!(parse_request(&buf, &limits()), Ok(Some((args, buf.len()))));
    }
}
