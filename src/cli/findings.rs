//! Human rendering of findings, shared by `check`, `verify` and `rehearse`.

use dbtool::check::Finding;
use dbtool::migrate::Problem;

use super::{errors, Output};

/// Findings made of errors carry only their code: the CLI attaches the hint (hints name
/// commands and flags, which only the command line knows about).
pub fn attach_hints<'a>(findings: impl IntoIterator<Item = &'a mut Finding>) {
    for f in findings {
        if f.hint.is_none() {
            f.hint = errors::hint_for_code(&f.code);
        }
    }
}

/// The same for `status`'s problems.
pub fn attach_problem_hints(problems: &mut [Problem]) {
    for p in problems {
        if p.hint.is_none() {
            p.hint = errors::hint_for_code(&p.code);
        }
    }
}

/// `problem[code]: message`, its details and diff indented, then its hint.
pub fn finding(out: &Output, f: &Finding, indent: &str) {
    out.line(format!("{indent}problem[{}]: {}", f.code, f.message));
    for detail in &f.details {
        out.line(format!("{indent}    {detail}"));
    }
    if let Some(diff) = &f.diff {
        for line in diff.lines() {
            out.line(format!("{indent}    {line}"));
        }
    }
    if let Some(hint) = &f.hint {
        out.line(format!("{indent}  hint: {hint}"));
    }
}

pub fn notes(out: &Output, notes: &[String], indent: &str) {
    for note in notes {
        out.line(format!("{indent}note: {note}"));
    }
}
