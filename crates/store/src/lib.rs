//! OPC Hub storage: one code path for SQLite (embedded default) and PostgreSQL (production).
//! Every query is portable SQL run through `sqlx::Any` with `$n` parameters; the only
//! per-backend differences (connection pragmas, how a write transaction begins, placeholder
//! lists on the hot path, row locks, JSON aggregation) live in `dialect.rs`. This crate
//! knows nothing about HTTP.

pub mod accounts;
pub mod applications;
pub mod audit;
// Monthly bills and their payments (issue 19)
pub mod bills;
pub mod cache;
pub mod caps;
pub mod datasets;
mod dialect;
pub mod gateway;
pub mod grants;
pub mod integrity;
pub mod ledger;
pub mod notifications;
// Party facts: registrations, in-district, bank accounts (issue 17)
pub mod party_facts;
pub mod persons;
pub mod records;
pub mod registry;
pub mod settlement;
// Demand board (M2.4)
pub mod demands;
pub mod skills;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use std::time::Duration;

pub use audit::{Actor, AuditEntry, AuditFilter, Change};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict, with a stable code (e.g. `uscc_taken`, `workstation_taken`).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Input that refers to something that does not exist or is not allowed, with a field name.
    #[error("invalid reference in field {field}: {code}")]
    Invalid { field: &'static str, code: &'static str },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalog error: {0}")]
    Catalog(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether the same write may succeed later unchanged: the database unreachable or
    /// restarting, its disk full or failing, a lock or serialization conflict — not a
    /// constraint or a bug, which would fail again every time.
    pub fn is_transient(&self) -> bool {
        let StoreError::Db(e) = self else { return false };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                if code.len() == 5 {
                    // A PostgreSQL SQLSTATE: classes 08 connection, 53 resources (disk full), 57
                    // operator intervention (shutdown, restarting), 58 system (I/O); 40001/40P01.
                    ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c)) || code == "40001" || code == "40P01"
                } else {
                    // A SQLite result code (primary in the low byte of an extended one, at most 4
                    // digits): 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN.
                    code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
                }
            }
            _ => false,
        }
    }
}

pub(crate) use dialect::is_unique_violation;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// What [`Store::connect`] was given, for [`Store::dedicated`].
    url: std::sync::Arc<str>,
}

pub type Tx = Transaction<'static, Any>;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The file of a SQLite URL (`sqlite://data/opchub.db?mode=rwc`, `sqlite:x.db`), if it names
/// one (not `:memory:`).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && !path.starts_with(':')).then(|| std::path::PathBuf::from(path))
}

/// Creates the database file readable and writable by its owner only (0600) before SQLite does
/// (SQLite gives its `-wal` and `-shm` files the database file's mode). An existing file is left
/// to [`make_private`].
fn create_private(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The database file and its `-wal` and `-shm` files: owner only (0600), also for a file made
/// before this rule (it held every account's password hash and the ledger, readable by all).
fn make_private(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.permissions().mode() & 0o077 != 0 {
                    let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). SQLite files are created if
    /// missing and run in WAL mode.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_sized(url, None).await
    }

    /// Another store on the same database with its own pool of at most `max_connections`
    /// (e.g. the ledger writer's: its connection keeps the ledger's hot pages cached and is
    /// never taken by a request).
    pub async fn dedicated(&self, max_connections: u32) -> Result<Store> {
        Self::connect_sized(&self.url, Some(max_connections)).await
    }

    async fn connect_sized(url: &str, max_connections: Option<u32>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let Some(backend) = dialect::backend_of(url) else {
            return Err(StoreError::Catalog(format!(
                "unsupported database url (expected sqlite:// or postgres://): {}",
                redact(url)
            )));
        };
        let url = dialect::connect_url(backend, url);
        let file = (backend == Backend::Sqlite).then(|| sqlite_file(&url)).flatten();
        if let Some(f) = &file {
            create_private(f);
        }
        let opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let opts = dialect::pool_options(backend, opts, max_connections);
        let pool = opts.connect(&url).await?;
        if let Some(f) = &file {
            make_private(f);
        }
        Ok(Store {
            pool,
            backend,
            url: url.into(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations and loads the data catalogs (theme packages).
    pub async fn migrate(&self) -> Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        MIGRATOR.run(&self.pool).await?;
        registry::load_theme_catalog(self).await?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as usize)
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) so that read-then-write transactions wait instead of failing.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(dialect::begin_write(&self.pool, self.backend).await?)
    }

    /// `/readyz`: the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Hides the password of a database URL for logs and messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
