//! The one reader of `sqlite_schema` and the one meaning of "same schema".
//!
//! [`Schema`] is every row of `main.sqlite_schema` in creation (rowid) order, with the virtual
//! and shadow tables named; [`model`] turns it into a normalised model that compares meaning, not
//! spelling, and diffs two of them. `check`, `verify`, `rehearse`, `rebuild` and `autogen` all read
//! and compare schemas through here.
//!
//! Invariants: only the `main` schema is read; objects are kept in creation order, so replaying or
//! recreating them in that order works. Names compare with SQLite's ASCII case-insensitive rule.

pub mod ddl;
pub mod declared;
pub mod model;
#[cfg(feature = "postgres")]
pub mod pg;

use std::collections::BTreeSet;

use rusqlite::Connection;

use crate::sql::{quote_ident, same_name, significant, unquote, Kind};

pub use model::{Change, Model, ObjectChange, SchemaDiff};

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

/// The user objects of `schema` as a declared-schema file: each table followed by its indexes
/// and triggers, views last in dependency order (then the triggers on views), each statement in
/// SQLite's own text; no `sqlite_*` internals, shadow tables or history table.
pub fn dump(schema: &Schema) -> String {
    let user: Vec<&Object> = schema
        .objects
        .iter()
        .filter(|o| o.sql.is_some() && !model::is_internal(&o.name) && !schema.is_shadow(&o.name))
        .collect();
    let sql = |o: &Object| format!("{};\n", o.sql.as_deref().unwrap_or_default().trim_end());
    let is_view = |name: &str| {
        user.iter()
            .any(|v| v.kind == "view" && same_name(&v.name, name))
    };
    // Tables in creation order, except that a table comes after the tables its foreign keys
    // name (parents first), so the file reads top-down.
    let parents = |t: &Object| -> Vec<String> {
        let Ok(parsed) = ddl::parse_create_table(t.sql.as_deref().unwrap_or_default()) else {
            return Vec::new();
        };
        let mut out: Vec<String> = parsed
            .columns
            .iter()
            .flat_map(|c| &c.constraints)
            .filter_map(|k| match &k.kind {
                ddl::ColumnConstraintKind::References(fk) => Some(fk.table.clone()),
                _ => None,
            })
            .collect();
        out.extend(parsed.constraints.iter().filter_map(|k| match &k.kind {
            ddl::TableConstraintKind::ForeignKey { fk, .. } => Some(fk.table.clone()),
            _ => None,
        }));
        out.retain(|p| !same_name(p, &t.name));
        out
    };
    let mut pending: Vec<&Object> = user.iter().copied().filter(|o| o.kind == "table").collect();
    let mut tables: Vec<&Object> = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|t| {
                parents(t)
                    .iter()
                    .all(|p| !pending.iter().any(|o| same_name(&o.name, p)))
            })
            .unwrap_or(0); // a cycle of foreign keys: creation order
        tables.push(pending.remove(ready));
    }
    let mut out = String::new();
    for t in tables {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&sql(t));
        for o in user
            .iter()
            .filter(|o| o.kind == "index" && same_name(&o.tbl_name, &t.name))
        {
            out.push_str(&sql(o));
        }
        for o in user
            .iter()
            .filter(|o| o.kind == "trigger" && same_name(&o.tbl_name, &t.name))
        {
            out.push_str(&sql(o));
        }
    }
    // Views in dependency order: a view comes after the views it names.
    let mut views: Vec<&Object> = user.iter().copied().filter(|o| o.kind == "view").collect();
    while !views.is_empty() {
        let ready = views
            .iter()
            .position(|v| {
                let others: Vec<String> = views
                    .iter()
                    .filter(|o| !same_name(&o.name, &v.name))
                    .map(|o| o.name.clone())
                    .collect();
                !mentions_any(v.sql.as_deref().unwrap_or_default(), &others)
            })
            .unwrap_or(0); // a cycle cannot be created; keep creation order if one appears
        let v = views.remove(ready);
        out.push('\n');
        out.push_str(&sql(v));
    }
    for o in user
        .iter()
        .filter(|o| o.kind == "trigger" && is_view(&o.tbl_name))
    {
        out.push_str(&sql(o));
    }
    out
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
    fn replica_has_the_schema_and_no_rows_even_with_fts5() {
        let c = db("CREATE TABLE p(id INTEGER PRIMARY KEY, body TEXT);
            INSERT INTO p VALUES (1, 'x');
            CREATE VIRTUAL TABLE f USING fts5(body, content='p', content_rowid='id');
            CREATE VIEW v AS SELECT * FROM p;");
        let r = replica(&c).unwrap();
        assert!(Model::read(&r)
            .unwrap()
            .diff(&Model::read(&c).unwrap(), "a", "b")
            .is_empty());
        let n: i64 = r
            .query_row("SELECT count(*) FROM p", [], |x| x.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let s = Schema::read(&c).unwrap();
        assert!(s.is_virtual("F") && s.is_shadow("f_data") && !s.is_shadow("p"));
    }
}
