//! Write-through persistence of each stream's id counter and bounded replay log in SQLite.

use rusqlite::{params, Connection, OptionalExtension};

use crate::event::Event;

/// A stream's head id (0 for a new stream).
pub(crate) fn head(conn: &Connection, stream: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row(
            "SELECT head FROM stream_heads WHERE stream = ?1",
            [stream],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
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

/// Moves a stream's head to `head` and trims its log to the last `keep` events (inside
/// the caller's transaction, after the events up to `head` were inserted).
pub(crate) fn set_head(
    conn: &Connection,
    stream: &str,
    head: u64,
    keep: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_heads (stream, head) VALUES (?1, ?2)
         ON CONFLICT(stream) DO UPDATE SET head = excluded.head",
    )?
    .execute(params![stream, head as i64])?;
    let floor = head.saturating_sub(keep) as i64;
    if floor > 0 {
        conn.prepare_cached("DELETE FROM stream_events WHERE stream = ?1 AND id <= ?2")?
            .execute(params![stream, floor])?;
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
