//! `usage.keep_records`: the running server deletes per-request records
//! older than that, at start and then daily (daily totals stay), in small
//! chunks with pauses between them, so that the usage writer is never kept
//! waiting for the database for long; then, on SQLite, it gives the freed
//! pages back to the file system a few at a time (`incremental_vacuum`,
//! where the database has `auto_vacuum = INCREMENTAL`: new ones do).

use super::records;
use crate::db::{DbConnection, Pool};
use crate::periodic::{Periodic, Stop};
use diesel::connection::SimpleConnection;
use diesel::{QueryResult, RunQueryDsl};
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(24 * 3600);
/// Records per DELETE: a few milliseconds of the write lock.
const CHUNK: i64 = 2000;
/// Pages (4 KiB) given back per step.
const VACUUM_PAGES: i64 = 2000;
const PAUSE: Duration = Duration::from_millis(20);

/// Prunes what is older than `keep` now and every day until stopped.
pub fn start(pool: Pool, keep: Duration) -> Periodic {
    Periodic::start("chatgate-prune", EVERY, true, move |stop| {
        // (A keep longer than the calendar keeps everything.)
        let before = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|k| crate::db::now().checked_sub_signed(k))
            .unwrap_or_else(crate::db::beginning_of_time);
        match prune(&pool, before, stop) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                records = n,
                before = %crate::db::rfc3339(before),
                "pruned usage records (usage.keep_records)"
            ),
            Err(e) => tracing::warn!("cannot prune usage records: {e}"),
        }
    })
}

fn prune(pool: &Pool, before: chrono::NaiveDateTime, stop: &Stop) -> Result<usize, String> {
    let mut total = 0;
    loop {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let n = records::prune_some(&mut conn, before, CHUNK).map_err(|e| e.to_string())?;
        total += n;
        drop(conn);
        if n < CHUNK as usize || !stop.pause(PAUSE) {
            break;
        }
    }
    if total > 0 {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        give_back(&mut conn, stop).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

/// SQLite's incremental vacuum, a step at a time, where the database has
/// it (`auto_vacuum` 2); elsewhere freed pages are reused by new records.
fn give_back(conn: &mut DbConnection, stop: &Stop) -> QueryResult<()> {
    if !matches!(conn, DbConnection::Sqlite(_)) || sqlite_pragma(conn, "auto_vacuum")? != 2 {
        return Ok(());
    }
    while sqlite_pragma(conn, "freelist_count")? > 0 && stop.pause(PAUSE) {
        conn.batch_execute(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Value {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    value: i64,
}

/// A numeric SQLite pragma's value.
fn sqlite_pragma(conn: &mut DbConnection, name: &'static str) -> QueryResult<i64> {
    let v: Value = diesel::sql_query(format!(
        "SELECT CAST({name} AS BIGINT) AS value FROM pragma_{name}"
    ))
    .get_result(conn)?;
    Ok(v.value)
}
