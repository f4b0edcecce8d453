//! `dbtool check [--full]`.

use dbtool::check::{CheckOptions, Finding, IntegrityLevel};
use dbtool::Error;

use super::exit;

use super::{findings, inspect, render, safety, Context};

/// Check the database against its migrations: drift, pending, edited or missing files,
/// integrity and foreign keys; exits 3 when anything is found
#[derive(clap::Args)]
pub struct Args {
    /// Run PRAGMA integrity_check (slower, also checks every index) instead of quick_check
    #[arg(long)]
    full: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let options = CheckOptions {
        integrity: if args.full {
            IntegrityLevel::Full
        } else {
            IntegrityLevel::Quick
        },
        schema_file: ctx.config.schema.as_ref().map(|s| s.value.clone()),
    };
    let mut report = ctx.checker().check(&options)?;
    let leftovers = safety::leftovers(ctx);
    if !leftovers.is_empty() {
        let mut finding = Finding::new(
            inspect::LEFTOVER_CODE,
            format!(
                "{} temporary file(s) left by a dbtool run that was killed",
                leftovers.len()
            ),
        );
        finding.details = leftovers.iter().map(|p| ctx.out.path(p)).collect();
        report.findings.push(finding);
    }
    findings::attach_hints(&mut report.findings);
    let code = if report.is_clean() {
        exit::OK
    } else {
        exit::DIFFERENCE
    };
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(code);
    }
    let db = out.path(&report.database);
    out.line(format!(
        "{db} against {}: at {}{}",
        out.path(&report.migrations),
        render::version(report.current),
        render::head_mark(report.current, report.head)
    ));
    for f in &report.findings {
        findings::finding(out, f, "");
    }
    findings::notes(out, &report.notes, "");
    let pragma = match report.integrity {
        IntegrityLevel::Quick => "quick_check",
        IntegrityLevel::Full => "integrity_check",
    };
    if report.is_clean() {
        let drift = if report.drift_checked {
            "schema matches the migrations"
        } else {
            "schema not compared"
        };
        if ctx.postgres().is_some() {
            // The server enforces constraints as rows change: nothing like quick_check to run.
            out.line(format!("ok: {drift}, nothing pending"));
        } else {
            out.line(format!(
                "ok: {drift}, nothing pending, {pragma} ok, no foreign-key violations"
            ));
        }
    } else {
        out.line(format!("{} problem(s) found", report.findings.len()));
    }
    Ok(code)
}
