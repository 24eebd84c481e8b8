//! One file per command group. Each parses its own arguments (clap) and
//! calls the same operations the server uses; errors carry context (anyhow).

pub mod assets;
pub mod audit;
pub mod cluster;
pub mod config;
pub mod db;
pub mod import;
pub mod key;
pub mod serve;
pub mod team;
pub mod token;
pub mod usage;
pub mod user;

use crate::cli::{Cli, Command};
use crate::config::Loaded;
use crate::db::{DbConnection, Pool};
use crate::keys::PlainKey;
use crate::output::{self, Format};
use anyhow::Context as _;

/// What every command gets: the loaded configuration and the global flags.
pub struct Context {
    pub loaded: Loaded,
    pub quiet: bool,
    /// `--database`, which wins over the file (also when it is re-read).
    pub database: Option<String>,
}

impl Context {
    /// Opens the database (creating and migrating it as needed).
    pub fn pool(&self) -> anyhow::Result<Pool> {
        crate::db::open(&self.loaded.config.database.url)
    }

    /// One connection, for commands that do a few queries and exit.
    pub fn connection(&self) -> anyhow::Result<DbConnection> {
        crate::db::connect_migrated(&self.loaded.config.database.url)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut loaded = Loaded::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database {
        crate::db::Backend::from_url(url).context("--database")?;
        loaded.config.database.url = url.clone();
    }
    let _log = crate::logging::init(&loaded.config.log, cli.verbose, cli.quiet);
    let ctx = Context {
        loaded,
        quiet: cli.quiet,
        database: cli.database,
    };
    match cli.command {
        Command::Serve(a) => a.run(ctx),
        Command::User(c) => c.run(&ctx),
        Command::Token(c) => c.run(&ctx),
        Command::Team(c) => c.run(&ctx),
        Command::Key(c) => c.run(&ctx),
        Command::Config(c) => c.run(&ctx),
        Command::Db(c) => c.run(&ctx),
        Command::Usage(c) => c.run(&ctx),
        Command::Audit(c) => c.run(&ctx),
        Command::Cluster(c) => c.run(&ctx),
        Command::GenerateAssets(a) => a.run(),
    }
}

/// A status line on stderr, so stdout stays what scripts read.
pub fn say(ctx: &Context, text: &str) {
    if !ctx.quiet {
        eprintln!("{text}");
    }
}

/// Prints a new key once: alone with -q, as {"name", "key"} with --format json.
pub fn print_key(
    ctx: &Context,
    name: &str,
    key: &PlainKey,
    format: Format,
    what: &str,
) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::print_json(&serde_json::json!({"name": name, "key": key.expose()}));
    }
    if !ctx.quiet {
        println!("Key for {name} ({what}; shown only now, store it safely):");
    }
    println!("{}", key.expose());
    Ok(())
}
