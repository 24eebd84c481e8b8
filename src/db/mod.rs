//! The database: backend chosen from the URL scheme (no fallback), a
//! connection pool, embedded migrations per backend, the schema.
//!
//! Queries are written once against `DbConnection`, a Diesel
//! `MultiConnection` over SQLite, PostgreSQL and (with the `mysql`
//! feature) MySQL/MariaDB; each backend keeps its own migrations folder
//! for what its SQL dialect says differently, and the few statements that
//! differ ask `dialect`.

pub mod moment;
pub mod schema;

use anyhow::{bail, Context};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{ConnectionError, ConnectionResult};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::PathBuf;
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "mysql")]
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

#[cfg(feature = "mysql")]
use diesel::mysql::MysqlConnection;

#[cfg(not(feature = "mysql"))]
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[cfg(feature = "mysql")]
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
    Mysql(MysqlConnection),
}

/// What SQL dialect a connection speaks, for the few statements that are
/// not the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl DbConnection {
    pub fn dialect(&self) -> Dialect {
        match self {
            DbConnection::Sqlite(_) => Dialect::Sqlite,
            DbConnection::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(_) => Dialect::Mysql,
        }
    }
}

/// Runs `f` in a transaction that may write: the only way this crate opens
/// one (clippy.toml forbids diesel's `transaction`).
///
/// On SQLite it begins `IMMEDIATE`, taking the write lock first. A
/// deferred transaction that reads and then writes fails at once with
/// "database is locked" when another connection wrote in between (SQLite
/// cannot move its snapshot forward, so the busy timeout does not apply),
/// and the heartbeat writes every second. Nested calls are savepoints.
pub fn transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost_sqlite = match conn {
        DbConnection::Sqlite(c) => {
            let status = AnsiTransactionManager::transaction_manager_status_mut(c);
            status.transaction_depth()?.is_none()
        }
        _ => false,
    };
    if !outermost_sqlite {
        #[allow(clippy::disallowed_methods)]
        return conn.transaction(f);
    }
    if let DbConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    // The multi-backend connection's manager hands commit and rollback to
    // the SQLite connection's, which now knows it is in a transaction.
    match f(conn) {
        Ok(value) => {
            DbConnection::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => match DbConnection::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

impl Dialect {
    /// `SUM(expr)` as a 64-bit integer: PostgreSQL and MySQL sum BIGINTs
    /// into a NUMERIC/DECIMAL, and MySQL casts to `SIGNED`, not `BIGINT`.
    pub fn sum(self, expr: &str) -> String {
        self.int(&format!("SUM({expr})"))
    }

    /// `expr` as a 64-bit integer.
    pub fn int(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS SIGNED)"),
            _ => format!("CAST({expr} AS BIGINT)"),
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// Runs a statement on the connection's own backend: diesel's multi-row
/// INSERT exists only there, and a prepared statement is reused without the
/// `MultiConnection` writing out its SQL text again on every run. For the
/// statements the usage writer runs with every batch.
#[cfg(not(feature = "mysql"))]
pub fn execute_prepared<Q>(conn: &mut DbConnection, query: Q) -> QueryResult<usize>
where
    Q: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
{
    match conn {
        DbConnection::Sqlite(c) => ExecuteDsl::execute(query, c),
        DbConnection::Postgres(c) => ExecuteDsl::execute(query, c),
    }
}

#[cfg(feature = "mysql")]
pub fn execute_prepared<Q>(conn: &mut DbConnection, query: Q) -> QueryResult<usize>
where
    Q: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection> + ExecuteDsl<MysqlConnection>,
{
    match conn {
        DbConnection::Sqlite(c) => ExecuteDsl::execute(query, c),
        DbConnection::Postgres(c) => ExecuteDsl::execute(query, c),
        DbConnection::Mysql(c) => ExecuteDsl::execute(query, c),
    }
}

/// Which database a URL names. No silent fallback: an unknown scheme is an error.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    /// The whole URL, which may carry a password.
    Postgres(String),
    /// The URL as diesel takes it (`mysql://`, `ssl_mode`), which may
    /// carry a password.
    Mysql(String),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            Backend::Postgres(url) => write!(f, "Postgres({})", redact_url(url)),
            Backend::Mysql(url) => write!(f, "Mysql({})", redact_url(url)),
        }
    }
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("`{url}` names no file (write sqlite://chatgate.db or sqlite:///var/lib/chatgate/chatgate.db)");
            }
            return Ok(Backend::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        if let Some(rest) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        {
            if !cfg!(feature = "mysql") {
                bail!(
                    "`{}`: this chatgate was built without MySQL support; build it with `--features mysql` (the .deb and the Docker image have it)",
                    redact_url(url)
                );
            }
            // `ssl-mode` as MySQL's own clients spell it; diesel reads `ssl_mode`.
            return Ok(Backend::Mysql(format!(
                "mysql://{}",
                rest.replace("ssl-mode=", "ssl_mode=")
            )));
        }
        bail!(
            "`{}` is not a database URL chatgate understands (sqlite://PATH, postgres://… or mysql://…)",
            redact_url(url)
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
            Backend::Mysql(_) => "mysql",
        }
    }
}

/// A time as RFC 3339, UTC, to the second.
pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The URL with any password replaced (its user part and password-like
/// query parameters), for messages and `config check`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    let mut changed = false;
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
        changed = true;
    }
    let database = ["postgres", "mysql", "mariadb"]
        .iter()
        .any(|s| url.starts_with(s));
    if !u.username().is_empty() && !database {
        // A user part alone can be a token (`https://sk-…@host`); a
        // database's user name is kept, it says which account is used.
        let _ = u.set_username("***");
        changed = true;
    }
    let secret = |name: &str| crate::keys::is_secret_parameter(name);
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        u.to_string()
    } else {
        url.to_string()
    }
}

/// A URL that does not parse, shown without what could be a secret: its
/// user part (up to the last `@` before the path) and its query.
fn redact_unparsed(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match path.find('?') {
        Some(q) => format!("{}?***", &path[..q]),
        None => path.to_owned(),
    };
    if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

impl Backend {
    /// One connection with the per-connection settings.
    fn establish(&self) -> ConnectionResult<DbConnection> {
        match self {
            Backend::Sqlite(path) => {
                sqlite_multithread();
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                let bad = |e: diesel::result::Error| ConnectionError::BadConnection(e.to_string());
                // The busy timeout makes a connection wait for a lock, not
                // fail; WAL lets the CLI write while a server reads and writes.
                conn.batch_execute("PRAGMA busy_timeout = 10000;")
                    .map_err(bad)?;
                incremental_vacuum_if_new(&mut conn).map_err(bad)?;
                // Temporary files in memory: a savepoint's journal (each row of
                // `user import` is one) went to /var/tmp a page at a time.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
                )
                .map_err(bad)?;
                Ok(DbConnection::Sqlite(conn))
            }
            Backend::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                // Prepared statements are planned for their parameters each
                // time: a generic plan made while a table was small (a
                // sequential scan of `usage_daily`, say) would be kept by a
                // connection that lives for months as the table grows.
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Postgres(conn))
            }
            #[cfg(feature = "mysql")]
            Backend::Mysql(url) => {
                // diesel sets the session to UTC and utf8mb4; the tables'
                // binary collation compares names as the other backends do.
                MysqlConnection::establish(url).map(DbConnection::Mysql)
            }
            #[cfg(not(feature = "mysql"))]
            Backend::Mysql(_) => Err(ConnectionError::BadConnection(
                "this chatgate was built without MySQL support".into(),
            )),
        }
    }

    fn checked(url: &str) -> anyhow::Result<Backend> {
        let backend = Backend::from_url(url).context("database.url")?;
        if let Backend::Sqlite(path) = &backend {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    bail!("database directory {} does not exist", dir.display());
                }
            }
        }
        Ok(backend)
    }
}

/// SQLite in multi-thread mode: no mutex taken around every call on a
/// connection (each value the usage writer binds took and gave back one).
/// Sound because a connection and its statements are only ever used by
/// the one thread holding the connection: diesel's `Send` for
/// `SqliteConnection` rests on the same invariant. Set before SQLite
/// starts (the first connection); if something opened one before, SQLite
/// refuses the change and stays serialized, which is only slower.
fn sqlite_multithread() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use libsqlite3_sys::{sqlite3_config, SQLITE_CONFIG_MULTITHREAD, SQLITE_OK};
        // SAFETY: a configuration call with its documented argument, made
        // once, before this process opens its first connection.
        let rc = unsafe { sqlite3_config(SQLITE_CONFIG_MULTITHREAD) };
        if rc != SQLITE_OK {
            tracing::debug!(rc, "SQLite stays in serialized mode");
        }
    });
}

/// A new SQLite file (no page yet) gives the pages it frees back to the
/// file system when asked (the pruner asks: usage.keep_records). Only
/// then, and before WAL mode writes the file's header: later the setting
/// would not take, and setting it writes that header, which a
/// connection's start must not do while others write.
fn incremental_vacuum_if_new(c: &mut SqliteConnection) -> QueryResult<()> {
    let pages: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT page_count FROM pragma_page_count)",
    ))
    .get_result(c)?;
    if pages == 0 {
        c.batch_execute("PRAGMA auto_vacuum = INCREMENTAL")?;
    }
    Ok(())
}

/// Opens connections for the pool.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.backend
            .establish()
            .map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// A pool for the server, on a migrated database (created if needed).
pub fn open(url: &str) -> anyhow::Result<Pool> {
    let backend = Backend::checked(url)?;
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(Manager { backend })
        .with_context(|| format!("cannot open database {}", redact_url(url)))?;
    migrate(&mut *pool.get().context("cannot get a database connection")?)?;
    Ok(pool)
}

/// One connection, for a command that does its work and exits: no pool and
/// no background threads (libpq and OpenSSL must not be busy in another
/// thread while the process exits). Not migrated (see `connect_migrated`).
pub fn connect(url: &str) -> anyhow::Result<DbConnection> {
    Backend::checked(url)?
        .establish()
        .with_context(|| format!("cannot open database {}", redact_url(url)))
}

/// `connect`, then the pending migrations applied.
pub fn connect_migrated(url: &str) -> anyhow::Result<DbConnection> {
    let mut conn = connect(url)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// The names of migrations not applied yet.
pub fn pending(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let pending = match conn {
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
        DbConnection::Postgres(c) => c
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => c
            .pending_migrations(MYSQL_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.name().to_string()).collect()),
    };
    pending.map_err(|e| anyhow::anyhow!("cannot read the migration state: {e}"))
}

/// Applies pending migrations; returns the names of those applied now.
pub fn migrate(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
        DbConnection::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => c
            .run_pending_migrations(MYSQL_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
    };
    applied.map_err(|e| anyhow::anyhow!("database migration failed: {e}"))
}

/// Applies pending migrations up to and including version `last`
/// (`2026-12-01-000007`; tests of a later migration start from the schema
/// an earlier release left).
pub fn migrate_through(conn: &mut DbConnection, last: &str) -> anyhow::Result<()> {
    fn step<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        c: &mut C,
        migrations: impl Fn() -> EmbeddedMigrations,
        last: &str,
    ) -> anyhow::Result<()> {
        loop {
            let applied = c
                .run_next_migration(migrations())
                .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
            // A version is shown without the name's dashes.
            if applied.to_string() == last.replace('-', "") {
                return Ok(());
            }
        }
    }
    match conn {
        DbConnection::Sqlite(c) => step(c, || SQLITE_MIGRATIONS, last),
        DbConnection::Postgres(c) => step(c, || POSTGRES_MIGRATIONS, last),
        // MySQL's schema begins at the release that brought it.
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => step(c, || MYSQL_MIGRATIONS, last),
    }
}

/// Why a database call from the server failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Runs a database call off the worker thread, on a pooled connection: the
/// one way the server's handlers reach the database.
pub async fn run<T, E>(
    pool: &Pool,
    op: impl FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        op(&mut conn)
    })
    .await
    .map_err(|e| E::from(DbError::Unavailable(e.to_string())))?
}

/// `run` for a call that fails only as a query can.
pub async fn query<T: Send + 'static>(
    pool: &Pool,
    op: impl FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
) -> Result<T, DbError> {
    run(pool, move |c| op(c).map_err(DbError::from)).await
}

/// The earliest and latest times stored or compared; both backends'
/// timestamp types hold them (chrono's MIN and MAX do not fit PostgreSQL).
pub fn beginning_of_time() -> chrono::NaiveDateTime {
    chrono::DateTime::UNIX_EPOCH.naive_utc()
}

pub fn end_of_time() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .expect("a valid date")
}

/// The current time as stored: UTC without zone, microsecond precision.
pub fn now() -> chrono::NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    t - chrono::Duration::nanoseconds(i64::from(t.and_utc().timestamp_subsec_nanos() % 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_of_every_credential() {
        assert_eq!(
            redact_url("https://user:pw@host/v1?api_key=s&x=1"),
            "https://***:***@host/v1?api_key=***&x=1"
        );
        assert_eq!(
            redact_url("https://sk-token@host/v1"),
            "https://***@host/v1"
        );
        assert_eq!(
            redact_url("postgres://gate:pw@db/x"),
            "postgres://gate:***@db/x"
        );
        assert_eq!(redact_url("https://host/v1"), "https://host/v1");
        // A URL that does not parse (the port is too large) keeps no
        // secret either.
        assert_eq!(
            redact_url("http://gw:S3cretPw@127.0.0.1:99999/v1?token=sk-x"),
            "http://***@127.0.0.1:99999/v1?***"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://a/b.db").unwrap(),
            Backend::Sqlite("a/b.db".into())
        );
        assert_eq!(
            Backend::from_url("sqlite:///var/x.db").unwrap(),
            Backend::Sqlite("/var/x.db".into())
        );
        assert!(Backend::from_url("sqlite://").is_err());
        let pg = Backend::from_url("postgres://u:hunter2@db/x").unwrap();
        assert_eq!(pg.name(), "postgres");
        assert!(!format!("{pg:?}").contains("hunter2"));
        // MySQL (and MariaDB's scheme), as diesel takes it; without the
        // feature, a clear refusal that shows no password.
        let my = Backend::from_url("mariadb://u:secret@h/db?ssl-mode=REQUIRED");
        if cfg!(feature = "mysql") {
            let my = my.unwrap();
            assert_eq!(
                my,
                Backend::Mysql("mysql://u:secret@h/db?ssl_mode=REQUIRED".into())
            );
            assert!(!format!("{my:?}").contains("secret"));
        } else {
            let err = my.unwrap_err().to_string();
            assert!(
                !err.contains("secret") && err.contains("--features mysql"),
                "{err}"
            );
        }
    }

    /// The class behind "database is locked" from the CLI while a server
    /// writes: a transaction that reads, sees another connection write, then
    /// writes itself. Ours holds the write lock from its start, so the other
    /// writer (here with no busy timeout, to see it) is the one that waits.
    #[test]
    fn sqlite_transactions_take_the_write_lock_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let mut conn = connect(&url).unwrap();
        conn.batch_execute("CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        let other_write = || {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut other = connect(&url).unwrap();
                other.batch_execute("PRAGMA busy_timeout = 0").unwrap();
                other.batch_execute("INSERT INTO t VALUES (1)")
            })
            .join()
            .unwrap()
        };
        let outcome: QueryResult<bool> = transaction(&mut conn, |conn| {
            conn.batch_execute("SELECT COUNT(*) FROM t")?;
            let other_refused = other_write().is_err();
            conn.batch_execute("INSERT INTO t VALUES (2)")?;
            // Nested: a savepoint inside the same transaction.
            transaction(conn, |conn| conn.batch_execute("INSERT INTO t VALUES (3)"))?;
            Ok(other_refused)
        });
        assert_eq!(outcome, Ok(true), "the other writer got in first");
        // Committed, and the lock is free again.
        other_write().unwrap();
        let rolled_back: QueryResult<()> = transaction(&mut conn, |conn| {
            conn.batch_execute("INSERT INTO t VALUES (4)")?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(rolled_back.is_err());
        #[derive(QueryableByName)]
        struct Total {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            total: i64,
        }
        let total: Total = diesel::sql_query("SELECT SUM(n) AS total FROM t")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(total.total, 2 + 3 + 1);
    }
}
