//! The `serve` instances that share one database (SPEC §10): each keeps a
//! row (`instances`) fresh every second with its address, version and the
//! requests it is serving, and removes it when it stops cleanly; a row
//! not refreshed for `cluster.lease_ttl` belongs to an instance that is
//! gone, and the next heartbeat of any instance drops it.
//! `chatgate cluster status` reads them.

use crate::db::moment::At;
use crate::db::schema::instances;
use crate::db::{self, rfc3339, DbConnection, Pool};
use crate::leases::Leases;
use crate::periodic::Periodic;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use prometheus::IntGauge;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How often an instance refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// An instance as `cluster status` shows it (SPEC §10's fields).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub instance: String,
    pub address: String,
    pub version: String,
    pub started_at: String,
    pub last_seen_at: String,
    pub in_flight: i64,
}

/// This process, as its row names it: the host, the pid and a random
/// part (a restarted process with a reused pid is a new instance).
pub fn instance_id() -> String {
    let random: u32 = rand::random();
    format!("{}-{}-{random:08x}", host_name(), std::process::id())
}

/// This machine's name (Linux), else `localhost`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The time `ttl` ago: rows last seen before it belong to instances gone.
pub(crate) fn ttl_ago(ttl: Duration) -> At {
    At(db::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(10)))
}

/// The instance's heartbeat: registers it now, refreshes its row every
/// second (dropping rows of instances gone for `ttl`), removes it when
/// stopped.
pub struct Heartbeat {
    periodic: Periodic,
    pool: Pool,
    id: String,
    leases: Option<Arc<Leases>>,
}

impl Heartbeat {
    pub fn start(
        pool: Pool,
        id: String,
        address: String,
        ttl: Duration,
        in_flight: IntGauge,
        leases: Option<Arc<Leases>>,
    ) -> Result<Heartbeat, String> {
        let started = At(db::now());
        {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            diesel::insert_into(instances::table)
                .values((
                    instances::id.eq(&id),
                    instances::address.eq(&address),
                    instances::version.eq(env!("CARGO_PKG_VERSION")),
                    instances::started_at.eq(started),
                    instances::last_seen_at.eq(started),
                    instances::in_flight.eq(0),
                ))
                .execute(&mut conn)
                .map_err(|e| e.to_string())?;
        }
        let (beat_pool, beat_id, keeper) = (pool.clone(), id.clone(), leases.clone());
        let periodic = Periodic::start("chatgate-cluster", HEARTBEAT, false, move |_| {
            let beat = beat_pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut conn| {
                    beat(&mut conn, &beat_id, in_flight.get(), ttl).map_err(|e| e.to_string())?;
                    match &keeper {
                        Some(leases) => leases.tick(&mut conn).map_err(|e| e.to_string()),
                        None => Ok(()),
                    }
                });
            if let Err(e) = beat {
                tracing::debug!("cannot refresh this instance's row and shares: {e}");
            }
        });
        Ok(Heartbeat {
            periodic,
            pool,
            id,
            leases,
        })
    }

    /// Stops the heartbeat and removes the row (a clean stop).
    pub fn stop(mut self) {
        self.periodic.stop();
        if let Ok(mut conn) = self.pool.get() {
            if let Some(leases) = &self.leases {
                let _ = leases.release_all(&mut conn);
            }
            let _ = diesel::delete(instances::table.filter(instances::id.eq(&self.id)))
                .execute(&mut conn);
        }
    }
}

fn beat(conn: &mut DbConnection, id: &str, in_flight: i64, ttl: Duration) -> QueryResult<()> {
    diesel::update(instances::table.filter(instances::id.eq(id)))
        .set((
            instances::last_seen_at.eq(At(db::now())),
            instances::in_flight.eq(in_flight),
        ))
        .execute(conn)?;
    diesel::delete(instances::table.filter(instances::last_seen_at.lt(ttl_ago(ttl))))
        .execute(conn)?;
    crate::leases::drop_gone(conn, ttl)
}

/// The instances seen within `ttl`, oldest first.
pub fn status(conn: &mut DbConnection, ttl: Duration) -> QueryResult<Vec<InstanceView>> {
    let rows: Vec<(String, String, String, NaiveDateTime, NaiveDateTime, i64)> = instances::table
        .filter(instances::last_seen_at.ge(ttl_ago(ttl)))
        .order((instances::started_at.asc(), instances::id.asc()))
        .select((
            instances::id,
            instances::address,
            instances::version,
            instances::started_at,
            instances::last_seen_at,
            instances::in_flight,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(instance, address, version, started, seen, in_flight)| InstanceView {
                instance,
                address,
                version,
                started_at: rfc3339(started),
                last_seen_at: rfc3339(seen),
                in_flight,
            },
        )
        .collect())
}
