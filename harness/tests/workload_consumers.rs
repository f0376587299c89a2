//! The consumer side of the workload (harness/src/workload/consumers.rs): a pure function of
//! (seed, n), and through the oracle's model a sequence that reads, acknowledges and reclaims
//! as the scenario says; the scenario fields are checked.

use std::path::Path;

use durlab_engine::Command;
use durlab_engine::Reply;
use durlab_harness::oracle::Model;
use durlab_harness::oracle::model::ModelValue;
use durlab_harness::scenario::{self, locate, parse_str};
use durlab_harness::workload::Workload;

fn event_stream() -> Workload {
    let path = locate::find_scenario("event-stream").expect("scenario exists");
    Workload::new(&scenario::load(&path).expect("scenario loads").workload)
}

#[test]
fn consumer_commands_are_a_function_of_n() {
    let w = event_stream();
    assert_eq!(w.setup_len(), 8, "one XGROUP CREATE per category stream");
    for n in 1..=8 {
        assert!(
            matches!(w.command(n), Command::XGroupCreate { mkstream: true, .. }),
            "{n}"
        );
    }
    let mut stream = w.writer(0);
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for n in 1..=6000 {
        let c = stream.write_command(n);
        assert_eq!(c, w.command(n), "command {n}: streamed and fresh differ");
        let kind = match &c {
            Command::XAdd { .. } => "xadd",
            Command::XReadGroup { .. } => "xreadgroup",
            Command::XAck { .. } => "xack",
            Command::XAutoClaim { .. } => "xautoclaim",
            _ => "other",
        };
        *kinds.entry(kind).or_default() += 1;
    }
    // Backwards too: an xack regenerated alone equals the one in the sequence.
    for n in (5000..5100).rev() {
        assert_eq!(Workload::command(&w, n), w.command(n));
    }
    for k in ["xadd", "xreadgroup", "xack", "xautoclaim"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 100, "{kinds:?}");
    }
}

#[test]
fn consumers_read_acknowledge_and_reclaim_in_the_model() {
    let w = event_stream();
    let mut model = Model::new();
    let (mut added, mut delivered, mut acked, mut claimed) = (0u64, 0u64, 0i64, 0usize);
    let total = 30_000;
    for n in 1..=total {
        let cmd = w.command(n);
        let reply = model.apply(&cmd);
        assert!(
            !matches!(reply, Reply::Error(_)),
            "command {n} {cmd:?}: {reply:?}"
        );
        match (&cmd, &reply) {
            (Command::XAdd { .. }, _) => added += 1,
            (Command::XReadGroup { .. }, Reply::Array(streams)) => {
                if let Reply::Array(kv) = &streams[0]
                    && let Reply::Array(entries) = &kv[1]
                {
                    delivered += entries.len() as u64;
                }
            }
            (Command::XAck { .. }, Reply::Int(k)) => acked += k,
            (Command::XAutoClaim { .. }, Reply::Array(parts)) => {
                if let Reply::Array(c) = &parts[1] {
                    claimed += c.len();
                }
            }
            _ => {}
        }
    }
    let pending: usize = model
        .map
        .values()
        .map(|e| match &e.value {
            ModelValue::Stream { groups, .. } => groups.values().map(|g| g.pel.len()).sum(),
            _ => 0,
        })
        .sum();
    eprintln!(
        "{total} commands: {added} added, {delivered} delivered, {acked} acked, {claimed} claimed, {pending} pending"
    );
    // Consumers keep up with producers, and everything delivered is acknowledged or still
    // within its acknowledgement delay (at most reclaim_delay = 2000 commands' entries).
    assert!(delivered * 10 >= added * 9, "{delivered} of {added}");
    assert_eq!(delivered, acked as u64 + pending as u64);
    assert!(pending < 2000, "{pending} pending");
    assert!(claimed > 0);
}

fn scenario(ops: &str, targets: &str) -> Result<(), String> {
    let text = format!(
        r#"
name = "t"
question = "q"
[workload]
seed = 1
writers = 1
commands = 10
keys = {{ count = 4, distribution = "uniform" }}
values = {{ distribution = "fixed", bytes = 8 }}
{ops}
[matrix]
targets = [{targets}]
"#
    );
    parse_str(Path::new("scenarios/t.toml"), &text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn consumer_fields_are_checked() {
    let xadd = "[[workload.ops]]\ncommand = \"xadd\"\nweight = 1\n";
    let read = "[[workload.ops]]\ncommand = \"xreadgroup\"\nweight = 1\n";
    let ok = scenario(
        &format!(
            "{xadd}{read}[[workload.ops]]\ncommand = \"xautoclaim\"\nweight = 1\nmin_idle_ms = 5\n"
        ),
        "\"engine\"",
    );
    assert_eq!(ok, Ok(()));
    let e = scenario(
        &format!(
            "{xadd}{read}[[workload.ops]]\ncommand = \"xautoclaim\"\nweight = 1\nmin_idle_ms = 5\n"
        ),
        "\"redis\"",
    )
    .unwrap_err();
    assert!(
        e.contains("min_idle_ms") && e.contains("RESP target"),
        "{e}"
    );
    let e = scenario(
        &format!(
            "{xadd}{read}[[workload.ops]]\ncommand = \"xack\"\nweight = 1\nnever_acked = 1.5\n"
        ),
        "\"engine\"",
    )
    .unwrap_err();
    assert!(e.contains("never_acked"), "{e}");
    let e = scenario(&format!("{xadd}ack_delay = 5\n"), "\"engine\"").unwrap_err();
    assert!(
        e.contains("ack_delay") && e.contains("only applies to xack"),
        "{e}"
    );
    let e = scenario(
        &format!("{xadd}[[workload.ops]]\ncommand = \"xack\"\nweight = 1\n"),
        "\"engine\"",
    )
    .unwrap_err();
    assert!(e.contains("need an xreadgroup"), "{e}");
}
