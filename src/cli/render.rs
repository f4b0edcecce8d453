//! Human rendering shared by several commands.

use dbtool::migrate::{Action, RunReport, Warning};

use super::Output;

pub fn version(v: Option<i32>) -> String {
    v.map_or("base (no migrations applied)".into(), |v| {
        format!("version {v}")
    })
}

/// `upgrade`, `downgrade`, `stamp`: one line per step with its duration; the SQL in a dry run.
pub fn run_report(out: &Output, report: &RunReport) {
    if out.json {
        out.json(report);
        return;
    }
    let db = out.path(&report.database);
    let op = report.operation.as_str();
    warnings(out, &report.warnings);
    if report.steps.is_empty() {
        out.line(format!(
            "{db}: nothing to {op}, at {}{}",
            version(report.from),
            head_mark(report.from, report.head)
        ));
        return;
    }
    if report.dry_run {
        out.line(format!(
            "-- dry run: {op} {db} from {} to {}; nothing will change",
            version(report.from),
            version(report.to)
        ));
        for step in &report.steps {
            let file = step
                .path
                .as_deref()
                .map(|p| out.path(p))
                .unwrap_or_default();
            let verb = match step.action {
                Action::Apply => "apply",
                Action::Revert => "revert",
                Action::Record => "record (SQL not run)",
                Action::Forget => "forget (SQL not run)",
                Action::Rebuild => "rebuild",
            };
            out.line(format!(
                "-- {verb} V{}__{} ({file})",
                step.version, step.name
            ));
            if let Some(sql) = &step.sql {
                out.line(sql.trim_end());
            }
        }
        return;
    }
    if let Some(backup) = &report.backup {
        out.note(format!("backup: {}", out.path(backup)));
    }
    for step in &report.steps {
        let verb = action_verb(step.action);
        let marker = if step.no_transaction {
            "  (no transaction)"
        } else {
            ""
        };
        out.line(format!(
            "{verb:<9} V{}__{:<40} {:>9.1} ms{marker}",
            step.version, step.name, step.duration_ms
        ));
        for warning in &step.warnings {
            out.note(format!("warning[rebuild-value-kept]: {warning}"));
        }
    }
    out.line(format!(
        "{db}: {} -> {}{}",
        version(report.from),
        version(report.to),
        head_mark(report.to, report.head)
    ));
}

fn action_verb(action: Action) -> &'static str {
    match action {
        Action::Apply => "applied",
        Action::Revert => "reverted",
        Action::Record => "stamped",
        Action::Forget => "unstamped",
        Action::Rebuild => "rebuilt",
    }
}

pub fn head_mark(version: Option<i32>, head: Option<i32>) -> &'static str {
    if version.is_some() && version == head {
        " (head)"
    } else {
        ""
    }
}

/// Lint warnings (`warning[code]: file:line: message`, then the hint), on stderr.
pub fn warnings(out: &Output, warnings: &[Warning]) {
    for warning in warnings {
        let place = match (&warning.path, warning.line) {
            (Some(p), Some(l)) => format!("{}:{l}: ", out.path(p)),
            (Some(p), None) => format!("{}: ", out.path(p)),
            _ => String::new(),
        };
        out.note(format!(
            "warning[{}]: {place}{}",
            warning.code, warning.message
        ));
        if let Some(hint) = &warning.hint {
            out.note(format!("  hint: {hint}"));
        }
    }
}
