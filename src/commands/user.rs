//! `chatgate user …`: add, list, show, edit, disable, enable, remove.

use super::{print_key, say, Context};
use crate::audit::Actor;
use crate::keys::PlainKey;
use crate::output::{self, Format};
use crate::users::{self, LimitPeriod, Setting, UserName, UserSettings, UserView};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a user and print their key (shown once)
    Add(AddArgs),
    /// List users (active ones unless --all)
    List {
        /// Include disabled and expired users
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one user in detail
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Change a user's limits, expiry, models, rpm or note
    Edit {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Raise a user's limits by N (a top-up)
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
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Import users and their keys from an older gateway (SQLite `users` table or CSV `name,token`)
    Import(super::import::Args),
    /// Block a user's key at once
    Disable { name: String },
    /// Unblock a user's key
    Enable { name: String },
    /// Delete a user (their usage history stays for reports)
    Remove {
        name: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    name: String,
    /// Use this key instead of generating one
    #[arg(long, value_name = "T")]
    token: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// `json` prints {"name", "key"}
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The settings `add` and `edit` share; `none`/`never` clears one.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    rules: RuleArgs,
    /// Expiry: YYYY-MM-DD (end of day, UTC), RFC 3339, a duration (30d, 12h, 90m) or never
    #[arg(long, value_name = "DATE|DURATION", value_parser = users::parse_expiry)]
    expires: Option<Setting<NaiveDateTime>>,
    /// The user's team (none = no team)
    #[arg(long, value_name = "TEAM", value_parser = users::parse_team)]
    team: Option<Setting<String>>,
}

/// The rules users and teams share (`user add/edit`, `team add/edit`).
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Token limit per period (none = unlimited)
    #[arg(long, value_name = "N", value_parser = users::parse_count)]
    token_limit: Option<Setting<i64>>,
    /// Request limit per period (none = unlimited)
    #[arg(long, value_name = "N", value_parser = users::parse_count)]
    request_limit: Option<Setting<i64>>,
    /// USD the user may spend per period, at the configured prices (none = unlimited)
    #[arg(long, value_name = "N", value_parser = users::parse_usd)]
    budget_usd: Option<Setting<i64>>,
    /// The period limits apply to
    #[arg(long, value_name = "PERIOD",
          value_parser = clap::builder::PossibleValuesParser::new(LimitPeriod::NAMES)
              .map(|p| LimitPeriod::parse(&p).expect("a listed name")))]
    limit_period: Option<LimitPeriod>,
    /// Allowed models: comma-separated glob patterns (none = all)
    #[arg(long, value_name = "LIST", value_parser = users::parse_models)]
    models: Option<Setting<Vec<String>>>,
    /// Requests per minute (none = unlimited)
    #[arg(long, value_name = "N", value_parser = users::parse_count)]
    rpm: Option<Setting<i64>>,
    /// Requests running at once (none = unlimited)
    #[arg(long, value_name = "N", value_parser = users::parse_count)]
    max_parallel: Option<Setting<i64>>,
    /// A free-text note ("" clears it)
    #[arg(long, value_name = "TEXT", value_parser = users::parse_note)]
    note: Option<Setting<String>>,
}

impl From<RuleArgs> for UserSettings {
    fn from(a: RuleArgs) -> UserSettings {
        UserSettings {
            token_limit: a.token_limit,
            request_limit: a.request_limit,
            budget: a.budget_usd,
            limit_period: a.limit_period,
            expires: None,
            models: a.models,
            rpm: a.rpm,
            max_parallel: a.max_parallel,
            note: a.note,
            disabled: None,
            team: None,
        }
    }
}

impl From<SettingsArgs> for UserSettings {
    fn from(a: SettingsArgs) -> UserSettings {
        UserSettings {
            expires: a.expires,
            team: a.team,
            ..a.rules.into()
        }
    }
}

/// Column names of `--format csv`, the JSON field names.
const USER_FIELDS: &[&str] = &[
    "name",
    "status",
    "key_hint",
    "created_at",
    "expires_at",
    "last_used_at",
    "token_limit",
    "request_limit",
    "limit_period",
    "tokens_used",
    "requests_used",
    "models",
    "rpm",
    "note",
    "max_parallel",
    "budget_usd",
    "spent_usd",
    "team",
];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let mut conn = ctx.connection()?;
        let conn = &mut conn;
        match self {
            Command::Add(a) => {
                let name = UserName::parse(&a.name).map_err(anyhow::Error::msg)?;
                let key = a
                    .token
                    .as_deref()
                    .map(PlainKey::parse)
                    .transpose()
                    .context("--token")?;
                let key = users::add(conn, &Actor::cli(), &name, key, a.settings.into())?;
                print_key(ctx, name.as_str(), &key, a.format, "created")
            }
            Command::List { all, format } => {
                let list = users::list(conn, all)?;
                print_users(&list, format)
            }
            Command::Show { name, format } => {
                let user = users::show(conn, &name)?;
                print_user(&user, format)?;
                if format == Format::Table {
                    let counts = crate::objects::counts(conn, &name)?;
                    if !counts.is_empty() {
                        println!("objects kept upstream: {}", describe(&counts));
                    }
                }
                Ok(())
            }
            Command::Edit { name, settings } => {
                users::update(conn, &Actor::cli(), &name, settings.into())?;
                say(ctx, &format!("user {name} updated"));
                Ok(())
            }
            Command::Recharge {
                name,
                tokens,
                requests,
                usd,
                format,
            } => {
                let top_up = users::TopUp {
                    tokens,
                    requests,
                    usd,
                };
                let user = users::recharge(conn, &Actor::cli(), &name, top_up)?;
                say(ctx, &format!("user {name} recharged"));
                print_user(&user, format)
            }
            Command::Import(args) => args.run(ctx, conn),
            Command::Disable { name } => {
                users::update(conn, &Actor::cli(), &name, blocked(true))?;
                say(
                    ctx,
                    &format!("user {name} disabled; their key no longer works"),
                );
                Ok(())
            }
            Command::Enable { name } => {
                users::update(conn, &Actor::cli(), &name, blocked(false))?;
                say(ctx, &format!("user {name} enabled"));
                Ok(())
            }
            Command::Remove { name, yes } => {
                users::show(conn, &name)?;
                output::confirm(&format!("Remove user {name}?"), yes)?;
                let counts = crate::objects::counts(conn, &name)?;
                users::remove(conn, &Actor::cli(), &name)?;
                say(
                    ctx,
                    &format!("user {name} removed; their usage history is kept"),
                );
                if !counts.is_empty() {
                    let total: i64 = counts.iter().map(|(_, n)| n).sum();
                    say(
                        ctx,
                        &format!(
                            "{name} still owns {total} object(s) in the upstream account ({}); they stay there, reachable by nobody through the gateway",
                            describe(&counts)
                        ),
                    );
                }
                Ok(())
            }
        }
    }
}

fn blocked(disabled: bool) -> UserSettings {
    UserSettings {
        disabled: Some(disabled),
        ..UserSettings::default()
    }
}

/// `files: 2, responses: 1`.
fn describe(counts: &[(String, i64)]) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `used / limit (left)`, or just `used` without a limit.
pub(super) fn limit(used: i64, limit: Option<i64>) -> String {
    match limit {
        Some(l) => format!("{used} / {l} ({} left)", (l - used).max(0)),
        None => used.to_string(),
    }
}

/// `$12.50`, as refusals name a budget.
pub(super) fn dollars(usd: f64) -> String {
    crate::limits::usd_text((usd * 1e9).round() as i64)
}

pub(super) fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

fn print_users(list: &[UserView], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(list),
        Format::Csv => output::print_csv(list, USER_FIELDS),
        Format::Table => {
            let mut t = output::table(&[
                "NAME",
                "STATUS",
                "KEY",
                "CREATED",
                "EXPIRES",
                "TOKENS",
                "REQUESTS",
                "BUDGET",
                "SPENT",
                "PERIOD",
                "TEAM",
                "LAST USED",
            ]);
            for u in list {
                t.add_row(vec![
                    u.name.clone(),
                    u.status.as_str().to_owned(),
                    u.key_hint.clone(),
                    u.created_at.clone(),
                    or_dash(u.expires_at.as_deref()),
                    limit(u.tokens_used, u.token_limit),
                    limit(u.requests_used, u.request_limit),
                    u.budget_usd.map_or_else(|| "-".into(), dollars),
                    dollars(u.spent_usd),
                    u.limit_period.as_str().to_owned(),
                    or_dash(u.team.as_deref()),
                    or_dash(u.last_used_at.as_deref()),
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}

fn print_user(user: &UserView, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(user),
        Format::Csv => output::print_csv(std::slice::from_ref(user), USER_FIELDS),
        Format::Table => print_detail(user),
    }
}

fn print_detail(u: &UserView) -> anyhow::Result<()> {
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let mut t = output::table(&["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("name", u.name.clone()),
        ("status", u.status.as_str().to_owned()),
        ("key", u.key_hint.clone()),
        ("team", or_dash(u.team.as_deref())),
        ("created", u.created_at.clone()),
        ("expires", or_dash(u.expires_at.as_deref())),
        ("last used", or_dash(u.last_used_at.as_deref())),
        ("limit period", u.limit_period.as_str().to_owned()),
        ("tokens used / limit", limit(u.tokens_used, u.token_limit)),
        (
            "requests used / limit",
            limit(u.requests_used, u.request_limit),
        ),
        (
            "spent / budget (USD)",
            match u.budget_usd {
                Some(b) => format!(
                    "{} / {} ({} left)",
                    dollars(u.spent_usd),
                    dollars(b),
                    dollars((b - u.spent_usd).max(0.0))
                ),
                None => dollars(u.spent_usd),
            },
        ),
        (
            "models",
            u.models
                .as_ref()
                .map(|m| m.join(","))
                .unwrap_or_else(|| "all".into()),
        ),
        ("rpm", num(u.rpm)),
        ("max parallel", num(u.max_parallel)),
        ("note", or_dash(u.note.as_deref())),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    println!("{t}");
    Ok(())
}
