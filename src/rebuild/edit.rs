//! Apply a [`RebuildSpec`]'s changes to a table's `CREATE TABLE` text: the new DDL, how each new
//! column is filled from the old table, the renames to run at the end, and what a down could not
//! bring back.
//!
//! Invariants: the output DDL is the input with only the changed clauses replaced, removed or
//! appended (every other byte, comments included, is kept); the table keeps its original name here
//! (the caller swaps in the temporary name); copy sources are expressions over the old table with
//! no CAST; renames are not applied to the DDL (SQLite's RENAME COLUMN does it afterwards and
//! carries the new name into indexes, triggers, views and child foreign keys).

use std::ops::Range;

use rusqlite::Connection;

use super::schema::{is_unique_key, ChildKey};
use super::spec::{Change, RebuildSpec};
use super::RebuildError;
use crate::schema::ddl::{Column, ColumnConstraintKind, CreateTable, TableConstraintKind};
use crate::schema::{mentions_column, Schema};
use crate::sql::{quote_ident, quote_str, same_name, significant, unquote, Kind};

/// The result of applying the changes.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The new `CREATE TABLE` (original name).
    pub ddl: String,
    /// (column name in the new table, expression over the old table) for every stored column.
    pub copy: Vec<(String, String)>,
    /// Column renames, (old, new), run after the rebuild.
    pub renames: Vec<(String, String)>,
    /// What a down migration cannot restore.
    pub lossy: Vec<String>,
    /// One line per change, for the file header and the report.
    pub summary: Vec<String>,
}

/// Everything about the schema the edit needs to check a change.
pub struct Context<'a> {
    pub conn: &'a Connection,
    pub schema: &'a Schema,
    /// Foreign keys pointing at the table (from any table, itself included).
    pub children: &'a [ChildKey],
}

#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    text: String,
}

struct Editor<'a> {
    src: &'a str,
    t: &'a CreateTable,
    edits: Vec<Edit>,
    /// Constraint spans removed or replaced (so usage checks skip them).
    removed: Vec<Range<usize>>,
    /// Items (columns, then table constraints) removed, by index.
    removed_items: Vec<usize>,
    /// Expressions added by changes, per column index (for the drop-usage check).
    added: Vec<(usize, String)>,
}

impl<'a> Editor<'a> {
    fn items(&self) -> Vec<Range<usize>> {
        self.t
            .columns
            .iter()
            .map(|c| c.span.clone())
            .chain(self.t.constraints.iter().map(|c| c.span.clone()))
            .collect()
    }

    fn insert(&mut self, at: usize, text: String) {
        self.edits.push(Edit {
            range: at..at,
            text,
        });
    }

    fn replace(&mut self, range: Range<usize>, text: String) {
        self.removed.push(range.clone());
        self.edits.push(Edit { range, text });
    }

    /// Remove a clause of column `col` with the space before it.
    fn remove_column_clause(&mut self, col: &Column, span: Range<usize>) {
        let mut prev = col.name_span.end;
        if let Some(ty) = &col.type_span {
            prev = prev.max(ty.end);
        }
        for c in &col.constraints {
            if c.span.end <= span.start {
                prev = prev.max(c.span.end);
            }
        }
        self.removed.push(span.clone());
        self.edits.push(Edit {
            range: prev..span.end,
            text: String::new(),
        });
    }

    fn remove_item(&mut self, index: usize) {
        self.removed_items.push(index);
        self.removed.push(self.items()[index].clone());
    }

    fn is_removed(&self, span: &Range<usize>) -> bool {
        self.removed.iter().any(|r| r == span)
    }

    /// The final text: removed items (with one separator each) and all edits applied.
    fn finish(mut self) -> String {
        let items = self.items();
        let mut removed = self.removed_items.clone();
        removed.sort_unstable();
        removed.dedup();
        for &k in &removed {
            let kept_before = (0..k).any(|j| !removed.contains(&j));
            let range = if kept_before {
                items[k - 1].end..items[k].end
            } else {
                items[k].start..items[k + 1].start
            };
            // A clause edit inside a removed item is moot.
            self.edits.retain(|e| {
                let at_end = e.range.is_empty() && e.range.start == items[k].end;
                at_end || !(e.range.start >= items[k].start && e.range.end <= items[k].end)
            });
            self.edits.push(Edit {
                range,
                text: String::new(),
            });
        }
        let mut edits = self.edits;
        edits.sort_by_key(|e| (e.range.start, !e.range.is_empty()));
        let mut out = String::with_capacity(self.src.len() + 64);
        let mut pos = 0;
        for e in edits {
            debug_assert!(e.range.start >= pos, "overlapping edits");
            out.push_str(&self.src[pos..e.range.start.max(pos)]);
            out.push_str(&e.text);
            pos = pos.max(e.range.end);
        }
        out.push_str(&self.src[pos..]);
        out
    }
}

/// SQLite's type affinity of a declared type (section 3.1 of datatype3.html).
pub fn affinity(declared: &str) -> &'static str {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.trim().is_empty() || t.trim() == "ANY" {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// Whether values stored under affinity `from` come back unchanged after a trip through `to`.
fn type_change_is_lossless(from: &str, to: &str) -> bool {
    from == to
        || to == "BLOB"
        || matches!(
            (from, to),
            ("INTEGER", "NUMERIC")
                | ("INTEGER", "TEXT")
                | ("REAL", "NUMERIC")
                | ("NUMERIC", "INTEGER")
        )
}

/// If `expr` is exactly `<column> IN (…)`, the range inside the parentheses.
fn in_list(src: &str, expr: Range<usize>, column: &str) -> Option<Range<usize>> {
    let text = &src[expr.clone()];
    let toks = significant(text);
    match toks.as_slice() {
        [name, kw_in, open, .., close]
            if name.is_name()
                && name.kind != Kind::String
                && same_name(&unquote(name.text(text)), column)
                && kw_in.is_word(text, "IN")
                && open.kind == Kind::LParen
                && close.kind == Kind::RParen =>
        {
            let mut depth = 0;
            for (i, t) in toks[2..].iter().enumerate() {
                match t.kind {
                    Kind::LParen => depth += 1,
                    Kind::RParen => {
                        depth -= 1;
                        if depth == 0 && i + 2 != toks.len() - 1 {
                            return None;
                        }
                    }
                    _ => {}
                }
            }
            Some(expr.start + open.end..expr.start + close.start)
        }
        _ => None,
    }
}

/// Columns of the table named in `sql` (identifier tokens, function names excluded).
fn columns_used<'c>(t: &'c CreateTable, sql: &str) -> Vec<&'c str> {
    t.columns
        .iter()
        .filter(|c| mentions_column(sql, &c.name))
        .map(|c| c.name.as_str())
        .collect()
}

/// Apply `spec` to the table `t` parsed from `src`.
pub fn apply(
    src: &str,
    t: &CreateTable,
    spec: &RebuildSpec,
    ctx: &Context,
) -> Result<Edited, RebuildError> {
    let table = t.name.as_str();
    let mut ed = Editor {
        src,
        t,
        edits: Vec::new(),
        removed: Vec::new(),
        removed_items: Vec::new(),
        added: Vec::new(),
    };
    let mut summary = Vec::new();
    let mut lossy = Vec::new();
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut fills: Vec<(usize, String)> = Vec::new();
    let mut dropped: Vec<usize> = Vec::new();
    let mut fk_dropped: Vec<usize> = Vec::new();

    // Resolve a column by its current name, or by the new name a rename in this spec gives it.
    let resolve = |name: &str, change: &Change| -> Result<usize, RebuildError> {
        if let Some((i, _)) = t.column(name) {
            return Ok(i);
        }
        for c in &spec.changes {
            if let Change::Rename { from, to } = c {
                if same_name(to, name) {
                    if let Some((i, _)) = t.column(from) {
                        return Ok(i);
                    }
                }
            }
        }
        Err(RebuildError::ColumnNotFound {
            table: table.to_string(),
            column: name.to_string(),
            change: change.to_arg(),
        })
    };
    let conflict = |change: &Change, reason: String| RebuildError::Conflict {
        table: table.to_string(),
        change: change.to_arg(),
        reason,
    };

    // Drops first, so every other change can refuse to touch a dropped column.
    for change in &spec.changes {
        if let Change::Drop { column } = change {
            let i = resolve(column, change)?;
            if dropped.contains(&i) {
                return Err(conflict(change, "the column is dropped twice".into()));
            }
            dropped.push(i);
        }
    }
    if dropped.len() == t.columns.len() {
        return Err(RebuildError::Conflict {
            table: table.to_string(),
            change: "--drop".into(),
            reason: "a table must keep at least one column".into(),
        });
    }
    // --drop-fk before --add-fk, so one rebuild can replace a foreign key.
    let mut ordered: Vec<&Change> = spec
        .changes
        .iter()
        .filter(|c| matches!(c, Change::DropFk { .. }))
        .collect();
    ordered.extend(
        spec.changes
            .iter()
            .filter(|c| !matches!(c, Change::DropFk { .. })),
    );

    for change in ordered {
        if matches!(change, Change::Drop { .. } | Change::Unique { .. }) {
            continue;
        }
        let i = resolve(change.column(), change)?;
        if dropped.contains(&i) {
            return Err(conflict(
                change,
                "the same rebuild drops this column".into(),
            ));
        }
        let col = &t.columns[i];
        let qcol = quote_ident(&col.name);
        match change {
            Change::Enum { values, .. } => {
                let list = values
                    .iter()
                    .map(|v| quote_str(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut found = None;
                for c in &col.constraints {
                    if let ColumnConstraintKind::Check { expr } = &c.kind {
                        if let Some(inner) = in_list(src, expr.clone(), &col.name) {
                            found = Some((c.span.clone(), inner));
                        }
                    }
                }
                for c in &t.constraints {
                    if let TableConstraintKind::Check { expr } = &c.kind {
                        if let Some(inner) = in_list(src, expr.clone(), &col.name) {
                            if found.is_some() {
                                return Err(conflict(change, "the column has more than one CHECK … IN (…); use --check to replace them".into()));
                            }
                            found = Some((c.span.clone(), inner));
                        }
                    }
                }
                match found {
                    Some((_, inner)) => {
                        let old: Vec<String> = significant(&src[inner.clone()])
                            .iter()
                            .filter(|t| t.kind != Kind::Comma)
                            .map(|t| unquote(t.text(&src[inner.clone()])))
                            .collect();
                        summary.push(format!(
                            "{}: allowed values {} (were {})",
                            col.name,
                            values.join(", "),
                            old.join(", ")
                        ));
                        ed.replace(inner, list.clone());
                    }
                    None => {
                        summary.push(format!(
                            "{}: allowed values {} (new CHECK)",
                            col.name,
                            values.join(", ")
                        ));
                        ed.insert(col.span.end, format!(" CHECK ({qcol} IN ({list}))"));
                    }
                }
            }
            Change::Check { .. } | Change::DropCheck { .. } => {
                let mut n = 0;
                for c in &col.constraints {
                    if matches!(c.kind, ColumnConstraintKind::Check { .. }) {
                        ed.remove_column_clause(col, c.span.clone());
                        n += 1;
                    }
                }
                for (k, c) in t.constraints.iter().enumerate() {
                    if let TableConstraintKind::Check { expr: e } = &c.kind {
                        if columns_used(t, &src[e.clone()]) == [col.name.as_str()] {
                            ed.remove_item(t.columns.len() + k);
                            n += 1;
                        }
                    }
                }
                if let Change::Check { expr, .. } = change {
                    summary.push(format!(
                        "{}: CHECK ({expr}){}",
                        col.name,
                        if n > 0 {
                            format!(" replaces {n} CHECK constraint(s)")
                        } else {
                            String::new()
                        }
                    ));
                    ed.insert(col.span.end, format!(" CHECK ({expr})"));
                    ed.added.push((i, expr.clone()));
                } else if n == 0 {
                    return Err(conflict(
                        change,
                        "the column has no CHECK constraint of its own".into(),
                    ));
                } else {
                    summary.push(format!("{}: {n} CHECK constraint(s) dropped", col.name));
                }
            }
            Change::Type { ty, .. } => {
                let old = col.type_text(src).to_string();
                if t.strict {
                    let base = ty
                        .split('(')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_uppercase();
                    if !["INT", "INTEGER", "REAL", "TEXT", "BLOB", "ANY"].contains(&base.as_str()) {
                        return Err(conflict(
                            change,
                            "a STRICT table allows only INT, INTEGER, REAL, TEXT, BLOB or ANY"
                                .into(),
                        ));
                    }
                }
                if old.eq_ignore_ascii_case(ty) {
                    return Err(conflict(change, format!("the column is already {old}")));
                }
                match &col.type_span {
                    Some(r) => ed.replace(r.clone(), ty.clone()),
                    None => ed.insert(col.name_span.end, format!(" {ty}")),
                }
                let (from, to) = (affinity(&old), affinity(ty));
                if !type_change_is_lossless(from, to) {
                    lossy.push(format!(
                        "{}: values converted from {} to {} affinity (e.g. '007' becomes 7) keep their new form",
                        col.name, from, to
                    ));
                }
                summary.push(format!(
                    "{}: type {} → {ty} (no CAST; affinity {from} → {to})",
                    col.name,
                    if old.is_empty() { "(none)" } else { &old }
                ));
            }
            Change::NotNull { fill, .. } => {
                if col.has(|k| *k == ColumnConstraintKind::NotNull) {
                    return Err(conflict(change, "the column is already NOT NULL".into()));
                }
                for c in &col.constraints {
                    if c.kind == ColumnConstraintKind::Null {
                        ed.remove_column_clause(col, c.span.clone());
                    }
                }
                ed.insert(col.span.end, " NOT NULL".to_string());
                match fill {
                    Some(f) => {
                        fills.push((i, f.clone()));
                        lossy.push(format!(
                            "{}: which rows held NULL before the fill {f} (they keep the filled value)",
                            col.name
                        ));
                        summary.push(format!("{}: NOT NULL (NULLs become {f})", col.name));
                    }
                    None => summary.push(format!("{}: NOT NULL", col.name)),
                }
            }
            Change::Nullable { .. } => {
                let mut n = 0;
                for c in &col.constraints {
                    if c.kind == ColumnConstraintKind::NotNull {
                        ed.remove_column_clause(col, c.span.clone());
                        n += 1;
                    }
                }
                if n == 0 {
                    return Err(conflict(change, "the column is not NOT NULL".into()));
                }
                summary.push(format!("{}: NULL allowed", col.name));
            }
            Change::Default { value, .. } => {
                let existing = col.constraints.iter().find_map(|c| match &c.kind {
                    ColumnConstraintKind::Default { value } => Some(value.clone()),
                    _ => None,
                });
                match existing {
                    Some(r) => {
                        summary.push(format!(
                            "{}: DEFAULT {value} (was {})",
                            col.name,
                            &src[r.clone()]
                        ));
                        ed.replace(r, value.clone());
                    }
                    None => {
                        summary.push(format!("{}: DEFAULT {value}", col.name));
                        ed.insert(col.span.end, format!(" DEFAULT {value}"));
                    }
                }
            }
            Change::DropDefault { .. } => {
                let spans: Vec<_> = col
                    .constraints
                    .iter()
                    .filter(|c| matches!(c.kind, ColumnConstraintKind::Default { .. }))
                    .map(|c| c.span.clone())
                    .collect();
                if spans.is_empty() {
                    return Err(conflict(change, "the column has no DEFAULT".into()));
                }
                for s in spans {
                    ed.remove_column_clause(col, s);
                }
                summary.push(format!("{}: DEFAULT dropped", col.name));
            }
            Change::Rename { to, .. } => {
                if renames.iter().any(|(f, _)| same_name(f, &col.name)) {
                    return Err(conflict(change, "the column is renamed twice".into()));
                }
                if let Some((j, _)) = t.column(to) {
                    if j != i && !dropped.contains(&j) {
                        return Err(conflict(
                            change,
                            format!("the table already has a column {to:?}"),
                        ));
                    }
                }
                renames.push((col.name.clone(), to.clone()));
                summary.push(format!("{}: renamed to {to}", col.name));
            }
            Change::AddFk {
                table: parent,
                parent_column,
                on_delete,
                ..
            } => {
                let has_fk = col.constraints.iter().any(|c| {
                    matches!(c.kind, ColumnConstraintKind::References(_)) && !ed.is_removed(&c.span)
                });
                if has_fk {
                    return Err(conflict(
                        change,
                        "the column already has a foreign key; add --drop-fk to replace it".into(),
                    ));
                }
                let fk_err = |reason: String| RebuildError::ForeignKeyTarget {
                    table: table.to_string(),
                    column: col.name.clone(),
                    parent: format!("{parent}({parent_column})"),
                    reason,
                };
                let self_ref = same_name(parent, table);
                if !self_ref && ctx.schema.find("table", parent).is_none() {
                    return Err(fk_err(format!("table {parent:?} does not exist")));
                }
                let ok = if self_ref {
                    t.column(parent_column).is_some()
                        && is_unique_key(ctx.conn, table, parent_column)
                            .map_err(RebuildError::sqlite(table, "reading the parent's keys"))?
                } else {
                    is_unique_key(ctx.conn, parent, parent_column)
                        .map_err(RebuildError::sqlite(table, "reading the parent's keys"))?
                };
                if !ok {
                    return Err(fk_err(format!(
                        "{parent}.{parent_column} is not its PRIMARY KEY nor a UNIQUE column"
                    )));
                }
                let action = on_delete
                    .as_ref()
                    .map(|a| format!(" ON DELETE {a}"))
                    .unwrap_or_default();
                ed.insert(
                    col.span.end,
                    format!(
                        " REFERENCES {} ({}){action}",
                        quote_ident(parent),
                        quote_ident(parent_column)
                    ),
                );
                summary.push(format!(
                    "{}: foreign key → {parent}({parent_column}){action}",
                    col.name
                ));
            }
            Change::DropFk { .. } => {
                let mut n = 0;
                for c in &col.constraints {
                    if matches!(c.kind, ColumnConstraintKind::References(_)) {
                        ed.remove_column_clause(col, c.span.clone());
                        n += 1;
                    }
                }
                for (k, c) in t.constraints.iter().enumerate() {
                    if let TableConstraintKind::ForeignKey { columns, fk } = &c.kind {
                        if columns.iter().any(|x| same_name(x, &col.name)) {
                            if columns.len() > 1 {
                                return Err(conflict(change, format!("the column is part of the composite foreign key ({}) → {}; rebuild that key by hand", columns.join(", "), fk.table)));
                            }
                            ed.remove_item(t.columns.len() + k);
                            n += 1;
                        }
                    }
                }
                if n == 0 {
                    return Err(conflict(change, "the column has no foreign key".into()));
                }
                fk_dropped.push(i);
                summary.push(format!("{}: foreign key dropped", col.name));
            }
            Change::Drop { .. } | Change::Unique { .. } => unreachable!("handled apart"),
        }
    }

    for change in &spec.changes {
        if let Change::Unique { columns } = change {
            let mut names = Vec::new();
            for c in columns {
                let i = resolve(c, change)?;
                if dropped.contains(&i) {
                    return Err(conflict(
                        change,
                        "the same rebuild drops this column".into(),
                    ));
                }
                names.push(t.columns[i].name.clone());
            }
            let list = names
                .iter()
                .map(|n| quote_ident(n))
                .collect::<Vec<_>>()
                .join(", ");
            let items = ed.items();
            let last = items[items.len() - 1].end;
            ed.insert(last, format!(", UNIQUE ({list})"));
            summary.push(format!("UNIQUE ({})", names.join(", ")));
        }
    }

    for &i in &dropped {
        let col = &t.columns[i];
        let mut users = Vec::new();
        if col.has(|k| matches!(k, ColumnConstraintKind::PrimaryKey { .. })) {
            users.push("the PRIMARY KEY".to_string());
        }
        for (j, other) in t.columns.iter().enumerate() {
            if j == i || dropped.contains(&j) {
                continue;
            }
            for c in &other.constraints {
                let expr = match &c.kind {
                    ColumnConstraintKind::Check { expr }
                    | ColumnConstraintKind::Generated { expr, .. } => expr,
                    _ => continue,
                };
                if !ed.is_removed(&c.span) && mentions_column(&src[expr.clone()], &col.name) {
                    users.push(format!(
                        "the CHECK or generated expression of column {}",
                        other.name
                    ));
                }
            }
        }
        for (j, e) in &ed.added {
            if *j != i && mentions_column(e, &col.name) {
                users.push(format!("the new CHECK on column {}", t.columns[*j].name));
            }
        }
        for (k, c) in t.constraints.iter().enumerate() {
            if ed.removed_items.contains(&(t.columns.len() + k)) {
                continue;
            }
            let what = match &c.kind {
                TableConstraintKind::PrimaryKey { columns }
                    if columns.iter().any(|x| same_name(x, &col.name)) =>
                {
                    "the PRIMARY KEY"
                }
                TableConstraintKind::Unique { columns }
                    if columns.iter().any(|x| same_name(x, &col.name)) =>
                {
                    "a UNIQUE constraint"
                }
                TableConstraintKind::ForeignKey { columns, .. }
                    if columns.iter().any(|x| same_name(x, &col.name)) =>
                {
                    "a FOREIGN KEY constraint"
                }
                TableConstraintKind::Check { expr }
                    if mentions_column(&src[expr.clone()], &col.name) =>
                {
                    "a table CHECK constraint"
                }
                _ => continue,
            };
            users.push(match &c.name {
                Some(n) => format!("{what} ({n})"),
                None => format!("{what} `{}`", &src[c.span.clone()]),
            });
        }
        for o in ctx.schema.owned_by(table) {
            if o.sql
                .as_deref()
                .is_some_and(|s| mentions_column(s, &col.name))
            {
                users.push(format!("{} {}", o.kind, o.name));
            }
        }
        for o in ctx.schema.dependents(table) {
            if o.kind == "trigger"
                && o.sql
                    .as_deref()
                    .is_some_and(|s| mentions_column(s, &col.name))
            {
                users.push(format!("trigger {}", o.name));
            }
        }
        for k in ctx.children {
            let points_here = if k.to.is_empty() {
                col.has(|c| matches!(c, ColumnConstraintKind::PrimaryKey { .. }))
            } else {
                k.to.iter().any(|x| same_name(x, &col.name))
            };
            if points_here
                && !(same_name(&k.child, table)
                    && k.from
                        .iter()
                        .all(|f| dropped.iter().any(|&d| same_name(&t.columns[d].name, f))))
            {
                users.push(format!(
                    "the foreign key of table {} ({})",
                    k.child,
                    k.from.join(", ")
                ));
            }
        }
        users.dedup();
        if !users.is_empty() {
            return Err(RebuildError::ColumnInUse {
                table: table.to_string(),
                column: col.name.clone(),
                users,
            });
        }
        ed.remove_item(i);
        if !col.generated() {
            lossy.push(format!(
                "{}: the dropped column's values (the down recreates it with its default)",
                col.name
            ));
        }
        summary.push(format!("{}: dropped", col.name));
    }

    let copy = t
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| !dropped.contains(i) && !c.generated())
        .map(|(i, c)| {
            let source = match fills.iter().find(|(j, _)| *j == i) {
                Some((_, f)) => format!("coalesce({}, {f})", quote_ident(&c.name)),
                None => quote_ident(&c.name),
            };
            (c.name.clone(), source)
        })
        .collect();
    let _ = fk_dropped;
    let ddl = ed.finish();
    Ok(Edited {
        ddl,
        copy,
        renames,
        lossy,
        summary,
    })
}
