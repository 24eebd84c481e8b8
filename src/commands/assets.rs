//! `chatgate generate-assets DIR` (hidden): writes the shell completions and
//! man pages generated from the clap definition, so the committed
//! `completions/` and `man/` are never edited by hand. A test fails when
//! they are stale.

use crate::cli::Cli;
use anyhow::Context as _;
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write `completions/` and `man/` (the repository root)
    #[arg(default_value = ".")]
    dir: PathBuf,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        for (path, bytes) in render()? {
            let path = self.dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Every generated file: its path under the repository root and content.
pub fn render() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "chatgate.bash"),
        (Shell::Zsh, "_chatgate"),
        (Shell::Fish, "chatgate.fish"),
    ] {
        let mut cmd = offered(&Cli::command());
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd, "chatgate", &mut bytes);
        out.push((Path::new("completions").join(file), bytes));
    }
    let cmd = Cli::command();
    man_pages(&cmd, "chatgate", "chatgate", &mut out)?;
    Ok(out)
}

/// The command line as the completions offer it: a copy without the hidden
/// subcommands and flags, which clap_complete would list too (clap issue
/// #1335). clap_mangen leaves them out by itself.
fn offered(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_owned())
        .visible_aliases(cmd.get_visible_aliases().map(str::to_owned))
        .propagate_version(cmd.is_propagate_version_set())
        .subcommand_required(cmd.is_subcommand_required_set())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(offered),
        );
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_owned());
    }
    out
}

/// chatgate.1, then one page per subcommand (chatgate-user-add.1, …);
/// `usage` is how it is typed (`chatgate user add`).
fn man_pages(
    cmd: &clap::Command,
    name: &str,
    usage: &str,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    let cmd = cmd
        .clone()
        .display_name(name.to_owned())
        .bin_name(usage.to_owned());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut bytes)
        .context("cannot render a man page")?;
    out.push((Path::new("man").join(format!("{name}.1")), bytes));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = sub.get_name();
        man_pages(
            sub,
            &format!("{name}-{sub_name}"),
            &format!("{usage} {sub_name}"),
            out,
        )?;
    }
    Ok(())
}
