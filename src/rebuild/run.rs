//! Running a generated rebuild on a real database: read the file's header, refuse before any DDL
//! when the rebuild cannot succeed or would lose data it was not told to ([`preflight`]), and
//! check the result before commit ([`postcheck`]).
//!
//! Invariants: preflight only reads (a probe for type conversions lives in the `temp` schema and is
//! dropped); every refusal names the table, column and values; post-checks compare foreign-key
//! violations with those that existed before, so a rebuild is never blamed for old ones and never
//! lets a new one through. The migrate executor runs the file between the two, on the one write
//! path (`db::WriteSession`: foreign keys off before `BEGIN IMMEDIATE`, read back, restored after).

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::edit::affinity;
use super::error::ValueCount;
use super::proof::CopyProof;
use super::schema::{broken_view, fingerprint, sha256_hex};
use super::RebuildError;
use crate::schema::ddl::{
    parse_create_table, ColumnConstraintKind, CreateTable, TableConstraintKind,
};
use crate::schema::model::canonical;
use crate::schema::Schema;
use crate::sql::{quote_ident, significant, split_statements, unquote, Kind};

/// What the header and body of a generated rebuild file say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RebuildFile {
    pub table: String,
    pub temp: String,
    /// SHA-256 of the fingerprint of the table and its dependents when the file was generated.
    pub sha256: String,
    pub direction: String,
    /// `-- dbtool:lossy` lines: what this file cannot bring back.
    pub lossy: Vec<String>,
    /// The new table's `CREATE TABLE` (temporary name), when the body has it.
    pub target_ddl: Option<String>,
    /// (target column, source expression) of the copy, when the body has it.
    pub copy: Option<Vec<(String, String)>>,
    /// `RENAME COLUMN` (from, to) run before the new table is created (a down undoing renames).
    pub renames_first: Vec<(String, String)>,
}

impl RebuildFile {
    /// `Ok(None)` when `sql` is not a generated rebuild (no `-- dbtool:rebuild` header line).
    pub fn parse(sql: &str) -> Result<Option<Self>, RebuildError> {
        let header = sql
            .lines()
            .take_while(|l| l.trim_start().starts_with("--"))
            .find_map(|l| l.trim_start().strip_prefix("-- dbtool:rebuild "));
        let Some(header) = header else {
            return Ok(None);
        };
        let lossy = sql
            .lines()
            .take_while(|l| l.trim_start().starts_with("--"))
            .filter_map(|l| l.trim_start().strip_prefix("-- dbtool:lossy"))
            .map(|l| l.trim().to_string())
            .collect();
        let toks = significant(header);
        let mut fields = std::collections::BTreeMap::new();
        let mut i = 0;
        while i < toks.len() {
            if i + 2 >= toks.len() || toks[i].kind != Kind::Word || toks[i + 1].text(header) != "="
            {
                return Err(RebuildError::Header {
                    reason: format!("cannot read `-- dbtool:rebuild {header}`"),
                });
            }
            fields.insert(
                toks[i].text(header).to_ascii_lowercase(),
                unquote(toks[i + 2].text(header)),
            );
            i += 3;
        }
        let get = |k: &str| {
            fields.get(k).cloned().ok_or_else(|| RebuildError::Header {
                reason: format!("`-- dbtool:rebuild` has no {k}="),
            })
        };
        let (table, temp) = (get("table")?, get("temp")?);
        let mut file = RebuildFile {
            sha256: get("sha256")?,
            direction: fields
                .get("direction")
                .cloned()
                .unwrap_or_else(|| "up".into()),
            lossy,
            target_ddl: None,
            copy: None,
            renames_first: Vec::new(),
            table,
            temp,
        };
        for r in split_statements(sql) {
            let stmt = &sql[r];
            if let Some(rename) = parse_rename_column(stmt) {
                if file.target_ddl.is_none() {
                    file.renames_first.push(rename);
                }
            } else if let Ok(t) = parse_create_table(stmt) {
                if t.name == file.temp {
                    file.target_ddl = Some(stmt.to_string());
                }
            } else if let Some(copy) = parse_copy(stmt, &file.temp) {
                file.copy = Some(copy);
            }
        }
        Ok(Some(file))
    }
}

/// `ALTER TABLE t RENAME COLUMN a TO b` → (a, b).
fn parse_rename_column(stmt: &str) -> Option<(String, String)> {
    let toks = significant(stmt);
    let words: Vec<String> = toks
        .iter()
        .map(|t| t.text(stmt).to_ascii_uppercase())
        .collect();
    if words.len() < 8 || words[0] != "ALTER" || words[1] != "TABLE" {
        return None;
    }
    let at = words.iter().position(|w| w == "RENAME")?;
    let (from, to) = match words.get(at + 1).map(String::as_str) {
        Some("COLUMN") => (at + 2, at + 4),
        _ => (at + 1, at + 3),
    };
    if words.get(to - 1).map(String::as_str) != Some("TO") || to + 1 != toks.len() {
        return None;
    }
    Some((unquote(toks[from].text(stmt)), unquote(toks[to].text(stmt))))
}

/// `INSERT INTO <temp> (cols) SELECT exprs FROM …` → (column, expression) pairs; the rowid pair
/// is left out.
pub(super) fn parse_copy(stmt: &str, temp: &str) -> Option<Vec<(String, String)>> {
    let toks = significant(stmt);
    if !(toks.first()?.is_word(stmt, "INSERT") && toks.get(1)?.is_word(stmt, "INTO")) {
        return None;
    }
    let mut i = 2;
    if toks.get(i + 1)?.kind == Kind::Dot {
        i += 2;
    }
    if unquote(toks.get(i)?.text(stmt)) != temp || toks.get(i + 1)?.kind != Kind::LParen {
        return None;
    }
    i += 2;
    let mut targets = Vec::new();
    while toks.get(i)?.kind != Kind::RParen {
        let t = toks[i];
        if t.is_name() {
            targets.push((t.kind, unquote(t.text(stmt))));
        }
        i += 1;
    }
    i += 1;
    if !toks.get(i)?.is_word(stmt, "SELECT") {
        return None;
    }
    i += 1;
    let mut sources = Vec::new();
    let mut depth = 0;
    let mut start = toks.get(i)?.start;
    loop {
        let t = *toks.get(i)?;
        match t.kind {
            Kind::LParen => depth += 1,
            Kind::RParen => depth -= 1,
            Kind::Comma if depth == 0 => {
                sources.push(stmt[start..toks[i - 1].end].to_string());
                start = toks.get(i + 1)?.start;
            }
            Kind::Word if depth == 0 && t.is_word(stmt, "FROM") => {
                sources.push(stmt[start..toks[i - 1].end].to_string());
                break;
            }
            _ => {}
        }
        i += 1;
    }
    if sources.len() != targets.len() {
        return None;
    }
    Some(
        targets
            .into_iter()
            .zip(sources)
            .filter(|((kind, name), _)| {
                !(*kind == Kind::Word
                    && ["rowid", "_rowid_", "oid"]
                        .iter()
                        .any(|r| name.eq_ignore_ascii_case(r)))
            })
            .map(|((_, name), source)| (name, source))
            .collect(),
    )
}

/// What [`preflight`] found and [`postcheck`] needs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Preflight {
    pub table: String,

    /// Things worth saying that do not block (values that keep their old type).
    pub warnings: Vec<String>,
}

pub(super) fn sql_err(
    table: &str,
    doing: &str,
) -> impl FnOnce(rusqlite::Error) -> RebuildError + 'static {
    RebuildError::sqlite(table, doing.to_string())
}

/// Refuse before any DDL: foreign keys on, a changed table, a broken view, or rows the new table
/// would reject. Call it inside the transaction, just before the file's SQL.
pub fn preflight(conn: &Connection, file: &RebuildFile) -> Result<Preflight, RebuildError> {
    let table = file.table.as_str();
    if crate::db::foreign_keys_enabled(conn, std::path::Path::new(table))? {
        return Err(RebuildError::ForeignKeysOn {
            table: table.into(),
        });
    }
    let schema = Schema::read(conn).map_err(sql_err(table, "reading the schema"))?;
    let Some(obj) = schema.find("table", table) else {
        return Err(RebuildError::TableChanged {
            table: table.into(),
            expected: file.sha256.clone(),
            actual: "(table missing)".into(),
        });
    };
    let deps: Vec<String> = schema
        .dependents(&obj.name)
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let actual = sha256_hex(
        &fingerprint(conn, &obj.name, &deps)
            .map_err(sql_err(table, "reading the table's fingerprint"))?,
    );
    if actual != file.sha256 {
        return Err(RebuildError::TableChanged {
            table: table.into(),
            expected: file.sha256.clone(),
            actual,
        });
    }
    if let Some((view, source)) = broken_view(conn, &schema) {
        return Err(RebuildError::BrokenSchema {
            table: table.into(),
            object: format!("view {view}"),
            source,
        });
    }
    let mut pre = Preflight {
        table: obj.name.clone(),
        ..Preflight::default()
    };
    if let (Some(ddl), Some(copy)) = (&file.target_ddl, &file.copy) {
        let source_sql = obj.sql.clone().unwrap_or_default();
        if let (Ok(source), Ok(target)) = (parse_create_table(&source_sql), parse_create_table(ddl))
        {
            // Columns the file renames back before copying are read under their current names.
            let copy: Vec<(String, String)> = copy
                .iter()
                .map(|(target, source)| {
                    let current = file
                        .renames_first
                        .iter()
                        .find(|(_, to)| quote_ident(to) == *source)
                        .map_or(source.clone(), |(from, _)| quote_ident(from));
                    (target.clone(), current)
                })
                .collect();
            let checked = data_checks(
                conn,
                &obj.name,
                (&source_sql, &source),
                (ddl, &target),
                &copy,
                &mut pre.warnings,
            );
            match checked {
                // A check query SQLite cannot run (a hand-edited file, say) proves nothing; the
                // copy itself still enforces every constraint inside the transaction.
                Err(RebuildError::Sqlite { doing, source, .. })
                    if source.sqlite_error_code() != Some(rusqlite::ErrorCode::DatabaseBusy) =>
                {
                    pre.warnings.push(format!(
                        "{table}: could not pre-check rows ({doing}): {source}"
                    ));
                }
                other => other?,
            }
        }
    }
    Ok(pre)
}

/// The checks a new table's constraints imply for the rows about to be copied into it. A
/// constraint present in the source already (same text, same columns copied unchanged) is not
/// checked again: the rows satisfy it.
fn data_checks(
    conn: &Connection,
    table: &str,
    (ssrc, source): (&str, &CreateTable),
    (tsrc, target): (&str, &CreateTable),
    copy: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<(), RebuildError> {
    let q = quote_ident;
    let rows = format!(
        "(SELECT {} FROM main.{})",
        copy.iter()
            .map(|(c, e)| format!("{e} AS {}", q(c)))
            .collect::<Vec<_>>()
            .join(", "),
        q(table)
    );
    // A target column copied unchanged from the source column of the same name.
    let identity = |col: &str| {
        copy.iter().any(|(c, e)| {
            c.eq_ignore_ascii_case(col)
                && unquote(e).eq_ignore_ascii_case(col)
                && e.starts_with('"')
        })
    };
    let copied = |col: &str| copy.iter().any(|(c, _)| c.eq_ignore_ascii_case(col));
    let count = |sql: &str| -> Result<i64, RebuildError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(sql_err(table, &format!("checking rows ({sql})")))
    };

    // NOT NULL
    for c in target.columns.iter().filter(|c| copied(&c.name)) {
        if !c.has(|k| *k == ColumnConstraintKind::NotNull) {
            continue;
        }
        let already = identity(&c.name)
            && source
                .column(&c.name)
                .is_some_and(|(_, s)| s.has(|k| *k == ColumnConstraintKind::NotNull));
        if already {
            continue;
        }
        let n = count(&format!(
            "SELECT count(*) FROM {rows} WHERE {} IS NULL",
            q(&c.name)
        ))?;
        if n > 0 {
            return Err(RebuildError::NullsPresent {
                table: table.into(),
                column: c.name.clone(),
                rows: n,
            });
        }
    }

    // CHECK
    let source_checks: BTreeSet<String> = checks(ssrc, source)
        .into_iter()
        .map(|(_, e)| canonical(&e))
        .collect();
    for (col, expr) in checks(tsrc, target) {
        let used: Vec<&str> = target
            .columns
            .iter()
            .filter(|c| crate::schema::mentions_column(&expr, &c.name))
            .map(|c| c.name.as_str())
            .collect();
        if source_checks.contains(&canonical(&expr)) && used.iter().all(|c| identity(c)) {
            continue;
        }
        // A widened enum: the rows already satisfy a source CHECK with a subset of the values.
        if let Some((column, values)) = in_values(&expr) {
            let narrower = checks(ssrc, source).iter().any(|(_, e)| {
                in_values(e).is_some_and(|(c, v)| c == column && v.is_subset(&values))
            });
            if narrower && identity(&column) {
                continue;
            }
        }
        if used.iter().any(|c| !copied(c)) {
            continue; // uses a generated column: the copy itself enforces it
        }
        let bad = format!("NOT coalesce(({expr}), 1)");
        let subject = col.or_else(|| (used.len() == 1).then(|| used[0].to_string()));
        match subject {
            Some(c) => {
                let values = value_counts(conn, table, &format!("SELECT quote({}), count(*) FROM {rows} WHERE {bad} GROUP BY {} ORDER BY count(*) DESC, 1 LIMIT 10", q(&c), q(&c)))?;
                if !values.is_empty() {
                    return Err(RebuildError::CheckViolated {
                        table: table.into(),
                        column: c,
                        check: expr,
                        values,
                    });
                }
            }
            None => {
                let n = count(&format!("SELECT count(*) FROM {rows} WHERE {bad}"))?;
                if n > 0 {
                    return Err(RebuildError::RowsViolateCheck {
                        table: table.into(),
                        check: expr,
                        rows: n,
                    });
                }
            }
        }
    }

    // UNIQUE and PRIMARY KEY
    let source_keys = unique_sets(ssrc, source);
    for key in unique_sets(tsrc, target) {
        if source_keys.contains(&key) && key.iter().all(|c| identity(c))
            || key.iter().any(|c| !copied(c))
        {
            continue;
        }
        let cols: Vec<String> = key.iter().map(|c| q(c)).collect();
        let sql = format!(
            "SELECT {}, count(*) FROM {rows} WHERE {} GROUP BY {} HAVING count(*) > 1 ORDER BY count(*) DESC LIMIT 5",
            cols.iter().map(|c| format!("quote({c})")).collect::<Vec<_>>().join(" || ', ' || "),
            cols.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND "),
            cols.join(", ")
        );
        let examples = value_counts(conn, table, &sql)?;
        if !examples.is_empty() {
            return Err(RebuildError::Duplicates {
                table: table.into(),
                columns: key,
                examples,
            });
        }
    }

    // FOREIGN KEY
    let source_fks = foreign_keys(source);
    for (cols, parent, parent_cols) in foreign_keys(target) {
        let fk = (cols.clone(), parent.clone(), parent_cols.clone());
        if source_fks.contains(&fk) && cols.iter().all(|c| identity(c))
            || cols.iter().any(|c| !copied(c))
        {
            continue;
        }
        let self_ref =
            parent.eq_ignore_ascii_case(&target.name) || parent.eq_ignore_ascii_case(table);
        let parent_cols = if parent_cols.is_empty() {
            let pk: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
                .and_then(|mut s| {
                    s.query_map([if self_ref { table } else { &parent }], |r| r.get(0))?
                        .collect()
                })
                .map_err(sql_err(table, "reading the parent's primary key"))?;
            pk.into_iter().map(|c| c.to_ascii_lowercase()).collect()
        } else {
            parent_cols
        };
        if parent_cols.len() != cols.len() {
            continue; // SQLite reports the mismatch itself
        }
        let parent_rows = if self_ref {
            rows.clone()
        } else {
            format!("main.{}", q(&parent))
        };
        let matches = cols
            .iter()
            .zip(&parent_cols)
            .map(|(c, p)| format!("p.{} = s.{}", q(p), q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let not_null = cols
            .iter()
            .map(|c| format!("s.{} IS NOT NULL", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let orphan = format!("FROM {rows} AS s WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {parent_rows} AS p WHERE {matches})");
        let n = count(&format!("SELECT count(*) {orphan}"))?;
        if n > 0 {
            let shown = cols
                .iter()
                .map(|c| format!("quote(s.{})", q(c)))
                .collect::<Vec<_>>()
                .join(" || ', ' || ");
            let examples: Vec<String> = conn
                .prepare(&format!("SELECT DISTINCT {shown} {orphan} LIMIT 5"))
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql_err(table, "listing orphan rows"))?;
            return Err(RebuildError::ForeignKeyViolated {
                table: table.into(),
                column: cols.join(", "),
                parent: format!("{parent}({})", parent_cols.join(", ")),
                rows: n,
                examples,
            });
        }
    }

    // Types: no CAST, so report values SQLite's affinity will not convert.
    for c in target.columns.iter().filter(|c| copied(&c.name)) {
        let ty = c.type_text(tsrc);
        let source_ty = copy
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&c.name))
            .and_then(|(_, e)| {
                source
                    .column(&unquote(e))
                    .map(|(_, s)| s.type_text(ssrc).to_string())
            })
            .unwrap_or_default();
        let strict_base = ty
            .split('(')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let same = source_ty.eq_ignore_ascii_case(ty) && source.strict == target.strict;
        if same || (target.strict && strict_base == "ANY") {
            continue;
        }
        let (accepted, probe_type): (&[&str], &str) = if target.strict {
            match strict_base.as_str() {
                "INT" | "INTEGER" => (&["integer"], "INTEGER"),
                "REAL" => (&["real"], "REAL"),
                "TEXT" => (&["text"], "TEXT"),
                _ => (&["blob"], "BLOB"),
            }
        } else {
            match affinity(ty) {
                "INTEGER" | "NUMERIC" | "REAL" => (&["integer", "real"], "NUMERIC"),
                _ => continue,
            }
        };
        let values = type_probe(conn, table, &rows, &c.name, probe_type, accepted)?;
        if values.is_empty() {
            continue;
        }
        if target.strict {
            return Err(RebuildError::TypeMismatch {
                table: table.into(),
                column: c.name.clone(),
                ty: ty.to_string(),
                values,
            });
        }
        warnings.push(format!(
            "{table}.{}: values that do not convert to {ty} keep their type (no CAST): {}",
            c.name,
            values
                .iter()
                .map(|v| format!("{} ({} rows)", v.value, v.rows))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Values of `column` (in `rows`) whose type after SQLite's affinity for `probe_type` is not in
/// `accepted`, found with a temporary probe table (SQLite itself decides what converts).
fn type_probe(
    conn: &Connection,
    table: &str,
    rows: &str,
    column: &str,
    probe_type: &str,
    accepted: &[&str],
) -> Result<Vec<ValueCount>, RebuildError> {
    let c = quote_ident(column);
    let list = accepted
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let err = sql_err(table, "probing type conversions");
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp._dbtool_probe; CREATE TEMP TABLE _dbtool_probe (orig, v {probe_type}, n INTEGER);
         INSERT INTO temp._dbtool_probe SELECT {c}, {c}, count(*) FROM {rows} WHERE typeof({c}) NOT IN ('null', {list}) GROUP BY {c};"
    ))
    .map_err(err)?;
    let values = value_counts(conn, table, &format!("SELECT quote(orig), n FROM temp._dbtool_probe WHERE typeof(v) NOT IN ({list}) ORDER BY n DESC, 1 LIMIT 10"));
    let _ = conn.execute_batch("DROP TABLE IF EXISTS temp._dbtool_probe");
    values
}

fn value_counts(
    conn: &Connection,
    table: &str,
    sql: &str,
) -> Result<Vec<ValueCount>, RebuildError> {
    conn.prepare(sql)
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(ValueCount {
                    value: r
                        .get::<_, Option<String>>(0)?
                        .unwrap_or_else(|| "NULL".into()),
                    rows: r.get(1)?,
                })
            })?
            .collect()
        })
        .map_err(sql_err(table, &format!("checking rows ({sql})")))
}

/// `col IN (literal, …)` → (lower-cased column, the literals as written).
fn in_values(expr: &str) -> Option<(String, BTreeSet<String>)> {
    let toks = significant(expr);
    let [name, kw, open, rest @ ..] = toks.as_slice() else {
        return None;
    };
    let (close, items) = rest.split_last()?;
    if !(matches!(name.kind, Kind::Word | Kind::QuotedIdent)
        && kw.is_word(expr, "IN")
        && open.kind == Kind::LParen
        && close.kind == Kind::RParen)
    {
        return None;
    }
    let mut values = BTreeSet::new();
    for (i, t) in items.iter().enumerate() {
        let literal = matches!(t.kind, Kind::String | Kind::Number | Kind::Blob);
        if (i % 2 == 0 && !literal) || (i % 2 == 1 && t.kind != Kind::Comma) {
            return None;
        }
        if literal {
            values.insert(t.text(expr).to_string());
        }
    }
    Some((unquote(name.text(expr)).to_ascii_lowercase(), values))
}

/// CHECK expressions: (column for a column-level CHECK, expression text).
fn checks(src: &str, t: &CreateTable) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for c in &t.columns {
        for k in &c.constraints {
            if let ColumnConstraintKind::Check { expr } = &k.kind {
                out.push((Some(c.name.clone()), src[expr.clone()].to_string()));
            }
        }
    }
    for k in &t.constraints {
        if let TableConstraintKind::Check { expr } = &k.kind {
            out.push((None, src[expr.clone()].to_string()));
        }
    }
    out
}

/// Column sets that must be unique (lower-cased), the INTEGER PRIMARY KEY included.
fn unique_sets(_src: &str, t: &CreateTable) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for c in &t.columns {
        if c.has(|k| {
            matches!(
                k,
                ColumnConstraintKind::Unique | ColumnConstraintKind::PrimaryKey { .. }
            )
        }) {
            out.insert(vec![c.name.to_ascii_lowercase()]);
        }
    }
    for k in &t.constraints {
        match &k.kind {
            TableConstraintKind::Unique { columns }
            | TableConstraintKind::PrimaryKey { columns } => {
                out.insert(columns.iter().map(|c| c.to_ascii_lowercase()).collect());
            }
            _ => {}
        }
    }
    out
}

/// Foreign keys: (columns, parent table, parent columns), lower-cased.
pub(super) fn foreign_keys(t: &CreateTable) -> BTreeSet<(Vec<String>, String, Vec<String>)> {
    let lower = |v: &[String]| v.iter().map(|c| c.to_ascii_lowercase()).collect::<Vec<_>>();
    let mut out = BTreeSet::new();
    for c in &t.columns {
        for k in &c.constraints {
            if let ColumnConstraintKind::References(fk) = &k.kind {
                out.insert((
                    vec![c.name.to_ascii_lowercase()],
                    fk.table.to_ascii_lowercase(),
                    lower(&fk.columns),
                ));
            }
        }
    }
    for k in &t.constraints {
        if let TableConstraintKind::ForeignKey { columns, fk } = &k.kind {
            out.insert((
                lower(columns),
                fk.table.to_ascii_lowercase(),
                lower(&fk.columns),
            ));
        }
    }
    out
}

/// What the post-checks did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PostCheck {
    pub views_compiled: usize,
    pub analyzed: bool,
    /// The proof that the copy lost nothing (`None`: the file's copy could not be read, and
    /// `integrity_check` of the table ran instead).
    pub copy: Option<CopyProof>,
}

/// Before commit: every view compiles; unless `proof` shows the copy lost nothing (see
/// [`super::CopyCheck`]), `integrity_check` of the table passes; then `ANALYZE` the table (with
/// `analysis_limit`, so it stays cheap). The foreign-key check is the executor's: dbtool's
/// write session checks the database once, after the changes.
pub fn postcheck(
    conn: &Connection,
    pre: &Preflight,
    proof: Option<CopyProof>,
) -> Result<PostCheck, RebuildError> {
    let table = pre.table.as_str();

    let schema = Schema::read(conn).map_err(sql_err(table, "reading the schema"))?;
    if let Some((view, source)) = broken_view(conn, &schema) {
        return Err(RebuildError::ViewBroken {
            table: table.into(),
            view,
            source,
        });
    }
    if proof.is_none() {
        integrity_check(conn, table)?;
    }
    let limit: i64 = conn
        .query_row("PRAGMA analysis_limit", [], |r| r.get(0))
        .map_err(sql_err(table, "reading PRAGMA analysis_limit"))?;
    conn.execute_batch(&format!(
        "PRAGMA analysis_limit = 1000; ANALYZE main.{}; PRAGMA analysis_limit = {limit};",
        quote_ident(table)
    ))
    .map_err(sql_err(table, "running ANALYZE"))?;
    Ok(PostCheck {
        views_compiled: schema.views().count(),
        analyzed: true,
        copy: proof,
    })
}

fn integrity_check(conn: &Connection, table: &str) -> Result<(), RebuildError> {
    let problems: Vec<String> = conn
        .prepare(&format!(
            "PRAGMA main.integrity_check({})",
            quote_ident(table)
        ))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err(table, "running PRAGMA integrity_check"))?;
    if problems != ["ok"] {
        return Err(RebuildError::IntegrityFailed {
            table: table.into(),
            problems,
        });
    }
    Ok(())
}
