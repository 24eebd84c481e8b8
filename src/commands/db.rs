//! `chatgate db migrate`: applies migrations explicitly (packaging scripts).

use super::say;
use super::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations
    Migrate,
}

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self {
            Command::Migrate => {
                let url = &ctx.loaded.config.database.url;
                let backend = crate::db::Backend::from_url(url)?;
                // Not `connect_migrated`: this reports what it applies.
                let mut conn = crate::db::connect(url)?;
                let applied = crate::db::migrate(&mut conn)?;
                if applied.is_empty() {
                    say(
                        ctx,
                        &format!(
                            "{} database {} is up to date",
                            backend.name(),
                            crate::db::redact_url(url)
                        ),
                    );
                } else {
                    for m in &applied {
                        println!("applied {m}");
                    }
                }
                Ok(())
            }
        }
    }
}
