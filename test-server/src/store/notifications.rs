//! Notifications (seeds 001, 004), one list per user.

use rusqlite::{params, Connection, Row};
use serde::{Deserialize, Serialize};

/// A stored notification, as `new_notification` carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// Recipient (`sub`).
    pub user_id: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Kind, e.g. `info`, `answer`, `comment`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the user has read it.
    pub read: bool,
    /// RFC 3339.
    pub created_at: String,
}

fn row(r: &Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        user_id: r.get(1)?,
        title: r.get(2)?,
        message: r.get(3)?,
        kind: r.get(4)?,
        read: r.get::<_, i64>(5)? != 0,
        created_at: r.get(6)?,
    })
}

const COLS: &str = "id, user_id, title, message, type, read, created_at";

/// A user's notifications, newest first.
pub fn list(c: &Connection, user: &str) -> rusqlite::Result<Vec<Notification>> {
    let mut s = c.prepare_cached(&format!(
        "SELECT {COLS} FROM notifications WHERE user_id = ?1 ORDER BY id DESC"
    ))?;
    let rows = s.query_map([user], row)?.collect();
    rows
}

/// Unread count of a user.
pub fn unread(c: &Connection, user: &str) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM notifications WHERE user_id = ?1 AND read = 0",
        [user],
        |r| r.get(0),
    )
}

/// Inserts one.
pub fn create(
    c: &Connection,
    user: &str,
    title: &str,
    message: &str,
    kind: &str,
    now: &str,
) -> rusqlite::Result<Notification> {
    c.execute(
        "INSERT INTO notifications (user_id, title, message, type, read, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        params![user, title, message, kind, now],
    )?;
    let id = c.last_insert_rowid();
    c.query_row(
        &format!("SELECT {COLS} FROM notifications WHERE id = ?1"),
        [id],
        row,
    )
}

/// Marks one of the user's notifications read; false when it is not theirs or unknown.
pub fn mark_read(c: &Connection, user: &str, id: i64) -> rusqlite::Result<bool> {
    let n = c.query_row(
        "SELECT COUNT(*) FROM notifications WHERE id = ?1 AND user_id = ?2",
        params![id, user],
        |r| r.get::<_, i64>(0),
    )?;
    if n == 0 {
        return Ok(false);
    }
    c.execute(
        "UPDATE notifications SET read = 1 WHERE id = ?1 AND user_id = ?2",
        params![id, user],
    )?;
    Ok(true)
}

/// Marks all of the user's notifications read; returns how many changed.
pub fn mark_all_read(c: &Connection, user: &str) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE notifications SET read = 1 WHERE user_id = ?1 AND read = 0",
        [user],
    )
}

/// Deletes one of the user's notifications; false when it is not theirs or unknown.
pub fn delete(c: &Connection, user: &str, id: i64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "DELETE FROM notifications WHERE id = ?1 AND user_id = ?2",
        params![id, user],
    )? > 0)
}
