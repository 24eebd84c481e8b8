//! The command line: global options and the command tree (clap).

use crate::commands::{assets, audit, cluster, config, db, key, serve, team, token, usage, user};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "chatgate",
    version,
    about = "Self-hosted OpenAI-API gateway",
    propagate_version = true
)]
pub struct Cli {
    /// Config file (default: $CHATGATE_CONFIG, ./chatgate.yaml, /etc/chatgate/chatgate.yaml)
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL; overrides database.url (sqlite://PATH)
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// More log output (-v debug, -vv trace); errors show their causes
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and what was asked for
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway
    Serve(serve::Args),
    /// Manage users and their keys
    #[command(subcommand)]
    User(user::Command),
    /// Rotate a user's key
    #[command(subcommand)]
    Token(token::Command),
    /// Manage teams: limits and budgets their members share
    #[command(subcommand)]
    Team(team::Command),
    /// Manage a user's keys: one per laptop, CI job or agent
    #[command(subcommand)]
    Key(key::Command),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(config::Command),
    /// Usage reports
    #[command(subcommand)]
    Usage(usage::Command),
    /// The audit trail: every change to users, teams and keys
    #[command(subcommand)]
    Audit(audit::Command),
    /// The instances sharing this database
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// Database maintenance
    #[command(subcommand)]
    Db(db::Command),
    /// Write completions/ and man/ from this command line's definition
    #[command(hide = true)]
    GenerateAssets(assets::Args),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
