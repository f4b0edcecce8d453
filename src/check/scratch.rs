//! Consistent scratch copies of a real database, for `rehearse` and `verify --data`.
//!
//! The copy is taken with SQLite's online backup API in a single `step(-1)`: every page is copied
//! inside one read transaction on the source, so the copy is one consistent state even while an
//! application writes (a plain file copy of a live database, above all one in WAL mode, is not).
//! The source is opened read-only and never written. The copy lives in a fresh folder under the
//! temporary directory (`TMPDIR`), removed when the [`ScratchCopy`] is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use super::{CheckError, Result};
use crate::db::{self, DbError, OpenMode};

/// A private read-write copy of a database; deleted on drop.
pub(crate) struct ScratchCopy {
    pub conn: Connection,
    pub path: PathBuf,
    // Declared last: the connection closes before the folder is removed.
    _dir: tempfile::TempDir,
}

/// Copy `source` into a new temporary folder. `purpose` names the folder
/// (`dbtool-rehearse-<pid>-…`).
pub(super) fn copy(source: &Path, busy_timeout: Duration, purpose: &str) -> Result<ScratchCopy> {
    let src = db::open(source, OpenMode::ReadOnly, busy_timeout)?;
    let dir = tempfile::Builder::new()
        // The pid in the name lets an interrupted dbtool find and remove its own folder.
        .prefix(&format!("dbtool-{purpose}-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| CheckError::ScratchDir {
            database: source.to_path_buf(),
            source: e,
        })?;
    let name = source
        .file_name()
        .map_or_else(|| "copy.db".into(), |n| n.to_string_lossy().into_owned());
    let path = dir.path().join(name);
    let copy_error = |e: rusqlite::Error| -> CheckError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                DbError::Locked {
                    path: source.to_path_buf(),
                    waited_ms: busy_timeout.as_millis() as u64,
                }
                .into()
            }
            _ => CheckError::Copy {
                database: source.to_path_buf(),
                copy: path.clone(),
                source: Box::new(e),
            },
        }
    };
    let mut conn = Connection::open(&path).map_err(copy_error)?;
    {
        let backup = Backup::new(&src, &mut conn).map_err(copy_error)?;
        // -1: all pages in one step, under one read lock on the source.
        match backup.step(-1).map_err(copy_error)? {
            StepResult::Done => {}
            StepResult::Busy | StepResult::Locked => {
                return Err(DbError::Locked {
                    path: source.to_path_buf(),
                    waited_ms: busy_timeout.as_millis() as u64,
                }
                .into())
            }
            // `step(-1)` copies everything or fails; anything else would be a partial copy.
            _ => {
                return Err(copy_error(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
                    Some("the backup did not finish in one step".into()),
                )))
            }
        }
    }
    drop(src);
    conn.busy_timeout(busy_timeout)
        .map_err(|e| DbError::sqlite("setting the busy timeout", &path, e))?;
    Ok(ScratchCopy {
        conn,
        path,
        _dir: dir,
    })
}
