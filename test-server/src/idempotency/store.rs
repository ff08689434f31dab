//! Where idempotency records live: the SQLite file (one instance) or Redis (every instance
//! on that Redis sees them).
//!
//! A record is claimed (running, with a lease) before its request runs and completed with
//! the answer afterwards; both stores make the claim atomic, so of two concurrent requests
//! with one key exactly one runs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::AsyncConnectionConfig;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::bus::BusError;
use crate::db::{Db, StoreError};
use crate::error::ApiError;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// SHA-256 (hex) of the first request's body.
    pub fingerprint: String,
    /// Its status code.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody had it: run the request, then [`IdempotencyStore::complete`] or
    /// [`IdempotencyStore::release`] with this owner token.
    Owned(String),
    /// Another request with this key is running; `same_body` tells whether its body was
    /// the same.
    Running {
        /// The running request had the same body fingerprint.
        same_body: bool,
    },
    /// The key was used and its answer remembered.
    Done(Record),
}

/// Idempotency records; cheap to clone.
#[derive(Debug, Clone)]
pub enum IdempotencyStore {
    /// In the server's SQLite file.
    Sqlite(SqliteStore),
    /// In Redis, beside the bus's keys.
    Redis(Arc<RedisStore>),
}

impl IdempotencyStore {
    /// Claims `scope` for a request whose body hashes to `fingerprint`.
    pub async fn claim(
        &self,
        scope: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, ApiError> {
        match self {
            IdempotencyStore::Sqlite(s) => s.claim(scope, fingerprint, lease).await,
            IdempotencyStore::Redis(r) => r.claim(scope, fingerprint, lease).await,
        }
    }

    /// Remembers the answer for `ttl`.
    pub async fn complete(
        &self,
        scope: &str,
        record: &Record,
        ttl: Duration,
    ) -> Result<(), ApiError> {
        match self {
            IdempotencyStore::Sqlite(s) => s.complete(scope, record, ttl).await,
            IdempotencyStore::Redis(r) => r.complete(scope, record, ttl).await,
        }
    }

    /// Gives a claim up (the answer is not remembered, so a retry runs again).
    pub async fn release(&self, scope: &str, owner: &str) -> Result<(), ApiError> {
        match self {
            IdempotencyStore::Sqlite(s) => s.release(scope, owner).await,
            IdempotencyStore::Redis(r) => r.release(scope, owner).await,
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn owner_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    owner       TEXT,
    status      INTEGER,
    content_type TEXT,
    body        BLOB,
    expires_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_ms);
";

/// How often expired records are deleted.
const PURGE_EVERY_MS: i64 = 60_000;

/// Records in the SQLite file: a row per key; `status` is NULL while its request runs.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
    last_purge: Arc<AtomicI64>,
}

impl SqliteStore {
    /// Creates the table and drops what no request will complete: claims of a previous
    /// process (this file has one server) and expired records.
    pub fn open(db: &Db) -> Result<Self, StoreError> {
        db.blocking(|c| {
            c.execute_batch(SCHEMA)?;
            c.execute(
                "DELETE FROM idempotent_publishes WHERE expires_ms <= ?1",
                [now_ms()],
            )?;
            c.execute(
                "DELETE FROM idempotency WHERE status IS NULL OR expires_ms <= ?1",
                [now_ms()],
            )
        })?;
        Ok(SqliteStore {
            db: db.clone(),
            last_purge: Arc::new(AtomicI64::new(now_ms())),
        })
    }

    async fn claim(
        &self,
        scope: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, ApiError> {
        let (scope, fp) = (scope.to_owned(), fingerprint.to_owned());
        let purge = {
            let now = now_ms();
            let last = self.last_purge.load(Ordering::Relaxed);
            now - last >= PURGE_EVERY_MS
                && self
                    .last_purge
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
        };
        let claim = self
            .db
            .call(move |c| {
                let now = now_ms();
                let tx = c.transaction()?;
                if purge {
                    tx.execute("DELETE FROM idempotency WHERE expires_ms <= ?1", [now])?;
                    tx.execute(
                        "DELETE FROM idempotent_publishes WHERE expires_ms <= ?1",
                        [now],
                    )?;
                }
                let row = tx
                    .query_row(
                        "SELECT fingerprint, status, content_type, body, expires_ms FROM idempotency WHERE scope = ?1",
                        [&scope],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, Option<u16>>(1)?,
                                r.get::<_, Option<String>>(2)?,
                                r.get::<_, Option<Vec<u8>>>(3)?,
                                r.get::<_, i64>(4)?,
                            ))
                        },
                    )
                    .optional()?;
                let claim = match row {
                    Some((fingerprint, Some(status), content_type, body, expires))
                        if expires > now =>
                    {
                        Claim::Done(Record {
                            fingerprint,
                            status,
                            content_type,
                            body: body.unwrap_or_default(),
                        })
                    }
                    Some((running, None, _, _, expires)) if expires > now => Claim::Running {
                        same_body: running == fp,
                    },
                    _ => {
                        let owner = owner_token();
                        tx.execute(
                            "INSERT OR REPLACE INTO idempotency (scope, fingerprint, owner, status, content_type, body, expires_ms) VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4)",
                            rusqlite::params![scope, fp, owner, now + ms(lease)],
                        )?;
                        Claim::Owned(owner)
                    }
                };
                tx.commit()?;
                Ok(claim)
            })
            .await?;
        Ok(claim)
    }

    async fn complete(&self, scope: &str, record: &Record, ttl: Duration) -> Result<(), ApiError> {
        let (scope, r) = (scope.to_owned(), record.clone());
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO idempotency (scope, fingerprint, owner, status, content_type, body, expires_ms) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6)",
                    rusqlite::params![scope, r.fingerprint, r.status, r.content_type, r.body, now_ms() + ms(ttl)],
                )
            })
            .await?;
        Ok(())
    }

    async fn release(&self, scope: &str, owner: &str) -> Result<(), ApiError> {
        let (scope, owner) = (scope.to_owned(), owner.to_owned());
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM idempotency WHERE scope = ?1 AND owner = ?2 AND status IS NULL",
                    [scope, owner],
                )
            })
            .await?;
        Ok(())
    }
}

/// `KEYS[1]` the record; `ARGV[1]` the claim to set, `ARGV[2]` its lease in ms. Returns
/// the record that was there (nothing was set), or nil (the claim was set).
const CLAIM_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// `KEYS[1]` the record; `ARGV[1]` the owner's claim. Deletes the claim if it is still
/// that owner's.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// A record's value in Redis: a claim while running, the answer once done.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum Stored {
    Running { fingerprint: String, owner: String },
    Done(Record),
}

/// How long a Redis command may take before the store counts as unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Records in Redis, under `tidings:idem:<scope>` with a TTL (the lease while running).
pub struct RedisStore {
    client: ::redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    claim: ::redis::Script,
    release: ::redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Bus(BusError::Unavailable(format!("idempotency records: {e}")))
}

impl RedisStore {
    /// A store on the Redis at `url`; connects on first use and again after an error.
    pub fn new(url: &str) -> Result<Self, BusError> {
        let client = crate::bus::redis_client(url)?;
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            claim: ::redis::Script::new(CLAIM_SCRIPT),
            release: ::redis::Script::new(RELEASE_SCRIPT),
        })
    }

    fn key(scope: &str) -> String {
        format!("tidings:idem:{scope}")
    }

    async fn conn(&self) -> Result<MultiplexedConnection, ApiError> {
        if let Some(c) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(c);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the connection; an error drops it so the next call connects again.
    async fn with<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ::redis::RedisError>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(REDIS_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(unavailable(e))
            }
            Err(_) => {
                *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(unavailable("timed out"))
            }
        }
    }

    async fn claim(
        &self,
        scope: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, ApiError> {
        let owner = owner_token();
        let mine = serde_json::to_string(&Stored::Running {
            fingerprint: fingerprint.to_owned(),
            owner: owner.clone(),
        })
        .map_err(|e| unavailable(format!("encode: {e}")))?;
        let key = Self::key(scope);
        let found: Option<String> = self
            .with(|mut c| async move {
                self.claim
                    .key(key)
                    .arg(&mine)
                    .arg(ms(lease))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let Some(found) = found else {
            return Ok(Claim::Owned(owner));
        };
        match serde_json::from_str::<Stored>(&found) {
            Ok(Stored::Done(record)) => Ok(Claim::Done(record)),
            Ok(Stored::Running {
                fingerprint: running,
                ..
            }) => Ok(Claim::Running {
                same_body: running == fingerprint,
            }),
            Err(e) => Err(ApiError::Bus(BusError::Redis(format!(
                "unreadable idempotency record: {e}"
            )))),
        }
    }

    async fn complete(&self, scope: &str, record: &Record, ttl: Duration) -> Result<(), ApiError> {
        let value = serde_json::to_string(&Stored::Done(record.clone()))
            .map_err(|e| unavailable(format!("encode: {e}")))?;
        let key = Self::key(scope);
        self.with(|mut c| async move {
            ::redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms(ttl))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn release(&self, scope: &str, owner: &str) -> Result<(), ApiError> {
        // The claim's exact value is needed to delete only our own; it is rebuilt from
        // what the claim wrote, so read it back and match the owner instead.
        let key = Self::key(scope);
        let found: Option<String> = {
            let key = key.clone();
            self.with(|mut c| async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await })
                .await?
        };
        let Some(found) = found else { return Ok(()) };
        match serde_json::from_str::<Stored>(&found) {
            Ok(Stored::Running { owner: o, .. }) if o == owner => {
                self.with(|mut c| async move {
                    self.release
                        .key(key)
                        .arg(found)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
