//! The crate's one error type. Every variant names what dbtool was doing and the object (file,
//! migration, table) it was working on, keeps the cause as `source`, and has a stable code, an
//! exit status and, where it helps, a hint. The three matches below are exhaustive on purpose: a
//! new variant forces a decision on each.

use std::path::PathBuf;

use crate::exit;

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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- configuration and command line ---
    #[error("cannot read the configuration file {path}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
    #[error("unsupported database URL {url:?}: dbtool manages SQLite databases only")]
    UnsupportedUrl { url: String },
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget { target: String, reason: String },

    // --- the database file ---
    #[error("database {path} does not exist")]
    DatabaseMissing { path: PathBuf },
    #[error("{path} is not a SQLite database: {reason}")]
    NotADatabase { path: PathBuf, reason: String },
    #[error("database {path} is locked by another process (waited {waited_ms} ms)")]
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
    #[error("could not turn foreign keys off on {path} before the transaction")]
    ForeignKeysStillOn { path: PathBuf },
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
    #[error(
        "{path} line {line}: `{statement}` would end dbtool's transaction; refused before it ran"
    )]
    TransactionControl {
        path: PathBuf,
        line: usize,
        statement: String,
    },
    #[error(
        "{what} would leave {} new foreign-key violation(s): {}",
        violations.len(),
        violations.iter().take(10).map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
    )]
    ForeignKeyViolations {
        what: String,
        violations: Vec<FkViolation>,
    },
    #[error(
        "migration {path} runs without a transaction and failed; {}, this migration may be partly applied",
        committed_note(committed_through.as_deref())
    )]
    NoTransactionFailed {
        path: PathBuf,
        /// The last step of this run that is committed (`V3__x`), if any.
        committed_through: Option<String>,
        #[source]
        source: Box<Error>,
    },

    // --- create ---
    #[error("migration name {name:?} has no letters or digits to build a file name from")]
    EmptySlug { name: String },
    #[error("{path} already exists")]
    FileExists { path: PathBuf },

    // --- backups (codes, exit statuses and hints live with the module) ---
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    // --- checks: check, verify, inspect, rehearse, exec (codes, exit statuses and hints live
    // with the module) ---
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    Autogen(Box<crate::autogen::AutogenError>),

    // --- rebuilds ---
    #[error(transparent)]
    Rebuild(Box<crate::rebuild::RebuildError>),
    /// A generated rebuild migration refused (before its DDL) or failed a post-check; the whole
    /// plan was rolled back.
    #[error("rebuild migration {path} did not run; nothing was changed")]
    RebuildMigration {
        path: PathBuf,
        #[source]
        source: Box<crate::rebuild::RebuildError>,
    },
}

impl From<crate::autogen::AutogenError> for Error {
    fn from(e: crate::autogen::AutogenError) -> Self {
        Error::Autogen(Box::new(e))
    }
}

impl From<crate::rebuild::RebuildError> for Error {
    fn from(e: crate::rebuild::RebuildError) -> Self {
        Error::Rebuild(Box::new(e))
    }
}

impl Error {
    /// Stable machine-readable code, printed as `error[code]` and in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ConfigRead { .. } => "config-read",
            Error::ConfigInvalid { .. } => "config-invalid",
            Error::UnsupportedUrl { .. } => "unsupported-url",
            Error::InvalidTarget { .. } => "invalid-target",
            Error::DatabaseMissing { .. } => "database-missing",
            Error::NotADatabase { .. } => "not-a-database",
            Error::Locked { .. } => "database-locked",
            Error::Sqlite { .. } => "sqlite",
            Error::Io { .. } => "io",
            Error::ForeignKeysStillOn { .. } => "foreign-keys-on",
            Error::UnmanagedDatabase { .. } => "unmanaged-database",
            Error::HistoryDamaged { .. } => "history-damaged",
            Error::MigrationsDirMissing { .. } => "migrations-dir-missing",
            Error::BadMigrationName { .. } => "bad-migration-name",
            Error::NotUtf8 { .. } => "not-utf8",
            Error::DuplicateVersion { .. } => "duplicate-version",
            Error::OrphanDown { .. } => "orphan-down",
            Error::EditedMigration { .. } => "edited-migration",
            Error::MissingMigrationFile { .. } => "missing-migration-file",
            Error::OutOfOrder { .. } => "out-of-order",
            Error::DatabaseAhead { .. } => "database-ahead",
            Error::MissingDown { .. } => "missing-down",
            Error::Irreversible { .. } => "irreversible",
            Error::MigrationFailed { .. } => "migration-failed",
            Error::TransactionControl { .. } => "transaction-in-script",
            Error::ForeignKeyViolations { .. } => "foreign-key-violation",
            Error::NoTransactionFailed { .. } => "no-transaction-failed",
            Error::EmptySlug { .. } => "empty-name",
            Error::FileExists { .. } => "file-exists",
            Error::Backup(e) => e.code(),
            Error::Check(e) => e.code(),
            Error::Autogen(e) => e.code(),
            Error::Rebuild(e) | Error::RebuildMigration { source: e, .. } => e.code(),
        }
    }

    /// Process exit status for this error (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidTarget { .. }
            | Error::UnsupportedUrl { .. }
            | Error::EmptySlug { .. } => exit::USAGE,
            Error::Locked { .. } => exit::LOCKED,
            Error::Backup(e) => e.exit_code(),
            Error::Check(e) => e.exit_code(),
            Error::Autogen(e) => e.exit_code(),
            Error::ConfigRead { .. }
            | Error::ConfigInvalid { .. }
            | Error::DatabaseMissing { .. }
            | Error::NotADatabase { .. }
            | Error::Sqlite { .. }
            | Error::Io { .. }
            | Error::ForeignKeysStillOn { .. }
            | Error::UnmanagedDatabase { .. }
            | Error::HistoryDamaged { .. }
            | Error::MigrationsDirMissing { .. }
            | Error::BadMigrationName { .. }
            | Error::NotUtf8 { .. }
            | Error::DuplicateVersion { .. }
            | Error::OrphanDown { .. }
            | Error::EditedMigration { .. }
            | Error::MissingMigrationFile { .. }
            | Error::OutOfOrder { .. }
            | Error::DatabaseAhead { .. }
            | Error::MissingDown { .. }
            | Error::Irreversible { .. }
            | Error::MigrationFailed { .. }
            | Error::TransactionControl { .. }
            | Error::ForeignKeyViolations { .. }
            | Error::NoTransactionFailed { .. }
            | Error::FileExists { .. } => exit::FAILURE,
            Error::Rebuild(e) | Error::RebuildMigration { source: e, .. } => e.exit_code(),
        }
    }

    /// What the user can do about it, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::ConfigRead { .. } | Error::Io { .. } | Error::FileExists { .. } => None,
            Error::Rebuild(e) | Error::RebuildMigration { source: e, .. } => e.hint(),
            Error::ConfigInvalid { .. } => Some(
                "known keys: database, migrations, schema, busy_timeout_ms, and [backup] dir, keep, keep_days"
                    .into(),
            ),
            Error::UnsupportedUrl { .. } => Some(
                "use sqlite:PATH, sqlite://PATH, sqlite:///ABS/PATH or a plain path".into(),
            ),
            Error::InvalidTarget { .. } => Some(
                "targets: head, a version (3), +N / -N relative steps, base (see dbtool history)"
                    .into(),
            ),
            Error::DatabaseMissing { .. } => {
                Some("create it with `dbtool init`, or pass --database PATH".into())
            }
            Error::NotADatabase { .. } => {
                Some("check --database, DATABASE_URL and dbtool.toml (`dbtool config`)".into())
            }
            Error::Locked { .. } => Some(
                "another process holds a lock on it (a writer, or a reader blocking a checkpoint or restore); retry, or raise --busy-timeout (milliseconds)"
                    .into(),
            ),
            Error::Sqlite { source, .. } => sqlite_hint(source),
            Error::ForeignKeysStillOn { .. } => None,
            Error::UnmanagedDatabase { .. } => Some(
                "if its schema matches the migrations, adopt it with `dbtool stamp head` (or `dbtool stamp VERSION`)"
                    .into(),
            ),
            Error::HistoryDamaged { .. } => Some(
                "inspect it with `sqlite3 DB 'SELECT * FROM refinery_schema_history'`; restore a backup or repair the row, then `dbtool history`"
                    .into(),
            ),
            Error::MigrationsDirMissing { .. } => {
                Some("pass --migrations DIR, set DBTOOL_MIGRATIONS, or create the folder".into())
            }
            Error::BadMigrationName { .. } => Some(
                "rename it (e.g. V0007__add_tags.sql) or move it out of the migrations folder".into(),
            ),
            Error::NotUtf8 { .. } => Some("save the file as UTF-8".into()),
            Error::DuplicateVersion { .. } => Some(
                "renumber one of them (branches merged with the same version?)".into(),
            ),
            Error::OrphanDown { .. } => Some("rename it to match its up migration".into()),
            Error::EditedMigration { .. } => Some(
                "restore the file as it was applied (git log -p on it) and put the change in a new migration (`dbtool create`)"
                    .into(),
            ),
            Error::MissingMigrationFile { .. } => Some(
                "restore the file from version control (git log --all -- migrations/), or check out the branch that added it"
                    .into(),
            ),
            Error::OutOfOrder { .. } => Some(
                "renumber the file above the current version (a merged branch?), or record it with `dbtool stamp` if its changes are already in the database"
                    .into(),
            ),
            Error::DatabaseAhead { .. } => Some(
                "this checkout is older than the database: pull the newer migrations, or pass --migrations".into(),
            ),
            Error::MissingDown { .. } => Some(
                "write the down file, or restore a backup instead of downgrading (dbtool restore)"
                    .into(),
            ),
            Error::Irreversible { .. } => {
                Some("restore a backup taken before it was applied (dbtool backups)".into())
            }
            Error::MigrationFailed { source, .. } => {
                let message = source.to_string();
                if message.contains("within a transaction") {
                    Some("remove BEGIN/COMMIT from the file: dbtool runs each plan in its own transaction (or mark the file `-- dbtool:no-transaction`)".into())
                } else if message.contains("safely run in a transaction")
                    || message.contains("from within a transaction")
                {
                    Some("mark the file with a first line `-- dbtool:no-transaction`".into())
                } else {
                    Some("nothing was applied: fix the file and run the command again".into())
                }
            }
            Error::TransactionControl { .. } => Some(
                "remove BEGIN/COMMIT/ROLLBACK: dbtool runs each plan (and each exec script) in its own transaction; nothing was applied"
                    .into(),
            ),
            Error::ForeignKeyViolations { .. } => Some(
                "nothing was committed; fix the rows the migration leaves orphaned (or add the missing parents) and run again"
                    .into(),
            ),
            Error::NoTransactionFailed { .. } => Some(
                "check the database by hand, finish or undo the statements, then record it with `dbtool stamp`"
                    .into(),
            ),
            Error::EmptySlug { .. } => Some("describe the change, e.g. \"add user preferences\"".into()),
            Error::Backup(e) => e.hint(),
            Error::Check(e) => e.hint(),
            Error::Autogen(e) => e.hint(),
        }
    }

    pub(crate) fn sqlite(
        action: impl Into<String>,
        path: &std::path::Path,
        source: rusqlite::Error,
    ) -> Self {
        Error::Sqlite {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn io(
        action: impl Into<String>,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
    }
}

fn committed_note(committed_through: Option<&str>) -> String {
    match committed_through {
        Some(label) => format!("{label} and the steps before it are committed"),
        None => "no earlier step of this run was committed".into(),
    }
}

fn sqlite_hint(source: &rusqlite::Error) -> Option<String> {
    let message = source.to_string();
    if message.contains("readonly") || message.contains("read-only") {
        Some("check the permissions of the database file and its folder".into())
    } else if message.contains("disk is full") || message.contains("database or disk is full") {
        Some("free some disk space; nothing was changed".into())
    } else {
        None
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
