//! PostgreSQL backups: `pg_dump`'s custom-format archive in dbtool's backup file, in the same
//! store, under the same names and with the same metadata frame as SQLite's.
//!
//! - **Take** ([`create`]): `pg_dump -Fc -Z0` (uncompressed: zstd compresses better and several
//!   times faster than pg_dump's zlib) streams through the same writer as a SQLite snapshot
//!   ([`super::compress`]): content hashes, zstd frame check as written, metadata rewritten in
//!   place. The metadata names the source without user or password, the server's and pg_dump's
//!   versions and the history's version; the archive is checked in full
//!   ([`check_archive`]) before the file gets its final name. A `pg_dump` older than the
//!   server is refused up front.
//! - **Restore** ([`restore`]): the backup is checked in full before anything happens on the
//!   server; the safety backup is taken; then the backup goes into a new database
//!   (`CREATE DATABASE … TEMPLATE template0`), is checked (rows per table, the history's version)
//!   and swapped in by renaming the two databases in one transaction when no other session uses
//!   the target; else `pg_restore --clean --if-exists --single-transaction` into the live
//!   database. Either way the target is whole at every moment: the renames commit together, the
//!   in-place restore is one transaction, and any failure before them drops only the new
//!   database.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use super::format::{self, BackupMeta, Engine, PgMeta, SnapshotMethod};
use super::pg_archive::{
    check_archive, drain, feed, major_version, spawn, tool, tool_failed, tool_version,
    ArchiveContents,
};
use super::store::{self, TempFile};
use super::{
    backup_file_name, cleanup_leftovers, compress, hostname, output_location, read_entry,
    read_payload, BackupError, BackupReport, CreateOptions, Hash, Phase, Progress, ReplacedBy,
};
use crate::db::pg::PgConn;
use crate::db::{quote_ident, PgUrl, HISTORY_TABLE};

/// The server's version and what the backup records about the database.
#[derive(Clone, Debug, Serialize)]
pub struct ServerInfo {
    /// `SHOW server_version` ("15.18 (Debian 15.18-0+deb12u1)").
    pub version: String,
    /// `server_version_num` (150018).
    pub version_num: u32,
    /// `max(version)` of the history table, `None` without one.
    pub schema_version: Option<i64>,
    /// `pg_database_size`, for progress (the archive is smaller: no indexes, no dead rows).
    pub size: u64,
}

/// Read what a backup needs to know from the server.
pub fn server_info(conn: &PgConn) -> Result<ServerInfo, BackupError> {
    let doing = "reading the server's version";
    let mut client = conn.client();
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), \
                    current_setting('server_version_num')::int, \
                    pg_database_size(current_database()), \
                    to_regclass($1) IS NOT NULL",
            &[&HISTORY_TABLE],
        )
        .map_err(|e| conn.error(&e, doing))?;
    let has_history: bool = row.get(3);
    let schema_version = if has_history {
        client
            .query_one(
                &format!(
                    "SELECT max(version)::bigint FROM {}",
                    quote_ident(HISTORY_TABLE)
                ),
                &[],
            )
            .map_err(|e| conn.error(&e, "reading the history"))?
            .get(0)
    } else {
        None
    };
    Ok(ServerInfo {
        version: row.get(0),
        version_num: row.get::<_, i32>(1) as u32,
        size: row.get::<_, i64>(2) as u64,
        schema_version,
    })
}

/// The major version of `server_version_num`: 150018 → (15, 0), 90624 → (9, 6).
fn server_major(num: u32) -> (u32, u32) {
    if num >= 100_000 {
        (num / 10_000, 0)
    } else {
        (num / 10_000, (num / 100) % 100)
    }
}

/// `pg_dump --lock-wait-timeout` gave up on a table lock: its `LOCK TABLE` was cancelled by the
/// statement timeout it sets for that step.
fn lock_wait_timed_out(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    text.contains("canceling statement due to statement timeout") && text.contains("LOCK TABLE")
}

/// Refuse a `pg_dump` older than the server (it cannot read a newer server's catalog; a newer
/// `pg_dump` dumps older servers fine).
fn check_pg_dump(pg_dump_version: &str, server: &ServerInfo) -> Result<(), BackupError> {
    let tool = major_version(pg_dump_version);
    if tool.is_none_or(|t| t < server_major(server.version_num)) {
        return Err(BackupError::PgDumpTooOld {
            tool: "pg_dump",
            tool_version: pg_dump_version.to_string(),
            server_version: server.version.clone(),
        });
    }
    Ok(())
}

/// Take a verified backup of the PostgreSQL database `url` names: `pg_dump -Fc -Z0` through
/// dbtool's zstd stream into a temporary file, checked with [`check_archive`] (unless
/// `opts.verify` is off), then published under the same kind of name as a SQLite backup.
pub fn create(
    url: &PgUrl,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupReport, BackupError> {
    let pg_dump_version = tool_version("pg_dump")?;
    if opts.verify {
        tool_version("pg_restore")?;
    }
    let conn = PgConn::connect(url)?;
    let server = server_info(&conn)?;
    drop(conn);
    check_pg_dump(&pg_dump_version, &server)?;

    let (dir, fixed_name) = output_location(opts)?;
    store::ensure_dir(&dir)?;
    let leftovers_removed = cleanup_leftovers(&dir);
    let source = store::postgres_source(url);
    let mut meta = BackupMeta {
        format_version: format::POSTGRES_FORMAT_VERSION,
        dbtool_version: env!("CARGO_PKG_VERSION").into(),
        source_path: source.clone(),
        host: hostname(),
        created_at: opts.now,
        reason: opts.reason.clone(),
        schema_version: server.schema_version,
        page_size: 0,
        page_count: 0,
        // Unknown until pg_dump is done (see `compress`).
        image_size: 0,
        sha256: String::new(),
        xxh3_128: None,
        zstd_level: opts.level,
        snapshot_method: SnapshotMethod::PgDump,
        engine: Engine::Postgres,
        postgres: Some(PgMeta {
            url: url.redacted(),
            database: url.dbname().to_string(),
            server_version: server.version.clone(),
            pg_dump_version: pg_dump_version.clone(),
        }),
    }
    .with_placeholder_hash();

    let temp = TempFile::new_in(&dir, "backup")?;
    let file = temp.open_rw()?;
    let mut child = spawn(
        tool("pg_dump", Some(url))
            .args(["--format=custom", "-Z0"])
            // Wait for table locks no longer than any other dbtool lock wait, so an application's
            // long transaction ends the backup (and the run it protects) with exit 4 instead of
            // hanging it. 0 would mean "forever" to pg_dump.
            .arg(format!(
                "--lock-wait-timeout={}",
                opts.busy_timeout.as_millis().max(1)
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "pg_dump",
    )?;
    let mut stdout = child.stdout.take().expect("piped");
    let estimate = server.size;
    let (written, stderr) = std::thread::scope(|scope| {
        let stderr = drain(scope, child.stderr.take());
        let mut buf = vec![0u8; 1 << 20];
        let written = compress(
            &mut |sink| loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(BackupError::Read {
                            path: PathBuf::from(&source),
                            doing: "reading pg_dump's output",
                            source: e,
                        })
                    }
                };
                sink(&buf[..n])?;
            },
            &file,
            temp.path(),
            opts,
            &mut meta,
            &mut |p| {
                progress(Progress {
                    total: p.total.max(estimate),
                    ..p
                })
            },
        );
        if written.is_err() {
            let _ = child.kill();
        }
        drop(stdout);
        (written, stderr.join().expect("stderr reader panicked"))
    });
    let status = child.wait().map_err(|e| BackupError::Read {
        path: PathBuf::from(&source),
        doing: "waiting for pg_dump",
        source: e,
    })?;
    // pg_dump's own failure explains a short stream best; a write error explains a kill.
    let written = match written {
        Ok(_) if !status.success() && lock_wait_timed_out(&stderr) => {
            return Err(BackupError::Db(crate::db::DbError::Locked {
                path: PathBuf::from(&source),
                waited_ms: opts.busy_timeout.as_millis() as u64,
            }));
        }
        Ok(w) if !status.success() => {
            let _ = w;
            return Err(tool_failed(
                "pg_dump",
                "dumping the database",
                status,
                &stderr,
            ));
        }
        Ok(w) => w,
        Err(e) => return Err(e),
    };
    let size = written.size;

    // The fsync and the full check of the archive overlap; both finish before the final name.
    let (synced, checked) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| file.sync_all());
        let checked = opts
            .verify
            .then(|| check_archive(temp.path(), Hash::Check, progress));
        (sync.join().expect("fsync thread panicked"), checked)
    });
    synced.map_err(|e| BackupError::Write {
        path: temp.path().into(),
        doing: "syncing the backup to disk",
        source: e,
    })?;
    drop(file);
    if let Some(checked) = checked {
        let (read, _) = checked?;
        if read != meta {
            return Err(BackupError::Corrupt {
                path: temp.path().into(),
                detail: "the file read back differs from what was written: its metadata".into(),
                source: None,
            });
        }
    }

    let stem = store::name_stem(url.dbname());
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
        database: PathBuf::from(source),
        size,
        ratio: meta.image_size as f64 / size.max(1) as f64,
        verified: opts.verify,
        meta,
        leftovers_removed,
    })
}

/// How to restore a PostgreSQL backup.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Restore even if the backup was taken from another database.
    pub force: bool,
    /// Take this backup of the current database first (`None`: skip).
    pub safety_backup: Option<CreateOptions>,
    /// `lock_timeout` of an in-place restore: how long its `DROP`s wait for the application's
    /// locks before it gives up (and rolls back).
    pub busy_timeout: std::time::Duration,
}

/// What [`restore`] did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    /// The target, as `postgres://host:port/dbname`.
    pub database: PathBuf,
    pub backup: PathBuf,
    pub meta: BackupMeta,
    /// What the archive holds (and the restored database was checked against).
    pub contents: ArchiveContents,
    pub safety_backup: Option<BackupReport>,
    /// False when the target did not exist and the restored database was simply renamed to it.
    pub replaced_existing: bool,
    /// How an existing database was replaced: renamed (the restored database took its name in
    /// one transaction) or in place (`pg_restore --clean --single-transaction`), and why.
    pub replacement: Option<ReplacedBy>,
    /// Tables the live database has and the backup does not: an in-place restore leaves them.
    pub left_in_place: Vec<String>,
    /// After an in-place restore: where the database differs from the backup when checked
    /// right after the commit (other sessions may have written meanwhile). A restore into a new
    /// database that differs is refused instead.
    pub differences: Vec<String>,
    pub forced_other_database: bool,
}

/// Restore the PostgreSQL backup `backup` into the database `url` names. The backup is checked
/// fully ([`check_archive`]) before anything happens on the server; then the safety backup; then
/// a new database is restored and checked, and swapped in by renaming, or (another session uses
/// the target, or a new database cannot be created) the backup is restored into the live
/// database in one transaction. On any error the target is as it was.
pub fn restore(
    url: &PgUrl,
    backup: &Path,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreReport, BackupError> {
    let entry = read_entry(backup)?;
    let meta = entry.meta.expect("read_entry returns metadata");
    let target = PathBuf::from(store::postgres_source(url));
    if meta.engine != Engine::Postgres {
        return Err(BackupError::OtherEngine {
            backup: backup.into(),
            backup_engine: meta.engine.as_str(),
            target,
            target_engine: "postgres",
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
    let (meta, contents) = check_archive(backup, Hash::Check, progress)?;

    let dbname = url.dbname().to_string();
    let admin_url = url.with_dbname(maintenance_db(&dbname));
    let admin = PgConn::connect(&admin_url)?;
    let existing = target_properties(&admin, &dbname)?;
    let safety_backup = match (&opts.safety_backup, &existing) {
        (Some(create_opts), Some(_)) => Some(create(url, create_opts, progress)?),
        _ => None,
    };
    progress(Progress {
        phase: Phase::Replace,
        done: 0,
        total: 1,
    });

    let mut report = RestoreReport {
        database: target,
        backup: backup.into(),
        meta,
        contents,
        safety_backup,
        replaced_existing: existing.is_some(),
        replacement: None,
        left_in_place: Vec::new(),
        differences: Vec::new(),
        forced_other_database: other_database,
    };
    let busy = match &existing {
        Some(_) => other_sessions(&admin, &dbname)?,
        None => 0,
    };
    let in_place_because = if busy > 0 {
        Some(format!(
            "{busy} other session(s) connected to {dbname}; a rename needs none"
        ))
    } else {
        restore_by_rename(url, &admin, backup, existing.as_ref(), &report, progress)?
    };
    match in_place_because {
        Some(reason) => {
            let (left, differences) =
                restore_in_place(url, backup, &report, opts.busy_timeout, progress)?;
            report.left_in_place = left;
            report.differences = differences;
            report.replacement = Some(ReplacedBy::InPlace(reason));
        }
        None if existing.is_some() => report.replacement = Some(ReplacedBy::Rename),
        None => {}
    }
    progress(Progress {
        phase: Phase::Replace,
        done: 1,
        total: 1,
    });
    Ok(report)
}

/// The database to run `CREATE`/`ALTER DATABASE` from: `postgres`, or `template1` when the
/// target is `postgres` itself (a session cannot rename the database it is connected to).
fn maintenance_db(target: &str) -> &'static str {
    if target == "postgres" {
        "template1"
    } else {
        "postgres"
    }
}

/// The target's owner, encoding and locale, which the new database copies; `None` when it does
/// not exist.
struct Properties {
    owner: String,
    encoding: String,
    collate: String,
    ctype: String,
}

fn target_properties(admin: &PgConn, dbname: &str) -> Result<Option<Properties>, BackupError> {
    let row = admin
        .client()
        .query_opt(
            "SELECT pg_get_userbyid(datdba)::text, pg_encoding_to_char(encoding)::text, \
                    datcollate::text, datctype::text \
             FROM pg_database WHERE datname = $1",
            &[&dbname],
        )
        .map_err(|e| admin.error(&e, "looking up the database"))?;
    Ok(row.map(|r| Properties {
        owner: r.get(0),
        encoding: r.get(1),
        collate: r.get(2),
        ctype: r.get(3),
    }))
}

/// Sessions other than dbtool's own connected to `dbname`.
fn other_sessions(admin: &PgConn, dbname: &str) -> Result<i64, BackupError> {
    Ok(admin
        .client()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&dbname],
        )
        .map_err(|e| admin.error(&e, "looking for other sessions"))?
        .get(0))
}

/// A database name that is free on the server: `<target>_dbtool_<what>_<pid>` (at most 63 bytes).
fn side_name(admin: &PgConn, target: &str, what: &str) -> Result<String, BackupError> {
    let suffix = format!("_dbtool_{what}_{}", std::process::id());
    let mut prefix: String = target.to_string();
    while prefix.len() + suffix.len() > 63 {
        prefix.pop();
    }
    let mut name = format!("{prefix}{suffix}");
    let mut n = 1;
    while target_properties(admin, &name)?.is_some() {
        n += 1;
        name = format!("{prefix}{suffix}_{n}");
    }
    Ok(name)
}

/// Restore into a new database, check it, and rename it to the target in one transaction (the
/// old database renamed away in the same transaction, then dropped). `Ok(Some(reason))`: the
/// rename path is not possible and nothing was changed (restore in place instead); only when
/// the target exists.
fn restore_by_rename(
    url: &PgUrl,
    admin: &PgConn,
    backup: &Path,
    existing: Option<&Properties>,
    report: &RestoreReport,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<String>, BackupError> {
    let dbname = url.dbname();
    let fresh = side_name(admin, dbname, "restore")?;
    let mut create = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&fresh));
    if let Some(p) = existing {
        create.push_str(&format!(
            " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
            quote_literal(&p.encoding),
            quote_literal(&p.collate),
            quote_literal(&p.ctype)
        ));
    }
    if let Err(e) = admin.execute(&create) {
        if existing.is_none() {
            return Err(BackupError::Db(admin.error(&e, "creating the database")));
        }
        let failure = crate::db::pg::failure(&e);
        return Ok(Some(format!(
            "a new database cannot be created ({})",
            failure.message
        )));
    }
    // From here on the new database is dropped on every error.
    let dropped = |admin: &PgConn| {
        let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&fresh)));
    };
    let result = (|| {
        if let Some(p) = existing {
            // The restored database belongs to whoever owned the old one (when dbtool's role may
            // give it away: a superuser, or a member of the owner's role).
            let _ = admin.execute(&format!(
                "ALTER DATABASE {} OWNER TO {}",
                quote_ident(&fresh),
                quote_ident(&p.owner)
            ));
        }
        let fresh_url = url.with_dbname(&fresh);
        run_pg_restore(
            &fresh_url,
            backup,
            &["--exit-on-error"],
            None,
            "restoring into a new database",
            progress,
        )?;
        let differences = check_restored(&fresh_url, report)?;
        if !differences.is_empty() {
            return Err(BackupError::RestoreMismatch {
                backup: backup.into(),
                detail: differences.join("; "),
            });
        }
        // One transaction: the target is the old database or the new one at every moment. A
        // session that connected to the target meanwhile makes the rename fail (SQLSTATE
        // 55006), and nothing changes.
        let old = side_name(admin, dbname, "old")?;
        let swap = match existing {
            Some(_) => format!(
                "BEGIN; ALTER DATABASE {target} RENAME TO {old}; \
                 ALTER DATABASE {fresh} RENAME TO {target}; COMMIT",
                target = quote_ident(dbname),
                old = quote_ident(&old),
                fresh = quote_ident(&fresh),
            ),
            None => format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&fresh),
                quote_ident(dbname)
            ),
        };
        match admin.execute(&swap) {
            Ok(_) => {}
            Err(e) => {
                let _ = admin.execute("ROLLBACK");
                let failure = crate::db::pg::failure(&e);
                if failure.sqlstate == "55006" && existing.is_some() {
                    return Ok(Some(format!(
                        "a session connected to {dbname} during the restore; a rename needs none"
                    )));
                }
                return Err(BackupError::Db(
                    admin.error(&e, "renaming the restored database"),
                ));
            }
        }
        if existing.is_some() {
            // The old database is in the safety backup (when one was taken); a failure to drop
            // it leaves a copy behind, never the target missing.
            let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&old)));
        }
        Ok(None)
    })();
    match result {
        Ok(None) => Ok(None),
        other => {
            dropped(admin);
            other
        }
    }
}

/// `pg_restore --clean --if-exists --single-transaction` into the live database: readers see the
/// old content or the new, never a mix, and a lock wait longer than `lock_timeout` rolls it all
/// back. Returns the tables the live database has that the backup does not (left as they are),
/// and where it differs from the backup right after the commit.
fn restore_in_place(
    url: &PgUrl,
    backup: &Path,
    report: &RestoreReport,
    lock_timeout: std::time::Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<String>, Vec<String>), BackupError> {
    run_pg_restore(
        url,
        backup,
        &[
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
        ],
        Some(lock_timeout),
        "restoring into the live database",
        progress,
    )?;
    let differences = check_restored(url, report)?;
    let conn = PgConn::connect(url)?;
    let rows = conn
        .client()
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1",
            &[],
        )
        .map_err(|e| conn.error(&e, "listing tables"))?;
    let left = rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !report.contents.tables.contains_key(t))
        .collect();
    Ok((left, differences))
}

/// Feed the decompressed archive of `backup` to `pg_restore <args> --dbname` of `url`.
fn run_pg_restore(
    url: &PgUrl,
    backup: &Path,
    args: &[&str],
    lock_timeout: Option<std::time::Duration>,
    doing: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let mut cmd = tool("pg_restore", Some(url));
    if let Some(timeout) = lock_timeout {
        // The session's setting, through libpq's PGOPTIONS (after the URL's own options).
        let ms = timeout.as_millis().max(1);
        let options = match url.param("options") {
            Some(own) => format!("{own} -c lock_timeout={ms}"),
            None => format!("-c lock_timeout={ms}"),
        };
        cmd.env("PGOPTIONS", options);
    }
    let mut child = spawn(
        cmd.args(args)
            .arg("--dbname")
            .arg(url.dbname())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "pg_restore",
    )?;
    let mut stdin = child.stdin.take();
    let (read, stderr) = std::thread::scope(|scope| {
        let stderr = drain(scope, child.stderr.take());
        let read = read_payload(backup, Phase::Decompress, Hash::Check, progress, &mut |c| {
            feed(&mut stdin, c);
            Ok(())
        });
        drop(stdin.take());
        if read.is_err() {
            let _ = child.kill();
        }
        (read, stderr.join().expect("stderr reader panicked"))
    });
    let status = child.wait().map_err(|e| BackupError::Read {
        path: backup.into(),
        doing: "waiting for pg_restore",
        source: e,
    })?;
    read?;
    if !status.success() {
        // SQLSTATE 55P03 as pg_restore reports it: the lock timeout, dbtool's "locked" (exit 4).
        if lock_timeout.is_some() && String::from_utf8_lossy(&stderr).contains("lock timeout") {
            return Err(BackupError::Db(crate::db::DbError::Locked {
                path: PathBuf::from(url.redacted()),
                waited_ms: lock_timeout.map_or(0, |t| t.as_millis() as u64),
            }));
        }
        return Err(tool_failed("pg_restore", doing, status, &stderr));
    }
    Ok(())
}

/// Where the restored database differs from the archive: the rows of every table, and the
/// history's version (empty: it holds what the backup does).
fn check_restored(url: &PgUrl, report: &RestoreReport) -> Result<Vec<String>, BackupError> {
    let conn = PgConn::connect(url)?;
    let mut differences = Vec::new();
    for (table, expected) in &report.contents.tables {
        // The name is as pg_restore printed it: already quoted where it needs to be.
        let n: i64 = conn
            .client()
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .map_err(|e| conn.error(&e, "counting the restored rows"))?
            .get(0);
        if n as u64 != *expected {
            differences.push(format!("{table} has {n} row(s), the backup {expected}"));
        }
    }
    let info = server_info(&conn)?;
    if info.schema_version != report.meta.schema_version {
        differences.push(format!(
            "the history is at version {}, the backup at {}",
            info.schema_version.unwrap_or(0),
            report.meta.schema_version.unwrap_or(0)
        ));
    }
    Ok(differences)
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_majors() {
        assert_eq!(server_major(150018), (15, 0));
        assert_eq!(server_major(90624), (9, 6));
    }
}
