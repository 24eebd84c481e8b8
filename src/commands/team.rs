//! `chatgate team …`: add, list, show, edit, recharge, remove.

use super::user::{dollars, limit, or_dash, RuleArgs};
use super::{say, Context};
use crate::audit::Actor;
use crate::output::{self, Format};
use crate::teams::{self, TeamView};
use crate::users::{self, TopUp};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a team with its own limits, which its members share
    Add {
        name: String,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// List teams
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one team in detail
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Change a team's limits, models, rpm or note
    Edit {
        name: String,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Raise a team's limits by N (a top-up)
    #[command(group = clap::ArgGroup::new("amount").required(true).multiple(true).args(["tokens", "requests", "usd"]))]
    Recharge {
        name: String,
        /// Tokens to add to the token limit
        #[arg(long, value_name = "N")]
        tokens: Option<i64>,
        /// Requests to add to the request limit
        #[arg(long, value_name = "N")]
        requests: Option<i64>,
        /// USD to add to the budget
        #[arg(long, value_name = "N", value_parser = users::usd_to_nano)]
        usd: Option<i64>,
    },
    /// Delete a team without members (its usage stays in reports)
    Remove {
        name: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

/// Column names of `--format csv`, the JSON field names.
const TEAM_FIELDS: &[&str] = &[
    "name",
    "note",
    "created_at",
    "token_limit",
    "request_limit",
    "limit_period",
    "models",
    "rpm",
    "max_parallel",
    "budget_usd",
    "members",
    "tokens_used",
    "requests_used",
    "spent_usd",
];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let mut conn = ctx.connection()?;
        let conn = &mut conn;
        match self {
            Command::Add { name, rules } => {
                teams::add(conn, &Actor::cli(), &name, rules.into())?;
                say(ctx, &format!("team {name} created"));
                Ok(())
            }
            Command::List { format } => print(&teams::list(conn)?, format),
            Command::Show { name, format } => {
                let team = teams::show(conn, &name)?;
                match format {
                    Format::Table => print_detail(&team),
                    Format::Json => output::print_json(&team),
                    Format::Csv => print(std::slice::from_ref(&team), format),
                }
            }
            Command::Edit { name, rules } => {
                teams::update(conn, &Actor::cli(), &name, rules.into())?;
                say(ctx, &format!("team {name} updated"));
                Ok(())
            }
            Command::Recharge {
                name,
                tokens,
                requests,
                usd,
            } => {
                let top_up = TopUp {
                    tokens,
                    requests,
                    usd,
                };
                let team = teams::recharge(conn, &Actor::cli(), &name, top_up)?;
                say(ctx, &format!("team {name} recharged"));
                print_detail(&team)
            }
            Command::Remove { name, yes } => {
                teams::show(conn, &name)?;
                output::confirm(&format!("Remove team {name}?"), yes)?;
                teams::remove(conn, &Actor::cli(), &name)?;
                say(
                    ctx,
                    &format!("team {name} removed; its usage history is kept"),
                );
                Ok(())
            }
        }
    }
}

fn print(list: &[TeamView], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(list),
        Format::Csv => output::print_csv(list, TEAM_FIELDS),
        Format::Table => {
            let mut t = output::table(&[
                "NAME", "MEMBERS", "TOKENS", "REQUESTS", "BUDGET", "SPENT", "PERIOD", "NOTE",
            ]);
            for team in list {
                t.add_row(vec![
                    team.name.clone(),
                    team.members.len().to_string(),
                    limit(team.tokens_used, team.token_limit),
                    limit(team.requests_used, team.request_limit),
                    team.budget_usd.map_or_else(|| "-".into(), dollars),
                    dollars(team.spent_usd),
                    team.limit_period.as_str().to_owned(),
                    or_dash(team.note.as_deref()),
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}

fn print_detail(team: &TeamView) -> anyhow::Result<()> {
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let mut t = output::table(&["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("name", team.name.clone()),
        ("members", team.members.join(", ")),
        ("created", team.created_at.clone()),
        ("limit period", team.limit_period.as_str().to_owned()),
        (
            "tokens used / limit",
            limit(team.tokens_used, team.token_limit),
        ),
        (
            "requests used / limit",
            limit(team.requests_used, team.request_limit),
        ),
        (
            "spent / budget (USD)",
            match team.budget_usd {
                Some(b) => format!("{} / {}", dollars(team.spent_usd), dollars(b)),
                None => dollars(team.spent_usd),
            },
        ),
        (
            "models",
            team.models
                .as_ref()
                .map(|m| m.join(","))
                .unwrap_or_else(|| "all".into()),
        ),
        ("rpm", num(team.rpm)),
        ("max parallel", num(team.max_parallel)),
        ("note", or_dash(team.note.as_deref())),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    println!("{t}");
    Ok(())
}
