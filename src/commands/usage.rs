//! `chatgate usage report`: usage over a range, grouped, as a table, CSV or
//! JSON; made for cron (no prompts, plain ASCII when not on a terminal).

use super::say;
use super::Context;
use crate::output::{self, Format};
use crate::usage::report::{self, GroupBy};
use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Usage grouped by user, team, key, model, day, month, upstream, endpoint or client (default: this month by user)
    Report(ReportArgs),
    /// Delete per-request records older than DATE; daily totals stay for reports
    Prune {
        /// YYYY-MM-DD (records before that day) or RFC 3339
        #[arg(long, value_name = "DATE")]
        before: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start, inclusive: YYYY-MM-DD or RFC 3339
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// End: a date includes that whole day; an RFC 3339 time is exclusive
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// today, yesterday, this-month, last-month or Nd (the last N days)
    #[arg(long, value_name = "PERIOD")]
    period: Option<String>,
    /// Only these users (repeatable)
    #[arg(long = "user", value_name = "NAME")]
    users: Vec<String>,
    /// Only these teams' usage, made while the users were in them (repeatable)
    #[arg(long = "team", value_name = "NAME")]
    teams: Vec<String>,
    /// Grouping keys, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "user",
          value_parser = clap::builder::PossibleValuesParser::new(GroupBy::NAMES)
              .map(|g| GroupBy::parse(&g).expect("a listed name")))]
    by: Vec<GroupBy>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

const METRICS: [&str; 8] = [
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "estimated_requests",
    "cost_usd",
];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self {
            Command::Report(args) => report(ctx, args),
            Command::Prune { before, yes } => {
                let before =
                    report::bound(&before, false).map_err(|e| anyhow::anyhow!("--before: {e}"))?;
                let mut conn = ctx.connection()?;
                let n = crate::usage::records::count_before(&mut conn, before)?;
                if n == 0 {
                    say(ctx, "no usage records to delete");
                    return Ok(());
                }
                let when = crate::users::rfc3339(before);
                output::confirm(&format!("Delete {n} usage records before {when}?"), yes)?;
                let n = crate::usage::records::prune(&mut conn, before)?;
                say(
                    ctx,
                    &format!("deleted {n} usage records before {when}; daily totals are kept"),
                );
                Ok(())
            }
        }
    }
}

fn report(ctx: &Context, a: ReportArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now().naive_utc();
    let range = report::resolve(
        a.since.as_deref(),
        a.until.as_deref(),
        a.period.as_deref(),
        now,
    )
    .map_err(anyhow::Error::msg)?;
    let query = report::Query {
        range,
        users: a.users,
        teams: a.teams,
        by: a.by,
    };
    let mut conn = ctx.connection()?;
    let rows = report::run(&mut conn, &query).context("cannot read usage")?;
    let text = render(&rows, &query.by, a.format)?;
    match a.output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => Ok(std::io::stdout().lock().write_all(text.as_bytes())?),
    }
}

fn render(rows: &[report::Row], by: &[GroupBy], format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(&report::to_json(rows, by))? + "\n",
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header: Vec<&str> = by.iter().map(|g| g.name()).chain(METRICS).collect();
            w.write_record(&header)?;
            for r in rows {
                let cells: Vec<String> = r
                    .keys
                    .iter()
                    .map(|k| output::csv_text(k))
                    .chain(metric_cells(r))
                    .collect();
                w.write_record(&cells)?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        Format::Table => {
            let header: Vec<String> = by
                .iter()
                .map(|g| g.name())
                .chain(METRICS)
                .map(|h| h.to_uppercase())
                .collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let mut t = output::table(&header);
            for r in rows {
                // A user without a team shows as `-`.
                let keys = r.keys.iter().zip(by).map(|(k, g)| match (g, k.is_empty()) {
                    (GroupBy::Team, true) => "-".to_owned(),
                    _ => k.clone(),
                });
                t.add_row(keys.chain(metric_cells(r)).collect::<Vec<_>>());
            }
            let total = report::totals(rows);
            let mut label = vec![String::new(); by.len()];
            if let Some(first) = label.first_mut() {
                *first = "TOTAL".into();
            }
            t.add_row(
                label
                    .into_iter()
                    .chain(metric_cells(&total))
                    .collect::<Vec<_>>(),
            );
            format!("{t}\n")
        }
    })
}

fn metric_cells(r: &report::Row) -> impl Iterator<Item = String> {
    [
        r.requests,
        r.errors,
        r.prompt_tokens,
        r.completion_tokens,
        r.total_tokens,
        r.cached_tokens,
        r.estimated_requests,
    ]
    .into_iter()
    .map(|n| n.to_string())
    .chain(std::iter::once(
        r.cost.usd().map(|c| format!("{c:.6}")).unwrap_or_default(),
    ))
}
