//! PostgreSQL backups: `pg_dump`'s custom-format archive in dbtool's backup file, in the same
//! store, under the same names and with the same metadata frame as SQLite's.
//!
//! - **Take** ([`create`]): `pg_dump -Fc -Z0` (uncompressed: zstd compresses better and several
//!   times faster than pg_dump's zlib) streams through the same writer as a SQLite snapshot
//!   (`compress`): content hashes, zstd frame check as written, metadata rewritten in
//!   place. The metadata names the source without user or password, the server's and pg_dump's
//!   versions and the history's version. Before the file gets its final name, the compressed
//!   stream has been decoded as it was written (on a thread of its own, no second pass) into
//!   `pg_restore --list` and `pg_restore -f /dev/null` (`ArchiveReader`), the decoded bytes
//!   matched against what pg_dump wrote, and the file read back against the stream. A
//!   `pg_dump` older than the server is refused up front.
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
    check_archive, feed, major_version, reports_lock_timeout, set_lock_timeout, spawn, tool,
    tool_failed, tool_version, ArchiveContents, ArchiveReader,
};
use super::store::{self, TempFile};
use super::{
    cleanup_leftovers, compress, hostname, output_location, read_entry, read_payload,
    seal_and_publish, BackupError, BackupReport, CreateOptions, Hash, Phase, Progress, ReplacedBy,
    Sealing,
};
use crate::db::pg::{PgConn, PgSession};
use crate::db::{quote_ident, DbError, Ending, PgUrl, HISTORY_TABLE};

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

/// Read all of `from` on a thread of `scope` (a tool's stderr, so it never blocks on a full pipe).
fn drain<'s, R: Read + Send + 's>(
    scope: &'s std::thread::Scope<'s, '_>,
    from: Option<R>,
) -> std::thread::ScopedJoinHandle<'s, Vec<u8>> {
    scope.spawn(move || {
        let mut out = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut out);
        }
        out
    })
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
/// dbtool's zstd stream into a temporary file, checked as it is written (unless `opts.verify` is
/// off; see the module documentation), then published under the same kind of name as a SQLite
/// backup.
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
        format_version: format::FORMAT_VERSION,
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
        sha256: None,
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
            // A table an application holds locked makes pg_dump wait for it: no longer than
            // the busy timeout (then dbtool's "locked", exit 4), as every other lock wait.
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
    // With verification, the archive pg_dump writes is read in full by pg_restore
    // (`ArchiveReader`) as it is produced, on a thread of its own, while the compressed stream
    // is checked as it is written (the zstd frame walked, its content checksum against the
    // archive's, the file read back), as for a SQLite backup: no second pass over the file and
    // no second decompression.
    let mut archive = match opts.verify.then(|| ArchiveReader::start(false)).transpose() {
        Ok(archive) => archive,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let (written, stderr, decoded) = std::thread::scope(|scope| {
        let stderr = drain(scope, child.stderr.take());
        let (observe, decoder) = match archive.take() {
            Some(archive) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(16);
                (
                    Some(tx),
                    Some(scope.spawn(move || read_as_dumped(rx, archive))),
                )
            }
            None => (None, None),
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut observe = observe;
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
                if let Some(tx) = &observe {
                    // A reader that stopped reports why itself (see `read_as_dumped`).
                    if tx.send(buf[..n].to_vec()).is_err() {
                        observe = None;
                    }
                }
                sink(&buf[..n])?;
            },
            &file,
            temp.path(),
            opts,
            &mut meta,
            &mut |p: Progress| {
                progress(Progress {
                    total: p.total.max(estimate),
                    ..p
                })
            },
        );
        // The reader stops at the end of the channel: close it before waiting for the reader.
        drop(observe);
        if written.is_err() {
            let _ = child.kill();
        }
        drop(stdout);
        let decoded = decoder.map(|d| d.join().expect("decoding thread panicked"));
        (
            written,
            stderr.join().expect("stderr reader panicked"),
            decoded,
        )
    });
    let status = child.wait().map_err(|e| BackupError::Read {
        path: PathBuf::from(&source),
        doing: "waiting for pg_dump",
        source: e,
    })?;
    // pg_dump's own failure explains a short stream best; a write error explains a kill.
    let written = match written {
        Ok(_) if !status.success() => {
            // pg_dump's lock wait timing out: its `LOCK TABLE` cancelled by the statement
            // timeout it sets for it (older releases say "could not obtain lock").
            let said = String::from_utf8_lossy(&stderr);
            if said.contains("could not obtain lock") || said.contains("Query was: LOCK TABLE") {
                return Err(BackupError::Db(crate::db::DbError::Locked {
                    path: PathBuf::from(url.redacted()),
                    waited_ms: opts.busy_timeout.as_millis() as u64,
                }));
            }
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
    if let Some(decoded) = decoded {
        let (len, digest, _contents) = decoded?;
        if len != meta.image_size || meta.xxh3_128 != Some(format!("{digest:032x}")) {
            return Err(BackupError::Corrupt {
                path: temp.path().into(),
                detail: "pg_restore read another archive than the one compressed".into(),
                source: None,
            });
        }
    }
    seal_and_publish(
        Sealing {
            temp,
            file,
            written,
            meta,
            dir,
            fixed_name,
            stem: store::name_stem(url.dbname()),
            database: PathBuf::from(source),
            leftovers_removed,
        },
        opts,
        progress,
    )
}

/// Feed the archive pg_dump writes (received chunk by chunk as it is compressed) to `archive`.
/// Returns its length, its XXH3-128 and what `pg_restore` read.
fn read_as_dumped(
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    mut archive: ArchiveReader,
) -> Result<(u64, u128, ArchiveContents), BackupError> {
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    let mut len = 0u64;
    for chunk in rx {
        hash.update(&chunk);
        len += chunk.len() as u64;
        archive.feed(&chunk);
    }
    Ok((len, hash.digest128(), archive.finish()?))
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
    /// Databases killed dbtool runs had left beside the target (`<target>_dbtool_…`), dropped.
    pub stale_removed: Vec<String>,
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

    let server = Server::connect(url)?;
    let existing = server.target.is_some();
    let safety_backup = match (&opts.safety_backup, existing) {
        (Some(create_opts), true) => Some(create(url, create_opts, progress)?),
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
        replaced_existing: existing,
        replacement: None,
        left_in_place: Vec::new(),
        differences: Vec::new(),
        forced_other_database: other_database,
        stale_removed: server.stale_removed.clone(),
    };
    let in_place_because = match server.busy(opts.busy_timeout)? {
        Some(reason) => Some(reason),
        None => restore_by_rename(server, backup, &report, progress)?,
    };
    match in_place_because {
        Some(reason) => {
            let (left, differences) =
                restore_in_place(url, backup, &report, opts.busy_timeout, progress)?;
            report.left_in_place = left;
            report.differences = differences;
            report.replacement = Some(ReplacedBy::InPlace(reason));
        }
        None if existing => report.replacement = Some(ReplacedBy::Rename),
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

/// The target's owner, encoding and locale, which a new database copies.
#[derive(Clone, Debug)]
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

/// The server a target database lives on, seen from its maintenance database (where `CREATE`,
/// `ALTER` and `DROP DATABASE` run): whether the target exists, and the databases killed dbtool
/// runs left beside it, which connecting drops.
pub struct Server {
    admin: PgConn,
    url: PgUrl,
    target: Option<Properties>,
    /// `<target>_dbtool_<what>_<pid>` databases no session was using, dropped on connecting.
    pub stale_removed: Vec<String>,
}

impl Server {
    pub fn connect(url: &PgUrl) -> Result<Server, BackupError> {
        let admin = PgConn::connect(&url.with_dbname(maintenance_db(url.dbname())))?;
        let target = target_properties(&admin, url.dbname())?;
        let stale_removed = remove_stale(&admin, url.dbname())?;
        Ok(Server {
            admin,
            url: url.clone(),
            target,
            stale_removed,
        })
    }

    /// Whether the target database exists.
    pub fn target_exists(&self) -> bool {
        self.target.is_some()
    }

    /// Why the target cannot be renamed (other sessions are connected to it), if so, after
    /// waiting up to `wait` for them to go: a client that has just disconnected stays listed
    /// until its server process has exited (the rename itself waits for that too).
    pub fn busy(&self, wait: std::time::Duration) -> Result<Option<String>, BackupError> {
        if self.target.is_none() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let n = other_sessions(&self.admin, self.url.dbname())?;
            if n == 0 {
                return Ok(None);
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Ok(Some(format!(
                    "{n} other session(s) connected to {}; a rename needs none",
                    self.url.dbname()
                )));
            }
            // The same back-off as the run lock's: PostgreSQL offers no wait on sessions.
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
        }
    }

    /// Create an empty database beside the target (`CREATE DATABASE … TEMPLATE template0`, with
    /// the target's encoding, locale and, when dbtool's role may give it, owner), to be filled
    /// and then swapped in with [`SideDatabase::swap_in`]. Dropped unless swapped in.
    pub fn side_database(self, what: &str) -> Result<SideDatabase, BackupError> {
        let name = side_name(&self.admin, self.url.dbname(), what)?;
        let mut create = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name));
        if let Some(p) = &self.target {
            create.push_str(&format!(
                " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                quote_literal(&p.encoding),
                quote_literal(&p.collate),
                quote_literal(&p.ctype)
            ));
        }
        self.admin
            .execute(&create)
            .map_err(|e| self.admin.error(&e, "creating a database to restore into"))?;
        let side = SideDatabase {
            server: self,
            name,
            armed: true,
        };
        if let Some(p) = &side.server.target {
            // Best effort: a role that may not give the database away keeps it.
            let _ = side.server.admin.execute(&format!(
                "ALTER DATABASE {} OWNER TO {}",
                quote_ident(&side.name),
                quote_ident(&p.owner)
            ));
            // What belongs to the database itself rather than to its content (pg_dump leaves
            // it out): the swapped-in database must behave as the old one did. A failure drops
            // the new database (`side` is dropped) and changes nothing.
            copy_properties(&side.server.admin, side.server.url.dbname(), &side.name).map_err(
                |e| {
                    side.server.admin.error(
                        &e,
                        "copying the database's settings, grants and comment to the new database",
                    )
                },
            )?;
        }
        Ok(side)
    }
}

/// Copy what `ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`, `GRANT … ON DATABASE`,
/// `COMMENT ON DATABASE` and `CONNECTION LIMIT` gave `from` onto `to`.
fn copy_properties(admin: &PgConn, from: &str, to: &str) -> Result<(), postgres::Error> {
    let to_ident = quote_ident(to);
    let mut client = admin.client();
    // Settings: each value goes through set_config (the server parses it as it parsed it the
    // first time, lists included), then `SET … FROM CURRENT` records it for the new database.
    let settings = client.query(
        "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole)::text END, \
                split_part(c, '=', 1), substr(c, strpos(c, '=') + 1) \
         FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, \
              unnest(s.setconfig) AS c WHERE d.datname = $1",
        &[&from],
    )?;
    for row in settings {
        let role: Option<String> = row.get(0);
        let name: String = row.get(1);
        let value: String = row.get(2);
        let target = match &role {
            Some(role) => format!("ROLE {} IN DATABASE {to_ident}", quote_ident(role)),
            None => format!("DATABASE {to_ident}"),
        };
        let mut tx = client.transaction()?;
        tx.execute("SELECT set_config($1, $2, true)", &[&name, &value])?;
        tx.batch_execute(&format!(
            "ALTER {target} SET {} FROM CURRENT",
            quote_ident(&name)
        ))?;
        tx.commit()?;
    }
    let row = client.query_one(
        "SELECT datacl IS NULL, datconnlimit, shobj_description(oid, 'pg_database') \
         FROM pg_database WHERE datname = $1",
        &[&from],
    )?;
    let (default_acl, limit, comment): (bool, i32, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    if !default_acl {
        client.batch_execute(&format!("REVOKE ALL ON DATABASE {to_ident} FROM PUBLIC"))?;
        let grants = client.query(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                         ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                    a.privilege_type, a.is_grantable \
             FROM pg_database d, aclexplode(d.datacl) a \
             WHERE d.datname = $1 AND a.grantee <> d.datdba",
            &[&from],
        )?;
        for grant in grants {
            let (grantee, privilege, grantable): (String, String, bool) =
                (grant.get(0), grant.get(1), grant.get(2));
            client.batch_execute(&format!(
                "GRANT {privilege} ON DATABASE {to_ident} TO {grantee}{}",
                if grantable { " WITH GRANT OPTION" } else { "" }
            ))?;
        }
    }
    if limit != -1 {
        client.batch_execute(&format!(
            "ALTER DATABASE {to_ident} CONNECTION LIMIT {limit}"
        ))?;
    }
    if let Some(comment) = comment {
        client.batch_execute(&format!(
            "COMMENT ON DATABASE {to_ident} IS {}",
            quote_literal(&comment)
        ))?;
    }
    Ok(())
}

/// A database beside the target, dropped when this is dropped unless [`SideDatabase::swap_in`]
/// made it the target.
pub struct SideDatabase {
    server: Server,
    name: String,
    armed: bool,
}

/// What [`SideDatabase::swap_in`] did.
pub enum Swap {
    /// The side database is now the target (the old one renamed away in the same transaction,
    /// then dropped).
    Renamed,
    /// Nothing changed: a session connected to the target meanwhile (the side database is
    /// dropped). Says why.
    Busy(String),
}

impl SideDatabase {
    /// The same server and credentials, this database.
    pub fn url(&self) -> PgUrl {
        self.server.url.with_dbname(&self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rename the side database to the target, the target (if any) away, in one transaction:
    /// the target is the old database or the new one at every moment. A session connected to
    /// the target makes the rename fail (SQLSTATE 55006) and nothing changes.
    pub fn swap_in(mut self) -> Result<Swap, BackupError> {
        let admin = &self.server.admin;
        let target = self.server.url.dbname();
        let old = side_name(admin, target, "old")?;
        let mut renames = vec![];
        if self.server.target.is_some() {
            renames.push(format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(target),
                quote_ident(&old)
            ));
        }
        renames.push(format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&self.name),
            quote_ident(target)
        ));
        // One transaction of the write path (on the maintenance database, where the renames run).
        let mut session = PgSession::new(admin, crate::db::DEFAULT_BUSY_TIMEOUT);
        let renamed = session.transaction(
            Ending::Commit,
            |_| Ok::<_, DbError>(()),
            |conn, ()| conn.run(&renames.join("; "), "renaming the new database"),
        );
        drop(session);
        match renamed {
            Ok(_) => {}
            // A session connected to the target meanwhile: nothing was renamed.
            Err(DbError::Postgres { failure, .. })
                if failure.sqlstate == "55006" && self.server.target.is_some() =>
            {
                return Ok(Swap::Busy(format!(
                    "a session connected to {target} meanwhile; a rename needs none"
                )));
            }
            Err(e) => return Err(BackupError::Db(e)),
        }
        self.armed = false;
        if self.server.target.is_some() {
            // A failure to drop the old database leaves a copy behind (dropped by the next run),
            // never the target missing.
            let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&old)));
        }
        Ok(Swap::Renamed)
    }
}

impl Drop for SideDatabase {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.server.admin.execute(&format!(
                "DROP DATABASE IF EXISTS {}",
                quote_ident(&self.name)
            ));
        }
    }
}

/// Drop the databases killed dbtool runs left beside `target` (`<target>_dbtool_<what>_<pid>`)
/// that no session uses (a running dbtool stays connected to its own).
fn remove_stale(admin: &PgConn, target: &str) -> Result<Vec<String>, BackupError> {
    let rows = admin
        .client()
        .query(
            "SELECT datname::text FROM pg_database d \
             WHERE datname ~ '_dbtool_(restore|old|reset)_[0-9]+(_[0-9]+)?$' \
               AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
            &[],
        )
        .map_err(|e| admin.error(&e, "looking for databases left by killed runs"))?;
    let mut removed = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let prefix = name.rsplit_once("_dbtool_").map_or("", |(p, _)| p);
        // The target's whole name, or its start when `side_name` cut it to fit 63 bytes.
        let mine = prefix == target || (name.len() >= 60 && target.starts_with(prefix));
        if prefix.is_empty() || !mine || name == target {
            continue;
        }
        if admin
            .execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name)))
            .is_ok()
        {
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Rows per user table of the database `url` names (`schema.table`), for `reset`'s prompt.
pub fn row_counts(url: &PgUrl) -> Result<std::collections::BTreeMap<String, u64>, BackupError> {
    let conn = PgConn::connect(url)?;
    let tables: Vec<String> = conn
        .client()
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND c.relname <> $1 ORDER BY 1",
            &[&HISTORY_TABLE],
        )
        .map_err(|e| conn.error(&e, "listing tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for table in tables {
        let n: i64 = conn
            .client()
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .map_err(|e| conn.error(&e, "counting rows"))?
            .get(0);
        counts.insert(table, n as u64);
    }
    Ok(counts)
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

/// Restore into a new database, check it, and swap it in ([`SideDatabase::swap_in`]).
/// `Ok(Some(reason))`: the rename path is not possible and nothing was changed (restore in
/// place instead); only when the target exists.
fn restore_by_rename(
    server: Server,
    backup: &Path,
    report: &RestoreReport,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<String>, BackupError> {
    let existing = server.target_exists();
    let side = match server.side_database("restore") {
        Ok(side) => side,
        Err(BackupError::Db(e)) if existing => {
            return Ok(Some(format!("a new database cannot be created: {e}")));
        }
        Err(e) => return Err(e),
    };
    let fresh_url = side.url();
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
    match side.swap_in()? {
        Swap::Renamed => Ok(None),
        Swap::Busy(reason) => Ok(Some(reason)),
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
        "restoring into the live database (in place: other sessions were using it)",
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
        set_lock_timeout(&mut cmd, url, timeout);
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
        if lock_timeout.is_some() && reports_lock_timeout(&stderr) {
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
        // The name is as pg_restore printed it: already quoted where it needs to be. `ONLY`: the
        // archive holds each table's own rows, an inheritance parent's without its children's.
        let n: i64 = conn
            .client()
            .query_one(&format!("SELECT count(*) FROM ONLY {table}"), &[])
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
