//! The proof that a rebuild's copy lost nothing: row count and a digest of every row of the old
//! table against the new one, taken before the old table is dropped.

use std::sync::{Arc, Mutex};

use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;

use super::edit::affinity;
use super::run::{foreign_keys, parse_copy, sql_err, RebuildFile};
use super::RebuildError;
use crate::schema::ddl::{parse_create_table, CreateTable};
use crate::schema::Schema;
use crate::sql::{quote_ident, significant, unquote, Kind};

/// Proof that the copy lost nothing, taken after the copy and before the old table is dropped:
/// the old table (read through the copy's column mapping) and the new one hold the same number
/// of rows and the same multiset of rows (rowid included).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyProof {
    pub rows: u64,
    /// Sum over the rows of XXH3-128 of each row's values (order-independent), hex.
    pub digest: String,
    /// Columns whose declared type changes: compared after SQLite's type affinity of the new
    /// column, as the copy stores them.
    pub converted: Vec<String>,
}

/// Proves a generated rebuild's copy once, before the file's first `DROP`: the hook an executor
/// calls before each statement it runs.
///
/// The old table is digested by the copy itself: a copy of the whole table (the statement as
/// generated, `… FROM main."t"` and nothing after) is run with a `WHERE` term that digests each
/// row it reads (through the copy's column mapping) and keeps it. That is the same scan of the
/// same b-tree a separate read would make, on the writer's own view (earlier steps of the same
/// transaction included), without reading 1 GiB a second time. The new table is read back in full
/// at the `DROP`, so whatever ran in between is in its digest. A copy statement edited by hand
/// runs as written, and both tables are read at the `DROP` ([`prove_copy`]).
pub struct CopyCheck<'a> {
    conn: &'a Connection,
    file: &'a RebuildFile,
    /// The copy statement has been reached.
    copied: bool,
    done: bool,
    /// The plan and the old table's digest, taken by the copy.
    digested: Option<(ProofPlan, SharedDigest)>,
    pub proof: Option<CopyProof>,
    /// Proven with the proof: every foreign key of the new table is one the old table had, on
    /// columns copied unchanged from the old columns of the same name, to another table. The
    /// table's own foreign keys then hold exactly as they did before the rebuild.
    pub foreign_keys_unchanged: bool,
}

/// A digest filled by a SQL function (which must be `Send + 'static`), with its row buffer.
type SharedDigest = Arc<Mutex<(Digest, Vec<u8>)>>;

/// What the executor does with a statement after the check has seen it.
#[derive(Debug)]
pub enum Copied {
    /// Run it as written.
    Run,
    /// The check ran it (the copy, digesting the rows it reads): its outcome, which is the
    /// statement's own.
    Ran(rusqlite::Result<()>),
}

impl<'a> CopyCheck<'a> {
    pub fn new(conn: &'a Connection, file: &'a RebuildFile) -> Self {
        Self {
            conn,
            file,
            copied: false,
            done: false,
            digested: None,
            proof: None,
            foreign_keys_unchanged: false,
        }
    }

    /// Call with each statement of the file before running it.
    pub fn before_statement(&mut self, statement: &str) -> Result<Copied, RebuildError> {
        if self.done {
            return Ok(Copied::Run);
        }
        if !self.copied {
            if parse_copy(statement, &self.file.temp).is_none() {
                return Ok(Copied::Run);
            }
            self.copied = true;
            return self.copy_digesting(statement);
        }
        let first = significant(statement);
        if !first.first().is_some_and(|t| t.is_word(statement, "DROP")) {
            return Ok(Copied::Run);
        }
        self.done = true;
        let (conn, table, temp) = (self.conn, self.file.table.as_str(), &self.file.temp);
        self.proof = match self.digested.take() {
            Some((plan, old)) => {
                let before = old.lock().unwrap_or_else(|e| e.into_inner()).0;
                let after =
                    rows_digest(conn, table, temp, &plan_cols(&plan.new_cols), &plan.modes)?;
                self.foreign_keys_unchanged = plan.foreign_keys_unchanged;
                Some(compare(table, before, after, plan)?)
            }
            None => prove_copy(conn, self.file)?,
        };
        Ok(Copied::Run)
    }

    /// Run a copy of the whole old table with a `WHERE` term that digests each row it reads;
    /// any other copy runs as written.
    fn copy_digesting(&mut self, statement: &str) -> Result<Copied, RebuildError> {
        let (conn, table) = (self.conn, self.file.table.as_str());
        let Some(head) = whole_table_copy(statement, table) else {
            return Ok(Copied::Run);
        };
        let Some(plan) = proof_plan(conn, self.file)? else {
            return Ok(Copied::Run);
        };
        let old = Arc::new(Mutex::new((Digest::default(), Vec::new())));
        let seen = Arc::clone(&old);
        let modes = plan.modes.clone();
        conn.create_scalar_function(
            "dbtool_copy_digest",
            -1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            move |ctx| {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                let (digest, row) = &mut *seen;
                let sum = row_hash(row, (0..ctx.len()).map(|i| ctx.get_raw(i)), &modes);
                digest.add(Digest { rows: 1, sum });
                Ok(true)
            },
        )
        .map_err(sql_err(table, "registering the row digest"))?;
        let copy = format!(
            "{head} WHERE dbtool_copy_digest({})",
            plan.old_cols.join(", ")
        );
        let outcome = conn.execute(&copy, []).map(|_| ());
        self.digested = Some((plan, old));
        Ok(Copied::Ran(outcome))
    }
}

/// Whether the new table's foreign keys are the old table's, each on columns the copy takes
/// unchanged from the old columns of the same name (same affinity: stored as they were), and none
/// refers to the table itself (whose keys the rebuild replaces). With the rows proven equal, every
/// foreign key of the table then holds, or fails, exactly as before.
fn foreign_keys_unchanged(
    file: &RebuildFile,
    old: &CreateTable,
    new: &CreateTable,
    copy: &[(String, String)],
    converted: &[String],
) -> bool {
    let keys = foreign_keys(new);
    if keys != foreign_keys(old) {
        return false;
    }
    let itself = |parent: &str| {
        parent.eq_ignore_ascii_case(&file.table) || parent.eq_ignore_ascii_case(&file.temp)
    };
    let unchanged = |column: &str| {
        !converted.iter().any(|c| c.eq_ignore_ascii_case(column))
            && copy.iter().any(|(target, source)| {
                target.eq_ignore_ascii_case(column)
                    && source.starts_with('"')
                    && unquote(source).eq_ignore_ascii_case(column)
            })
    };
    keys.iter()
        .all(|(columns, parent, _)| !itself(parent) && columns.iter().all(|c| unchanged(c)))
}

/// The copy statement up to its source table, when it copies the whole of `table`:
/// `INSERT INTO … SELECT … FROM [main.]"table"` with nothing after but a `;`.
fn whole_table_copy<'s>(statement: &'s str, table: &str) -> Option<&'s str> {
    let toks = significant(statement);
    let from = toks.iter().rposition(|t| t.is_word(statement, "FROM"))?;
    let mut rest = &toks[from + 1..];
    if rest.len() >= 2 && rest[1].kind == Kind::Dot {
        if !unquote(rest[0].text(statement)).eq_ignore_ascii_case("main") {
            return None;
        }
        rest = &rest[2..];
    }
    let name = rest.first()?;
    if !(name.is_name() && unquote(name.text(statement)).eq_ignore_ascii_case(table)) {
        return None;
    }
    if !rest[1..].iter().all(|t| t.kind == Kind::Semi) {
        return None;
    }
    Some(&statement[..name.end])
}

/// Row count and wrapping sum of row hashes: the order rows are read in does not matter, and a
/// lost, duplicated or altered row changes it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    rows: u64,
    sum: u128,
}

impl Digest {
    fn add(&mut self, other: Digest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// `dbtool_rows_digest`'s result: `"<rows>:<hex>"`.
    fn parse(text: Option<&str>) -> Digest {
        let (rows, sum) = text.unwrap_or("").split_once(':').unwrap_or(("0", "0"));
        Digest {
            rows: rows.parse().unwrap_or(0),
            sum: u128::from_str_radix(sum, 16).unwrap_or(0),
        }
    }
}

/// How one copied column's values are compared (see [`RowsDigest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// Type and value as stored.
    Exact,
    /// After INTEGER/NUMERIC affinity: numeric text becomes a number, integral reals integers.
    Numeric,
    /// After REAL affinity: numeric text and integers become reals.
    Real,
}

/// Compare the old table with its copy (the file's temporary table): row count and digest of
/// every row through the copy's column mapping. `Ok(None)` when the file's copy statement could
/// not be read (a hand-edited file): the caller then falls back to `integrity_check`.
pub fn prove_copy(
    conn: &Connection,
    file: &RebuildFile,
) -> Result<Option<CopyProof>, RebuildError> {
    let Some(plan) = proof_plan(conn, file)? else {
        return Ok(None);
    };
    let table = file.table.as_str();
    let before = rows_digest(conn, table, table, &plan.old_cols, &plan.modes)?;
    let after = rows_digest(
        conn,
        table,
        &file.temp,
        &plan_cols(&plan.new_cols),
        &plan.modes,
    )?;
    compare(table, before, after, plan).map(Some)
}

/// What to digest on each side: the old table through the copy's mapping, the new one's columns.
#[derive(Debug)]
struct ProofPlan {
    /// Expressions over the old table.
    old_cols: Vec<String>,
    new_cols: Vec<ProofColumn>,
    modes: Vec<Compare>,
    converted: Vec<String>,
    /// See [`foreign_keys_unchanged`].
    foreign_keys_unchanged: bool,
}

/// A column of the new table in a proof: the rowid (under an alias no column takes), or a column.
#[derive(Debug, Clone)]
enum ProofColumn {
    RowId(&'static str),
    Named(String),
}

/// The new table's columns as expressions of a `SELECT`.
fn plan_cols(cols: &[ProofColumn]) -> Vec<String> {
    cols.iter()
        .map(|c| match c {
            ProofColumn::RowId(alias) => alias.to_string(),
            ProofColumn::Named(name) => quote_ident(name),
        })
        .collect()
}

/// `None` when the file's copy or either table's definition cannot be read.
fn proof_plan(conn: &Connection, file: &RebuildFile) -> Result<Option<ProofPlan>, RebuildError> {
    let table = file.table.as_str();
    let (Some(copy), Some(ddl)) = (&file.copy, &file.target_ddl) else {
        return Ok(None);
    };
    let schema = Schema::read(conn).map_err(sql_err(table, "reading the schema"))?;
    let Some(old_sql) = schema.find("table", table).and_then(|o| o.sql.clone()) else {
        return Ok(None);
    };
    let (Ok(old), Ok(new)) = (parse_create_table(&old_sql), parse_create_table(ddl)) else {
        return Ok(None);
    };
    let mut plan = ProofPlan {
        old_cols: Vec::new(),
        new_cols: Vec::new(),
        modes: Vec::new(),
        converted: Vec::new(),
        foreign_keys_unchanged: false,
    };
    if !old.without_rowid && !new.without_rowid {
        let names = |t: &CreateTable| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let (Some(o), Some(n)) = (
            super::schema::rowid_alias(&names(&old)),
            super::schema::rowid_alias(&names(&new)),
        ) else {
            return Ok(None);
        };
        plan.old_cols.push(o.to_string());
        plan.new_cols.push(ProofColumn::RowId(n));
        plan.modes.push(Compare::Exact);
    }
    for (target, source) in copy {
        let Some((_, col)) = new.column(target) else {
            return Ok(None);
        };
        let to = affinity(col.type_text(ddl));
        // A column copied as itself into a column of the same affinity is stored unchanged.
        let same = source.starts_with('"')
            && old
                .column(&unquote(source))
                .is_some_and(|(_, c)| affinity(c.type_text(&old_sql)) == to);
        let (expr, mode) = match to {
            _ if same => (source.clone(), Compare::Exact),
            // TEXT affinity renders numbers as CAST does: let SQLite do it.
            "TEXT" => (
                format!("CASE WHEN typeof({source}) IN ('integer', 'real') THEN CAST({source} AS TEXT) ELSE {source} END"),
                Compare::Exact,
            ),
            "INTEGER" | "NUMERIC" => (source.clone(), Compare::Numeric),
            "REAL" => (source.clone(), Compare::Real),
            _ => (source.clone(), Compare::Exact),
        };
        if !same {
            plan.converted.push(target.clone());
        }
        plan.old_cols.push(expr);
        plan.new_cols.push(ProofColumn::Named(target.clone()));
        plan.modes.push(mode);
    }
    plan.foreign_keys_unchanged = foreign_keys_unchanged(file, &old, &new, copy, &plan.converted);
    Ok(Some(plan))
}

/// Register `dbtool_rows_digest` on `conn` for these compare modes.
fn register_digest(conn: &Connection, table: &str, modes: &[Compare]) -> Result<(), RebuildError> {
    conn.create_aggregate_function(
        "dbtool_rows_digest",
        -1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        RowsDigest {
            modes: modes.to_vec(),
        },
    )
    .map_err(sql_err(table, "registering the row digest"))
}

/// Row count and digest of `cols` over every row of `from` (errors name `table`).
fn rows_digest(
    conn: &Connection,
    table: &str,
    from: &str,
    cols: &[String],
    modes: &[Compare],
) -> Result<Digest, RebuildError> {
    register_digest(conn, table, modes)?;
    let sql = format!(
        "SELECT dbtool_rows_digest({}) FROM main.{}",
        cols.join(", "),
        quote_ident(from)
    );
    let text: Option<String> = conn
        .query_row(&sql, [], |r| r.get(0))
        .map_err(sql_err(table, "computing the row digest"))?;
    Ok(Digest::parse(text.as_deref()))
}

/// The proof, or the refusal: same row count, same digest.
fn compare(
    table: &str,
    before: Digest,
    after: Digest,
    plan: ProofPlan,
) -> Result<CopyProof, RebuildError> {
    if before.rows != after.rows {
        return Err(RebuildError::CopyDiffers {
            table: table.into(),
            detail: format!("{} rows before, {} in the copy", before.rows, after.rows),
        });
    }
    if before.sum != after.sum {
        return Err(RebuildError::CopyDiffers {
            table: table.into(),
            detail: format!(
                "the same number of rows ({}), but not the same values (row digests {:032x} and {:032x})",
                before.rows, before.sum, after.sum
            ),
        });
    }
    Ok(CopyProof {
        rows: before.rows,
        digest: format!("{:032x}", before.sum),
        converted: plan.converted,
    })
}

/// `dbtool_rows_digest(v1, v2, …)`: `"<rows>:<hex>"`, the row count and the wrapping sum of
/// XXH3-128 over each row's values (type tag and bytes), so the order rows are read in does not
/// matter and a lost, duplicated or altered row changes the result.
struct RowsDigest {
    modes: Vec<Compare>,
}

impl rusqlite::functions::Aggregate<(Digest, Vec<u8>), Option<String>> for RowsDigest {
    fn init(
        &self,
        _: &mut rusqlite::functions::Context<'_>,
    ) -> rusqlite::Result<(Digest, Vec<u8>)> {
        Ok((Digest::default(), Vec::new()))
    }

    fn step(
        &self,
        ctx: &mut rusqlite::functions::Context<'_>,
        (digest, row): &mut (Digest, Vec<u8>),
    ) -> rusqlite::Result<()> {
        let hash = row_hash(row, (0..ctx.len()).map(|i| ctx.get_raw(i)), &self.modes);
        digest.add(Digest { rows: 1, sum: hash });
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut rusqlite::functions::Context<'_>,
        acc: Option<(Digest, Vec<u8>)>,
    ) -> rusqlite::Result<Option<String>> {
        let d = acc.map(|(d, _)| d).unwrap_or_default();
        Ok(Some(format!("{}:{:032x}", d.rows, d.sum)))
    }
}

/// XXH3-128 of one row's values (type tag, then the value: 8 bytes for a number, length and
/// bytes for text and blobs), each compared as its [`Compare`] mode says. The row is laid out in
/// `row` (reused from row to row) and hashed in one call: hashing each piece as it comes cost
/// more than the copy, on rows of a dozen columns.
fn row_hash<'v>(
    row: &mut Vec<u8>,
    values: impl Iterator<Item = ValueRef<'v>>,
    modes: &[Compare],
) -> u128 {
    row.clear();
    for (i, value) in values.enumerate() {
        let mode = modes.get(i).copied().unwrap_or(Compare::Exact);
        let parsed = match mode {
            Compare::Exact => None,
            _ => numeric_affinity(value, mode),
        };
        match parsed.as_ref().map_or(value, ValueRef::from) {
            ValueRef::Null => row.push(0),
            ValueRef::Integer(v) => {
                row.push(1);
                row.extend_from_slice(&v.to_le_bytes());
            }
            ValueRef::Real(v) => {
                row.push(2);
                row.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            ValueRef::Text(b) => {
                row.push(3);
                row.extend_from_slice(&(b.len() as u64).to_le_bytes());
                row.extend_from_slice(b);
            }
            ValueRef::Blob(b) => {
                row.push(4);
                row.extend_from_slice(&(b.len() as u64).to_le_bytes());
                row.extend_from_slice(b);
            }
        }
    }
    xxhash_rust::xxh3::xxh3_128(row)
}

/// The value a column of numeric affinity stores for `v` (SQLite's rules: text that is a
/// well-formed number becomes one; INTEGER/NUMERIC keep integral reals as integers, REAL makes
/// integers reals). `None`: stored unchanged.
fn numeric_affinity(v: ValueRef<'_>, mode: Compare) -> Option<Value> {
    let number = match v {
        ValueRef::Text(b) => {
            let t = std::str::from_utf8(b)
                .ok()?
                .trim_matches(|c: char| c.is_ascii_whitespace());
            // Rust also parses "inf" and "nan", which SQLite does not take for numbers.
            if !t.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
                || t.contains(|c: char| c.is_ascii_alphabetic() && !matches!(c, 'e' | 'E'))
            {
                return None;
            }
            match t.parse::<i64>() {
                Ok(i) => Value::Integer(i),
                Err(_) => Value::Real(t.parse::<f64>().ok()?),
            }
        }
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        _ => return None,
    };
    Some(match (mode, number) {
        (Compare::Real, Value::Integer(i)) => Value::Real(i as f64),
        (Compare::Numeric, Value::Real(r))
            if r.fract() == 0.0
                && (-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&r) =>
        {
            Value::Integer(r as i64)
        }
        (_, n) => n,
    })
}
