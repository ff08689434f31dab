//! Which protocol a stream speaks, and the hello that tells.
//!
//! Some behaviours belong to the Tidings protocol only (docs/PROTOCOL.md):
//! numeric ids that strictly increase (so a repeated id is a duplicate),
//! `reset`, `end`, and the `?poll=1` polling form. A Tidings server announces
//! itself with a named `tidings` event at the start of every response; any
//! other SSE server is spoken to as plain SSE: ids are opaque strings, every
//! event is delivered, `reset` and `end` are ordinary event names, and nothing
//! is asked of it that it did not offer.

use serde::{Deserialize, Serialize};

use crate::json::{Doc, Json};

use crate::parser::SseEvent;

/// The event name of the protocol hello.
pub(crate) const HELLO_EVENT: &str = "tidings";

/// Which protocol to assume for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Tidings behaviours once the server announces the protocol (its hello
    /// starts every response); plain SSE until then and for any other server.
    #[default]
    Auto,
    /// The server speaks Tidings, announced or not (numeric-id de-duplication,
    /// `reset`, `end`, the polling form).
    Tidings,
    /// Plain SSE even if the server announces Tidings (the hello is then an
    /// ordinary `tidings` event).
    Plain,
}

/// The protocol hello's payload: `{"protocol":"tidings","version":1,"capabilities":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The protocol version (1 or later; later versions keep version 1's rules).
    pub(crate) version: u64,
    /// What the server offers; names this SDK does not know are kept and ignored.
    pub(crate) capabilities: Vec<String>,
    /// With the `mux` capability: the path (or URL) of the endpoint that carries a
    /// set of streams on one connection.
    pub(crate) mux: Option<String>,
}

impl Hello {
    /// The hello in `event`, if it is one: named `tidings`, no id, JSON data
    /// whose `protocol` is `"tidings"` and whose `version` is at least 1.
    pub(crate) fn from_event(event: &SseEvent) -> Option<Hello> {
        if event.event != HELLO_EVENT || event.id.as_deref().is_some_and(|id| !id.is_empty()) {
            return None;
        }
        Self::from_doc(&Doc::parse(&event.data).ok()?)
    }

    fn from_doc<J: Json>(v: &J) -> Option<Hello> {
        if v.get("protocol")?.as_str()? != "tidings" {
            return None;
        }
        let version = v.get("version")?.as_int().filter(|n| *n >= 1)? as u64;
        let capabilities = v
            .get("capabilities")
            .and_then(|c| c.items())
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let mux = v.get("mux").and_then(|m| m.as_str());
        Some(Hello {
            version,
            capabilities,
            mux,
        })
    }

    /// Whether the server offers `capability` (`numeric-ids`, `reset`, `end`, `poll`, …).
    pub(crate) fn offers(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
