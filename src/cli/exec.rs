//! `dbtool exec FILE.sql [--dry-run]`.

use std::path::PathBuf;

use dbtool::check::ExecOptions;
use dbtool::Error;

use super::exit;

use super::{safety, Context};

/// Run a one-off SQL script (data fix, backfill) in one transaction, after the automatic backup;
/// reports rows changed per statement
///
/// The script runs like a migration: foreign keys are not enforced statement by statement (no
/// ON DELETE CASCADE), and the whole script is refused if it leaves a row pointing at a missing
/// parent. No BEGIN/COMMIT in the file. Make the script idempotent; --dry-run shows what it
/// would change.
#[derive(clap::Args)]
pub struct Args {
    /// The SQL script
    script: PathBuf,
    /// Run it, report, and roll back: change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let script = ctx.out.cwd.join(&args.script);
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.checker().exec(
            &script,
            &ExecOptions {
                dry_run: args.dry_run,
                before_change: Some(hook),
                ..Default::default()
            },
        )
    })?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    if let Some(backup) = &report.backup {
        out.note(format!("backup: {}", out.path(backup)));
    }
    for statement in &report.statements {
        // The statement's first line of SQL (its text may start with the comments above it).
        let mut lines = statement
            .sql
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"));
        let first_line = lines.next().unwrap_or_default();
        let more = if lines.next().is_some() { " …" } else { "" };
        out.line(format!(
            "line {:>4}  {:>8} row(s)  {first_line}{more}",
            statement.line, statement.rows_changed
        ));
    }
    let db = out.path(&report.database);
    if report.dry_run {
        out.line(format!(
            "dry run: {} row(s) would change in {db}; rolled back, nothing changed",
            report.rows_changed
        ));
    } else {
        out.line(format!(
            "{db}: {} row(s) changed, committed ({:.1} ms)",
            report.rows_changed, report.duration_ms
        ));
    }
    Ok(exit::OK)
}
