//! `dbtool init`: create the database and bring it to head.

use dbtool::{Error, RunOptions};

use super::exit;

use super::{render, safety, Context};

/// Create the database and upgrade it to the newest migration
#[derive(clap::Args)]
pub struct Args {
    /// Do not take the automatic backup when an existing database gets pending migrations
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().init(&RunOptions {
            before_change: Some(hook),
            ..RunOptions::default()
        })
    })?;
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
