//! `dbtool redo` (Rails' `db:migrate:redo`).

use dbtool::{Error, RunOptions};

use super::exit;

use super::{render, safety, Context};

/// Run the newest applied migration's down and then its up again, in one transaction, and record
/// its new checksum (after the automatic backup): for the migration you are still writing
#[derive(clap::Args)]
pub struct Args {
    /// Print the plan and the exact SQL; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().redo(&RunOptions {
            dry_run: args.dry_run,
            before_change: Some(hook),
            ..RunOptions::default()
        })
    })?;
    render::run_report(&ctx.out, &report);
    Ok(exit::OK)
}
