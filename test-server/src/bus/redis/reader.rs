//! The one reader task per instance: connects (with backoff), checks the dataset epoch,
//! then loops `XREAD BLOCK` over the streams with local subscribers and fans out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{RedisError, Value};
use tokio::sync::mpsc::error::TrySendError;

use super::{lock, wire, Shared, COMMAND_TIMEOUT};
use crate::event::Event;

/// Longest `XREAD BLOCK`, in milliseconds (a new stream cuts it short with `CLIENT UNBLOCK`).
const BLOCK_MS: u64 = 1000;
/// Entries read per stream and round.
const READ_COUNT: usize = 1000;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Extra time the reader's `XREAD BLOCK` may take beyond its block time before the
/// connection counts as lost: generous, because a saturated instance answers late
/// (a 2 s margin gave false outages at 100k connections on 2 cores). A killed Redis is
/// seen at once anyway (the connection closes).
const READER_SLACK: Duration = Duration::from_secs(10);
/// Health probe interval while no stream has local subscribers.
const IDLE_PING: Duration = Duration::from_secs(1);

/// Runs until the bus stops.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    while !shared.stop.is_cancelled() {
        let connected = connect(&shared).await;
        shared.first_attempt.send_replace(true);
        match connected {
            Ok(reader) => {
                backoff = BACKOFF_MIN;
                match read_loop(&shared, reader).await {
                    Some(error) => lose(&shared, error),
                    None => return,
                }
            }
            Err(e) => {
                shared.health.fail(format!("cannot connect to Redis: {e}"));
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The reader's connection lost: publishes stop until the reader has reconnected.
fn lose(shared: &Shared, error: String) {
    *lock(&shared.cmd) = None;
    shared.reader_id.store(0, Ordering::Release);
    shared.health.fail(error);
}

#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Reply(#[from] wire::BadReply),
}

/// Opens the reader and command connections, checks the epoch, and installs the command
/// connection (from then on publishes are accepted).
async fn connect(shared: &Shared) -> Result<MultiplexedConnection, ConnectError> {
    let mut reader = shared
        .connect(Duration::from_millis(BLOCK_MS) + READER_SLACK)
        .await?;
    let mut cmd = shared.connect(COMMAND_TIMEOUT).await?;
    let reader_id: i64 = ::redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut reader)
        .await?;
    let key = wire::epoch_key(&shared.prefix);
    let (epoch,): (Value,) = ::redis::pipe()
        .cmd("SET")
        .arg(&key)
        .arg(uuid::Uuid::new_v4().to_string())
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(&key)
        .query_async(&mut cmd)
        .await?;
    let epoch = wire::string(&epoch)?;
    let previous = lock(&shared.epoch).replace(epoch.clone());
    if previous.is_some_and(|p| p != epoch) {
        close_all(shared);
    }
    shared.reader_id.store(reader_id, Ordering::Release);
    *lock(&shared.cmd) = Some(cmd);
    shared.health.ok();
    Ok(reader)
}

/// Redis lost its data (restarted without persistence): ids restart, so every local
/// subscriber is closed; clients reconnect with their last id and get a `reset`.
fn close_all(shared: &Shared) {
    let mut map = lock(&shared.topics);
    let mut closed = 0usize;
    for topic in map.values() {
        let mut st = lock(&topic.st);
        closed += st.subscribers.len();
        st.subscribers.clear();
    }
    map.clear();
    tracing::warn!(
        closed,
        "Redis lost its data (new epoch): closed local subscribers; they resume with a reset"
    );
}

/// Reads and fans out until an error (returned) or the stop signal (`None`).
async fn read_loop(shared: &Shared, mut reader: MultiplexedConnection) -> Option<String> {
    loop {
        if lock(&shared.cmd).is_none() {
            return Some(shared.health.last_error());
        }
        let streams: Vec<(String, u64)> = lock(&shared.topics)
            .iter()
            .filter_map(|(k, t)| lock(&t.st).cursor.map(|c| (k.clone(), c)))
            .collect();
        if streams.is_empty() {
            tokio::select! {
                _ = shared.stop.cancelled() => return None,
                _ = shared.wake.notified() => continue,
                _ = tokio::time::sleep(IDLE_PING) => {}
            }
            let pong: Result<Value, RedisError> =
                ::redis::cmd("PING").query_async(&mut reader).await;
            if let Err(e) = pong {
                return Some(e.to_string());
            }
            continue;
        }
        let mut xread = ::redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS");
        for (stream, _) in &streams {
            xread.arg(wire::log_key(&shared.prefix, stream));
        }
        for (_, cursor) in &streams {
            xread.arg(format!("{cursor}-0"));
        }
        let reply: Value = tokio::select! {
            _ = shared.stop.cancelled() => return None,
            r = xread.query_async(&mut reader) => match r {
                Ok(v) => v,
                Err(e) => return Some(e.to_string()),
            },
        };
        let batches = match wire::read(&reply) {
            Ok(b) => b,
            Err(e) => return Some(e.to_string()),
        };
        let strip = format!("{}:s:", shared.prefix);
        for (key, events) in batches {
            if let Some(stream) = key.strip_prefix(&strip) {
                fan_out(shared, stream, events);
            }
        }
    }
}

/// Delivers events (in id order) to the stream's local subscribers; a full queue closes
/// its subscriber, exactly as the in-process bus does.
fn fan_out(shared: &Shared, stream: &str, events: Vec<Event>) {
    let mut map = lock(&shared.topics);
    let Some(topic) = map.get(stream).cloned() else {
        return;
    };
    let mut st = lock(&topic.st);
    let mut lagged = 0u64;
    for event in events {
        if st.cursor.is_some_and(|c| event.id <= c) {
            continue;
        }
        let event = Arc::new(event);
        st.subscribers.retain(|_, sub| {
            if event.id <= sub.skip {
                return true;
            }
            match sub.tx.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    lagged += 1;
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        st.cursor = Some(event.id);
    }
    if st.subscribers.is_empty() {
        drop(st);
        map.remove(stream);
    }
    if lagged > 0 {
        shared
            .metrics
            .subscribers_lagged
            .fetch_add(lagged, Ordering::Relaxed);
        tracing::info!(stream = %stream, lagged, "closed subscribers that fell behind");
    }
}
