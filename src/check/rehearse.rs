//! `dbtool rehearse`: the pending migrations on a consistent temporary copy of the real database.
//!
//! The plan is the one `upgrade` would make (same planner, same pre-flight checks: an edited or
//! missing file stops a rehearsal exactly as it stops an upgrade). Each step then runs on the copy
//! with the migrator's executor, one step per transaction, so the report can say per step how
//! long it took, how many rows each table had before and after, and whether `quick_check` and the
//! foreign-key check still pass. The original is opened read-only and never written.
//!
//! One difference with `upgrade` is handled explicitly: `upgrade` checks foreign keys once, at
//! the end of the whole plan, so a step may leave violations that a later step of the same plan
//! repairs. When a step fails only on foreign keys and steps follow it, the rest of the plan is
//! run again as one group on the same copy, as `upgrade` would; if that passes, so does the
//! rehearsal, with a note.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use rusqlite::Connection;

use super::{integrity_problems, row_counts, scratch, Checker, Finding, Result};
use crate::db::{self, DbError};
use crate::migrate::{self, MigrateError, MigrationSet, Operation, Step, StepReport, UpTarget};

/// `rehearse`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsalReport {
    pub database: PathBuf,
    #[serde(rename = "from_version")]
    pub from: Option<i32>,
    #[serde(rename = "to_version")]
    pub to: Option<i32>,
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    /// Time to take the consistent copy.
    pub copy_ms: f64,
    /// Size of the copy (the original's pages).
    pub copy_bytes: u64,
    pub steps: Vec<RehearsalStep>,
    pub passed: bool,
    /// Problems found before the first step (an already damaged file) or after the last.
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// Not run: an earlier step failed.
    NotRun,
}

/// One pending migration, rehearsed.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsalStep {
    pub version: i32,
    pub name: String,
    pub path: Option<PathBuf>,
    pub status: StepStatus,
    /// Wall time on the copy: SQL, history row, foreign-key check and commit.
    pub duration_ms: f64,
    /// Rows inserted, updated or deleted by its statements.
    pub rows_changed: u64,
    /// Every table before and after the step (absent on one side: created or dropped).
    pub rows: Vec<TableRows>,
    pub problems: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub table: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

impl TableRows {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

pub(super) fn table_rows(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> Vec<TableRows> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|t| TableRows {
            table: t.clone(),
            before: before.get(t).copied(),
            after: after.get(t).copied(),
        })
        .collect()
}

pub(super) fn pending_step(step: &Step) -> RehearsalStep {
    RehearsalStep {
        version: step.version,
        name: step.name.clone(),
        path: step.path.clone(),
        status: StepStatus::NotRun,
        duration_ms: 0.0,
        rows_changed: 0,
        rows: Vec::new(),
        problems: Vec::new(),
    }
}

pub(super) fn rows_changed(report: &StepReport) -> u64 {
    report.statements.iter().map(|s| s.rows_changed).sum()
}

pub(super) fn rehearse(checker: &Checker, target: UpTarget) -> Result<RehearsalReport> {
    let database = checker.database();
    let set = MigrationSet::load(checker.migrations_dir())?;
    let started = Instant::now();
    let copy = scratch::copy(database, checker.busy_timeout, "rehearse")?;
    let copy_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (conn, path) = (&copy.conn, copy.path.as_path());

    let applied = migrate::read_history(conn, path)?;
    if applied.is_empty() {
        let tables = db::user_tables(conn, path)?;
        if !tables.is_empty() {
            return Err(MigrateError::UnmanagedDatabase {
                path: database.to_path_buf(),
                tables,
            }
            .into());
        }
    }
    let plan = migrate::plan_upgrade(&set, &applied, target)?;
    let mut report = RehearsalReport {
        database: database.to_path_buf(),
        from: plan.from,
        to: plan.to,
        head: set.head().map(|m| m.version),
        copy_ms,
        copy_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        steps: plan.steps.iter().map(pending_step).collect(),
        passed: false,
        findings: Vec::new(),
        notes: Vec::new(),
    };
    if plan.is_empty() {
        report.passed = true;
        report
            .notes
            .push("nothing pending: nothing to rehearse".into());
        return Ok(report);
    }

    let damaged = integrity_problems(conn, path, false)?;
    if !damaged.is_empty() {
        let mut finding = Finding::new(
            "integrity-check",
            "the database is already damaged (PRAGMA quick_check on the copy, before any migration)",
        )
        .with_hint("restore a backup first (`dbtool restore`); do not migrate a damaged file");
        finding.details = damaged;
        report.findings.push(finding);
        return Ok(report);
    }
    let violations = db::foreign_key_violations(conn, path)?;
    if !violations.is_empty() {
        report.notes.push(format!(
            "the database already has {} foreign-key violation(s); only new ones count against a migration (see `dbtool check`)",
            violations.len()
        ));
    }

    // The plan runs exactly as `upgrade` runs it (one transaction, commit boundaries at
    // no-transaction steps, the foreign-key check before each commit); the observer looks at the
    // copy after each step, inside the transaction.
    let mut rows_before: Vec<Option<BTreeMap<String, u64>>> = vec![None; plan.steps.len()];
    rows_before[0] = Some(row_counts(conn, path)?);
    let mut running = 0usize;
    let mut step_started = Instant::now();
    // The first step that leaves foreign-key violations a later step of the plan repairs.
    let mut left_violations: Option<(usize, usize)> = None;
    let result = {
        let mut observe = |conn: &Connection,
                           step: &Step,
                           done: &StepReport|
         -> std::result::Result<(), MigrateError> {
            // Steps are told apart by version (a plan never holds one twice). A step may be
            // observed twice when the session re-runs a transaction; the last run counts.
            let Some(i) = plan.steps.iter().position(|s| s.version == step.version) else {
                return Ok(());
            };
            let after = db::row_counts(conn, path)?;
            let entry = &mut report.steps[i];
            entry.duration_ms = done.duration_ms;
            entry.rows_changed = rows_changed(done);
            entry.rows = table_rows(rows_before[i].as_ref().unwrap_or(&after), &after);
            entry.status = after_step_checks(conn, path, entry)?;
            if let Some(next) = rows_before.get_mut(i + 1) {
                *next = Some(after);
            }
            if left_violations.is_none_or(|(k, _)| k >= i) {
                let new = db::foreign_key_violations(conn, path)?
                    .iter()
                    .filter(|v| violations.binary_search(v).is_err())
                    .count();
                left_violations = (new > 0).then_some((i, new));
            }
            running = i + 1;
            step_started = Instant::now();
            if entry.status == StepStatus::Failed {
                return Err(MigrateError::Stopped {
                    version: step.version,
                    name: step.name.clone(),
                    reason: "PRAGMA quick_check reports problems on the copy".into(),
                });
            }
            Ok(())
        };
        migrate::run_plan(conn, path, plan.clone(), Operation::Upgrade, &mut observe)
    };
    match result {
        Ok(_) => {
            if let Some((i, count)) = left_violations {
                let step = &plan.steps[i];
                report.notes.push(format!(
                    "V{}__{} leaves {count} foreign-key violation(s) that later migrations of the plan repair; `upgrade` checks at the end of each transaction, so it passes (but `upgrade {}` would not)",
                    step.version, step.name, step.version
                ));
            }
        }
        Err(MigrateError::Stopped { .. }) => {}
        Err(e) => {
            // A foreign-key refusal comes at the commit, after the transaction's last step;
            // anything else from the step that was running.
            let failed = match e.db() {
                Some(DbError::ForeignKeyViolations { .. }) => running.saturating_sub(1),
                _ => running.min(plan.steps.len() - 1),
            };
            let entry = &mut report.steps[failed];
            if entry.status == StepStatus::NotRun {
                entry.duration_ms = step_started.elapsed().as_secs_f64() * 1000.0;
            }
            fail(entry, &e);
        }
    }
    report.passed =
        report.findings.is_empty() && report.steps.iter().all(|s| s.status == StepStatus::Passed);
    Ok(report)
}

pub(super) fn fail(step: &mut RehearsalStep, e: &MigrateError) {
    step.status = StepStatus::Failed;
    let finding = Finding::from_error(
        e.code(),
        &format!(
            "V{}__{} fails on a copy of the database",
            step.version, step.name
        ),
        e,
    );
    step.problems.push(finding);
}

/// `quick_check` after a step that ran; a damaged file fails the step.
fn after_step_checks(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    step: &mut RehearsalStep,
) -> std::result::Result<StepStatus, DbError> {
    let damaged = db::integrity_problems(conn, path, db::Integrity::Quick)?;
    if damaged.is_empty() {
        return Ok(StepStatus::Passed);
    }
    let mut finding = Finding::new(
        "integrity-check",
        format!(
            "after V{}__{}, PRAGMA quick_check reports {} problem(s)",
            step.version,
            step.name,
            damaged.len()
        ),
    );
    finding.details = damaged;
    step.problems.push(finding);
    Ok(StepStatus::Failed)
}
