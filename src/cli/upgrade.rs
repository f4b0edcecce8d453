//! `dbtool upgrade [TARGET]`.

use dbtool::check::CheckError;
use dbtool::{Error, RunOptions, UpTarget};

use super::exit;

use super::{rehearse, render, safety, Context};

/// Apply pending migrations (all of them, up to a version, or the next N)
#[derive(clap::Args)]
pub struct Args {
    /// head (default), a version (3), or +N for the next N migrations
    #[arg(default_value = "head", allow_negative_numbers = true)]
    target: String,
    /// Print the plan and the exact SQL; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Rehearse on a temporary copy first (`dbtool rehearse`); upgrade only if that passed
    #[arg(long, conflicts_with = "dry_run")]
    rehearse: bool,
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: UpTarget = args.target.parse()?;
    let rehearsal = if args.rehearse {
        let mut report = ctx.checker().rehearse(target)?;
        super::findings::attach_hints(&mut report.findings);
        super::findings::attach_hints(report.steps.iter_mut().flat_map(|s| &mut s.problems));
        if !ctx.out.json {
            rehearse::show(&ctx.out, &report);
        }
        if !report.passed {
            return Err(CheckError::RehearsalFailed {
                database: report.database.clone(),
                failed_at: rehearse::failed_at(&report),
            }
            .into());
        }
        Some(report)
    } else {
        None
    };
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().upgrade(
            target,
            &RunOptions {
                dry_run: args.dry_run,
                before_change: Some(hook),
                ..RunOptions::default()
            },
        )
    })?;
    match rehearsal {
        Some(rehearsal) if ctx.out.json => ctx.out.json(&serde_json::json!({
            "rehearsal": rehearsal,
            "upgrade": report,
        })),
        _ => render::run_report(&ctx.out, &report),
    }
    Ok(exit::OK)
}
