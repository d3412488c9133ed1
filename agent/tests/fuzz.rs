//! Property-based fuzzing of the decoder and the trace builder (proptest, bounded cases so it
//! runs in CI; raise `PROPTEST_CASES` for a longer hunt). Two generators:
//! - byte mutations of the committed corpus (`tests/corpus/*.json`, also re-encoded as msgpack);
//! - structured event sequences with colliding ids, parent cycles, extreme times and counts.
//!
//! Whatever decodes is applied to a store with small caps, then every view is rendered. The
//! properties: nothing panics, the caps hold, and every rendered document is valid JSON.

use std::num::NonZeroUsize;
use std::sync::Arc;

use flowscope::wire::{self, Encoding, Event};
use flowscope_agent::api::shapes::{self, View};
use flowscope_agent::export::mapping;
use flowscope_agent::store::Store;
use flowscope_agent::trace::Origin;
use flowscope_agent::trace::builder::TraceCaps;
use flowscope_agent::trace::group::summarize;
use proptest::prelude::*;
use serde_json::{Value, json};

const CAPS: TraceCaps = TraceCaps {
    max_steps: 64,
    max_events: 256,
    max_depth: 8,
};
const MAX_TRACES: usize = 16;

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

fn fresh_store() -> Store {
    let mut store = Store::new(NonZeroUsize::new(MAX_TRACES).unwrap());
    store.set_caps(CAPS);
    store
}

/// Applies `events`, then renders every view of every stored trace and group.
fn apply_and_render(store: &mut Store, events: Vec<Event>) {
    let origin = Arc::new(Origin::named("fuzz"));
    store.apply_batch(&origin, events, 1_000);
    assert!(store.len() <= MAX_TRACES);
    let page = store.query(&flowscope_agent::store::TraceQuery {
        limit: 1000,
        ..Default::default()
    });
    let ids: Vec<_> = page.traces.iter().map(|t| t.id).collect();
    for id in ids {
        let trace = store.snapshot(id).expect("listed trace is stored");
        assert!(trace.steps.len() <= CAPS.max_steps);
        assert!(trace.steps.iter().all(|s| s.depth <= CAPS.max_depth));
        assert!(trace.event_count <= CAPS.max_events);
        let index = store.trace_index(&trace);
        for view in [View::Full, View::Timeline] {
            let text = serde_json::to_string(&shapes::trace_full(&trace, index, view)).unwrap();
            assert!(serde_json::from_str::<Value>(&text).is_ok());
        }
        let tree = flowscope_agent::api::execution_tree("x", &trace, usize::from(CAPS.max_depth));
        assert!(
            serde_json::from_slice::<Value>(&tree).is_ok(),
            "{}",
            String::from_utf8_lossy(&tree)
        );
        let spans = mapping::trace_spans(&trace, &store.root_links(&trace));
        assert!(spans.len() > trace.steps.len());
    }
    for members in store.all_group_members() {
        let group = summarize(members, 2_000, 1_000);
        let _ = shapes::group_json(&group, true).to_string();
    }
    let _ = store.flows();
}

fn decode_all(bytes: &[u8]) -> Vec<Vec<Event>> {
    [Encoding::Json, Encoding::Msgpack]
        .into_iter()
        .filter_map(|encoding| wire::decode_batch(encoding, bytes).ok())
        .collect()
}

/// One mutation of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(at, bit) => {
                if !bytes.is_empty() {
                    bytes[at % len] ^= 1 << (bit % 8);
                }
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
            Mutation::Insert(at, data) => {
                let at = (*at % len).min(bytes.len());
                bytes.splice(at..at, data.iter().copied());
            }
            Mutation::Duplicate(at, n) => {
                let at = (*at % len).min(bytes.len());
                let end = (at + n % 64).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![
                b"{}".to_vec(),
                b"[".to_vec(),
                b"\"ps\":\"0000000000000001\",".to_vec(),
                b"18446744073709551615".to_vec(),
                b"\"k\":\"step_start\",".to_vec(),
                vec![0xc1, 0xdd, 0xff, 0xff, 0xff, 0xff],
            ])
        )
            .prop_map(|(a, d)| Mutation::Insert(a, d)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}

/// A structured event over small id pools, so steps, parents and traces collide.
fn event() -> impl Strategy<Value = Value> {
    let trace = (0u64..4).prop_map(|n| format!("{n:032x}"));
    let span = (0u64..12).prop_map(|n| format!("{n:016x}"));
    let time = prop_oneof![Just(0u64), Just(u64::MAX), 0u64..5_000, any::<u64>()];
    let name = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("=cmd".to_owned()),
        "[a-z]{0,3}",
        Just("x".repeat(2_000)),
    ];
    (
        0u8..12,
        trace,
        span.clone(),
        proptest::option::of(span),
        time.clone(),
        time,
        name,
    )
        .prop_map(|(kind, tr, sp, ps, t, dur, name)| match kind {
            0 => json!({"k":"trace_start","t":t,"tr":tr,"flow":name,"cid":if t % 3 == 0 { Some("g") } else { None }}),
            1 => json!({"k":"trace_end","t":t,"tr":tr,"status":if t % 2 == 0 {"completed"} else {"failed"}}),
            2 => json!({"k":"step_start","t":t,"tr":tr,"sp":sp,"ps":ps,"name":name}),
            3 => json!({"k":"step_end","t":t,"tr":tr,"sp":sp,"status":"failed","error":{"message":name}}),
            4 => json!({"k":"op","t":t,"tr":tr,"sp":sp,"op":"state","action":"set","key":name,"dur":dur}),
            5 => json!({"k":"op","t":t,"tr":tr,"op":"emit","action":"send","topic":name,"to":"b","dur":dur}),
            6 => json!({"k":"llm","t":t,"tr":tr,"sp":sp,"model":name,"input_tokens":dur,"output_tokens":dur,"cost":1e308,"dur":dur}),
            7 => json!({"k":"log","t":t,"tr":tr,"sp":ps,"msg":name,"fields":{"k":[[[1]]]}}),
            8 => json!({"k":"correlate","t":t,"tr":tr,"cid":name,"method":"manual"}),
            9 => json!({"k":"retry","t":t,"tr":tr,"sp":sp,"attempt":u32::MAX,"backoff_ms":dur}),
            10 => json!({"k":"trace_start","t":t,"tr":tr,"flow":"child","parent":format!("{:032x}", dur % 4)}),
            _ => json!({"k":"transition","t":t,"tr":tr,"sp":sp,"from":name,"to":"z"}),
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_corpus_frames_never_break_the_agent(
        seed in 0usize..64,
        mutations in prop::collection::vec(mutation(), 0..8),
    ) {
        let corpus = corpus();
        let original = corpus[seed % corpus.len()].clone();
        let mut inputs = vec![mutate(original.clone(), &mutations)];
        // The same batch in msgpack, mutated too.
        if let Ok(events) = wire::decode_batch(Encoding::Json, &original) {
            let mut frame = Vec::new();
            wire::encode_batch(Encoding::Msgpack, &events, usize::MAX, &mut frame).unwrap();
            inputs.push(mutate(frame[wire::HEADER_LEN..].to_vec(), &mutations));
        }
        let mut store = fresh_store();
        for input in inputs {
            for events in decode_all(&input) {
                apply_and_render(&mut store, events);
            }
        }
    }

    #[test]
    fn structured_event_sequences_keep_the_store_consistent(
        events in prop::collection::vec(event(), 1..200),
    ) {
        let batch = serde_json::to_vec(&events).unwrap();
        let decoded = wire::decode_batch(Encoding::Json, &batch).expect("generated events decode");
        let mut store = fresh_store();
        apply_and_render(&mut store, decoded);
    }
}

#[test]
fn every_corpus_file_decodes() {
    for (i, bytes) in corpus().iter().enumerate() {
        let events = wire::decode_batch(Encoding::Json, bytes)
            .unwrap_or_else(|e| panic!("corpus file {i} does not decode: {e}"));
        let mut store = fresh_store();
        apply_and_render(&mut store, events);
    }
}
