//! `dbtool exec FILE.sql`: a one-off data fix or backfill, in one transaction.
//!
//! The script runs the way a migration does, so there is one set of rules to learn:
//! `PRAGMA foreign_keys=OFF` on the connection (set before the transaction and read back, so
//! `ON DELETE CASCADE` never removes rows the script did not name), `BEGIN IMMEDIATE` (the
//! cross-process write lock, with the busy timeout), the before-change hook (where the CLI takes
//! the automatic backup; it sees [`Operation::Exec`]), the statements one by one through
//! [`migrate::run_script`] (rows changed per statement; a failure names its line), then
//! `PRAGMA foreign_key_check`: a new violation refuses the whole script. `--dry-run` does all of
//! that except the backup and rolls back. On any error the transaction is rolled back and the
//! database is as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{CheckError, Checker, Result};
use crate::db::{self, Ending, OpenMode, WriteSession};
use crate::migrate::{
    self, BeforeChange, ChangeContext, MigrateError, Operation, Plan, StatementReport,
};

/// What a script is to the user: named so in reports and errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScriptKind {
    /// `dbtool exec FILE`: a one-off data fix.
    #[default]
    Script,
    /// `dbtool reset --seed FILE`: the rows a fresh database starts with.
    Seed,
}

impl std::fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScriptKind::Script => "script",
            ScriptKind::Seed => "seed",
        })
    }
}

#[derive(Default)]
pub struct ExecOptions<'a> {
    /// A data fix (`exec`) or a seed (`reset --seed`): the same write path, named as such.
    pub kind: ScriptKind,
    /// Run, report, roll back.
    pub dry_run: bool,
    /// Runs with the write lock held and nothing changed yet (not in a dry run); an error aborts
    /// with the database untouched. Returns the backup it took, if any.
    pub before_change: Option<&'a BeforeChange<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecReport {
    pub database: PathBuf,
    pub script: PathBuf,
    pub dry_run: bool,
    /// The changes are in the database (false under `--dry-run`).
    pub committed: bool,
    /// The schema version the database was at (the script does not change it).
    #[serde(rename = "current_version")]
    pub version: Option<i32>,
    pub statements: Vec<StatementReport>,
    pub rows_changed: u64,
    pub duration_ms: f64,
    pub backup: Option<PathBuf>,
}

/// The script's text: it must exist and be UTF-8.
pub(super) fn read_script(kind: ScriptKind, script: &Path) -> Result<String> {
    let bytes = std::fs::read(script).map_err(|e| CheckError::ScriptRead {
        kind,
        path: script.to_path_buf(),
        source: e,
    })?;
    String::from_utf8(bytes).map_err(|_| CheckError::ScriptNotUtf8 {
        kind,
        path: script.to_path_buf(),
    })
}

pub(super) fn exec(
    checker: &Checker,
    script: &Path,
    options: &ExecOptions<'_>,
) -> Result<ExecReport> {
    let kind = options.kind;
    let sql = read_script(kind, script)?;
    let database = checker.database();
    let conn = db::open(database, OpenMode::ReadWrite, checker.busy_timeout)?;
    let mut session = WriteSession::new(&conn, database, checker.busy_timeout)?;
    let ending = if options.dry_run {
        Ending::Rollback
    } else {
        Ending::Commit
    };
    let prepare = |conn: &rusqlite::Connection| -> Result<(Option<i32>, Option<PathBuf>)> {
        let applied = migrate::read_history(conn, database)?;
        let version = applied.iter().map(|a| a.version).max();
        let backup = match options.before_change {
            Some(hook) if !options.dry_run => hook(&ChangeContext {
                postgres: None,
                db_path: database,
                operation: Operation::Exec,
                plan: &Plan {
                    from: version,
                    to: version,
                    steps: Vec::new(),
                },
                nothing_to_back_up: false,
            })?,
            _ => None,
        };
        Ok((version, backup))
    };
    let started = Instant::now();
    let ((version, backup), statements) = session.transaction(
        &format!("{kind} {}", script.display()),
        ending,
        prepare,
        |conn, _| {
            migrate::run_script(conn, &sql, script).map_err(|e| match e {
                MigrateError::MigrationFailed {
                    path,
                    line,
                    statement,
                    source,
                } => CheckError::ScriptFailed {
                    kind,
                    path,
                    line,
                    statement,
                    source: Box::new(source),
                },
                other => other.into(),
            })
        },
    )?;
    session.finish()?;
    Ok(ExecReport {
        database: database.to_path_buf(),
        script: script.to_path_buf(),
        dry_run: options.dry_run,
        committed: !options.dry_run,
        version,
        rows_changed: statements.iter().map(|s| s.rows_changed).sum(),
        statements,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        backup,
    })
}
