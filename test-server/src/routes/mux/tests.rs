use axum::http::{HeaderMap, HeaderValue, Uri};

use super::*;

fn parse(q: &str, header: Option<&str>) -> ApiResult<MuxRequest> {
    let uri: Uri = format!("/api/mux?{q}").parse().unwrap();
    let mut h = HeaderMap::new();
    if let Some(v) = header {
        h.insert("last-event-id", HeaderValue::from_str(v).unwrap());
    }
    MuxRequest::parse(&uri, &h)
}

#[test]
fn positions_align_with_streams_and_the_header_wins() {
    let r = parse("streams=/a,/b,/c&lastEventId=1,2,3", Some("7,,x")).unwrap();
    assert_eq!(
        r.streams,
        vec![
            ("/a".to_owned(), Position::After(7)),
            ("/b".to_owned(), Position::Live),
            ("/c".to_owned(), Position::Invalid("x".into())),
        ]
    );
    let r = parse("streams=/a,/b&lastEventId=4", None).unwrap();
    assert_eq!(r.streams[0].1, Position::After(4));
    assert_eq!(r.streams[1].1, Position::Live);
}

#[test]
fn bad_sets_are_refused_naming_the_field() {
    for q in [
        "",
        "streams=",
        "streams=a",
        "streams=/a,/a",
        "streams=/a%20b",
        "streams=/a&lastEventId=1,2",
        "streams=/a&poll=1&wait=99",
    ] {
        let e = parse(q, None).unwrap_err();
        assert_eq!(e.status().as_u16(), 422, "{q}");
    }
    let many = (0..=MAX_STREAMS)
        .map(|i| format!("/s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(parse(&format!("streams={many}"), None).is_err());
}
