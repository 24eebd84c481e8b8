//! `chatgate config check`: validates the configuration and prints the
//! effective settings with every secret redacted.

use super::user::say;
use super::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and print the effective settings (secrets redacted)
    Check,
}

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self {
            Command::Check => {
                // Loading already validated it; say where it came from.
                let source = match &ctx.loaded.file {
                    Some(f) => format!("config file {} is valid", f.display()),
                    None => "no config file found; defaults and environment are valid".into(),
                };
                say(ctx, &source);
                print!("{}", serde_yaml::to_string(&ctx.loaded.config.redacted())?);
                Ok(())
            }
        }
    }
}
