//! `dbtool inspect`: what a database file holds, read-only.
//!
//! File size and pages, journal mode, the SQLite library, the schema version against the
//! migrations (when the folder can be read), tables largest first with their row counts and
//! indexes. The most recent backup is not the library's to find here: backups live with the
//! backup module, so the caller fills [`InspectReport::latest_backup`].

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use super::Result;
use super::{row_counts, Checker};
use crate::db::{self, DbError, OpenMode};
use crate::migrate::{self, MigrationSet};

#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    #[serde(rename = "database")]
    pub path: PathBuf,
    /// Size of the database file in bytes (without `-wal`).
    pub size_bytes: u64,
    /// Size of the `-wal` file, when there is one.
    pub wal_bytes: Option<u64>,
    // SQLite's own (absent on PostgreSQL, which has `postgres` instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_count: Option<u64>,
    /// Pages on the freelist (reclaimable with VACUUM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freelist_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlite_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_version: Option<i64>,
    /// The server, on PostgreSQL (`size_bytes` is then `pg_database_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<ServerInfo>,
    /// Highest applied migration (`None`: no history).
    #[serde(rename = "current_version")]
    pub schema_version: Option<i32>,
    pub schema_name: Option<String>,
    /// Newest migration in the folder (`None`: no migrations, or the folder could not be read).
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    pub is_head: bool,
    pub pending: Vec<i32>,
    /// Why the migrations folder could not be read, if it could not.
    pub migrations_problem: Option<String>,
    /// Largest first: most rows on SQLite, most bytes on PostgreSQL.
    pub tables: Vec<TableInfo>,
    /// The newest backup of this database, filled by the caller (see the module header).
    pub latest_backup: Option<LatestBackup>,
    /// Temporary files killed dbtool runs left beside the database or in its backup folder
    /// (see [`crate::sidefiles::leftovers`]), filled by the caller, which knows the backup folder.
    pub leftovers: Vec<PathBuf>,
}

/// A PostgreSQL server, as `inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `server_version` (e.g. `15.18 (Debian 15.18-0+deb12u1)`).
    pub server_version: String,
    /// `server_version_num` (e.g. 150018).
    pub server_version_num: i64,
    /// The database's name on the server.
    pub database_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub name: String,
    /// Exact on SQLite; on PostgreSQL the planner's estimate (`reltuples`), see `rows_estimated`.
    pub rows: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rows_estimated: bool,
    /// Table, TOAST and indexes (`pg_total_relation_size`), on PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    pub indexes: Vec<IndexInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    pub name: String,
    /// Column names; `<expr>` for an expression.
    pub columns: Vec<String>,
    pub unique: bool,
    /// Has a WHERE clause.
    pub partial: bool,
    /// `c` (CREATE INDEX), `u` (UNIQUE constraint) or `pk` (PRIMARY KEY).
    pub origin: String,
    /// On PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// The newest backup of the database, as the backup module reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LatestBackup {
    pub path: PathBuf,
    pub size_bytes: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub schema_version: Option<i32>,
    pub reason: Option<String>,
}

pub(super) fn inspect(checker: &Checker) -> Result<InspectReport> {
    let path = checker.database();
    let conn = db::open(path, OpenMode::ReadOnly, checker.busy_timeout)?;
    let size_bytes = std::fs::metadata(path)
        .map_err(|e| DbError::io("reading the size of", path, e))?
        .len();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(PathBuf::from(wal)).ok().map(|m| m.len());

    let applied = migrate::read_history(&conn, path)?;
    let newest = applied.iter().max_by_key(|a| a.version);
    let (head, pending, migrations_problem) = against_files(checker, &applied);
    let schema_version = newest.map(|a| a.version);
    let mut tables = Vec::new();
    for (name, rows) in row_counts(&conn, path)? {
        let indexes = indexes(&conn, path, &name)?;
        tables.push(TableInfo {
            name,
            rows,
            rows_estimated: false,
            size_bytes: None,
            indexes,
        });
    }
    tables.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.name.cmp(&b.name)));

    Ok(InspectReport {
        path: path.to_path_buf(),
        size_bytes,
        wal_bytes,
        page_size: Some(pragma_u64(&conn, path, "page_size")?),
        page_count: Some(pragma_u64(&conn, path, "page_count")?),
        freelist_count: Some(pragma_u64(&conn, path, "freelist_count")?),
        journal_mode: Some(
            conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| DbError::sqlite("reading the journal mode", path, e))?,
        ),
        sqlite_version: Some(rusqlite::version().to_string()),
        user_version: Some(pragma_u64(&conn, path, "user_version")? as i64),
        postgres: None,
        schema_version,
        schema_name: newest.map(|a| a.name.clone()),
        is_head: migrations_problem.is_none() && schema_version == head,
        head,
        pending,
        migrations_problem,
        tables,
        latest_backup: None,
        leftovers: Vec::new(),
    })
}

/// The head, the pending versions, or why the folder could not be read: `inspect` still shows
/// the database when the migrations are not there.
pub(super) fn against_files(
    checker: &Checker,
    applied: &[migrate::AppliedMigration],
) -> (Option<i32>, Vec<i32>, Option<String>) {
    match MigrationSet::load(checker.migrations_dir()) {
        Ok(set) => {
            let overview = migrate::Overview::new(&set, applied);
            (
                overview.head,
                overview.pending().map(|e| e.version).collect(),
                None,
            )
        }
        Err(e) => (None, Vec::new(), Some(e.to_string())),
    }
}

fn pragma_u64(conn: &Connection, path: &Path, pragma: &str) -> Result<u64> {
    conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
        .map_err(|e| DbError::sqlite(format!("reading PRAGMA {pragma}"), path, e).into())
}

fn indexes(conn: &Connection, path: &Path, table: &str) -> Result<Vec<IndexInfo>> {
    let run = || -> rusqlite::Result<Vec<IndexInfo>> {
        let mut list = conn.prepare(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
        )?;
        let mut info = conn
            .prepare("SELECT coalesce(name, '<expr>') FROM pragma_index_info(?1) ORDER BY seqno")?;
        let found: Vec<(String, bool, String, bool)> = list
            .query_map([table], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for (name, unique, origin, partial) in found {
            let columns = info
                .query_map([&name], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.push(IndexInfo {
                name,
                columns,
                unique,
                partial,
                origin,
                size_bytes: None,
            });
        }
        Ok(out)
    };
    run().map_err(|e| DbError::sqlite(format!("listing the indexes of {table}"), path, e).into())
}
