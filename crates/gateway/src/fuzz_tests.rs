//! Fuzzing the SSE usage scanner (issue 20), bounded so it runs in `cargo test`
//! (`PROPTEST_CASES=100000 cargo test -p opchub-gateway fuzz` for a longer run): on any bytes it
//! never panics; on any stream, however the upstream's reads split it, it finds the same events,
//! usage, text and end, and it hands on every byte it was given (what was delivered is what is
//! metered, never more, never less).
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::usage::SseScanner;
use proptest::prelude::*;

/// One SSE event as upstreams send them, or something that looks almost like one.
fn event() -> impl Strategy<Value = Vec<u8>> {
    let text = "[a-z 你好\\\\\"{}]{0,12}";
    prop_oneof![
        text.prop_map(|t| format!("data: {}", serde_json::json!({"choices": [{"delta": {"content": t}}]})).into_bytes()),
        (0i64..5_000, 0i64..5_000, 0i64..100).prop_map(|(p, c, cached)| format!(
            "data: {}",
            serde_json::json!({"choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c,
                "total_tokens": p + c, "prompt_tokens_details": {"cached_tokens": cached}}})
        )
        .into_bytes()),
        Just(b"data: [DONE]".to_vec()),
        Just(b": keep-alive".to_vec()),
        Just(b"event: message\ndata: {\"choices\":[]}".to_vec()),
        text.prop_map(|t| format!("data: {{\"choices\": [{{\"delta\": {t}").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        (event(), prop_oneof![Just(&b"\n\n"[..]), Just(&b"\r\n\r\n"[..]), Just(&b"\n"[..])]),
        0..16,
    )
    .prop_map(|evs| {
        evs.into_iter()
            .flat_map(|(mut e, sep)| {
                e.extend_from_slice(sep);
                e
            })
            .collect()
    })
}

/// Scans `bytes` fed in the pieces `cuts` makes; returns (every event's bytes and whether it is
/// forwarded, usage, text, done).
type Scanned = (Vec<(Vec<u8>, bool)>, Option<crate::usage::Usage>, String, bool);

fn scan(bytes: &[u8], cuts: &[usize], asked: bool) -> Scanned {
    let mut s = SseScanner::new(asked);
    let mut events = vec![];
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for p in points {
        if p > at {
            events.extend(s.push(&bytes[at..p]).into_iter().map(|e| (e.bytes.to_vec(), e.forward)));
            at = p;
        }
    }
    events.extend(s.finish().into_iter().map(|e| (e.bytes.to_vec(), e.forward)));
    (events, s.usage(), s.text().to_string(), s.done())
}

/// The bounded budget of a `cargo test` run, or `PROPTEST_CASES` for a longer one.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = scan(&bytes, &cuts, false);
    }

    #[test]
    fn how_the_reads_split_a_stream_changes_nothing(bytes in stream(), cuts in proptest::collection::vec(any::<usize>(), 0..12), asked in any::<bool>()) {
        let whole = scan(&bytes, &[], asked);
        let split = scan(&bytes, &cuts, asked);
        prop_assert_eq!(&whole, &split);
        // Every byte is in exactly one event, in order; only trailing whitespace may be dropped.
        let joined: Vec<u8> = whole.0.iter().flat_map(|(b, _)| b.clone()).collect();
        prop_assert!(bytes.starts_with(&joined));
        prop_assert!(bytes[joined.len()..].iter().all(u8::is_ascii_whitespace));
        // A usage-only chunk the client did not ask for is the only thing held back.
        if asked {
            prop_assert!(whole.0.iter().all(|(_, f)| *f));
        }
    }
}
