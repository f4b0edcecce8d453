//! The errors of migrating: the folder, the history against the files, planning, running SQL.
//! Every variant names the file, migration or table and keeps the cause; codes are stable.
//! Exit statuses and hints are attached by the CLI.

use std::path::PathBuf;

use crate::backup::BackupError;
use crate::db::DbError;
use crate::rebuild::RebuildError;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The before-change hook (the automatic backup) failed: nothing was changed.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// An observer of the run (a rehearsal) stopped it after a step.
    #[error("stopped after V{version}__{name}: {reason}")]
    Stopped {
        version: i32,
        name: String,
        reason: String,
    },
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget { target: String, reason: String },

    // --- the database and its history ---
    #[error(
        "database {path} has tables ({}) but no migration history",
        tables.join(", ")
    )]
    UnmanagedDatabase { path: PathBuf, tables: Vec<String> },
    #[error("migration history table {table} in {path} is damaged: {detail}")]
    HistoryDamaged {
        path: PathBuf,
        table: String,
        detail: String,
    },

    // --- the migrations folder ---
    #[error("migrations folder {path} does not exist")]
    MigrationsDirMissing { path: PathBuf },
    #[error("{path} is not named V{{n}}__{{name}}.sql or V{{n}}__{{name}}.down.sql")]
    BadMigrationName { path: PathBuf },
    #[error("migration file {path} is not valid UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("two migration files have version {version}: {first} and {second}")]
    DuplicateVersion {
        version: i32,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("down migration {path} has no up migration V{version}__{name}.sql beside it")]
    OrphanDown {
        path: PathBuf,
        version: i32,
        name: String,
    },

    // --- history against files ---
    #[error("applied migration V{version}__{name} was edited since it was applied: {path}")]
    EditedMigration {
        version: i32,
        name: String,
        path: PathBuf,
    },
    #[error("applied migration V{version}__{name} has no file in {dir}")]
    MissingMigrationFile {
        version: i32,
        name: String,
        dir: PathBuf,
    },
    #[error(
        "migration {path} (version {version}) is not applied but the database is already at version {current}"
    )]
    OutOfOrder {
        version: i32,
        path: PathBuf,
        current: i32,
    },
    #[error(
        "database is at version {db_version} but the newest migration file in {dir} is {newest}"
    )]
    DatabaseAhead {
        db_version: i32,
        newest: String,
        dir: PathBuf,
    },
    #[error("cannot downgrade V{version}__{name}: {path} does not exist")]
    MissingDown {
        version: i32,
        name: String,
        path: PathBuf,
    },
    #[error("cannot downgrade V{version}__{name}: {path} is marked `-- dbtool:irreversible`")]
    Irreversible {
        version: i32,
        name: String,
        path: PathBuf,
    },

    // --- running SQL ---
    #[error("migration {path} failed at line {line}: {statement}")]
    MigrationFailed {
        path: PathBuf,
        line: usize,
        statement: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed on PostgreSQL: the server's message, detail and constraint.
    #[error("migration {path} failed at line {line}: {statement}")]
    PostgresStatementFailed {
        path: PathBuf,
        line: usize,
        statement: String,
        #[source]
        source: Box<crate::db::PgFailure>,
    },
    #[error(
        "{path} line {line}: `{statement}` would end dbtool's transaction; refused before it ran"
    )]
    TransactionControl {
        path: PathBuf,
        line: usize,
        statement: String,
    },
    #[error(
        "migration {path} runs without a transaction and failed; {}, {}",
        committed_note(committed_through.as_deref()),
        if *own_transaction_rolled_back {
            "and its own transaction (BEGIN in the file) was rolled back: nothing of it is applied"
        } else {
            "this migration may be partly applied"
        }
    )]
    NoTransactionFailed {
        path: PathBuf,
        /// The last step of this run that is committed (`V3__x`), if any.
        committed_through: Option<String>,
        /// The file failed inside a transaction of its own, which dbtool rolled back.
        own_transaction_rolled_back: bool,
        #[source]
        source: Box<MigrateError>,
    },

    // --- create ---
    #[error("migration name {name:?} has no letters or digits to build a file name from")]
    EmptySlug { name: String },
    #[error("{path} already exists")]
    FileExists { path: PathBuf },

    // --- rebuilds ---
    #[error(transparent)]
    Rebuild(Box<RebuildError>),
    /// A generated rebuild migration refused (before its DDL) or failed a post-check; the whole
    /// plan was rolled back.
    #[error("rebuild migration {path} did not run; nothing was changed")]
    RebuildMigration {
        path: PathBuf,
        #[source]
        source: Box<RebuildError>,
    },
}

impl From<RebuildError> for MigrateError {
    fn from(e: RebuildError) -> Self {
        MigrateError::Rebuild(Box::new(e))
    }
}

impl MigrateError {
    /// Stable machine-readable code, printed as `error[code]` and in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            MigrateError::Db(e) => e.code(),
            MigrateError::Backup(e) => e.code(),
            MigrateError::Stopped { .. } => "stopped",
            MigrateError::InvalidTarget { .. } => "invalid-target",
            MigrateError::UnmanagedDatabase { .. } => "unmanaged-database",
            MigrateError::HistoryDamaged { .. } => "history-damaged",
            MigrateError::MigrationsDirMissing { .. } => "migrations-dir-missing",
            MigrateError::BadMigrationName { .. } => "bad-migration-name",
            MigrateError::NotUtf8 { .. } => "not-utf8",
            MigrateError::DuplicateVersion { .. } => "duplicate-version",
            MigrateError::OrphanDown { .. } => "orphan-down",
            MigrateError::EditedMigration { .. } => "edited-migration",
            MigrateError::MissingMigrationFile { .. } => "missing-migration-file",
            MigrateError::OutOfOrder { .. } => "out-of-order",
            MigrateError::DatabaseAhead { .. } => "database-ahead",
            MigrateError::MissingDown { .. } => "missing-down",
            MigrateError::Irreversible { .. } => "irreversible",
            MigrateError::MigrationFailed { .. } => "migration-failed",
            MigrateError::PostgresStatementFailed { .. } => "migration-failed",
            MigrateError::TransactionControl { .. } => "transaction-in-script",
            MigrateError::NoTransactionFailed { .. } => "no-transaction-failed",
            MigrateError::EmptySlug { .. } => "empty-name",
            MigrateError::FileExists { .. } => "file-exists",
            MigrateError::Rebuild(e) | MigrateError::RebuildMigration { source: e, .. } => e.code(),
        }
    }

    /// The database-layer error at the bottom of this one, if any (to classify "locked").
    pub fn db(&self) -> Option<&DbError> {
        match self {
            MigrateError::Db(e) => Some(e),
            MigrateError::Backup(e) => e.db(),
            MigrateError::NoTransactionFailed { source, .. } => source.db(),
            MigrateError::Rebuild(e) | MigrateError::RebuildMigration { source: e, .. } => e.db(),
            _ => None,
        }
    }

    pub(crate) fn sqlite(
        action: impl Into<String>,
        path: &std::path::Path,
        source: rusqlite::Error,
    ) -> Self {
        MigrateError::Db(DbError::sqlite(action, path, source))
    }

    pub(crate) fn io(
        action: impl Into<String>,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        MigrateError::Db(DbError::io(action, path, source))
    }
}

fn committed_note(committed_through: Option<&str>) -> String {
    match committed_through {
        Some(label) => format!("{label} and the steps before it are committed"),
        None => "no earlier step of this run was committed".into(),
    }
}

pub type Result<T, E = MigrateError> = std::result::Result<T, E>;
