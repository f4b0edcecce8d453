//! `dbtool upgrade [TARGET]`.

use std::cell::RefCell;
use std::path::Path;

use dbtool::check::CheckError;
use dbtool::migrate::{ChangeContext, Step};
use dbtool::{Error, RunOptions, UpTarget};

use super::exit;

use super::progress::Spinner;
use super::{rehearse, render, safety, Context, Output};

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
    /// Print the whole upgrade as one SQL script for `sqlite3 DB < script` (history rows,
    /// transaction, foreign-key check included); change nothing
    #[arg(long, conflicts_with_all = ["dry_run", "rehearse", "no_backup"])]
    sql: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: UpTarget = args.target.parse()?;
    if args.sql {
        let script = ctx
            .migrator()
            .upgrade_script(target, time::OffsetDateTime::now_utc())?;
        if ctx.out.json {
            ctx.out.json(&script);
        } else {
            ctx.out.line(script.script.trim_end());
        }
        return Ok(exit::OK);
    }
    let rehearsal = if args.rehearse {
        let spinner = Spinner::start(&ctx.out, "rehearsing the pending migrations on a copy");
        let report = ctx.checker().rehearse(target);
        drop(spinner);
        let mut report = report?;
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
    // Drawn from the end of the automatic backup until the migrations are committed.
    let applying: RefCell<Option<Spinner>> = RefCell::new(None);
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        // Before anything is applied (and before the backup): say which files are empty.
        let warn_then_backup = |change: &ChangeContext<'_>| {
            warn_empty(&ctx.out, &change.plan.steps);
            let backup = hook(change)?;
            *applying.borrow_mut() = Some(Spinner::start(
                &ctx.out,
                format!("applying {} migration(s)", change.plan.steps.len()),
            ));
            Ok(backup)
        };
        let on_step = |step: &dbtool::migrate::StepReport, done: usize, total: usize| {
            if let Some(spinner) = applying.borrow().as_ref() {
                spinner.set_message(format!(
                    "applying migrations: {done}/{total} done (V{}__{})",
                    step.version, step.name
                ));
            }
        };
        ctx.migrator().upgrade(
            target,
            &RunOptions {
                dry_run: args.dry_run,
                before_change: Some(&warn_then_backup),
                on_step: Some(&on_step),
                ..RunOptions::default()
            },
        )
    })?;
    drop(applying.take());
    if report.dry_run {
        for step in &report.steps {
            if let (Some(path), Some(sql)) = (&step.path, &step.sql) {
                warn_if_empty(&ctx.out, path, sql);
            }
        }
    }
    match rehearsal {
        Some(rehearsal) if ctx.out.json => ctx.out.json(&serde_json::json!({
            "rehearsal": rehearsal,
            "upgrade": report,
        })),
        _ => render::run_report(&ctx.out, &report),
    }
    Ok(exit::OK)
}

/// `warning[empty-migration]` for each step about to apply a file with no SQL statement (a
/// `dbtool create` template left as it was): it would be recorded as applied and never run again.
fn warn_empty(out: &Output, steps: &[Step]) {
    for step in steps {
        if let (Some(path), Some(sql)) = (&step.path, &step.sql) {
            warn_if_empty(out, path, sql);
        }
    }
}

fn warn_if_empty(out: &Output, path: &Path, sql: &str) {
    if dbtool::sql::significant(sql).is_empty() {
        out.note(format!(
            "warning[empty-migration]: {}: has no SQL statements; it will be recorded as applied and not run again",
            out.path(path)
        ));
        out.note("  hint: write the change into the file first; if it is applied, edit it and run `dbtool redo`");
    }
}
