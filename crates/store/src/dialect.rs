//! Every difference between the two backends, in one place. The rest of the crate runs the
//! same portable SQL (`$n` parameters) on SQLite and PostgreSQL and asks this module for what
//! cannot be portable: which backend a URL names, how connections are set up, how a write
//! transaction begins, placeholder lists on the hot path, row locks, and the JSON aggregation
//! `verify` reads pages with.

use crate::{Backend, Tx};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

/// The backend a database URL names, if any (`postgres…` or `sqlite…`).
pub(crate) fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

/// The URL to connect with: SQLite files are created if missing (`mode=rwc`) unless the URL
/// names a mode itself.
pub(crate) fn connect_url(backend: Backend, url: &str) -> String {
    if backend == Backend::Sqlite && !url.contains("mode=") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_string()
    }
}

/// Pool options for `backend`: at most `max_connections` (default 8 on SQLite, 16 on
/// PostgreSQL) and the per-connection settings run after each connect.
pub(crate) fn pool_options(backend: Backend, opts: AnyPoolOptions, max_connections: Option<u32>) -> AnyPoolOptions {
    match backend {
        Backend::Sqlite => opts.max_connections(max_connections.unwrap_or(8)).after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode=WAL").await?;
                conn.execute("PRAGMA busy_timeout=10000").await?;
                conn.execute("PRAGMA foreign_keys=ON").await?;
                conn.execute("PRAGMA synchronous=NORMAL").await?;
                // Ledger appends touch the same index and rollup pages batch after batch: keep
                // them in memory (32 MiB per connection, used only when needed). The WAL is
                // copied back every 1000 pages (SQLite's default, explicit here): measured, an
                // 8192-page checkpoint gave ingestion a few percent more but stalled gateway
                // answers for hundreds of milliseconds while it ran on the same core.
                conn.execute("PRAGMA cache_size=-32768").await?;
                conn.execute("PRAGMA wal_autocheckpoint=1000").await?;
                conn.execute("PRAGMA temp_store=MEMORY").await?;
                Ok(())
            })
        }),
        // Plan each execution with its real parameters and current table size: a generic plan
        // cached while the ledger was still empty would keep scanning it whole as it grows.
        // A server that does not give a connection within 5 s (restarting, unreachable) fails
        // the request instead of holding it for sqlx's default 30 s.
        Backend::Postgres => opts
            .max_connections(max_connections.unwrap_or(16))
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    Ok(())
                })
            }),
    }
}

/// Begins a write transaction. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`) so that read-then-write transactions wait instead of failing.
pub(crate) async fn begin_write(pool: &AnyPool, backend: Backend) -> sqlx::Result<Tx> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

/// What follows a `SELECT` that reads a row the transaction goes on to write against
/// (e.g. a sum that must not pass the row's amount): PostgreSQL locks the row
/// (` FOR UPDATE`); SQLite needs nothing, because [`begin_write`] already holds the write lock.
/// A row lock for the rest of the write transaction: PostgreSQL locks the row; SQLite's write
/// transaction already holds the database's write lock (the cooperation read before a payment).
pub(crate) fn for_update(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    }
}

/// Placeholder number `n` (1-based): `?` on SQLite, `$n` on PostgreSQL. Only for statements
/// built with [`placeholder_list`] or [`multi_insert`], which bind in order.
pub(crate) fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `count` comma-separated placeholders numbered from `first` (1-based): `?,?,…` on SQLite,
/// `$first,$first+1,…` on PostgreSQL (see [`multi_insert`] for why).
pub(crate) fn placeholder_list(backend: Backend, first: usize, count: usize) -> String {
    match backend {
        Backend::Sqlite => vec!["?"; count].join(","),
        Backend::Postgres => (0..count).map(|i| format!("${}", i + first)).collect::<Vec<_>>().join(","),
    }
}

/// Builds `INSERT INTO table (cols) VALUES (...), (...)` for `rows` rows. The one dialect
/// difference of the hot path: SQLite gets anonymous `?` placeholders, because resolving
/// thousands of numbered `$n` names costs it time quadratic in their number; PostgreSQL
/// needs `$n`. Both bind in the same order.
pub(crate) fn multi_insert(backend: Backend, table: &str, cols: &str, ncols: usize, rows: usize, suffix: &str) -> String {
    let mut s = format!("INSERT INTO {table} ({cols}) VALUES ");
    let mut p = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..ncols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&p.to_string());
                }
            }
            p += 1;
        }
        s.push(')');
    }
    s.push_str(suffix);
    s
}

/// Reads `SELECT <json array of pages>` for a leaf-index (or hash-index) range: one row per
/// page. Row-by-row reading cost verify most of its time in the SQLite driver's per-row
/// hand-off between threads; aggregating in the database avoids it.
pub(crate) fn json_page_sql(backend: Backend, table: &str, key: &str, cols: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT COALESCE(json_group_array(json_array({cols})), '[]') AS page FROM (SELECT {cols} FROM {table} WHERE {key} >= $1 AND {key} < $2 ORDER BY {key})"
        ),
        Backend::Postgres => format!(
            "SELECT COALESCE(json_agg(json_build_array({cols}) ORDER BY {key}), '[]'::json)::text AS page FROM {table} WHERE {key} >= $1 AND {key} < $2"
        ),
    }
}

/// True when `err` is a unique-constraint violation whose constraint or message mentions `needle`
/// (PostgreSQL names the constraint, SQLite names the table.column).
pub(crate) fn is_unique_violation(err: &sqlx::Error, needle: &str) -> bool {
    if let sqlx::Error::Database(db) = err {
        if db.is_unique_violation() {
            let msg = db.message();
            let constraint = db.constraint().unwrap_or("");
            return msg.contains(needle) || constraint.contains(needle);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(placeholder_list(Backend::Sqlite, 2, 3), "?,?,?");
        assert_eq!(placeholder_list(Backend::Postgres, 2, 3), "$2,$3,$4");
        assert_eq!(placeholder(Backend::Sqlite, 1), "?");
        assert_eq!(placeholder(Backend::Postgres, 1), "$1");
        assert_eq!(
            multi_insert(Backend::Sqlite, "t", "a, b", 2, 2, ""),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?)"
        );
        assert_eq!(
            multi_insert(Backend::Postgres, "t", "a, b", 2, 2, " ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(backend_of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("mysql://h/db"), None);
        assert_eq!(connect_url(Backend::Sqlite, "sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(connect_url(Backend::Sqlite, "sqlite://x.db?a=1"), "sqlite://x.db?a=1&mode=rwc");
        assert_eq!(connect_url(Backend::Sqlite, "sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
        assert_eq!(connect_url(Backend::Postgres, "postgres://h/db"), "postgres://h/db");
        assert_eq!(for_update(Backend::Postgres), " FOR UPDATE");
        assert_eq!(for_update(Backend::Sqlite), "");
    }
}
