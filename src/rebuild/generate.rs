//! Generate the up and down SQL of a rebuild from a connection holding the schema, and prove them
//! on an in-memory replica of that schema before returning them: up, then down, must give back the
//! original schema.
//!
//! The SQL follows SQLite's documented order (lang_altertable.html, "Making Other Kinds Of Table
//! Schema Changes"): guard → create the new table under a free temporary name → copy rows with
//! explicit column lists (generated columns left out, rowids kept, the AUTOINCREMENT counter kept)
//! → drop the views and triggers elsewhere that name the table, then the table → rename the new
//! table → recreate indexes, triggers and views verbatim, in creation order → column renames.
//! The old table is never renamed (that would rewrite the children's foreign keys).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::edit::{self, affinity, Context};
use super::schema::{self, fingerprint, rowid_alias, sha256_hex};
use super::spec::RebuildSpec;
use super::RebuildError;
use crate::db::{Ending, WriteSession};
use crate::schema::ddl::{
    parse_create_table, ColumnConstraintKind, CreateTable, TableConstraintKind,
};
use crate::schema::{Model, Object, Schema};
use crate::sql::{quote_ident, quote_str, same_name};

/// Options for [`generate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerateOptions {
    /// Write a down even when the up loses data (the down is marked `-- dbtool:lossy`).
    pub allow_lossy: bool,
    /// Skip the down (for `dbtool rebuild`, which applies the up directly).
    pub up_only: bool,
}

/// A generated rebuild.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generated {
    pub table: String,
    pub up: String,
    /// Empty when generated with `up_only`.
    pub down: String,
    /// One line per change.
    pub summary: Vec<String>,
    /// What the down cannot restore (empty when the up loses nothing).
    pub lossy: Vec<String>,
}

/// Everything one direction of a rebuild does; rendered by [`render`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub table: String,
    pub temp: String,
    /// `CREATE TABLE <temp> …`.
    pub create: String,
    /// (target column, source expression).
    pub copy: Vec<(String, String)>,
    /// Name of the rowid to copy explicitly (tables without INTEGER PRIMARY KEY).
    pub rowid: Option<&'static str>,
    pub autoincrement: bool,
    /// Views and triggers on other objects that name the table: (type, name), dropped in reverse
    /// creation order.
    pub dependents: Vec<(String, String)>,
    /// SQL of the indexes, triggers and views to recreate, in creation order.
    pub recreate: Vec<String>,
    pub renames: Vec<(String, String)>,
    /// Column renames (current, original) run right after the guard (downs of renaming ups).
    pub undo_renames: Vec<(String, String)>,
    /// Fingerprint text the guard expects (see [`schema::fingerprint_sql`]).
    pub fingerprint: String,
    pub summary: Vec<String>,
    pub lossy: Vec<String>,
    pub direction: &'static str,
}

/// Generate the rebuild `spec` against the schema in `conn`.
pub fn generate(
    conn: &Connection,
    spec: &RebuildSpec,
    opts: GenerateOptions,
) -> Result<Generated, RebuildError> {
    let schema =
        Schema::read(conn).map_err(RebuildError::sqlite(&spec.table, "reading the schema"))?;
    let (obj, parsed) = rebuildable(conn, &schema, &spec.table)?;
    let table = obj.name.clone();
    let src = obj.sql.clone().unwrap_or_default();
    if let Some((view, source)) = schema::broken_view(conn, &schema) {
        return Err(RebuildError::BrokenSchema {
            table,
            object: format!("view {view}"),
            source,
        });
    }
    let children = schema::child_keys(conn, &schema, &table).map_err(RebuildError::sqlite(
        &table,
        "reading foreign keys that point at the table",
    ))?;
    let edited = edit::apply(
        &src,
        &parsed,
        spec,
        &Context {
            conn,
            schema: &schema,
            children: &children,
        },
    )?;
    if !edited.lossy.is_empty() && !opts.allow_lossy && !opts.up_only {
        return Err(RebuildError::LossyDown {
            table,
            reasons: edited.lossy,
        });
    }
    let new_src = rename_in(&edited.ddl, &parsed, &table);
    let new_parsed = parse_create_table(&new_src).map_err(|e| RebuildError::Parse {
        table: table.clone(),
        reason: format!("the edited statement does not parse ({e}): {new_src}"),
    })?;
    let up = plan(
        conn,
        &schema,
        (&src, &parsed),
        (&new_src, &new_parsed),
        edited.copy.clone(),
        edited.renames.clone(),
        edited.summary.clone(),
        Vec::new(),
        "up",
    )?;
    let up_sql = render(&up);

    // Try it on a replica: up, checks, and (for the down) back again.
    let sim = |step: &str| {
        let table = table.clone();
        let step = step.to_string();
        move |source| RebuildError::Simulation {
            table,
            step,
            source,
        }
    };
    let replica = crate::schema::replica(conn).map_err(|e| RebuildError::Simulation {
        table: table.clone(),
        step: format!("replaying {}", e.object),
        source: e.source,
    })?;
    run_on_replica(&replica, &up_sql, &table, "the up migration")?;
    if opts.up_only {
        return Ok(Generated {
            table,
            up: up_sql,
            down: String::new(),
            summary: edited.summary,
            lossy: edited.lossy,
        });
    }

    let after = Schema::read(&replica).map_err(sim("reading the schema after the up"))?;
    let after_obj =
        after
            .find("table", &table)
            .cloned()
            .ok_or_else(|| RebuildError::RoundTrip {
                table: table.clone(),
                detail: "the table is gone after the up".into(),
            })?;
    let after_src = after_obj.sql.clone().unwrap_or_default();
    let after_parsed = parse_create_table(&after_src).map_err(|e| RebuildError::Parse {
        table: table.clone(),
        reason: format!("{e} in the table after the up: {after_src}"),
    })?;
    // The down copies every original column from its (possibly renamed) column in the rebuilt
    // table; a dropped column gets its default, or a zero value when NOT NULL without default.
    let mut copy = Vec::new();
    for c in parsed.columns.iter().filter(|c| !c.generated()) {
        let now = edited
            .renames
            .iter()
            .find(|(from, _)| same_name(from, &c.name))
            .map_or(c.name.as_str(), |(_, to)| to.as_str());
        if after_parsed.column(now).is_some() {
            // The down renames columns back first, so the copy reads the original names.
            copy.push((c.name.clone(), quote_ident(&c.name)));
        } else if c.has(|k| *k == ColumnConstraintKind::NotNull)
            && !c.has(|k| matches!(k, ColumnConstraintKind::Default { .. }))
        {
            let zero = match affinity(c.type_text(&src)) {
                "TEXT" => "''",
                "BLOB" => "X''",
                _ => "0",
            };
            copy.push((c.name.clone(), zero.to_string()));
        }
    }
    let down_src = src.clone();
    let down = plan(
        &replica,
        &after,
        (&after_src, &after_parsed),
        (&down_src, &parsed),
        copy,
        Vec::new(),
        edited
            .summary
            .iter()
            .map(|s| format!("undo: {s}"))
            .collect(),
        edited.lossy.clone(),
        "down",
    )?;
    let down = Plan {
        // Recreate the original objects verbatim, not the renamed ones of the replica.
        recreate: recreate_sql(&schema, &table),
        // Renames are undone by RENAME COLUMN (which also fixes children's foreign keys), first.
        undo_renames: edited
            .renames
            .iter()
            .map(|(from, to)| (to.clone(), from.clone()))
            .collect(),
        ..down
    };
    let down_sql = render(&down);
    run_on_replica(&replica, &down_sql, &table, "the down migration")?;
    let want = Model::read(conn).map_err(sim("reading the original schema"))?;
    let got = Model::read(&replica).map_err(sim("reading the schema after up and down"))?;
    let diff = want.diff(&got, "the original schema", "after up and down");
    if !diff.is_empty() {
        let detail = diff.lines().join("\n");
        return Err(RebuildError::RoundTrip { table, detail });
    }
    Ok(Generated {
        table,
        up: up_sql,
        down: down_sql,
        summary: edited.summary,
        lossy: edited.lossy,
    })
}

/// The up SQL of a rebuild of `table` (in `conn`) into the table `target_sql` declares (its name
/// is replaced by the table's), copying `copy` (target column, source expression). Used by
/// `autogen`, which proves the whole migration itself; indexes, triggers and views that name the
/// table are recreated verbatim, as in [`generate`].
pub fn rebuild_to(
    conn: &Connection,
    table: &str,
    target_sql: &str,
    copy: Vec<(String, String)>,
    summary: Vec<String>,
) -> Result<String, RebuildError> {
    let schema = Schema::read(conn).map_err(RebuildError::sqlite(table, "reading the schema"))?;
    let (obj, parsed) = rebuildable(conn, &schema, table)?;
    let src = obj.sql.clone().unwrap_or_default();
    let parse = |sql: &str| {
        parse_create_table(sql).map_err(|e| RebuildError::Parse {
            table: table.to_string(),
            reason: format!("{e} in the declared table: {sql}"),
        })
    };
    let target = parse(target_sql)?;
    let new_src = rename_in(target_sql, &target, &obj.name);
    let new_parsed = parse(&new_src)?;
    let p = plan(
        conn,
        &schema,
        (&src, &parsed),
        (&new_src, &new_parsed),
        copy,
        Vec::new(),
        summary,
        Vec::new(),
        "up",
    )?;
    Ok(render(&p))
}

/// The table `name` and its parsed DDL, or why it cannot be rebuilt.
pub fn rebuildable<'s>(
    conn: &Connection,
    schema: &'s Schema,
    name: &str,
) -> Result<(&'s Object, CreateTable), RebuildError> {
    let unsupported = |reason: &str| RebuildError::Unsupported {
        table: name.to_string(),
        reason: reason.to_string(),
    };
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(unsupported("it is one of SQLite's internal tables"));
    }
    let Some(obj) = schema.find("table", name) else {
        if schema.find("view", name).is_some() {
            return Err(unsupported(
                "it is a view; change the view with DROP VIEW and CREATE VIEW",
            ));
        }
        return Err(RebuildError::TableNotFound {
            table: name.to_string(),
        });
    };
    if schema.is_virtual(&obj.name) {
        return Err(unsupported(
            "it is a virtual table (FTS5, R*Tree, …); recreate it with its module's own tools",
        ));
    }
    if schema.is_shadow(&obj.name) {
        return Err(unsupported(
            "it is a shadow table that belongs to a virtual table",
        ));
    }
    let src = obj.sql.as_deref().unwrap_or_default();
    let parsed = parse_create_table(src).map_err(|e| RebuildError::Parse {
        table: obj.name.clone(),
        reason: e.to_string(),
    })?;
    let info = schema::xinfo(conn, &obj.name).map_err(RebuildError::sqlite(
        &obj.name,
        "reading PRAGMA table_xinfo",
    ))?;
    let from_ddl: Vec<&str> = parsed.columns.iter().map(|c| c.name.as_str()).collect();
    let from_pragma: Vec<&str> = info.iter().map(|c| c.0.as_str()).collect();
    let generated_ok = parsed
        .columns
        .iter()
        .zip(&info)
        .all(|(c, i)| c.generated() == (i.2 == 2 || i.2 == 3));
    if from_ddl.len() != from_pragma.len()
        || !from_ddl
            .iter()
            .zip(&from_pragma)
            .all(|(a, b)| same_name(a, b))
        || !generated_ok
    {
        return Err(RebuildError::Parse {
            table: obj.name.clone(),
            reason: format!(
                "columns read from the DDL ({}) differ from PRAGMA table_xinfo ({})",
                from_ddl.join(", "),
                from_pragma.join(", ")
            ),
        });
    }
    Ok((obj, parsed))
}

/// `src` with the table name replaced by `name` (quoted).
fn rename_in(src: &str, parsed: &CreateTable, name: &str) -> String {
    format!(
        "{}{}{}",
        &src[..parsed.name_span.start],
        quote_ident(name),
        &src[parsed.name_span.end..]
    )
}

/// A temporary name no object in `schema` uses.
fn free_name(schema: &Schema, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while schema.name_taken(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// Whether the table has a column that is an alias of the rowid (INTEGER PRIMARY KEY, not DESC
/// on the column itself, in a rowid table).
fn has_rowid_alias(src: &str, t: &CreateTable) -> bool {
    if t.without_rowid {
        return false;
    }
    let is_integer =
        |c: &crate::schema::ddl::Column| c.type_text(src).eq_ignore_ascii_case("INTEGER");
    for c in &t.columns {
        for k in &c.constraints {
            if let ColumnConstraintKind::PrimaryKey { desc, .. } = k.kind {
                return is_integer(c) && !desc;
            }
        }
    }
    for k in &t.constraints {
        if let TableConstraintKind::PrimaryKey { columns } = &k.kind {
            return columns.len() == 1 && t.column(&columns[0]).is_some_and(|(_, c)| is_integer(c));
        }
    }
    false
}

fn has_autoincrement(t: &CreateTable) -> bool {
    t.columns.iter().any(|c| {
        c.has(|k| {
            matches!(
                k,
                ColumnConstraintKind::PrimaryKey {
                    autoincrement: true,
                    ..
                }
            )
        })
    })
}

/// Indexes and triggers of `table` and the objects elsewhere that depend on it: their SQL in
/// creation order.
fn recreate_sql(schema: &Schema, table: &str) -> Vec<String> {
    let own = schema.owned_by(table);
    let deps = schema.dependents(table);
    schema
        .objects
        .iter()
        .filter(|o| own.contains(o) || deps.contains(o))
        .filter_map(|o| o.sql.clone())
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn plan(
    conn: &Connection,
    schema: &Schema,
    (old_src, old): (&str, &CreateTable),
    (new_src, new): (&str, &CreateTable),
    copy: Vec<(String, String)>,
    renames: Vec<(String, String)>,
    summary: Vec<String>,
    lossy: Vec<String>,
    direction: &'static str,
) -> Result<Plan, RebuildError> {
    let table = schema
        .find("table", &old.name)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| old.name.clone());
    let temp = free_name(schema, &format!("_dbtool_new_{table}"));
    let rowid = if !old.without_rowid
        && !new.without_rowid
        && !has_rowid_alias(old_src, old)
        && !has_rowid_alias(new_src, new)
    {
        let names: Vec<String> = old.columns.iter().map(|c| c.name.clone()).collect();
        Some(rowid_alias(&names).ok_or_else(|| RebuildError::Unsupported {
            table: table.clone(),
            reason: "its rowid is hidden by columns named rowid, _rowid_ and oid, so it cannot be kept".into(),
        })?)
    } else {
        None
    };
    let deps = schema.dependents(&table);
    let dep_names: Vec<String> = deps.iter().map(|o| o.name.clone()).collect();
    let fingerprint = fingerprint(conn, &table, &dep_names).map_err(RebuildError::sqlite(
        &table,
        "reading the table's schema fingerprint",
    ))?;
    Ok(Plan {
        // Qualified, so a TEMP table of the same name on the connection cannot take the rows.
        create: format!(
            "{}main.{}{}",
            &new_src[..new.name_span.start],
            quote_ident(&temp),
            &new_src[new.name_span.end..]
        ),
        temp,
        copy,
        rowid,
        autoincrement: has_autoincrement(new),
        dependents: deps
            .iter()
            .rev()
            .map(|o| (o.kind.clone(), o.name.clone()))
            .collect(),
        recreate: recreate_sql(schema, &table),
        renames,
        undo_renames: Vec::new(),
        fingerprint,
        summary,
        lossy,
        direction,
        table,
    })
}

/// The first line of a generated file: `-- dbtool:rebuild table="t" temp="_dbtool_new_t" sha256=…`.
pub fn header_line(p: &Plan) -> String {
    format!(
        "-- dbtool:rebuild table={} temp={} sha256={} direction={}",
        quote_ident(&p.table),
        quote_ident(&p.temp),
        sha256_hex(&p.fingerprint),
        p.direction
    )
}

/// Render a plan as a reviewable SQL file (no BEGIN/COMMIT: the runner owns the transaction).
pub fn render(p: &Plan) -> String {
    let t = quote_ident(&p.table);
    let tmp = quote_ident(&p.temp);
    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    line(&header_line(p));
    for l in &p.lossy {
        line(&format!("-- dbtool:lossy {l}"));
    }
    line(&format!(
        "-- Rebuild of table {t} ({}), generated by dbtool with SQLite's 12-step procedure",
        p.direction
    ));
    line("-- (https://www.sqlite.org/lang_altertable.html#otheralter). Changes:");
    for c in &p.summary {
        line(&format!("--   * {c}"));
    }
    if !p.lossy.is_empty() {
        line(
            "-- LOSSY: this direction cannot bring back what the lines `dbtool:lossy` above name.",
        );
    }
    line("-- Run it with `dbtool upgrade`/`downgrade`: foreign keys off before the transaction, then");
    line(
        "-- foreign_key_check, every view compiled and integrity_check of the table before COMMIT.",
    );
    line("");
    line("-- 1. Guard: abort before any change when foreign keys are ON (DROP TABLE would cascade");
    line("--    to child rows) or when the table or its dependents changed since generation.");
    line("CREATE TEMP TABLE \"_dbtool_guard\" (");
    line("  \"foreign_keys_off\" INTEGER CONSTRAINT \"dbtool: run this with foreign keys OFF set before the transaction (dbtool upgrade does)\" CHECK (\"foreign_keys_off\"),");
    line(&format!(
        "  \"table_unchanged\" INTEGER CONSTRAINT {} CHECK (\"table_unchanged\")",
        quote_ident(&format!(
            "dbtool: table {} changed since this rebuild was generated; regenerate it",
            p.table
        ))
    ));
    line(");");
    line("INSERT INTO temp.\"_dbtool_guard\" VALUES (");
    line("  (SELECT foreign_keys = 0 FROM pragma_foreign_keys),");
    line(&format!(
        "  {} IS {}",
        schema::fingerprint_sql(&p.table, &dependent_names(p)),
        quote_str(&p.fingerprint)
    ));
    line(");");
    line("DROP TABLE temp.\"_dbtool_guard\";");
    line("");
    if !p.undo_renames.is_empty() {
        line("-- 1b. Rename columns back first: SQLite carries the names into indexes, triggers,");
        line("--     views and the foreign keys of other tables.");
        for (from, to) in &p.undo_renames {
            line(&format!(
                "ALTER TABLE main.{t} RENAME COLUMN {} TO {};",
                quote_ident(from),
                quote_ident(to)
            ));
        }
        line("");
    }
    line("-- 2. The new table, under a temporary name.");
    line(&format!("{};", p.create));
    line("");
    line("-- 3. Copy every row: explicit columns, no CAST, generated columns recomputed.");
    let mut targets: Vec<String> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    if let Some(r) = p.rowid {
        targets.push(r.to_string());
        sources.push(r.to_string());
    }
    for (target, source) in &p.copy {
        targets.push(quote_ident(target));
        sources.push(source.clone());
    }
    line(&format!(
        "INSERT INTO main.{tmp} ({}) SELECT {} FROM main.{t};",
        targets.join(", "),
        sources.join(", ")
    ));
    if p.autoincrement {
        line("-- Keep the AUTOINCREMENT counter (ids of deleted rows are not reused).");
        line(&format!(
            "DELETE FROM sqlite_sequence WHERE name = {};",
            quote_str(&p.temp)
        ));
        line(&format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {}, seq FROM sqlite_sequence WHERE name = {};",
            quote_str(&p.temp),
            quote_str(&p.table)
        ));
    }
    line("");
    line("-- 4. Drop what names the table elsewhere (recreated in step 6), then the table itself.");
    for (kind, name) in &p.dependents {
        line(&format!(
            "DROP {} main.{};",
            kind.to_ascii_uppercase(),
            quote_ident(name)
        ));
    }
    line(&format!("DROP TABLE main.{t};"));
    line("");
    line("-- 5. The new table takes the name.");
    line(&format!("ALTER TABLE main.{tmp} RENAME TO {t};"));
    if !p.recreate.is_empty() {
        line("");
        line("-- 6. Indexes, triggers and views, verbatim.");
        for sql in &p.recreate {
            line(&format!("{sql};"));
        }
    }
    if !p.renames.is_empty() {
        line("");
        line("-- 7. Column renames: SQLite carries them into indexes, triggers, views and foreign keys.");
        for (from, to) in &p.renames {
            line(&format!(
                "ALTER TABLE main.{t} RENAME COLUMN {} TO {};",
                quote_ident(from),
                quote_ident(to)
            ));
        }
    }
    s
}

fn dependent_names(p: &Plan) -> Vec<String> {
    let mut names: Vec<String> = p.dependents.iter().map(|(_, n)| n.clone()).collect();
    names.reverse();
    names
}

/// Run a generated file on a replica the way the runner does: through the write path (foreign
/// keys off, one transaction, no new foreign-key violation), views compiled before commit.
fn run_on_replica(
    replica: &Connection,
    sql: &str,
    table: &str,
    step: &str,
) -> Result<(), RebuildError> {
    let sim = |source| RebuildError::Simulation {
        table: table.to_string(),
        step: step.to_string(),
        source,
    };
    let mut session = WriteSession::new(replica, Path::new(":memory:"), Duration::ZERO)?;
    let ((), ()) = session.transaction(
        &format!("the {step} of the rebuild of {table}"),
        Ending::Commit,
        |_| Ok(()),
        |conn, ()| {
            conn.execute_batch(sql).map_err(sim)?;
            let s = Schema::read(conn).map_err(sim)?;
            // A view that stops compiling uses something the change removes: name it.
            if let Some((view, source)) = schema::broken_view(conn, &s) {
                return Err(RebuildError::ViewBroken {
                    table: table.to_string(),
                    view,
                    source,
                });
            }
            Ok(())
        },
    )?;
    Ok(session.finish()?)
}
