use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// Records every delivered event, so tests can check order and "stored before delivered".
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Arc<Event>)>>,
}

impl Deliver for Recorder {
    fn deliver(&self, stream: &str, event: &Arc<Event>) {
        self.seen
            .lock()
            .unwrap()
            .push((stream.to_owned(), Arc::clone(event)));
    }
}

fn start(dir: &std::path::Path, keep: u64) -> (Db, GroupCommit, Arc<Recorder>) {
    start_counted(dir, keep, Arc::default())
}

fn start_counted(
    dir: &std::path::Path,
    keep: u64,
    metrics: Arc<Metrics>,
) -> (Db, GroupCommit, Arc<Recorder>) {
    let db = Db::open(&dir.join("log.db")).unwrap();
    let recorder = Arc::new(Recorder::default());
    let writer = GroupCommit::start(db.clone(), keep, recorder.clone(), metrics).unwrap();
    (db, writer, recorder)
}

/// Occupies the writer with an exclusive step until the returned sender is dropped, so
/// appends pile up in its queue meanwhile.
async fn hold_writer(writer: &GroupCommit) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = tokio::sync::oneshot::channel();
    let w = writer.clone();
    tokio::spawn(async move {
        w.exclusive(move |_| {
            let _ = held.send(());
            let _ = released.recv();
            Ok(())
        })
        .await
    });
    is_held.await.unwrap();
    release
}

/// Waits (bounded) until `n` commands are waiting in the writer's queue.
async fn until_queued(writer: &GroupCommit, n: usize) {
    for _ in 0..2000 {
        if writer.queued() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{} queued, expected {n}", writer.queued());
}

#[tokio::test]
async fn concurrent_appends_get_gapless_increasing_ids_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (db, writer, recorder) = start(dir.path(), 10_000);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let w = writer.clone();
            let stream = if i % 2 == 0 { "a" } else { "b" };
            tokio::spawn(async move { w.append(stream.into(), None, format!("{i}"), None).await })
        })
        .collect();
    let mut answered = Vec::new();
    for t in tasks {
        answered.push(t.await.unwrap().unwrap());
    }
    let seen = recorder.seen.lock().unwrap().clone();
    for stream in ["a", "b"] {
        let ids: Vec<u64> = seen
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, e)| e.id)
            .collect();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>(), "delivered in id order");
    }
    // Every answer is the delivered event itself, and the stored log agrees.
    for e in &answered {
        assert!(seen.iter().any(|(_, d)| Arc::ptr_eq(d, e)));
    }
    let (head, log) = db.call(|c| log_store::load(c, "a", 1000)).await.unwrap();
    assert_eq!(head, 100);
    assert_eq!(log.len(), 100);
    assert!(log.windows(2).all(|w| w[1].id == w[0].id + 1));
}

#[tokio::test]
async fn appends_that_wait_together_share_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::default());
    let (_db, writer, recorder) = start_counted(dir.path(), 10_000, Arc::clone(&metrics));
    let release = hold_writer(&writer).await;
    let waiting: Vec<_> = (0..50)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.append("s".into(), None, format!("{i}"), None).await })
        })
        .collect();
    until_queued(&writer, 50).await;
    assert!(
        recorder.seen.lock().unwrap().is_empty(),
        "nothing delivered before it is stored"
    );
    drop(release);
    for (i, t) in waiting.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap().id, i as u64 + 1);
    }
    assert_eq!(
        metrics.event_groups_committed.load(Ordering::Relaxed),
        1,
        "the 50 that waited share one commit"
    );
    assert_eq!(recorder.seen.lock().unwrap().len(), 50);
}

#[tokio::test]
async fn a_failing_append_fails_alone_and_is_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (db, writer, recorder) = start(dir.path(), 10_000);
    db.call(|c| {
        c.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON stream_events WHEN NEW.data = 'refused'
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END;",
        )
    })
    .await
    .unwrap();
    writer
        .append("s".into(), None, "first".into(), None)
        .await
        .unwrap();
    let release = hold_writer(&writer).await;
    let group: Vec<_> = ["a", "refused", "c"]
        .into_iter()
        .map(|d| {
            let w = writer.clone();
            tokio::spawn(async move { w.append("s".into(), None, d.into(), None).await })
        })
        .collect();
    until_queued(&writer, 3).await;
    drop(release);
    let mut results = Vec::new();
    for t in group {
        results.push(t.await.unwrap());
    }
    assert_eq!(results[0].as_ref().unwrap().id, 2);
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("refused by test trigger"), "{err}");
    assert_eq!(
        results[2].as_ref().unwrap().id,
        3,
        "no id is spent on the failed append"
    );
    let delivered: Vec<String> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| e.data.clone())
        .collect();
    assert_eq!(delivered, ["first", "a", "c"]);
    let (head, log) = db.call(|c| log_store::load(c, "s", 100)).await.unwrap();
    assert_eq!(head, 3);
    assert_eq!(
        log.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["first", "a", "c"]
    );
}

#[tokio::test]
async fn exclusive_work_runs_between_the_appends_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, writer, _recorder) = start(dir.path(), 10_000);
    let release = hold_writer(&writer).await;
    let before = tokio::spawn({
        let w = writer.clone();
        async move { w.append("s".into(), None, "1".into(), None).await }
    });
    until_queued(&writer, 1).await;
    let read = tokio::spawn({
        let w = writer.clone();
        async move { w.exclusive(|c| Ok(log_store::head(c, "s")?)).await }
    });
    until_queued(&writer, 2).await;
    let after = tokio::spawn({
        let w = writer.clone();
        async move { w.append("s".into(), None, "2".into(), None).await }
    });
    until_queued(&writer, 3).await;
    drop(release);
    assert_eq!(before.await.unwrap().unwrap().id, 1);
    assert_eq!(
        read.await.unwrap().unwrap(),
        1,
        "sees the appends queued before it only"
    );
    assert_eq!(after.await.unwrap().unwrap().id, 2);
}

#[tokio::test]
async fn the_log_is_trimmed_to_keep_events() {
    let dir = tempfile::tempdir().unwrap();
    let (db, writer, _recorder) = start(dir.path(), 5);
    for i in 0..12 {
        writer
            .append("s".into(), None, i.to_string(), None)
            .await
            .unwrap();
    }
    let n: i64 = db
        .call(|c| c.query_row("SELECT COUNT(*) FROM stream_events", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(n, 5);
}

#[tokio::test]
async fn the_log_is_trimmed_in_batches_and_keeps_at_least_keep_events() {
    let dir = tempfile::tempdir().unwrap();
    // keep 64: the oldest rows go 4 at a time.
    let (db, writer, _recorder) = start(dir.path(), 64);
    for i in 1..=300u64 {
        writer
            .append("s".into(), None, i.to_string(), None)
            .await
            .unwrap();
        let (rows, oldest): (i64, i64) = db
            .call(|c| {
                c.query_row("SELECT COUNT(*), MIN(id) FROM stream_events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .await
            .unwrap();
        let kept = i.min(64) as i64;
        assert!(
            rows >= kept && rows < kept + 4,
            "{rows} rows after {i} events"
        );
        assert_eq!(oldest, i as i64 - rows + 1, "the log is the newest rows");
    }
    let (head, log) = db.call(|c| log_store::load(c, "s", 64)).await.unwrap();
    assert_eq!(head, 300);
    assert_eq!(log.first().map(|e| e.id), Some(237));
}

#[tokio::test]
async fn a_head_written_by_an_earlier_version_is_continued() {
    let dir = tempfile::tempdir().unwrap();
    let (db, writer, _recorder) = start(dir.path(), 100);
    db.call(|c| {
        c.execute(
            "INSERT INTO stream_heads (stream, head) VALUES ('s', 41)",
            [],
        )
    })
    .await
    .unwrap();
    let e = writer
        .append("s".into(), None, "x".into(), None)
        .await
        .unwrap();
    assert_eq!(e.id, 42);
    assert_eq!(
        writer
            .append("s".into(), None, "y".into(), None)
            .await
            .unwrap()
            .id,
        43
    );
}

#[tokio::test]
async fn appends_ready_on_one_worker_at_once_share_one_transaction() {
    // One worker thread: the tasks run one after the other, so the first append finds
    // nobody committing. It lets the others, already ready, queue behind it first.
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::default());
    let (_db, writer, recorder) = start_counted(dir.path(), 10_000, Arc::clone(&metrics));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.append("s".into(), None, format!("{i}"), None).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap().id, i as u64 + 1);
    }
    assert_eq!(
        metrics.event_groups_committed.load(Ordering::Relaxed),
        1,
        "the 20 appends ready together share one commit"
    );
    assert_eq!(recorder.seen.lock().unwrap().len(), 20);
}

#[tokio::test]
async fn a_publisher_cancelled_before_its_commit_leaves_the_queue_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (db, writer, recorder) = start(dir.path(), 10_000);
    let mut cancelled = Box::pin(writer.append("s".into(), None, "a".into(), None));
    assert!(
        futures_util::poll!(&mut cancelled).is_pending(),
        "the first append yields before it commits"
    );
    // Queued behind the first append, which is now dropped before committing.
    let mut waiting = Box::pin(writer.append("s".into(), None, "b".into(), None));
    assert!(futures_util::poll!(&mut waiting).is_pending());
    drop(cancelled);
    let b = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the append behind a cancelled one is committed")
        .unwrap();
    assert_eq!(b.id, 2, "the cancelled append was stored all the same");
    let (head, log) = db.call(|c| log_store::load(c, "s", 100)).await.unwrap();
    assert_eq!(head, 2);
    assert_eq!(
        log.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(recorder.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn ids_start_again_after_an_exclusive_step_removed_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, writer, _recorder) = start(dir.path(), 10_000);
    for i in 1..=3 {
        let e = writer
            .append("s".into(), None, "x".into(), None)
            .await
            .unwrap();
        assert_eq!(e.id, i);
    }
    writer
        .exclusive(|c| Ok(log_store::remove(c, "s")?))
        .await
        .unwrap();
    let e = writer
        .append("s".into(), None, "y".into(), None)
        .await
        .unwrap();
    assert_eq!(
        e.id, 1,
        "the head remembered before the removal is forgotten"
    );
}
