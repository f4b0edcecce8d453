//! Errors of the backup engine.
//!
//! Every variant names the file it is about, keeps the underlying cause as `source`, and maps to a
//! stable kebab-case code. Opening, locking and SQLite failures are the db layer's ([`DbError`]);
//! exit statuses and hints are attached by the CLI.

use std::io;
use std::path::PathBuf;

use crate::db::DbError;

/// What went wrong while taking, reading, verifying, restoring or pruning a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Opening, locking or reading the database (codes of the db layer).
    #[error(transparent)]
    Db(#[from] DbError),

    #[error("cannot use backup folder {}", path.display())]
    BackupDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("could not write {} (while {doing})", path.display())]
    Write {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("could not read {} (while {doing})", path.display())]
    Read {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("the database changed shape while it was being copied: {detail} ({})", path.display())]
    SnapshotInconsistent { path: PathBuf, detail: String },

    #[error("backup {} does not exist", path.display())]
    BackupMissing { path: PathBuf },

    #[error("{} is not a dbtool backup ({detail})", path.display())]
    NotABackup { path: PathBuf, detail: String },

    #[error("backup {} has format version {found}; this dbtool reads up to {supported}", path.display())]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("backup {} is damaged: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        detail: String,
        #[source]
        source: Option<io::Error>,
    },

    #[error("backup {} is damaged: {algorithm} of the database image is {actual}, expected {expected}", path.display())]
    HashMismatch {
        path: PathBuf,
        /// "XXH3-128" or "SHA-256".
        algorithm: &'static str,
        expected: String,
        actual: String,
    },

    #[error("backup {} does not hold a SQLite database", path.display())]
    PayloadNotSqlite { path: PathBuf },

    #[error("backup {} does not hold a pg_dump custom-format archive", path.display())]
    PayloadNotPgArchive { path: PathBuf },

    #[error("backup {} holds a {backup_engine} database; {} is a {target_engine} database", backup.display(), target.display())]
    OtherEngine {
        backup: PathBuf,
        backup_engine: &'static str,
        target: PathBuf,
        target_engine: &'static str,
    },

    /// `pg_dump`, `pg_restore` (…) could not be started.
    #[error(
        "`{tool}` could not be run (PostgreSQL backups need PostgreSQL's client tools on PATH)"
    )]
    ToolMissing {
        tool: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{tool} {tool_version} is older than the server ({server_version}): it cannot dump this server")]
    PgDumpTooOld {
        tool: &'static str,
        tool_version: String,
        server_version: String,
    },

    /// A PostgreSQL client tool ran and failed; `stderr` is what it said (it never holds the
    /// password, which dbtool passes in the environment).
    #[error("{tool} failed while {doing} ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        doing: &'static str,
        status: String,
        stderr: String,
    },

    /// The database cannot be replaced by renaming while other sessions use it.
    #[error("{action} of {database} needs it free: {reason}")]
    DatabaseInUse {
        action: &'static str,
        database: String,
        reason: String,
    },

    /// The restored database does not hold what the backup does.
    #[error("the database restored from {} differs from the backup: {detail}", backup.display())]
    RestoreMismatch { backup: PathBuf, detail: String },

    #[error("backup {} fails PRAGMA integrity_check: {}", path.display(), problems.join("; "))]
    IntegrityFailed {
        path: PathBuf,
        problems: Vec<String>,
    },

    #[error("backup {} was taken from {}, not from {}", backup.display(), source_path, target.display())]
    DifferentDatabase {
        backup: PathBuf,
        source_path: String,
        target: PathBuf,
    },

    #[error("no backups of {} in {}", database.display(), dir.display())]
    NoBackups { database: PathBuf, dir: PathBuf },

    #[error("{action} replaces the whole database {}; refusing without confirmation", database.display())]
    ConfirmationRequired {
        action: &'static str,
        database: PathBuf,
    },

    #[error("{action} of {} cancelled: not confirmed", database.display())]
    Declined {
        action: &'static str,
        database: PathBuf,
    },
}

impl BackupError {
    /// Stable machine-readable code (kebab-case), part of the `--json` contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Db(e) => e.code(),
            Self::BackupDir { .. } => "backup-dir-unusable",
            Self::Write { .. } => "backup-write-failed",
            Self::Read { .. } => "backup-read-failed",
            Self::SnapshotInconsistent { .. } => "snapshot-inconsistent",
            Self::BackupMissing { .. } => "backup-not-found",
            Self::NotABackup { .. } => "not-a-backup",
            Self::UnsupportedFormat { .. } => "backup-format-unsupported",
            Self::Corrupt { .. } => "backup-corrupt",
            Self::HashMismatch { .. } => "backup-hash-mismatch",
            Self::PayloadNotSqlite { .. } => "backup-not-sqlite",
            Self::PayloadNotPgArchive { .. } => "backup-not-pg-archive",
            Self::OtherEngine { .. } => "backup-other-engine",
            Self::ToolMissing { .. } => "pg-tool-missing",
            Self::PgDumpTooOld { .. } => "pg-dump-too-old",
            Self::ToolFailed { .. } => "pg-tool-failed",
            Self::RestoreMismatch { .. } => "restore-mismatch",
            Self::DatabaseInUse { .. } => "database-in-use",
            Self::IntegrityFailed { .. } => "backup-integrity-failed",
            Self::DifferentDatabase { .. } => "backup-different-database",
            Self::NoBackups { .. } => "no-backups",
            Self::ConfirmationRequired { .. } => "needs-confirmation",
            Self::Declined { .. } => "declined",
        }
    }

    /// The database-layer error at the bottom of this one, if any.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            Self::Db(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether an I/O error means "no room left" (full disk, quota, or a file-size limit).
pub fn is_out_of_space(err: &io::Error) -> bool {
    // ENOSPC = 28, EFBIG = 27 (file-size limit), EDQUOT = 122 on Linux. (`ErrorKind::StorageFull`
    // would need Rust 1.83, above this crate's MSRV.)
    matches!(err.raw_os_error(), Some(27) | Some(28) | Some(122))
}

/// A SQLite error met while working on `path`, classified by the db layer (busy/locked, not a
/// database, the rest with what dbtool was doing).
pub(crate) fn classify(
    path: &std::path::Path,
    doing: &'static str,
    err: rusqlite::Error,
) -> BackupError {
    BackupError::Db(crate::db::classify(
        err,
        doing,
        path,
        std::time::Duration::ZERO,
    ))
}
