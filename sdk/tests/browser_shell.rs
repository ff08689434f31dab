//! The browser shell at its edges, in headless Chromium against the real
//! server: whose position a manager resumes from (identity), a follower's
//! catch-up when it stops, an `EventSource` constructor that throws, listeners
//! that keep the manager busy, listeners added after `close()`, and the
//! server's `Retry-After`. Where a test needs another tab it plays that tab
//! itself with the real browser APIs: it holds the stream's Web Lock and talks
//! on its `BroadcastChannel`, as a leader (or follower) tab would.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{json, Value};
use tidings::{BackoffOptions, ErrorKind, GetToken, Manager, Options, State, Transport};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

use common::*;

wasm_bindgen_test_configure!(run_in_browser);

// ---- the other tab, played by the test -------------------------------------

/// FNV-1a 128 (the SDK names locks, channels and stored positions with it).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// The Web Lock and channel name of a stream without token or headers (the
/// relay format's version, 3, is part of it).
fn share_name(url: &str) -> String {
    format!("tidings/3 - {url}")
}

/// The `sessionStorage` key of the position of a plain `GET` stream without
/// token or headers.
fn storage_key(url: &str) -> String {
    format!(
        "tidings:last-event-id:{:032x}",
        fnv1a_128(format!("{url}\n\nGET").as_bytes())
    )
}

fn session_storage() -> web_sys::Storage {
    let s = js_sys::Reflect::get(&js_sys::global(), &"sessionStorage".into()).unwrap();
    s.unchecked_into()
}

/// A tab on the stream's channel: every message it hears, and posting.
struct PeerTab {
    channel: web_sys::BroadcastChannel,
    heard: Log<Value>,
    _listener: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl PeerTab {
    fn open(name: &str) -> PeerTab {
        let channel = web_sys::BroadcastChannel::new(name).unwrap();
        let heard: Log<Value> = Rc::default();
        let h = heard.clone();
        let listener =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                // Each post is a batch: a JSON array of messages.
                if let Some(text) = e.data().as_string() {
                    match serde_json::from_str(&text).unwrap() {
                        Value::Array(batch) => h.borrow_mut().extend(batch),
                        one => h.borrow_mut().push(one),
                    }
                }
            });
        channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        PeerTab {
            channel,
            heard,
            _listener: listener,
        }
    }

    /// Posts one message (as a batch of one).
    fn post(&self, msg: Value) {
        self.channel
            .post_message(&JsValue::from_str(&json!([msg]).to_string()))
            .unwrap();
    }

    fn count(&self, t: &str) -> usize {
        self.heard.borrow().iter().filter(|m| m["t"] == t).count()
    }
}

impl Drop for PeerTab {
    fn drop(&mut self) {
        self.channel.close();
    }
}

/// Holds the Web Lock `name` (as a leader tab does) until dropped.
struct HeldLock {
    release: Rc<RefCell<Option<js_sys::Function>>>,
    _grant: Closure<dyn FnMut(JsValue) -> JsValue>,
}

impl HeldLock {
    async fn take(name: &str) -> HeldLock {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).unwrap();
        let locks = js_sys::Reflect::get(&navigator, &"locks".into()).unwrap();
        let request: js_sys::Function = js_sys::Reflect::get(&locks, &"request".into())
            .unwrap()
            .unchecked_into();
        let release: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let r = release.clone();
        let grant = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| {
            js_sys::Promise::new(&mut |resolve, _| *r.borrow_mut() = Some(resolve)).into()
        });
        request.call2(&locks, &name.into(), grant.as_ref()).unwrap();
        let held = HeldLock {
            release,
            _grant: grant,
        };
        wait_for("the lock", 2000, || held.release.borrow().is_some()).await;
        held
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(f) = self.release.borrow_mut().take() {
            f.call0(&JsValue::NULL).unwrap();
        }
    }
}

/// Replaces a global (`fetch`, `EventSource`) until dropped.
struct GlobalSwap {
    name: &'static str,
    original: JsValue,
}

impl GlobalSwap {
    fn new(name: &'static str, with: &JsValue) -> GlobalSwap {
        let original = js_sys::Reflect::get(&js_sys::global(), &name.into()).unwrap();
        js_sys::Reflect::set(&js_sys::global(), &name.into(), with).unwrap();
        GlobalSwap { name, original }
    }
}

impl Drop for GlobalSwap {
    fn drop(&mut self) {
        js_sys::Reflect::set(&js_sys::global(), &self.name.into(), &self.original).unwrap();
    }
}

// ---- identity --------------------------------------------------------------

async fn trigger(base: &str, user: &str, title: &str) {
    post(
        &format!("{base}/api/notifications/trigger/"),
        json!({"user_id": user, "title": title, "message": "m", "type": "info"}),
        None,
    )
    .await;
}

fn get_token(token: String) -> GetToken {
    GetToken::new(move || {
        let t = token.clone();
        async move { Ok(t) }
    })
}

/// Alice reaches id 20, closes; Bob signs in in the same tab. Every pair of
/// managers here differs only in whose credentials they carry.
async fn bob_after_alice(alice: impl Fn(&str) -> Options, bob: impl Fn(&str) -> Options) {
    let base = server();
    let url = format!("{base}/api/notifications/stream");
    let (a_user, b_user) = (unique("alice"), unique("bob"));
    let ta = dev_token(base, &a_user, &[], None).await;
    let tb = dev_token(base, &b_user, &[], None).await;
    let a = Manager::connect(&url, alice(&ta)).unwrap();
    let (an, _a) = collect(&a, "new_notification");
    wait_for("alice open", 5000, || a.state() == State::Open).await;
    for i in 0..20 {
        trigger(base, &a_user, &format!("a{i}")).await;
    }
    wait_for("alice's 20", 8000, || an.borrow().len() == 20).await;
    let alices = a.last_event_id().unwrap();
    a.close();
    let b = Manager::connect(&url, bob(&tb)).unwrap();
    assert!(!b.ptr_eq(&a));
    assert_eq!(b.last_event_id(), None, "not Alice's position {alices}");
    let (bn, _b) = collect(&b, "new_notification");
    let (resets, _r) = collect(&b, "reset");
    wait_for("bob open", 5000, || b.state() == State::Open).await;
    trigger(base, &b_user, "b0").await;
    wait_for("bob's", 5000, || bn.borrow().len() == 1).await;
    sleep(200).await;
    assert!(
        resets.borrow().is_empty(),
        "no reset from a foreign position"
    );
    assert_eq!(bn.borrow().len(), 1);
    b.close();
    // Alice signs in again: her own position is still hers.
    if alice("t").get_token.is_none() {
        let a2 = Manager::connect(&url, alice(&ta)).unwrap();
        assert_eq!(a2.last_event_id().as_deref(), Some(alices.as_str()));
        a2.close();
    }
}

#[wasm_bindgen_test]
async fn get_token_managers_never_resume_from_another_users_position() {
    let o = |t: &str| {
        Options::default()
            .share_across_tabs(false)
            .get_token(get_token(t.to_owned()))
    };
    bob_after_alice(o, o).await;
}

#[wasm_bindgen_test]
async fn an_authorization_header_is_part_of_the_identity() {
    let o = |t: &str| {
        Options::default()
            .share_across_tabs(false)
            .transport(Transport::Fetch)
            .header("Authorization", format!("Bearer {t}"))
    };
    bob_after_alice(o, o).await;
}

#[wasm_bindgen_test]
fn the_registry_tells_managers_apart_by_their_headers() {
    let url = format!("{}/api/notifications/stream?h={}", server(), unique(""));
    let with = |auth: &str| {
        Manager::connect(
            &url,
            Options::default()
                .transport(Transport::Fetch)
                .header("Authorization", auth),
        )
        .unwrap()
    };
    let (a, a2, b) = (with("Bearer a"), with("Bearer a"), with("Bearer b"));
    assert!(a.ptr_eq(&a2), "equal headers: one manager");
    assert!(!a.ptr_eq(&b), "another Authorization: another manager");
    let plain = Manager::connect(&url, Options::default()).unwrap();
    assert!(!plain.ptr_eq(&a), "no header: another manager");
    for m in [a, b, plain] {
        m.close();
    }
}

// ---- a follower's catch-up ---------------------------------------------------

/// A follower that knows where it was (position 5) and finds the leader
/// further on fetches what it missed; when it stops meanwhile (last listener
/// gone, a StrictMode remount, `pauseWhenHidden`), that request is aborted,
/// and its late answer never reaches the follower's next turn.
#[wasm_bindgen_test]
async fn a_followers_catch_up_is_aborted_when_it_stops_and_its_answer_dropped() {
    let url = format!("{}/api/team-answers/sse/?catchup={}", server(), unique(""));
    session_storage().set_item(&storage_key(&url), "5").unwrap();
    let _lock = HeldLock::take(&share_name(&url)).await;
    let leader = PeerTab::open(&share_name(&url));
    // Every catch-up request is held here, unanswered, until the test answers it.
    let asked: Log<(web_sys::Request, js_sys::Function)> = Rc::default();
    let a = asked.clone();
    let fake_fetch = Closure::<dyn Fn(web_sys::Request) -> js_sys::Promise>::new(
        move |req: web_sys::Request| {
            let a = a.clone();
            js_sys::Promise::new(&mut |resolve, _| {
                a.borrow_mut().push((Clone::clone(&req), resolve))
            })
        },
    );
    let _fetch = GlobalSwap::new("fetch", fake_fetch.as_ref());

    let m = Manager::connect(
        &url,
        Options::default().protocol(tidings::Protocol::Tidings),
    )
    .unwrap();
    let (events, sub) = collect(&m, "*");
    wait_for("join", 2000, || leader.count("join") == 1).await;
    assert_eq!(m.tab_role(), "follower");
    leader.post(json!({"t": "sync", "tab": 1, "state": "open", "last_id": "100", "tidings": true}));
    wait_for("the catch-up request", 2000, || asked.borrow().len() == 1).await;
    let (request, answer) = asked.borrow()[0].clone();
    assert!(request.url().contains("poll=1") && request.url().contains("lastEventId=5"));
    assert!(!request.signal().aborted());

    drop(sub); // the follower stops
    assert_eq!(m.tab_role(), "idle");
    assert!(
        request.signal().aborted(),
        "the catch-up request is aborted"
    );

    // It starts again; the leader is where it is. The old request's answer arrives late.
    let (again, _sub) = collect(&m, "*");
    wait_for("join again", 2000, || leader.count("join") == 2).await;
    leader.post(json!({"t": "sync", "tab": 1, "state": "open", "last_id": "5", "tidings": true}));
    let late = json!({"events": [{"id": "6", "event": "message", "data": "{\"type\":\"late\"}"}],
                      "last_event_id": "6", "end": false, "retry_ms": 1000});
    let init = web_sys::ResponseInit::new();
    init.set_status(200);
    let headers = web_sys::Headers::new().unwrap();
    headers.set("content-type", "application/json").unwrap();
    init.set_headers(&headers);
    let response =
        web_sys::Response::new_with_opt_str_and_init(Some(&late.to_string()), &init).unwrap();
    answer.call1(&JsValue::NULL, &response).unwrap();
    sleep(100).await;
    leader
        .post(json!({"t": "event", "id": "6", "event": "message", "data": "{\"type\":\"live\"}"}));
    wait_for("the relayed event", 2000, || !again.borrow().is_empty()).await;
    sleep(100).await;
    let got: Vec<String> = again.borrow().iter().map(|e| e.raw.clone()).collect();
    assert_eq!(
        got,
        ["{\"type\":\"live\"}"],
        "the stale answer is not delivered"
    );
    assert!(events.borrow().is_empty());
    assert_eq!(asked.borrow().len(), 1, "no other catch-up was needed");
    m.close();
    session_storage().remove_item(&storage_key(&url)).unwrap();
}

// ---- an EventSource constructor that throws --------------------------------

/// One error per failed attempt, from the core, so the other tabs get it too.
/// Full jitter may start attempt 2 at any moment of the 60 s ceiling, so the
/// test counts attempts by their numbers rather than assuming only one ran.
#[wasm_bindgen_test]
async fn an_event_source_constructor_that_throws_is_one_error_relayed_to_other_tabs() {
    let url = format!("{}/api/team-answers/sse/?ctor={}", server(), unique(""));
    let follower = PeerTab::open(&share_name(&url));
    let throwing = js_sys::Function::new_no_args("throw new SyntaxError('blocked for the test')");
    let swap = GlobalSwap::new("EventSource", &throwing);
    let m = Manager::connect(
        &url,
        Options::default()
            .persist_last_event_id(false)
            .backoff(BackoffOptions::default().initial_ms(60_000).max_ms(60_000)),
    )
    .unwrap();
    let (errs, _e) = errors(&m);
    let (_events, _sub) = collect(&m, "message");
    wait_for("leader", 2000, || m.tab_role() == "leader").await;
    wait_for("the error", 2000, || !errs.borrow().is_empty()).await;
    wait_for("relayed", 2000, || follower.count("error") >= 1).await;
    sleep(200).await;
    // Read while the constructor still throws: a later attempt would open.
    let state = m.state();
    let e = errs.borrow().clone();
    let relayed: Vec<Value> = follower
        .heard
        .borrow()
        .iter()
        .filter(|m| m["t"] == "error")
        .cloned()
        .collect();
    drop(swap);
    for (i, err) in e.iter().enumerate() {
        assert_eq!(err.kind, ErrorKind::Network);
        assert!(
            err.message.starts_with("EventSource constructor failed")
                && err.message.ends_with(&format!("(attempt {})", i + 1)),
            "one error per attempt, in order: {e:?}"
        );
    }
    let relayed: Vec<&str> = relayed
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    let own: Vec<&str> = e.iter().map(|err| err.message.as_str()).collect();
    assert_eq!(relayed, own, "each error relayed once");
    assert_eq!(state, State::Reconnecting);
    m.close();
}

// ---- listeners that keep the manager busy ----------------------------------

/// A state listener that answers every `connecting` by leaving and every
/// `closed` by listening again keeps the drive loop going for 20,000 rounds,
/// past its bound: the rest runs after a yield (not whenever some transport
/// happens to report next), and the stream opens once the listener calms down.
#[wasm_bindgen_test]
async fn a_listener_that_keeps_reacting_never_strands_the_manager() {
    let base = server();
    let url = format!("{base}/api/team-answers/sse/?busy={}", unique(""));
    let token = dev_token(base, &unique("busy"), &[], None).await;
    let m = Manager::connect(
        &url,
        Options::default()
            .share_across_tabs(false)
            .persist_last_event_id(false)
            // Slow, so no transport input comes for 2 s: only the manager
            // itself can carry the storm on meanwhile.
            .get_token(GetToken::new(move || {
                let t = token.clone();
                async move {
                    sleep(2000).await;
                    Ok(t)
                }
            })),
    )
    .unwrap();
    let sub: Rc<RefCell<Option<tidings::Subscription>>> = Rc::default();
    *sub.borrow_mut() = Some(m.on("message", |_| {}));
    let calls = Rc::new(Cell::new(0u32));
    let (s2, c2, m2) = (sub.clone(), calls.clone(), m.clone());
    // Called at once with `connecting`: from then on every turn of the loop
    // makes the next one, until the listener calms down.
    let st = m.on_state(move |s| {
        c2.set(c2.get() + 1);
        let calm = c2.get() > 20_000;
        match s {
            State::Connecting | State::Open if !calm => {
                let old = s2.borrow_mut().take();
                drop(old);
            }
            State::Closed if s2.borrow().is_none() => {
                let new = m2.on("message", |_| {});
                *s2.borrow_mut() = Some(new);
            }
            _ => {}
        }
    });
    wait_for(
        "the storm to pass the bound without waiting for I/O",
        1500,
        || calls.get() > 20_000,
    )
    .await;
    wait_for("open after the storm", 10_000, || m.state() == State::Open).await;
    assert!(sub.borrow().is_some());
    drop(st);
    let last = sub.borrow_mut().take();
    drop(last);
    m.close();
}

// ---- after close() ---------------------------------------------------------

#[wasm_bindgen_test]
fn a_closed_manager_keeps_no_state_or_error_listener() {
    let url = format!("{}/api/team-answers/sse/?closed={}", server(), unique(""));
    let m = Manager::connect(&url, Options::default()).unwrap();
    m.close();
    let marker = Rc::new(());
    let seen: Log<State> = Rc::default();
    let (mk, s) = (marker.clone(), seen.clone());
    let st = m.on_state(move |state| {
        let _ = &mk;
        s.borrow_mut().push(state);
    });
    assert_eq!(
        seen.borrow().as_slice(),
        [State::Closed],
        "told the state once"
    );
    let mk = marker.clone();
    let er = m.on_error(move |_| {
        let _ = &mk;
    });
    let ev = m.on("message", {
        let mk = marker.clone();
        move |_| {
            let _ = &mk;
        }
    });
    assert_eq!(
        Rc::strong_count(&marker),
        1,
        "no listener kept after close()"
    );
    assert_eq!(m.state(), State::Closed);
    drop((st, er, ev));
}

// ---- Retry-After ---------------------------------------------------------------

/// A channel stream of its own and a token for it.
async fn own_channel(base: &str) -> (String, String, String) {
    let ch = unique("project.ra");
    let token = dev_token(base, &unique("ra"), &[ch.as_str()], Some(3600)).await;
    (
        format!("{base}/api/v1/events/{ch}"),
        format!("channel/{ch}"),
        token,
    )
}

async fn refuse(base: &str, stream: &str, status: u16, retry_after: &str) {
    post(
        &format!("{base}/api/dev/fail"),
        json!({"stream": stream, "status": status, "count": 1, "retry_after": retry_after}),
        None,
    )
    .await;
}

/// The time from the refusal to the reopened stream.
async fn reopened_after(m: &Manager, errs: &Log<tidings::ErrorInfo>, status: u16) -> f64 {
    wait_for("the refusal", 5000, || {
        errs.borrow().iter().any(|e| e.status == Some(status))
    })
    .await;
    let refused = js_sys::Date::now();
    wait_for("open again", 10_000, || m.state() == State::Open).await;
    js_sys::Date::now() - refused
}

#[wasm_bindgen_test]
async fn the_fetch_transport_waits_as_long_as_retry_after_says() {
    let base = server();
    let (url, stream, token) = own_channel(base).await;
    // A query string of its own keeps this stream on its own connection (off
    // the shared multiplexed one), so the refusals below are its own answers.
    let url = format!("{url}?own=1");
    // The backoff alone would retry within 100 ms.
    let m = Manager::connect(
        &url,
        Options::default()
            .share_across_tabs(false)
            .persist_last_event_id(false)
            .transport(Transport::Fetch)
            .token(token)
            .backoff(BackoffOptions::default().initial_ms(50).max_ms(100)),
    )
    .unwrap();
    let (errs, _e) = errors(&m);
    refuse(base, &stream, 503, "2").await;
    let (_events, _sub) = collect(&m, "message");
    let took = reopened_after(&m, &errs, 503).await;
    assert!(
        took >= 1900.0,
        "Retry-After: 2 honoured, reopened after {took} ms"
    );
    assert!(took < 4000.0, "and not much later: {took} ms");

    // An HTTP date 6 s ahead (whole seconds: 5–6 s from now), so that the
    // refusal still lies seconds ahead of the reconnect on a busy machine.
    let date = js_sys::Date::new(&JsValue::from_f64(js_sys::Date::now() + 6000.0));
    refuse(base, &stream, 429, &String::from(date.to_utc_string())).await;
    let before = errs.borrow().len();
    m.debug_fail_sse();
    wait_for("reconnect refused", 5000, || {
        errs.borrow()[before..]
            .iter()
            .any(|e| e.status == Some(429))
    })
    .await;
    let took = reopened_after(&m, &errs, 429).await;
    assert!(took >= 2500.0, "Retry-After as a date honoured: {took} ms");
    m.close();
}

#[wasm_bindgen_test]
async fn a_stream_refused_on_the_shared_connection_waits_its_own_retry_after() {
    let base = server();
    let a = unique("project.rb");
    let b = unique("project.rb");
    let token = dev_token(base, &unique("rb"), &[a.as_str(), b.as_str()], Some(3600)).await;
    let opts = || {
        Options::default()
            .share_across_tabs(false)
            .persist_last_event_id(false)
            .transport(Transport::Fetch)
            .token(token.clone())
            .backoff(BackoffOptions::default().initial_ms(50).max_ms(100))
    };
    let first = Manager::connect(&format!("{base}/api/v1/events/{a}"), opts()).unwrap();
    let (first_errs, _fe) = errors(&first);
    let (_first_events, _fs) = collect(&first, "message");
    wait_for("the first stream open", 10_000, || {
        first.state() == State::Open
    })
    .await;
    // Its next request is a member of the shared connection: the server refuses that
    // stream alone, with its own Retry-After.
    refuse(base, &format!("channel/{b}"), 503, "2").await;
    let second = Manager::connect(&format!("{base}/api/v1/events/{b}"), opts()).unwrap();
    let (errs, _e) = errors(&second);
    let (_events, _sub) = collect(&second, "message");
    let took = reopened_after(&second, &errs, 503).await;
    assert!(
        took >= 1900.0,
        "the stream's Retry-After: 2 honoured, reopened after {took} ms"
    );
    assert!(took < 4000.0, "and not much later: {took} ms");
    assert_eq!(
        first.state(),
        State::Open,
        "the other stream kept streaming"
    );
    assert!(
        first_errs.borrow().iter().all(|e| e.status != Some(503)),
        "the refusal was the refused stream's alone"
    );
    first.close();
    second.close();
}
