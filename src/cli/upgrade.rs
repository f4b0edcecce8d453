//! `dbtool upgrade [TARGET]`.

use dbtool::{exit, Error, RunOptions, UpTarget};

use super::{render, Context};

/// Apply pending migrations (all of them, up to a version, or the next N)
#[derive(clap::Args)]
pub struct Args {
    /// head (default), a version (3), or +N for the next N migrations
    #[arg(default_value = "head", allow_hyphen_values = true)]
    target: String,
    /// Print the plan and the exact SQL; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: UpTarget = args.target.parse()?;
    let options = RunOptions {
        dry_run: args.dry_run,
        ..RunOptions::default()
    };
    let report = ctx.migrator().upgrade(target, &options)?;
    render::run_report(&ctx.out, &report);
    Ok(exit::OK)
}
