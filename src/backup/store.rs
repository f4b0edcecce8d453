//! Where backups live and how files get there: folder resolution, names, crash-safe publication,
//! listing without decompressing, leftovers, retention.
//!
//! Invariants:
//! - A file under a final name (`*.db.zst`) is complete: it was written under a temporary name
//!   (`.dbtool-<kind>-<pid>-<n>.tmp`), fsynced, linked into place without replacing anything, and
//!   the folder was fsynced. A crash leaves only a temporary name, which listing never shows and
//!   [`cleanup_leftovers`] removes once its process is gone.
//! - Folders dbtool creates are 0700 and files 0600 (backups hold users' data and tokens).
//! - Retention never deletes the newest backup of a database.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration as TimeDuration, OffsetDateTime};

use super::format::{self, BackupMeta};
use super::BackupError;
use crate::sidefiles;

/// Suffix of every finished backup file.
pub const BACKUP_SUFFIX: &str = ".db.zst";

/// Where the backup folder came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupDirOrigin {
    /// Given by the caller (`--backup-dir`, `DBTOOL_BACKUP_DIR` or `dbtool.toml`).
    Explicit,
    /// A per-database folder under the platform data directory.
    DataDir,
    /// A folder beside the database (no home directory to use).
    BesideDatabase,
    /// A folder in the current folder: a PostgreSQL database has no folder of its own to put
    /// its backups beside (no home directory to use).
    WorkingFolder,
}

/// The resolved backup folder of one database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupDir {
    pub path: PathBuf,
    pub origin: BackupDirOrigin,
}

/// Resolve the backup folder for `db`: `explicit` > `<data dir>/backups/<stem>-<hash>` >
/// `<db>.backups` beside the database. Does not create anything.
pub fn resolve_dir(db: &Path, explicit: Option<&Path>) -> BackupDir {
    if let Some(dir) = explicit {
        return BackupDir {
            path: dir.to_path_buf(),
            origin: BackupDirOrigin::Explicit,
        };
    }
    let canonical = canonical_db_path(db);
    match data_root() {
        Some(root) => BackupDir {
            path: root.join(database_key(&canonical)),
            origin: BackupDirOrigin::DataDir,
        },
        None => {
            let name = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "database".into());
            BackupDir {
                path: canonical
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(format!("{name}.backups")),
                origin: BackupDirOrigin::BesideDatabase,
            }
        }
    }
}

/// What a PostgreSQL backup records as its source (`source_path`): `postgres://host:port/dbname`,
/// without user, password or parameters, so the same database is recognised whoever connects.
pub fn postgres_source(url: &crate::db::PgUrl) -> String {
    let host = url.host();
    let host = if host.contains(':') && !host.starts_with('/') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("postgres://{host}:{}/{}", url.port(), url.dbname())
}

/// Resolve the backup folder of a PostgreSQL database: `explicit` >
/// `<data dir>/backups/<dbname>-<hash of its source>` > `<dbname>.backups` in the current
/// folder (no home folder to use). Does not create anything.
pub fn resolve_pg_dir(url: &crate::db::PgUrl, explicit: Option<&Path>) -> BackupDir {
    if let Some(dir) = explicit {
        return BackupDir {
            path: dir.to_path_buf(),
            origin: BackupDirOrigin::Explicit,
        };
    }
    let source = postgres_source(url);
    let stem = name_stem(url.dbname());
    match data_root() {
        Some(root) => {
            let digest = Sha256::digest(source.as_bytes());
            BackupDir {
                path: root.join(format!("{stem}-{}", &format::hex(&digest)[..8])),
                origin: BackupDirOrigin::DataDir,
            }
        }
        None => BackupDir {
            path: std::path::absolute(format!("{stem}.backups"))
                .unwrap_or_else(|_| PathBuf::from(format!("{stem}.backups"))),
            origin: BackupDirOrigin::WorkingFolder,
        },
    }
}

/// A database name made safe for a file name: letters, digits, `-` and `_`; others become `_`.
pub fn name_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if stem.is_empty() {
        "database".into()
    } else {
        stem
    }
}

/// `<data dir>/backups`, the folder holding one backup folder per database (when there is a
/// usable home folder).
pub fn data_root() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "dbtool")
        .map(|p| p.data_dir().to_path_buf())
        .filter(|d| home_exists(d))
        .map(|d| d.join("backups"))
}

/// One backup folder under [`data_root`] (`dbtool backups --all`).
#[derive(Clone, Debug, Serialize)]
pub struct FolderSummary {
    pub path: PathBuf,
    /// The database its backups were taken from (from the newest readable one's metadata).
    pub database: Option<PathBuf>,
    /// Whether that database file still exists; a folder whose database is gone is an orphan.
    /// A PostgreSQL database is taken to exist (looking would need a connection to its server,
    /// with credentials dbtool does not keep): its folder is never an orphan.
    pub database_exists: bool,
    /// The engine of the newest readable backup (absent: SQLite).
    #[serde(skip_serializing_if = "super::format::Engine::is_sqlite")]
    pub engine: super::format::Engine,
    pub backups: usize,
    pub size: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest: Option<OffsetDateTime>,
}

impl FolderSummary {
    pub fn orphan(&self) -> bool {
        self.database.is_some() && !self.database_exists
    }
}

/// Every backup folder under `root`, sorted by path. Folders holding no backup are skipped.
pub fn folders(root: &Path) -> Result<Vec<FolderSummary>, BackupError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BackupError::BackupDir {
                path: root.into(),
                source: e,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let backups = list(&path)?;
        if backups.is_empty() {
            continue;
        }
        let newest = backups.iter().find_map(|b| b.meta.as_ref());
        let database = newest.map(|m| PathBuf::from(&m.source_path));
        let engine = newest.map(|m| m.engine).unwrap_or_default();
        out.push(FolderSummary {
            database_exists: engine == super::format::Engine::Postgres
                || database.as_deref().is_some_and(Path::exists),
            engine,
            database,
            size: backups.iter().map(|b| b.size).sum(),
            newest: newest.map(|m| m.created_at),
            backups: backups.len(),
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Delete every backup in `folder` and then the folder itself if nothing else is left in it
/// (`prune --orphans`). Returns the deleted backups.
pub fn remove_folder_backups(folder: &Path) -> Result<Vec<BackupEntry>, BackupError> {
    let backups = list(folder)?;
    for entry in &backups {
        fs::remove_file(&entry.path).map_err(|e| BackupError::Write {
            path: entry.path.clone(),
            doing: "deleting a backup of a database that no longer exists",
            source: e,
        })?;
    }
    let _ = cleanup_leftovers(folder);
    let _ = fs::remove_dir(folder);
    Ok(backups)
}

/// The data dir is only usable when the home folder it hangs off exists (service accounts often
/// have `/nonexistent` as home).
fn home_exists(data_dir: &Path) -> bool {
    directories::BaseDirs::new().is_some_and(|b| b.home_dir().is_dir()) && data_dir.is_absolute()
}

/// `<stem>-<first 8 hex of SHA-256(canonical path)>`: readable, and distinct for two databases
/// with the same file name.
fn database_key(canonical: &Path) -> String {
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    format!("{}-{}", db_stem(canonical), &format::hex(&digest)[..8])
}

/// The database's file name without its extension (`content.db` → `content`).
pub fn db_stem(db: &Path) -> String {
    db.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "database".into())
}

/// The database's absolute, symlink-free path; for a file that does not exist yet, its parent's.
pub fn canonical_db_path(db: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(db) {
        return p;
    }
    let absolute = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    }
}

/// Create `dir` (and missing parents) with mode 0700.
pub fn ensure_dir(dir: &Path) -> Result<(), BackupError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| BackupError::BackupDir {
        path: dir.into(),
        source: e,
    })?;
    if !dir.is_dir() {
        return Err(BackupError::BackupDir {
            path: dir.into(),
            source: io::Error::other("exists and is not a folder"),
        });
    }
    Ok(())
}

/// `<stem>-<yyyymmddThhmmssZ>-v<version>-<reason>`; `clash` > 1 adds `-<clash>`.
pub fn backup_file_name(
    stem: &str,
    created_at: OffsetDateTime,
    schema_version: Option<i64>,
    reason: &str,
    clash: u32,
) -> String {
    let t = created_at.to_offset(time::UtcOffset::UTC);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let clash = if clash > 1 {
        format!("-{clash}")
    } else {
        String::new()
    };
    format!(
        "{stem}-{stamp}-v{}-{}{clash}{BACKUP_SUFFIX}",
        schema_version.unwrap_or(0),
        slug(reason)
    )
}

/// Lowercase ASCII letters, digits and single dashes; "manual" when nothing is left.
pub fn slug(reason: &str) -> String {
    let mut out = String::new();
    for c in reason.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "manual".into()
    } else {
        out
    }
}

/// A temporary file owned by this process (named and created by [`crate::sidefiles`]), removed
/// on drop with any SQLite side files it grew, unless published.
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
    /// Holds the file's `flock`: it is in use, whatever its pid looks like from elsewhere.
    _owner: File,
}

impl TempFile {
    /// Create an empty 0600 file named `.dbtool-<kind>-<pid>-<n>.tmp` in `dir`.
    pub(crate) fn new_in(dir: &Path, kind: &str) -> Result<Self, BackupError> {
        let path = sidefiles::temp_path(dir, kind);
        let owner = sidefiles::create_temp(&path).map_err(|e| BackupError::Write {
            path: path.clone(),
            doing: "creating a temporary file",
            source: e,
        })?;
        Ok(Self {
            path,
            armed: true,
            _owner: owner,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn open_rw(&self) -> Result<File, BackupError> {
        sidefiles::open_nofollow(OpenOptions::new().read(true).write(true), &self.path).map_err(
            |e| BackupError::Write {
                path: self.path.clone(),
                doing: "opening a temporary file",
                source: e,
            },
        )
    }

    /// Stop owning the file (it was renamed or linked elsewhere and removed by the caller).
    pub(crate) fn disarm(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // SQLite leaves a `-wal` and `-shm` beside a WAL-mode copy even when it only read it.
            sidefiles::remove_with_side_files(&self.path);
        }
    }
}

/// Give a complete, fsynced temporary file its final name in `dir` without ever replacing an
/// existing file, then fsync the folder. `name_for(n)` gives the name to try the n-th time
/// (same-second clashes get `-2`, `-3`, …); `None` gives up.
pub(crate) fn publish(
    temp: TempFile,
    dir: &Path,
    name_for: impl Fn(u32) -> Option<String>,
) -> Result<PathBuf, BackupError> {
    let mut last = dir.to_path_buf();
    for clash in 1..1000 {
        let Some(name) = name_for(clash) else { break };
        let target = dir.join(name);
        last = target.clone();
        match fs::hard_link(temp.path(), &target) {
            Ok(()) => {
                // The final name now exists; the temporary one is removed by the drop.
                drop(temp);
                sync_dir(dir)?;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: fall back to rename after a check.
            Err(_) if !target.exists() => {
                let from = temp.disarm();
                fs::rename(&from, &target).map_err(|e| BackupError::Write {
                    path: target.clone(),
                    doing: "renaming the finished backup into place",
                    source: e,
                })?;
                sync_dir(dir)?;
                return Ok(target);
            }
            Err(_) => continue,
        }
    }
    Err(BackupError::Write {
        path: last,
        doing: "choosing a file name",
        source: io::Error::new(io::ErrorKind::AlreadyExists, "a file with that name exists"),
    })
}

/// Flush `file` to disk every this many written bytes (see [`with_background_sync`]).
const SYNC_EVERY: u64 = 32 << 20;

/// A writer for `file` that asks a helper thread to flush the file to disk every
/// [`SYNC_EVERY`] bytes.
pub(crate) struct SyncingWriter<'a> {
    file: &'a File,
    written: u64,
    next_sync: u64,
    tx: std::sync::mpsc::Sender<()>,
}

impl io::Write for SyncingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.file, buf)?;
        self.written += n as u64;
        if self.written >= self.next_sync {
            let _ = self.tx.send(());
            self.next_sync = self.written + SYNC_EVERY;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.file)
    }
}

/// Run `work` with a [`SyncingWriter`] on `file` whose periodic flushes happen on a helper
/// thread: the disk works while the CPU compresses, so the caller's final fsync (which it still
/// owes, and whose error is the one that counts) has little left to do.
pub(crate) fn with_background_sync<T>(file: &File, work: impl FnOnce(SyncingWriter<'_>) -> T) -> T {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        scope.spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {} // coalesce requests that queued up
                let _ = file.sync_data();
            }
        });
        work(SyncingWriter {
            file,
            written: 0,
            next_sync: SYNC_EVERY,
            tx,
        })
        // The writer (and its sender) is gone once `work` returns, which ends the helper.
    })
}

/// Make a rename or link in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| BackupError::Write {
                path: dir.into(),
                doing: "syncing the folder",
                source: e,
            })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Remove temporary files left in `dir` by crashed dbtool processes (see
/// [`sidefiles::leftovers`]). Returns what was removed.
pub fn cleanup_leftovers(dir: &Path) -> Vec<PathBuf> {
    sidefiles::remove_leftovers(dir)
}

/// One backup file as listed: its metadata is read from the header, nothing is decompressed.
#[derive(Clone, Debug, Serialize)]
pub struct BackupEntry {
    pub path: PathBuf,
    pub file_name: String,
    /// Size of the `.db.zst` file in bytes.
    pub size: u64,
    /// `image_size / size`, e.g. 4.2 for a file 4.2 times smaller than the database.
    pub ratio: Option<f64>,
    pub meta: Option<BackupMeta>,
    /// Why the header could not be read (the file is then listed but never chosen or pruned).
    pub problem: Option<String>,
}

/// Read the header of one backup file.
pub fn read_entry(path: &Path) -> Result<BackupEntry, BackupError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BackupError::BackupMissing { path: path.into() },
        _ => BackupError::Read {
            path: path.into(),
            doing: "opening the backup",
            source: e,
        },
    })?;
    let size = file
        .metadata()
        .map_err(|e| BackupError::Read {
            path: path.into(),
            doing: "reading the backup's size",
            source: e,
        })?
        .len();
    let mut reader = io::BufReader::with_capacity(4096, file);
    let (meta, _) = format::read_header(path, &mut reader)?;
    Ok(BackupEntry {
        path: path.into(),
        file_name: file_name(path),
        size,
        ratio: (size > 0).then(|| meta.image_size as f64 / size as f64),
        meta: Some(meta),
        problem: None,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every backup in `dir`, newest first; unreadable ones last, with their problem. A missing
/// folder lists as empty. Temporary files are never listed.
pub fn list(dir: &Path) -> Result<Vec<BackupEntry>, BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BackupError::BackupDir {
                path: dir.into(),
                source: e,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::BackupDir {
            path: dir.into(),
            source: e,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(BACKUP_SUFFIX) {
            continue;
        }
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        out.push(read_entry(&path).unwrap_or_else(|e| BackupEntry {
            size: fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            path,
            file_name: name,
            ratio: None,
            meta: None,
            problem: Some(e.to_string()),
        }));
    }
    out.sort_by(|a, b| match (&a.meta, &b.meta) {
        (Some(x), Some(y)) => y
            .created_at
            .cmp(&x.created_at)
            .then_with(|| b.file_name.cmp(&a.file_name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => b.file_name.cmp(&a.file_name),
    });
    Ok(out)
}

/// How many backups to keep. A backup is kept when any rule keeps it; the newest always is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// Keep the newest N.
    pub keep: Option<usize>,
    /// Keep everything younger than D days.
    pub keep_days: Option<u32>,
}

/// What [`prune`] did.
#[derive(Clone, Debug, Serialize)]
pub struct PruneReport {
    pub dir: PathBuf,
    pub retention: Retention,
    pub kept: Vec<BackupEntry>,
    pub deleted: Vec<BackupEntry>,
}

/// Delete the backups of `source_path` in `dir` that `retention` does not keep. Backups of other
/// databases and unreadable files are left alone.
pub fn prune(
    dir: &Path,
    source_path: &Path,
    retention: Retention,
    now: OffsetDateTime,
) -> Result<PruneReport, BackupError> {
    let report = prune_plan(dir, source_path, retention, now)?;
    for entry in &report.deleted {
        fs::remove_file(&entry.path).map_err(|e| BackupError::Write {
            path: entry.path.clone(),
            doing: "deleting an old backup",
            source: e,
        })?;
    }
    if !report.deleted.is_empty() {
        sync_dir(dir)?;
    }
    Ok(report)
}

/// What [`prune`] would delete and keep, deleting nothing (`prune --dry-run`).
pub fn prune_plan(
    dir: &Path,
    source_path: &Path,
    retention: Retention,
    now: OffsetDateTime,
) -> Result<PruneReport, BackupError> {
    let source = source_path.to_string_lossy();
    let mine: Vec<BackupEntry> = list(dir)?
        .into_iter()
        .filter(|e| e.meta.as_ref().is_some_and(|m| m.source_path == source))
        .collect();
    let cutoff = retention
        .keep_days
        .map(|d| now - TimeDuration::days(i64::from(d)));
    let (mut kept, mut deleted) = (Vec::new(), Vec::new());
    for (i, entry) in mine.into_iter().enumerate() {
        let created = entry.meta.as_ref().map(|m| m.created_at);
        let keep = i == 0
            || retention.keep.is_some_and(|n| i < n)
            || cutoff.is_some_and(|c| created.is_some_and(|t| t > c))
            || (retention.keep.is_none() && retention.keep_days.is_none());
        if keep {
            kept.push(entry);
        } else {
            deleted.push(entry);
        }
    }
    Ok(PruneReport {
        dir: dir.into(),
        retention,
        kept,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn names_sort_and_slug() {
        let n = backup_file_name(
            "content",
            datetime!(2025-03-04 05:06:07 +02:00),
            Some(12),
            "Before: reset!",
            1,
        );
        assert_eq!(n, "content-20250304T030607Z-v12-before-reset.db.zst");
        let n = backup_file_name("content", datetime!(2025-03-04 05:06:07 UTC), None, "", 3);
        assert_eq!(n, "content-20250304T050607Z-v0-manual-3.db.zst");
        assert_eq!(slug("--Upgrade to 5--"), "upgrade-to-5");
    }

    #[test]
    fn same_database_name_in_two_folders_gets_two_keys() {
        let a = database_key(Path::new("/srv/a/content.db"));
        let b = database_key(Path::new("/srv/b/content.db"));
        assert!(a.starts_with("content-") && b.starts_with("content-"));
        assert_ne!(a, b);
    }

    #[test]
    fn explicit_dir_wins() {
        let d = resolve_dir(Path::new("content.db"), Some(Path::new("/backups")));
        assert_eq!(d.path, Path::new("/backups"));
        assert_eq!(d.origin, BackupDirOrigin::Explicit);
    }
}
