//! `dbtool verify`: prove, on scratch databases, that the migrations go up, come down and go up
//! again, for CI.
//!
//! The stairway walks ONE in-memory database: for every migration N in order, apply N and
//! snapshot the schema; run N's down and compare with the snapshot taken at N-1; apply N again and
//! compare with the snapshot at N. That is three migration runs per migration (O(n) runs, not the
//! O(n²) of re-applying from scratch at each step); only after a failure is the scratch database
//! rebuilt, so that the next migrations are still checked from the right schema. Every run uses
//! the migrator's own executor (foreign keys off, one transaction, foreign-key check before
//! commit), so what passes here is what `upgrade` and `downgrade` will do.
//!
//! Also checked: versions form one line (a gap or a duplicate is a finding), every up has a down
//! or is marked `-- dbtool:irreversible`, optionally a real database is at head without drift
//! (`--database`), and optionally, on a consistent copy of a database with data (`--data`), that
//! each migration's down-then-up keeps the row count of every table the down keeps (a down
//! marked `-- dbtool:lossy` only gets a note).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;

use super::drift::{self, CheckOptions, CheckReport};
use super::read_model;
use super::Result;
use super::{row_counts, run_steps, scratch, with_cause, Checker, Finding};
use crate::db::DbError;
use crate::migrate::Step;
use crate::migrate::{self, MigrateError, MigrationFile, MigrationSet};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Also check the checker's database: at head, no drift, no problems, integrity.
    pub check_database: bool,
    /// Run the down-then-up round trips on a copy of this database and compare row counts.
    pub data: Option<PathBuf>,
    /// The declared schema (`schema.sql`): reported when it differs from the head.
    pub schema_file: Option<PathBuf>,
}

/// `verify`'s result. Passed when no findings anywhere.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub migrations: PathBuf,
    pub migration_count: usize,
    pub head: Option<i32>,
    /// Migrations whose down-then-up was exercised on the stairway.
    pub round_trips: usize,
    /// Up and down runs the stairway made (about 3 per migration).
    pub migration_runs: usize,
    pub duration_ms: f64,
    /// The first migration the stairway found a problem with (its up, its down, or up again).
    pub first_failure: Option<String>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    /// `--database`: the database's own check.
    pub database: Option<CheckReport>,
    /// `--data`: the round trips on a copy of a database with data.
    pub data: Option<DataReport>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
            && self.database.as_ref().is_none_or(CheckReport::is_clean)
            && self.data.as_ref().is_none_or(|d| d.findings.is_empty())
    }
}

/// `verify --data`: round trips on a copy of a real database.
#[derive(Debug, Clone, Serialize)]
pub struct DataReport {
    pub path: PathBuf,
    /// The version the data was at.
    pub from: Option<i32>,
    pub round_trips: usize,
    /// Rows per table at the start.
    pub rows: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

pub(super) fn verify(checker: &Checker, options: &VerifyOptions) -> Result<VerifyReport> {
    let started = Instant::now();
    let dir = checker.migrations_dir();
    let mut report = VerifyReport {
        migrations: dir.to_path_buf(),
        migration_count: 0,
        head: None,
        round_trips: 0,
        migration_runs: 0,
        duration_ms: 0.0,
        first_failure: None,
        findings: Vec::new(),
        notes: Vec::new(),
        database: None,
        data: None,
    };
    let set = match MigrationSet::load(dir) {
        Ok(set) => set,
        Err(e @ MigrateError::DuplicateVersion { .. }) => {
            // A finding, not a crash: it is one of the things verify exists to catch.
            report.findings.push(Finding {
                code: e.code().into(),
                message: e.to_string(),
                hint: None, // attached by the CLI, by code
                diff: None,
                details: Vec::new(),
            });
            report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    report.migration_count = set.migrations.len();
    report.head = set.head().map(|m| m.version);

    version_line(&set, &mut report.findings);
    downs_present(&set, &mut report.findings, &mut report.notes);
    stairway(&set, &mut report)?;
    if let Some(file) = &options.schema_file {
        let findings = drift::schema_file_findings(&set, file)?;
        report.findings.extend(findings);
    }

    if options.check_database {
        report.database = Some(drift::check_against(
            checker.database(),
            &set,
            checker.busy_timeout,
            &CheckOptions::default(),
        )?);
    }
    if let Some(data) = &options.data {
        report.data = Some(data_round_trips(&set, data, checker.busy_timeout)?);
    }
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

/// `V0003__create_posts`: the up file's name without `.sql`, as the user sees it in the folder.
fn label(file: &MigrationFile) -> String {
    file.up
        .path
        .file_stem()
        .map_or_else(|| file.label(), |s| s.to_string_lossy().into_owned())
}

fn version_line(set: &MigrationSet, findings: &mut Vec<Finding>) {
    for pair in set.migrations.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.version > a.version + 1 {
            let missing = if b.version == a.version + 2 {
                format!("version {} is missing", a.version + 1)
            } else {
                format!("versions {}-{} are missing", a.version + 1, b.version - 1)
            };
            findings.push(
                Finding::new(
                    "version-gap",
                    format!(
                        "no migration between {} and {}: {missing}",
                        label(a),
                        label(b)
                    ),
                )
                .with_hint(
                    "renumber the files so the versions form one line (a file deleted or renamed?)",
                ),
            );
        }
    }
}

fn downs_present(set: &MigrationSet, findings: &mut Vec<Finding>, notes: &mut Vec<String>) {
    for file in &set.migrations {
        if file.down.is_some() {
            continue;
        }
        if file.up.directives.irreversible {
            notes.push(format!(
                "{} is marked irreversible: no round trip for it",
                label(file)
            ));
            continue;
        }
        let expected = migrate::down_path_for(file);
        findings.push(
            Finding::new(
                "missing-down",
                format!("{} has no down migration: {} does not exist", label(file), expected.display()),
            )
            .with_hint(format!(
                "write {}, or add `-- dbtool:irreversible` to the top of the up file if it cannot be undone",
                expected.file_name().unwrap_or_default().to_string_lossy()
            )),
        );
    }
}

fn scratch() -> Result<Connection> {
    Connection::open_in_memory()
        .map_err(|e| DbError::sqlite("opening a scratch database", Path::new(":memory:"), e).into())
}

/// A fresh scratch database with `files` applied in one run.
fn rebuild(files: &[MigrationFile]) -> Result<Connection> {
    let conn = scratch()?;
    if !files.is_empty() {
        run_steps(
            &conn,
            Path::new(":memory:"),
            files.iter().map(Step::apply).collect(),
        )?;
    }
    Ok(conn)
}

fn stairway(set: &MigrationSet, report: &mut VerifyReport) -> Result<()> {
    let path = Path::new(":memory:");
    let mut conn = scratch()?;
    let mut prev = read_model(&conn, path)?;
    let mut prev_label = "base (an empty database)".to_string();
    for (i, file) in set.migrations.iter().enumerate() {
        let name = label(file);
        let findings_before = report.findings.len();
        if let Err(e) = run_steps(&conn, path, vec![Step::apply(file)]) {
            report.first_failure.get_or_insert_with(|| name.clone());
            report.findings.push(
                Finding::from_error(
                    "up-failed",
                    &format!("{name}: the up migration fails after {prev_label}"),
                    &e,
                )
                .with_hint(
                    "fix the migration; `dbtool verify` runs every migration on an empty database",
                ),
            );
            report.notes.push(format!(
                "the stairway stopped at {name}: the migrations after it build on it"
            ));
            return Ok(());
        }
        report.migration_runs += 1;
        let at_n = read_model(&conn, path)?;
        let Some(down) = Step::revert(file) else {
            prev = at_n;
            prev_label = name;
            continue;
        };
        report.round_trips += 1;
        // Whether the scratch database is still exactly at N's schema after the round trip.
        let mut in_step = true;
        match run_steps(&conn, path, vec![down]) {
            Err(e) => {
                report.findings.push(
                    Finding::from_error(
                        "down-failed",
                        &format!("{name}: the down migration fails"),
                        &e,
                    )
                    .with_hint("fix the .down.sql file; `dbtool downgrade` would stop here"),
                );
                in_step = false;
            }
            Ok(_) => {
                report.migration_runs += 1;
                let after_down = read_model(&conn, path)?;
                let diff = prev.diff(
                    &after_down,
                    &format!("the schema at {prev_label}"),
                    &format!("after {name}'s down"),
                );
                let restored = diff.is_empty();
                if !restored {
                    report.findings.push(
                        Finding::new(
                            "down-does-not-restore",
                            format!(
                                "{name}: the down does not restore the schema of {prev_label}: {}",
                                summary(&diff)
                            ),
                        )
                        .with_hint(format!(
                            "make {} undo exactly what the up does",
                            down_file_name(file)
                        ))
                        .with_diff(diff),
                    );
                }
                match run_steps(&conn, path, vec![Step::apply(file)]) {
                    Err(e) => {
                        if restored {
                            report.findings.push(
                                Finding::from_error(
                                    "reapply-failed",
                                    &format!("{name}: the up fails when run again after its down"),
                                    &e,
                                )
                                .with_hint("the up must work on the schema its down leaves"),
                            );
                        } else if let Some(finding) = report.findings.last_mut() {
                            finding.details.push(format!(
                                "and the up then fails when run again: {}",
                                with_cause(&e)
                            ));
                        }
                        in_step = false;
                    }
                    Ok(_) => {
                        report.migration_runs += 1;
                        let again = read_model(&conn, path)?;
                        let diff = at_n.diff(
                            &again,
                            &format!("after {name}'s up"),
                            &format!("after {name}'s down and up again"),
                        );
                        if !diff.is_empty() {
                            if restored {
                                report.findings.push(
                                    Finding::new(
                                        "reapply-differs",
                                        format!(
                                            "{name}: up, down, up again gives another schema than up: {}",
                                            summary(&diff)
                                        ),
                                    )
                                    .with_diff(diff),
                                );
                            }
                            in_step = false;
                        }
                    }
                }
            }
        }
        if report.findings.len() > findings_before && report.first_failure.is_none() {
            report.first_failure = Some(name.clone());
        }
        if !in_step {
            conn = rebuild(&set.migrations[..=i])?;
        }
        prev = at_n;
        prev_label = name;
    }
    Ok(())
}

fn down_file_name(file: &MigrationFile) -> String {
    file.down
        .as_ref()
        .and_then(|d| d.path.file_name())
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// "left behind table posts_archive; removed index idx_users_email on users".
fn summary(diff: &super::SchemaDiff) -> String {
    use crate::schema::Change;
    diff.changes
        .iter()
        .map(|c| {
            let what = match c.change {
                Change::Unexpected => "left behind",
                Change::Missing => "missing",
                Change::Changed => "changed",
            };
            format!("{what} {}", c.object())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Down-then-up of every applied migration, newest first, on a copy of `data`.
fn data_round_trips(set: &MigrationSet, data: &Path, busy_timeout: Duration) -> Result<DataReport> {
    let copy = scratch::copy(data, busy_timeout, "verify")?;
    let (conn, path) = (&copy.conn, copy.path.as_path());
    let applied = migrate::read_history(conn, path)?;
    let from = applied.iter().map(|a| a.version).max();
    let mut report = DataReport {
        path: data.to_path_buf(),
        from,
        round_trips: 0,
        rows: row_counts(conn, path)?,
        findings: Vec::new(),
        notes: Vec::new(),
    };
    let problems = migrate::problems(set, &applied);
    if !problems.is_empty() {
        for p in problems {
            report.findings.push(Finding {
                code: p.code().into(),
                message: p.to_string(),
                hint: None, // attached by the CLI, by code
                diff: None,
                details: Vec::new(),
            });
        }
        report
            .notes
            .push("no round trips on the data: its history does not match the files".into());
        return Ok(report);
    }
    let newest_first = set
        .migrations
        .iter()
        .rev()
        .filter(|m| applied.iter().any(|a| a.version == m.version));
    for file in newest_first {
        let name = label(file);
        let Some(down) = Step::revert(file) else {
            report.notes.push(format!(
                "stopped at {name}: it has no down, so nothing below it can be tried on the data"
            ));
            break;
        };
        let lossy = file.down.as_ref().is_some_and(|d| d.directives.lossy);
        let before = row_counts(conn, path)?;
        let schema_before = read_model(conn, path)?;
        if let Err(e) = run_steps(conn, path, vec![down.clone()]) {
            report.findings.push(Finding::from_error(
                "data-down-failed",
                &format!("{name}: the down fails on the data"),
                &e,
            ));
            break;
        }
        let kept = row_counts(conn, path)?;
        if let Err(e) = run_steps(conn, path, vec![Step::apply(file)]) {
            report.findings.push(Finding::from_error(
                "data-reapply-failed",
                &format!("{name}: the up fails on the data its down left"),
                &e,
            ));
            break;
        }
        report.round_trips += 1;
        let after = row_counts(conn, path)?;
        let diff = schema_before.diff(
            &read_model(conn, path)?,
            &format!("the data's schema before {name}'s down"),
            &format!("after {name}'s down and up again"),
        );
        if !diff.is_empty() {
            report.findings.push(
                Finding::new(
                    "data-reapply-differs",
                    format!(
                        "{name}: down-then-up on the data gives another schema: {}",
                        summary(&diff)
                    ),
                )
                .with_diff(diff),
            );
        }
        let mut changed = Vec::new();
        for (table, &rows) in &before {
            if !kept.contains_key(table) {
                if rows > 0 {
                    report.notes.push(format!(
                        "{name}: its down drops table {table} with its {rows} row(s) (expected for a table its up creates)"
                    ));
                }
                continue;
            }
            let now = after.get(table).copied();
            if now != Some(rows) {
                changed.push(format!(
                    "{table}: {rows} row(s) before the down, {} after down and up again",
                    now.map_or("no table".into(), |n| n.to_string())
                ));
            }
        }
        if !changed.is_empty() {
            if lossy {
                report.notes.push(format!(
                    "{name}: its down is marked lossy and changes row counts: {}",
                    changed.join("; ")
                ));
            } else {
                let mut finding = Finding::new(
                    "row-count-changed",
                    format!("{name}: down-then-up does not keep the row count of {} table(s)", changed.len()),
                )
                .with_hint(format!(
                    "make {} keep the rows (or mark it `-- dbtool:lossy` if losing them is intended)",
                    down_file_name(file)
                ));
                finding.details = changed;
                report.findings.push(finding);
            }
        }
        // Down again, to try the next migration on the data as it was below this one.
        if let Err(e) = run_steps(conn, path, vec![down]) {
            report.findings.push(Finding::from_error(
                "data-down-failed",
                &format!("{name}: the down fails on the data after a down-then-up"),
                &e,
            ));
            break;
        }
    }
    Ok(report)
}
