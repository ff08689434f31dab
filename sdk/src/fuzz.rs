//! Fuzzing at volume, natively (no nightly toolchain, no cargo-fuzz): a
//! bounded, seeded generator pushes inputs through everything that reads
//! bytes from the network or from another tab, and checks that nothing
//! panics and that the SSE parser does not depend on where a stream is split.
//!
//! Each input goes through:
//! - the SSE [`Parser`]: fed whole, byte by byte and in random splits, with
//!   the same frames (and last event id) every way;
//! - the decoders ([`decode_event`], every [`Decoder`] in turn, Tidings on
//!   and off), on the input and on every data the parser found;
//! - the polling-form body decoder and the `poll` function answer reader
//!   ([`PollResponse`]);
//! - the tab relay decoders ([`Relay::decode_batch`], what the channel
//!   carries, and [`Relay::decode`]), and re-encoding what they read;
//! - the protocol hello reader ([`Hello::from_event`]).
//!
//! `cargo test` runs a short version (`TIDINGS_FUZZ_INPUTS`, default 20,000);
//! `scripts/fuzz.sh` runs 10 million in release mode. `TIDINGS_FUZZ_SEED`
//! reproduces a run; a panicking input is printed (hex) with its seed and index.

use crate::messages::{decode_event, Decoder, PollResponse};
use crate::parser::{Frame, Parser, SseEvent};
use crate::protocol::Hello;
use crate::tabs::Relay;

/// xorshift64*: small, seedable, good enough to generate inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Pieces of event streams, so the parser's interesting paths are hit.
const SSE_TOKENS: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"event: ",
    b"event:",
    b"id: ",
    b"id:",
    b"retry: ",
    b"retry:",
    b":",
    b": comment",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"\xEF\xBB\xBF",
    b"\0",
    b"id: 1\0",
    "é€😀".as_bytes(),
    b"\xFF\xFE",
    b"\xC3",
    b"message",
    b"tidings",
    b"reset",
    b"end",
    b"heartbeat",
    b"12",
    b"18446744073709551616",
    b"-1",
    b" ",
    b"\t",
    b"{\"type\":\"create\",\"data\":{}}",
    b"data:{\"protocol\":\"tidings\",\"version\":1}",
];

/// Valid payloads of every shape the SDK reads; mutated to make inputs.
const JSON_SAMPLES: &[&str] = &[
    r#"{"type":"create","data":{"id":1,"video_name":"v","frame_index":3,"url":"u","qa":"q","created_at":"2026-01-01T00:00:00Z"},"timestamp":"t"}"#,
    r#"{"type":"delete","data":[1,2,3],"timestamp":"t"}"#,
    r#"{"type":"connected","message":"m","timestamp":"t"}"#,
    r#"{"type":"heartbeat","timestamp":"2026-01-01T00:00:00Z"}"#,
    r#"{"id":7,"user_id":"alice","title":"t","message":"m","type":"info","read":false,"created_at":"c"}"#,
    r#"{"count":3}"#,
    r#"{"id":9}"#,
    r#"{"user_id":"alice","message":"m","timestamp":"t"}"#,
    r#"{"type":"progress","job_id":"j","timestamp":"t","status":"running","step":"s","step_index":1,"total_steps":6,"percent":16.6,"message":"m","step_started_at":"t"}"#,
    r#"{"type":"completed","job_id":"j","timestamp":"t","status":"completed","percent":100,"message":"m","video_url":"v","duration_ms":5}"#,
    r#"{"type":"render_progress","object":{"percent":50}}"#,
    r#"{"type":"reset","reason":"gap","last_event_id":"3","head":"9"}"#,
    r#"{"reason":"completed"}"#,
    r#"{"protocol":"tidings","version":1,"capabilities":["numeric-ids","replay","reset","end","poll"]}"#,
    r#"{"events":[{"id":"13","event":"new_notification","data":"{\"id\":1}"}],"last_event_id":"13","end":false,"retry_ms":1000}"#,
    r#"{"events":[{"id":5,"event":"item","data":{"n":1}},{"data":"x"}],"lastEventId":"p2","end":true}"#,
    r#"{"t":"join","tab":1,"names":["message","create"]}"#,
    r#"{"t":"sync","tab":2,"state":"open","last_id":"100","tidings":true}"#,
    r#"{"t":"event","id":"6","event":"message","data":"{}"}"#,
    r#"{"t":"error","kind":"network","message":"m","raw":null,"status":503}"#,
    r#"{"t":"leader","tab":3,"state":"reconnecting","last_id":null}"#,
    r#"{"t":"leave","tab":4,"leader":true}"#,
    r#"{"t":"state","state":"polling"}"#,
    r#"{"t":"protocol","tidings":false}"#,
    r#"[]"#,
    r#"[{"t":"event","id":"7","event":"message","data":"{}"},{"t":"state","state":"open"}]"#,
    r#"null"#,
    r#""text""#,
];

/// What JSON mutations insert.
const JSON_TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\\",
    "\"type\"",
    "\"data\"",
    "\"events\"",
    "\"t\"",
    "é",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\"state\":\"nope\"",
    "\"kind\":\"other\"",
];

/// One generated input: event-stream-like bytes, a mutated JSON payload, or raw bytes.
fn generate(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0..=3 => {
            let mut out = Vec::new();
            for _ in 0..rng.below(48) {
                match rng.below(6) {
                    0 => out.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
                    1 => {
                        let s = rng.pick(JSON_SAMPLES);
                        out.extend_from_slice(&s.as_bytes()[..rng.below(s.len() + 1)]);
                    }
                    _ => {
                        let token: &&[u8] = rng.pick(SSE_TOKENS);
                        out.extend_from_slice(token);
                    }
                }
            }
            out
        }
        4..=6 => {
            let mut s = rng.pick(JSON_SAMPLES).as_bytes().to_vec();
            for _ in 0..rng.below(5) {
                let at = rng.below(s.len() + 1);
                match rng.below(4) {
                    0 => s.insert(at.min(s.len()), rng.next() as u8),
                    1 => {
                        let end = (at + rng.below(8)).min(s.len());
                        s.drain(at..end);
                    }
                    2 => {
                        let t = rng.pick(JSON_TOKENS).as_bytes();
                        s.splice(at..at, t.iter().copied());
                    }
                    _ => s.truncate(at),
                }
            }
            s
        }
        _ => (0..rng.below(96)).map(|_| rng.next() as u8).collect(),
    }
}

/// Parses `input` fed in the pieces `cuts` makes, then ends the stream.
fn parse(input: &[u8], cuts: impl IntoIterator<Item = usize>) -> (Vec<Frame>, String) {
    let mut p = Parser::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([input.len()]) {
        p.feed(&input[start..c]);
        start = c;
        while let Some(f) = p.poll() {
            frames.push(f);
        }
    }
    p.finish();
    while let Some(f) = p.poll() {
        frames.push(f);
    }
    (frames, p.last_event_id().to_owned())
}

const DECODERS: [Decoder; 7] = Decoder::ALL;
const EVENTS: [&str; 9] = [
    "message",
    "reset",
    "end",
    "heartbeat",
    "tidings",
    "new_notification",
    "progress",
    "unread_count",
    "create",
];

/// Pushes one input through every reader; panics (with the input) on a split
/// that changes the frames.
fn one(input: &[u8], rng: &mut Rng, n: u64) {
    let whole = parse(input, []);
    let bytes = parse(input, 1..input.len());
    assert_eq!(whole, bytes, "byte by byte differs");
    let mut cuts: Vec<usize> = (0..rng.below(6))
        .map(|_| rng.below(input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let split = parse(input, cuts.iter().copied());
    assert_eq!(whole, split, "split at {cuts:?} differs");

    let text = String::from_utf8_lossy(input);
    let decoder = DECODERS[(n % 7) as usize];
    let event = EVENTS[((n / 7) % EVENTS.len() as u64) as usize];
    let _ = decode_event(decoder, event, &text, n & 1 == 0);
    for f in &whole.0 {
        if let Frame::Event(e) = f {
            let _ = decode_event(DECODERS[(n % 5) as usize], &e.event, &e.data, true);
            let _ = Hello::from_event(e);
        }
    }
    let _ = PollResponse::from_json(&text);
    let _ = PollResponse::from_answer_json(&text);
    if let Ok(relay) = Relay::decode(&text) {
        assert_eq!(
            Relay::decode(&relay.encode()).ok(),
            Some(relay),
            "relay round trip"
        );
    }
    if let Ok(batch) = Relay::decode_batch(&text) {
        let encoded: Vec<String> = batch.iter().map(Relay::encode).collect();
        assert_eq!(
            Relay::decode_batch(&Relay::encode_batch(&encoded)).ok(),
            Some(batch),
            "relay batch round trip"
        );
    }
    let _ = Hello::from_event(&SseEvent::new("tidings", text, None));
}

/// Runs `inputs` generated inputs from `seed`; returns how many ran.
pub(crate) fn run(seed: u64, inputs: u64) -> u64 {
    let mut rng = Rng::new(seed);
    for n in 0..inputs {
        let input = generate(&mut rng);
        let mut inner = Rng::new(rng.next());
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(&input, &mut inner, n)));
        if let Err(e) = r {
            eprintln!(
                "fuzz: seed {seed} input #{n} panicked: {:02x?} ({:?})",
                input,
                String::from_utf8_lossy(&input)
            );
            std::panic::resume_unwind(e);
        }
    }
    inputs
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()?
        .trim()
        .replace('_', "")
        .parse()
        .ok()
}

#[test]
fn generated_inputs_never_panic_and_parse_the_same_however_split() {
    let seed = env_u64("TIDINGS_FUZZ_SEED").unwrap_or(20_261_203);
    let inputs = env_u64("TIDINGS_FUZZ_INPUTS").unwrap_or(20_000);
    let started = std::time::Instant::now();
    let ran = run(seed, inputs);
    println!(
        "FUZZ_SDK {ran} inputs (seed {seed}) through the SSE parser (whole, byte by byte, random splits), every decoder, the polling-form and poll-answer decoders, the relay decoder and the hello reader in {:.1} s: no panic, split-invariant",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ran, inputs);
}
