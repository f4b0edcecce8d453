//! `dbtool rehearse [TARGET]`; also rendered by `upgrade --rehearse`.

use dbtool::check::{RehearsalReport, RehearsalStep};
use dbtool::{Error, UpTarget};

use super::exit;

use super::progress::Spinner;
use super::{findings, render, Context, Output};

/// Apply the pending migrations to a temporary copy of the database and report each step:
/// time, rows per table before and after, integrity and foreign-key problems. Changes nothing;
/// exits 3 when a step fails
#[derive(clap::Args)]
pub struct Args {
    /// head (default), a version (3), or +N for the next N migrations
    #[arg(default_value = "head", allow_negative_numbers = true)]
    target: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let target: UpTarget = args.target.parse()?;
    let spinner = Spinner::start(&ctx.out, "rehearsing the pending migrations on a copy");
    let report = ctx.checker().rehearse(target);
    drop(spinner);
    let mut report = report?;
    findings::attach_hints(&mut report.findings);
    findings::attach_hints(report.steps.iter_mut().flat_map(|s| &mut s.problems));
    if ctx.out.json {
        ctx.out.json(&report);
    } else {
        show(&ctx.out, &report);
    }
    Ok(if report.passed {
        exit::OK
    } else {
        exit::DIFFERENCE
    })
}

/// The first thing that failed, for `upgrade --rehearse`'s error.
pub fn failed_at(report: &RehearsalReport) -> String {
    if let Some(step) = report.steps.iter().find(|s| !s.problems.is_empty()) {
        let why = step
            .problems
            .first()
            .map_or(String::new(), |p| format!(" ({})", p.code));
        return format!("V{}__{}{why}", step.version, step.name);
    }
    report
        .findings
        .first()
        .map_or("an unknown step".into(), |f| {
            format!("the checks before the first step ({})", f.code)
        })
}

pub fn show(out: &Output, report: &RehearsalReport) {
    let db = out.path(&report.database);
    if report.steps.is_empty() {
        out.line(format!(
            "{db}: nothing to rehearse, at {}{}",
            render::version(report.from),
            render::head_mark(report.from, report.head)
        ));
        return;
    }
    out.line(format!(
        "rehearsal of {db} on a temporary copy ({:.1} MiB, copied in {:.1} ms): {} -> {}",
        report.copy_bytes as f64 / (1024.0 * 1024.0),
        report.copy_ms,
        render::version(report.from),
        render::version(report.to)
    ));
    for f in &report.findings {
        findings::finding(out, f, "  ");
    }
    for step in &report.steps {
        show_step(out, step);
    }
    findings::notes(out, &report.notes, "  ");
    if report.passed {
        out.line(format!(
            "rehearsal passed: {} migration(s) apply cleanly to a copy of {db}; the original is untouched",
            report.steps.len()
        ));
    } else {
        out.line(format!(
            "rehearsal FAILED at {}; the original is untouched",
            failed_at(report)
        ));
    }
}

fn show_step(out: &Output, step: &RehearsalStep) {
    use dbtool::check::StepStatus;
    let status = match step.status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "FAILED",
        StepStatus::NotRun => "not run",
    };
    let timing = match step.status {
        StepStatus::NotRun => String::new(),
        StepStatus::Failed => format!("{:>9.1} ms  (rolled back)", step.duration_ms),
        StepStatus::Passed => format!(
            "{:>9.1} ms  {} row(s) changed",
            step.duration_ms, step.rows_changed
        ),
    };
    out.line(format!(
        "  {status:<8} V{}__{:<36} {timing}",
        step.version, step.name
    ));
    let unchanged = step.rows.iter().filter(|r| !r.changed()).count();
    for rows in step.rows.iter().filter(|r| r.changed()) {
        let side = |n: Option<u64>| n.map_or("(none)".to_string(), |n| n.to_string());
        out.line(format!(
            "             {}: {} -> {} rows",
            rows.table,
            side(rows.before),
            side(rows.after)
        ));
    }
    if unchanged > 0 && step.status == StepStatus::Passed {
        out.line(format!(
            "             {unchanged} table(s) with unchanged row counts"
        ));
    }
    for p in &step.problems {
        findings::finding(out, p, "    ");
    }
}
