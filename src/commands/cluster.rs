//! `chatgate cluster status`: the instances sharing the database (SPEC §10).

use super::Context;
use crate::output::{self, Format};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The `serve` instances sharing this database, from the rows each refreshes every second
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

const FIELDS: &[&str] = &[
    "instance",
    "address",
    "version",
    "started_at",
    "last_seen_at",
    "in_flight",
];

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let Command::Status { format } = self;
        let ttl = ctx.loaded.config.cluster.lease_ttl;
        let list = crate::cluster::status(&mut ctx.connection()?, ttl)?;
        match format {
            Format::Json => output::print_json(&list),
            Format::Csv => output::print_csv(&list, FIELDS),
            Format::Table => {
                let mut t = output::table(&[
                    "INSTANCE",
                    "ADDRESS",
                    "VERSION",
                    "STARTED",
                    "LAST SEEN",
                    "IN FLIGHT",
                ]);
                for i in &list {
                    t.add_row(vec![
                        i.instance.clone(),
                        i.address.clone(),
                        i.version.clone(),
                        i.started_at.clone(),
                        i.last_seen_at.clone(),
                        i.in_flight.to_string(),
                    ]);
                }
                println!("{t}");
                if list.is_empty() {
                    super::say(ctx, "no instance is serving on this database");
                }
                Ok(())
            }
        }
    }
}
