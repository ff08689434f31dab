//! Several streams on one connection (sans-IO): the set of streams a
//! multiplexed connection carries, each one's position, the request that
//! opens it, and where each of its frames goes.
//!
//! Wire rules (docs/PROTOCOL.md, "Multiplexed streams"): the request lists
//! the stream paths in `streams=` and their positions, in the same order, in
//! `Last-Event-ID: <id>,<id>,…`; every frame of a stream is named
//! `<path> <event>`; `mux-error` refuses one stream; frames without a path
//! (the protocol hello, heartbeats) concern every stream.

use crate::json::{self, Doc, Json};

use crate::parser::SseEvent;

/// How long a change of the set waits for more changes before reconnecting,
/// so a burst of `connect` calls costs one reconnect.
pub(crate) const DEBOUNCE_MS: u32 = 25;

/// One stream of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The stream's path: its tag on the wire.
    tag: String,
    /// Which join this is (a stream that leaves and joins again is a new member).
    id: u64,
    /// The last id delivered to it (sent back on the next request).
    position: Option<String>,
    /// Whether the open connection was asked for this member from its
    /// position. A member that joins with a position while a connection is
    /// open gets nothing from that connection: the stream's frames on it may
    /// already be past the position (they were meant for an earlier member),
    /// so it waits for the next request, which replays from its position.
    requested: bool,
    /// Whether the request of the open connection listed the stream: only
    /// then does that connection carry it (its end of prelude opens it).
    listed: bool,
}

/// Where a frame of the multiplexed connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Routed {
    /// To one member, as its own stream's event.
    To(u64, SseEvent),
    /// To every member (the protocol hello, heartbeats).
    All(SseEvent),
    /// The server refused that member (it left the set): its own URL's status
    /// and the error body.
    Refused {
        /// The member.
        member: u64,
        /// The HTTP status its own URL would have answered.
        status: u16,
        /// `{"error": …}`.
        body: String,
        /// The `Retry-After` its own URL would have sent (429, 503), as the
        /// header's value.
        retry_after: Option<String>,
    },
    /// A frame of a stream no longer in the set, or a malformed `mux-error`.
    Dropped,
}

/// The set of streams on one multiplexed connection, with their positions.
#[derive(Debug, Default)]
pub(crate) struct MuxSet {
    members: Vec<Member>,
    next_id: u64,
}

impl MuxSet {
    /// Adds the stream `tag` at `position` (replacing an earlier member of the
    /// same stream); returns the member id.
    pub(crate) fn join(&mut self, tag: &str, position: Option<String>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.members.retain(|m| m.tag != tag);
        let position = position.filter(|p| !p.is_empty());
        self.members.push(Member {
            tag: tag.to_owned(),
            id,
            // Live from now: whatever the open connection carries is news to it.
            requested: position.is_none(),
            listed: false,
            position,
        });
        id
    }

    /// Removes member `id`; false when it was not in the set.
    pub(crate) fn leave(&mut self, id: u64) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.id != id);
        self.members.len() != before
    }

    /// The member ids, in request order.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// The members the open connection carries (its request listed them), in
    /// request order: a member that joined since waits for the next request.
    pub(crate) fn listed(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.listed)
            .map(|m| m.id)
            .collect()
    }

    /// Whether no stream is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member's position.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn position(&self, id: u64) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.position.as_deref())
    }

    /// The request for the set: `mux_url` with `streams=` (each path
    /// percent-encoded), and the `Last-Event-ID` value (`None` when no stream
    /// has a position). Every member is on the connection this opens.
    pub(crate) fn request(&mut self, mux_url: &str) -> (String, Option<String>) {
        for m in &mut self.members {
            m.requested = true;
            m.listed = true;
        }
        let streams = self
            .members
            .iter()
            .map(|m| crate::url::encode_component(&m.tag))
            .collect::<Vec<_>>()
            .join(",");
        let sep = if mux_url.contains('?') { "&" } else { "?" };
        let url = [mux_url, sep, "streams=", &streams].concat();
        let positions: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.position.as_deref().unwrap_or(""))
            .collect();
        let header = positions
            .iter()
            .any(|p| !p.is_empty())
            .then(|| positions.join(","));
        (url, header)
    }

    /// Routes one frame, moving the position of the stream it belongs to.
    pub(crate) fn route(&mut self, ev: SseEvent) -> Routed {
        if ev.event == "mux-error" {
            return self.refused(&ev.data);
        }
        let Some((tag, name)) = ev.event.split_once(' ') else {
            return Routed::All(ev);
        };
        let Some(m) = self
            .members
            .iter_mut()
            .find(|m| m.tag == tag && m.requested)
        else {
            return Routed::Dropped;
        };
        if let Some(id) = ev.id.as_deref().filter(|id| !id.is_empty()) {
            m.position = Some(id.to_owned());
        }
        Routed::To(
            m.id,
            SseEvent {
                event: name.to_owned(),
                data: ev.data,
                id: ev.id,
            },
        )
    }

    fn refused(&mut self, data: &str) -> Routed {
        match Doc::parse(data) {
            Ok(v) => self.refused_doc(&v),
            Err(_) => Routed::Dropped,
        }
    }

    fn refused_doc<J: Json>(&mut self, v: &J) -> Routed {
        let (Some(tag), Some(status)) = (
            v.get("stream").and_then(|s| s.as_str()),
            v.get("status")
                .and_then(|s| s.as_int())
                .and_then(|s| u16::try_from(s).ok()),
        ) else {
            return Routed::Dropped;
        };
        let Some(i) = self.members.iter().position(|m| m.tag == tag) else {
            return Routed::Dropped;
        };
        let member = self.members.remove(i).id;
        let error = v.get("error").and_then(|e| e.as_str());
        let retry_after = v.get("retry_after").and_then(|r| r.as_str());
        let mut body = String::from(r#"{"error":"#);
        json::push_str(&mut body, error.as_deref().unwrap_or("refused"));
        body.push('}');
        Routed::Refused {
            member,
            status,
            body,
            retry_after,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
