//! Where a subscriber is in a stream, and the de-duplication rule that goes
//! with it. One rule for the connection (across reconnects and polling) and
//! for every tab (relayed events): ids of a stream increase (docs/PROTOCOL.md),
//! so a numeric id at or below the last one delivered was delivered already.

/// The last event id a subscriber delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Position {
    id: Option<String>,
    num: Option<u64>,
}

impl Position {
    /// A position at `id` (e.g. kept across a reload); empty or `None`: unknown.
    pub(crate) fn new(id: Option<&str>) -> Self {
        let mut p = Position::default();
        p.track(id);
        p
    }

    /// The last id, if known.
    pub(crate) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The last id as a number, when it is one.
    pub(crate) fn num(&self) -> Option<u64> {
        self.num
    }

    /// Whether an event with this id was delivered already: a numeric id at
    /// or below the position. Events without an id (greetings, heartbeats)
    /// never are, nor is `reset`, which may move the position back.
    pub(crate) fn is_duplicate(&self, id: Option<&str>, event: &str) -> bool {
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
    pub(crate) fn track(&mut self, id: Option<&str>) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.num = id.parse().ok();
            // Once per event: the buffer is reused.
            match &mut self.id {
                Some(s) => {
                    s.clear();
                    s.push_str(id);
                }
                None => self.id = Some(id.to_owned()),
            }
        }
    }

    /// Moves to `id` if it is further on, or if the position is unknown;
    /// never back (a head reported after events we already delivered).
    pub(crate) fn advance_to(&mut self, id: &str) {
        match (id.parse::<u64>().ok(), self.num) {
            (Some(n), Some(last)) if n <= last => {}
            (Some(_), _) => self.track(Some(id)),
            (None, _) if self.id.is_none() => self.track(Some(id)),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests;
