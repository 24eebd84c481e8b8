//! Logs through `tracing` on stderr: `RUST_LOG` wins, then `-v`/`-q`, then
//! `log.level`; `log.format: json` for log shippers. The level can change
//! at run time (SIGHUP reload).
//!
//! Lines are formatted on the thread that logs and written by a logging
//! thread (tracing-appender), buffered: under load many lines go out in one
//! write instead of one write(2) per request on a worker.

use crate::config::{LogConfig, LogFormat};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the logger; lines are written until the returned guard drops.
pub fn init(log: &LogConfig, verbose: u8, quiet: bool) -> WorkerGuard {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => log.level.as_str(),
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // An empty RUST_LOG counts as unset (EnvFilter would read it as "error").
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    // Not lossy: a full queue slows the loggers down rather than lose lines.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("chatgate-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        // Colours only for a person at a terminal, not for journald or files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match log.format {
        LogFormat::Json => registry.with(fmt.json()).try_init(),
        LogFormat::Text => registry
            .with(fmt.event_format(TextFormat::new()))
            .try_init(),
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
    guard
}

/// The target of the one line per request (`proxy`'s meter logs it).
pub const REQUEST: &str = "chatgate::request";

/// tracing-subscriber's text format, with the per-request line written
/// straight into a buffer: the general formatter spent about 13k
/// instructions a request on it (its field visitor goes through `Debug`
/// and `fmt::write` for every value). The line is the same, byte for byte
/// (a test compares them); anything unusual takes the general path.
struct TextFormat {
    full: Format<Full, SystemTime>,
}

impl TextFormat {
    fn new() -> TextFormat {
        TextFormat {
            full: tracing_subscriber::fmt::format().with_target(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let plain = event.metadata().target() == REQUEST
            && !writer.has_ansi_escapes()
            && *event.metadata().level() == Level::INFO
            && ctx.event_scope().is_none();
        if !plain {
            return self.full.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        push_timestamp(&mut line, chrono::Utc::now());
        line.push_str("  INFO ");
        event.record(&mut Fields {
            line: &mut line,
            first: true,
        });
        line.push('\n');
        writer.write_str(&line)
    }
}

/// `2026-12-01T17:40:42.609568Z`, as tracing-subscriber writes it.
fn push_timestamp(line: &mut String, t: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    let digits = |line: &mut String, n: u32, width: usize| {
        let mut buf = itoa::Buffer::new();
        let s = buf.format(n);
        for _ in s.len()..width {
            line.push('0');
        }
        line.push_str(s);
    };
    digits(line, u32::try_from(t.year()).unwrap_or(0), 4);
    for (sep, n) in [
        ('-', t.month()),
        ('-', t.day()),
        ('T', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        line.push(sep);
        digits(line, n, 2);
    }
    line.push('.');
    digits(line, t.nanosecond() % 1_000_000_000 / 1000, 6);
    line.push('Z');
}

/// Writes fields as tracing-subscriber's default visitor does: the message
/// bare, then `name=value`, strings quoted (`Debug`), separated by spaces.
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.line.push(' ');
        }
        if field.name() != "message" {
            self.line.push_str(field.name());
            self.line.push('=');
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        let plain = value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if field.name() == "message" {
            self.line.push_str(value);
        } else if plain {
            self.line.push('"');
            self.line.push_str(value);
            self.line.push('"');
        } else {
            let _ = write!(self.line, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.name(field);
        let _ = write!(self.line, "{value:?}");
    }
}

/// A new `log.level` (ignored while `RUST_LOG` is set, which wins).
pub fn set_level(level: &str) {
    if std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty()) {
        return;
    }
    match (LEVEL.get(), EnvFilter::try_new(level)) {
        (Some(handle), Ok(filter)) => {
            let _ = handle.reload(filter);
        }
        (_, Err(e)) => tracing::warn!("log.level `{level}` is not valid: {e}"),
        (None, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn request_line(model: &str) {
        tracing::info!(
            target: "chatgate::request",
            request_id = %"req_45e335096e208bc20000000000000000",
            user = "alice",
            method = "POST",
            endpoint = %"/chat/completions",
            model,
            upstream = "echo",
            status = 200u16,
            tokens = 24i64,
            latency_ms = -1i64,
            "request"
        );
    }

    /// What a formatter writes for the request line, and for another line.
    fn written<F>(format: F, model: &str) -> String
    where
        F: FormatEvent<Registry, tracing_subscriber::fmt::format::DefaultFields>
            + Send
            + Sync
            + 'static,
    {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || sink.clone())
                .with_ansi(false)
                .event_format(format),
        );
        tracing::subscriber::with_default(subscriber, || {
            request_line(model);
            tracing::info!(target: "chatgate::request", "request");
            tracing::warn!(upstream = "echo", "something else");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn the_request_line_is_the_general_formatters_byte_for_byte() {
        for model in ["gpt-4o-mini", "a \"quoted\" \\ model", "naïve\nline", ""] {
            // Its general path shows targets here, so that the lines that
            // took it can be told from those that did not.
            let with_targets = TextFormat {
                full: tracing_subscriber::fmt::format().with_target(true),
            };
            let fast = written(with_targets, model);
            let general = written(tracing_subscriber::fmt::format().with_target(false), model);
            let without_time = |s: &str| -> Vec<String> {
                s.lines()
                    .map(|l| {
                        assert_eq!(&l[26..28], "Z ", "{l}");
                        l[27..].to_owned()
                    })
                    .collect()
            };
            let (fast, general) = (without_time(&fast), without_time(&general));
            assert_eq!(fast[..2], general[..2]);
            assert_eq!(
                fast[2],
                general[2].replace("WARN ", "WARN chatgate::logging::tests: ")
            );
        }
    }

    #[test]
    fn timestamps_are_written_as_tracing_writes_them() {
        let t = chrono::DateTime::from_timestamp_micros(1_764_610_842_609_568).unwrap();
        let mut line = String::new();
        push_timestamp(&mut line, t);
        assert_eq!(line, "2025-12-01T17:40:42.609568Z");
    }
}
