//! Team answers (seed 000).

use rusqlite::{params, Connection, Row};
use serde::{Deserialize, Serialize};

/// A stored team answer, as the seed's `create` message carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TeamAnswer {
    /// Row id.
    pub id: i64,
    /// Video file name.
    pub video_name: String,
    /// Frame index in the video.
    pub frame_index: i64,
    /// Frame URL.
    pub url: String,
    /// Question and answer text.
    pub qa: Option<String>,
    /// Query number.
    pub query_index: Option<i64>,
    /// Competition round.
    pub round: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Body of `POST /api/team-answers/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeamAnswer {
    /// Required.
    pub video_name: String,
    /// Required.
    pub frame_index: i64,
    /// Required.
    pub url: String,
    /// Optional.
    #[serde(default)]
    pub qa: Option<String>,
    /// Optional.
    #[serde(default)]
    pub query_index: Option<i64>,
    /// Optional.
    #[serde(default)]
    pub round: Option<String>,
}

fn row(r: &Row<'_>) -> rusqlite::Result<TeamAnswer> {
    Ok(TeamAnswer {
        id: r.get(0)?,
        video_name: r.get(1)?,
        frame_index: r.get(2)?,
        url: r.get(3)?,
        qa: r.get(4)?,
        query_index: r.get(5)?,
        round: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

const COLS: &str =
    "id, video_name, frame_index, url, qa, query_index, round, created_at, updated_at";

/// Newest first.
pub fn list(c: &Connection) -> rusqlite::Result<Vec<TeamAnswer>> {
    let mut s = c.prepare_cached(&format!("SELECT {COLS} FROM team_answers ORDER BY id DESC"))?;
    let rows = s.query_map([], row)?.collect();
    rows
}

/// Inserts and returns the stored row.
pub fn create(c: &Connection, n: &NewTeamAnswer, now: &str) -> rusqlite::Result<TeamAnswer> {
    c.execute(
        "INSERT INTO team_answers (video_name, frame_index, url, qa, query_index, round, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![n.video_name, n.frame_index, n.url, n.qa, n.query_index, n.round, now],
    )?;
    let id = c.last_insert_rowid();
    c.query_row(
        &format!("SELECT {COLS} FROM team_answers WHERE id = ?1"),
        [id],
        row,
    )
}

/// Deletes one; false when it did not exist.
pub fn delete(c: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM team_answers WHERE id = ?1", [id])? > 0)
}

/// Deletes all and returns their ids.
pub fn delete_all(c: &mut Connection) -> rusqlite::Result<Vec<i64>> {
    let tx = c.transaction()?;
    let ids = {
        let mut s = tx.prepare("SELECT id FROM team_answers ORDER BY id")?;
        let ids = s
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        ids
    };
    tx.execute("DELETE FROM team_answers", [])?;
    tx.commit()?;
    Ok(ids)
}
