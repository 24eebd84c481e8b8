//! `chatgate key …`: a user's keys (add, list, revoke). `token rotate`
//! replaces one.

use super::user::or_dash;
use super::{say, Context};
use crate::audit::Actor;
use crate::keys::PlainKey;
use crate::output::{self, Format};
use crate::users::keys::{self as user_keys, Asker, KeyView, NewKey};
use crate::users::{self, Setting};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Give a user one more key (one per laptop, CI job or agent) and print it (shown once)
    Add {
        user: String,
        /// A label unique for the user (default: key-N, the smallest free N)
        #[arg(long, value_name = "L", value_parser = user_keys::parse_label)]
        label: Option<String>,
        /// Expiry: YYYY-MM-DD (end of day, UTC), RFC 3339, a duration (30d, 12h, 90m) or never
        #[arg(long, value_name = "DATE|DURATION", value_parser = users::parse_expiry)]
        expires: Option<Setting<NaiveDateTime>>,
        /// Models this key may use, narrowing the user's own (comma-separated globs)
        #[arg(long, value_name = "LIST", value_parser = users::parse_models)]
        models: Option<Setting<Vec<String>>>,
        /// Use this key instead of generating one
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// `json` prints {"user", "label", "key"}
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List keys (of one user, or everyone's); never the keys themselves
    List {
        user: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// End one key of a user at once (by label or hint); their other keys keep working
    Revoke {
        user: String,
        #[arg(value_name = "LABEL|HINT")]
        key: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

/// Column names of `--format csv`, the JSON field names.
const KEY_FIELDS: &[&str] = &[
    "user",
    "label",
    "key_hint",
    "created_at",
    "expires_at",
    "last_used_at",
    "models",
];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let mut conn = ctx.connection()?;
        let conn = &mut conn;
        match self {
            Command::Add {
                user,
                label,
                expires,
                models,
                token,
                format,
            } => {
                let key = token
                    .as_deref()
                    .map(PlainKey::parse)
                    .transpose()
                    .context("--token")?;
                let new = NewKey {
                    label,
                    expires: expires.and_then(Setting::into_option),
                    models: models.and_then(Setting::into_option),
                    key,
                };
                let (label, key) = user_keys::add(conn, &Actor::cli(), &user, new, Asker::Admin)?;
                print_new_key(ctx, &user, &label, &key, format)
            }
            Command::List { user, format } => {
                print(&user_keys::list(conn, user.as_deref())?, format)
            }
            Command::Revoke { user, key, yes } => {
                output::confirm(&format!("Revoke key {key} of {user}?"), yes)?;
                let gone = user_keys::revoke(conn, &Actor::cli(), &user, &key)?;
                say(
                    ctx,
                    &format!(
                        "key {} ({}) of {user} revoked; running servers refuse it within 2 seconds",
                        gone.label, gone.key_hint
                    ),
                );
                Ok(())
            }
        }
    }
}

/// Prints a new key once: alone with -q, as {"user", "label", "key"}
/// with --format json.
pub fn print_new_key(
    ctx: &Context,
    user: &str,
    label: &str,
    key: &PlainKey,
    format: Format,
) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::print_json(
            &serde_json::json!({"user": user, "label": label, "key": key.expose()}),
        );
    }
    if !ctx.quiet {
        println!("Key `{label}` for {user} (shown only now, store it safely):");
    }
    println!("{}", key.expose());
    Ok(())
}

fn print(list: &[KeyView], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(list),
        Format::Csv => output::print_csv(list, KEY_FIELDS),
        Format::Table => {
            let mut t = output::table(&[
                "USER",
                "LABEL",
                "KEY",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "MODELS",
            ]);
            for k in list {
                t.add_row(vec![
                    k.user.clone(),
                    k.label.clone(),
                    k.key_hint.clone(),
                    k.created_at.clone(),
                    or_dash(k.expires_at.as_deref()),
                    or_dash(k.last_used_at.as_deref()),
                    k.models
                        .as_ref()
                        .map_or_else(|| "user's".into(), |m| m.join(",")),
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}
