//! `dbtool stamp TARGET`: record migrations as applied without running them.

use dbtool::{Error, RunOptions, StampTarget};

use super::exit;

use super::{render, safety, Context};

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
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: StampTarget = args.target.parse()?;
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().stamp(
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
