//! `dbtool status [--exit-code]`.

use dbtool::Error;

use super::exit;

use super::{render, Context};

/// Show pending migrations and any problem that would stop an upgrade
#[derive(clap::Args)]
pub struct Args {
    /// Exit with status 3 when migrations are pending or a problem was found (for deploy scripts)
    #[arg(long)]
    exit_code: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let mut report = ctx.migrator().status()?;
    // An edited migration: `redo` when it is the newest applied one, `reset --yes` otherwise
    // (problems and edited entries come in the same, version, order).
    let mut edited = report
        .entries
        .iter()
        .filter(|e| e.state == dbtool::migrate::MigrationState::EditedSinceApplied)
        .map(|e| e.version);
    for problem in report.problems.iter_mut() {
        if problem.code == "edited-migration" {
            if let Some(version) = edited.next() {
                problem.hint = Some(super::hints::edited_migration_hint(version, report.current));
            }
        }
    }
    super::findings::attach_problem_hints(&mut report.problems);
    let out = &ctx.out;
    let code = if args.exit_code && (!report.pending.is_empty() || !report.problems.is_empty()) {
        exit::DIFFERENCE
    } else {
        exit::OK
    };
    if out.json {
        out.json(&report);
        return Ok(code);
    }
    let db = out.path(&report.database);
    render::warnings(out, &report.warnings);
    if !report.database_exists {
        out.line(format!(
            "{db} does not exist yet ({} migration(s) to apply: `dbtool init`)",
            report.pending.len()
        ));
    } else if !report.problems.is_empty() {
        // Not "up to date": a database ahead of the files, an edited migration, or tables
        // without history all stop `upgrade`; say where it stands and list them below.
        out.line(format!(
            "{db}: at {}, {} pending, {} problem(s) that stop `dbtool upgrade`:",
            render::version(report.current),
            report.pending.len(),
            report.problems.len()
        ));
    } else if report.pending.is_empty() {
        out.line(format!(
            "{db}: up to date at {}{}",
            render::version(report.current),
            render::head_mark(report.current, report.head)
        ));
    } else {
        out.line(format!(
            "{db}: at {}, {} pending:",
            render::version(report.current),
            report.pending.len()
        ));
    }
    if report.database_exists || !report.pending.is_empty() {
        for entry in report
            .entries
            .iter()
            .filter(|e| report.pending.contains(&e.version))
        {
            let file = entry
                .up_path
                .as_deref()
                .map(|p| out.path(p))
                .unwrap_or_default();
            out.line(format!(
                "  pending V{}__{}  {file}",
                entry.version, entry.name
            ));
        }
    }
    for problem in &report.problems {
        out.line(format!("problem[{}]: {}", problem.code, problem.message));
        if let Some(hint) = &problem.hint {
            out.line(format!("  hint: {hint}"));
        }
    }
    Ok(code)
}
