//! The requests that touch no connection state: PING, ECHO, INFO (sections `server`,
//! `clients`, `persistence`, `stats`, in Redis's `# Section` / `field:value` shape), CONFIG
//! GET, SELECT and client chatter; saves go to [`super::background`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::State;
use super::background;
use crate::resp::Value;
use crate::resp::commands::Request;
use crate::resp::info;

/// Requests that touch no connection state.
pub(super) fn server_request(st: &Arc<State>, req: Request) -> Value {
    let engine = &st.engine;
    match req {
        Request::Ping(None) => Value::Simple("PONG".into()),
        Request::Ping(Some(m)) | Request::Echo(m) => Value::Bulk(m),
        Request::Info(section) => {
            let bg = st.bg.lock().clone();
            let persistence = info::persistence(engine, &bg);
            let server = format!(
                "# Server\r\ndurlab_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                std::process::id(),
                st.addr.port()
            );
            let clients = format!(
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\ndurlab_client_output_limit:{}\r\n\r\n",
                st.connected.load(Ordering::Acquire),
                st.clients.max_clients,
                st.clients.max_output_bytes
            );
            let stats = format!(
                "# Stats\r\nrejected_connections:{}\r\ndurlab_output_limit_disconnections:{}\r\n\r\n",
                st.rejected.load(Ordering::Relaxed),
                st.output_disconnects.load(Ordering::Relaxed)
            );
            Value::Bulk(
                match section.as_deref() {
                    Some("persistence") => persistence,
                    Some("server") => server,
                    Some("clients") => clients,
                    Some("stats") => stats,
                    None | Some("all" | "everything" | "default") => {
                        server + &clients + &persistence + &stats
                    }
                    Some(_) => String::new(),
                }
                .into_bytes(),
            )
        }
        Request::ConfigGet(pattern) => Value::Array(
            info::config_get(engine, st.addr.port(), &pattern)
                .into_iter()
                .chain(
                    ["*", "maxclients"]
                        .contains(&pattern.as_str())
                        .then(|| ("maxclients", st.clients.max_clients.to_string())),
                )
                .flat_map(|(k, v)| [Value::bulk(k), Value::bulk(v)])
                .collect(),
        ),
        Request::BgSave => background::start(st, false),
        Request::BgRewriteAof => background::start(st, true),
        Request::Save => background::save(st),
        Request::Select(0) | Request::Client => Value::ok(),
        Request::Select(_) => Value::err("DB index is out of range"),
        Request::CommandDocs => Value::Array(Vec::new()),
        Request::Engine { .. }
        | Request::Read(_)
        | Request::Multi
        | Request::Exec
        | Request::Discard
        | Request::Quit
        | Request::Shutdown => {
            Value::err("internal: connection request handled as a server request")
        }
    }
}

#[cfg(test)]
mod tests {
    use durlab_engine::{EngineConfig, FsyncPolicy};

    use super::*;
    use crate::resp::server::test_state;

    /// An engine that touches no files (mode `aof` under policy `off`), at port 6390.
    fn state() -> Arc<State> {
        test_state(
            EngineConfig::new("/nonexistent/durlab-admin-test").policy(FsyncPolicy::Off),
            7,
        )
    }

    fn bulk_text(v: Value) -> String {
        match v {
            Value::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        }
    }

    fn info(st: &Arc<State>, section: Option<&str>) -> String {
        bulk_text(server_request(st, Request::Info(section.map(Into::into))))
    }

    #[test]
    fn info_sections_have_redis_shape() {
        let st = state();
        let server = info(&st, Some("server"));
        assert!(server.starts_with("# Server\r\n"), "{server}");
        assert!(server.contains("\r\ntcp_port:6390\r\n"), "{server}");
        assert!(server.ends_with("\r\n\r\n"), "{server}");
        let clients = info(&st, Some("clients"));
        assert_eq!(
            clients,
            format!(
                "# Clients\r\nconnected_clients:0\r\nmaxclients:7\r\ndurlab_client_output_limit:{}\r\n\r\n",
                crate::resp::server::DEFAULT_MAX_OUTPUT_BYTES
            )
        );
        st.rejected.fetch_add(2, Ordering::Relaxed);
        assert_eq!(
            info(&st, Some("stats")),
            "# Stats\r\nrejected_connections:2\r\ndurlab_output_limit_disconnections:0\r\n\r\n"
        );
        let persistence = info(&st, Some("persistence"));
        assert!(
            persistence.starts_with("# Persistence\r\n"),
            "{persistence}"
        );
        for line in persistence.lines().skip(1) {
            assert!(line.is_empty() || line.contains(':'), "{line:?}");
        }
    }

    #[test]
    fn info_without_a_section_is_every_section_in_order_and_an_unknown_one_is_empty() {
        let st = state();
        for all in [None, Some("all"), Some("everything"), Some("default")] {
            let text = info(&st, all);
            let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
            assert_eq!(
                headers,
                ["# Server", "# Clients", "# Persistence", "# Stats"],
                "{all:?}"
            );
        }
        assert_eq!(info(&st, Some("keyspace")), "");
    }

    #[test]
    fn config_get_is_a_flat_array_of_name_value_pairs() {
        let st = state();
        let get = |p: &str| server_request(&st, Request::ConfigGet(p.into()));
        assert_eq!(
            get("maxclients"),
            Value::Array(vec![Value::bulk("maxclients"), Value::bulk("7")])
        );
        assert_eq!(
            get("appendfsync"),
            Value::Array(vec![Value::bulk("appendfsync"), Value::bulk("no")])
        );
        assert_eq!(
            get("port"),
            Value::Array(vec![Value::bulk("port"), Value::bulk("6390")])
        );
        assert_eq!(get("no-such-parameter"), Value::Array(Vec::new()));
        let Value::Array(all) = get("*") else {
            panic!("CONFIG GET * is an array");
        };
        assert_eq!(all.len() % 2, 0);
        assert_eq!(
            all[all.len() - 2..],
            [Value::bulk("maxclients"), Value::bulk("7")]
        );
        assert!(all.chunks(2).any(|kv| kv[0] == Value::bulk("appendonly")));
    }

    #[test]
    fn ping_echo_select_and_client_chatter() {
        let st = state();
        let r = |req| server_request(&st, req);
        assert_eq!(r(Request::Ping(None)), Value::Simple("PONG".into()));
        assert_eq!(r(Request::Ping(Some(b"hi".to_vec()))), Value::bulk("hi"));
        assert_eq!(r(Request::Echo(b"x y".to_vec())), Value::bulk("x y"));
        assert_eq!(r(Request::Select(0)), Value::ok());
        assert_eq!(
            r(Request::Select(1)),
            Value::Error("ERR DB index is out of range".into())
        );
        assert_eq!(r(Request::Client), Value::ok());
        assert_eq!(r(Request::CommandDocs), Value::Array(Vec::new()));
        for req in [
            Request::Multi,
            Request::Exec,
            Request::Quit,
            Request::Shutdown,
        ] {
            assert!(
                r(req).is_error(),
                "a connection request is not answered here"
            );
        }
    }
}
