//! Errors of the backup engine.
//!
//! Every variant names the file it is about, keeps the underlying cause as `source`, and maps to a
//! stable kebab-case code, an exit status and (where one helps) a hint. The three matches below
//! are exhaustive on purpose: a new variant forces a decision on each.

use std::io;
use std::path::PathBuf;

use crate::exit;

/// What went wrong while taking, reading, verifying, restoring or pruning a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("database {} does not exist", path.display())]
    DatabaseMissing { path: PathBuf },

    #[error("database path {} is a folder, not a file", path.display())]
    DatabaseIsDirectory { path: PathBuf },

    #[error("{} is not a SQLite database", path.display())]
    NotADatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("database {} is locked by another process (while {doing})", path.display())]
    Locked {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    #[error("SQLite failed while {doing} ({})", path.display())]
    Sqlite {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },

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

    #[error("backup {} is damaged: SHA-256 of the database image is {actual}, expected {expected}", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("backup {} does not hold a SQLite database", path.display())]
    PayloadNotSqlite { path: PathBuf },

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
            Self::DatabaseMissing { .. } => "database-missing",
            Self::DatabaseIsDirectory { .. } => "database-is-directory",
            Self::NotADatabase { .. } => "not-a-database",
            Self::Locked { .. } => "database-locked",
            Self::Sqlite { .. } => "sqlite-error",
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
            Self::IntegrityFailed { .. } => "backup-integrity-failed",
            Self::DifferentDatabase { .. } => "backup-different-database",
            Self::NoBackups { .. } => "no-backups",
            Self::ConfirmationRequired { .. } => "needs-confirmation",
            Self::Declined { .. } => "declined",
        }
    }

    /// Process exit status for this error (constants in `exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Locked { .. } => exit::LOCKED,
            Self::DifferentDatabase { .. }
            | Self::ConfirmationRequired { .. }
            | Self::Declined { .. } => exit::NEEDS_CONFIRMATION,
            Self::DatabaseMissing { .. }
            | Self::DatabaseIsDirectory { .. }
            | Self::NotADatabase { .. }
            | Self::Sqlite { .. }
            | Self::BackupDir { .. }
            | Self::Write { .. }
            | Self::Read { .. }
            | Self::SnapshotInconsistent { .. }
            | Self::BackupMissing { .. }
            | Self::NotABackup { .. }
            | Self::UnsupportedFormat { .. }
            | Self::Corrupt { .. }
            | Self::HashMismatch { .. }
            | Self::PayloadNotSqlite { .. }
            | Self::IntegrityFailed { .. }
            | Self::NoBackups { .. } => exit::FAILURE,
        }
    }

    /// What the user can do about it, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::DatabaseMissing { .. } => {
                Some("check --database / DATABASE_URL, or run `dbtool init` to create it".into())
            }
            Self::DatabaseIsDirectory { .. } => {
                Some("point --database at the SQLite file inside that folder".into())
            }
            Self::NotADatabase { .. } => None,
            Self::Locked { .. } => Some(
                "another process holds a lock on the database; retry when it is done, \
                 or raise busy_timeout in dbtool.toml"
                    .into(),
            ),
            Self::Sqlite { .. } => None,
            Self::BackupDir { .. } => Some(
                "choose a writable folder with --backup-dir, DBTOOL_BACKUP_DIR or `[backup] dir` in dbtool.toml"
                    .into(),
            ),
            Self::Write { source, .. } => {
                if is_out_of_space(source) {
                    Some("the disk (or a file-size limit) is full: free space or choose another folder with --backup-dir".into())
                } else if source.kind() == io::ErrorKind::AlreadyExists {
                    // `backup -o EXISTING`: backups never overwrite; free space is not the cause.
                    Some("backups never overwrite a file: choose another name, or remove the old file first".into())
                } else if source.kind() == io::ErrorKind::PermissionDenied {
                    Some("check the permissions of the backup folder (or choose another with --backup-dir)".into())
                } else {
                    Some("check free space and permissions of the backup folder".into())
                }
            }
            Self::Read { .. } => None,
            Self::SnapshotInconsistent { .. } => {
                Some("this is a bug in dbtool or SQLite; please report it with the database's size".into())
            }
            Self::BackupMissing { .. } => {
                Some("`dbtool backups` lists the backups and the folder they live in".into())
            }
            Self::NotABackup { .. } => Some(
                "dbtool backups start with a metadata frame; a plain .zst of a database can be \
                 restored with `zstd -d` and copied by hand"
                    .into(),
            ),
            Self::UnsupportedFormat { .. } => Some("upgrade dbtool to read this backup".into()),
            Self::Corrupt { .. } | Self::HashMismatch { .. } | Self::PayloadNotSqlite { .. } => {
                Some("this backup cannot be trusted; pick another one from `dbtool backups`".into())
            }
            Self::IntegrityFailed { .. } => Some(
                "the database was already damaged when this backup was taken; try an older backup"
                    .into(),
            ),
            Self::DifferentDatabase { .. } => {
                Some("pass --force if you really mean to restore it over this database".into())
            }
            Self::NoBackups { .. } => Some("take one with `dbtool backup`".into()),
            Self::ConfirmationRequired { .. } => {
                Some("no terminal to ask on: pass --yes to confirm".into())
            }
            Self::Declined { .. } => None,
        }
    }
}

/// Whether an I/O error means "no room left" (full disk, quota, or a file-size limit).
pub(crate) fn is_out_of_space(err: &io::Error) -> bool {
    // ENOSPC = 28, EFBIG = 27 (file-size limit), EDQUOT = 122 on Linux. (`ErrorKind::StorageFull`
    // would need Rust 1.83, above this crate's MSRV.)
    matches!(err.raw_os_error(), Some(27) | Some(28) | Some(122))
}

/// Classify a SQLite error met while reading `path`: busy/locked and "not a database" get their
/// own variants so the CLI can exit with the right status.
pub(crate) fn classify(
    path: &std::path::Path,
    doing: &'static str,
    err: rusqlite::Error,
) -> BackupError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BackupError::Locked {
            path: path.to_path_buf(),
            doing,
            source: err,
        },
        Some(ErrorCode::NotADatabase) => BackupError::NotADatabase {
            path: path.to_path_buf(),
            source: err,
        },
        _ => BackupError::Sqlite {
            path: path.to_path_buf(),
            doing,
            source: err,
        },
    }
}
