//! Opening SQLite databases safely, and the few pragmas every operation needs.
//!
//! Invariants: opening never creates a file unless asked ([`OpenMode::Create`]), and never writes
//! to an existing one — with one exception SQLite itself makes on every read-write open: a hot
//! journal left by a crashed writer is rolled back, restoring the last committed state; a
//! path that is a folder, or a file that is not SQLite, is refused before SQLite touches it;
//! "busy" and "locked" always surface as [`DbError::Locked`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

mod error;
#[cfg(feature = "postgres")]
pub mod pg;
mod pg_url;
mod session;

pub use error::{DbError, FkViolation, PgFailure, SqliteFailure};
pub use pg_url::{is_postgres_url, redact_raw, PgUrl, PgUrlError};
pub use session::{
    begin_read, end_read, foreign_keys_enabled, scratch, Ending, Rewind, WriteSession,
};

type Result<T, E = DbError> = std::result::Result<T, E>;

/// refinery's history table, which dbtool shares (name and columns are refinery's).
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// The busy timeout when none is configured: how long to wait for another process's lock.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Which database dbtool works on: the engine and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (the URL prints without its password).
    Postgres(PgUrl),
}

impl Database {
    /// The SQLite file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// What reports and errors name: the file, or the redacted URL.
    pub fn place(&self) -> std::path::PathBuf {
        match self {
            Database::Sqlite(path) => path.clone(),
            Database::Postgres(url) => std::path::PathBuf::from(url.redacted()),
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

impl From<std::path::PathBuf> for Database {
    fn from(path: std::path::PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_path_buf())
    }
}

impl From<&std::path::PathBuf> for Database {
    fn from(path: &std::path::PathBuf) -> Self {
        Database::Sqlite(path.clone())
    }
}

impl From<&str> for Database {
    fn from(path: &str) -> Self {
        Database::Sqlite(path.into())
    }
}

impl serde::Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.place().serialize(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the database must exist.
    ReadOnly,
    /// Read and write; the database must exist.
    ReadWrite,
    /// Read and write, creating the file when it does not exist.
    Create,
}

/// Open `path` for dbtool's use, with `busy_timeout` as the wait for other processes' locks.
pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> Result<Connection> {
    check_file(path, mode)?;
    let classified = |(action, e): (&str, rusqlite::Error)| classify(e, action, path, busy_timeout);
    match connect(path, mode, busy_timeout) {
        Err((_, e)) if mode == OpenMode::ReadOnly && is_hot_journal(&e) => {
            // A writer was killed mid-transaction and left a hot journal. A read-only connection
            // may not roll it back (SQLITE_READONLY_ROLLBACK), so `current` after a crash would
            // fail; let a read-write connection do what any SQLite writer does first, then read.
            connect(path, OpenMode::ReadWrite, busy_timeout).map_err(|(_, e)| {
                classify(
                    e,
                    "rolling back the unfinished transaction a crashed process left",
                    path,
                    busy_timeout,
                )
            })?;
            connect(path, mode, busy_timeout).map_err(classified)
        }
        result => result.map_err(classified),
    }
}

fn connect(
    path: &Path,
    mode: OpenMode,
    busy_timeout: Duration,
) -> std::result::Result<Connection, (&'static str, rusqlite::Error)> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= match mode {
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| ("opening the database", e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| ("setting the busy timeout", e))?;
    // Reading the schema is the cheapest way to make SQLite parse the header, find out whether
    // the file is a database at all, and take (then release) a shared lock.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| ("reading the schema", e))?;
    Ok(conn)
}

fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _)
        if err.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// Refuse folders and non-SQLite files before SQLite opens them (SQLite would happily open a
/// text file and only fail later, or create a database where a typo pointed).
pub fn check_file(path: &Path, mode: OpenMode) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(DbError::NotADatabase {
            path: path.to_path_buf(),
            reason: "it is a folder".into(),
        }),
        Ok(meta) => {
            if meta.len() == 0 {
                return Ok(()); // SQLite treats an empty file as an empty database
            }
            let mut header = [0u8; 16];
            let read = std::fs::File::open(path).and_then(|mut f| {
                use std::io::Read;
                f.read_exact(&mut header)
            });
            match read {
                Ok(()) if &header == SQLITE_HEADER => Ok(()),
                Ok(()) => Err(DbError::NotADatabase {
                    path: path.to_path_buf(),
                    reason: "the file does not start with the SQLite header".into(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Err(DbError::NotADatabase {
                        path: path.to_path_buf(),
                        reason: format!("the file is only {} bytes long", meta.len()),
                    })
                }
                Err(e) => Err(DbError::io("reading the header of", path, e)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match mode {
            OpenMode::Create => Ok(()),
            OpenMode::ReadOnly | OpenMode::ReadWrite => Err(DbError::DatabaseMissing {
                path: path.to_path_buf(),
            }),
        },
        Err(e) => Err(DbError::io("looking at", path, e)),
    }
}

/// Map SQLite's errors onto dbtool's: busy/locked become [`DbError::Locked`], "not a database"
/// becomes [`DbError::NotADatabase`], the rest keep their cause and say what we were doing.
pub fn classify(e: rusqlite::Error, action: &str, path: &Path, waited: Duration) -> DbError {
    match SqliteFailure::of(&e) {
        SqliteFailure::Busy => DbError::Locked {
            path: path.to_path_buf(),
            waited_ms: waited.as_millis() as u64,
        },
        SqliteFailure::NotADatabase => DbError::NotADatabase {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        _ => DbError::sqlite(action, path, e),
    }
}

/// An advisory lock on `<database>.dbtool-lock`, held for a whole run. SQLite's own lock
/// (`BEGIN IMMEDIATE`) cannot span a `-- dbtool:no-transaction` step, which runs in autocommit
/// mode: without this, a second `dbtool upgrade` waiting for SQLite's lock got it in that gap
/// and ran the same migration again. The file is left in place (deleting a lock file races
/// with the next process opening it); the lock dies with the process.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// The path of the run lock file beside `db_path`.
pub fn run_lock_path(db_path: &Path) -> std::path::PathBuf {
    crate::sidefiles::lock_path(db_path)
}

/// Take the run lock, waiting up to `busy_timeout` for another dbtool process to finish.
pub fn run_lock(db_path: &Path, busy_timeout: Duration) -> Result<RunLock> {
    let path = run_lock_path(db_path);
    // Never through a link planted at the lock's path: that would create or truncate its target.
    let file = crate::sidefiles::open_nofollow(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
        &path,
    )
    .map_err(|e| {
        if crate::sidefiles::is_symlink(&path) {
            DbError::SymlinkRefused { path: path.clone() }
        } else {
            DbError::io("opening the lock file", &path, e)
        }
    })?;
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                let waited = started.elapsed();
                if waited >= busy_timeout {
                    return Err(DbError::Locked {
                        path: db_path.to_path_buf(),
                        waited_ms: busy_timeout.as_millis() as u64,
                    });
                }
                // The same back-off as SQLite's busy handler: there is no way to wait on a
                // file lock with a timeout in std.
                std::thread::sleep(pause.min(busy_timeout - waited));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(DbError::io("locking", &path, e));
            }
        }
    }
}

/// Tables a step of the current transaction proved unchanged as far as their own foreign keys go
/// (a rebuild alone in its transaction: same rows, same foreign keys, same parents). A table in
/// the `temp` schema, so that it is written, rolled back to a savepoint and rolled back with the
/// transaction it belongs to; a write session empties it when its transaction begins.
const FOREIGN_KEYS_UNCHANGED: &str = "dbtool_foreign_keys_unchanged";

/// Spare `table` the foreign-key check of the current transaction, as the child: the tables that
/// refer to it are still checked. The mark is a row of a `temp` table, so it is rolled back with
/// the transaction (or to a savepoint of it); the write session drops it when the transaction
/// ends or begins.
pub fn mark_foreign_keys_unchanged(conn: &Connection, path: &Path, table: &str) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {FOREIGN_KEYS_UNCHANGED} (name TEXT PRIMARY KEY COLLATE NOCASE)"
    ))
    .and_then(|()| {
        conn.execute(
            &format!("INSERT OR IGNORE INTO temp.{FOREIGN_KEYS_UNCHANGED} (name) VALUES (?1)"),
            [table],
        )
    })
    .map(|_| ())
    .map_err(|e| DbError::sqlite("recording a table proven unchanged", path, e))
}

/// Forget the tables marked by [`mark_foreign_keys_unchanged`] (a new transaction begins).
pub(crate) fn forget_foreign_keys_unchanged(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{FOREIGN_KEYS_UNCHANGED}"
    ))
    .map_err(|e| DbError::sqlite("starting a write transaction", path, e))
}

/// Every row `PRAGMA foreign_key_check` reports, sorted; tables marked by
/// [`mark_foreign_keys_unchanged`] are not checked as the child (each other table is, on its own).
pub fn foreign_key_violations(conn: &Connection, path: &Path) -> Result<Vec<FkViolation>> {
    let run = || -> rusqlite::Result<Vec<FkViolation>> {
        let marked: bool = conn.query_row(
            "SELECT count(*) > 0 FROM temp.sqlite_schema WHERE type = 'table' AND name = ?1",
            [FOREIGN_KEYS_UNCHANGED],
            |r| r.get(0),
        )?;
        let row = |r: &rusqlite::Row<'_>| {
            Ok(FkViolation {
                table: r.get(0)?,
                rowid: r.get(1)?,
                parent: r.get(2)?,
                fk_index: r.get(3)?,
            })
        };
        if !marked {
            let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
            let rows = stmt.query_map([], row)?;
            return rows.collect();
        }
        let tables: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM main.sqlite_schema WHERE type = 'table' \
                 AND name COLLATE NOCASE NOT IN (SELECT name FROM temp.{FOREIGN_KEYS_UNCHANGED}) ORDER BY name"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare("SELECT * FROM pragma_foreign_key_check(?1, 'main')")?;
        let mut all = Vec::new();
        for table in &tables {
            for v in stmt.query_map([table], row)? {
                all.push(v?);
            }
        }
        Ok(all)
    };
    let mut violations = run().map_err(|e| DbError::sqlite("checking foreign keys", path, e))?;
    violations.sort();
    Ok(violations)
}

/// Names of the user's tables: everything but SQLite's own and dbtool/refinery's history.
pub fn user_tables(conn: &Connection, path: &Path) -> Result<Vec<String>> {
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([HISTORY_TABLE], |r| r.get(0))?;
        rows.collect()
    };
    run().map_err(|e| DbError::sqlite("listing tables", path, e))
}

/// Rows per user table, by name.
pub fn row_counts(conn: &Connection, path: &Path) -> Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    for table in user_tables(conn, path)? {
        let sql = format!("SELECT count(*) FROM {}", quote_ident(&table));
        let n: i64 = conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(|e| DbError::sqlite(format!("counting the rows of {table}"), path, e))?;
        counts.insert(table, n as u64);
    }
    Ok(counts)
}

/// How thoroughly to check a database's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// `PRAGMA quick_check`: the b-trees and records, not index contents (O(N)).
    Quick,
    /// `PRAGMA integrity_check`: also every index entry against its table.
    Full,
}

/// The messages of `PRAGMA quick_check` or `integrity_check`; empty when the database is sound.
pub fn integrity_problems(conn: &Connection, path: &Path, level: Integrity) -> Result<Vec<String>> {
    let pragma = match level {
        Integrity::Quick => "quick_check",
        Integrity::Full => "integrity_check",
    };
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    let messages =
        run().map_err(|e| DbError::sqlite(format!("running PRAGMA {pragma}"), path, e))?;
    Ok(messages.into_iter().filter(|m| m != "ok").collect())
}

/// Quote an identifier for SQL: `"na""me"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_folders_and_non_sqlite_files_without_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path(), OpenMode::ReadWrite, Duration::ZERO).unwrap_err();
        assert_eq!(err.code(), "not-a-database");

        let text = dir.path().join("notes.db");
        std::fs::write(
            &text,
            "hello, this is not a database at all, just a text file",
        )
        .unwrap();
        let err = open(&text, OpenMode::Create, Duration::ZERO).unwrap_err();
        assert_eq!(err.code(), "not-a-database");
        assert_eq!(
            std::fs::read(&text).unwrap(),
            b"hello, this is not a database at all, just a text file"
        );

        let missing = dir.path().join("missing.db");
        let err = open(&missing, OpenMode::ReadWrite, Duration::ZERO).unwrap_err();
        assert_eq!(err.code(), "database-missing");
        assert!(!missing.exists());
    }
}
