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

use super::{CheckError, Checker};
use crate::db::{self, OpenMode};
use crate::error::{Error, FkViolation, Result};
use crate::migrate::{self, BeforeChange, ChangeContext, Operation, Plan, StatementReport};

#[derive(Default)]
pub struct ExecOptions<'a> {
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
    pub version: Option<i32>,
    pub statements: Vec<StatementReport>,
    pub rows_changed: u64,
    pub duration_ms: f64,
    pub backup: Option<PathBuf>,
}

pub(super) fn exec(
    checker: &Checker,
    script: &Path,
    options: &ExecOptions<'_>,
) -> Result<ExecReport> {
    let bytes = std::fs::read(script).map_err(|e| CheckError::ScriptRead {
        path: script.to_path_buf(),
        source: e,
    })?;
    let sql = String::from_utf8(bytes).map_err(|_| CheckError::ScriptNotUtf8 {
        path: script.to_path_buf(),
    })?;
    let database = checker.database();
    let timeout = checker.busy_timeout;
    let conn = db::open(database, OpenMode::ReadWrite, timeout)?;
    let fk_was_on = db::foreign_keys_enabled(&conn, database)?;
    let result = (|| -> Result<ExecReport> {
        db::set_foreign_keys(&conn, database, false)?;
        db::begin_immediate(&conn, database, timeout)?;
        let applied = migrate::read_history(&conn, database)?;
        let version = applied.iter().map(|a| a.version).max();
        let fk_before = db::foreign_key_violations(&conn, database)?;
        let mut backup = None;
        if !options.dry_run {
            if let Some(hook) = options.before_change {
                backup = hook(&ChangeContext {
                    conn: &conn,
                    db_path: database,
                    operation: Operation::Exec,
                    plan: &Plan {
                        from: version,
                        to: version,
                        steps: Vec::new(),
                    },
                    database_created: false,
                })?;
            }
        }
        let started = Instant::now();
        let statements = migrate::run_script(&conn, &sql, script).map_err(|e| match e {
            Error::MigrationFailed {
                path,
                line,
                statement,
                source,
            } => CheckError::ScriptFailed {
                path,
                line,
                statement,
                source: Box::new(source),
            }
            .into(),
            other => other,
        })?;
        let new: Vec<FkViolation> = db::foreign_key_violations(&conn, database)?
            .into_iter()
            .filter(|v| fk_before.binary_search(v).is_err())
            .collect();
        if !new.is_empty() {
            return Err(Error::ForeignKeyViolations {
                what: format!("script {}", script.display()),
                violations: new,
            });
        }
        let end = if options.dry_run {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        conn.execute_batch(end)
            .map_err(|e| db::classify(e, "ending the script's transaction", database, timeout))?;
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
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let restored = db::set_foreign_keys(&conn, database, fk_was_on);
    let report = result?;
    restored?;
    Ok(report)
}
