//! Checks for CI and deploys: `check` (drift and health of a live database), `verify` (the
//! migrations' stairway on scratch databases), `inspect`, `rehearse` (pending migrations on a
//! copy) and `exec` (a one-off data script in one transaction).
//!
//! Invariants:
//! - `check`, `verify`, `inspect` and `rehearse` never write to the user's database: they open it
//!   read-only, and anything that runs migrations runs on an in-memory database or on a
//!   consistent copy in a temporary folder (taken with SQLite's online backup API).
//! - Things a check *finds* are [`Finding`]s in the report (each with a stable code; the CLI exits
//!   3 when there are any). Things that stop a check from running at all are errors.
//! - `exec` changes the database in one transaction, after the before-change hook (the automatic
//!   backup), and leaves it untouched on any error or under `--dry-run`.

mod drift;
mod inspect;
#[cfg(feature = "postgres")]
mod pg;
mod rehearse;
mod scratch;
mod script;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::db;
use crate::db::DbError;
use crate::migrate::MigrateError;
use crate::migrate::{self, Action, Operation, Plan, Step, StepReport};
use crate::rebuild::RebuildError;
use crate::schema::Model;

pub use crate::schema::SchemaDiff;
pub use drift::{CheckOptions, CheckReport, IntegrityLevel};
pub use inspect::{IndexInfo, InspectReport, LatestBackup, ServerInfo, TableInfo};
pub use rehearse::{RehearsalReport, RehearsalStep, StepStatus, TableRows};
pub use script::{ExecOptions, ExecReport, ScriptKind};
pub use verify::{DataReport, VerifyOptions, VerifyReport};

/// Errors that stop a check (what a check *finds* is a [`Finding`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Rebuild(Box<RebuildError>),
    /// The before-change hook (the automatic backup) failed: nothing was changed.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error("cannot create a scratch folder for a copy of {database}")]
    ScratchDir {
        database: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("taking a consistent copy of {database} into {copy} failed")]
    Copy {
        database: PathBuf,
        copy: PathBuf,
        // Boxed, like ScriptFailed's: keeps dbtool::Error (returned everywhere) small.
        #[source]
        source: Box<rusqlite::Error>,
    },
    #[error(
        "the rehearsal of the upgrade of {database} failed at {failed_at}; nothing was changed"
    )]
    RehearsalFailed {
        database: PathBuf,
        failed_at: String,
    },
    /// `pg_dump | pg_restore` into the scratch database failed (a rehearsal's copy).
    #[error("copying {database} into a scratch database with {tool} failed: {message}")]
    PgCopy {
        database: PathBuf,
        tool: &'static str,
        message: String,
    },
    /// A statement of a script failed on PostgreSQL: the server's message, detail and constraint.
    #[error("{kind} {path} failed at line {line}: {statement}")]
    PgScriptFailed {
        kind: ScriptKind,
        path: PathBuf,
        line: usize,
        statement: String,
        #[source]
        source: Box<crate::db::PgFailure>,
    },
    #[error("cannot read the {kind} {path}")]
    ScriptRead {
        kind: ScriptKind,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} {path} is not valid UTF-8")]
    ScriptNotUtf8 { kind: ScriptKind, path: PathBuf },
    #[error("{kind} {path} failed at line {line}: {statement}")]
    ScriptFailed {
        kind: ScriptKind,
        path: PathBuf,
        line: usize,
        statement: String,
        #[source]
        source: Box<rusqlite::Error>,
    },
}

impl From<RebuildError> for CheckError {
    fn from(e: RebuildError) -> Self {
        CheckError::Rebuild(Box::new(e))
    }
}

pub type Result<T, E = CheckError> = std::result::Result<T, E>;

impl CheckError {
    /// The database-layer error at the bottom of this one, if any.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            CheckError::Db(e) => Some(e),
            CheckError::Migrate(e) => e.db(),
            CheckError::Rebuild(e) => e.db(),
            CheckError::Backup(e) => e.db(),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CheckError::Db(e) => e.code(),
            CheckError::Migrate(e) => e.code(),
            CheckError::Rebuild(e) => e.code(),
            CheckError::Backup(e) => e.code(),
            CheckError::ScratchDir { .. } => "scratch-dir",
            CheckError::Copy { .. } => "copy-failed",
            CheckError::PgCopy { .. } => "pg-copy-failed",
            CheckError::RehearsalFailed { .. } => "rehearsal-failed",
            CheckError::ScriptRead { .. } => "script-unreadable",
            CheckError::ScriptNotUtf8 { .. } => "script-not-utf8",
            CheckError::ScriptFailed {
                kind: ScriptKind::Seed,
                ..
            }
            | CheckError::PgScriptFailed {
                kind: ScriptKind::Seed,
                ..
            } => "seed-failed",
            CheckError::ScriptFailed { .. } | CheckError::PgScriptFailed { .. } => "script-failed",
        }
    }
}

/// Something a check found. The CLI exits 3 when a report has any.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable kebab-case code, e.g. `schema-drift`, `down-does-not-restore`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The schema difference, for findings that are one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<SchemaDiff>,
    /// Further lines: causes, violations, integrity messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Finding {
    pub fn new(code: &str, message: impl Into<String>) -> Finding {
        Finding {
            code: code.to_string(),
            message: message.into(),
            hint: None,
            diff: None,
            details: Vec::new(),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_diff(mut self, diff: SchemaDiff) -> Finding {
        self.diff = Some(diff);
        self
    }

    /// A finding made of an error: `context: error`, its cause as a detail.
    pub fn from_error(code: &str, context: &str, error: &dyn std::error::Error) -> Finding {
        let details = std::error::Error::source(error)
            .map(|cause| vec![format!("caused by: {}", cause_text(cause))])
            .unwrap_or_default();
        Finding {
            code: code.to_string(),
            message: format!("{context}: {error}"),
            hint: None,
            diff: None,
            details,
        }
    }
}

/// `error: its first cause`, on one line (the rest of the chain is SQLite's generic text).
fn with_cause(error: &dyn std::error::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {}", cause_text(cause)),
        None => error.to_string(),
    }
}

/// SQLite's own message, without the SQL text rusqlite appends to a prepare error (the finding
/// already names the statement and its line).
fn cause_text(cause: &(dyn std::error::Error + 'static)) -> String {
    match cause.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqlInputError { msg, .. }) => msg.clone(),
        Some(rusqlite::Error::SqliteFailure(_, Some(msg))) => msg.clone(),
        _ => cause.to_string(),
    }
}

/// The database, migrations and lock wait the checks work on; the counterpart of
/// [`crate::Migrator`]. On a PostgreSQL database every check runs there (module `pg`): the same
/// reports, scratch databases on the same server instead of in-memory ones.
#[derive(Debug, Clone)]
pub struct Checker {
    /// The SQLite file, or on PostgreSQL the redacted URL (what reports name).
    database: PathBuf,
    target: db::Database,
    migrations: PathBuf,
    busy_timeout: Duration,
}

impl Checker {
    /// A checker for `database`: a SQLite path, or a [`db::Database`] (SQLite or PostgreSQL).
    pub fn new(database: impl Into<db::Database>, migrations: impl Into<PathBuf>) -> Checker {
        let target = database.into();
        Checker {
            database: target.place(),
            target,
            migrations: migrations.into(),
            busy_timeout: db::DEFAULT_BUSY_TIMEOUT,
        }
    }

    /// The PostgreSQL database, when the checker works on one.
    pub fn postgres_url(&self) -> Option<&db::PgUrl> {
        match &self.target {
            db::Database::Postgres(url) => Some(url),
            db::Database::Sqlite(_) => None,
        }
    }

    pub fn busy_timeout(mut self, timeout: Duration) -> Checker {
        self.busy_timeout = timeout;
        self
    }

    pub fn database(&self) -> &Path {
        &self.database
    }

    pub fn migrations_dir(&self) -> &Path {
        &self.migrations
    }

    /// `dbtool check`: the live database against the migrations.
    pub fn check(&self, options: &CheckOptions) -> Result<CheckReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return pg::check(self, url, options);
        }
        drift::check(self, options)
    }

    /// `dbtool verify`: the stairway over every migration, on scratch databases.
    pub fn verify(&self, options: &VerifyOptions) -> Result<VerifyReport> {
        verify::verify(self, options)
    }

    /// `dbtool inspect`: what the database file holds.
    pub fn inspect(&self) -> Result<InspectReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return pg::inspect(self, url);
        }
        inspect::inspect(self)
    }

    /// `dbtool rehearse`: the pending migrations (up to `target`) on a temporary copy.
    pub fn rehearse(&self, target: migrate::UpTarget) -> Result<RehearsalReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return pg::rehearse(self, url, target);
        }
        rehearse::rehearse(self, target)
    }

    /// `dbtool exec`: run a SQL script in one transaction.
    pub fn exec(&self, script: &Path, options: &ExecOptions<'_>) -> Result<ExecReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return pg::exec(self, url, script, options);
        }
        script::exec(self, script, options)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the checks.

/// Run `steps` on a scratch connection with the migrator's own executor (the write path: foreign
/// keys off, one transaction, foreign-key check before commit, history rows).
fn run_steps(conn: &Connection, path: &Path, steps: Vec<Step>) -> Result<Vec<StepReport>> {
    let operation = match steps.first().map(|s| s.action) {
        Some(Action::Revert) => Operation::Downgrade,
        _ => Operation::Upgrade,
    };
    let plan = Plan {
        from: None,
        to: None,
        steps,
    };
    Ok(migrate::run_plan(
        conn,
        path,
        plan,
        operation,
        &mut |_, _, _| Ok(()),
    )?)
}

/// A private read-write copy of `source` in a temporary folder (see [`scratch`]), for other
/// features that rehearse on real data.
pub(crate) fn scratch_copy(
    source: &Path,
    busy_timeout: Duration,
    purpose: &str,
) -> Result<scratch::ScratchCopy> {
    scratch::copy(source, busy_timeout, purpose)
}

/// The schema model of a database (see [`crate::schema::model`]).
fn read_model(conn: &Connection, path: &Path) -> Result<Model> {
    Model::read(conn).map_err(|e| DbError::sqlite("reading the schema", path, e).into())
}

/// Rows per user table.
fn row_counts(conn: &Connection, path: &Path) -> Result<BTreeMap<String, u64>> {
    Ok(db::row_counts(conn, path)?)
}

/// The messages of `PRAGMA quick_check` or `integrity_check`; empty when the database is sound.
fn integrity_problems(conn: &Connection, path: &Path, full: bool) -> Result<Vec<String>> {
    let level = if full {
        db::Integrity::Full
    } else {
        db::Integrity::Quick
    };
    Ok(db::integrity_problems(conn, path, level)?)
}
