//! Malformed input closes only the offending connection, with a clear error frame; the agent
//! stays up and keeps everything already received.

use std::time::Duration;

use flowscope::EntryType;

use crate::support::{Agent, RawConn, flush};

const GOOD_TRACE: &str = "11111111111111111111111111111111";

fn good_batch_json() -> Vec<u8> {
    format!(r#"[{{"k":"trace_start","t":1,"tr":"{GOOD_TRACE}","flow":"kept"}}]"#).into_bytes()
}

#[track_caller]
fn expect_error(conn: &mut RawConn, code: &str) {
    let frame = conn
        .read_frame()
        .unwrap_or_else(|| panic!("no error frame (wanted {code})"));
    assert_eq!(frame["ok"], false, "{frame}");
    assert_eq!(frame["error"]["code"], code, "{frame}");
    assert!(!frame["error"]["message"].as_str().unwrap_or("").is_empty());
    assert!(
        conn.closed_by_agent(),
        "connection should be closed after {code}"
    );
}

#[test]
fn every_kind_of_bad_input_is_refused_without_harming_others() {
    let mut agent = Agent::start(&["--max-frame", "65536"]);
    // A healthy SDK connection that keeps working throughout.
    let client = agent.client();
    let before = client.trace("before").entry(EntryType::Api, "s").start();
    let before_id = before.id();
    before.end();
    flush(&client);
    agent.wait_trace(before_id, |t| t["status"] == "completed");

    // Wrong protocol version.
    let mut conn = RawConn::connect(&agent);
    conn.send_frame(br#"{"v":99,"encoding":"json"}"#);
    expect_error(&mut conn, "unsupported_version");

    // Garbage instead of a hello.
    let mut conn = RawConn::connect(&agent);
    conn.send_frame(b"\x00\xffnot json at all");
    expect_error(&mut conn, "malformed_hello");

    // Oversized length prefix.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_raw(&(10_000_000u32).to_be_bytes());
    expect_error(&mut conn, "frame_too_large");

    // Bad JSON after a good batch: the good batch is kept.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_frame(&good_batch_json());
    conn.send_frame(b"[{\"k\":\"trace_start\",");
    expect_error(&mut conn, "malformed_batch");
    agent.wait_trace(GOOD_TRACE, |t| t["flowName"] == "kept");

    // A known kind with a missing required field is malformed too.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_frame(format!(r#"[{{"k":"step_start","t":1,"tr":"{GOOD_TRACE}"}}]"#).as_bytes());
    expect_error(&mut conn, "malformed_batch");

    // Bad msgpack.
    let mut conn = RawConn::handshake(&agent, "msgpack");
    conn.send_frame(&[0x91, 0xc1, 0xc1, 0xc1]);
    expect_error(&mut conn, "malformed_batch");

    // Unknown event kinds are skipped, the rest of the batch applies.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_frame(
        br#"[{"k":"teleport","t":1},{"k":"trace_start","t":2,"tr":"22222222222222222222222222222222","flow":"after-unknown"}]"#,
    );
    agent.wait_trace("22222222222222222222222222222222", |t| {
        t["flowName"] == "after-unknown"
    });

    // Truncated frame: header promises 100 bytes, 10 arrive, then the client hangs up.
    let mut conn = RawConn::handshake(&agent, "json");
    conn.send_raw(&100u32.to_be_bytes());
    conn.send_raw(b"[{\"k\":\"tra");
    drop(conn);

    // Raw garbage with no framing at all.
    let mut conn = RawConn::connect(&agent);
    conn.send_raw(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02]);
    drop(conn);

    // The unframed garbage reads as a hello length far over the limit: a second frame_too_large.
    let health = agent.wait_for("/healthz", |_, b| {
        b["ingest"]["rejected"]["truncated_frame"] == 1
            && b["ingest"]["rejected"]["frame_too_large"] == 2
    });
    let rejected = &health["ingest"]["rejected"];
    assert_eq!(rejected["unsupported_version"], 1);
    assert_eq!(rejected["malformed_hello"], 1);
    assert_eq!(rejected["malformed_batch"], 3);
    assert_eq!(health["store"]["eventsUnknown"], 1);

    // Still up, earlier data kept, the healthy client still delivers.
    assert!(agent.alive());
    agent.wait_trace(before_id, |t| t["status"] == "completed");
    let after = client.trace("after").start();
    let after_id = after.id();
    after.end();
    flush(&client);
    agent.wait_trace(after_id, |t| t["status"] == "completed");
    assert_eq!(
        client.stats().reconnects,
        0,
        "the healthy connection was never dropped"
    );
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn an_error_frame_comes_after_everything_the_connection_sent_is_stored() {
    // Connections decode on the runtime and one thread stores (src/ingest/store.rs): the error
    // answer must still wait until the good batches before it are in the store, so a client
    // that sees it can trust the agent holds what it sent before.
    let agent = Agent::start(&[]);
    let applied = |agent: &Agent| agent.get_ok("/healthz")["store"]["eventsApplied"].as_u64();
    let before = applied(&agent).unwrap();
    let mut conn = RawConn::handshake(&agent, "json");
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 200;
    for b in 0..BATCHES {
        let events: Vec<String> = (0..PER_BATCH)
            .map(|i| {
                format!(
                    r#"{{"k":"trace_start","t":{},"tr":"{:032x}","flow":"burst"}}"#,
                    1 + i,
                    0x5000_0000_0000 + b * PER_BATCH + i
                )
            })
            .collect();
        conn.send_frame(format!("[{}]", events.join(",")).as_bytes());
    }
    conn.send_frame(b"[{\"k\":");
    expect_error(&mut conn, "malformed_batch");
    // No waiting: the answer itself is the sentinel.
    assert_eq!(applied(&agent), Some(before + BATCHES * PER_BATCH));
}

#[test]
fn a_silent_connection_does_not_block_others() {
    let agent = Agent::start(&[]);
    let _silent = RawConn::connect(&agent);
    let client = agent.client();
    let trace = client.trace("busy").start();
    let id = trace.id();
    trace.end();
    flush(&client);
    agent.wait_trace(id, |t| t["status"] == "completed");
}
