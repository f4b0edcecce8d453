//! `dbtool downgrade TARGET`.

use dbtool::{exit, DownTarget, Error, RunOptions};

use super::{render, Context};

/// Run down migrations, newest first (-1, a version, or base)
#[derive(clap::Args)]
pub struct Args {
    /// -N to undo the last N migrations, a version to go back to, or base to undo all
    #[arg(allow_hyphen_values = true)]
    target: String,
    /// Print the plan and the exact SQL; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: DownTarget = args.target.parse()?;
    let options = RunOptions {
        dry_run: args.dry_run,
        ..RunOptions::default()
    };
    let report = ctx.migrator().downgrade(target, &options)?;
    render::run_report(&ctx.out, &report);
    Ok(exit::OK)
}
