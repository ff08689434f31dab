//! Write-through persistence of each stream's id counter and bounded replay log in SQLite.

use rusqlite::{params, Connection};

use crate::event::Event;

/// A stream's head id (0 for a new stream): its newest stored event, which trimming
/// never removes. `stream_heads`, where earlier versions wrote the head with every
/// commit, still counts as a floor, so their files open with the same heads.
pub(crate) fn head(conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached(
            "SELECT MAX(h) FROM (
               SELECT MAX(id) AS h FROM stream_events WHERE stream = ?1
               UNION ALL SELECT head FROM stream_heads WHERE stream = ?1)",
        )?
        .query_row([stream], |r| r.get::<_, Option<i64>>(0))?
        .map_or(0, |h| h.max(0) as u64))
}

/// Loads a stream's head id and its last `keep` logged events (oldest first).
pub(crate) fn load(
    conn: &Connection,
    stream: &str,
    keep: u64,
) -> rusqlite::Result<(u64, Vec<Event>)> {
    let head = head(conn, stream)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, event, data FROM stream_events WHERE stream = ?1 AND id > ?2 ORDER BY id",
    )?;
    let floor = head.saturating_sub(keep) as i64;
    let events = stmt
        .query_map(params![stream, floor], |r| {
            Ok(Event {
                id: r.get::<_, i64>(0)? as u64,
                event: r.get(1)?,
                data: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((head, events))
}

/// Inserts one event (inside the caller's transaction; ids come from [`head`]).
pub(crate) fn insert(
    conn: &Connection,
    stream: &str,
    id: u64,
    name: Option<&str>,
    data: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_events (stream, id, event, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![stream, id as i64, name, data])?;
    Ok(())
}

/// Trims a stream's log to its last `keep` events, after the commit that moved its head
/// from `before` to `head` (inside that transaction). The oldest rows go a batch at a
/// time, once every `keep / 16` events, so most commits write only the page their new
/// events went to: the log holds at most `keep + keep / 16` events (replays and ring
/// loads still read only the last `keep`).
pub(crate) fn trim(
    conn: &Connection,
    stream: &str,
    before: u64,
    head: u64,
    keep: u64,
) -> rusqlite::Result<()> {
    let step = (keep / 16).max(1);
    let floor = head.saturating_sub(keep);
    if floor > 0 && floor / step > before.saturating_sub(keep) / step {
        conn.prepare_cached("DELETE FROM stream_events WHERE stream = ?1 AND id <= ?2")?
            .execute(params![stream, floor as i64])?;
    }
    Ok(())
}

/// Forgets a stream entirely (used when finished video jobs are cleaned up).
pub(crate) fn remove(conn: &mut Connection, stream: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM stream_events WHERE stream = ?1", [stream])?;
    tx.execute("DELETE FROM stream_heads WHERE stream = ?1", [stream])?;
    tx.commit()
}
