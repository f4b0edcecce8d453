//! The normalised schema model: what two schemas must share to be "the same schema", and a
//! readable difference when they are not.
//!
//! Same meaning, different spelling, is not a difference: keyword and identifier case, quoting,
//! whitespace, comments, `ON DELETE/UPDATE NO ACTION` (the default) against nothing, an explicit
//! `NULL` column constraint, the order of a column's constraints, a one-column `UNIQUE` written on
//! the column or as a table constraint, and the order of columns and table constraints. A
//! different type, constraint, default, collation, index, trigger body or view is a difference;
//! string literals are compared exactly as written.
//!
//! Left out of the model, because they are implied or not the user's: `sqlite_*` objects
//! (`sqlite_sequence`, `sqlite_stat1`, automatic indexes), shadow tables of virtual tables and
//! the migration history table.
//!
//! Each object also carries a laid-out normalised text (one column per line for tables, one
//! statement per line for triggers) so a difference reads as a line diff.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::Serialize;

use super::ddl::{parse_create_table, ColumnConstraintKind};
use super::Schema;
use crate::sql::{is_keyword, significant, unquote, Kind, Token};

/// One user object, normalised.
#[derive(Debug, Clone, Serialize)]
pub struct ModelObject {
    /// `table`, `index`, `trigger` or `view`.
    pub kind: String,
    pub name: String,
    /// The table an index or trigger belongs to (the object's own name for tables and views).
    pub table: String,
    /// The SQL as SQLite stored it; on PostgreSQL, the catalog's own normalised DDL.
    pub sql: String,
    /// The text is already canonical and laid out (PostgreSQL's catalog DDL, see
    /// [`crate::schema::pg`]): compared exactly and shown as it is, never through SQLite's
    /// tokenizer.
    #[serde(skip)]
    pub verbatim: bool,
}

/// The comparable parts of a `CREATE TABLE` (see the module header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    /// Lower-cased name → canonical definition (type, then sorted constraints).
    pub columns: BTreeMap<String, String>,
    /// Canonical table constraints, one-column UNIQUEs of columns included.
    pub constraints: BTreeSet<String>,
    /// `STRICT`, `WITHOUT ROWID`.
    pub options: BTreeSet<String>,
}

impl ModelObject {
    /// `index idx_users_email on users`, `table posts`.
    pub fn object(&self) -> String {
        if matches!(self.kind.as_str(), "index" | "trigger" | "policy") {
            format!("{} {} on {}", self.kind, self.name, self.table)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }

    /// What the name is unique within besides its kind: on PostgreSQL a trigger's or a
    /// policy's name is its table's (two tables may each have a trigger `set_updated`); on
    /// SQLite every name is the schema's.
    pub fn scope(&self) -> String {
        if self.verbatim && matches!(self.kind.as_str(), "trigger" | "policy") {
            self.table.clone()
        } else {
            String::new()
        }
    }

    /// The text a difference shows.
    fn laid_out(&self) -> String {
        if self.verbatim {
            self.sql.clone()
        } else {
            layout(&self.sql)
        }
    }

    /// Whether `other` means the same object.
    pub fn same_as(&self, other: &ModelObject) -> bool {
        if self.kind != other.kind || !self.name.eq_ignore_ascii_case(&other.name) {
            return false;
        }
        if self.sql == other.sql {
            return true; // the common case, and the stairway's hot path: nothing to normalise
        }
        if self.verbatim || other.verbatim {
            return false;
        }
        // Computed on demand: most comparisons end at the line above.
        let table = |o: &ModelObject| {
            if o.kind == "table" {
                table_shape(&o.sql)
            } else {
                None
            }
        };
        match (table(self), table(other)) {
            (Some(a), Some(b)) => a == b,
            _ => canonical(&self.sql) == canonical(&other.sql),
        }
    }
}

/// Every user object of a schema, normalised, keyed by (kind, lower-cased name).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Model {
    pub objects: Vec<ModelObject>,
}

pub(crate) fn kind_rank(kind: &str) -> u8 {
    // PostgreSQL's kinds after SQLite's four, each its own rank: objects of different kinds may
    // share a name there (a type and a table, a function and a view).
    match kind {
        "table" => 0,
        "view" => 1,
        "index" => 2,
        "trigger" => 3,
        "materialized view" => 4,
        "sequence" => 5,
        "type" => 6,
        "function" => 7,
        "schema" => 8,
        "extension" => 9,
        "policy" => 10,
        _ => 11,
    }
}

impl Model {
    /// The model of a schema read with [`Schema::read`].
    pub fn new(schema: &Schema) -> Model {
        let mut objects: Vec<ModelObject> = schema
            .objects
            .iter()
            .filter(|o| !is_internal(&o.name) && !schema.is_shadow(&o.name))
            .filter_map(|o| {
                Some(ModelObject {
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    table: o.tbl_name.clone(),
                    sql: o.sql.clone()?,
                    verbatim: false,
                })
            })
            .collect();
        objects.sort_by_cached_key(|o| (kind_rank(&o.kind), o.name.to_ascii_lowercase()));
        Model { objects }
    }

    /// Read and normalise the schema of an open database.
    pub fn read(conn: &Connection) -> rusqlite::Result<Model> {
        Ok(Model::new(&Schema::read(conn)?))
    }

    pub fn find(&self, kind: &str, name: &str) -> Option<&ModelObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name.eq_ignore_ascii_case(name))
    }

    /// Whether both models hold the same objects with the same meaning.
    pub fn same_as(&self, other: &Model) -> bool {
        self.objects.len() == other.objects.len()
            && self
                .objects
                .iter()
                .zip(&other.objects)
                .all(|(a, b)| a.same_as(b))
    }

    /// What differs between `self` (what should be) and `actual`. `expected_label` and
    /// `actual_label` say what the two sides are ("the migrations", "the database").
    pub fn diff(&self, actual: &Model, expected_label: &str, actual_label: &str) -> SchemaDiff {
        let mut diff = SchemaDiff {
            expected: expected_label.to_string(),
            actual: actual_label.to_string(),
            changes: Vec::new(),
        };
        let key = |o: &ModelObject| (kind_rank(&o.kind), o.name.to_ascii_lowercase(), o.scope());
        type Sides<'a> = (Option<&'a ModelObject>, Option<&'a ModelObject>);
        let mut sides: BTreeMap<(u8, String, String), Sides<'_>> = BTreeMap::new();
        for o in &self.objects {
            sides.entry(key(o)).or_default().0 = Some(o);
        }
        for o in &actual.objects {
            sides.entry(key(o)).or_default().1 = Some(o);
        }
        for (expected, actual) in sides.into_values() {
            let (change, any) = match (expected, actual) {
                (Some(e), Some(a)) if e.same_as(a) => continue,
                (Some(e), Some(_)) => (Change::Changed, e),
                (Some(e), None) => (Change::Missing, e),
                (None, Some(a)) => (Change::Unexpected, a),
                (None, None) => continue,
            };
            diff.changes.push(ObjectChange {
                kind: any.kind.clone(),
                name: any.name.clone(),
                table: any.table.clone(),
                change,
                expected: expected.map(ModelObject::laid_out),
                actual: actual.map(ModelObject::laid_out),
            });
        }
        diff
    }
}

/// `sqlite_*` objects and the migration history table: never the user's schema.
pub fn is_internal(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("sqlite_")
        || name.eq_ignore_ascii_case(crate::db::HISTORY_TABLE)
}

/// How one object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// On the expected side only (dropped by hand; removed by a down that should have kept it).
    Missing,
    /// On the actual side only (created by hand; left behind by a down).
    Unexpected,
    /// On both sides with a different meaning.
    Changed,
}

/// One object that differs, with its laid-out normalised DDL on each side.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub kind: String,
    pub name: String,
    pub table: String,
    pub change: Change,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl ObjectChange {
    /// `index idx_users_email on users`, `table posts`.
    pub fn object(&self) -> String {
        if matches!(self.kind.as_str(), "index" | "trigger" | "policy") {
            format!("{} {} on {}", self.kind, self.name, self.table)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }
}

/// The difference between two schemas; empty when they mean the same.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaDiff {
    /// What the `-` side is.
    pub expected: String,
    /// What the `+` side is.
    pub actual: String,
    pub changes: Vec<ObjectChange>,
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// A line diff of the normalised DDL: a legend, then per object a header and its lines
    /// prefixed `-` (expected only), `+` (actual only) or ` ` (both).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("--- {}", self.expected),
            format!("+++ {}", self.actual),
        ];
        for change in &self.changes {
            lines.push(format!("@@ {} @@", change.object()));
            let split = |s: &Option<String>| -> Vec<String> {
                s.as_deref()
                    .map_or(Vec::new(), |s| s.lines().map(str::to_string).collect())
            };
            let (expected, actual) = (split(&change.expected), split(&change.actual));
            let e: Vec<&str> = expected.iter().map(String::as_str).collect();
            let a: Vec<&str> = actual.iter().map(String::as_str).collect();
            for (tag, line) in line_diff(&e, &a) {
                lines.push(format!("{tag}{line}"));
            }
        }
        lines
    }
}

/// Longest-common-subsequence line diff; objects are a few dozen lines at most.
fn line_diff<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(char, &'a str)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // On a tie the removed line comes first, as in `diff -u`: `-` before `+`.
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Token normalisation

/// Common column types: upper-cased for readability (type names are case-insensitive).
const TYPES: &[&str] = &[
    "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "TEXT", "VARCHAR", "CHAR", "CLOB", "REAL",
    "DOUBLE", "FLOAT", "NUMERIC", "DECIMAL", "BOOLEAN", "BLOB", "DATE", "DATETIME", "ANY",
];

fn is_simple_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A token as normalised DDL writes it: (text, is a keyword, is punctuation).
fn render(src: &str, t: &Token) -> (String, bool, bool) {
    let text = t.text(src);
    let word = |w: &str| {
        let upper = w.to_ascii_uppercase();
        if is_keyword(&upper) {
            (upper, true, false)
        } else if TYPES.contains(&upper.as_str()) {
            (upper, false, false)
        } else {
            (w.to_ascii_lowercase(), false, false)
        }
    };
    match t.kind {
        Kind::Word => word(text),
        Kind::QuotedIdent => {
            let name = unquote(text);
            if is_simple_identifier(&name) {
                word(&name)
            } else {
                (
                    format!("\"{}\"", name.to_ascii_lowercase().replace('"', "\"\"")),
                    false,
                    false,
                )
            }
        }
        Kind::Blob => (format!("X{}", text[1..].to_ascii_uppercase()), false, false),
        Kind::Number => (text.to_ascii_lowercase(), false, false),
        Kind::String | Kind::Variable => (text.to_string(), false, false),
        Kind::LParen | Kind::RParen | Kind::Comma | Kind::Semi | Kind::Dot | Kind::Op => {
            (text.to_string(), false, true)
        }
        Kind::Space | Kind::Comment => (String::new(), false, false),
    }
}

/// The canonical text of a SQL fragment: trivia dropped, every token normalised (keywords and types upper-cased, names lower-cased and unquoted where that changes nothing),
/// the default `ON DELETE/UPDATE NO ACTION` removed, one space between tokens. Two fragments that
/// differ only in spelling have the same canonical text.
pub fn canonical(src: &str) -> String {
    let words: Vec<String> = significant(src).iter().map(|t| render(src, t).0).collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if words[i] == "ON"
            && matches!(
                words.get(i + 1).map(String::as_str),
                Some("DELETE" | "UPDATE")
            )
            && words.get(i + 2).is_some_and(|w| w == "NO")
            && words.get(i + 3).is_some_and(|w| w == "ACTION")
        {
            i += 4;
            continue;
        }
        out.push(&words[i]);
        i += 1;
    }
    out.join(" ")
}

/// The comparable parts of a `CREATE TABLE`; `None` when it does not parse (then its canonical
/// text is compared).
pub fn table_shape(sql: &str) -> Option<TableShape> {
    let t = parse_create_table(sql).ok()?;
    let mut canon = TableShape::default();
    for c in &t.columns {
        let mut parts: Vec<String> = Vec::new();
        for k in &c.constraints {
            let text = canonical(&sql[k.span.clone()]);
            // A one-column UNIQUE, PRIMARY KEY or REFERENCES on the column means the same as the
            // table constraint on that column: `a UNIQUE` is `UNIQUE (a)`, `a PRIMARY KEY` is
            // `PRIMARY KEY (a)` (a rowid alias either way when the type is INTEGER; not so with
            // DESC, which stays on the column), `a REFERENCES p` is `FOREIGN KEY (a) REFERENCES p`.
            let col = canonical(&quote_name(&c.name));
            let as_table = match &k.kind {
                ColumnConstraintKind::Null => continue,
                ColumnConstraintKind::Unique => {
                    move_to_table(&text, "UNIQUE", &format!("UNIQUE ( {col} )"))
                }
                ColumnConstraintKind::PrimaryKey {
                    desc: false,
                    autoincrement: false,
                } if !text.contains(" ASC") => {
                    move_to_table(&text, "PRIMARY KEY", &format!("PRIMARY KEY ( {col} )"))
                }
                ColumnConstraintKind::References(_) => move_to_table(
                    &text,
                    "REFERENCES",
                    &format!("FOREIGN KEY ( {col} ) REFERENCES"),
                ),
                ColumnConstraintKind::Default { .. } => {
                    parts.push(unparenthesised_default(&text));
                    continue;
                }
                _ => None,
            };
            match as_table {
                Some(constraint) => {
                    canon.constraints.insert(constraint);
                }
                None => parts.push(text),
            }
        }
        parts.sort();
        let ty = c
            .type_span
            .clone()
            .map(|r| canonical(&sql[r]))
            .unwrap_or_default();
        let def = std::iter::once(ty)
            .chain(parts)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        canon.columns.insert(c.name.to_ascii_lowercase(), def);
    }
    for k in &t.constraints {
        canon.constraints.insert(canonical(&sql[k.span.clone()]));
    }
    if t.strict {
        canon.options.insert("STRICT".into());
    }
    if t.without_rowid {
        canon.options.insert("WITHOUT ROWID".into());
    }
    Some(canon)
}

/// `[CONSTRAINT n] KEYWORD rest` → `[CONSTRAINT n] REPLACEMENT rest`.
fn move_to_table(text: &str, keyword: &str, replacement: &str) -> Option<String> {
    let at = text.find(keyword)?;
    let (name, rest) = (&text[..at], &text[at + keyword.len()..]);
    Some(format!("{name}{replacement}{rest}"))
}

/// `DEFAULT (0)` means `DEFAULT 0`: parentheses around a single token change nothing.
fn unparenthesised_default(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    match words.as_slice() {
        [.., "DEFAULT", "(", value, ")"] => {
            let head = &words[..words.len() - 3];
            format!("{} {value}", head.join(" "))
        }
        _ => text.to_string(),
    }
}

fn quote_name(name: &str) -> String {
    crate::sql::quote_ident(name)
}

/// The laid-out normalised form of one DDL statement (see the module header): the text shown in
/// a difference.
pub fn layout(sql: &str) -> String {
    let tokens = significant(sql);
    let words: Vec<String> = tokens
        .iter()
        .take(4)
        .filter(|t| t.kind == Kind::Word)
        .map(|t| t.text(sql).to_ascii_uppercase())
        .collect();
    let create_of = |what: &str| {
        words.first().is_some_and(|w| w == "CREATE")
            && words.iter().skip(1).take(2).any(|w| w == what)
    };
    let (is_table, is_trigger) = (create_of("TABLE"), create_of("TRIGGER"));

    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_body = false; // inside a trigger's BEGIN … END
    let mut prev: Option<(String, bool)> = None; // (text, is_keyword) of the previous token
    let mut newline_before = false;
    for token in &tokens {
        let (text, keyword, is_punct) = render(sql, token);
        if is_trigger && keyword && text == "END" && in_body && depth == 0 {
            newline_before = true;
            in_body = false;
        }
        if newline_before {
            out.push('\n');
            if in_body || (is_table && depth == 1) {
                out.push_str("  ");
            }
            newline_before = false;
        } else if let Some((prev_text, prev_keyword)) = &prev {
            let tight = match text.as_str() {
                ")" | "," | "." | ";" => true,
                "(" => {
                    !prev_keyword
                        && !matches!(prev_text.as_str(), "," | "=" | "(")
                        && !is_operator(prev_text)
                }
                _ => matches!(prev_text.as_str(), "(" | "."),
            };
            if !tight {
                out.push(' ');
            }
        }
        // A table's closing parenthesis goes on its own line.
        if is_table && text == ")" && depth == 1 {
            out.push('\n');
        }
        out.push_str(&text);
        if is_punct {
            match text.as_str() {
                "(" => {
                    depth += 1;
                    if is_table && depth == 1 {
                        newline_before = true;
                    }
                }
                ")" => depth = depth.saturating_sub(1),
                "," if is_table && depth == 1 => newline_before = true,
                ";" if in_body && depth == 0 => newline_before = true,
                _ => {}
            }
        }
        if is_trigger && keyword && text == "BEGIN" && depth == 0 {
            in_body = true;
            newline_before = true;
        }
        prev = Some((text, keyword));
    }
    out
}

fn is_operator(text: &str) -> bool {
    !matches!(text, "(" | ")" | "," | ";" | ".")
        && !text.is_empty()
        && text.chars().all(|c| "<>=!|&+-*/%~?:@$#".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sql: &str) -> Model {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(sql).unwrap();
        Model::read(&c).unwrap()
    }

    fn same(a: &str, b: &str) -> bool {
        let (ma, mb) = (model(a), model(b));
        let diff = ma.diff(&mb, "a", "b");
        assert_eq!(ma.same_as(&mb), diff.is_empty(), "{a} / {b}");
        diff.is_empty()
    }

    #[test]
    fn spelling_is_not_a_difference() {
        let equal = [
            // keyword case, quoting, whitespace, comments
            (
                "CREATE TABLE users (\n id INTEGER PRIMARY KEY, -- the id\n name text NOT NULL DEFAULT 'x  y')",
                "create table \"Users\"(ID integer primary key,/* c */ [name] TEXT not null default 'x  y')",
            ),
            // ON DELETE NO ACTION is the default
            (
                "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id) ON DELETE NO ACTION ON UPDATE NO ACTION)",
                "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id))",
            ),
            // one-column UNIQUE on the column or as a table constraint
            (
                "CREATE TABLE t(a TEXT UNIQUE, b INT)",
                "CREATE TABLE t(a TEXT, b INT, UNIQUE (a))",
            ),
            // a one-column PRIMARY KEY or REFERENCES on the column or as a table constraint,
            // a default in parentheses
            (
                "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(k TEXT PRIMARY KEY, p INT REFERENCES p(id) ON DELETE CASCADE, n INT DEFAULT (0))",
                "CREATE TABLE p(id INTEGER, PRIMARY KEY (id)); CREATE TABLE c(k TEXT, p INT, n INT DEFAULT 0, PRIMARY KEY (k), FOREIGN KEY (p) REFERENCES p(id) ON DELETE CASCADE)",
            ),
            // column order, constraint order, explicit NULL
            (
                "CREATE TABLE t(a TEXT NOT NULL DEFAULT 'x', b INT NULL)",
                "CREATE TABLE t(b INT, a TEXT DEFAULT 'x' NOT NULL)",
            ),
            // views, indexes and triggers by tokens
            (
                "CREATE TABLE t(a); CREATE VIEW v AS SELECT a FROM t; CREATE INDEX i ON t(a) WHERE a > 1; CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; END",
                "CREATE TABLE \"T\"(a); CREATE VIEW \"v\" AS select  A from T; create index I on t (a) where a>1; CREATE TRIGGER tr after insert on t begin update t set a=1; end",
            ),
        ];
        for (a, b) in equal {
            assert!(same(a, b), "expected the same schema:\n{a}\n{b}");
        }
    }

    #[test]
    fn meaning_is_a_difference() {
        let differ = [
            ("CREATE TABLE t(a TEXT)", "CREATE TABLE t(a INTEGER)"),
            ("CREATE TABLE t(a TEXT)", "CREATE TABLE t(a TEXT NOT NULL)"),
            ("CREATE TABLE t(a DEFAULT 'x')", "CREATE TABLE t(a DEFAULT 'X')"),
            ("CREATE TABLE t(a TEXT)", "CREATE TABLE t(a TEXT COLLATE NOCASE)"),
            ("CREATE TABLE t(a INT CHECK (a > 0))", "CREATE TABLE t(a INT CHECK (a > 1))"),
            ("CREATE TABLE t(a INT)", "CREATE TABLE t(a INT) STRICT"),
            ("CREATE TABLE t(a INT PRIMARY KEY)", "CREATE TABLE t(a INT PRIMARY KEY) WITHOUT ROWID"),
            ("CREATE TABLE t(a, b, UNIQUE (a, b))", "CREATE TABLE t(a, b, UNIQUE (b), UNIQUE (a))"),
            ("CREATE TABLE t(id INTEGER PRIMARY KEY DESC)", "CREATE TABLE t(id INTEGER, PRIMARY KEY (id))"),
            ("CREATE TABLE t(a DEFAULT (1 + 1))", "CREATE TABLE t(a DEFAULT 2)"),
            ("CREATE TABLE t(a, b, PRIMARY KEY (a, b))", "CREATE TABLE t(a PRIMARY KEY, b)"),
            (
                "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id))",
                "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p REFERENCES p(id) ON DELETE CASCADE)",
            ),
            ("CREATE TABLE t(a); CREATE INDEX i ON t(a)", "CREATE TABLE t(a); CREATE UNIQUE INDEX i ON t(a)"),
            ("CREATE TABLE t(a); CREATE INDEX i ON t(a)", "CREATE TABLE t(a); CREATE INDEX i ON t(a) WHERE a IS NOT NULL"),
            (
                "CREATE TABLE t(a); CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; END",
                "CREATE TABLE t(a); CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 2; END",
            ),
            ("CREATE TABLE t(a, b); CREATE VIEW v AS SELECT a FROM t", "CREATE TABLE t(a, b); CREATE VIEW v AS SELECT b FROM t"),
            ("CREATE TABLE t(a)", "CREATE TABLE t(a, b)"),
            ("CREATE TABLE t(a)", "CREATE TABLE t(a); CREATE TABLE u(a)"),
        ];
        for (a, b) in differ {
            assert!(!same(a, b), "expected a difference:\n{a}\n{b}");
        }
    }

    #[test]
    fn internals_and_history_are_left_out() {
        let m = model(
            "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, a UNIQUE); ANALYZE; \
             CREATE TABLE refinery_schema_history(version INT)",
        );
        let names: Vec<&str> = m.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["t"]);
    }

    #[test]
    fn layout_one_column_per_line() {
        let a = "CREATE TABLE users (\n    id INTEGER PRIMARY KEY, -- the id\n    name text NOT NULL DEFAULT 'x  y'\n)";
        assert_eq!(
            layout(a),
            "CREATE TABLE users(\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL DEFAULT 'x  y'\n)"
        );
        let sql = "CREATE TABLE posts (id INTEGER, status TEXT CHECK (status IN ('draft', 'posted')), UNIQUE (id, status))";
        assert_eq!(
            layout(sql),
            "CREATE TABLE posts(\n  id INTEGER,\n  status TEXT CHECK (status IN ('draft', 'posted')),\n  UNIQUE (id, status)\n)"
        );
        assert_eq!(
            layout("CREATE INDEX idx ON posts (scheduled_at) WHERE status = 'scheduled'"),
            "CREATE INDEX idx ON posts(scheduled_at) WHERE status = 'scheduled'"
        );
        let sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); UPDATE t SET b = 1; END";
        assert_eq!(
            layout(sql),
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES (new.a);\n  UPDATE t SET b = 1;\nEND"
        );
    }

    #[test]
    fn diff_names_objects_and_shows_lines() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(a INTEGER, b TEXT); CREATE INDEX i ON t(a);")
            .unwrap();
        let before = Model::read(&conn).unwrap();
        conn.execute_batch("DROP INDEX i; CREATE TABLE extra(x); ALTER TABLE t ADD COLUMN c REAL;")
            .unwrap();
        let after = Model::read(&conn).unwrap();
        let diff = before.diff(&after, "before", "after");
        let summary: Vec<(String, Change)> = diff
            .changes
            .iter()
            .map(|c| (c.object(), c.change))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("table extra".to_string(), Change::Unexpected),
                ("table t".to_string(), Change::Changed),
                ("index i on t".to_string(), Change::Missing),
            ]
        );
        let lines = diff.lines();
        assert!(lines.contains(&"-  b TEXT".to_string()), "{lines:#?}");
        assert!(lines.contains(&"+  b TEXT,".to_string()), "{lines:#?}");
        assert!(lines.contains(&"+  c REAL".to_string()), "{lines:#?}");
        assert!(
            lines.contains(&"-CREATE INDEX i ON t(a)".to_string()),
            "{lines:#?}"
        );
        assert!(before.diff(&before.clone(), "a", "b").is_empty());
    }
}
