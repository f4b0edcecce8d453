//! From one schema to another: the SQL, generated step by step on a scratch database that holds
//! the current state, so every statement (and every rebuild's guard fingerprint) is generated
//! against exactly the schema it will run on.
//!
//! Order: table renames → column renames → drop the indexes, triggers and views that differ or
//! go → create new tables → change tables (`ALTER TABLE ADD/DROP COLUMN` when SQLite does the
//! change fully, tried on the scratch database and kept only when the table then means what is
//! declared; otherwise one rebuild per table) → drop tables → create the indexes, triggers and
//! views that are missing, in declared order. At the end the scratch database must have the
//! target schema (same model), or nothing is returned.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use super::AutogenError;
use crate::rebuild::edit::affinity;
use crate::rebuild::generate::rebuild_to;
use crate::schema::ddl::{parse_create_table, ColumnConstraintKind};
use crate::schema::model::{is_internal, table_shape};
use crate::schema::{Model, Object, Schema};
use crate::sql::{quote_ident, same_name};

/// What to do beyond the plain difference.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// (old, new) table names.
    pub table_renames: Vec<(String, String)>,
    /// (table as named after the table renames, old column, new column).
    pub column_renames: Vec<(String, String, String)>,
    /// (table, column) lower-cased → SQL expression for the existing rows.
    pub fills: BTreeMap<(String, String), String>,
    pub allow_drop: bool,
    /// Tables (lower-cased) to rebuild rather than ALTER: in a down, those the up rebuilt, so
    /// the down gives back the table's exact text (the guard of a rebuild compares it).
    pub force_rebuild: std::collections::BTreeSet<String>,
    /// Generating a down: drops are lossy rather than refused, a re-added NOT NULL column gets a
    /// zero value, renames are not questioned.
    pub down: bool,
}

/// One change, for `diff --json` and the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeItem {
    /// `add-table`, `drop-table`, `rename-table`, `rename-column`, `add-column`, `drop-column`,
    /// `rebuild-table`, `create-index`, `drop-index`, … .
    pub change: String,
    pub object: String,
    /// `alter`, `rebuild`, `create` or `drop`: how SQLite is told.
    pub how: String,
}

/// The generated SQL of one direction.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Direction {
    pub sql: String,
    pub changes: Vec<ChangeItem>,
    /// What running this direction loses (the `-- dbtool:lossy` lines of a down).
    pub lossy: Vec<String>,
}

struct Work<'a> {
    conn: &'a Connection,
    out: Direction,
}

impl Work<'_> {
    fn exec(&mut self, comment: &str, sql: &str) -> Result<(), AutogenError> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| AutogenError::Step {
                step: first_line(sql),
                source: Box::new(e),
            })?;
        self.record(comment, sql);
        Ok(())
    }

    /// Add SQL already run on the scratch database to the output.
    fn record(&mut self, comment: &str, sql: &str) {
        if !comment.is_empty() {
            self.out.sql.push_str(&format!("-- {comment}\n"));
        }
        self.out.sql.push_str(sql.trim_end());
        if !sql.trim_end().ends_with(';') {
            self.out.sql.push(';');
        }
        self.out.sql.push_str("\n\n");
    }

    fn change(&mut self, change: &str, object: String, how: &str) {
        self.out.changes.push(ChangeItem {
            change: change.into(),
            object,
            how: how.into(),
        });
    }
}

fn first_line(sql: &str) -> String {
    sql.lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn read(conn: &Connection) -> Result<Schema, AutogenError> {
    Schema::read(conn).map_err(|e| AutogenError::Step {
        step: "reading the schema".into(),
        source: Box::new(e),
    })
}

fn user<'s>(schema: &'s Schema, kind: &'s str) -> impl Iterator<Item = &'s Object> + 's {
    schema.objects.iter().filter(move |o| {
        o.kind == kind && o.sql.is_some() && !is_internal(&o.name) && !schema.is_shadow(&o.name)
    })
}

fn sql_of(o: &Object) -> &str {
    o.sql.as_deref().unwrap_or_default()
}

/// Take `work` to the schema of `target`; returns the SQL that did it.
pub fn transform(
    work: &Connection,
    target: &Connection,
    spec: &Spec,
) -> Result<Direction, AutogenError> {
    let tgt = read(target)?;
    let tgt_model = Model::new(&tgt);
    let mut w = Work {
        conn: work,
        out: Direction::default(),
    };

    // 1. Renames, declared only.
    for (from, to) in &spec.table_renames {
        let now = read(work)?;
        let bad = |reason: &str| AutogenError::InvalidFlag {
            arg: format!("--rename {from}={to}"),
            reason: reason.to_string(),
        };
        if now.find("table", from).is_none() {
            return Err(bad(&format!("there is no table {from} to rename")));
        }
        if tgt.find("table", to).is_none() {
            return Err(bad(&format!("the declared schema has no table {to}")));
        }
        if now.find("table", to).is_some() {
            return Err(bad(&format!("table {to} already exists")));
        }
        w.exec(
            &format!("rename table {from} to {to}"),
            &format!(
                "ALTER TABLE main.{} RENAME TO {}",
                quote_ident(from),
                quote_ident(to)
            ),
        )?;
        w.change("rename-table", format!("{from} -> {to}"), "alter");
    }
    for (table, from, to) in &spec.column_renames {
        let bad = |reason: &str| AutogenError::InvalidFlag {
            arg: format!("--rename {table}.{from}={to}"),
            reason: reason.to_string(),
        };
        let now = read(work)?;
        let Some(cur) = now.find("table", table) else {
            return Err(bad(&format!("there is no table {table}")));
        };
        let cols = parse_create_table(sql_of(cur))
            .map(|t| t.columns)
            .unwrap_or_default();
        if !cols.iter().any(|c| same_name(&c.name, from)) {
            return Err(bad(&format!("table {table} has no column {from}")));
        }
        let declared_has = tgt
            .find("table", table)
            .and_then(|t| parse_create_table(sql_of(t)).ok())
            .is_some_and(|t| t.column(to).is_some());
        if !declared_has {
            return Err(bad(&format!(
                "the declared table {table} has no column {to}"
            )));
        }
        w.exec(
            &format!("rename column {table}.{from} to {to}"),
            &format!(
                "ALTER TABLE main.{} RENAME COLUMN {} TO {}",
                quote_ident(table),
                quote_ident(from),
                quote_ident(to)
            ),
        )?;
        w.change("rename-column", format!("{table}.{from} -> {to}"), "alter");
    }

    let now = read(work)?;
    if !spec.down {
        ambiguities(&now, &tgt)?;
    }

    // 2. Indexes, triggers and views that differ or go: dropped now, created at the end.
    let now_model = Model::new(&now);
    for kind in ["trigger", "view", "index"] {
        let mut objects: Vec<&Object> = user(&now, kind).collect();
        objects.reverse(); // a view before the views it is built on
        for o in objects {
            let keep = match (now_model.find(kind, &o.name), tgt_model.find(kind, &o.name)) {
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            };
            if !keep {
                w.exec(
                    "",
                    &format!(
                        "DROP {} main.{}",
                        kind.to_ascii_uppercase(),
                        quote_ident(&o.name)
                    ),
                )?;
                if tgt_model.find(kind, &o.name).is_none() {
                    w.change(&format!("drop-{kind}"), o.name.clone(), "drop");
                }
            }
        }
    }

    // 3. New tables, in declared order.
    for t in user(&tgt, "table") {
        if now.find("table", &t.name).is_none() {
            w.exec(&format!("new table {}", t.name), sql_of(t))?;
            w.change("add-table", t.name.clone(), "create");
            if spec.down {
                w.out.lossy.push(format!(
                    "table {} (dropped by the up) comes back empty",
                    t.name
                ));
            }
        }
    }

    // 4. Changed tables.
    let mut lost: Vec<String> = Vec::new();
    let mut needs_fill: Vec<String> = Vec::new();
    // Changing one table never rewrites another's text (a rebuild never renames the old table),
    // so one read serves the whole loop.
    let now = read(work)?;
    for t in user(&tgt, "table") {
        let Some(cur) = now.find("table", &t.name) else {
            continue;
        };
        let (cur_sql, tgt_sql) = (sql_of(cur), sql_of(t));
        if cur_sql == tgt_sql {
            continue;
        }
        let differs = match (table_shape(cur_sql), table_shape(tgt_sql)) {
            (Some(a), Some(b)) => a != b,
            _ => canonical_differs(cur_sql, tgt_sql),
        };
        if differs {
            change_table(
                &mut w,
                &cur.name,
                cur_sql,
                tgt_sql,
                spec,
                &mut lost,
                &mut needs_fill,
            )?;
        }
    }

    // 5. Tables that go.
    let now = read(work)?;
    for t in user(&now, "table") {
        if tgt.find("table", &t.name).is_none() {
            if spec.down {
                w.out
                    .lossy
                    .push(format!("table {} (created by the up) and its rows", t.name));
            } else if !spec.allow_drop {
                lost.push(format!("table {} and its rows", t.name));
            }
            w.exec(
                &format!("drop table {}", t.name),
                &format!("DROP TABLE main.{}", quote_ident(&t.name)),
            )?;
            w.change("drop-table", t.name.clone(), "drop");
        }
    }
    if !needs_fill.is_empty() {
        return Err(AutogenError::NeedsFill {
            columns: needs_fill,
        });
    }
    if !lost.is_empty() {
        return Err(AutogenError::WouldDrop { lost });
    }

    // 6. Indexes, triggers and views that are missing, in declared order.
    let now = read(work)?;
    let now_model = Model::new(&now);
    for o in tgt.objects.iter().filter(|o| {
        matches!(o.kind.as_str(), "index" | "trigger" | "view")
            && o.sql.is_some()
            && !is_internal(&o.name)
    }) {
        let there = now_model.find(&o.kind, &o.name);
        let wanted = tgt_model.find(&o.kind, &o.name);
        match (there, wanted) {
            (Some(a), Some(b)) if a.same_as(b) => continue,
            (Some(_), _) => w.exec(
                "",
                &format!(
                    "DROP {} main.{}",
                    o.kind.to_ascii_uppercase(),
                    quote_ident(&o.name)
                ),
            )?,
            _ => {}
        }
        w.exec("", sql_of(o))?;
        w.change(&format!("create-{}", o.kind), o.name.clone(), "create");
    }

    let reached = Model::read(work).map_err(|e| AutogenError::Step {
        step: "reading the result".into(),
        source: Box::new(e),
    })?;
    let diff = tgt_model.diff(&reached, "the declared schema", "after the generated SQL");
    if !diff.is_empty() {
        return Err(AutogenError::Unreachable { diff: diff.lines() });
    }
    Ok(w.out)
}

fn canonical_differs(a: &str, b: &str) -> bool {
    crate::schema::model::canonical(a) != crate::schema::model::canonical(b)
}

/// A dropped and an added column of the same table (or a dropped and an added table) with the
/// same definition: the user must say whether it is a rename.
fn ambiguities(now: &Schema, tgt: &Schema) -> Result<(), AutogenError> {
    let gone: Vec<&Object> = user(now, "table")
        .filter(|t| tgt.find("table", &t.name).is_none())
        .collect();
    let new: Vec<&Object> = user(tgt, "table")
        .filter(|t| now.find("table", &t.name).is_none())
        .collect();
    for g in &gone {
        for n in &new {
            let (a, b) = (table_shape(sql_of(g)), table_shape(sql_of(n)));
            if a.is_some() && a == b {
                return Err(AutogenError::AmbiguousRename {
                    what: format!(
                        "table {} goes and table {} comes with the same columns: a rename, or a drop and a new table?",
                        g.name, n.name
                    ),
                    readings: vec![
                        format!("--rename {}={}", g.name, n.name),
                        format!("--allow-drop (drop {} and create {})", g.name, n.name),
                    ],
                });
            }
        }
    }
    for t in user(tgt, "table") {
        let Some(cur) = now.find("table", &t.name) else {
            continue;
        };
        let (Some(a), Some(b)) = (table_shape(sql_of(cur)), table_shape(sql_of(t))) else {
            continue;
        };
        for (old, def) in a
            .columns
            .iter()
            .filter(|(c, _)| !b.columns.contains_key(*c))
        {
            if let Some((new, _)) = b
                .columns
                .iter()
                .find(|(c, d)| !a.columns.contains_key(*c) && *d == def)
            {
                let (old, new) = (display_col(cur, old), display_col(t, new));
                return Err(AutogenError::AmbiguousRename {
                    what: format!(
                        "column {}.{old} goes and {}.{new} comes with the same definition: a rename, or a drop and a new column?",
                        t.name, t.name
                    ),
                    readings: vec![
                        format!("--rename {}.{old}={new}", t.name),
                        format!("--allow-drop (drop {old}, add {new} empty)"),
                    ],
                });
            }
        }
    }
    Ok(())
}

/// The column's name as declared (the shape keys are lower-cased).
fn display_col(table: &Object, lower: &str) -> String {
    parse_create_table(sql_of(table))
        .ok()
        .and_then(|t| t.column(lower).map(|(_, c)| c.name.clone()))
        .unwrap_or_else(|| lower.to_string())
}

/// Change one table: ALTER TABLE when that alone gives the declared table, else a rebuild.
fn change_table(
    w: &mut Work<'_>,
    name: &str,
    cur_sql: &str,
    tgt_sql: &str,
    spec: &Spec,
    lost: &mut Vec<String>,
    needs_fill: &mut Vec<String>,
) -> Result<(), AutogenError> {
    let (Ok(cur), Ok(tgt)) = (parse_create_table(cur_sql), parse_create_table(tgt_sql)) else {
        return rebuild(w, name, cur_sql, tgt_sql, spec, needs_fill);
    };
    let added: Vec<_> = tgt
        .columns
        .iter()
        .filter(|c| cur.column(&c.name).is_none())
        .collect();
    let dropped: Vec<_> = cur
        .columns
        .iter()
        .filter(|c| tgt.column(&c.name).is_none())
        .collect();
    for c in &dropped {
        if spec.down {
            w.out.lossy.push(format!(
                "column {name}.{} (added by the up) and its values",
                c.name
            ));
        } else if !spec.allow_drop {
            lost.push(format!("column {name}.{} and its values", c.name));
        }
    }
    if spec.down {
        for c in &added {
            w.out.lossy.push(format!(
                "column {name}.{} (dropped by the up) comes back without its values",
                c.name
            ));
        }
    }

    // Try ALTER TABLE on the scratch database; keep it only when the table then means exactly
    // what is declared (SQLite refuses what it cannot do fully: PRIMARY KEY/UNIQUE columns,
    // non-constant defaults, NOT NULL without default, STORED generated columns, and dropping a
    // column that an index, view, trigger, constraint or foreign key uses).
    let fill_of = |c: &str| {
        spec.fills
            .get(&(name.to_ascii_lowercase(), c.to_ascii_lowercase()))
            .cloned()
    };
    let try_alter = !spec.force_rebuild.contains(&name.to_ascii_lowercase())
        && added
            .iter()
            .all(|c| fill_of(&c.name).is_none() && addable(c, tgt_sql));
    if try_alter {
        let conn = w.conn;
        let mut stmts: Vec<(String, String)> = Vec::new();
        for c in &added {
            stmts.push((
                format!("add column {name}.{}", c.name),
                format!(
                    "ALTER TABLE main.{} ADD COLUMN {}",
                    quote_ident(name),
                    &tgt_sql[c.span.clone()]
                ),
            ));
        }
        for c in &dropped {
            stmts.push((
                format!("drop column {name}.{}", c.name),
                format!(
                    "ALTER TABLE main.{} DROP COLUMN {}",
                    quote_ident(name),
                    quote_ident(&c.name)
                ),
            ));
        }
        // Every other part of the table must already be as declared: ADD/DROP COLUMN change
        // nothing else. Decided on the shapes, before any (schema-reloading) ALTER is tried.
        let same_rest = match (table_shape(cur_sql), table_shape(tgt_sql)) {
            (Some(a), Some(b)) => {
                a.constraints == b.constraints
                    && a.options == b.options
                    && a.columns
                        .iter()
                        .filter(|(k, _)| b.columns.contains_key(*k))
                        .all(|(k, d)| b.columns.get(k) == Some(d))
            }
            _ => false,
        };
        // Adding is decided from the text; dropping is tried (SQLite refuses a column that an
        // index, view, trigger, constraint or foreign key uses) and kept when it took.
        let rewind = if same_rest {
            crate::db::Rewind::begin(conn).ok()
        } else {
            None
        };
        let ok = rewind.is_some()
            && stmts.iter().all(|(_, s)| conn.execute_batch(s).is_ok())
            && Schema::read(conn)
                .ok()
                .and_then(|s| s.find("table", name).and_then(|o| o.sql.clone()))
                .is_some_and(|sql| {
                    table_shape(&sql).is_some() && table_shape(&sql) == table_shape(tgt_sql)
                });
        if ok {
            if let Some(rewind) = rewind {
                let _ = rewind.keep(conn);
            }
            for (comment, sql) in &stmts {
                w.record(comment, sql);
            }
            for c in &added {
                w.change("add-column", format!("{name}.{}", c.name), "alter");
            }
            for c in &dropped {
                w.change("drop-column", format!("{name}.{}", c.name), "alter");
            }
            return Ok(());
        }
        if let Some(rewind) = rewind {
            let _ = rewind.undo(conn);
        }
    }
    rebuild(w, name, cur_sql, tgt_sql, spec, needs_fill)
}

/// Whether SQLite's `ADD COLUMN` takes the column on a table that has rows
/// (lang_altertable.html): no PRIMARY KEY or UNIQUE, a constant default (not CURRENT_* or a
/// parenthesised expression), a non-NULL default when NOT NULL, not a STORED generated column.
/// An empty scratch table accepts more, so this is decided from the text, not by trying.
fn addable(c: &crate::schema::ddl::Column, src: &str) -> bool {
    let mut default: Option<&str> = None;
    for k in &c.constraints {
        match &k.kind {
            ColumnConstraintKind::PrimaryKey { .. } | ColumnConstraintKind::Unique => return false,
            ColumnConstraintKind::Generated { stored: true, .. } => return false,
            ColumnConstraintKind::Default { value } => default = Some(src[value.clone()].trim()),
            _ => {}
        }
    }
    if let Some(d) = default {
        let upper = d.to_ascii_uppercase();
        if d.starts_with('(') || upper.starts_with("CURRENT_") {
            return false;
        }
    }
    let not_null = c.has(|k| *k == ColumnConstraintKind::NotNull);
    !(not_null && default.is_none_or(|d| d.eq_ignore_ascii_case("NULL")))
}

/// One rebuild of `name` into the declared table.
fn rebuild(
    w: &mut Work<'_>,
    name: &str,
    cur_sql: &str,
    tgt_sql: &str,
    spec: &Spec,
    needs_fill: &mut Vec<String>,
) -> Result<(), AutogenError> {
    let parse = |sql: &str| {
        parse_create_table(sql).map_err(|e| AutogenError::Rebuild {
            table: name.to_string(),
            source: Box::new(crate::rebuild::RebuildError::Parse {
                table: name.to_string(),
                reason: e.to_string(),
            }),
        })
    };
    let (cur, tgt) = (parse(cur_sql)?, parse(tgt_sql)?);
    let mut copy = Vec::new();
    let mut summary = Vec::new();
    let mut missing = false;
    for c in tgt.columns.iter().filter(|c| !c.generated()) {
        let key = (name.to_ascii_lowercase(), c.name.to_ascii_lowercase());
        if cur.column(&c.name).is_some_and(|(_, old)| !old.generated()) {
            copy.push((c.name.clone(), quote_ident(&c.name)));
        } else if let Some(fill) = spec.fills.get(&key) {
            copy.push((c.name.clone(), fill.clone()));
            summary.push(format!("new column {} filled with {fill}", c.name));
        } else if c.has(|k| *k == ColumnConstraintKind::NotNull)
            && !c.has(|k| matches!(k, ColumnConstraintKind::Default { .. }))
        {
            if spec.down {
                let zero = match affinity(c.type_text(tgt_sql)) {
                    "TEXT" => "''",
                    "BLOB" => "X''",
                    _ => "0",
                };
                copy.push((c.name.clone(), zero.to_string()));
            } else {
                needs_fill.push(format!("{name}.{}", c.name));
                missing = true;
            }
        }
    }
    if missing {
        return Ok(());
    }
    summary.insert(0, format!("table {name} as declared"));
    let sql =
        rebuild_to(w.conn, name, tgt_sql, copy, summary).map_err(|e| AutogenError::Rebuild {
            table: name.to_string(),
            source: Box::new(e),
        })?;
    // The file's header directives are the migration's own: drop the rebuild's.
    let body: String = sql
        .lines()
        .filter(|l| !l.starts_with("-- dbtool:"))
        .map(|l| format!("{l}\n"))
        .collect();
    w.exec("", &body)?;
    w.change("rebuild-table", name.to_string(), "rebuild");
    Ok(())
}
