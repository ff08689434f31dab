//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn parse_chunks(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c);
        while let Some(f) = p.poll() {
            out.push(f);
        }
    }
    out
}

fn parse(s: &str) -> Vec<Frame> {
    parse_chunks(&[s.as_bytes()])
}

fn ev(event: &str, data: &str, id: Option<&str>) -> Frame {
    Frame::Event(SseEvent::new(event, data, id))
}

#[test]
fn simple_unnamed_event() {
    assert_eq!(parse("data: hello\n\n"), vec![ev("message", "hello", None)]);
}

#[test]
fn named_event_with_id() {
    assert_eq!(
        parse("event: unread_count\nid: 7\ndata: {\"count\":1}\n\n"),
        vec![ev("unread_count", "{\"count\":1}", Some("7"))]
    );
}

#[test]
fn data_lines_joined_with_lf() {
    assert_eq!(
        parse("data: a\ndata:b\ndata\n\n"),
        vec![ev("message", "a\nb\n", None)]
    );
}

#[test]
fn only_one_leading_space_stripped() {
    assert_eq!(parse("data:  two\n\n"), vec![ev("message", " two", None)]);
    assert_eq!(
        parse("data:no space\n\n"),
        vec![ev("message", "no space", None)]
    );
}

#[test]
fn cr_lf_and_crlf_line_ends() {
    let want = vec![
        ev("message", "a", None),
        ev("message", "b", None),
        ev("message", "c", None),
    ];
    assert_eq!(parse("data: a\r\rdata: b\n\ndata: c\r\n\r\n"), want);
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(got, vec![ev("message", "a\nb", None)]);
}

#[test]
fn bom_stripped_once_even_when_split() {
    assert_eq!(
        parse_chunks(&[b"\xEF", b"\xBB\xBFdata: x\n\n"]),
        vec![ev("message", "x", None)]
    );
    // A second BOM is part of the line: field name "\u{feff}data" is unknown.
    assert_eq!(parse("\u{feff}\u{feff}data: x\n\n"), vec![]);
}

#[test]
fn comments_and_unknown_fields_ignored() {
    assert_eq!(
        parse(": hi\nfoo: bar\ndata: x\n:\n\n"),
        vec![ev("message", "x", None)]
    );
}

#[test]
fn field_without_colon_has_empty_value() {
    assert_eq!(parse("data\n\n"), vec![ev("message", "", None)]);
    assert_eq!(parse("event\ndata: x\n\n"), vec![ev("message", "x", None)]);
}

#[test]
fn id_with_nul_ignored_and_id_persists() {
    let mut p = Parser::new();
    p.feed(b"id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n");
    assert_eq!(p.poll(), Some(ev("message", "a", Some("5"))));
    assert_eq!(p.poll(), Some(ev("message", "b", None)));
    assert_eq!(p.last_event_id(), "5");
}

#[test]
fn empty_id_clears() {
    let mut p = Parser::new();
    p.feed(b"id: 5\ndata: a\n\nid\ndata: b\n\n");
    assert_eq!(p.poll(), Some(ev("message", "a", Some("5"))));
    assert_eq!(p.poll(), Some(ev("message", "b", Some(""))));
    assert_eq!(p.last_event_id(), "");
}

#[test]
fn retry_digits_only() {
    assert_eq!(parse("retry: 1000\n"), vec![Frame::Retry(1000)]);
    assert_eq!(parse("retry: 10a\nretry: -1\nretry:\nretry: 1.5\n"), vec![]);
    assert_eq!(parse("retry: 99999999999999999999999\n"), vec![]);
}

#[test]
fn no_data_no_dispatch_and_type_reset() {
    assert_eq!(
        parse("event: x\n\ndata: y\n\n"),
        vec![ev("message", "y", None)]
    );
    assert_eq!(parse("\n\n\n"), vec![]);
}

#[test]
fn unterminated_event_discarded_by_finish() {
    let mut p = Parser::new();
    p.feed(b"data: partial\n");
    assert_eq!(p.poll(), None);
    p.finish();
    p.feed(b"data: next\n\n");
    assert_eq!(p.poll(), Some(ev("message", "next", None)));
}

#[test]
fn invalid_utf8_replaced() {
    assert_eq!(
        parse_chunks(&[b"data: \xff\xfe\n\n"]),
        vec![ev("message", "\u{fffd}\u{fffd}", None)]
    );
}

#[test]
fn multibyte_split_across_chunks() {
    let s = "data: héllo €\n\n".as_bytes();
    for i in 0..s.len() {
        assert_eq!(
            parse_chunks(&[&s[..i], &s[i..]]),
            vec![ev("message", "héllo €", None)]
        );
    }
}

#[test]
fn every_byte_split_of_multi_event_chunk() {
    let s: &[u8] = b"\xEF\xBB\xBFretry: 1000\r\n: c\r\nevent: a\r\nid: 1\r\ndata: x\r\ndata: y\r\n\r\nevent: b\rdata: z\r\rdata: w\n\n";
    let whole = parse_chunks(&[s]);
    assert_eq!(whole.len(), 4);
    for i in 0..=s.len() {
        for j in i..=s.len() {
            assert_eq!(
                parse_chunks(&[&s[..i], &s[i..j], &s[j..]]),
                whole,
                "split at {i},{j}"
            );
        }
    }
}

#[test]
fn huge_data_line() {
    let big = "x".repeat(1 << 20);
    let input = format!("data: {big}\n\n");
    let chunks: Vec<&[u8]> = input.as_bytes().chunks(4096).collect();
    let got = parse_chunks(&chunks);
    assert_eq!(got, vec![ev("message", &big, None)]);
}

/// Every event's data, with whether it came as a span, checking each span
/// against the chunk it points into.
fn spanned_chunks(chunks: &[&[u8]]) -> Vec<(Frame, bool)> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c);
        let stretch = p.stretch();
        let mut first_last: Option<(usize, usize)> = None;
        while let Some((f, span)) = p.poll_spanned() {
            if let Some(s) = span {
                first_last = Some((first_last.map_or(s.start, |(a, _)| a), s.end));
            }
            if let (Frame::Event(ev), Some(s)) = (&f, span) {
                assert_eq!(std::str::from_utf8(&c[s.start..s.end]).unwrap(), ev.data);
            }
            out.push((f, span.is_some()));
        }
        assert_eq!(
            stretch, first_last,
            "the stretch runs from the first span to the last"
        );
    }
    out
}

#[test]
fn spans_point_at_single_line_data_within_the_chunk() {
    let s: &[u8] =
        b"\xEF\xBB\xBFdata: first\n\nid: 2\r\ndata:h\xC3\xA9llo\r\n\r\ndata: a\ndata: b\n\ndata: \xff\n\nretry: 5\ndata:\n\n";
    let got = spanned_chunks(&[s]);
    let spanned: Vec<bool> = got.iter().map(|(_, s)| *s).collect();
    // Two lines, invalid UTF-8 and the retry frame have none; an empty data line has one.
    assert_eq!(spanned, vec![true, true, false, false, false, true]);
    let frames: Vec<Frame> = got.into_iter().map(|(f, _)| f).collect();
    assert_eq!(frames, parse_chunks(&[s]));
    // Split anywhere: the same frames, spans only where the line lies wholly
    // in the chunk of its event's dispatch (each checked in `spanned_chunks`).
    for i in 0..=s.len() {
        let got: Vec<Frame> = spanned_chunks(&[&s[..i], &s[i..]])
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(got, frames, "split at {i}");
    }
}

#[test]
fn no_span_for_a_data_line_of_an_earlier_chunk() {
    let got = spanned_chunks(&[b"data: x\n", b"\n"]);
    assert_eq!(got, vec![(ev("message", "x", None), false)]);
    let got = spanned_chunks(&[b"data: x\n\n"]);
    assert_eq!(got, vec![(ev("message", "x", None), true)]);
}
