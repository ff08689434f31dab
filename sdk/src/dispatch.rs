//! Listener registry and the dispatch rule, independent of any transport.
//!
//! The manager decodes each event once and asks [`Dispatcher::targets`] who
//! receives it. Keeping this apart from the transport lets a multi-tab leader
//! relay raw events to follower tabs, which decode and dispatch them locally.
//!
//! The rule: an event goes to listeners of its SSE event name (`message` for
//! unnamed events); if it is unnamed and its decoded payload has a string
//! `type`, also to listeners of that type; `*` receives every event.
//! Heartbeats are consumed for liveness and reach only listeners registered
//! for `heartbeat` by name (not `*`, not `message`).

/// Identifies one registration; returned by `add`, passed to `remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u64);

/// The wildcard type.
pub const ANY: &str = "*";

/// Listeners by type, in registration order.
#[derive(Debug)]
pub struct Dispatcher<L> {
    next: u64,
    listeners: Vec<(ListenerId, String, L)>,
}

impl<L> Default for Dispatcher<L> {
    fn default() -> Self {
        Dispatcher {
            next: 1,
            listeners: Vec::new(),
        }
    }
}

/// Who receives one event: the listener and the type it is told it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<L> {
    /// The registration.
    pub id: ListenerId,
    /// The type reported to the listener (`info.type`): the type it registered
    /// for, or for `*` listeners the most specific type of the event.
    pub matched: String,
    /// The listener.
    pub listener: L,
}

impl<L: Clone> Dispatcher<L> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `listener` for `ty`.
    pub fn add(&mut self, ty: &str, listener: L) -> ListenerId {
        let id = ListenerId(self.next);
        self.next += 1;
        self.listeners.push((id, ty.to_owned(), listener));
        id
    }

    /// Removes a registration; false if it was not there.
    pub fn remove(&mut self, id: ListenerId) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(i, _, _)| *i != id);
        self.listeners.len() != before
    }

    /// Whether `id` is still registered.
    pub fn contains(&self, id: ListenerId) -> bool {
        self.listeners.iter().any(|(i, _, _)| *i == id)
    }

    /// Number of registrations.
    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    /// No registrations.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// Removes every registration.
    pub fn clear(&mut self) {
        self.listeners.clear();
    }

    /// The distinct registered types (the shell listens for these event names).
    pub fn types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.listeners.iter().map(|(_, t, _)| t.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The listeners for one event, in registration order, each once.
    pub fn targets(
        &self,
        event: &str,
        payload_type: Option<&str>,
        heartbeat: bool,
    ) -> Vec<Target<L>> {
        let second = if event == "message" {
            payload_type.filter(|t| *t != "message")
        } else {
            None
        };
        let specific = second.unwrap_or(event);
        self.listeners
            .iter()
            .filter_map(|(id, ty, l)| {
                let matched = if ty == event || Some(ty.as_str()) == second {
                    if heartbeat && ty != "heartbeat" {
                        return None;
                    }
                    ty.clone()
                } else if ty == ANY && !heartbeat {
                    specific.to_owned()
                } else {
                    return None;
                };
                Some(Target {
                    id: *id,
                    matched,
                    listener: l.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn names(
        d: &Dispatcher<&'static str>,
        e: &str,
        t: Option<&str>,
        hb: bool,
    ) -> Vec<(&'static str, String)> {
        d.targets(e, t, hb)
            .into_iter()
            .map(|t| (t.listener, t.matched))
            .collect()
    }

    #[test]
    fn rule() {
        let mut d = Dispatcher::new();
        d.add("message", "msg");
        d.add("create", "create");
        d.add("*", "any");
        d.add("unread_count", "unread");
        d.add("heartbeat", "hb");
        d.add("reset", "reset");
        assert_eq!(
            names(&d, "message", Some("create"), false),
            vec![
                ("msg", "message".into()),
                ("create", "create".into()),
                ("any", "create".into())
            ]
        );
        assert_eq!(
            names(&d, "unread_count", None, false),
            vec![
                ("any", "unread_count".into()),
                ("unread", "unread_count".into())
            ]
        );
        // A named event's payload type is not used.
        assert_eq!(names(&d, "unread_count", Some("create"), false).len(), 2);
        assert_eq!(
            names(&d, "message", None, false),
            vec![("msg", "message".into()), ("any", "message".into())]
        );
        // Heartbeats, named or by payload type, reach only `heartbeat` listeners.
        assert_eq!(
            names(&d, "heartbeat", None, true),
            vec![("hb", "heartbeat".into())]
        );
        assert_eq!(
            names(&d, "message", Some("heartbeat"), true),
            vec![("hb", "heartbeat".into())]
        );
        assert_eq!(
            names(&d, "reset", None, false),
            vec![("any", "reset".into()), ("reset", "reset".into())]
        );
        assert_eq!(
            d.types(),
            vec![
                "*",
                "create",
                "heartbeat",
                "message",
                "reset",
                "unread_count"
            ]
        );
    }

    #[test]
    fn add_remove() {
        let mut d = Dispatcher::new();
        let a = d.add("x", 1);
        let b = d.add("x", 2);
        assert_ne!(a, b);
        assert!(d.remove(a));
        assert!(!d.remove(a));
        assert!(!d.contains(a) && d.contains(b));
        assert_eq!(d.targets("x", None, false).len(), 1);
        assert!(d.remove(b));
        assert!(d.is_empty());
    }
}
