//! What a rebuild needs beyond the shared schema reader ([`crate::schema`]): a fingerprint of a
//! table and its dependents, the foreign keys that point at it, its columns as SQLite sees them.

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::schema::Schema;
use crate::sql::{quote_ident, quote_str, same_name};

/// The SQL expression whose value is the fingerprint of `table` and its `dependents`: their
/// `sqlite_schema` text, in a fixed order. A table's text is taken from its first `(`: SQLite's
/// `ALTER TABLE … RENAME TO` rewrites the name part (`CREATE TABLE "t"`), so a rebuild and its
/// down give back the same fingerprint. The same text is computed by dbtool (hashed into the
/// file header) and by the guard at the top of a generated file.
pub fn fingerprint_sql(table: &str, dependents: &[String]) -> String {
    let mut filter = format!("tbl_name = {} COLLATE NOCASE", quote_str(table));
    if !dependents.is_empty() {
        let names: Vec<String> = dependents.iter().map(|n| quote_str(n)).collect();
        filter = format!("{filter} OR name IN ({})", names.join(", "));
    }
    format!(
        "(SELECT group_concat(type || ' ' || name || char(10) || CASE type WHEN 'table' THEN substr(sql, instr(sql, '(')) ELSE sql END, char(10)) FROM (SELECT type, name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL AND ({filter}) ORDER BY type, name))"
    )
}

/// The fingerprint text (see [`fingerprint_sql`]).
pub fn fingerprint(
    conn: &Connection,
    table: &str,
    dependents: &[String],
) -> rusqlite::Result<String> {
    conn.query_row(
        &format!("SELECT {}", fingerprint_sql(table, dependents)),
        [],
        |r| r.get::<_, Option<String>>(0),
    )
    .map(Option::unwrap_or_default)
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A foreign key of some table that points at the rebuilt table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKey {
    pub child: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub on_delete: String,
}

/// Foreign keys (of every table, the table itself included) whose parent is `table`.
pub fn child_keys(
    conn: &Connection,
    schema: &Schema,
    table: &str,
) -> rusqlite::Result<Vec<ChildKey>> {
    let mut out = Vec::new();
    for t in schema.tables() {
        if schema.is_virtual(&t.name) {
            continue;
        }
        let mut stmt = conn.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?;
        let mut rows = stmt.query([&t.name])?;
        let mut current: Option<(i64, ChildKey)> = None;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let parent: String = r.get(1)?;
            let from: String = r.get(2)?;
            let to: Option<String> = r.get(3)?;
            if current.as_ref().is_some_and(|(cid, _)| *cid != id) {
                out.extend(current.take().map(|(_, k)| k));
            }
            if !same_name(&parent, table) {
                continue;
            }
            let entry = current.get_or_insert_with(|| {
                (
                    id,
                    ChildKey {
                        child: t.name.clone(),
                        from: vec![],
                        to: vec![],
                        on_delete: String::new(),
                    },
                )
            });
            entry.1.from.push(from);
            entry.1.to.extend(to);
            entry.1.on_delete = r.get(4)?;
        }
        out.extend(current.map(|(_, k)| k));
    }
    Ok(out)
}

/// The rowid name a SELECT can use on `table`: `rowid`, `_rowid_` or `oid`, whichever no column
/// shadows; `None` when all three are column names.
pub fn rowid_alias(columns: &[String]) -> Option<&'static str> {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|a| !columns.iter().any(|c| same_name(c, a)))
}

/// Whether `table` has a view that fails to compile; returns the first one with its error.
pub fn broken_view(conn: &Connection, schema: &Schema) -> Option<(String, rusqlite::Error)> {
    for v in schema.views() {
        if let Err(e) = conn.prepare(&format!(
            "SELECT 1 FROM main.{} LIMIT 0",
            quote_ident(&v.name)
        )) {
            return Some((v.name.clone(), e));
        }
    }
    None
}

/// Columns of `table` from `PRAGMA table_xinfo`: (name, declared type, hidden). `hidden` is 2 or 3
/// for generated columns.
pub fn xinfo(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt =
        conn.prepare("SELECT name, type, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Whether `parent(column)` can be the target of a foreign key: it is the sole PRIMARY KEY column
/// or has a single-column UNIQUE index (with the default collation check left to SQLite).
pub fn is_unique_key(conn: &Connection, parent: &str, column: &str) -> rusqlite::Result<bool> {
    let pk: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0")?
        .query_map([parent], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if pk.len() == 1 && same_name(&pk[0], column) {
        return Ok(true);
    }
    let unique: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM pragma_index_list(?1) AS l WHERE l.\"unique\" AND l.partial = 0 \
             AND (SELECT count(*) FROM pragma_index_info(l.name)) = 1 \
             AND (SELECT name FROM pragma_index_info(l.name)) = ?2 COLLATE NOCASE",
            [parent, column],
            |r| r.get(0),
        )
        .optional()?;
    Ok(unique.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(sql: &str) -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(sql).unwrap();
        c
    }

    #[test]
    fn fingerprint_changes_when_an_index_is_added() {
        let c = db("CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT UNIQUE);");
        let before = fingerprint(&c, "p", &[]).unwrap();
        assert!(before.starts_with("table p\n(id INTEGER"), "{before}");
        c.execute_batch("CREATE INDEX i ON p(name)").unwrap();
        assert_ne!(fingerprint(&c, "p", &[]).unwrap(), before);
    }

    #[test]
    fn child_keys_include_self_and_composite() {
        let c = db("CREATE TABLE p(a, b, parent_a, PRIMARY KEY (a, b), FOREIGN KEY (parent_a, b) REFERENCES p(a, b));
            CREATE TABLE c(x REFERENCES P ON DELETE CASCADE, y, z, FOREIGN KEY (y, z) REFERENCES p(a, b) ON DELETE SET NULL);");
        let s = Schema::read(&c).unwrap();
        let keys = child_keys(&c, &s, "p").unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0].child, "p");
        assert_eq!(keys[0].from, ["parent_a", "b"]);
        assert!(keys
            .iter()
            .any(|k| k.child == "c" && k.on_delete == "CASCADE" && k.to.is_empty()));
        assert!(keys
            .iter()
            .any(|k| k.child == "c" && k.on_delete == "SET NULL" && k.from == ["y", "z"]));
    }
}
