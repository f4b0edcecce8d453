//! `dbtool check`: a live database against its migrations.
//!
//! Finds, each as a [`Finding`] with its own code: problems between files and history (edited or
//! missing files, out-of-order files, a database ahead of the files: `migrate::problems`, the
//! same checks that stop `upgrade`), pending migrations, schema drift, `PRAGMA quick_check`
//! (or `integrity_check`) messages and foreign-key violations.
//!
//! Drift is the live schema against the schema the migration files produce: the migrations the
//! history records as applied are run, in version order, on an in-memory database with the
//! migrator's own executor, and the two snapshots are compared as normalised DDL. When the
//! history and the files agree this is exactly `apply_in_memory` up to the recorded version; when
//! a file below the current version was never applied, it is left out, as it is in the database.
//! When an applied migration's file is missing, the expected schema cannot be known and drift is
//! not checked (the missing file is itself a finding).
//!
//! The database is opened read-only; nothing is written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::read_model;
use super::Result;
use super::{integrity_problems, run_steps, Checker, Finding};
use crate::db::{self, DbError, OpenMode};
use crate::migrate::Step;
use crate::migrate::{self, AppliedMigration, MigrationSet, Overview};
use crate::schema::{Change, Model, SchemaDiff};

/// How thoroughly to check the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrityLevel {
    /// `PRAGMA quick_check`: O(N), skips index-content cross-checks.
    #[default]
    Quick,
    /// `PRAGMA integrity_check`: also verifies every index against its table.
    Full,
}

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub integrity: IntegrityLevel,
    /// The declared schema (`schema.sql`), compared with the migrations' head.
    pub schema_file: Option<PathBuf>,
}

/// `check`'s result. Clean when `findings` is empty.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub database: PathBuf,
    pub migrations: PathBuf,
    #[serde(rename = "current_version")]
    pub current: Option<i32>,
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    pub integrity: IntegrityLevel,
    /// Whether the schema was compared (it is not when an applied migration's file is missing).
    pub drift_checked: bool,
    pub findings: Vec<Finding>,
    /// Things worth knowing that are not problems.
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

pub(super) fn check(checker: &Checker, options: &CheckOptions) -> Result<CheckReport> {
    let set = MigrationSet::load(checker.migrations_dir())?;
    check_against(checker.database(), &set, checker.busy_timeout, options)
}

/// The whole check of `database` against an already loaded `set` (also used by `verify
/// --database`).
pub(super) fn check_against(
    database: &Path,
    set: &MigrationSet,
    busy_timeout: Duration,
    options: &CheckOptions,
) -> Result<CheckReport> {
    let conn = db::open(database, OpenMode::ReadOnly, busy_timeout)?;
    let applied = migrate::read_history(&conn, database)?;
    let overview = Overview::new(set, &applied);
    let mut report = CheckReport {
        database: database.to_path_buf(),
        migrations: set.dir.clone(),
        current: overview.current,
        head: overview.head,
        integrity: options.integrity,
        drift_checked: false,
        findings: Vec::new(),
        notes: Vec::new(),
    };

    report.findings = history_findings(set, &applied, &overview);

    if applied.is_empty() && !db::user_tables(&conn, database)?.is_empty() {
        report.notes.push(UNMANAGED_NOTE.into());
    }
    match drift(&conn, database, set, &applied)? {
        Drift::Checked(findings) => {
            report.drift_checked = true;
            report.findings.extend(findings);
        }
        Drift::NotChecked(why) => report.notes.push(why),
    }

    if let Some(file) = &options.schema_file {
        report.findings.extend(schema_file_findings(set, file)?);
    }

    let full = options.integrity == IntegrityLevel::Full;
    let messages = integrity_problems(&conn, database, full)?;
    if !messages.is_empty() {
        let pragma = if full {
            "integrity_check"
        } else {
            "quick_check"
        };
        let lines: Vec<String> = messages
            .iter()
            .flat_map(|m| m.lines())
            .filter(|l| !l.starts_with("*** in database"))
            .map(str::to_string)
            .collect();
        let mut finding = Finding::new(
            "integrity-check",
            format!("PRAGMA {pragma} reports {} problem(s) in the file", lines.len()),
        )
        .with_hint(
            "stop writing to it; restore a backup (`dbtool restore`) or salvage it with `sqlite3 DB .recover`",
        );
        finding.details = limited(lines.into_iter(), 20);
        report.findings.push(finding);
    }

    let violations = db::foreign_key_violations(&conn, database)?;
    if !violations.is_empty() {
        let mut finding = Finding::new(
            "foreign-key-violation",
            format!(
                "{} row(s) point at a parent row that does not exist",
                violations.len()
            ),
        )
        .with_hint(
            "fix or delete the orphaned rows with a script (`dbtool exec FIX.sql --dry-run` first)",
        );
        finding.details = limited(violations.iter().map(|v| v.to_string()), 20);
        report.findings.push(finding);
    }
    Ok(report)
}

/// The note for a database with tables and no history.
pub(super) const UNMANAGED_NOTE: &str = "the database has tables but no migration history: if its schema matches the migrations, adopt it with `dbtool stamp head`";

/// Problems between the files and the history (`migrate::problems`, the same checks that stop
/// `upgrade`), then the pending migrations: the same findings on every engine.
pub(super) fn history_findings(
    set: &MigrationSet,
    applied: &[AppliedMigration],
    overview: &Overview,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for problem in migrate::problems(set, applied) {
        findings.push(Finding {
            code: problem.code().to_string(),
            message: problem.to_string(),
            hint: None, // attached by the CLI, by code
            diff: None,
            details: Vec::new(),
        });
    }
    let pending: Vec<String> = overview
        .pending()
        .map(|e| format!("V{}__{}", e.version, e.name))
        .collect();
    if !pending.is_empty() {
        let mut finding = Finding::new(
            "pending-migrations",
            format!(
                "{} migration(s) pending: the database is at {}, the files go to {}",
                pending.len(),
                version_text(overview.current),
                version_text(overview.head)
            ),
        )
        .with_hint("rehearse them with `dbtool rehearse`, then apply them with `dbtool upgrade`");
        finding.details = pending;
        findings.push(finding);
    }
    findings
}

pub(super) enum Drift {
    Checked(Vec<Finding>),
    NotChecked(String),
}

fn drift(
    conn: &Connection,
    database: &Path,
    set: &MigrationSet,
    applied: &[AppliedMigration],
) -> Result<Drift> {
    let files = match applied_files(set, applied) {
        Ok(files) => files,
        Err(why) => return Ok(Drift::NotChecked(why)),
    };
    let expected = expected_schema(&files);
    let actual = read_model(conn, database)?;
    Ok(compare(expected, &actual, applied))
}

/// The files of the applied migrations in version order, or (when one is missing) why the
/// expected schema cannot be known.
pub(super) fn applied_files<'s>(
    set: &'s MigrationSet,
    applied: &[AppliedMigration],
) -> std::result::Result<Vec<&'s migrate::MigrationFile>, String> {
    let mut files = Vec::new();
    for a in applied {
        match set.get(a.version) {
            Some(file) => files.push(file),
            None => {
                return Err(format!(
                    "schema drift not checked: applied migration V{}__{} has no file, so the expected schema is unknown",
                    a.version, a.name
                ))
            }
        }
    }
    Ok(files)
}

/// The drift findings: `expected` is the schema the applied migrations' files produce on an
/// empty database (or the error replaying them gave), `actual` the database's.
pub(super) fn compare<E: std::error::Error>(
    expected: std::result::Result<Model, E>,
    actual: &Model,
    applied: &[AppliedMigration],
) -> Drift {
    let current = applied.iter().map(|a| a.version).max();
    let expected = match expected {
        Ok(schema) => schema,
        Err(e) => {
            let finding = Finding::from_error(
                "migrations-fail",
                "the applied migrations' files no longer run on an empty database",
                &e,
            )
            .with_hint("run `dbtool verify` to find the migration that fails");
            return Drift::Checked(vec![finding]);
        }
    };
    let expected_label = format!("the migrations up to {}", version_text(current));
    let diff = expected.diff(actual, &expected_label, "the database");
    Drift::Checked(drift_findings(&diff))
}

/// The schema `files` produce, applied in order on an in-memory database.
pub(super) fn expected_schema(files: &[&migrate::MigrationFile]) -> Result<Model> {
    let path = Path::new(":memory:");
    let conn = Connection::open_in_memory()
        .map_err(|e| DbError::sqlite("opening a scratch database", path, e))?;
    if !files.is_empty() {
        run_steps(&conn, path, files.iter().map(|f| Step::apply(f)).collect())?;
    }
    read_model(&conn, path)
}

/// `schema-file-drift`: the declared schema against the schema at the head of `set` (the CI
/// guard for "edited schema.sql, forgot to generate the migration").
pub(super) fn schema_file_findings(set: &MigrationSet, file: &Path) -> Result<Vec<Finding>> {
    let declared = match crate::schema::declared::load(file) {
        Ok(declared) => declared,
        Err(e) => {
            let mut finding = Finding::new("schema-file-invalid", e.to_string())
                .with_hint("the declared schema must run on an empty database as it is");
            if let Some(cause) = std::error::Error::source(&e) {
                finding.details.push(format!("caused by: {cause}"));
            }
            return Ok(vec![finding]);
        }
    };
    let all: Vec<&migrate::MigrationFile> = set.migrations.iter().collect();
    // Migrations that fail are reported by the stairway and the drift check; nothing to add.
    let Ok(head) = expected_schema(&all) else {
        return Ok(Vec::new());
    };
    let declared_model = read_model(&declared.conn, file)?;
    let head_label = format!(
        "the migrations' head ({})",
        version_text(set.head().map(|m| m.version))
    );
    let diff = head.diff(&declared_model, &head_label, &file.display().to_string());
    if diff.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<String> = diff.changes.iter().map(|c| c.object()).collect();
    Ok(vec![Finding::new(
        "schema-file-drift",
        format!(
            "the declared schema {} differs from the migrations' head: {}",
            file.display(),
            objects.join(", ")
        ),
    )
    .with_hint("generate the migration with `dbtool create \"…\" --autogenerate`, or rewrite the file with `dbtool schema -o FILE`")
    .with_diff(diff)])
}

/// One finding per object that differs, each carrying its own part of the diff.
pub(super) fn drift_findings(diff: &SchemaDiff) -> Vec<Finding> {
    diff.changes
        .iter()
        .map(|change| {
            let object = change.object();
            let message = match change.change {
                Change::Missing => format!(
                    "{object} is in the migrations but not in the database (dropped by hand?)"
                ),
                Change::Unexpected => format!(
                    "{object} is in the database but not in the migrations (created by hand?)"
                ),
                Change::Changed => {
                    format!(
                        "{object} in the database differs from the migrations (changed by hand?)"
                    )
                }
            };
            Finding::new("schema-drift", message)
                .with_hint("put the change in a migration (`dbtool create`), or undo it by hand")
                .with_diff(SchemaDiff {
                    expected: diff.expected.clone(),
                    actual: diff.actual.clone(),
                    changes: vec![change.clone()],
                })
        })
        .collect()
}

pub(super) fn version_text(v: Option<i32>) -> String {
    v.map_or("base (no migrations)".into(), |v| format!("version {v}"))
}

/// At most `max` lines, then "… and N more".
pub(super) fn limited(lines: impl Iterator<Item = String>, max: usize) -> Vec<String> {
    let all: Vec<String> = lines.collect();
    let total = all.len();
    let mut out: Vec<String> = all.into_iter().take(max).collect();
    if total > max {
        out.push(format!("… and {} more", total - max));
    }
    out
}
