//! Logs through `tracing` on stderr: `RUST_LOG` wins, then `-v`/`-q`, then
//! `log.level`; `log.format: json` for log shippers. The level can change
//! at run time (SIGHUP reload).
//!
//! Lines are formatted on the thread that logs and written by a logging
//! thread (tracing-appender), buffered: under load many lines go out in one
//! write instead of one write(2) per request on a worker.

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
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
        LogFormat::Text => registry.with(fmt).try_init(),
    };
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
    guard
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
