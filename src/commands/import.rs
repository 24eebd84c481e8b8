//! `chatgate user import FILE`: users and their plain keys from an older
//! gateway, stored hashed like any other. Names that exist, and rows that
//! are not valid, are skipped and reported; the rest are imported.

use super::say;
use super::Context;
use crate::audit::Actor;
use crate::keys::PlainKey;
use crate::users::{self, UserError, UserName, UserSettings};
use anyhow::{bail, Context as _};
use diesel::connection::{Connection, SimpleConnection};
use diesel::sql_types::Text;
use diesel::{sql_query, QueryableByName, RunQueryDsl, SqliteConnection};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// An SQLite database with a `users` table: `username` and `token` (or `password`)
    Sqlite,
    /// `name,token` lines, with or without that header
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    file: PathBuf,
    /// The file's kind; by default guessed from its first bytes
    #[arg(long, value_enum)]
    format: Option<Source>,
}

#[derive(QueryableByName)]
struct OldUser {
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    secret: String,
}

impl Args {
    pub fn run(self, ctx: &Context, conn: &mut crate::db::DbConnection) -> anyhow::Result<()> {
        let source = match self.format {
            Some(s) => s,
            None => guess(&self.file)?,
        };
        let rows = match source {
            Source::Sqlite => read_sqlite(&self.file)?,
            Source::Csv => read_csv(&self.file)?,
        };
        let (mut imported, mut skipped) = (0, 0);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let rows: Vec<_> = rows.into_iter().enumerate().collect();
        // A thousand users at a time: what cannot be imported (a bad row,
        // a name or key taken, here or earlier in the file) is found
        // first, and the rest goes in three statements. Should that fail
        // (a user added meanwhile), the thousand go one by one, each its
        // own savepoint, so a refused one is skipped alone. One commit per
        // user made a large import slow; one for all would hold the
        // database's write lock against a running server for as long as
        // the import takes.
        let mut seen = Seen::default();
        for chunk in rows.chunks(1000) {
            let results = match seen.check(conn, chunk)? {
                (results, ready) if users::add_many(conn, &Actor::cli(), &ready).is_ok() => results,
                _ => crate::db::transaction(conn, |conn| {
                    let results: Vec<RowResult> = chunk
                        .iter()
                        .map(|(_, (name, token))| import_one(conn, name, token))
                        .collect();
                    Ok::<_, diesel::result::Error>(results)
                })?,
            };
            for ((line, (name, _)), result) in chunk.iter().zip(results) {
                match result {
                    Ok(()) => {
                        imported += 1;
                        writeln!(out, "imported {name}")?;
                    }
                    Err(why) => {
                        skipped += 1;
                        let shown = if name.is_empty() {
                            format!("row {}", line + 1)
                        } else {
                            name.clone()
                        };
                        writeln!(out, "skipped {shown}: {why}")?;
                    }
                }
            }
        }
        out.flush()?;
        drop(out);
        say(ctx, &format!("{imported} imported, {skipped} skipped"));
        Ok(())
    }
}

/// A row imported, or why not.
type RowResult = Result<(), String>;
/// A user to import and their key.
type NewUser = (UserName, PlainKey);

/// The names and keys met so far in the file.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    hashes: HashSet<String>,
}

impl Seen {
    /// Each row's fate but the database's say, and the rows that can go.
    fn check(
        &mut self,
        conn: &mut crate::db::DbConnection,
        chunk: &[(usize, (String, String))],
    ) -> anyhow::Result<(Vec<RowResult>, Vec<NewUser>)> {
        let parsed: Vec<Result<NewUser, String>> = chunk
            .iter()
            .map(|(_, (name, token))| {
                let name = UserName::parse(name).map_err(|e| format!("bad name: {e}"))?;
                let key = PlainKey::parse(token).map_err(|e| format!("bad key: {e}"))?;
                Ok((name, key))
            })
            .collect();
        let ok: Vec<_> = parsed.iter().flatten().collect();
        let names: Vec<&str> = ok.iter().map(|(n, _)| n.as_str()).collect();
        let hashes: Vec<String> = ok.iter().map(|(_, k)| k.hashed().0).collect();
        let hash_refs: Vec<&str> = hashes.iter().map(String::as_str).collect();
        let (names_taken, hashes_taken) = users::taken(conn, &names, &hash_refs)?;
        self.names.extend(names_taken);
        self.hashes.extend(hashes_taken);
        let mut ready = Vec::new();
        let results = parsed
            .into_iter()
            .map(|row| {
                let (name, key) = row?;
                let hash = key.hashed().0;
                if !self.names.insert(name.as_str().to_owned()) {
                    return Err("exists".to_string());
                }
                if !self.hashes.insert(hash) {
                    return Err(UserError::KeyInUse.to_string());
                }
                ready.push((name, key));
                Ok(())
            })
            .collect();
        Ok((results, ready))
    }
}

/// One user, or why not.
fn import_one(conn: &mut crate::db::DbConnection, name: &str, token: &str) -> Result<(), String> {
    let name = UserName::parse(name).map_err(|e| format!("bad name: {e}"))?;
    let key = PlainKey::parse(token).map_err(|e| format!("bad key: {e}"))?;
    users::add(
        conn,
        &Actor::cli(),
        &name,
        Some(key),
        UserSettings::default(),
    )
    .map_err(|e| match e {
        UserError::Exists(_) => "exists".to_string(),
        e => e.to_string(),
    })?;
    Ok(())
}

fn guess(file: &Path) -> anyhow::Result<Source> {
    let head = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(if head.starts_with(b"SQLite format 3\0") {
        Source::Sqlite
    } else {
        Source::Csv
    })
}

fn read_sqlite(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    if !file.is_file() {
        bail!("{} does not exist", file.display());
    }
    // Opened read-only: an import never changes the old gateway's file.
    let url = format!("file:{}?mode=ro", file.display());
    let mut conn = SqliteConnection::establish(&url)
        .with_context(|| format!("cannot open {} as SQLite", file.display()))?;
    conn.batch_execute("PRAGMA query_only = ON")?;
    for column in ["token", "password"] {
        let rows = sql_query(format!(
            "SELECT CAST(username AS TEXT) AS username, CAST({column} AS TEXT) AS secret FROM users"
        ))
        .load::<OldUser>(&mut conn);
        if let Ok(rows) = rows {
            return Ok(rows.into_iter().map(|u| (u.username, u.secret)).collect());
        }
    }
    bail!(
        "{} has no table `users` with columns `username` and `token` (or `password`)",
        file.display()
    )
}

fn read_csv(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", file.display(), i + 1))?;
        let (name, token) = (record.get(0).unwrap_or(""), record.get(1).unwrap_or(""));
        let header =
            i == 0 && name.eq_ignore_ascii_case("name") && token.eq_ignore_ascii_case("token");
        let blank = name.is_empty() && token.is_empty();
        if !(header || blank) {
            rows.push((name.to_owned(), token.to_owned()));
        }
    }
    Ok(rows)
}
