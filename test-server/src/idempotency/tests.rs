use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};

use super::*;
use crate::db::Db;
use crate::idempotency::store::SqliteStore;

#[test]
fn keys_are_visible_ascii_up_to_255() {
    assert_eq!(
        valid_key(&HeaderValue::from_static("a-1_B")).unwrap(),
        "a-1_B"
    );
    for bad in ["", "has space", &"k".repeat(256)] {
        assert!(
            valid_key(&HeaderValue::from_str(bad).unwrap()).is_err(),
            "{bad:?}"
        );
    }
    assert!(valid_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
}

#[test]
fn outages_and_auth_failures_are_not_remembered() {
    for s in [200, 201, 404, 413, 422] {
        assert!(remembered(StatusCode::from_u16(s).unwrap()), "{s}");
    }
    for s in [401, 403, 408, 429, 500, 503] {
        assert!(!remembered(StatusCode::from_u16(s).unwrap()), "{s}");
    }
}

#[test]
fn hash_separates_its_parts() {
    assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
    assert_eq!(hash(&[b"x"]).len(), 64);
}

fn record(fp: &str) -> Record {
    Record {
        fingerprint: fp.into(),
        status: 201,
        content_type: Some("application/json".into()),
        body: br#"{"id":"7"}"#.to_vec(),
    }
}

#[tokio::test]
async fn a_claim_runs_once_then_answers_from_the_record_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = Db::open(&path).unwrap();
    let store = IdempotencyStore::Sqlite(SqliteStore::open(&db).unwrap());
    let lease = Duration::from_secs(10);
    let Claim::Owned(owner) = store.claim("s", "fp", lease).await.unwrap() else {
        panic!("the first claim owns the key")
    };
    assert_eq!(
        store.claim("s", "fp", lease).await.unwrap(),
        Claim::Running { same_body: true }
    );
    assert_eq!(
        store.claim("s", "other", lease).await.unwrap(),
        Claim::Running { same_body: false }
    );
    store
        .complete("s", &record("fp"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.claim("s", "fp", lease).await.unwrap(),
        Claim::Done(record("fp"))
    );
    // A release by the owner after completion leaves the record alone.
    store.release("s", &owner).await.unwrap();
    drop(store);
    drop(db);
    let db = Db::open(&path).unwrap();
    let store = IdempotencyStore::Sqlite(SqliteStore::open(&db).unwrap());
    assert_eq!(
        store.claim("s", "fp", lease).await.unwrap(),
        Claim::Done(record("fp"))
    );
}

#[tokio::test]
async fn released_claims_expired_records_and_a_dead_process_claims_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = Db::open(&path).unwrap();
    let store = IdempotencyStore::Sqlite(SqliteStore::open(&db).unwrap());
    let lease = Duration::from_secs(10);
    let Claim::Owned(owner) = store.claim("a", "fp", lease).await.unwrap() else {
        panic!()
    };
    store.release("a", &owner).await.unwrap();
    assert!(matches!(
        store.claim("a", "fp", lease).await.unwrap(),
        Claim::Owned(_)
    ));
    store
        .complete("b", &record("fp"), Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(matches!(
        store.claim("b", "fp", lease).await.unwrap(),
        Claim::Owned(_)
    ));
    // "a" is claimed and never completed: the next process on this file drops the claim.
    drop(store);
    drop(db);
    let db = Db::open(&path).unwrap();
    let store = IdempotencyStore::Sqlite(SqliteStore::open(&db).unwrap());
    assert!(matches!(
        store.claim("a", "fp", lease).await.unwrap(),
        Claim::Owned(_)
    ));
}
