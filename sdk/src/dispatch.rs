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
pub(crate) struct ListenerId(pub(crate) u64);

/// The wildcard type.
pub(crate) const ANY: &str = "*";

/// Listeners by type, in registration order.
#[derive(Debug)]
pub(crate) struct Dispatcher<L> {
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
pub(crate) struct Target<'e, L> {
    /// The registration.
    pub(crate) id: ListenerId,
    /// The type reported to the listener (`info.type`): the type it registered
    /// for, or for `*` listeners the most specific type of the event. Either
    /// is the event's name or its payload type, so it is borrowed from those
    /// (no copy per listener and event).
    pub(crate) matched: &'e str,
    /// The listener.
    pub(crate) listener: L,
}

impl<L: Clone> Dispatcher<L> {
    /// An empty registry.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers `listener` for `ty`.
    pub(crate) fn add(&mut self, ty: &str, listener: L) -> ListenerId {
        let id = ListenerId(self.next);
        self.next += 1;
        self.listeners.push((id, ty.to_owned(), listener));
        id
    }

    /// Removes a registration; false if it was not there.
    pub(crate) fn remove(&mut self, id: ListenerId) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(i, _, _)| *i != id);
        self.listeners.len() != before
    }

    /// Whether `id` is still registered.
    pub(crate) fn contains(&self, id: ListenerId) -> bool {
        self.listeners.iter().any(|(i, _, _)| *i == id)
    }

    /// No registrations.
    pub(crate) fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// Removes every registration.
    pub(crate) fn clear(&mut self) {
        self.listeners.clear();
    }

    /// The distinct registered types (the shell listens for these event names).
    pub(crate) fn types(&self) -> Vec<String> {
        // Sorted by insertion: a few types, and no sort routine in the package.
        let mut v: Vec<String> = Vec::new();
        for (_, t, _) in &self.listeners {
            if let Err(i) = v.binary_search(t) {
                v.insert(i, t.clone());
            }
        }
        v
    }

    /// The listeners for one event, in registration order, each once.
    pub(crate) fn targets<'e>(
        &self,
        event: &'e str,
        payload_type: Option<&'e str>,
        heartbeat: bool,
    ) -> Vec<Target<'e, L>> {
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
                    // `ty` is the name, or else the payload type (then `specific`).
                    if ty == event {
                        event
                    } else {
                        specific
                    }
                } else if ty == ANY && !heartbeat {
                    specific
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
mod tests;
