//! Schema snapshots, normalised DDL and readable differences.
//!
//! A snapshot is every user object of `sqlite_schema` (tables, indexes, triggers, views) with the
//! SQL SQLite stored for it. Left out, because they are implied or not the user's: `sqlite_*`
//! objects (`sqlite_sequence`, `sqlite_stat1`, automatic indexes) and the migration history table.
//!
//! Two snapshots are compared by *normalised* DDL, so formatting never counts as a difference:
//! comments and whitespace are dropped, keywords are upper-cased, identifiers lower-cased (SQLite
//! compares ASCII identifiers case-insensitively) and unquoted when quoting changes nothing;
//! string literals stay as written. The normalised text is laid out one column per line for
//! tables and one statement per line for triggers, so a difference reads as a line diff.
//! Object names are matched case-insensitively, as SQLite does.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use super::Result;
use crate::db::{DbError, HISTORY_TABLE};

/// One object of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaObject {
    /// `table`, `index`, `trigger` or `view`.
    pub kind: String,
    pub name: String,
    /// The table an index or trigger belongs to (the object's own name for tables and views).
    pub table: String,
    /// The SQL as SQLite stored it.
    pub sql: String,
}

/// Every user object of a database, sorted by kind, then name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    pub objects: Vec<SchemaObject>,
}

fn kind_rank(kind: &str) -> u8 {
    match kind {
        "table" => 0,
        "view" => 1,
        "index" => 2,
        "trigger" => 3,
        _ => 4,
    }
}

impl Schema {
    /// Read the schema of an open database.
    pub fn read(conn: &Connection, path: &Path) -> Result<Schema> {
        let run = || -> rusqlite::Result<Vec<SchemaObject>> {
            let mut stmt = conn.prepare_cached(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema \
                 WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ?1",
            )?;
            let rows = stmt.query_map([HISTORY_TABLE], |r| {
                Ok(SchemaObject {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    table: r.get(2)?,
                    sql: r.get(3)?,
                })
            })?;
            rows.collect()
        };
        let mut objects = run().map_err(|e| DbError::sqlite("reading the schema", path, e))?;
        objects.sort_by_cached_key(|o| (kind_rank(&o.kind), o.name.to_ascii_lowercase()));
        Ok(Schema { objects })
    }

    /// What differs between `self` (what should be) and `actual`. `expected_label` and
    /// `actual_label` say what the two sides are ("the migrations", "the database").
    pub fn diff(&self, actual: &Schema, expected_label: &str, actual_label: &str) -> SchemaDiff {
        let mut diff = SchemaDiff {
            expected: expected_label.to_string(),
            actual: actual_label.to_string(),
            changes: Vec::new(),
        };
        if self == actual {
            return diff; // the common case, and the stairway's hot path: no normalising
        }
        let key = |o: &SchemaObject| (kind_rank(&o.kind), o.name.to_ascii_lowercase());
        // (kind, name) -> (expected side, actual side)
        type Sides<'a> = (Option<&'a SchemaObject>, Option<&'a SchemaObject>);
        let mut sides: BTreeMap<(u8, String), Sides<'_>> = BTreeMap::new();
        for o in &self.objects {
            sides.entry(key(o)).or_default().0 = Some(o);
        }
        for o in &actual.objects {
            sides.entry(key(o)).or_default().1 = Some(o);
        }
        for (expected, actual) in sides.into_values() {
            let change = match (expected, actual) {
                (Some(e), Some(a)) => {
                    if e.sql == a.sql {
                        continue;
                    }
                    let (ne, na) = (normalise(&e.sql), normalise(&a.sql));
                    if ne == na {
                        continue;
                    }
                    ObjectChange {
                        kind: e.kind.clone(),
                        name: e.name.clone(),
                        table: e.table.clone(),
                        change: Change::Changed,
                        expected: Some(ne),
                        actual: Some(na),
                    }
                }
                (Some(e), None) => ObjectChange {
                    kind: e.kind.clone(),
                    name: e.name.clone(),
                    table: e.table.clone(),
                    change: Change::Missing,
                    expected: Some(normalise(&e.sql)),
                    actual: None,
                },
                (None, Some(a)) => ObjectChange {
                    kind: a.kind.clone(),
                    name: a.name.clone(),
                    table: a.table.clone(),
                    change: Change::Unexpected,
                    expected: None,
                    actual: Some(normalise(&a.sql)),
                },
                (None, None) => continue,
            };
            diff.changes.push(change);
        }
        diff
    }
}

/// How one object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// On the expected side only (dropped by hand; removed by a down that should have kept it).
    Missing,
    /// On the actual side only (created by hand; left behind by a down).
    Unexpected,
    /// On both sides with different normalised DDL.
    Changed,
}

/// One object that differs, with its normalised DDL on each side.
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
        if self.kind == "index" || self.kind == "trigger" {
            format!("{} {} on {}", self.kind, self.name, self.table)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }
}

/// The difference between two schemas; empty when they match.
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
            let expected: Vec<&str> = change
                .expected
                .as_deref()
                .map_or(Vec::new(), |s| s.lines().collect());
            let actual: Vec<&str> = change
                .actual
                .as_deref()
                .map_or(Vec::new(), |s| s.lines().collect());
            for (tag, line) in line_diff(&expected, &actual) {
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
// Normalisation

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word: keyword, identifier, type or function name.
    Word(String),
    /// `"x"`, `[x]` or `` `x` ``, unescaped.
    Quoted(String),
    /// A string or blob literal, kept exactly.
    Literal(String),
    Number(String),
    Punct(&'static str),
}

/// SQLite's keywords (https://sqlite.org/lang_keywords.html), plus `STRICT` and `ROWID`, which
/// read better upper-cased.
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWID",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "STRICT",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
];

/// Common column types: upper-cased for readability (type names are case-insensitive).
const TYPES: &[&str] = &[
    "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "TEXT", "VARCHAR", "CHAR", "CLOB", "REAL",
    "DOUBLE", "FLOAT", "NUMERIC", "DECIMAL", "BOOLEAN", "BLOB", "DATE", "DATETIME", "ANY",
];

fn is_keyword(upper: &str) -> bool {
    KEYWORDS.binary_search(&upper).is_ok()
}

fn is_simple_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const PUNCT: &[&str] = &[
    "->>", "->", "<=", ">=", "<>", "!=", "==", "||", "<<", ">>", "(", ")", ",", ";", ".", "=", "<",
    ">", "+", "-", "*", "/", "%", "&", "|", "~", "?", ":", "@", "$", "#",
];

fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &sql[i..];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            i += body.find("*/").map_or(rest.len(), |end| end + 4);
        } else if c == b'\'' {
            let end = quoted_end(rest, b'\'');
            tokens.push(Token::Literal(rest[..end].to_string()));
            i += end;
        } else if (c == b'x' || c == b'X') && rest[1..].starts_with('\'') {
            let end = 1 + quoted_end(&rest[1..], b'\'');
            tokens.push(Token::Literal(format!(
                "X{}",
                rest[1..end].to_ascii_uppercase()
            )));
            i += end;
        } else if c == b'"' || c == b'`' {
            let end = quoted_end(rest, c);
            let doubled = if c == b'"' { "\"\"" } else { "``" };
            let inner = inner_of(rest, end, c as char);
            tokens.push(Token::Quoted(inner.replace(doubled, &doubled[..1])));
            i += end;
        } else if c == b'[' {
            let end = rest.find(']').map_or(rest.len(), |e| e + 1);
            tokens.push(Token::Quoted(inner_of(rest, end, ']').to_string()));
            i += end;
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let mut end = 1;
            let rb = rest.as_bytes();
            while end < rb.len() {
                let d = rb[end];
                let exponent_sign = (d == b'+' || d == b'-') && matches!(rb[end - 1], b'e' | b'E');
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exponent_sign {
                    end += 1;
                } else {
                    break;
                }
            }
            tokens.push(Token::Number(rest[..end].to_ascii_lowercase()));
            i += end;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let end = rest
                .char_indices()
                .find(|&(_, ch)| {
                    !(ch.is_alphanumeric() || ch == '_' || ch == '$' || !ch.is_ascii())
                })
                .map_or(rest.len(), |(e, _)| e);
            tokens.push(Token::Word(rest[..end].to_string()));
            i += end;
        } else {
            match PUNCT.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => {
                    tokens.push(Token::Punct(p));
                    i += p.len();
                }
                None => {
                    // Anything else (a stray byte SQLite would have refused): keep it visible.
                    let ch = rest.chars().next().unwrap_or(' ');
                    tokens.push(Token::Literal(ch.to_string()));
                    i += ch.len_utf8();
                }
            }
        }
    }
    tokens
}

/// Length of a quoted token starting at `s[0] == quote`, with doubled quotes as escapes.
fn quoted_end(s: &str, quote: u8) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The text between the opening quote and the closing one (to the end when unterminated).
fn inner_of(token: &str, end: usize, close: char) -> &str {
    let token = &token[..end];
    let body = &token[1..];
    body.strip_suffix(close).unwrap_or(body)
}

/// How a word or quoted identifier is written in normalised DDL.
fn render_word(word: &str) -> (String, bool) {
    let upper = word.to_ascii_uppercase();
    if is_keyword(&upper) {
        (upper, true)
    } else if TYPES.contains(&upper.as_str()) {
        (upper, false)
    } else {
        (word.to_ascii_lowercase(), false)
    }
}

/// The normalised, laid-out form of one DDL statement (see the module header).
pub fn normalise(sql: &str) -> String {
    let tokens = tokenize(sql);
    let words: Vec<String> = tokens
        .iter()
        .take(4)
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    let is_table = words.first().is_some_and(|w| w == "CREATE")
        && words.iter().skip(1).take(2).any(|w| w == "TABLE");
    let is_trigger = words.first().is_some_and(|w| w == "CREATE")
        && words.iter().skip(1).take(2).any(|w| w == "TRIGGER");

    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_body = false; // inside a trigger's BEGIN … END
    let mut prev: Option<(String, bool)> = None; // (text, is_keyword) of the previous token
    let mut newline_before = false;
    for token in &tokens {
        let (text, keyword, is_punct) = match token {
            Token::Word(w) => {
                let (t, k) = render_word(w);
                (t, k, false)
            }
            Token::Quoted(q) => {
                if is_simple_identifier(q) {
                    let (t, k) = render_word(q);
                    (t, k, false)
                } else {
                    (
                        format!("\"{}\"", q.to_ascii_lowercase().replace('"', "\"\"")),
                        false,
                        false,
                    )
                }
            }
            Token::Literal(l) => (l.clone(), false, false),
            Token::Number(n) => (n.clone(), false, false),
            Token::Punct(p) => (p.to_string(), false, true),
        };
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
    PUNCT.contains(&text) && !matches!(text, "(" | ")" | "," | ";" | ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
    }

    #[test]
    fn formatting_does_not_count() {
        let a = "CREATE TABLE users (\n    id INTEGER PRIMARY KEY, -- the id\n    name text NOT NULL DEFAULT 'x  y'\n)";
        let b = "create table \"Users\"(id integer primary key,/* c */ \"name\" TEXT not null default 'x  y')";
        assert_eq!(normalise(a), normalise(b));
        assert_eq!(
            normalise(a),
            "CREATE TABLE users(\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL DEFAULT 'x  y'\n)"
        );
    }

    #[test]
    fn content_counts() {
        // string literals keep their case and spacing; a changed column is a difference
        assert_ne!(
            normalise("CREATE TABLE t(a DEFAULT 'x')"),
            normalise("CREATE TABLE t(a DEFAULT 'X')")
        );
        assert_ne!(
            normalise("CREATE TABLE t(a TEXT)"),
            normalise("CREATE TABLE t(a TEXT NOT NULL)")
        );
        assert_ne!(
            normalise("CREATE INDEX i ON t(a)"),
            normalise("CREATE UNIQUE INDEX i ON t(a)")
        );
    }

    #[test]
    fn nested_parentheses_and_indexes() {
        let sql = "CREATE TABLE posts (id INTEGER, status TEXT CHECK (status IN ('draft', 'posted')), UNIQUE (id, status))";
        assert_eq!(
            normalise(sql),
            "CREATE TABLE posts(\n  id INTEGER,\n  status TEXT CHECK (status IN ('draft', 'posted')),\n  UNIQUE (id, status)\n)"
        );
        assert_eq!(
            normalise("CREATE INDEX idx ON posts (scheduled_at) WHERE status = 'scheduled'"),
            "CREATE INDEX idx ON posts(scheduled_at) WHERE status = 'scheduled'"
        );
    }

    #[test]
    fn triggers_one_statement_per_line() {
        let sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); UPDATE t SET b = 1; END";
        assert_eq!(
            normalise(sql),
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES (new.a);\n  UPDATE t SET b = 1;\nEND"
        );
    }

    #[test]
    fn diff_names_objects_and_shows_lines() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        conn.execute_batch("CREATE TABLE t(a INTEGER, b TEXT); CREATE INDEX i ON t(a);")
            .unwrap();
        let before = Schema::read(&conn, path).unwrap();
        conn.execute_batch("DROP INDEX i; CREATE TABLE extra(x); ALTER TABLE t ADD COLUMN c REAL;")
            .unwrap();
        let after = Schema::read(&conn, path).unwrap();
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
