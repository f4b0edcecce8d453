//! The one SQL lexer: enough to find statements, clauses and identifiers in SQL without ever
//! changing a byte we did not mean to change; plus quoting ([`quote_ident`], [`quote_str`]) and
//! source positions ([`line_of`]). Everything that reads SQL text in dbtool tokenizes it here.
//!
//! Two dialects share it ([`Dialect`]): SQLite's (the default: [`tokenize`], [`significant`],
//! [`split_statements`]) and PostgreSQL's, which differs only where splitting a file into
//! statements depends on it: dollar quotes (`$$…$$`, `$tag$…$tag$`; `$1` is a parameter),
//! `E'…'` strings with backslash escapes, nested block comments, `[`/`` ` `` being operators
//! rather than identifier quotes, and SQL-standard function bodies (`BEGIN ATOMIC … END`).
//! [`statements`] splits a file in either dialect.
//!
//! Invariants: tokens cover the input exactly (concatenating every token's text, whitespace and
//! comments included, gives back the input), offsets are byte offsets on `char` boundaries, and
//! nothing here allocates per token except the token vector. Unterminated strings, quoted
//! identifiers, dollar quotes and block comments run to the end of the input (the database would
//! reject them; we only need not to panic and not to misplace later tokens).

mod split;

pub use split::{split_statements, statements, Statement};

/// Which database's lexical rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Sqlite,
    Postgres,
}

/// What a token is. Keywords are not distinguished from identifiers: SQLite lets most keywords be
/// used as names, so callers ask [`Token::is_word`] for the keyword they expect at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Spaces, tabs, newlines.
    Space,
    /// `-- …` to the end of the line, or `/* … */`.
    Comment,
    /// A bare word: keyword or unquoted identifier (ASCII letters, digits, `_`, `$`, any non-ASCII).
    Word,
    /// `"…"`; in SQLite also `` `…` `` and `[…]`.
    QuotedIdent,
    /// `'…'`; in PostgreSQL also `E'…'`, `B'…'`, `N'…'` and dollar-quoted `$tag$…$tag$`.
    String,
    /// `x'…'`.
    Blob,
    /// Integer, real or hex literal.
    Number,
    /// SQLite: `?`, `?NNN`, `:name`, `@name`, `$name`. PostgreSQL: `$1`.
    Variable,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// `.`.
    Dot,
    /// Any other operator (`=`, `<>`, `||`, `->>`, …).
    Op,
}

/// One token: its kind and its byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's source text.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.start..self.end]
    }

    /// Whitespace and comments: skipped by every parser here.
    pub fn is_trivia(&self) -> bool {
        matches!(self.kind, Kind::Space | Kind::Comment)
    }

    /// A bare word equal to `word`, ignoring ASCII case (SQLite's keyword rule).
    pub fn is_word(&self, src: &str, word: &str) -> bool {
        self.kind == Kind::Word && self.text(src).eq_ignore_ascii_case(word)
    }

    /// Something that can name a table or column: a bare word, a quoted identifier, or a string
    /// (SQLite accepts `'name'` where a name is expected, for compatibility).
    pub fn is_name(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::QuotedIdent | Kind::String)
    }
}

/// Split `src` into tokens by SQLite's rules, trivia included.
pub fn tokenize(src: &str) -> Vec<Token> {
    tokenize_in(src, Dialect::Sqlite)
}

/// Split `src` into tokens by `dialect`'s rules, trivia included.
pub fn tokenize_in(src: &str, dialect: Dialect) -> Vec<Token> {
    let pg = dialect == Dialect::Postgres;
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
                {
                    i += 1;
                }
                Kind::Space
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(bytes, i, pg);
                Kind::Comment
            }
            b'\'' => {
                i = quoted_end(bytes, i, b'\'');
                Kind::String
            }
            // PostgreSQL's escape strings: a backslash escapes the next byte, `\'` included.
            b'e' | b'E' if pg && bytes.get(i + 1) == Some(&b'\'') => {
                i = escape_string_end(bytes, i + 1);
                Kind::String
            }
            // Bit strings and national strings: plain quoting rules.
            b'b' | b'B' | b'n' | b'N' if pg && bytes.get(i + 1) == Some(&b'\'') => {
                i = quoted_end(bytes, i + 1, b'\'');
                Kind::String
            }
            b'$' if pg => {
                if let Some(end) = dollar_quote_end(bytes, i) {
                    i = end;
                    Kind::String
                } else if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    Kind::Variable
                } else {
                    i += 1;
                    Kind::Op
                }
            }
            b'"' => {
                i = quoted_end(bytes, i, b'"');
                Kind::QuotedIdent
            }
            b'`' if !pg => {
                i = quoted_end(bytes, i, b'`');
                Kind::QuotedIdent
            }
            b'[' if !pg => {
                i += 1;
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                Kind::QuotedIdent
            }
            b'x' | b'X' if bytes.get(i + 1) == Some(&b'\'') => {
                i = quoted_end(bytes, i + 1, b'\'');
                Kind::Blob
            }
            b'0'..=b'9' => {
                i = number_end(bytes, i, pg);
                Kind::Number
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(bytes, i, pg);
                Kind::Number
            }
            b'?' if !pg => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Variable
            }
            b':' | b'@' | b'$' if !pg && bytes.get(i + 1).is_some_and(|&c| is_word_byte(c)) => {
                i += 1;
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Kind::Variable
            }
            b'(' => {
                i += 1;
                Kind::LParen
            }
            b')' => {
                i += 1;
                Kind::RParen
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b';' => {
                i += 1;
                Kind::Semi
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            _ if is_word_start(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += operator_len(&bytes[i..], pg);
                Kind::Op
            }
        };
        // Never split a UTF-8 sequence (an operator byte can't start one, but stay defensive).
        while i < bytes.len() && !src.is_char_boundary(i) {
            i += 1;
        }
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// End (exclusive) of a literal opened by `quote` at `open`; a doubled quote is an escaped quote.
fn quoted_end(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// End (exclusive) of a `/* … */` comment opened at `open`. PostgreSQL's nest (`/* /* */ */`);
/// SQLite's end at the first `*/`.
fn block_comment_end(bytes: &[u8], open: usize, nested: bool) -> usize {
    let mut depth = 1usize;
    let mut i = open + 2;
    while i < bytes.len() {
        if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 || !nested {
                return i;
            }
        } else if nested && bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// End (exclusive) of PostgreSQL's `E'…'` whose quote is at `open`: `\x` escapes any byte
/// (continuation bytes of a multi-byte character are never `'` or `\\`, so skipping one is safe),
/// and `''` is a quote as in plain strings.
fn escape_string_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// When `$` at `open` starts a PostgreSQL dollar quote (`$$` or `$tag$`, the tag being an
/// identifier without `$`), the end (exclusive) of the quoted string: after the same delimiter,
/// compared byte for byte, or the end of the input.
fn dollar_quote_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if i < bytes.len() && is_word_start(bytes[i]) {
        while i < bytes.len() && is_word_byte(bytes[i]) && bytes[i] != b'$' {
            i += 1;
        }
    }
    if bytes.get(i) != Some(&b'$') {
        return None;
    }
    let delimiter = &bytes[open..=i];
    let body = i + 1;
    Some(
        bytes[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(bytes.len(), |at| body + at + delimiter.len()),
    )
}

fn number_end(bytes: &[u8], start: usize, pg: bool) -> usize {
    let mut i = start;
    if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < bytes.len() && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            i += 1;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    // SQLite rejects `123abc`; swallow the letters so they don't become a separate word. Not a
    // `$` in PostgreSQL, where `1$$…$$` is a number and a dollar quote.
    while i < bytes.len() && is_word_byte(bytes[i]) && !(pg && bytes[i] == b'$') {
        i += 1;
    }
    i
}

fn operator_len(rest: &[u8], pg: bool) -> usize {
    const THREE: [&[u8]; 1] = [b"->>"];
    const TWO: [&[u8]; 9] = [
        b"||", b"<=", b">=", b"==", b"!=", b"<>", b"<<", b">>", b"->",
    ];
    if THREE.iter().any(|op| rest.starts_with(op)) {
        3
    } else if TWO.iter().any(|op| rest.starts_with(op)) || (pg && rest.starts_with(b"::")) {
        2
    } else {
        1
    }
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The name a name token stands for: quotes removed and doubled quotes undone. Bare words are
/// returned as written (SQLite compares names ignoring ASCII case; see [`same_name`]).
pub fn unquote(text: &str) -> String {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(&q @ (b'"' | b'`' | b'\'')) if text.len() >= 2 && bytes[text.len() - 1] == q => {
            let q = q as char;
            let inner = &text[1..text.len() - 1];
            inner.replace(&format!("{q}{q}"), &q.to_string())
        }
        Some(b'[') if text.ends_with(']') => text[1..text.len() - 1].to_string(),
        _ => text.to_string(),
    }
}

/// SQLite's identifier comparison: case-insensitive for ASCII letters only.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Quote an identifier for SQL: `"na""me"` (the db layer's, which this module's users share).
pub use crate::db::quote_ident;

/// Quote a string literal for SQL.
pub fn quote_str(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The significant (non-trivia) tokens of `src` (SQLite).
pub fn significant(src: &str) -> Vec<Token> {
    significant_in(src, Dialect::Sqlite)
}

/// The significant (non-trivia) tokens of `src` in `dialect`.
pub fn significant_in(src: &str, dialect: Dialect) -> Vec<Token> {
    tokenize_in(src, dialect)
        .into_iter()
        .filter(|t| !t.is_trivia())
        .collect()
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

/// Whether `upper` (already upper-cased) is one of SQLite's keywords.
pub fn is_keyword(upper: &str) -> bool {
    KEYWORDS.binary_search(&upper).is_ok()
}

/// 1-based line number of byte offset `at` in `src`.
pub fn line_of(src: &str, at: usize) -> usize {
    src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        significant(src)
            .iter()
            .map(|t| (t.kind, t.text(src)))
            .collect()
    }

    #[test]
    fn tokens_cover_the_input_exactly() {
        let src = "CREATE TABLE \"we\"\"ird\" ([a b] TEXT DEFAULT 'it''s', `c` -- note\n, é INT /* x */);";
        let joined: String = tokenize(src).iter().map(|t| t.text(src)).collect();
        assert_eq!(joined, src);
    }

    #[test]
    fn quoted_forms_and_operators() {
        assert_eq!(
            kinds(r#"a."b""c" || 'x''y' <> X'00ff' ->> 1.5e-3"#),
            vec![
                (Kind::Word, "a"),
                (Kind::Dot, "."),
                (Kind::QuotedIdent, "\"b\"\"c\""),
                (Kind::Op, "||"),
                (Kind::String, "'x''y'"),
                (Kind::Op, "<>"),
                (Kind::Blob, "X'00ff'"),
                (Kind::Op, "->>"),
                (Kind::Number, "1.5e-3"),
            ]
        );
        assert_eq!(unquote("\"b\"\"c\""), "b\"c");
        assert_eq!(unquote("[a b]"), "a b");
        assert_eq!(unquote("`x``y`"), "x`y");
        assert_eq!(unquote("'n'"), "n");
    }

    #[test]
    fn non_ascii_words_and_unterminated_input_do_not_panic() {
        assert_eq!(
            kinds("été_1 ünï"),
            vec![(Kind::Word, "été_1"), (Kind::Word, "ünï")]
        );
        for src in ["'open", "\"open", "[open", "/* open", "x'0", "é'"] {
            let joined: String = tokenize(src).iter().map(|t| t.text(src)).collect();
            assert_eq!(joined, src);
        }
    }

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
    }
}
