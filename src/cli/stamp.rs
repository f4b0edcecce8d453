//! `dbtool stamp TARGET`: record migrations as applied without running them.

use dbtool::{exit, Error, RunOptions, StampTarget};

use super::{render, Context};

/// Record migrations as applied (or not) without running their SQL
///
/// For adopting an existing database (`stamp head`) or recovering after a manual fix.
/// Migrations up to TARGET are recorded; history rows above it are removed.
#[derive(clap::Args)]
pub struct Args {
    /// head, a version, or base
    target: String,
    /// Print the plan; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: StampTarget = args.target.parse()?;
    let options = RunOptions {
        dry_run: args.dry_run,
        ..RunOptions::default()
    };
    let report = ctx.migrator().stamp(target, &options)?;
    render::run_report(&ctx.out, &report);
    Ok(exit::OK)
}
