//! The errors of the SQLite foundation: opening, locking, the write session. Every variant names
//! the database (or side file) and keeps SQLite's or the OS's cause; codes are stable. Exit
//! statuses and hints that name commands are attached by the CLI.

use std::path::{Path, PathBuf};

/// A foreign-key violation reported by `PRAGMA foreign_key_check`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct FkViolation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
    pub fk_index: i64,
}

impl std::fmt::Display for FkViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rowid {
            Some(rowid) => write!(f, "{} rowid {} -> {}", self.table, rowid, self.parent),
            None => write!(f, "{} (WITHOUT ROWID) -> {}", self.table, self.parent),
        }
    }
}

/// A failure PostgreSQL reported, as plain data: its SQLSTATE and the server's message, detail,
/// hint and the constraint or table it names (so errors name them without holding driver types).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PgFailure {
    /// The five-character SQLSTATE (`23505`, `55P03`, …); empty for failures of the connection.
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub constraint: Option<String>,
    pub table: Option<String>,
}

impl std::fmt::Display for PgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if !self.sqlstate.is_empty() {
            write!(f, " (SQLSTATE {})", self.sqlstate)?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(constraint) = &self.constraint {
            write!(f, "; constraint: {constraint}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; server hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgFailure {}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path} does not exist")]
    DatabaseMissing { path: PathBuf },
    #[error("{path} is not a SQLite database: {reason}")]
    NotADatabase { path: PathBuf, reason: String },
    #[error("database {path} is locked by another process{}", waited(*waited_ms))]
    Locked { path: PathBuf, waited_ms: u64 },
    #[error("{action} in {path} failed")]
    Sqlite {
        action: String,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{action} {path} failed")]
    Io {
        action: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to follow the symbolic link at {path} (dbtool creates this file itself)")]
    SymlinkRefused { path: PathBuf },
    #[error("a statement run outside a transaction in {path} left a transaction open; it was rolled back")]
    TransactionLeftOpen { path: PathBuf },
    #[error("could not turn foreign keys off on {path} before the transaction")]
    ForeignKeysStillOn { path: PathBuf },
    #[error(
        "{what} would leave {} new foreign-key violation(s): {}",
        violations.len(),
        violations.iter().take(10).map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
    )]
    ForeignKeyViolations {
        what: String,
        violations: Vec<FkViolation>,
    },
    /// `url` is always the redacted form (no password).
    #[error("cannot connect to {url}")]
    CannotConnect {
        url: String,
        #[source]
        failure: Box<PgFailure>,
    },
    #[error("the server at {url} refused user {user:?}: authentication failed")]
    AuthenticationFailed {
        url: String,
        user: String,
        #[source]
        failure: Box<PgFailure>,
    },
    #[error("{action} on {url} was refused: permission denied")]
    PermissionDenied {
        action: String,
        url: String,
        #[source]
        failure: Box<PgFailure>,
    },
    #[error("{action} on {url} failed")]
    Postgres {
        action: String,
        url: String,
        #[source]
        failure: Box<PgFailure>,
    },
    #[error("{what} is not available on PostgreSQL: {reason}")]
    NotOnPostgres { what: String, reason: String },
}

fn waited(ms: u64) -> String {
    if ms == 0 {
        String::new()
    } else {
        format!(" (waited {ms} ms)")
    }
}

/// Which of SQLite's failures an error is, by extended result code (never by message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteFailure {
    /// SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock.
    Busy,
    /// SQLITE_READONLY*: the file, its folder or the connection cannot be written.
    ReadOnly,
    /// SQLITE_FULL: the disk (or a size limit) is full.
    Full,
    /// SQLITE_NOTADB: the file is not a database.
    NotADatabase,
    /// SQLITE_CORRUPT: a damaged database.
    Corrupt,
    /// SQLITE_CONSTRAINT*: a constraint refused a row.
    Constraint,
    /// SQLITE_IOERR*, SQLITE_CANTOPEN: the OS refused a read, write or open.
    Io,
    /// Anything else, including errors in the SQL itself.
    Other,
}

impl SqliteFailure {
    pub fn of(e: &rusqlite::Error) -> SqliteFailure {
        let Some(code) = e.sqlite_error_code() else {
            return SqliteFailure::Other;
        };
        match code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                SqliteFailure::Busy
            }
            rusqlite::ErrorCode::ReadOnly => SqliteFailure::ReadOnly,
            rusqlite::ErrorCode::DiskFull => SqliteFailure::Full,
            rusqlite::ErrorCode::NotADatabase => SqliteFailure::NotADatabase,
            rusqlite::ErrorCode::DatabaseCorrupt => SqliteFailure::Corrupt,
            rusqlite::ErrorCode::ConstraintViolation => SqliteFailure::Constraint,
            rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen => {
                SqliteFailure::Io
            }
            _ => SqliteFailure::Other,
        }
    }
}

impl DbError {
    /// Stable machine-readable code, printed as `error[code]` and in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            DbError::DatabaseMissing { .. } => "database-missing",
            DbError::NotADatabase { .. } => "not-a-database",
            DbError::Locked { .. } => "database-locked",
            DbError::Sqlite { .. } => "sqlite",
            DbError::Io { .. } => "io",
            DbError::SymlinkRefused { .. } => "symlink-refused",
            DbError::TransactionLeftOpen { .. } => "transaction-left-open",
            DbError::ForeignKeysStillOn { .. } => "foreign-keys-on",
            DbError::ForeignKeyViolations { .. } => "foreign-key-violation",
            DbError::CannotConnect { .. } => "cannot-connect",
            DbError::AuthenticationFailed { .. } => "authentication-failed",
            DbError::PermissionDenied { .. } => "permission-denied",
            DbError::Postgres { .. } => "postgres",
            DbError::NotOnPostgres { .. } => "not-on-postgres",
        }
    }

    /// The SQLite failure behind this error, if it is one.
    pub fn sqlite_failure(&self) -> Option<SqliteFailure> {
        match self {
            DbError::Sqlite { source, .. } => Some(SqliteFailure::of(source)),
            _ => None,
        }
    }

    pub fn sqlite(action: impl Into<String>, path: &Path, source: rusqlite::Error) -> Self {
        DbError::Sqlite {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn io(action: impl Into<String>, path: &Path, source: std::io::Error) -> Self {
        DbError::Io {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
    }
}
