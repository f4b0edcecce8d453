//! refinery's history table, `refinery_schema_history(version, name, applied_on, checksum)`,
//! read defensively: refinery 0.10 `unwrap`s `applied_on` and the checksum, so a damaged row
//! panics there. Here every row is validated and a bad one is a [`MigrateError::HistoryDamaged`] naming
//! the row.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{MigrateError, Result};

pub use crate::db::HISTORY_TABLE;

/// The same DDL refinery runs (`int4` versions), so either tool can create the table.
pub const CREATE_HISTORY_TABLE: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version int4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    pub version: i32,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub applied_on: OffsetDateTime,
    pub checksum: u64,
}

/// Whether the history table exists.
pub fn table_exists(conn: &Connection, path: &Path) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [HISTORY_TABLE],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| MigrateError::sqlite("looking for the history table", path, e))
}

/// Every applied migration, oldest first. An absent table is an empty history.
pub fn read(conn: &Connection, path: &Path) -> Result<Vec<AppliedMigration>> {
    if !table_exists(conn, path)? {
        return Ok(Vec::new());
    }
    let damaged = |detail: String| MigrateError::HistoryDamaged {
        path: path.to_path_buf(),
        table: HISTORY_TABLE.into(),
        detail,
    };
    let mut stmt = conn
        .prepare("SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version")
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::Unknown) | None => damaged(format!("cannot read it: {e}")),
            _ => crate::db::classify(e, "reading the history table", path, Default::default())
                .into(),
        })?;
    let mut rows = stmt
        .query([])
        .map_err(|e| MigrateError::sqlite("reading the history table", path, e))?;
    let mut applied = Vec::new();
    let mut row_number = 0;
    while let Some(row) = rows
        .next()
        .map_err(|e| MigrateError::sqlite("reading the history table", path, e))?
    {
        row_number += 1;
        let at = |what: &str| format!("row {row_number}: {what}");
        let version = match row.get_ref(0).ok() {
            Some(ValueRef::Integer(v)) => i32::try_from(v)
                .map_err(|_| damaged(at(&format!("version {v} is out of range"))))?,
            other => return Err(damaged(at(&format!("version is {}", describe(other))))),
        };
        let at = |what: &str| format!("version {version}: {what}");
        let name = match row.get_ref(1).ok() {
            Some(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
            other => return Err(damaged(at(&format!("name is {}", describe(other))))),
        };
        let applied_on = match row.get_ref(2).ok() {
            Some(ValueRef::Text(t)) => {
                let text = String::from_utf8_lossy(t);
                OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    damaged(at(&format!("applied_on {text:?} is not an RFC 3339 time")))
                })?
            }
            other => return Err(damaged(at(&format!("applied_on is {}", describe(other))))),
        };
        let checksum = match row.get_ref(3).ok() {
            Some(ValueRef::Text(t)) => {
                let text = String::from_utf8_lossy(t);
                text.parse::<u64>().map_err(|_| {
                    damaged(at(&format!("checksum {text:?} is not an unsigned integer")))
                })?
            }
            Some(ValueRef::Integer(i)) if i >= 0 => i as u64,
            other => return Err(damaged(at(&format!("checksum is {}", describe(other))))),
        };
        applied.push(AppliedMigration {
            version,
            name,
            applied_on,
            checksum,
        });
    }
    Ok(applied)
}

fn describe(value: Option<ValueRef<'_>>) -> String {
    match value {
        None => "missing".into(),
        Some(ValueRef::Null) => "NULL".into(),
        Some(ValueRef::Integer(i)) => format!("the integer {i}"),
        Some(ValueRef::Real(r)) => format!("the number {r}"),
        Some(ValueRef::Text(t)) => format!("the text {:?}", String::from_utf8_lossy(t)),
        Some(ValueRef::Blob(_)) => "a blob".into(),
    }
}

/// `applied_on` as refinery writes it: RFC 3339.
pub fn applied_on_text(now: OffsetDateTime) -> String {
    now.format(&Rfc3339)
        .expect("an OffsetDateTime always formats as RFC 3339")
}

/// Record a migration as applied, in the caller's transaction.
pub fn insert(
    conn: &Connection,
    path: &Path,
    version: i32,
    name: &str,
    checksum: u64,
    now: OffsetDateTime,
) -> Result<()> {
    let applied_on = applied_on_text(now);
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![version, name, applied_on, checksum.to_string()],
    )
    .map(drop)
    .map_err(|e| MigrateError::sqlite(format!("recording V{version}__{name} in the history"), path, e))
}

/// Forget a migration (its down ran), in the caller's transaction.
pub fn delete(conn: &Connection, path: &Path, version: i32) -> Result<()> {
    conn.execute(
        "DELETE FROM refinery_schema_history WHERE version = ?1",
        [version],
    )
    .map(drop)
    .map_err(|e| {
        MigrateError::sqlite(
            format!("removing version {version} from the history"),
            path,
            e,
        )
    })
}
