//! Reading a database's schema for a rebuild: the objects in `sqlite_schema`, which of them depend
//! on a table, the foreign keys that point at it, a fingerprint of the table and its dependents,
//! and an in-memory replica of the schema (no rows) to try generated SQL on.
//!
//! Invariants: only the `main` schema is read; objects are kept in `sqlite_schema` rowid order,
//! which is creation order, so replaying or recreating them in that order works. Names compare
//! with SQLite's ASCII case-insensitive rule.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::tokenize::{quote_ident, quote_str, same_name, significant, unquote, Kind};

/// One row of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    pub name: String,
    pub tbl_name: String,
    pub sql: Option<String>,
}

/// The `main` schema of a connection.
#[derive(Debug, Clone)]
pub struct Schema {
    pub objects: Vec<Object>,
    /// Names of virtual tables and of their shadow tables (`PRAGMA table_list`).
    pub virtual_tables: BTreeSet<String>,
    pub shadow_tables: BTreeSet<String>,
}

impl Schema {
    pub fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid")?;
        let objects = stmt
            .query_map([], |r| {
                Ok(Object {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    tbl_name: r.get(2)?,
                    sql: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut virtual_tables = BTreeSet::new();
        let mut shadow_tables = BTreeSet::new();
        let mut stmt =
            conn.prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            match r.get::<_, String>(1)?.as_str() {
                "virtual" => virtual_tables.insert(name.to_ascii_lowercase()),
                "shadow" => shadow_tables.insert(name.to_ascii_lowercase()),
                _ => false,
            };
        }
        Ok(Self {
            objects,
            virtual_tables,
            shadow_tables,
        })
    }

    /// The object of `kind` named `name`.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && same_name(&o.name, name))
    }

    /// Whether any object (table, index, view, trigger) already uses `name`.
    pub fn name_taken(&self, name: &str) -> bool {
        self.objects.iter().any(|o| same_name(&o.name, name))
    }

    pub fn is_virtual(&self, name: &str) -> bool {
        self.virtual_tables.contains(&name.to_ascii_lowercase())
    }

    pub fn is_shadow(&self, name: &str) -> bool {
        self.shadow_tables.contains(&name.to_ascii_lowercase())
    }

    /// Indexes (with SQL; never `sqlite_autoindex_*`) and triggers that belong to `table`: they are
    /// dropped with it and recreated after the rename.
    pub fn owned_by(&self, table: &str) -> Vec<&Object> {
        self.objects
            .iter()
            .filter(|o| {
                matches!(o.kind.as_str(), "index" | "trigger")
                    && o.sql.is_some()
                    && same_name(&o.tbl_name, table)
                    && !same_name(&o.name, table)
            })
            .collect()
    }

    /// Views and triggers elsewhere that name `table`, directly or through a view that does, in
    /// creation order. Found by identifier tokens, so the set may hold an object that only uses the
    /// name for something else: recreating that one verbatim is harmless, missing one is not.
    pub fn dependents(&self, table: &str) -> Vec<&Object> {
        let mut names: Vec<String> = vec![table.to_string()];
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        loop {
            let before = chosen.len();
            for (i, o) in self.objects.iter().enumerate() {
                if chosen.contains(&i)
                    || !matches!(o.kind.as_str(), "view" | "trigger")
                    || (o.kind == "trigger" && same_name(&o.tbl_name, table))
                {
                    continue;
                }
                let Some(sql) = &o.sql else { continue };
                if mentions_any(sql, &names) {
                    chosen.insert(i);
                    if o.kind == "view" {
                        names.push(o.name.clone());
                    }
                }
            }
            if chosen.len() == before {
                break;
            }
        }
        chosen.into_iter().map(|i| &self.objects[i]).collect()
    }

    /// Every table name (type `table`), internal ones excluded.
    pub fn tables(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| o.kind == "table" && !o.name.to_ascii_lowercase().starts_with("sqlite_"))
    }

    pub fn views(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(|o| o.kind == "view")
    }
}

/// Whether `sql` has a name token (bare, quoted or string) equal to one of `names`.
pub fn mentions_any(sql: &str, names: &[String]) -> bool {
    significant(sql).iter().any(|t| {
        t.is_name() && {
            let n = unquote(t.text(sql));
            names.iter().any(|x| same_name(x, &n))
        }
    })
}

/// Whether `sql` uses `column` as a name (a function call of the same name does not count).
pub fn mentions_column(sql: &str, column: &str) -> bool {
    let toks = significant(sql);
    toks.iter().enumerate().any(|(i, t)| {
        matches!(t.kind, Kind::Word | Kind::QuotedIdent)
            && same_name(&unquote(t.text(sql)), column)
            && !(t.kind == Kind::Word && toks.get(i + 1).is_some_and(|n| n.kind == Kind::LParen))
    })
}

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

/// Why replaying the schema into a replica failed.
#[derive(Debug)]
pub struct ReplayError {
    pub object: String,
    pub source: rusqlite::Error,
}

/// An in-memory database with the same schema as `conn` (no rows), foreign keys off.
pub fn replica(conn: &Connection) -> Result<Connection, ReplayError> {
    let at = |object: &str| {
        let object = object.to_string();
        move |source| ReplayError { object, source }
    };
    let schema = Schema::read(conn).map_err(at("sqlite_schema"))?;
    let out = crate::db::scratch().map_err(at("an in-memory database"))?;
    for o in &schema.objects {
        let Some(sql) = &o.sql else { continue };
        if o.name.to_ascii_lowercase().starts_with("sqlite_") || schema.is_shadow(&o.name) {
            continue;
        }
        out.execute_batch(sql)
            .map_err(at(&format!("{} {}", o.kind, quote_ident(&o.name))))?;
    }
    Ok(out)
}

/// The schema in a form that ignores layout, quoting and order: (type, lower-cased name,
/// normalised SQL), sorted.
pub fn normalized(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let schema = Schema::read(conn)?;
    let mut out: Vec<_> = schema
        .objects
        .iter()
        .filter(|o| !o.name.to_ascii_lowercase().starts_with("sqlite_stat"))
        .map(|o| {
            (
                o.kind.clone(),
                o.name.to_ascii_lowercase(),
                o.sql
                    .as_deref()
                    .map(super::tokenize::normalize)
                    .unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
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
    fn dependents_follow_views_of_views_and_triggers_elsewhere() {
        let c = db("CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE other(x);
            CREATE INDEX p_name ON p(name);
            CREATE TRIGGER p_own AFTER INSERT ON p BEGIN SELECT 1; END;
            CREATE VIEW v1 AS SELECT * FROM \"P\";
            CREATE VIEW v2 AS SELECT * FROM v1;
            CREATE VIEW unrelated AS SELECT * FROM other;
            CREATE TRIGGER t_other AFTER INSERT ON other BEGIN INSERT INTO p(name) VALUES (new.x); END;
            CREATE TRIGGER v2_instead INSTEAD OF INSERT ON v2 BEGIN SELECT 1; END;");
        let s = Schema::read(&c).unwrap();
        let deps: Vec<_> = s.dependents("p").iter().map(|o| o.name.as_str()).collect();
        assert_eq!(deps, ["v1", "v2", "t_other", "v2_instead"]);
        let own: Vec<_> = s.owned_by("P").iter().map(|o| o.name.as_str()).collect();
        assert_eq!(own, ["p_name", "p_own"]);
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
    fn replica_has_the_schema_and_no_rows_even_with_fts5() {
        let c = db("CREATE TABLE p(id INTEGER PRIMARY KEY, body TEXT);
            INSERT INTO p VALUES (1, 'x');
            CREATE VIRTUAL TABLE f USING fts5(body, content='p', content_rowid='id');
            CREATE VIEW v AS SELECT * FROM p;");
        let r = replica(&c).unwrap();
        assert_eq!(normalized(&r).unwrap(), normalized(&c).unwrap());
        let n: i64 = r
            .query_row("SELECT count(*) FROM p", [], |x| x.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let s = Schema::read(&c).unwrap();
        assert!(s.is_virtual("F") && s.is_shadow("f_data") && !s.is_shadow("p"));
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
