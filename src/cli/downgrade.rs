//! `dbtool downgrade TARGET`.

use dbtool::{DownTarget, Error, RunOptions};

use super::exit;

use super::{render, safety, Context};

/// Run down migrations, newest first (-1, a version, or base)
#[derive(clap::Args)]
pub struct Args {
    /// -N to undo the last N migrations, a version to go back to, or base to undo all
    #[arg(allow_negative_numbers = true)]
    target: String,
    /// Print the plan and the exact SQL; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: DownTarget = args.target.parse()?;
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().downgrade(
            target,
            &RunOptions {
                dry_run: args.dry_run,
                before_change: Some(hook),
                ..RunOptions::default()
            },
        )
    })?;
    render::run_report(&ctx.out, &report);
    Ok(exit::OK)
}
