//! dbtool's own files beside a database and in its backup folder: their names, how they are
//! created, and finding and removing the ones a killed run left behind. Every module that creates
//! such a file goes through here, so there is one list of names and one cleanup.
//!
//! The files:
//! - `<database>.dbtool-lock`: the advisory run lock ([`crate::db::run_lock`]). Kept on purpose
//!   (deleting a lock file races with the next process opening it); never a leftover.
//! - `.dbtool-<kind>-<pid>-<n>.tmp` in the database's folder (`restore`, `reset`) or the backup
//!   folder (`backup`, `snapshot`, `verify`): temporary files, plus the `-journal`, `-wal` and
//!   `-shm` SQLite gives one when it opens it as a database (and the run lock a migrator takes on
//!   a new database it builds there). The owner removes them all when it
//!   finishes, whether it succeeded or failed; a process killed half-way cannot.
//!
//! Invariants:
//! - Nothing here follows a symbolic link where it creates or opens one of these files: the lock
//!   is opened with `O_NOFOLLOW`, temporary files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`
//!   (mode 0600: they hold users' data). A link planted at such a path is an error naming it.
//! - A running dbtool's files are never taken for leftovers. Its owner holds an `flock` on a
//!   temporary file from creation ([`create_temp`]) to removal; the kernel drops it when the
//!   process dies, however it dies. That is the test, not the pid in the name, which misleads
//!   both ways: a dbtool in another container sharing the folder has a pid this one cannot see,
//!   and after a restart a container's processes get the same small pids again, so the pid of a
//!   killed dbtool soon belongs to some long-lived process. The pid still covers the instant
//!   between creating and locking a file (a free file whose process lives is kept for
//!   [`GRACE`]), and file systems without `flock` (there, only a gone process's files are
//!   leftovers: Linux has no `/proc/<pid>`; elsewhere the file is more than a day old).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Appended to the database path to name the run lock.
pub const LOCK_SUFFIX: &str = ".dbtool-lock";
/// The files SQLite keeps beside a database: rollback journal, write-ahead log, WAL index.
pub const SQLITE_SIDE_SUFFIXES: [&str; 3] = ["-journal", "-wal", "-shm"];
const TEMP_PREFIX: &str = ".dbtool-";
const TEMP_SUFFIX: &str = ".tmp";

/// `path` with `suffix` appended to its last component (`a.db` + `-wal` → `a.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The run lock beside `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    with_suffix(db, LOCK_SUFFIX)
}

/// The `-journal`, `-wal` and `-shm` paths of a database file.
pub fn sqlite_side_files(db: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    SQLITE_SIDE_SUFFIXES.iter().map(|s| with_suffix(db, s))
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh name `.dbtool-<kind>-<pid>-<n>.tmp` in `dir` (not created).
pub fn temp_path(dir: &Path, kind: &str) -> PathBuf {
    dir.join(format!(
        "{TEMP_PREFIX}{kind}-{}-{}{TEMP_SUFFIX}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Create `path` as a new, empty 0600 file. Fails when anything exists there, a symbolic link
/// included (`O_EXCL` never follows one), and says so when it is a link.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    open_nofollow(&mut opts, path)
}

/// Create the temporary file `path` like [`create_new`] and take an exclusive `flock` on it,
/// which marks it as in use until the returned file is closed (or its process dies). On a file
/// system without `flock` the file is returned unlocked (the pid in its name then decides).
pub fn create_temp(path: &Path) -> io::Result<File> {
    let file = create_new(path)?;
    match file.try_lock() {
        Ok(()) | Err(fs::TryLockError::Error(_)) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another process locked the new file",
        )),
    }
}

/// Open `path` with `opts`, refusing to follow a symbolic link at `path` itself (links in the
/// folders above it are the user's business). The error for a link names it.
pub fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(opts, libc::O_NOFOLLOW);
    opts.open(path).map_err(|e| explain_link(path, e))
}

/// Whether `path` itself is a symbolic link.
pub fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// `O_NOFOLLOW` fails with `ELOOP` ("too many levels of symbolic links") and `O_EXCL` with
/// "file exists": neither says what is wrong. Say it when `path` is a link.
fn explain_link(path: &Path, e: io::Error) -> io::Error {
    if !is_symlink(path) {
        return e;
    }
    io::Error::new(
        e.kind(),
        format!(
            "{} is a symbolic link; dbtool does not follow links where it creates its own files \
             (remove the link)",
            path.display()
        ),
    )
}

/// Remove the temporary file `path`, its SQLite side files and the run lock a migrator took on
/// it; missing ones are fine. Returns what was removed.
pub fn remove_with_side_files(path: &Path) -> Vec<PathBuf> {
    std::iter::once(path.to_path_buf())
        .chain(sqlite_side_files(path))
        .chain(std::iter::once(lock_path(path)))
        .filter(|p| fs::remove_file(p).is_ok())
        .collect()
}

/// Temporary files (and their SQLite side files) that dbtool processes which are gone left in
/// `dir`, sorted. A missing or unreadable folder has none.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| is_leftover(dir, path))
        .collect();
    found.sort();
    found
}

/// How long a temporary file nobody has locked is kept while the process named in it lives: the
/// instant between its creation and its `flock`, with a wide margin.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// See the module header.
fn is_leftover(dir: &Path, path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Some((pid, main)) = temp_owner(&name) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    match lock_state(&dir.join(main)) {
        Lock::Held => false,
        Lock::Free | Lock::Gone => !process_alive(pid, path) || older_than(path, GRACE),
        Lock::Unsupported => !process_alive(pid, path),
    }
}

enum Lock {
    /// Another process holds the file's `flock`: its owner is alive.
    Held,
    /// Nobody holds it.
    Free,
    /// The temporary file itself is gone (these are its side files).
    Gone,
    /// The file system does not do `flock`.
    Unsupported,
}

fn lock_state(main: &Path) -> Lock {
    match open_nofollow(OpenOptions::new().read(true), main) {
        Err(_) => Lock::Gone,
        Ok(file) => match file.try_lock() {
            Ok(()) => Lock::Free,
            Err(fs::TryLockError::WouldBlock) => Lock::Held,
            Err(fs::TryLockError::Error(_)) => Lock::Unsupported,
        },
    }
}

fn older_than(path: &Path, age: std::time::Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Remove [`leftovers`] in `dir`; returns what was removed.
pub fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    leftovers(dir)
        .into_iter()
        .filter(|p| fs::remove_file(p).is_ok())
        .collect()
}

/// The folder a database lives in (`.` for a bare file name).
pub fn folder_of(db: &Path) -> &Path {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The pid in `.dbtool-<kind>-<pid>-<n>.tmp` (optionally followed by a SQLite side suffix or the
/// lock suffix: a migrator building a new database in a temporary file locks it), and the name of
/// the temporary file itself, if `name` has that shape.
fn temp_owner(name: &str) -> Option<(u32, &str)> {
    let main = SQLITE_SIDE_SUFFIXES
        .iter()
        .chain(&[LOCK_SUFFIX])
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    let inner = main.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    let mut parts = inner.rsplit('-');
    let _seq: u64 = parts.next()?.parse().ok()?;
    Some((parts.next()?.parse().ok()?, main))
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32, _file: &Path) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32, file: &Path) -> bool {
    let age = fs::symlink_metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.elapsed().ok());
    age.is_none_or(|a| a < std::time::Duration::from_secs(24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_and_their_side_files_are_recognised() {
        assert_eq!(
            temp_owner(".dbtool-backup-123-4.tmp"),
            Some((123, ".dbtool-backup-123-4.tmp"))
        );
        assert_eq!(
            temp_owner(".dbtool-snapshot-9-0.tmp"),
            Some((9, ".dbtool-snapshot-9-0.tmp"))
        );
        let main = Some((9, ".dbtool-reset-9-0.tmp"));
        assert_eq!(temp_owner(".dbtool-reset-9-0.tmp-wal"), main);
        assert_eq!(temp_owner(".dbtool-reset-9-0.tmp-journal"), main);
        assert_eq!(temp_owner(".dbtool-reset-9-0.tmp.dbtool-lock"), main);
        assert_eq!(
            temp_owner("content-20250101T000000Z-v1-manual.db.zst"),
            None
        );
        assert_eq!(temp_owner(".dbtool-x.tmp"), None);
        assert_eq!(temp_owner("content.db.dbtool-lock"), None);
    }

    #[test]
    fn leftovers_are_those_of_processes_that_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".dbtool-reset-4000000000-0.tmp");
        let dead_wal = with_suffix(&dead, "-wal");
        let mine = temp_path(dir.path(), "reset");
        for p in [&dead, &dead_wal, &mine] {
            fs::write(p, b"x").unwrap();
        }
        fs::write(dir.path().join("content.db"), b"x").unwrap();
        assert_eq!(leftovers(dir.path()), vec![dead.clone(), dead_wal.clone()]);
        assert_eq!(remove_leftovers(dir.path()), vec![dead, dead_wal]);
        assert!(mine.exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_temporary_file_whose_flock_is_held_is_in_use_whatever_its_pid_says() {
        // A dbtool in another pid namespace (a container sharing the folder) has a pid that
        // looks dead from here; its flock still says the file is in use.
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join(".dbtool-restore-4000000000-0.tmp");
        let held = create_temp(&theirs).unwrap();
        let wal = with_suffix(&theirs, "-wal");
        fs::write(&wal, b"x").unwrap();
        assert!(leftovers(dir.path()).is_empty());
        drop(held);
        assert_eq!(leftovers(dir.path()), vec![theirs, wal]);
    }

    #[cfg(unix)]
    #[test]
    fn a_killed_runs_file_is_a_leftover_even_when_its_pid_now_belongs_to_another_process() {
        // After a container restart, the pid of a killed dbtool belongs to a live process (here:
        // this one's parent). Unlocked and past the grace period, its file is a leftover.
        let dir = tempfile::tempdir().unwrap();
        let parent = std::os::unix::process::parent_id();
        let old = dir.path().join(format!(".dbtool-reset-{parent}-0.tmp"));
        let file = fs::File::create(&old).unwrap();
        let young = dir.path().join(format!(".dbtool-reset-{parent}-1.tmp"));
        fs::write(&young, b"x").unwrap();
        let past = std::time::SystemTime::now() - GRACE * 2;
        file.set_modified(past).unwrap();
        assert_eq!(leftovers(dir.path()), vec![old]);
    }

    #[cfg(unix)]
    #[test]
    fn defect_5_a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        let link = dir.path().join("planted");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let err = create_new(&link).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        let err = open_nofollow(OpenOptions::new().write(true).create(true), &link).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(err.to_string().contains("planted"), "{err}");
        assert!(!target.exists(), "the link's target was created");
    }
}
