//! `dbtool verify [--database FILE] [--data FILE]`: for CI.

use std::path::PathBuf;

use dbtool::check::VerifyOptions;
use dbtool::config::Source;
use dbtool::Error;

use super::exit;

use super::progress::Spinner;
use super::{findings, render, Context};

/// Prove the migrations on scratch databases: every up, down and up again restores the schema
/// (the stairway), versions form one line, every up has a down; exits 3 when anything is found
///
/// With --database given on the command line, also checks that database is at head without
/// drift. Nothing but --data's copy and in-memory databases is ever migrated.
#[derive(clap::Args)]
pub struct Args {
    /// Also run each migration's down-then-up on a copy of this database (with data) and check
    /// that every table keeps its row count
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let options = VerifyOptions {
        // Only an explicit --database: verify is about the migrations, and the default
        // content.db of a checkout may not exist.
        check_database: matches!(ctx.config.database.source, Source::Flag(_)),
        data: args.data.map(|d| ctx.out.cwd.join(d)),
        schema_file: ctx.config.schema.as_ref().map(|s| s.value.clone()),
    };
    let spinner = Spinner::start(&ctx.out, "verifying the migrations (up, down, up)");
    let report = ctx.checker().verify(&options);
    drop(spinner);
    let mut report = report?;
    findings::attach_hints(&mut report.findings);
    if let Some(db) = &mut report.database {
        findings::attach_hints(&mut db.findings);
    }
    if let Some(data) = &mut report.data {
        findings::attach_hints(&mut data.findings);
    }
    let code = if report.passed() {
        exit::OK
    } else {
        exit::DIFFERENCE
    };
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(code);
    }
    out.line(format!(
        "{}: {} migration(s), head {}",
        out.path(&report.migrations),
        report.migration_count,
        report.head.map_or("none".into(), |h| h.to_string())
    ));
    out.line(format!(
        "stairway: {} round trip(s) (up, down, up), {} migration runs, {:.1} ms",
        report.round_trips, report.migration_runs, report.duration_ms
    ));
    for f in &report.findings {
        findings::finding(out, f, "");
    }
    findings::notes(out, &report.notes, "");
    if let Some(db) = &report.database {
        let state = if db.is_clean() { "ok" } else { "PROBLEMS" };
        out.line(format!(
            "database {}: at {}{}: {state}",
            out.path(&db.database),
            render::version(db.current),
            render::head_mark(db.current, db.head)
        ));
        for f in &db.findings {
            findings::finding(out, f, "  ");
        }
        findings::notes(out, &db.notes, "  ");
    }
    if let Some(data) = &report.data {
        let rows: u64 = data.rows.values().sum();
        out.line(format!(
            "data {} (at {}, {rows} row(s) in {} table(s)): {} down-then-up round trip(s) on a copy",
            out.path(&data.path),
            render::version(data.from),
            data.rows.len(),
            data.round_trips
        ));
        for f in &data.findings {
            findings::finding(out, f, "  ");
        }
        findings::notes(out, &data.notes, "  ");
    }
    let total = report.findings.len()
        + report.database.as_ref().map_or(0, |d| d.findings.len())
        + report.data.as_ref().map_or(0, |d| d.findings.len());
    if report.passed() {
        out.line("verify passed");
    } else {
        let first = report.first_failure.as_ref().map_or(String::new(), |f| {
            format!("; the stairway first fails at {f}")
        });
        out.line(format!("verify FAILED: {total} problem(s){first}"));
    }
    Ok(code)
}
