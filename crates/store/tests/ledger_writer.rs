//! The ledger writer runs on a thread of its own with its own connection; in the background
//! priority (what `opchub serve` uses, issue 4) that thread and its SQLite connection thread
//! are in Linux's SCHED_IDLE class, so a metering commit never holds up an answer on a busy
//! core. Own test binary: it inspects this process's threads. SQLite by default; PostgreSQL
//! (a fresh schema) when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ev, fresh_store};
use opchub_ledger::checkpoint::LedgerKey;
use opchub_store::ledger::{LedgerConfig, LedgerWriter, Outcome, WriterPriority};
use opchub_store::Backend;
use std::sync::Arc;

/// (thread id, name, scheduling policy) of every thread of this process.
#[cfg(target_os = "linux")]
fn threads() -> Vec<(String, String, i64)> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let tid = entry.unwrap().file_name().to_string_lossy().to_string();
        let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
            continue;
        };
        let (head, rest) = stat.rsplit_once(')').unwrap();
        let name = head.split_once('(').unwrap().1.to_string();
        // Field 41 of stat is the policy; `rest` starts at field 3.
        let policy: i64 = rest.split_whitespace().nth(41 - 3).unwrap().parse().unwrap();
        out.push((tid, name, policy));
    }
    out
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_writer_commits_from_an_idle_class_thread_and_stops_with_its_last_handle() {
    const SCHED_IDLE: i64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let db_threads_before: Vec<String> = threads()
        .into_iter()
        .filter(|(_, name, _)| name.starts_with("sqlx-sqlite"))
        .map(|(tid, _, _)| tid)
        .collect();

    let key = Arc::new(LedgerKey::generate("opchub.test"));
    let config = LedgerConfig {
        priority: WriterPriority::Background,
        ..Default::default()
    };
    let writer = LedgerWriter::start(&store, key, config).await.unwrap();
    // The SQLite threads the writer started (its own connection's). Taken now, because the
    // request pool may open another connection later when the machine is busy (a connection
    // returned a moment late), and that thread rightly keeps the normal class.
    let started_by_writer: Vec<String> = threads()
        .into_iter()
        .filter(|(tid, name, _)| name.starts_with("sqlx-sqlite") && !db_threads_before.contains(tid))
        .map(|(tid, _, _)| tid)
        .collect();

    // A durable append answers with its receipts once committed…
    let first = writer.append(vec![ev(0), ev(1)]).await.unwrap();
    let leaves: Vec<i64> = first
        .iter()
        .map(|o| match o {
            Outcome::Stored(r) => r.leaf_index,
            other => panic!("not appended: {other:?}"),
        })
        .collect();
    assert_eq!(leaves, vec![0, 1]);
    // …background (metering) appends return once queued, and a flush waits for all of them.
    for i in 2..40 {
        writer.append_background(vec![ev(i)], vec![]).await.unwrap();
    }
    writer.flush().await.unwrap();
    // Visible through the request-serving pool, in order.
    assert_eq!(store.ledger_size().await.unwrap(), 40);
    for i in [2, 39] {
        assert_eq!(store.ledger_event(i).await.unwrap().source_event_id, format!("e{i}"));
    }

    let now = threads();
    let writer_threads: Vec<_> = now.iter().filter(|(_, name, _)| name == "ledger-writer").collect();
    assert_eq!(writer_threads.len(), 1, "{now:?}");
    assert_eq!(writer_threads[0].2, SCHED_IDLE, "the writer thread is not in SCHED_IDLE");
    if store.backend() == Backend::Sqlite {
        // The writer's own SQLite connection thread was started by it and inherits its class;
        // the request-serving pool's threads keep the normal class.
        let new_db: Vec<_> = now
            .iter()
            .filter(|(tid, name, _)| name.starts_with("sqlx-sqlite") && started_by_writer.contains(tid))
            .collect();
        assert!(!new_db.is_empty(), "the writer opened no connection of its own: {now:?}");
        assert!(new_db.iter().all(|t| t.2 == SCHED_IDLE), "{new_db:?}");
        assert!(
            now.iter().filter(|(tid, _, _)| db_threads_before.contains(tid)).all(|t| t.2 == 0),
            "{now:?}"
        );
    }
    // Request-serving threads are untouched.
    let workers: Vec<_> = now.iter().filter(|(_, name, _)| name.starts_with("tokio-rt")).collect();
    assert!(!workers.is_empty() && workers.iter().all(|t| t.2 == 0), "{now:?}");

    // The last handle gone, the writer thread ends.
    drop(writer);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while threads().iter().any(|(_, name, _)| name == "ledger-writer") {
        assert!(std::time::Instant::now() < deadline, "the writer thread did not stop");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
