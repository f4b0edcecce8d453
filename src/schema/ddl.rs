//! Parse a `CREATE TABLE` statement into the byte ranges of its parts, so an edit can replace one
//! clause and keep every other byte as written.
//!
//! Invariants: every range is a byte range of the source text given to [`parse_create_table`];
//! a column's range runs from its name to the end of its last clause; a clause's range starts at
//! its `CONSTRAINT name` when it has one. Names are unquoted ([`crate::sql::unquote`]);
//! comparisons between names use SQLite's ASCII case-insensitive rule.

use std::ops::Range;

use crate::sql::{significant, unquote, Kind, Token};

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct CreateTable {
    /// The table name as written, schema qualifier included (`main."x"`).
    pub name_span: Range<usize>,
    /// The table name, unquoted.
    pub name: String,
    /// Offset of the `(` that opens the body.
    pub open: usize,
    /// Offset of the `)` that closes the body.
    pub close: usize,
    pub columns: Vec<Column>,
    pub constraints: Vec<TableConstraint>,
    pub without_rowid: bool,
    pub strict: bool,
}

/// One column definition.
#[derive(Debug, Clone)]
pub struct Column {
    pub span: Range<usize>,
    pub name: String,
    pub name_span: Range<usize>,
    /// The declared type, as written (`VARCHAR(20)`), if any.
    pub type_span: Option<Range<usize>>,
    pub constraints: Vec<ColumnConstraint>,
}

/// A clause of a column definition.
#[derive(Debug, Clone)]
pub struct ColumnConstraint {
    pub span: Range<usize>,
    /// `CONSTRAINT name`, unquoted.
    pub name: Option<String>,
    pub kind: ColumnConstraintKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnConstraintKind {
    PrimaryKey {
        desc: bool,
        autoincrement: bool,
    },
    NotNull,
    Null,
    Unique,
    /// The expression between the parentheses.
    Check {
        expr: Range<usize>,
    },
    /// The value after `DEFAULT` (a literal, signed number, word or parenthesised expression).
    Default {
        value: Range<usize>,
    },
    Collate {
        name: String,
    },
    References(ForeignKey),
    /// `[GENERATED ALWAYS] AS (expr) [STORED|VIRTUAL]`.
    Generated {
        expr: Range<usize>,
        stored: bool,
    },
}

/// The `REFERENCES` part of a foreign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub table: String,
    pub columns: Vec<String>,
    /// `ON DELETE` action as written, upper-cased with single spaces (`SET NULL`).
    pub on_delete: Option<String>,
}

/// A table constraint.
#[derive(Debug, Clone)]
pub struct TableConstraint {
    pub span: Range<usize>,
    pub name: Option<String>,
    pub kind: TableConstraintKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableConstraintKind {
    PrimaryKey {
        columns: Vec<String>,
    },
    Unique {
        columns: Vec<String>,
    },
    Check {
        expr: Range<usize>,
    },
    ForeignKey {
        columns: Vec<String>,
        fk: ForeignKey,
    },
}

/// Why a statement could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl CreateTable {
    /// The column named `name` (SQLite's case rule), with its position.
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name.eq_ignore_ascii_case(name))
    }
}

impl Column {
    /// The declared type text, or "" when none.
    pub fn type_text<'a>(&self, src: &'a str) -> &'a str {
        self.type_span.clone().map_or("", |r| &src[r])
    }

    pub fn has(&self, pred: impl Fn(&ColumnConstraintKind) -> bool) -> bool {
        self.constraints.iter().any(|c| pred(&c.kind))
    }

    pub fn generated(&self) -> bool {
        self.has(|k| matches!(k, ColumnConstraintKind::Generated { .. }))
    }
}

/// Words that start a column constraint; a column's type name stops at one of them.
const COLUMN_CONSTRAINT_START: &[&str] = &[
    "CONSTRAINT",
    "PRIMARY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
];

/// Words that start a table constraint.
const TABLE_CONSTRAINT_START: &[&str] = &["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

struct Cursor<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<Token> {
        self.toks.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<Token> {
        self.toks.get(self.pos + ahead).copied()
    }

    fn at_word(&self, word: &str) -> bool {
        self.peek().is_some_and(|t| t.is_word(self.src, word))
    }

    fn at_any_word(&self, words: &[&str]) -> bool {
        words.iter().any(|w| self.at_word(w))
    }

    fn at_kind(&self, kind: Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.src.len(), |t| t.start)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn bump(&mut self) -> Result<Token, ParseError> {
        match self.peek() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => self.err("unexpected end of statement"),
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<Token, ParseError> {
        if self.at_word(word) {
            self.bump()
        } else {
            self.err(format!("expected {word}"))
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.at_word(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kind(&mut self, kind: Kind, what: &str) -> Result<Token, ParseError> {
        if self.at_kind(kind) {
            self.bump()
        } else {
            self.err(format!("expected {what}"))
        }
    }

    fn name(&mut self) -> Result<(Token, String), ParseError> {
        match self.peek() {
            Some(t) if t.is_name() => {
                self.pos += 1;
                Ok((t, unquote(t.text(self.src))))
            }
            _ => self.err("expected a name"),
        }
    }

    /// At `(`: skip to the matching `)`; returns (open token, close token).
    fn balanced(&mut self) -> Result<(Token, Token), ParseError> {
        let open = self.expect_kind(Kind::LParen, "(")?;
        let mut depth = 1;
        loop {
            let t = self.bump()?;
            match t.kind {
                Kind::LParen => depth += 1,
                Kind::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((open, t));
                    }
                }
                _ => {}
            }
        }
    }

    /// The byte range strictly inside a balanced group.
    fn inner(&self, open: Token, close: Token) -> Range<usize> {
        open.end..close.start
    }

    /// Names in a parenthesised list: the first name of each comma-separated item.
    fn name_list(&mut self) -> Result<Vec<String>, ParseError> {
        let start = self.pos;
        self.balanced()?;
        let end = self.pos;
        let mut names = Vec::new();
        let mut depth = 0;
        let mut want = true;
        for t in &self.toks[start + 1..end - 1] {
            match t.kind {
                Kind::LParen => depth += 1,
                Kind::RParen => depth -= 1,
                Kind::Comma if depth == 0 => want = true,
                _ if want && depth == 0 && t.is_name() => {
                    names.push(unquote(t.text(self.src)));
                    want = false;
                }
                _ => {}
            }
        }
        Ok(names)
    }

    fn on_conflict(&mut self) -> Result<(), ParseError> {
        if self.at_word("ON")
            && self
                .peek_at(1)
                .is_some_and(|t| t.is_word(self.src, "CONFLICT"))
        {
            self.pos += 2;
            self.name()?;
        }
        Ok(())
    }

    fn end_of_last(&self) -> usize {
        self.toks[self.pos - 1].end
    }
}

/// Parse `CREATE [TEMP] TABLE [IF NOT EXISTS] [schema.]name (…) [options]`.
pub fn parse_create_table(src: &str) -> Result<CreateTable, ParseError> {
    let mut c = Cursor {
        src,
        toks: significant(src),
        pos: 0,
    };
    c.expect_word("CREATE")?;
    if !c.eat_word("TEMP") {
        c.eat_word("TEMPORARY");
    }
    c.expect_word("TABLE")?;
    if c.at_word("IF") {
        c.pos += 1;
        c.expect_word("NOT")?;
        c.expect_word("EXISTS")?;
    }
    let (first, mut name) = c.name()?;
    let mut name_end = first.end;
    if c.at_kind(Kind::Dot) {
        c.pos += 1;
        let (t, n) = c.name()?;
        name = n;
        name_end = t.end;
    }
    if c.at_word("AS") {
        return c.err("CREATE TABLE … AS SELECT is not supported");
    }
    let open = c.expect_kind(Kind::LParen, "( after the table name")?.start;
    let mut columns = Vec::new();
    let mut constraints = Vec::new();
    let close = loop {
        if c.at_any_word(TABLE_CONSTRAINT_START) {
            constraints.push(table_constraint(&mut c)?);
        } else if constraints.is_empty() {
            columns.push(column(&mut c)?);
        } else {
            return c.err("expected a table constraint");
        }
        match c.peek() {
            Some(t) if t.kind == Kind::Comma => c.pos += 1,
            Some(t) if t.kind == Kind::RParen => {
                c.pos += 1;
                break t.start;
            }
            // SQLite accepts table constraints without commas between them.
            Some(_) if !constraints.is_empty() => {}
            _ => return c.err("expected , or )"),
        }
    };
    if columns.is_empty() {
        return c.err("a table needs at least one column");
    }
    let (mut without_rowid, mut strict) = (false, false);
    while let Some(t) = c.peek() {
        if t.kind == Kind::Semi {
            break;
        } else if t.kind == Kind::Comma {
            c.pos += 1;
        } else if c.eat_word("WITHOUT") {
            c.expect_word("ROWID")?;
            without_rowid = true;
        } else if c.eat_word("STRICT") {
            strict = true;
        } else {
            return c.err("unexpected text after the table body");
        }
    }
    Ok(CreateTable {
        name_span: first.start..name_end,
        name,
        open,
        close,
        columns,
        constraints,
        without_rowid,
        strict,
    })
}

fn column(c: &mut Cursor) -> Result<Column, ParseError> {
    let (name_tok, name) = c.name()?;
    let mut type_span: Option<Range<usize>> = None;
    while let Some(t) = c.peek() {
        if matches!(t.kind, Kind::Comma | Kind::RParen) || c.at_any_word(COLUMN_CONSTRAINT_START) {
            break;
        }
        let start = type_span.as_ref().map_or(t.start, |r| r.start);
        if t.kind == Kind::LParen {
            let (_, close) = c.balanced()?;
            type_span = Some(start..close.end);
            break;
        }
        if !t.is_name() {
            return c.err("unexpected token in a column type");
        }
        c.pos += 1;
        type_span = Some(start..t.end);
    }
    let mut constraints = Vec::new();
    while !c.at_kind(Kind::Comma) && !c.at_kind(Kind::RParen) {
        if c.peek().is_none() {
            return c.err("unexpected end of statement in a column definition");
        }
        constraints.push(column_constraint(c)?);
    }
    let end = c.end_of_last();
    Ok(Column {
        span: name_tok.start..end,
        name,
        name_span: name_tok.start..name_tok.end,
        type_span,
        constraints,
    })
}

fn constraint_name(c: &mut Cursor) -> Result<Option<String>, ParseError> {
    if c.eat_word("CONSTRAINT") {
        Ok(Some(c.name()?.1))
    } else {
        Ok(None)
    }
}

fn column_constraint(c: &mut Cursor) -> Result<ColumnConstraint, ParseError> {
    let start = c.offset();
    let name = constraint_name(c)?;
    let kind = if c.eat_word("PRIMARY") {
        c.expect_word("KEY")?;
        let desc = c.eat_word("DESC");
        if !desc {
            c.eat_word("ASC");
        }
        c.on_conflict()?;
        let autoincrement = c.eat_word("AUTOINCREMENT");
        ColumnConstraintKind::PrimaryKey {
            desc,
            autoincrement,
        }
    } else if c.eat_word("NOT") {
        c.expect_word("NULL")?;
        c.on_conflict()?;
        ColumnConstraintKind::NotNull
    } else if c.eat_word("NULL") {
        c.on_conflict()?;
        ColumnConstraintKind::Null
    } else if c.eat_word("UNIQUE") {
        c.on_conflict()?;
        ColumnConstraintKind::Unique
    } else if c.eat_word("CHECK") {
        let (open, close) = c.balanced()?;
        ColumnConstraintKind::Check {
            expr: c.inner(open, close),
        }
    } else if c.eat_word("DEFAULT") {
        let value_start = c.offset();
        if c.at_kind(Kind::LParen) {
            c.balanced()?;
        } else {
            let t = c.bump()?;
            if t.kind == Kind::Op && matches!(t.text(c.src), "+" | "-") {
                c.bump()?;
            }
        }
        ColumnConstraintKind::Default {
            value: value_start..c.end_of_last(),
        }
    } else if c.eat_word("COLLATE") {
        ColumnConstraintKind::Collate { name: c.name()?.1 }
    } else if c.eat_word("REFERENCES") {
        ColumnConstraintKind::References(foreign_key_clause(c)?)
    } else if c.at_word("GENERATED") || c.at_word("AS") {
        if c.eat_word("GENERATED") {
            c.expect_word("ALWAYS")?;
        }
        c.expect_word("AS")?;
        let (open, close) = c.balanced()?;
        let stored = if c.eat_word("STORED") {
            true
        } else {
            c.eat_word("VIRTUAL");
            false
        };
        ColumnConstraintKind::Generated {
            expr: c.inner(open, close),
            stored,
        }
    } else {
        return c.err("unexpected token in a column definition");
    };
    Ok(ColumnConstraint {
        span: start..c.end_of_last(),
        name,
        kind,
    })
}

fn foreign_key_clause(c: &mut Cursor) -> Result<ForeignKey, ParseError> {
    let (_, table) = c.name()?;
    let columns = if c.at_kind(Kind::LParen) {
        c.name_list()?
    } else {
        Vec::new()
    };
    let mut on_delete = None;
    loop {
        if c.at_word("ON") {
            c.pos += 1;
            let is_delete = c.eat_word("DELETE");
            if !is_delete {
                c.expect_word("UPDATE")?;
            }
            let action = if c.eat_word("SET") {
                let what = c.bump()?;
                format!("SET {}", what.text(c.src).to_ascii_uppercase())
            } else if c.eat_word("NO") {
                c.expect_word("ACTION")?;
                "NO ACTION".to_string()
            } else {
                c.bump()?.text(c.src).to_ascii_uppercase()
            };
            if is_delete {
                on_delete = Some(action);
            }
        } else if c.eat_word("MATCH") {
            c.name()?;
        } else if c.at_word("NOT") && c.peek_at(1).is_some_and(|t| t.is_word(c.src, "DEFERRABLE")) {
            c.pos += 1;
        } else if c.eat_word("DEFERRABLE") {
            if c.eat_word("INITIALLY") && !c.eat_word("DEFERRED") {
                c.expect_word("IMMEDIATE")?;
            }
        } else {
            break;
        }
    }
    Ok(ForeignKey {
        table,
        columns,
        on_delete,
    })
}

fn table_constraint(c: &mut Cursor) -> Result<TableConstraint, ParseError> {
    let start = c.offset();
    let name = constraint_name(c)?;
    let kind = if c.eat_word("PRIMARY") {
        c.expect_word("KEY")?;
        let columns = c.name_list()?;
        c.on_conflict()?;
        TableConstraintKind::PrimaryKey { columns }
    } else if c.eat_word("UNIQUE") {
        let columns = c.name_list()?;
        c.on_conflict()?;
        TableConstraintKind::Unique { columns }
    } else if c.eat_word("CHECK") {
        let (open, close) = c.balanced()?;
        c.on_conflict()?;
        TableConstraintKind::Check {
            expr: c.inner(open, close),
        }
    } else if c.eat_word("FOREIGN") {
        c.expect_word("KEY")?;
        let columns = c.name_list()?;
        c.expect_word("REFERENCES")?;
        TableConstraintKind::ForeignKey {
            columns,
            fk: foreign_key_clause(c)?,
        }
    } else {
        return c.err("expected PRIMARY KEY, UNIQUE, CHECK or FOREIGN KEY");
    };
    Ok(TableConstraint {
        span: start..c.end_of_last(),
        name,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_types_and_clauses() {
        let src = r#"CREATE TABLE "my posts" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  [the title] VARCHAR(200) NOT NULL DEFAULT 'untitled' COLLATE NOCASE,
  status TEXT CONSTRAINT status_enum CHECK (status IN ('draft', 'posted')) DEFAULT ('draft'),
  author_id INTEGER REFERENCES users(id) ON DELETE CASCADE ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED NOT NULL,
  "select" DOUBLE PRECISION DEFAULT -1.5,
  n INT GENERATED ALWAYS AS (length("the title")) STORED,
  été,
  CONSTRAINT pair UNIQUE (author_id, [the title] COLLATE NOCASE) ON CONFLICT ABORT
  CHECK (n > 0)
  FOREIGN KEY (author_id, n) REFERENCES other(a, b)
) STRICT, WITHOUT ROWID"#;
        let t = parse_create_table(src).unwrap();
        assert_eq!(t.name, "my posts");
        assert!(t.strict && t.without_rowid);
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "the title",
                "status",
                "author_id",
                "select",
                "n",
                "été"
            ]
        );
        let title = &t.columns[1];
        assert_eq!(title.type_text(src), "VARCHAR(200)");
        assert_eq!(
            &src[title.span.clone()],
            "[the title] VARCHAR(200) NOT NULL DEFAULT 'untitled' COLLATE NOCASE"
        );
        let status = &t.columns[2];
        assert_eq!(status.constraints[0].name.as_deref(), Some("status_enum"));
        match &status.constraints[0].kind {
            ColumnConstraintKind::Check { expr } => {
                assert_eq!(&src[expr.clone()], "status IN ('draft', 'posted')")
            }
            k => panic!("{k:?}"),
        }
        match &status.constraints[1].kind {
            ColumnConstraintKind::Default { value } => assert_eq!(&src[value.clone()], "('draft')"),
            k => panic!("{k:?}"),
        }
        let author = &t.columns[3];
        assert_eq!(author.constraints.len(), 2);
        match &author.constraints[0].kind {
            ColumnConstraintKind::References(fk) => {
                assert_eq!(fk.table, "users");
                assert_eq!(fk.on_delete.as_deref(), Some("CASCADE"));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(author.constraints[1].kind, ColumnConstraintKind::NotNull);
        assert_eq!(t.columns[4].type_text(src), "DOUBLE PRECISION");
        match &t.columns[4].constraints[0].kind {
            ColumnConstraintKind::Default { value } => assert_eq!(&src[value.clone()], "-1.5"),
            k => panic!("{k:?}"),
        }
        assert!(t.columns[5].generated());
        assert_eq!(t.columns[6].type_span, None);
        assert_eq!(t.constraints.len(), 3);
        assert_eq!(
            t.constraints[0].kind,
            TableConstraintKind::Unique {
                columns: vec!["author_id".into(), "the title".into()]
            }
        );
        assert!(matches!(
            t.constraints[1].kind,
            TableConstraintKind::Check { .. }
        ));
        assert!(
            matches!(&t.constraints[2].kind, TableConstraintKind::ForeignKey { columns, .. } if columns.len() == 2)
        );
        assert_eq!(&src[t.close..t.close + 1], ")");
    }

    #[test]
    fn set_null_and_keyword_names() {
        let src = "create table if not exists main.t(key, action text references p on delete set null, \"order\" int default null null)";
        let t = parse_create_table(src).unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(&src[t.name_span.clone()], "main.t");
        assert_eq!(t.columns.len(), 3);
        match &t.columns[1].constraints[0].kind {
            ColumnConstraintKind::References(fk) => {
                assert_eq!(fk.on_delete.as_deref(), Some("SET NULL"))
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(t.columns[2].constraints.len(), 2);
        assert_eq!(t.columns[2].constraints[1].kind, ColumnConstraintKind::Null);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse_create_table("CREATE TABLE t(a INT, )").unwrap_err();
        assert_eq!(err.offset, 22);
        assert!(parse_create_table("CREATE TABLE t AS SELECT 1").is_err());
        assert!(parse_create_table("CREATE TABLE t(a CHECK (a > 0)").is_err());
    }
}
