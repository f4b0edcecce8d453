//! `dbtool verify`: prove, on scratch databases, that the migrations go up, come down and go up
//! again, for CI.
//!
//! The stairway walks ONE in-memory database: for every migration N in order, apply N and
//! snapshot the schema; run N's down and compare with the snapshot taken at N-1; apply N again and
//! compare with the snapshot at N. That is three migration runs per migration (O(n) runs, not the
//! O(n²) of re-applying from scratch at each step); only after a round trip that left it off step
//! is the scratch database restored, from a checkpoint database that only goes up (each migration
//! runs there at most once), so that the next migrations are still checked from the right schema
//! and a folder full of failing downs verifies about as fast as a correct one. An empty down is a
//! finding without a round trip. Every run uses
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
use crate::migrate::{self, MigrateError, MigrationFile, MigrationSet, SqlFile};
use crate::schema::Model;

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
    #[serde(rename = "head_version")]
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
    #[cfg(feature = "postgres")]
    if let Some(url) = checker.postgres_url() {
        return super::pg::verify_rest(checker, url, options, &set, report, started);
    }
    let (base, stairs) = stairway(&set, &mut report, &mut SqliteStair::new()?)?;
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
        report.data = Some(data_round_trips(
            &set,
            &base,
            &stairs,
            data,
            checker.busy_timeout,
        )?);
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

pub(super) fn version_line(set: &MigrationSet, findings: &mut Vec<Finding>) {
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

pub(super) fn downs_present(
    set: &MigrationSet,
    findings: &mut Vec<Finding>,
    notes: &mut Vec<String>,
) {
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

/// An in-memory database with foreign keys off, as the write path leaves them (so a round trip
/// can nest inside a [`crate::db::Rewind`]).
fn scratch() -> Result<Connection> {
    crate::db::scratch()
        .map_err(|e| DbError::sqlite("opening a scratch database", Path::new(":memory:"), e).into())
}

/// The database the stairway walks: what it needs of an engine. SQLite's is an in-memory database
/// with a rewind point and a checkpoint ([`SqliteStair`]); PostgreSQL's a scratch database on the
/// server (`pg::PgStair`).
pub(super) trait Stair {
    /// Run `steps` through the executor (the write path `upgrade` uses).
    fn run(&mut self, steps: Vec<Step>) -> Result<()>;
    /// The schema as it is now.
    fn model(&mut self) -> Result<Model>;
    /// Set a point the next runs can be undone to; `false` when the engine has none.
    fn rewind_begin(&mut self) -> Result<bool>;
    /// Undo everything since [`Stair::rewind_begin`].
    fn rewind_undo(&mut self) -> Result<()>;
    /// Put the database in the state after `files` (the first migrations, in order); returns the
    /// migration runs that took.
    fn restore(&mut self, files: &[MigrationFile]) -> Result<usize>;
}

/// SQLite's stairway: one in-memory database, its rewind point, and its checkpoint.
struct SqliteStair {
    conn: Connection,
    checkpoint: Checkpoint,
    rewind: Option<crate::db::Rewind>,
}

const MEMORY: &str = ":memory:";

impl SqliteStair {
    fn new() -> Result<SqliteStair> {
        Ok(SqliteStair {
            conn: scratch()?,
            checkpoint: Checkpoint::new()?,
            rewind: None,
        })
    }
}

impl Stair for SqliteStair {
    fn run(&mut self, steps: Vec<Step>) -> Result<()> {
        run_steps(&self.conn, Path::new(MEMORY), steps).map(drop)
    }

    fn model(&mut self) -> Result<Model> {
        read_model(&self.conn, Path::new(MEMORY))
    }

    fn rewind_begin(&mut self) -> Result<bool> {
        let rewind = crate::db::Rewind::begin(&self.conn).map_err(|e| {
            DbError::sqlite("setting the stairway's rewind point", Path::new(MEMORY), e)
        })?;
        self.rewind = Some(rewind);
        Ok(true)
    }

    fn rewind_undo(&mut self) -> Result<()> {
        if let Some(rewind) = self.rewind.take() {
            rewind
                .undo(&self.conn)
                .map_err(|e| DbError::sqlite("rewinding the stairway", Path::new(MEMORY), e))?;
        }
        Ok(())
    }

    fn restore(&mut self, files: &[MigrationFile]) -> Result<usize> {
        self.checkpoint.restore(files, &mut self.conn)
    }
}

/// The stairway's checkpoint: a second scratch database that only ever goes up, advanced lazily.
/// When a round trip leaves the stairway's database off step (a down that did not restore, an up
/// that then failed or gave another schema), its state at N is copied from here, so each
/// migration runs at most once more in all, however many downs fail (replaying every earlier
/// migration after each failure made verify quadratic: 400 blank downs took 20x the correct run).
struct Checkpoint {
    conn: Connection,
    /// How many migrations, from the first, it has applied.
    applied: usize,
}

impl Checkpoint {
    fn new() -> Result<Checkpoint> {
        Ok(Checkpoint {
            conn: scratch()?,
            applied: 0,
        })
    }

    /// Put `into` in the state after `files` (the first `files.len()` migrations, in one run each
    /// at most once); returns the migration runs that took.
    fn restore(&mut self, files: &[MigrationFile], into: &mut Connection) -> Result<usize> {
        let path = Path::new(":memory:");
        let runs = files.len().saturating_sub(self.applied);
        if runs > 0 {
            run_steps(
                &self.conn,
                path,
                files[self.applied..].iter().map(Step::apply).collect(),
            )?;
            self.applied = files.len();
        }
        let copy = |e| DbError::sqlite("copying the stairway's checkpoint", path, e);
        let backup = rusqlite::backup::Backup::new(&self.conn, into).map_err(copy)?;
        // -1: every page in one step. Both databases are private to this connection pair, so
        // nothing can hold them busy or locked.
        loop {
            match backup.step(-1).map_err(copy)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                _ => {
                    return Err(copy(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        None,
                    ))
                    .into())
                }
            }
        }
        Ok(runs)
    }
}

/// The schema after each migration, as the stairway walked it (`None` past where it stopped);
/// `verify --data` judges each down on the data against it.
pub(super) type Stairs = Vec<Option<Model>>;

pub(super) fn stairway(
    set: &MigrationSet,
    report: &mut VerifyReport,
    stair: &mut impl Stair,
) -> Result<(Model, Stairs)> {
    let base = stair.model()?;
    let mut stairs: Stairs = vec![None; set.migrations.len()];
    let mut prev = base.clone();
    let mut prev_label = "base (an empty database)".to_string();
    for (i, file) in set.migrations.iter().enumerate() {
        let name = label(file);
        let findings_before = report.findings.len();
        if let Err(e) = stair.run(vec![Step::apply(file)]) {
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
            return Ok((base, stairs));
        }
        report.migration_runs += 1;
        let at_n = stair.model()?;
        stairs[i] = Some(at_n.clone());
        let Some(down) = Step::revert(file) else {
            prev = at_n;
            prev_label = name;
            continue;
        };
        if file.down.as_ref().is_some_and(SqlFile::is_empty) {
            let undone = prev.diff(
                &at_n,
                &format!("the schema at {prev_label}"),
                &format!("after {name}'s up"),
            );
            if !undone.is_empty() {
                // No round trip: it would only fail on the up again, less clearly.
                report.first_failure.get_or_insert_with(|| name.clone());
                report.findings.push(
                    Finding::new(
                        "empty-down",
                        format!(
                            "{name}: its down {} is empty: `dbtool downgrade` would run nothing, report success and leave the up's changes: {}",
                            down_file_name(file),
                            summary(&undone)
                        ),
                    )
                    .with_hint(format!(
                        "write {}, or delete it and add `-- dbtool:irreversible` to the top of the up file",
                        down_file_name(file)
                    ))
                    .with_diff(undone),
                );
                prev = at_n;
                prev_label = name;
                continue;
            }
            report.notes.push(format!(
                "{name}: its down is empty; the up changes no schema, so the round trip passes, but a downgrade past it keeps the up's data changes"
            ));
        }
        report.round_trips += 1;
        // Whether the scratch database is still exactly at N's schema after the round trip.
        let mut in_step = true;
        let down_no_transaction = down.no_transaction;
        // A round trip of transactional migrations runs inside a rewind point, and is undone
        // afterwards whatever it did: the database is back at N without replaying anything
        // (no-transaction files cannot run inside one; the checkpoint repairs after those).
        let rewind = if down.no_transaction || file.up.directives.no_transaction {
            false
        } else {
            stair.rewind_begin()?
        };
        match stair.run(vec![down]) {
            Err(e) => {
                report.findings.push(
                    Finding::from_error(
                        "down-failed",
                        &format!("{name}: the down migration fails"),
                        &e,
                    )
                    .with_hint("fix the .down.sql file; `dbtool downgrade` would stop here"),
                );
                // A down in a transaction rolled back: the database is still at N.
                in_step = !down_no_transaction;
            }
            Ok(_) => {
                report.migration_runs += 1;
                let after_down = stair.model()?;
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
                match stair.run(vec![Step::apply(file)]) {
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
                        let again = stair.model()?;
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
        if rewind {
            stair.rewind_undo()?;
            in_step = true;
        }
        if !in_step {
            report.migration_runs += stair.restore(&set.migrations[..=i])?;
        }
        prev = at_n;
        prev_label = name;
    }
    Ok((base, stairs))
}

/// `data-down-differs` when `file`'s down, just run on the data (which was at `at_m` before it),
/// left another schema than the migrations give below `file`. Objects where the data differed
/// from the migrations before the down (drift) are not judged; nothing is when the stairway did
/// not get that far.
fn down_leaves_other_schema(
    set: &MigrationSet,
    base: &Model,
    stairs: &Stairs,
    file: &MigrationFile,
    at_m: &Model,
    conn: &Connection,
    path: &Path,
) -> Result<Option<Finding>> {
    let Some(i) = set
        .migrations
        .iter()
        .position(|m| m.version == file.version)
    else {
        return Ok(None);
    };
    let (below, below_label) = match i.checked_sub(1) {
        None => (Some(base), "base (an empty database)".to_string()),
        Some(j) => (stairs[j].as_ref(), label(&set.migrations[j])),
    };
    let (Some(expected_at_m), Some(below)) = (stairs[i].as_ref(), below) else {
        return Ok(None);
    };
    // Objects the data already had differently from the migrations (drift) are not judged:
    // only what the down did to the others.
    let drifted: Vec<(String, String)> = expected_at_m
        .diff(at_m, "", "")
        .changes
        .into_iter()
        .map(|c| (c.kind, c.name))
        .collect();
    let name = label(file);
    let mut diff = below.diff(
        &read_model(conn, path)?,
        &format!("the schema the migrations give at {below_label}"),
        &format!("the data after {name}'s down"),
    );
    diff.changes.retain(|c| {
        !drifted
            .iter()
            .any(|(kind, n)| *kind == c.kind && *n == c.name)
    });
    if diff.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        Finding::new(
            "data-down-differs",
            format!(
                "{name}: its down leaves the data at another schema than {below_label}: {}",
                summary(&diff)
            ),
        )
        .with_hint(format!(
            "make {} restore exactly the schema before the up (same columns in the same order)",
            down_file_name(file)
        ))
        .with_diff(diff),
    ))
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
///
/// Each down is also judged against the schema the stairway found below its migration (`base`
/// and `stairs`), when the data was at the migrations' schema before it: a down that leaves
/// another schema (columns in another order, say) is named, and the walk stops there, since every
/// round trip below would start from a schema the migrations never produce and blame innocent
/// migrations for it.
fn data_round_trips(
    set: &MigrationSet,
    base: &Model,
    stairs: &Stairs,
    data: &Path,
    busy_timeout: Duration,
) -> Result<DataReport> {
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
        if let Some(finding) =
            down_leaves_other_schema(set, base, stairs, file, &schema_before, conn, path)?
        {
            report.findings.push(finding);
            report.notes.push(format!(
                "the walk on the data stopped at {name}: below it the data is at a schema the migrations never produce"
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
