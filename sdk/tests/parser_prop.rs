//! Property tests of the SSE parser: random bytes and random chunk splits
//! never panic, and the frames never depend on where the stream was split.
//! Bounded case counts keep this to a few seconds in `cargo test`; set
//! `PROPTEST_CASES` for a longer run (`PROPTEST_CASES=200000 cargo test -p
//! tidings --release --test parser_prop`).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, missing_docs)]

use proptest::prelude::*;
use tidings::parser::{Frame, Parser};

fn run(input: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for c in cuts.into_iter().chain([input.len()]) {
        p.feed(&input[start..c]);
        start = c;
        while let Some(f) = p.poll() {
            out.push(f);
        }
    }
    out
}

/// Bytes biased towards event-stream syntax so the interesting paths are hit.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data:".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"event: ".to_vec()),
        Just(b"id: ".to_vec()),
        Just(b"retry: ".to_vec()),
        Just(b":".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\0".to_vec()),
        Just("é€".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
        "[a-z0-9 ]{0,6}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

/// 512 cases per property, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512),
                                cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = run(&input, &cuts);
    }

    #[test]
    fn split_invariance(input in sse_like(), cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
        let whole = run(&input, &[]);
        prop_assert_eq!(run(&input, &cuts), whole);
    }

    #[test]
    fn byte_at_a_time_equals_whole(input in sse_like()) {
        let all: Vec<usize> = (0..=input.len()).collect();
        prop_assert_eq!(run(&input, &all), run(&input, &[]));
    }

    #[test]
    fn well_formed_events_round_trip(events in proptest::collection::vec(("[a-z_]{1,8}", "[ -~]{0,20}", 0u64..1000), 1..8),
                                     cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let mut wire = Vec::new();
        for (name, data, id) in &events {
            wire.extend_from_slice(format!("event: {name}\nid: {id}\ndata: {data}\n\n").as_bytes());
        }
        let frames = run(&wire, &cuts);
        prop_assert_eq!(frames.len(), events.len());
        for (f, (name, data, id)) in frames.iter().zip(&events) {
            let Frame::Event(e) = f else { return Err(TestCaseError::fail("not an event")) };
            prop_assert_eq!(&e.event, name);
            prop_assert_eq!(&e.data, data);
            prop_assert_eq!(e.id.clone(), Some(id.to_string()));
        }
    }
}
