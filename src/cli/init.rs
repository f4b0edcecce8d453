//! `dbtool init`: create the database and bring it to head.

use dbtool::{exit, Error, RunOptions};

use super::{render, Context};

/// Create the database and upgrade it to the newest migration
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<u8, Error> {
    let report = ctx.migrator().init(&RunOptions::default())?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    let db = out.path(&report.database);
    match &report.run {
        Some(run) => render::run_report(out, run),
        None => {
            out.line(format!(
                "{db} is already initialised at {}",
                render::version(report.current)
            ));
            if report.pending > 0 {
                out.note(format!(
                    "{} migration(s) pending: run `dbtool upgrade`",
                    report.pending
                ));
            }
        }
    }
    Ok(exit::OK)
}
