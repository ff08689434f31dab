//! The mark of a publish made by a request with an `Idempotency-Key`: the request
//! runs inside [`scope`], and a bus asks [`next_publish`] as it publishes, so it can
//! store the event together with the mark, and a re-run of the request (after a process
//! died before recording its answer) publishes nothing again.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The keyed request a task is running (see [`next_publish`]).
#[derive(Debug)]
struct Publishing {
    scope: String,
    keep_ms: u64,
    count: AtomicU32,
}

tokio::task_local! {
    static PUBLISHING: Arc<Publishing>;
}

/// Which publish of which keyed request is being made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedPublish {
    /// The request's scope (caller, route and key, hashed).
    pub scope: String,
    /// 1 for its first publish, 2 for the second, …
    pub n: u32,
    /// How long the bus keeps the mark of this publish, in ms.
    pub keep_ms: u64,
}

/// Called by a bus as it publishes: `Some` inside a request with an `Idempotency-Key`
/// (see the module docs).
pub fn next_publish() -> Option<KeyedPublish> {
    PUBLISHING
        .try_with(|p| KeyedPublish {
            scope: p.scope.clone(),
            n: p.count.fetch_add(1, Ordering::Relaxed) + 1,
            keep_ms: p.keep_ms,
        })
        .ok()
}

/// Runs `fut` (a keyed request) so that the publishes it makes carry the mark of
/// `scope`, kept by the bus for `keep_ms`.
pub async fn scope<F: Future>(scope: String, keep_ms: u64, fut: F) -> F::Output {
    let publishing = Arc::new(Publishing {
        scope,
        keep_ms,
        count: AtomicU32::new(0),
    });
    PUBLISHING.scope(publishing, fut).await
}
