//! `chatgate token rotate`: a new key for a user; the old one stops at once.

use super::Context;
use super::{print_key, say};
use crate::audit::Actor;
use crate::keys::PlainKey;
use crate::output::Format;
use crate::users;
use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue a new key for a user and print it (shown once)
    Rotate {
        name: String,
        /// Which of the user's keys (default: `default`, or their only key)
        #[arg(long, value_name = "L")]
        label: Option<String>,
        /// Use this key instead of generating one
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// `json` prints {"name", "key"}
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self {
            Command::Rotate {
                name,
                label,
                token,
                format,
            } => {
                let key = token
                    .as_deref()
                    .map(PlainKey::parse)
                    .transpose()
                    .context("--token")?;
                let mut conn = ctx.connection()?;
                let (label, key) =
                    users::keys::rotate(&mut conn, &Actor::cli(), &name, label.as_deref(), key)?;
                print_key(ctx, &name, &key, format, &format!("`{label}`, rotated"))?;
                say(
                    ctx,
                    "the old key stops working within 2 seconds on running servers",
                );
                Ok(())
            }
        }
    }
}
