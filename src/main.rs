//! The `chatgate` binary: parse, run, and turn failures into one clear line
//! on stderr with exit code 1 (clap's usage errors exit 2).

use clap::Parser;
use std::process::ExitCode;

/// glibc's malloc was a tenth of the proxy's CPU under load (the profile
/// in BENCHMARKS.md). jemalloc costs a fraction of that; mimalloc was as
/// fast but held half again as much memory with 1,000 open streams.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = chatgate::cli::Cli::parse();
    let verbose = cli.verbose > 0;
    match chatgate::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if verbose {
                eprintln!("error: {e:?}");
            } else {
                // One line, even when a cause (libpq's, say) spans several.
                let text = format!("{e:#}");
                let line: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                eprintln!("error: {}", line.join("; "));
            }
            ExitCode::FAILURE
        }
    }
}
