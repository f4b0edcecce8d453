//! Human rendering of findings, shared by `check`, `verify` and `rehearse`.

use dbtool::check::Finding;

use super::Output;

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
