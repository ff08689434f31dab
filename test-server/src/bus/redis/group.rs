//! Publishes that arrive together share one Redis script call.
//!
//! A publish queues itself; the one that finds the queue empty leads: it yields once, so
//! the publishers already ready on its worker queue behind it, then takes every publish
//! waiting and sends them as one [`GROUP_PUBLISH_SCRIPT`](super::wire::GROUP_PUBLISH_SCRIPT)
//! call per stream (a large backlog as several calls, all sent together on the command
//! connection). The call allocates consecutive ids and appends the events atomically, and
//! Redis answers it once it has written (and, with `appendfsync always`, fsynced) the
//! whole call: each publisher is answered with its event then. Subscribers get the events
//! from the reader's `XREAD`, which Redis answers in the same turn, after the same write:
//! nothing reaches a subscriber before it is in Redis. A group does not wait for the one
//! before it: groups taken one after another are in flight together.
//!
//! A leader whose request is cancelled (its client went away) before its group is
//! answered hands the rest of its work to a task of its own, so the publishers of its
//! group are still sent and answered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::{lock, wire, Shared};
use crate::bus::{BusError, YieldOnce};
use crate::event::Event;

/// Most events in one script call (a larger backlog takes several calls).
const MAX_CALL_EVENTS: usize = 512;
/// Most bytes of event data in one script call (an event larger than this goes alone).
const MAX_CALL_BYTES: usize = 1 << 20;

/// A publish waiting for its group to be stored.
pub(super) struct Pending {
    stream: String,
    event: Option<String>,
    data: String,
    reply: oneshot::Sender<Result<Arc<Event>, BusError>>,
}

impl Shared {
    /// Stores an event with the next id of `stream` together with the publishes that
    /// arrive with it; answers once its group's call is answered by Redis.
    pub(super) async fn publish_grouped(
        self: Arc<Self>,
        stream: String,
        event: Option<String>,
        data: String,
    ) -> Result<Arc<Event>, BusError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut q = lock(&self.pending);
            q.push(Pending {
                stream,
                event,
                data,
                reply,
            });
            q.len() == 1
        };
        if lead {
            let shared = Arc::clone(&self);
            Detached(Some(
                async move {
                    // Lets the publishers this worker already has ready (requests that
                    // came in with this one) queue behind this one and share its call.
                    YieldOnce(false).await;
                    let group = std::mem::take(&mut *lock(&shared.pending));
                    shared.send_group(group).await;
                }
                .boxed(),
            ))
            .await;
        }
        answer.await.map_err(|_| {
            BusError::Unavailable("the publish was dropped before Redis answered".into())
        })?
    }

    /// Sends a group as one call per stream (several for a large backlog), all at once,
    /// and answers each publisher.
    async fn send_group(&self, group: Vec<Pending>) {
        let conn = match self.cmd_conn().await {
            Ok(conn) => conn,
            Err(e) => {
                for p in group {
                    let _ = p.reply.send(Err(copy(&e)));
                }
                return;
            }
        };
        let mut calls = split(group);
        if calls.len() == 1 {
            if let Some(call) = calls.pop() {
                self.send_call(conn, call).await;
            }
            return;
        }
        futures_util::future::join_all(
            calls
                .into_iter()
                .map(|call| self.send_call(conn.clone(), call)),
        )
        .await;
    }

    /// One script call: the events of one stream, oldest first.
    async fn send_call(&self, mut conn: ::redis::aio::MultiplexedConnection, call: Vec<Pending>) {
        let Some(stream) = call.first().map(|p| p.stream.as_str()) else {
            return;
        };
        let mut invocation = self.group_script.prepare_invoke();
        invocation
            .key(wire::log_key(&self.prefix, stream))
            .key(wire::counter_key(&self.prefix, stream))
            .arg(self.log_size);
        for p in &call {
            invocation
                .arg(if p.event.is_some() { "1" } else { "0" })
                .arg(p.event.as_deref().unwrap_or(""))
                .arg(&p.data);
        }
        let stored: Result<u64, _> = invocation.invoke_async(&mut conn).await;
        match stored {
            Ok(first) => {
                self.metrics
                    .events_published
                    .fetch_add(call.len() as u64, Ordering::Relaxed);
                self.metrics
                    .event_groups_committed
                    .fetch_add(1, Ordering::Relaxed);
                for (id, p) in (first..).zip(call) {
                    let _ = p.reply.send(Ok(Arc::new(Event {
                        id,
                        event: p.event,
                        data: p.data,
                    })));
                }
            }
            Err(e) => {
                let e = self.on_error(e);
                for p in call {
                    let _ = p.reply.send(Err(copy(&e)));
                }
            }
        }
    }
}

/// The same error for each publisher of a failed call.
fn copy(e: &BusError) -> BusError {
    match e {
        BusError::Unavailable(m) => BusError::Unavailable(m.clone()),
        other => BusError::Redis(other.to_string()),
    }
}

/// Splits a group into script calls: per stream in the order of their first publish,
/// each stream's publishes in queue order, at most [`MAX_CALL_EVENTS`] events and
/// [`MAX_CALL_BYTES`] of data per call.
fn split(group: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut calls: Vec<Vec<Pending>> = Vec::new();
    // Per call, its data bytes so far; per stream, the index of its open call.
    let mut bytes: Vec<usize> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for p in group {
        let fits = open.get(&p.stream).copied().filter(|&i| {
            calls[i].len() < MAX_CALL_EVENTS && bytes[i] + p.data.len() <= MAX_CALL_BYTES
        });
        match fits {
            Some(i) => {
                bytes[i] += p.data.len();
                calls[i].push(p);
            }
            None => {
                open.insert(p.stream.clone(), calls.len());
                bytes.push(p.data.len());
                calls.push(vec![p]);
            }
        }
    }
    calls
}

/// A leader's work, polled by its request; if the request is dropped first, the rest
/// runs in a task of its own, so the other publishers of the group are still answered.
struct Detached(Option<BoxFuture<'static, ()>>);

impl Future for Detached {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(work) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        match work.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.0 = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(work);
                }
                Err(_) => tracing::warn!(
                    "a publish group was dropped outside the runtime; its publishers get an error"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(stream: &str, data: &str) -> Pending {
        Pending {
            stream: stream.into(),
            event: None,
            data: data.into(),
            reply: oneshot::channel().0,
        }
    }

    fn shape(calls: &[Vec<Pending>]) -> Vec<(String, Vec<String>)> {
        calls
            .iter()
            .map(|c| {
                (
                    c[0].stream.clone(),
                    c.iter().map(|p| p.data.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_group_is_one_call_per_stream_in_queue_order() {
        let group = vec![
            pending("a", "1"),
            pending("b", "2"),
            pending("a", "3"),
            pending("b", "4"),
            pending("c", "5"),
        ];
        assert_eq!(
            shape(&split(group)),
            vec![
                ("a".into(), vec!["1".into(), "3".into()]),
                ("b".into(), vec!["2".into(), "4".into()]),
                ("c".into(), vec!["5".into()]),
            ]
        );
    }

    #[test]
    fn a_large_backlog_takes_several_calls_bounded_in_events_and_bytes() {
        let group: Vec<_> = (0..MAX_CALL_EVENTS * 2 + 1)
            .map(|i| pending("a", &i.to_string()))
            .collect();
        let calls = split(group);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_CALL_EVENTS, MAX_CALL_EVENTS, 1]
        );
        let flat: Vec<String> = calls.iter().flatten().map(|p| p.data.clone()).collect();
        let want: Vec<String> = (0..MAX_CALL_EVENTS * 2 + 1)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(flat, want, "queue order kept across calls");

        let big = "x".repeat(MAX_CALL_BYTES / 2 + 1);
        let group = vec![
            pending("a", &big),
            pending("a", &big),
            pending("a", "small"),
            pending("a", &"y".repeat(MAX_CALL_BYTES + 1)),
        ];
        assert_eq!(
            split(group).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 1],
            "a call holds at most MAX_CALL_BYTES of data; a larger event goes alone"
        );
    }
}
