//! Splitting a file into statements, in either [`Dialect`], on the tokens of the one lexer.

use std::ops::Range;

use super::{tokenize_in, Dialect, Kind, Token};

/// One statement of a file: its text from its first token to its last (byte-exact, without the
/// `;` and the comments around it), where that starts, and the 1-based line of its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    pub text: &'a str,
    pub start: usize,
    pub line: usize,
}

impl Statement<'_> {
    /// The statement's byte range in the file.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.text.len()
    }
}

/// Byte ranges of the SQLite statements in `src` (see [`statements`]).
pub fn split_statements(src: &str) -> Vec<Range<usize>> {
    statements(src, Dialect::Sqlite)
        .iter()
        .map(Statement::range)
        .collect()
}

/// The statements of `src` in `dialect`, skipping empty ones (`;;`, comments alone).
///
/// A `;` ends a statement except inside a body that holds statements of its own:
/// - SQLite: a `CREATE TRIGGER … BEGIN … END` body (`CASE … END` nests inside it).
/// - PostgreSQL: parentheses, and `BEGIN … END` in `CREATE [OR REPLACE] FUNCTION|PROCEDURE`
///   outside parentheses (SQL-standard bodies, `BEGIN ATOMIC … END`; `CASE … END` nests) —
///   psql's own rule, so a file splits here as `psql -f` splits it. Bodies in dollar quotes or
///   strings are single tokens and need no rule.
pub fn statements<'a>(src: &'a str, dialect: Dialect) -> Vec<Statement<'a>> {
    let mut out = Vec::new();
    let mut boundary = Boundary::new(dialect);
    let mut start: Option<Token> = None;
    let mut last_end = 0;
    // Lines are counted incrementally (from the previous statement's start), so a long file
    // costs one pass, not one per statement.
    let (mut line, mut counted_to) = (1, 0);
    let mut finish = |out: &mut Vec<Statement<'a>>, first: Token, end: usize| {
        line += src.as_bytes()[counted_to..first.start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted_to = first.start;
        out.push(Statement {
            text: &src[first.start..end],
            start: first.start,
            line,
        });
    };
    for t in tokenize_in(src, dialect) {
        if t.is_trivia() {
            continue;
        }
        if t.kind == Kind::Semi && boundary.ends_statement() {
            if let Some(first) = start.take() {
                finish(&mut out, first, last_end);
            }
            boundary = Boundary::new(dialect);
            continue;
        }
        if start.is_none() {
            start = Some(t);
        }
        boundary.see(src, t);
        last_end = t.end;
    }
    if let Some(first) = start {
        finish(&mut out, first, last_end);
    }
    out
}

/// Whether a `;` ends the statement, from the tokens seen since it began.
struct Boundary {
    dialect: Dialect,
    /// Significant tokens seen (SQLite), or words seen (PostgreSQL, as psql counts them).
    seen: usize,
    /// SQLite: the statement starts with `CREATE`.
    create_first: bool,
    /// PostgreSQL: initials of the first four words when they are `CREATE`, `OR`, `REPLACE`,
    /// `FUNCTION` or `PROCEDURE` (psql's rule), 0 for any other word.
    initials: [u8; 4],
    /// The statement creates a trigger (SQLite) or a function or procedure (PostgreSQL): its
    /// `BEGIN … END` body holds statements.
    routine: bool,
    /// Open `BEGIN`s (and `CASE`s inside them) not yet closed by `END`.
    depth: usize,
    /// Open parentheses (PostgreSQL).
    parens: usize,
}

impl Boundary {
    fn new(dialect: Dialect) -> Boundary {
        Boundary {
            dialect,
            seen: 0,
            create_first: false,
            initials: [0; 4],
            routine: false,
            depth: 0,
            parens: 0,
        }
    }

    fn ends_statement(&self) -> bool {
        self.depth == 0 && self.parens == 0
    }

    fn see(&mut self, src: &str, t: Token) {
        match self.dialect {
            Dialect::Sqlite => self.see_sqlite(src, t),
            Dialect::Postgres => self.see_postgres(src, t),
        }
    }

    /// `CREATE [TEMP] TRIGGER … BEGIN … END`.
    fn see_sqlite(&mut self, src: &str, t: Token) {
        if self.seen == 0 {
            self.create_first = t.is_word(src, "CREATE");
        } else if self.seen <= 2 && self.create_first && t.is_word(src, "TRIGGER") {
            self.routine = true;
        }
        self.seen += 1;
        if !self.routine {
            return;
        }
        if self.depth == 0 && t.is_word(src, "BEGIN") {
            self.depth = 1;
        } else if self.depth > 0 && t.is_word(src, "CASE") {
            self.depth += 1;
        } else if self.depth > 0 && t.is_word(src, "END") {
            self.depth -= 1;
        }
    }

    /// Parentheses, and psql's heuristic for `CREATE [OR REPLACE] FUNCTION|PROCEDURE … BEGIN
    /// ATOMIC … END` (psqlscan.l): `BEGIN` opens, `CASE` nests inside a `BEGIN`, `END` closes,
    /// all outside parentheses.
    fn see_postgres(&mut self, src: &str, t: Token) {
        match t.kind {
            Kind::LParen => self.parens += 1,
            Kind::RParen => self.parens = self.parens.saturating_sub(1),
            Kind::Word => {
                let word = t.text(src);
                if self.seen < self.initials.len() {
                    const MARKERS: [&str; 5] = ["create", "function", "procedure", "or", "replace"];
                    if MARKERS.iter().any(|m| word.eq_ignore_ascii_case(m)) {
                        self.initials[self.seen] = word.as_bytes()[0].to_ascii_lowercase();
                    }
                    self.routine = matches!(
                        self.initials,
                        [b'c', b'f' | b'p', ..] | [b'c', b'o', b'r', b'f' | b'p']
                    );
                }
                self.seen += 1;
                if !self.routine || self.parens > 0 {
                    return;
                }
                let case_in_body = word.eq_ignore_ascii_case("CASE") && self.depth > 0;
                if word.eq_ignore_ascii_case("BEGIN") || case_in_body {
                    self.depth += 1;
                } else if word.eq_ignore_ascii_case("END") {
                    self.depth = self.depth.saturating_sub(1);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_trigger_bodies() {
        let src = "CREATE TABLE t(a); -- c\nCREATE TRIGGER x AFTER INSERT ON t BEGIN UPDATE t SET a = CASE WHEN 1 THEN 2 END; DELETE FROM t; END;\n;;INSERT INTO t VALUES (';')";
        let parts: Vec<&str> = split_statements(src).into_iter().map(|r| &src[r]).collect();
        assert_eq!(
            parts,
            [
                "CREATE TABLE t(a)",
                "CREATE TRIGGER x AFTER INSERT ON t BEGIN UPDATE t SET a = CASE WHEN 1 THEN 2 END; DELETE FROM t; END",
                "INSERT INTO t VALUES (';')"
            ]
        );
    }

    /// `(line, text)` of every PostgreSQL statement.
    fn pg(src: &str) -> Vec<(usize, &str)> {
        statements(src, Dialect::Postgres)
            .iter()
            .map(|s| {
                assert_eq!(&src[s.range()], s.text, "text is the source's bytes");
                (s.line, s.text)
            })
            .collect()
    }

    #[test]
    fn dollar_quoted_bodies_hold_semicolons() {
        let src = "CREATE FUNCTION add(a int, b int) RETURNS int AS $$\nBEGIN\n  RETURN a + b; -- sum\nEND;\n$$ LANGUAGE plpgsql;\n\
                   CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $fn$\nBEGIN RETURN $$in;ner$$ || $x$;$x$; END\n$fn$;\n\
                   DO $do$ BEGIN IF true THEN RAISE NOTICE 'x;'; END IF; END $do$;";
        assert_eq!(
            pg(src),
            [
                (1, "CREATE FUNCTION add(a int, b int) RETURNS int AS $$\nBEGIN\n  RETURN a + b; -- sum\nEND;\n$$ LANGUAGE plpgsql"),
                (6, "CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $fn$\nBEGIN RETURN $$in;ner$$ || $x$;$x$; END\n$fn$"),
                (9, "DO $do$ BEGIN IF true THEN RAISE NOTICE 'x;'; END IF; END $do$"),
            ]
        );
    }

    #[test]
    fn a_parameter_is_not_a_dollar_quote() {
        let src = "PREPARE p(int) AS SELECT $1::int + $2;\nEXECUTE p(1, 2);\nSELECT a$b$ FROM t$;";
        assert_eq!(
            pg(src),
            [
                (1, "PREPARE p(int) AS SELECT $1::int + $2"),
                (2, "EXECUTE p(1, 2)"),
                (3, "SELECT a$b$ FROM t$"),
            ]
        );
        let kinds: Vec<Kind> = super::super::significant_in("$1::int", Dialect::Postgres)
            .iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(kinds, [Kind::Variable, Kind::Op, Kind::Word]);
    }

    #[test]
    fn escape_strings_plain_strings_and_quoted_names() {
        let src = "SELECT E'it\\'s; fine', e'\\\\', 'a''b;c', \"we;\"\"ird\", B'1;0' AS x;\nSELECT 'back\\';\nSELECT 2";
        assert_eq!(
            pg(src),
            [
                (
                    1,
                    "SELECT E'it\\'s; fine', e'\\\\', 'a''b;c', \"we;\"\"ird\", B'1;0' AS x"
                ),
                // Standard strings: a backslash is an ordinary character.
                (2, "SELECT 'back\\'"),
                (3, "SELECT 2"),
            ]
        );
    }

    #[test]
    fn comments_nest_and_do_not_start_statements() {
        let src = "/* outer /* inner; */ still comment; */\n-- don't; split\n\n  SELECT 1 /* a; */ + 1; -- tail;\n;;\n/* only a comment */";
        assert_eq!(pg(src), [(4, "SELECT 1 /* a; */ + 1")]);
        // SQLite's comments do not nest: the first `*/` ends it.
        let sqlite: Vec<&str> = statements("/* a /* b */ SELECT 1; */", Dialect::Sqlite)
            .iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(sqlite, ["SELECT 1", "*/"]);
    }

    #[test]
    fn standard_function_bodies_hold_semicolons() {
        let src = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x + 1;\nEND;\n\
                   CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n\
                   create function h() returns table (begin int, \"end\" int) language sql return (select 1, 2);\n\
                   CREATE FUNCTION k() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END;\n\
                   BEGIN; SELECT CASE WHEN true THEN 1 END; END;";
        assert_eq!(
            pg(src),
            [
                (1, "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x + 1;\nEND"),
                (6, "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END"),
                (7, "create function h() returns table (begin int, \"end\" int) language sql return (select 1, 2)"),
                (8, "CREATE FUNCTION k() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END"),
                // Transaction control is not a body.
                (9, "BEGIN"),
                (9, "SELECT CASE WHEN true THEN 1 END"),
                (9, "END"),
            ]
        );
    }

    #[test]
    fn parentheses_hold_semicolons_and_brackets_are_not_quotes() {
        let src = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\n\
                   SELECT ARRAY['a]b;'][1], x::text[] FROM t;\nSELECT `x`;";
        assert_eq!(
            pg(src),
            [
                (1, "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))"),
                (2, "SELECT ARRAY['a]b;'][1], x::text[] FROM t"),
                (3, "SELECT `x`"),
            ]
        );
    }

    #[test]
    fn postgres_tokens_cover_the_input_even_unterminated() {
        for src in [
            "SELECT $$open",
            "SELECT $tag$ body $ta",
            "SELECT E'open\\",
            "/* a /* b */",
            "SELECT $",
            "SELECT $é$x$é$, 1$$y$$",
            "SELECT e'é\\é'",
        ] {
            let joined: String = tokenize_in(src, Dialect::Postgres)
                .iter()
                .map(|t| t.text(src))
                .collect();
            assert_eq!(joined, src);
            let found = statements(src, Dialect::Postgres).len();
            assert_eq!(found, usize::from(!src.starts_with("/*")), "{src}");
        }
        let src = "SELECT $é$x;$é$, 1$$y;$$";
        assert_eq!(pg(src), [(1, src)]);
    }

    #[test]
    fn lines_are_counted_across_many_statements() {
        let src: String = (1..=500)
            .map(|i| format!("-- {i}\nSELECT {i};\n"))
            .collect();
        let found = statements(&src, Dialect::Postgres);
        assert_eq!(found.len(), 500);
        for (i, s) in found.iter().enumerate() {
            assert_eq!(
                (s.line, s.text),
                (2 * i + 2, format!("SELECT {}", i + 1).as_str())
            );
            assert_eq!(s.line, super::super::line_of(&src, s.start));
        }
    }
}
