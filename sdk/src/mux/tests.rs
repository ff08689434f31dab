use super::*;

fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
    SseEvent::new(event, data, id)
}

#[test]
fn the_request_lists_every_stream_with_its_position_in_order() {
    let mut set = MuxSet::default();
    set.join("/api/v1/events/a", Some("12".into()));
    set.join("/api/notifications/stream", None);
    set.join("/api/v1/events/b:c", Some("7".into()));
    let (url, header) = set.request("http://h/api/mux");
    assert_eq!(
        url,
        "http://h/api/mux?streams=%2Fapi%2Fv1%2Fevents%2Fa,%2Fapi%2Fnotifications%2Fstream,%2Fapi%2Fv1%2Fevents%2Fb%3Ac"
    );
    assert_eq!(header.as_deref(), Some("12,,7"));
    let mut fresh = MuxSet::default();
    fresh.join("/s", None);
    assert_eq!(
        fresh.request("http://h/m?x=1"),
        ("http://h/m?x=1&streams=%2Fs".into(), None)
    );
}

#[test]
fn tagged_frames_go_to_their_stream_and_move_its_position() {
    let mut set = MuxSet::default();
    let a = set.join("/a", None);
    let b = set.join("/b", Some("3".into()));
    set.request("/m"); // the connection for both opens
    assert_eq!(
        set.route(ev("/a message", "x", Some("5"))),
        Routed::To(a, ev("message", "x", Some("5")))
    );
    assert_eq!(
        set.route(ev("/b unread_count", "{}", None)),
        Routed::To(b, ev("unread_count", "{}", None))
    );
    assert_eq!(set.position(a), Some("5"));
    assert_eq!(
        set.position(b),
        Some("3"),
        "a frame without id keeps the position"
    );
    assert_eq!(set.request("/m").1.as_deref(), Some("5,3"));
    // Connection-wide frames concern every stream; unknown streams are dropped.
    let hello = ev("tidings", "{}", None);
    assert_eq!(set.route(hello.clone()), Routed::All(hello));
    assert_eq!(
        set.route(ev("/gone message", "x", Some("1"))),
        Routed::Dropped
    );
}

#[test]
fn a_refused_stream_leaves_the_set_with_its_status() {
    let mut set = MuxSet::default();
    let a = set.join("/a", None);
    let b = set.join("/secret", None);
    let r = set.route(ev(
        "mux-error",
        r#"{"stream":"/secret","status":403,"error":"no"}"#,
        None,
    ));
    assert_eq!(
        r,
        Routed::Refused {
            member: b,
            status: 403,
            body: r#"{"error":"no"}"#.into(),
            retry_after: None,
        }
    );
    assert_eq!(set.ids(), vec![a]);
    let c = set.join("/busy", None);
    assert_eq!(
        set.route(ev(
            "mux-error",
            r#"{"stream":"/busy","status":503,"error":"full","retry_after":"7"}"#,
            None,
        )),
        Routed::Refused {
            member: c,
            status: 503,
            body: r#"{"error":"full"}"#.into(),
            retry_after: Some("7".into()),
        },
        "the stream's own Retry-After goes with its refusal"
    );
    for bad in [
        "nope",
        r#"{"stream":"/a"}"#,
        r#"{"stream":"/zz","status":403}"#,
    ] {
        assert_eq!(
            set.route(ev("mux-error", bad, None)),
            Routed::Dropped,
            "{bad}"
        );
    }
    assert_eq!(set.ids(), vec![a]);
}

#[test]
fn joining_again_replaces_the_member_and_leave_takes_only_its_own() {
    let mut set = MuxSet::default();
    let first = set.join("/a", Some("1".into()));
    let second = set.join("/a", Some("4".into()));
    assert_ne!(first, second);
    assert_eq!(set.ids(), vec![second]);
    assert!(!set.leave(first), "a stale member leaves nothing");
    assert_eq!(set.position(second), Some("4"));
    assert!(set.leave(second));
    assert!(set.is_empty());
}

#[test]
fn a_member_joining_at_a_position_waits_for_the_request_that_replays_from_it() {
    // A stream leaves the open connection and joins again at an older
    // position (a page's manager closed and a new one resumed from storage);
    // the connection goes on carrying the stream's frames meanwhile.
    let mut set = MuxSet::default();
    let first = set.join("/a", Some("1".into()));
    set.request("/m");
    assert!(set.leave(first));
    assert_eq!(
        set.route(ev("/a message", "two", Some("2"))),
        Routed::Dropped
    );
    let again = set.join("/a", Some("1".into()));
    assert_eq!(
        set.route(ev("/a message", "three", Some("3"))),
        Routed::Dropped,
        "not from a connection that may be past its position"
    );
    assert_eq!(set.position(again), Some("1"), "2 and 3 are still to come");
    assert_eq!(set.request("/m").1.as_deref(), Some("1"));
    assert_eq!(
        set.route(ev("/a message", "two", Some("2"))),
        Routed::To(again, ev("message", "two", Some("2")))
    );
    // Live from now (no position): the open connection's frames are news.
    let fresh = set.join("/b", None);
    assert_eq!(
        set.route(ev("/b message", "x", Some("9"))),
        Routed::To(fresh, ev("message", "x", Some("9")))
    );
}

#[test]
fn only_the_members_a_request_listed_are_carried_by_its_connection() {
    let mut set = MuxSet::default();
    let a = set.join("/a", Some("4".into()));
    assert_eq!(set.listed(), Vec::<u64>::new(), "no request yet");
    set.request("/m");
    // Joining while that connection is open, with or without a position: not
    // on it (the end of its prelude or a heartbeat does not open them).
    let b = set.join("/b", Some("7".into()));
    let c = set.join("/c", None);
    assert_eq!(set.listed(), vec![a]);
    set.request("/m");
    assert_eq!(set.listed(), vec![a, b, c]);
    // A stream joining again is a new member, not on the open connection yet.
    let b2 = set.join("/b", Some("9".into()));
    assert_eq!(set.listed(), vec![a, c]);
    set.request("/m");
    assert_eq!(set.listed(), vec![a, c, b2]);
}
