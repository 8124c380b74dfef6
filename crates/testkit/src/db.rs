//! A fresh database for one test: a new SQLite file in `dir`, or — when
//! `OPCHUB_TEST_DATABASE_URL` names a PostgreSQL database (as `.ci/run` does) — a new schema
//! in it, selected through the connection's `search_path`.

use std::path::Path;

/// The URL of an empty database for one test.
pub async fn fresh_database_url(dir: &Path) -> Result<String, sqlx::Error> {
    match std::env::var("OPCHUB_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let schema = format!("t_{}", uuid_like());
            let mut admin = sqlx::AnyConnection::connect(&base).await?;
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await?;
            admin.close().await?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
        _ => Ok(format!("sqlite://{}", dir.join("opchub.db").display())),
    }
}

/// A unique, lowercase schema-name suffix (time + counter + process id).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
