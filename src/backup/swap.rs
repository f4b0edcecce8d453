//! Replacing a database file by renaming a verified image over it, when no other process has
//! the database open. A rename writes nothing, where replacing the content through SQLite writes
//! every page twice (WAL or journal, then the file), so it is the fast path of `restore`.
//!
//! Who else has the database open, as SQLite itself can tell (unix VFS, POSIX `fcntl` locks):
//! - every connection in WAL mode that has read holds a SHARED lock on the database file for as
//!   long as it stays open, and one on the `-shm` file's DMS byte; a reader or writer in
//!   rollback-journal mode holds SHARED (or more) for the length of its transaction. dbtool takes
//!   SQLite's EXCLUSIVE lock on the file (PENDING, RESERVED and the SHARED range) without
//!   waiting: if that fails, someone has it open, and the caller replaces the content in place.
//! - on Linux, every process whose open files dbtool can see (`/proc/<pid>/fd`) is checked for
//!   the file too, which also finds idle connections that hold no lock. This is done again after
//!   the rename (a process that opened the old file in between shows up then), and the old file
//!   is put back if so.
//!
//! What remains: a process dbtool cannot inspect (another user's, when dbtool does not run as
//! root) holding a connection that is idle and holds no lock keeps seeing the old file: in
//! rollback-journal mode SQLite refuses its writes (`SQLITE_READONLY_DBMOVED`) and its reads are
//! of the old database until it reconnects. Elsewhere than Linux the fast path is not taken.
//!
//! Crash safety: the old database is checkpointed first (its `-wal` emptied) and a non-empty
//! `-wal` or `-journal` beside it sends the caller to the in-place path, so no stale log can be
//! replayed onto the new file; the image has the old file's mode and owner before the rename.

use std::path::Path;

use super::BackupError;

/// Bytes SQLite's unix VFS locks: PENDING (0x40000000), RESERVED, then the 510-byte SHARED range.
#[cfg(target_os = "linux")]
const LOCK_START: i64 = 0x4000_0000;
#[cfg(target_os = "linux")]
const LOCK_LEN: i64 = 2 + 510;
/// The `-shm` lock bytes: 8 WAL locks from offset 120, then the DMS byte (held by every
/// connection that has the WAL index mapped).
#[cfg(target_os = "linux")]
const SHM_LOCK_START: i64 = 120;
#[cfg(target_os = "linux")]
const SHM_LOCK_LEN: i64 = 9;

/// How a restore replaced an existing database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "how", content = "because")]
pub enum ReplacedBy {
    /// Nobody else had it open: the verified copy was renamed over it.
    Rename,
    /// Another process has it open (or dbtool could not tell): the content was replaced through
    /// SQLite in one transaction. Says why.
    InPlace(String),
}

/// Rename `image` (complete, synced, beside `db`) over `db` if no other process has `db` open.
/// `Ok(Some(reason))`: nothing was changed (beyond a checkpoint of the old database), replace
/// the content in place instead. `Ok(None)`: `image` is now `db`.
pub(crate) fn rename_if_unused(db: &Path, image: &Path) -> Result<Option<String>, BackupError> {
    #[cfg(target_os = "linux")]
    {
        linux::rename_if_unused(db, image)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (db, image);
        Ok(Some(
            "dbtool cannot tell on this system whether another process has it open".into(),
        ))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use nix::errno::Errno;
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::libc;
    use std::fs::{self, File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;
    use std::time::Duration;

    use rusqlite::{Connection, OpenFlags};

    use super::super::store::{self, TempFile};
    use super::super::BackupError;
    use super::{LOCK_LEN, LOCK_START, SHM_LOCK_LEN, SHM_LOCK_START};
    use crate::sidefiles;

    fn flock(kind: libc::c_int, start: i64, len: i64) -> libc::flock {
        libc::flock {
            l_type: kind as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: start,
            l_len: len,
            l_pid: 0,
        }
    }

    /// Take a write lock on the range without waiting; false when another process holds any
    /// lock on it.
    fn try_write_lock(file: &File, start: i64, len: i64) -> io::Result<bool> {
        match fcntl(file, FcntlArg::F_SETLK(&flock(libc::F_WRLCK, start, len))) {
            Ok(_) => Ok(true),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether another process holds a lock in the range (without taking one).
    fn locked_by_other(file: &File, start: i64, len: i64) -> io::Result<bool> {
        let mut l = flock(libc::F_WRLCK, start, len);
        fcntl(file, FcntlArg::F_GETLK(&mut l))?;
        Ok(l.l_type != libc::F_UNLCK as libc::c_short)
    }

    /// A process other than this one with `(dev, ino)` open, as far as `/proc` shows.
    fn opened_by(dev: u64, ino: u64) -> Option<u32> {
        let me = std::process::id();
        let procs = fs::read_dir("/proc").ok()?;
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            // Processes whose files we may not see are covered by the locks only.
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                    return Some(pid);
                }
            }
        }
        None
    }

    pub(super) fn rename_if_unused(db: &Path, image: &Path) -> Result<Option<String>, BackupError> {
        let write_err = |path: &Path, doing: &'static str| {
            let path = path.to_path_buf();
            move |e: io::Error| BackupError::Write {
                path,
                doing,
                source: e,
            }
        };
        // Empty the old database's WAL into it (what its last connection does on close), so no
        // log of the old file is left to be replayed onto the new one. This never waits: busy
        // (or any other failure here) means someone else is at work, and the in-place path,
        // which waits up to the busy timeout, reports what is wrong.
        let checkpointed = || -> rusqlite::Result<bool> {
            let conn = Connection::open_with_flags(
                db,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::ZERO)?;
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Ok(true);
            }
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            Ok(busy == 0)
        };
        if !checkpointed().unwrap_or(false) {
            return Ok(Some("another connection is using it".into()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(db)
            .map_err(write_err(db, "opening the database"))?;
        let old = file
            .metadata()
            .map_err(write_err(db, "reading the database's metadata"))?;
        // SQLite's EXCLUSIVE lock, held until `file` is closed (after the rename).
        if !try_write_lock(&file, LOCK_START, LOCK_LEN)
            .map_err(write_err(db, "locking the database"))?
        {
            return Ok(Some("another connection holds a lock on it".into()));
        }
        for (suffix, what) in [
            ("-wal", "write-ahead log"),
            ("-journal", "rollback journal"),
        ] {
            if fs::metadata(sidefiles::with_suffix(db, suffix)).is_ok_and(|m| m.len() > 0) {
                return Ok(Some(format!("it has a non-empty {what}")));
            }
        }
        if let Ok(shm) = OpenOptions::new()
            .read(true)
            .write(true)
            .open(sidefiles::with_suffix(db, "-shm"))
        {
            if locked_by_other(&shm, SHM_LOCK_START, SHM_LOCK_LEN)
                .map_err(write_err(db, "checking the shared-memory file's locks"))?
            {
                return Ok(Some("another connection has its shared memory open".into()));
            }
        }
        if let Some(pid) = opened_by(old.dev(), old.ino()) {
            return Ok(Some(format!("process {pid} has it open")));
        }

        // The new file takes the old one's mode and owner.
        let img = OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)
            .map_err(write_err(image, "opening the verified copy"))?;
        img.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
            .map_err(write_err(
                image,
                "giving the restored file the database's mode",
            ))?;
        let new = img
            .metadata()
            .map_err(write_err(image, "reading the verified copy's metadata"))?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid())
            && std::os::unix::fs::fchown(&img, Some(old.uid()), Some(old.gid())).is_err()
        {
            return Ok(Some(
                "dbtool cannot give the restored file the database's owner".into(),
            ));
        }
        drop(img);

        let folder = sidefiles::folder_of(db);
        // A second name for the old file, to put it back if someone opened it meanwhile.
        let aside = TempFile::new_in(folder, "restore-old")?;
        fs::remove_file(aside.path())
            .and_then(|_| fs::hard_link(db, aside.path()))
            .map_err(write_err(aside.path(), "linking the old database aside"))?;
        fs::rename(image, db)
            .map_err(write_err(db, "renaming the restored database into place"))?;
        if let Some(pid) = opened_by(old.dev(), old.ino()) {
            // Put the old file back (one atomic rename) and keep the image for the in-place path.
            fs::hard_link(db, image)
                .and_then(|_| fs::rename(aside.path(), db))
                .map_err(write_err(db, "putting the old database back"))?;
            return Ok(Some(format!("process {pid} opened it meanwhile")));
        }
        // The old file's (empty) log and shared memory must not meet the new file's connections.
        for suffix in ["-wal", "-shm", "-journal"] {
            match fs::remove_file(sidefiles::with_suffix(db, suffix)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(write_err(
                        &sidefiles::with_suffix(db, suffix),
                        "removing a side file",
                    )(e))
                }
            }
        }
        drop(aside);
        store::sync_dir(folder)?;
        drop(file); // releases the lock on the old, now unlinked, file
        Ok(None)
    }
}
