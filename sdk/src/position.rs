//! Where a subscriber is in a stream, and the de-duplication rule that goes
//! with it. One rule for the connection (across reconnects and polling) and
//! for every tab (relayed events): ids of a stream increase (docs/PROTOCOL.md),
//! so a numeric id at or below the last one delivered was delivered already.

/// The last event id a subscriber delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    id: Option<String>,
    num: Option<u64>,
}

impl Position {
    /// A position at `id` (e.g. kept across a reload); empty or `None`: unknown.
    pub fn new(id: Option<&str>) -> Self {
        let mut p = Position::default();
        p.track(id);
        p
    }

    /// The last id, if known.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The last id as a number, when it is one.
    pub fn num(&self) -> Option<u64> {
        self.num
    }

    /// Whether an event with this id was delivered already: a numeric id at
    /// or below the position. Events without an id (greetings, heartbeats)
    /// never are, nor is `reset`, which may move the position back.
    pub fn is_duplicate(&self, id: Option<&str>, event: &str) -> bool {
        if event == "reset" {
            return false;
        }
        match (
            id.filter(|s| !s.is_empty())
                .and_then(|s| s.parse::<u64>().ok()),
            self.num,
        ) {
            (Some(n), Some(last)) => n <= last,
            _ => false,
        }
    }

    /// Records a delivered event's id (nothing for an event without one).
    pub fn track(&mut self, id: Option<&str>) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.num = id.parse().ok();
            self.id = Some(id.to_owned());
        }
    }

    /// Moves to `id` if it is further on, or if the position is unknown;
    /// never back (a head reported after events we already delivered).
    pub fn advance_to(&mut self, id: &str) {
        match (id.parse::<u64>().ok(), self.num) {
            (Some(n), Some(last)) if n <= last => {}
            (Some(_), _) => self.track(Some(id)),
            (None, _) if self.id.is_none() => self.track(Some(id)),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn numeric_ids_at_or_below_the_position_are_duplicates() {
        let mut p = Position::new(Some("5"));
        assert!(p.is_duplicate(Some("5"), "message"));
        assert!(p.is_duplicate(Some("3"), "message"));
        assert!(!p.is_duplicate(Some("6"), "message"));
        assert!(
            !p.is_duplicate(None, "message"),
            "no id: a greeting or heartbeat"
        );
        assert!(
            !p.is_duplicate(Some("2"), "reset"),
            "the server may move us back"
        );
        p.track(Some("6"));
        assert_eq!((p.id(), p.num()), (Some("6"), Some(6)));
        p.track(None);
        assert_eq!(p.id(), Some("6"), "an event without id keeps the position");
    }

    #[test]
    fn advance_never_moves_back_and_adopts_when_unknown() {
        let mut p = Position::new(None);
        p.advance_to("abc");
        assert_eq!(p.id(), Some("abc"), "unknown: adopt even a non-numeric id");
        let mut p = Position::new(Some("10"));
        p.advance_to("7");
        assert_eq!(p.id(), Some("10"));
        p.advance_to("12");
        assert_eq!(p.num(), Some(12));
        p.advance_to("xyz");
        assert_eq!(
            p.num(),
            Some(12),
            "a non-numeric head does not replace a known one"
        );
        assert_eq!(
            Position::new(Some("")),
            Position::default(),
            "empty means unknown"
        );
    }
}
