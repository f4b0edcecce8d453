//! Verified zstd backups of a live SQLite database: take, list, verify, restore, prune.
//!
//! The pieces: [`snapshot`] reads a consistent image while others write; [`format`](mod@format)
//! is the file layout (metadata frame + zstd payload, so `zstd -d` gives a plain SQLite file);
//! [`store`] owns folders, names, crash-safe publication and retention. This file ties them into
//! operations; [`crate::sidefiles`] names and creates the temporary files.
//!
//! Invariants:
//! - The library never prints and never reads the clock: callers pass `now` and get reports.
//! - A backup is complete under its final name or absent; with `verify` its stream was checked as
//!   it was written and the file read back matches it (`stream_check`) before the report says
//!   it exists.
//! - A restore verifies the backup fully (zstd checksum, content hash, `quick_check` or
//!   `integrity_check`) into a temporary file before touching the database (the safety backup is
//!   taken while the check runs), then renames it over the database when no other process has it
//!   open ([`swap`]), else replaces the content in one SQLite transaction (backup API into the
//!   live file): no reader ever sees a half-restored database and a stale `-wal` cannot resurrect
//!   old pages.

pub mod error;
pub mod format;
pub mod pg_archive;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod snapshot;
pub mod store;
pub(crate) mod stream_check;
pub mod swap;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use error::BackupError;
pub use format::{BackupMeta, Engine, PgMeta, SnapshotMethod, FORMAT_VERSION};
pub use snapshot::{MethodChoice, Snapshot, SnapshotInfo};
pub use store::{
    backup_file_name, canonical_db_path, cleanup_leftovers, data_root, folders, list,
    postgres_source, prune, prune_plan, read_entry, remove_folder_backups, resolve_dir,
    resolve_pg_dir, BackupDir, BackupDirOrigin, BackupEntry, FolderSummary, PruneReport, Retention,
};
pub use swap::ReplacedBy;

use crate::db::DbError;
use crate::sidefiles;
use error::classify;
use store::TempFile;

/// Default zstd level.
pub const DEFAULT_LEVEL: i32 = 3;

/// A step of a long operation, for progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reading the database and compressing it (bytes of the database image).
    Backup,
    /// Reading a finished backup back and checking it (bytes of the database image).
    ReadBack,
    /// Decompressing a backup into a temporary file (bytes of the database image).
    Decompress,
    /// `PRAGMA integrity_check` on the decompressed copy (no byte counts).
    IntegrityCheck,
    /// Replacing the live database's content (no byte counts).
    Replace,
}

/// Progress report: `done` of `total` bytes in `phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// Report progress at most once per this many bytes.
const PROGRESS_STEP: u64 = 4 << 20;

/// How to take a backup.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Backup folder (resolved with [`resolve_dir`]); created 0700 when missing.
    pub dir: PathBuf,
    /// Write exactly this file instead of a generated name in `dir` (refuses to overwrite).
    pub output: Option<PathBuf>,
    /// Why the backup is taken ("manual", "before-upgrade", …); goes into the name and metadata.
    pub reason: String,
    /// zstd level (1..=19 sensible; default 3).
    pub level: i32,
    /// zstd worker threads; 0 compresses on the calling thread.
    pub threads: u32,
    pub method: MethodChoice,
    pub busy_timeout: Duration,
    /// Read the finished file back (decompress, zstd checksum) before reporting success.
    pub verify: bool,
    /// The time to stamp the backup with (only `main` reads the clock).
    pub now: OffsetDateTime,
}

impl CreateOptions {
    /// Defaults: level 3, one zstd worker per core, method auto, 5 s busy timeout, verify on.
    pub fn new(dir: impl Into<PathBuf>, reason: impl Into<String>, now: OffsetDateTime) -> Self {
        Self {
            dir: dir.into(),
            output: None,
            reason: reason.into(),
            level: DEFAULT_LEVEL,
            threads: default_threads(),
            method: MethodChoice::Auto,
            busy_timeout: Duration::from_secs(5),
            verify: true,
            now,
        }
    }
}

/// One zstd worker per available core (multithreaded zstd keeps the reading thread free).
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// What [`create`] did.
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub database: PathBuf,
    pub size: u64,
    pub ratio: f64,
    pub verified: bool,
    pub meta: BackupMeta,
    /// Temporary files of crashed runs that were cleaned up on the way.
    pub leftovers_removed: Vec<PathBuf>,
}

/// Take a backup of `db`: snapshot, compress into a temporary file, read it back, publish.
pub fn create(
    db: &Path,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupReport, BackupError> {
    snapshot::check_database_path(db)?;
    let (dir, fixed_name) = output_location(opts)?;
    let dir_existed = dir.exists();
    store::ensure_dir(&dir)?;
    let leftovers_removed = cleanup_leftovers(&dir);

    let mut snap = match Snapshot::begin(db, opts.method, opts.busy_timeout, &dir) {
        Ok(snap) => snap,
        Err(e) => {
            // A file that turns out not to be a database (or cannot be read) leaves no empty
            // backup folder behind (`remove_dir` only removes an empty one).
            if !dir_existed {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e);
        }
    };
    let info = snap.info().clone();
    let source_path = canonical_db_path(db);
    let mut meta = BackupMeta {
        format_version: format::FORMAT_VERSION,
        dbtool_version: env!("CARGO_PKG_VERSION").into(),
        source_path: source_path.to_string_lossy().into_owned(),
        host: hostname(),
        created_at: opts.now,
        reason: opts.reason.clone(),
        schema_version: info.schema_version,
        page_size: info.page_size,
        page_count: info.page_count,
        image_size: info.image_size(),
        sha256: None,
        xxh3_128: None,
        zstd_level: opts.level,
        snapshot_method: info.method,
        engine: Engine::Sqlite,
        postgres: None,
    }
    .with_placeholder_hash();

    let temp = TempFile::new_in(&dir, "backup")?;
    let file = temp.open_rw()?;
    let written = compress(
        &mut |sink| snap.stream(sink).map(drop),
        &file,
        temp.path(),
        opts,
        &mut meta,
        progress,
    )?;
    drop(snap); // ends the read transaction, or removes the temporary copy
    seal_and_publish(
        Sealing {
            temp,
            file,
            written,
            meta,
            dir,
            fixed_name,
            stem: store::db_stem(db),
            database: source_path,
            leftovers_removed,
        },
        opts,
        progress,
    )
}

/// The folder to write into, and the fixed file name when `--output` was given.
fn output_location(opts: &CreateOptions) -> Result<(PathBuf, Option<String>), BackupError> {
    let Some(out) = &opts.output else {
        return Ok((opts.dir.clone(), None));
    };
    let name = out.file_name().ok_or_else(|| BackupError::Write {
        path: out.clone(),
        doing: "choosing the output file",
        source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
    })?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((
        parent.unwrap_or(Path::new(".")).to_path_buf(),
        Some(name.to_string_lossy().into_owned()),
    ))
}

/// What [`compress`] wrote.
pub(crate) struct Written {
    /// The file's size.
    size: u64,
    /// With `verify`: the length and XXH3-128 of the compressed stream after the metadata, which
    /// a second thread decoded and checked as it was written.
    verified: Option<(u64, u128)>,
}

/// A written backup on its way to its final name (see [`seal_and_publish`]).
pub(crate) struct Sealing {
    pub temp: store::TempFile,
    pub file: File,
    pub written: Written,
    pub meta: BackupMeta,
    pub dir: PathBuf,
    /// `--output`'s file name: never renamed and never overwritten.
    pub fixed_name: Option<String>,
    /// The name stem of generated names (`<stem>-<time>-v<version>-<reason>.db.zst`).
    pub stem: String,
    pub database: PathBuf,
    pub leftovers_removed: Vec<PathBuf>,
}

/// The end of every backup, SQLite's and PostgreSQL's: fsync (waiting on the disk) and the
/// read-back of the file (matched against the stream that was verified while it was written)
/// overlap; both finish before the file gets its final name.
pub(crate) fn seal_and_publish(
    sealing: Sealing,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupReport, BackupError> {
    let Sealing {
        temp,
        file,
        written,
        meta,
        dir,
        fixed_name,
        stem,
        database,
        leftovers_removed,
    } = sealing;
    let (synced, checked) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| file.sync_all());
        let checked = written.verified.map(|(len, digest)| {
            let total = meta.image_size;
            progress(Progress {
                phase: Phase::ReadBack,
                done: 0,
                total,
            });
            stream_check::check_file(temp.path(), &meta, len, digest)?;
            progress(Progress {
                phase: Phase::ReadBack,
                done: total,
                total,
            });
            Ok::<_, BackupError>(())
        });
        (sync.join().expect("fsync thread panicked"), checked)
    });
    synced.map_err(|e| BackupError::Write {
        path: temp.path().into(),
        doing: "syncing the backup to disk",
        source: e,
    })?;
    drop(file);
    checked.transpose()?;

    let path = store::publish(temp, &dir, |clash| match &fixed_name {
        Some(name) => (clash == 1).then(|| name.clone()),
        None => Some(backup_file_name(
            &stem,
            opts.now,
            meta.schema_version,
            &opts.reason,
            clash,
        )),
    })?;
    Ok(BackupReport {
        path,
        database,
        size: written.size,
        ratio: meta.image_size as f64 / written.size.max(1) as f64,
        verified: opts.verify,
        meta,
        leftovers_removed,
    })
}

/// The bytes to back up, handed to the sink chunk by chunk (a snapshot's pages, `pg_dump`'s
/// output).
pub(crate) type Source<'s> =
    dyn FnMut(&mut dyn FnMut(&[u8]) -> Result<(), BackupError>) -> Result<(), BackupError> + 's;

/// Write the metadata frame and the compressed image from `source` into `file`, hashing the
/// image on the way (XXH3-128, the content hash); then rewrite the metadata in place with the
/// hash. With `opts.verify`, the stream is checked on the way ([`stream_check`]).
/// `meta.image_size` is the image's size when it is known beforehand (a SQLite snapshot); when
/// it is 0 (`pg_dump`'s output) no size is promised to zstd and the metadata gets the size that
/// was streamed.
fn compress(
    source: &mut Source<'_>,
    file: &File,
    path: &Path,
    opts: &CreateOptions,
    meta: &mut BackupMeta,
    progress: &mut dyn FnMut(Progress),
) -> Result<Written, BackupError> {
    let write_err = |doing: &'static str| {
        move |e: io::Error| BackupError::Write {
            path: path.into(),
            doing,
            source: e,
        }
    };
    let known_size = meta.image_size > 0 || meta.engine == Engine::Sqlite;
    let total = meta.image_size;
    if !known_size {
        // Room in the reserved frame for any final size.
        meta.image_size = u64::MAX;
    }
    let header = format::encode_header(meta, None).map_err(write_err("writing the metadata"))?;
    let mut out = file;
    out.write_all(&header)
        .map_err(write_err("writing the metadata"))?;

    let (xxh3, verified, done) = store::with_background_sync(file, |writer| {
        {
            let tee = stream_check::Tee {
                inner: BufWriter::with_capacity(1 << 20, writer),
                digest: xxhash_rust::xxh3::Xxh3::new(),
                len: 0,
                frame: stream_check::FrameCheck::default(),
            };
            let mut enc = zstd::stream::write::Encoder::new(tee, opts.level)
                .map_err(write_err("starting zstd"))?;
            let setup = |enc: &mut zstd::stream::write::Encoder<'_, _>| -> io::Result<()> {
                enc.include_checksum(true)?;
                enc.include_contentsize(known_size)?;
                if known_size {
                    enc.set_pledged_src_size(Some(total))?;
                }
                if opts.threads > 0 {
                    enc.multithread(opts.threads)?;
                }
                Ok(())
            };
            setup(&mut enc).map_err(write_err("configuring zstd"))?;

            let mut xxh3 = xxhash_rust::xxh3::Xxh3::new();
            // What zstd's content checksum must be (see stream_check).
            let mut xxh64 = xxhash_rust::xxh64::Xxh64::new(0);
            let mut done = 0u64;
            let mut next_report = 0u64;
            let compress_err = write_err("writing the compressed database");
            source(&mut |chunk| {
                xxh3.update(chunk);
                if opts.verify {
                    xxh64.update(chunk);
                }
                enc.write_all(chunk).map_err(&compress_err)?;
                done += chunk.len() as u64;
                if done >= next_report {
                    progress(Progress {
                        phase: Phase::Backup,
                        done,
                        total: total.max(done),
                    });
                    next_report = done + PROGRESS_STEP;
                }
                Ok(())
            })?;
            let tee = enc
                .finish()
                .map_err(write_err("finishing the zstd frame"))?;
            let stream = (tee.len, tee.digest.digest128());
            if opts.verify {
                tee.frame.finish(done, known_size, xxh64.digest(), path)?;
            }
            tee.inner
                .into_inner()
                .map_err(|e| e.into_error())
                .map_err(write_err("writing the compressed database"))?;
            progress(Progress {
                phase: Phase::Backup,
                done,
                total: done,
            });
            Ok::<_, BackupError>((xxh3, opts.verify.then_some(stream), done))
        }
    })?;

    if known_size && done != total {
        return Err(BackupError::SnapshotInconsistent {
            path: path.into(),
            detail: format!("{done} bytes were read, {total} expected"),
        });
    }
    meta.image_size = done;
    meta.xxh3_128 = Some(format!("{:032x}", xxh3.digest128()));
    let final_header = format::encode_header(meta, Some(header.len()))
        .map_err(write_err("writing the metadata"))?;
    out.seek(SeekFrom::Start(0))
        .and_then(|_| out.write_all(&final_header))
        .map_err(write_err("writing the metadata"))?;
    let size = file
        .metadata()
        .map_err(write_err("reading the backup's size"))?
        .len();
    Ok(Written { size, verified })
}

/// Which recorded content hashes [`read_payload`] recomputes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// The XXH3-128 when the backup records one (restore), else the SHA-256 (format 1).
    Check,
    /// Every hash the backup records (`backups verify`).
    All,
    /// None: only when the zstd checksum already ties the data to the hashed bytes.
    Skip,
}

/// Decompress the backup at `path`, handing the database image to `sink` chunk by chunk, and
/// check everything a backup promises: metadata, zstd frame checksum, no trailing bytes, image
/// size, SQLite header, content hashes (see [`enum@Hash`]). Returns the metadata.
pub fn read_payload(
    path: &Path,
    phase: Phase,
    hash: Hash,
    progress: &mut dyn FnMut(Progress),
    sink: &mut (dyn FnMut(&[u8]) -> Result<(), BackupError> + Send),
) -> Result<BackupMeta, BackupError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BackupError::BackupMissing { path: path.into() },
        _ => BackupError::Read {
            path: path.into(),
            doing: "opening the backup",
            source: e,
        },
    })?;
    let mut reader = BufReader::with_capacity(1 << 17, file);
    let (meta, frame_start) = format::read_header(path, &mut reader)?;
    let corrupt = |detail: &str, source: Option<io::Error>| BackupError::Corrupt {
        path: path.into(),
        detail: detail.into(),
        source,
    };
    let input = BufReader::with_capacity(1 << 17, io::Cursor::new(frame_start).chain(reader));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| corrupt("zstd could not start", Some(e)))?
        .single_frame();
    let total = meta.image_size;
    let magic = meta.engine.payload_magic();
    let engine = meta.engine;
    let not_payload = || match engine {
        Engine::Sqlite => BackupError::PayloadNotSqlite { path: path.into() },
        Engine::Postgres => BackupError::PayloadNotPgArchive { path: path.into() },
    };
    let fast = hash != Hash::Skip && meta.xxh3_128.is_some();
    let slow = meta.sha256.is_some()
        && (hash == Hash::All || (hash == Hash::Check && meta.xxh3_128.is_none()));
    // Decoding runs on this thread; hashing and handing the image to `sink` (a file write, for
    // a restore) on a second one, on the buffers the decoder has filled: the two overlap, and at
    // most a few 1 MiB buffers are in flight.
    let (sha, xxh3) = std::thread::scope(|scope| -> Result<_, BackupError> {
        let (to_consumer, rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(2);
        let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let consumer = scope.spawn(move || {
            let mut sha = slow.then(Sha256::new);
            let mut xxh3 = fast.then(xxhash_rust::xxh3::Xxh3::new);
            for (buf, n) in rx {
                let chunk = &buf[..n];
                if let Some(h) = &mut sha {
                    h.update(chunk);
                }
                if let Some(h) = &mut xxh3 {
                    h.update(chunk);
                }
                // On error, stop: the decoder's next send fails and it ends.
                sink(chunk)?;
                let _ = free_tx.send(buf);
            }
            Ok::<_, BackupError>((
                sha.map(|h| format::hex(&h.finalize())),
                xxh3.map(|h| format!("{:032x}", h.digest128())),
            ))
        });
        let decoded = (|| {
            let mut done = 0u64;
            let mut next_report = 0u64;
            loop {
                let mut buf = free_rx.try_recv().unwrap_or_else(|_| vec![0u8; 1 << 20]);
                let n = match decoder.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(corrupt("the file is truncated", Some(e)))
                    }
                    Err(e) => return Err(corrupt("the compressed data does not decode", Some(e))),
                };
                let chunk = &buf[..n];
                if done < magic.len() as u64 {
                    let upto = (magic.len() - done as usize).min(n);
                    if chunk[..upto] != magic[done as usize..done as usize + upto] {
                        return Err(not_payload());
                    }
                }
                done += n as u64;
                if done > total {
                    return Err(corrupt(
                        "the payload is larger than its metadata says",
                        None,
                    ));
                }
                if to_consumer.send((buf, n)).is_err() {
                    // The consumer stopped on an error, reported when it is joined.
                    return Ok(());
                }
                if done >= next_report {
                    progress(Progress { phase, done, total });
                    next_report = done + PROGRESS_STEP;
                }
            }
            progress(Progress { phase, done, total });
            let mut rest = decoder.finish();
            let mut probe = [0u8; 1];
            match rest.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => return Err(corrupt("there are bytes after the payload frame", None)),
                Err(e) => return Err(corrupt("the file cannot be read to its end", Some(e))),
            }
            // An empty image is a valid (empty) database: SQLite treats a 0-byte file as one.
            if total > 0 && done < magic.len() as u64 {
                return Err(not_payload());
            }
            if done != total {
                return Err(corrupt(
                    &format!("the payload holds {done} bytes, its metadata says {total}"),
                    None,
                ));
            }
            Ok(())
        })();
        drop(to_consumer);
        let consumed = consumer.join().expect("consumer thread panicked");
        decoded?;
        consumed
    })?;
    let recomputed = [
        ("SHA-256", sha, meta.sha256.clone()),
        ("XXH3-128", xxh3, meta.xxh3_128.clone()),
    ];
    for (algorithm, actual, expected) in recomputed {
        if let (Some(actual), Some(expected)) = (actual, expected) {
            if actual != expected {
                return Err(BackupError::HashMismatch {
                    path: path.into(),
                    algorithm,
                    expected,
                    actual,
                });
            }
        }
    }
    Ok(meta)
}

/// How thoroughly to check a decompressed database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckLevel {
    /// `PRAGMA integrity_check`: b-trees, free list and every index against its table.
    #[default]
    Full,
    /// `PRAGMA quick_check`: like `integrity_check` without the index-content comparison.
    Quick,
}

/// What [`verify`] found (a failed check is an error instead).
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub path: PathBuf,
    pub meta: BackupMeta,
    pub check: CheckLevel,
    /// A PostgreSQL backup: what `pg_restore` read in its archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<pg_archive::ArchiveContents>,
}

/// Decompress `backup` into a temporary file in `scratch`, check the frame checksum and every
/// recorded content hash, then run the integrity check on the copy. The temporary file is
/// removed afterwards. A PostgreSQL backup is read in full by `pg_restore` instead
/// ([`pg_archive::check_archive`]).
pub fn verify(
    backup: &Path,
    scratch: &Path,
    check: CheckLevel,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport, BackupError> {
    let entry = read_entry(backup)?;
    if entry.meta.is_some_and(|m| m.engine == Engine::Postgres) {
        let (meta, contents) = pg_archive::check_archive(backup, Hash::All, progress)?;
        return Ok(VerifyReport {
            path: backup.into(),
            meta,
            check,
            archive: Some(contents),
        });
    }
    let temp = TempFile::new_in(scratch, "verify")?;
    let meta = decompress_to(backup, &temp, false, Hash::All, progress)?;
    check_database(backup, temp.path(), check, progress)?;
    Ok(VerifyReport {
        path: backup.into(),
        meta,
        check,
        archive: None,
    })
}

fn decompress_to(
    backup: &Path,
    temp: &TempFile,
    durable: bool,
    hash: Hash,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupMeta, BackupError> {
    let file = temp.open_rw()?;
    let write_err = |e| BackupError::Write {
        path: temp.path().into(),
        doing: "writing the decompressed database",
        source: e,
    };
    let mut write = |out: &mut (dyn Write + Send)| {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let meta = read_payload(backup, Phase::Decompress, hash, progress, &mut |chunk| {
            out.write_all(chunk).map_err(write_err)
        })?;
        out.flush().map_err(write_err)?;
        Ok(meta)
    };
    if durable {
        // The copy will become the database file itself: flush it to disk as it is written
        // (the caller still owes the final fsync, and may overlap it with the check).
        store::with_background_sync(&file, |mut w| write(&mut w))
    } else {
        write(&mut &file)
    }
}

/// Run the integrity check on a decompressed copy; `backup` names the file in errors.
fn check_database(
    backup: &Path,
    copy: &Path,
    check: CheckLevel,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    progress(Progress {
        phase: Phase::IntegrityCheck,
        done: 0,
        total: 0,
    });
    // `immutable`: the copy is private and complete, so SQLite takes no locks and creates no
    // `-wal`/`-shm` beside it (which would then have to be cleaned up before it is renamed).
    let conn = Connection::open_with_flags(
        immutable_uri(copy),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| BackupError::Db(DbError::sqlite("opening the decompressed copy", backup, e)))?;
    let pragma = match check {
        CheckLevel::Full => "PRAGMA integrity_check(20)",
        CheckLevel::Quick => "PRAGMA quick_check(20)",
    };
    let problems: Vec<String> = conn
        .prepare(pragma)
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => BackupError::PayloadNotSqlite {
                path: backup.into(),
            },
            _ => BackupError::IntegrityFailed {
                path: backup.into(),
                problems: vec![e.to_string()],
            },
        })?;
    if problems != ["ok"] {
        return Err(BackupError::IntegrityFailed {
            path: backup.into(),
            problems,
        });
    }
    progress(Progress {
        phase: Phase::IntegrityCheck,
        done: 1,
        total: 1,
    });
    Ok(())
}

/// `file:` URI of `path` opened read-only and `immutable` (percent-encoded: any byte a path may hold).
fn immutable_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for &b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// How to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Restore even if the backup was taken from another database path.
    pub force: bool,
    /// Take this backup of the current database first (`None`: skip, as with `--no-backup`).
    pub safety_backup: Option<CreateOptions>,
    pub check: CheckLevel,
    pub busy_timeout: Duration,
}

/// What [`restore`] did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub backup: PathBuf,
    pub meta: BackupMeta,
    /// The backup of the database as it was just before, when one was taken.
    pub safety_backup: Option<BackupReport>,
    /// False when the database did not exist and the restored file was simply put in place.
    pub replaced_existing: bool,
    /// How an existing database was replaced (`None` when there was none).
    pub replacement: Option<ReplacedBy>,
    /// True when the backup came from another path and `force` allowed it.
    pub forced_other_database: bool,
}

/// Restore `backup` over `db`: verify fully into a temporary file beside `db`, take the safety
/// backup, then replace the content atomically. On any error `db` is unchanged.
pub fn restore(
    db: &Path,
    backup: &Path,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    let entry = read_entry(backup)?;
    let meta = entry.meta.expect("read_entry returns metadata");
    let target = canonical_db_path(db);
    if meta.engine != Engine::Sqlite {
        return Err(BackupError::OtherEngine {
            backup: backup.into(),
            backup_engine: meta.engine.as_str(),
            target,
            target_engine: Engine::Sqlite.as_str(),
        });
    }
    let other_database = Path::new(&meta.source_path) != target;
    if other_database && !opts.force {
        return Err(BackupError::DifferentDatabase {
            backup: backup.into(),
            source_path: meta.source_path.clone(),
            target,
        });
    }
    let exists = db_exists(db)?;
    let folder = target.parent().unwrap_or(Path::new(".")).to_path_buf();
    cleanup_leftovers(&folder);

    let temp = TempFile::new_in(&folder, "restore")?;
    // The verified copy usually becomes the database file (renamed over it, or put in place of a
    // missing one): it is flushed to disk as it is written.
    let checked = decompress_to(backup, &temp, true, Hash::Check, progress)?;
    // The integrity check (one core) runs while the safety backup (zstd on the others) is taken;
    // a backup that fails the check is reported as such, and the safety backup taken meanwhile
    // is simply one more backup of the unchanged database.
    progress(Progress {
        phase: Phase::IntegrityCheck,
        done: 0,
        total: 0,
    });
    let (checked_ok, safety_backup) = std::thread::scope(|scope| {
        // The last fsync of the copy runs meanwhile too (it waits on the disk, not the CPU).
        let synced = scope.spawn(|| {
            File::open(temp.path())
                .and_then(|f| f.sync_all())
                .map_err(|e| BackupError::Write {
                    path: temp.path().into(),
                    doing: "syncing the decompressed database",
                    source: e,
                })
        });
        let check = scope.spawn(|| {
            check_database(backup, temp.path(), opts.check, &mut |_| {})?;
            synced.join().expect("fsync thread panicked")
        });
        let safety = match (&opts.safety_backup, exists) {
            (Some(create_opts), true) => Some(create(db, create_opts, progress)),
            _ => None,
        };
        (
            check.join().expect("integrity check thread panicked"),
            safety,
        )
    });
    checked_ok?;
    let safety_backup = safety_backup.transpose()?;

    progress(Progress {
        phase: Phase::Replace,
        done: 0,
        total: 1,
    });
    let replacement = if exists {
        Some(replace(db, temp.path(), opts.busy_timeout)?)
    } else {
        put_in_place(db, temp)?;
        None
    };
    progress(Progress {
        phase: Phase::Replace,
        done: 1,
        total: 1,
    });
    Ok(RestoreReport {
        database: target,
        backup: backup.into(),
        meta: checked,
        safety_backup,
        replaced_existing: exists,
        replacement,
        forced_other_database: other_database,
    })
}

/// Put the verified `image` (beside `db`, synced) in place of the existing database `db`: renamed
/// over it when no other process has it open (nothing is written twice), else its content copied
/// in through SQLite in one transaction. The one place where a restore replaces a database.
fn replace(db: &Path, image: &Path, busy_timeout: Duration) -> Result<ReplacedBy, BackupError> {
    match swap::rename_if_unused(db, image)? {
        None => Ok(ReplacedBy::Rename),
        Some(reason) => {
            replace_content(db, image, busy_timeout)?;
            Ok(ReplacedBy::InPlace(reason))
        }
    }
}

/// Copy every page of `image` into the live database in one write transaction, through SQLite,
/// so concurrent readers see the old or the new database and never a mix, and whatever sits in a
/// `-wal` is superseded. Afterwards the WAL (if any) is checkpointed and truncated.
fn replace_content(db: &Path, image: &Path, busy_timeout: Duration) -> Result<(), BackupError> {
    let doing = "replacing the database content";
    let err = |e| classify(db, doing, e);
    let mut live = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    live.busy_timeout(busy_timeout).map_err(err)?;
    let src = Connection::open_with_flags(image, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| BackupError::Db(DbError::sqlite("opening the verified copy", image, e)))?;
    let live_mode: String = live
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(err)?;
    let live_page: u32 = live
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(err)?;
    let src_page: u32 = src
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(|e| BackupError::Db(DbError::sqlite("reading the verified copy", image, e)))?;
    if live_mode.eq_ignore_ascii_case("wal") && live_page != src_page {
        // The backup API cannot change the page size of a WAL database; leave WAL first.
        live.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
            .map_err(err)?;
    }
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut live).map_err(err)?;
        match backup.step(-1).map_err(err)? {
            rusqlite::backup::StepResult::Done => {}
            other => {
                return Err(error::classify(
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
    // Best effort: a reader still holding an old snapshot may keep the WAL from being truncated;
    // the content is already replaced either way.
    let _ = live.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(())
}

/// The database does not exist: remove orphaned `-wal`/`-shm`/`-journal` files (they belong to a
/// deleted database and SQLite would replay them onto the new file), then link the verified copy
/// into place without replacing anything that appeared meanwhile.
fn put_in_place(db: &Path, temp: TempFile) -> Result<(), BackupError> {
    for orphan in sidefiles::sqlite_side_files(db) {
        match fs::remove_file(&orphan) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(BackupError::Write {
                    path: orphan,
                    doing: "removing a stale file of the deleted database",
                    source: e,
                })
            }
        }
    }
    File::open(temp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| BackupError::Write {
            path: temp.path().into(),
            doing: "syncing the restored database",
            source: e,
        })?;
    let placed = match fs::hard_link(temp.path(), db) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // File systems without hard links: rename after a check (a copy could be cut short by
        // a crash and leave half a database under the final name).
        Err(_) if fs::symlink_metadata(db).is_err() => {
            fs::rename(temp.disarm(), db).map_err(|e| BackupError::Write {
                path: db.into(),
                doing: "putting the new database in place",
                source: e,
            })?;
            return store::sync_dir(sidefiles::folder_of(db));
        }
        Err(e) => Err(e),
    };
    placed.map_err(|e| BackupError::Write {
        path: db.into(),
        doing: "putting the new database in place",
        source: e,
    })?;
    drop(temp);
    store::sync_dir(sidefiles::folder_of(db))
}

/// A new database built in a temporary file beside `db`, then written into `db` in one SQLite
/// transaction: `reset`'s fail-closed replacement. Nothing touches `db` before
/// [`Replacement::commit`]; dropping the replacement (on any error) removes the temporary file.
///
/// The commit goes through SQLite, the way `restore` does, instead of renaming the new file over
/// the old one: the database keeps its inode, mode and owner; readers see the old database or
/// the new one; a crash at any point leaves one of the two whole (a rename needs the old `-wal`
/// removed first, and a crash in between lost every row that was only in it); and an
/// application that holds the file open sees the new content instead of writing on into a
/// deleted file. A new database is small, so writing it twice costs little.
pub struct Replacement {
    db: PathBuf,
    temp: TempFile,
    /// Temporary files of killed runs removed from the database's folder when this one began.
    pub leftovers_removed: Vec<PathBuf>,
}

impl Replacement {
    /// Create the (empty) temporary file in `db`'s folder, removing killed runs' leftovers there.
    pub fn begin(db: &Path) -> Result<Self, BackupError> {
        if db.is_dir() {
            return Err(folder_is_not_a_database(db));
        }
        let folder = sidefiles::folder_of(db);
        let leftovers_removed = cleanup_leftovers(folder);
        let temp = TempFile::new_in(folder, "reset")?;
        Ok(Self {
            db: db.into(),
            temp,
            leftovers_removed,
        })
    }

    /// Where to build the new database. Every connection to it must be closed before
    /// [`Replacement::commit`].
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Write the new database into `db` (or link it into place when `db` does not exist), then
    /// remove the temporary file.
    pub fn commit(self, busy_timeout: Duration) -> Result<(), BackupError> {
        for side in sidefiles::sqlite_side_files(self.temp.path()) {
            if fs::metadata(&side).is_ok_and(|m| m.len() > 0) {
                // The new database is not self-contained (an unclosed connection?): keep the old.
                return Err(BackupError::Write {
                    path: side,
                    doing:
                        "checking that the new database is complete before replacing the old one",
                    source: io::Error::other("the new database still has a non-empty side file"),
                });
            }
        }
        if db_exists(&self.db)? {
            replace_content(&self.db, self.temp.path(), busy_timeout)
        } else {
            put_in_place(&self.db, self.temp)
        }
    }
}

/// Whether `db` exists as a file (a folder is an error).
fn db_exists(db: &Path) -> Result<bool, BackupError> {
    match fs::metadata(db) {
        Ok(m) if m.is_dir() => Err(folder_is_not_a_database(db)),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BackupError::Read {
            path: db.into(),
            doing: "looking at the database file",
            source: e,
        }),
    }
}

/// The host name, for the metadata ("which machine took this?").
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests;

/// A folder given as the database: the db layer's `not-a-database`.
fn folder_is_not_a_database(db: &Path) -> BackupError {
    DbError::NotADatabase {
        path: db.into(),
        reason: "it is a folder".into(),
    }
    .into()
}
