//! Fuzzing the request-head reader at volume (natively, seeded and bounded):
//! generated heads, mostly well-formed with mutations, never panic
//! [`complete`] or [`stream_request`], and a head taken as a stream request is
//! always a whole, bodiless `GET` that accepts `text/event-stream`.
//!
//! `cargo test` runs a short version (`TIDINGS_FUZZ_INPUTS`, default 20,000);
//! `scripts/fuzz.sh` runs 10 million in release mode. `TIDINGS_FUZZ_SEED`
//! reproduces a run; a panicking input is printed (hex) with its seed and index.

use super::{complete, stream_request};

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
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const METHODS: &[&str] = &["GET", "get", "POST", "HEAD", "PUT", "G\0T", "", "GET GET"];
const PATHS: &[&str] = &[
    "/api/v1/events/test",
    "/api/team-answers/sse/?lastEventId=3",
    "/api/notifications/stream?token=a.b.c",
    "/",
    "*",
    "http://127.0.0.1/x",
    "/%zz%00",
    "/é",
    "",
    "/a b",
];
const VERSIONS: &[&str] = &[
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/2.0",
    "HTTP/1.1 ",
    "HTTP/9",
    "",
];
const NAMES: &[&str] = &[
    "Host",
    "Accept",
    "accept",
    "Last-Event-ID",
    "Authorization",
    "Content-Length",
    "Transfer-Encoding",
    "Upgrade",
    "Expect",
    "Cookie",
    "X-Forwarded-For",
    "Bad Name",
    "",
    "\u{7f}",
];
const VALUES: &[&str] = &[
    "text/event-stream",
    "text/event-stream, */*",
    "application/json",
    "0",
    "3",
    "chunked",
    "websocket",
    "100-continue",
    "Bearer x.y.z",
    "12",
    "",
    " spaced ",
    "\u{1}",
    "é",
];
const ENDS: &[&str] = &["\r\n", "\n", "\r", ""];

/// One generated head: request line and headers from the lists above, with
/// random line ends and a few byte mutations (or, now and then, raw bytes).
fn generate(rng: &mut Rng) -> Vec<u8> {
    if rng.below(10) == 0 {
        return (0..rng.below(200)).map(|_| rng.next() as u8).collect();
    }
    let mut s = String::new();
    let end = rng.pick(ENDS);
    s.push_str(&format!(
        "{} {} {}{end}",
        rng.pick(METHODS),
        rng.pick(PATHS),
        rng.pick(VERSIONS)
    ));
    for _ in 0..rng.below(12) {
        let sep = if rng.below(8) == 0 { ":" } else { ": " };
        let end = if rng.below(6) == 0 {
            rng.pick(ENDS)
        } else {
            end
        };
        s.push_str(&format!(
            "{}{sep}{}{end}",
            rng.pick(NAMES),
            rng.pick(VALUES)
        ));
    }
    if rng.below(5) != 0 {
        s.push_str(end);
    }
    let mut b = s.into_bytes();
    for _ in 0..rng.below(3) {
        let at = rng.below(b.len() + 1);
        match rng.below(3) {
            0 => b.insert(at.min(b.len()), rng.next() as u8),
            1 => b.truncate(at),
            _ => {
                if at < b.len() {
                    b[at] = rng.next() as u8;
                }
            }
        }
    }
    if rng.below(4) == 0 {
        b.extend((0..rng.below(16)).map(|_| rng.next() as u8));
    }
    b
}

fn one(input: &[u8]) {
    let whole = complete(input);
    if let Some(req) = stream_request(input) {
        assert!(whole, "taken before the head was complete");
        assert_eq!(req.method(), "GET");
        let accepts = req
            .headers()
            .get_all("accept")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")));
        assert!(accepts, "taken without accepting text/event-stream");
        assert!(!req.headers().contains_key("transfer-encoding"));
        assert!(req.headers().get("content-length").is_none_or(|v| v == "0"));
    }
}

/// Runs `inputs` generated heads from `seed`; returns how many ran.
fn run(seed: u64, inputs: u64) -> u64 {
    let mut rng = Rng::new(seed);
    for n in 0..inputs {
        let input = generate(&mut rng);
        let r = std::panic::catch_unwind(|| one(&input));
        if let Err(e) = r {
            eprintln!(
                "fuzz: seed {seed} head #{n} panicked: {:02x?} ({:?})",
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
fn generated_heads_never_panic_and_only_whole_sse_gets_are_taken() {
    let seed = env_u64("TIDINGS_FUZZ_SEED").unwrap_or(20_261_203);
    let inputs = env_u64("TIDINGS_FUZZ_INPUTS").unwrap_or(20_000);
    let started = std::time::Instant::now();
    let ran = run(seed, inputs);
    println!(
        "FUZZ_SERVER {ran} inputs (seed {seed}) through the request-head reader in {:.1} s: no panic",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ran, inputs);
}
