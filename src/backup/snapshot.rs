//! A consistent read of a live database, while other processes may be writing to it.
//!
//! Two ways, chosen at run time:
//! - `sqlite_dbpage` (when SQLite was built with `SQLITE_ENABLE_DBPAGE_VTAB`; this repository's
//!   `.cargo/config.toml` does that): one read transaction pins a snapshot (WAL: an end mark in
//!   the log; rollback journal: a SHARED lock), then every page is streamed out of the pager in
//!   order. No temporary file, memory bounded by SQLite's page cache.
//! - The online backup API with a single `step(-1)` into a temporary file. One step is one read
//!   transaction on the source, so it is consistent too. (`step(N)` in a loop restarts from
//!   scratch whenever another connection writes between steps, forever under a busy writer: that
//!   is what rusqlite's `Connection::backup` does, so it is not used. `serialize` zero-fills pages
//!   it cannot read: never for backups.)
//!
//! Invariants: the source database is never written (the connection is `query_only` and does not
//! checkpoint on close); the image handed out is exactly `page_size * page_count` bytes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::error::classify;
use super::format::SnapshotMethod;
use super::store::TempFile;
use super::BackupError;
use crate::db::DbError;

/// Which snapshot method to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MethodChoice {
    /// `sqlite_dbpage` when this SQLite has it, else the backup API.
    #[default]
    Auto,
    /// Only `sqlite_dbpage`; an error if this SQLite lacks it.
    Dbpage,
    /// Only the online backup API.
    BackupApi,
}

/// What the snapshot holds, known before any page is streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub page_size: u32,
    pub page_count: u64,
    pub schema_version: Option<i64>,
    pub method: SnapshotMethod,
}

impl SnapshotInfo {
    pub fn image_size(&self) -> u64 {
        u64::from(self.page_size) * self.page_count
    }
}

/// An open, consistent view of a database; stream it with [`Snapshot::stream`].
pub struct Snapshot {
    db: PathBuf,
    info: SnapshotInfo,
    source: Source,
}

enum Source {
    /// Holds an open read transaction on this connection.
    Dbpage(Connection),
    /// A private copy taken with the backup API; deleted on drop.
    Copy(TempFile),
}

/// Open `db` for reading without ever writing to it.
pub(crate) fn open_source(db: &Path, busy_timeout: Duration) -> Result<Connection, BackupError> {
    check_database_path(db)?;
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(db, "opening the database", e))?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(busy_timeout)?;
        // Closing the last connection to a WAL database would checkpoint it, i.e. write to it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(())
    };
    setup().map_err(|e| classify(db, "opening the database", e))?;
    Ok(conn)
}

/// Refuse a folder, a missing file or a file that is not SQLite before SQLite opens it (the db
/// layer's one check).
pub(crate) fn check_database_path(db: &Path) -> Result<(), BackupError> {
    Ok(crate::db::check_file(db, crate::db::OpenMode::ReadWrite)?)
}

/// Whether this SQLite build has the `sqlite_dbpage` virtual table.
pub fn dbpage_available(conn: &Connection) -> bool {
    conn.prepare("SELECT pgno FROM sqlite_dbpage('main') LIMIT 0")
        .is_ok()
}

impl Snapshot {
    /// Take a consistent view of `db`. `scratch` is where the backup-API method may put its
    /// temporary copy.
    pub fn begin(
        db: &Path,
        choice: MethodChoice,
        busy_timeout: Duration,
        scratch: &Path,
    ) -> Result<Self, BackupError> {
        let conn = open_source(db, busy_timeout)?;
        let method = match choice {
            MethodChoice::BackupApi => SnapshotMethod::BackupApi,
            MethodChoice::Dbpage => SnapshotMethod::Dbpage,
            MethodChoice::Auto if dbpage_available(&conn) => SnapshotMethod::Dbpage,
            MethodChoice::Auto => SnapshotMethod::BackupApi,
        };
        match method {
            SnapshotMethod::Dbpage => Self::begin_dbpage(db, conn),
            SnapshotMethod::BackupApi | SnapshotMethod::PgDump => {
                Self::begin_copy(db, conn, busy_timeout, scratch)
            }
        }
    }

    fn begin_dbpage(db: &Path, conn: Connection) -> Result<Self, BackupError> {
        let doing = "starting a read transaction";
        // A deferred BEGIN takes no lock; the first read does, and pins the snapshot until COMMIT.
        crate::db::begin_read(&conn).map_err(|e| classify(db, doing, e))?;
        let info = read_info(&conn, SnapshotMethod::Dbpage).map_err(|e| classify(db, doing, e))?;
        Ok(Self {
            db: db.into(),
            info,
            source: Source::Dbpage(conn),
        })
    }

    fn begin_copy(
        db: &Path,
        conn: Connection,
        busy_timeout: Duration,
        scratch: &Path,
    ) -> Result<Self, BackupError> {
        let temp = TempFile::new_in(scratch, "snapshot")?;
        let doing = "copying the database with the backup API";
        let mut dest = Connection::open(temp.path()).map_err(|e| {
            BackupError::Db(DbError::sqlite(
                "creating the temporary snapshot",
                temp.path(),
                e,
            ))
        })?;
        dest.busy_timeout(busy_timeout)
            .and_then(|_| dest.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"))
            .map_err(|e| {
                BackupError::Db(DbError::sqlite(
                    "creating the temporary snapshot",
                    temp.path(),
                    e,
                ))
            })?;
        {
            let backup = rusqlite::backup::Backup::new(&conn, &mut dest)
                .map_err(|e| classify(db, doing, e))?;
            // One step: one read transaction on the source, hence one consistent snapshot.
            match backup.step(-1).map_err(|e| classify(db, doing, e))? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(classify(
                        db,
                        doing,
                        rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some(format!("backup step returned {other:?}")),
                        ),
                    ))
                }
            }
        }
        let info = read_info(&dest, SnapshotMethod::BackupApi).map_err(|e| {
            BackupError::Db(DbError::sqlite(
                "reading the temporary snapshot",
                temp.path(),
                e,
            ))
        })?;
        drop(dest);
        drop(conn);
        Ok(Self {
            db: db.into(),
            info,
            source: Source::Copy(temp),
        })
    }

    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    /// Hand every byte of the image to `sink`, in order, in chunks. Returns the bytes streamed.
    pub fn stream(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
    ) -> Result<u64, BackupError> {
        let expected = self.info.image_size();
        let done = match &self.source {
            Source::Dbpage(conn) => stream_dbpage(&self.db, conn, &self.info, sink)?,
            Source::Copy(temp) => stream_file(temp.path(), sink)?,
        };
        if done != expected {
            return Err(BackupError::SnapshotInconsistent {
                path: self.db.clone(),
                detail: format!("streamed {done} bytes, expected {expected}"),
            });
        }
        if let Source::Dbpage(conn) = &self.source {
            crate::db::end_read(conn)
                .map_err(|e| classify(&self.db, "ending the read transaction", e))?;
        }
        Ok(done)
    }
}

fn read_info(conn: &Connection, method: SnapshotMethod) -> rusqlite::Result<SnapshotInfo> {
    let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_count: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(SnapshotInfo {
        page_size,
        page_count,
        schema_version: schema_version(conn)?,
        method,
    })
}

/// `max(version)` of refinery's history table, or `None` when there is no such table.
pub(crate) fn schema_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'refinery_schema_history'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_table {
        return Ok(None);
    }
    conn.query_row(
        "SELECT max(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
}

fn stream_dbpage(
    db: &Path,
    conn: &Connection,
    info: &SnapshotInfo,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let doing = "reading pages through sqlite_dbpage";
    let err = |e| classify(db, doing, e);
    let mut stmt = conn
        .prepare("SELECT pgno, data FROM sqlite_dbpage('main')")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut next_page: u64 = 1;
    let mut done = 0u64;
    while let Some(row) = rows.next().map_err(err)? {
        let pgno: u64 = row.get(0).map_err(err)?;
        let data = row
            .get_ref(1)
            .map_err(err)?
            .as_blob()
            .map_err(|e| err(e.into()))?;
        if pgno != next_page || data.len() != info.page_size as usize {
            return Err(BackupError::SnapshotInconsistent {
                path: db.into(),
                detail: format!(
                    "page {pgno} ({} bytes) where page {next_page} ({} bytes) was expected",
                    data.len(),
                    info.page_size
                ),
            });
        }
        sink(data)?;
        done += data.len() as u64;
        next_page += 1;
    }
    Ok(done)
}

fn stream_file(
    path: &Path,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let read_err = |e| BackupError::Read {
        path: path.into(),
        doing: "reading the temporary snapshot",
        source: e,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        sink(&buf[..n])?;
        done += n as u64;
    }
}
