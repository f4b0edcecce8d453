//! `dbtool create "description"`.

use dbtool::{exit, Error};
use time::OffsetDateTime;

use super::Context;

/// Write a new migration pair V{next}__{slug}.sql and .down.sql
#[derive(clap::Args)]
pub struct Args {
    /// What the migration does, e.g. "Add user preferences table"
    name: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let report = ctx
        .migrator()
        .create(&args.name, OffsetDateTime::now_utc())?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
    } else {
        out.line(format!("created {}", out.path(&report.up)));
        out.line(format!("created {}", out.path(&report.down)));
    }
    Ok(exit::OK)
}
