//! `chatgate audit list`: the audit trail (SPEC §9), read-only.

use super::Context;
use crate::audit::{self, Filter};
use crate::output::{self, Format};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Who changed which user, team or key, when, and what changed
    List {
        /// From, inclusive: YYYY-MM-DD or RFC 3339
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// To: a date includes that whole day; an RFC 3339 time is exclusive
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only changes by this actor (cli:alice, admin-token, oidc:…, user:…)
        #[arg(long, value_name = "A")]
        actor: Option<String>,
        /// Only changes to this user (and their keys) or team
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

const FIELDS: &[&str] = &["at", "actor", "action", "target", "changes"];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let Command::List {
            since,
            until,
            actor,
            target,
            format,
        } = self;
        let filter = Filter::parse(since.as_deref(), until.as_deref(), actor, target)
            .map_err(|e| anyhow::anyhow!("--{e}"))?;
        let rows = audit::list(&mut ctx.connection()?, &filter)?;
        match format {
            Format::Json => output::print_json(&rows),
            Format::Csv => output::print_csv(&rows, FIELDS),
            Format::Table => {
                let mut t = output::table(&["AT", "ACTOR", "ACTION", "TARGET", "CHANGES"]);
                for r in &rows {
                    t.add_row(vec![
                        r.at.clone(),
                        r.actor.clone(),
                        r.action.clone(),
                        r.target.clone(),
                        audit::changes_line(&r.changes),
                    ]);
                }
                println!("{t}");
                Ok(())
            }
        }
    }
}
