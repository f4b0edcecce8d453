//! The PostgreSQL lint: statements that PostgreSQL refuses inside a transaction block, found in
//! a migration that dbtool runs in its transaction (any file not marked
//! `-- dbtool:no-transaction`). They would fail at `upgrade`, after the backup and the earlier
//! steps, and roll the whole plan back; the lint says so before anything runs.
//!
//! It reads the statements and tokens of the one lexer (PostgreSQL dialect), so `CONCURRENTLY`
//! in a comment, a string or a dollar-quoted body never warns.

use std::path::Path;

use super::Warning;
use crate::sql::{significant_in, statements, Dialect, Kind, Token};

/// `CREATE INDEX CONCURRENTLY` and its kind, and `ALTER TYPE … ADD VALUE`.
pub const CONCURRENTLY_IN_TRANSACTION: &str = "concurrently-in-transaction";
/// `VACUUM`, `CREATE DATABASE`, `ALTER SYSTEM` and the other statements that never run in a
/// transaction block.
pub const NO_TRANSACTION_STATEMENT: &str = "no-transaction-statement";

/// Words in the hint, not CLI flags: the fix is in the file.
const HINT: &str = "put the statement in a migration of its own whose header (the comment lines \
                    before its first statement) has the line `-- dbtool:no-transaction`: dbtool \
                    then runs it outside a transaction, one statement at a time";

/// Warnings for the statements of `sql` (the file at `path`) that cannot run in a transaction,
/// unless the file is marked `no_transaction`.
pub fn lint_postgres(path: &Path, sql: &str, no_transaction: bool) -> Vec<Warning> {
    if no_transaction {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for statement in statements(sql, Dialect::Postgres) {
        let tokens = significant_in(statement.text, Dialect::Postgres);
        let Some((code, what)) = refused_in_transaction(statement.text, &tokens) else {
            continue;
        };
        // No "line N" in the message: the warning carries it, and every renderer shows
        // `path:line:` first.
        let line = statement.line;
        let message = if code == CONCURRENTLY_IN_TRANSACTION && what.contains("ADD VALUE") {
            format!(
                "{what} runs in dbtool's transaction: PostgreSQL before 12 refuses \
                 it there, and from 12 on the new value cannot be used before that transaction \
                 commits (which holds every pending migration)"
            )
        } else {
            format!(
                "{what} cannot run inside a transaction, and dbtool runs this file \
                 in one"
            )
        };
        warnings.push(Warning {
            code: code.to_string(),
            path: Some(path.to_path_buf()),
            line: Some(line),
            message,
            hint: Some(HINT.to_string()),
        });
    }
    warnings
}

/// When the statement cannot run in a transaction: its code and what to call it.
fn refused_in_transaction(src: &str, tokens: &[Token]) -> Option<(&'static str, String)> {
    // The bare words, upper-cased, in order (those inside parentheses too, for
    // `REINDEX (CONCURRENTLY) TABLE t`): enough for these shapes. Names in double quotes are
    // not words, so a table called "concurrently" is no keyword.
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| t.kind == Kind::Word)
        .map(|t| t.text(src).to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let has = |word: &str| w.contains(&word);
    let concurrently = |label: &str| Some((CONCURRENTLY_IN_TRANSACTION, format!("`{label}`")));
    let never = |label: &str| Some((NO_TRANSACTION_STATEMENT, format!("`{label}`")));
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..] => concurrently("CREATE INDEX CONCURRENTLY"),
        ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => {
            concurrently("CREATE UNIQUE INDEX CONCURRENTLY")
        }
        ["DROP", "INDEX", "CONCURRENTLY", ..] => concurrently("DROP INDEX CONCURRENTLY"),
        // `REINDEX TABLE CONCURRENTLY t` and `REINDEX (CONCURRENTLY) TABLE t` (PostgreSQL 14).
        ["REINDEX", ..] if has("CONCURRENTLY") => concurrently("REINDEX … CONCURRENTLY"),
        ["REINDEX", "DATABASE" | "SYSTEM", ..] => never("REINDEX DATABASE / SYSTEM"),
        ["ALTER", "TABLE", ..] if has("DETACH") && has("CONCURRENTLY") => {
            concurrently("ALTER TABLE … DETACH PARTITION … CONCURRENTLY")
        }
        ["ALTER", "TYPE", ..] if adds_enum_value(&w) => concurrently("ALTER TYPE … ADD VALUE"),
        ["VACUUM", ..] => never("VACUUM"),
        ["CREATE" | "DROP", "DATABASE", ..] => never(&format!("{} DATABASE", w[0])),
        ["CREATE" | "DROP", "TABLESPACE", ..] => never(&format!("{} TABLESPACE", w[0])),
        ["ALTER", "SYSTEM", ..] => never("ALTER SYSTEM"),
        _ => None,
    }
}

/// `ALTER TYPE name ADD VALUE …` (not `ADD ATTRIBUTE` of a composite type).
fn adds_enum_value(words: &[&str]) -> bool {
    words.windows(2).any(|pair| pair == ["ADD", "VALUE"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(sql: &str) -> Vec<(String, usize, String)> {
        lint_postgres(Path::new("migrations/V0002__x.sql"), sql, false)
            .into_iter()
            .map(|w| {
                assert_eq!(
                    w.path.as_deref(),
                    Some(Path::new("migrations/V0002__x.sql"))
                );
                assert_eq!(w.hint.as_deref(), Some(HINT));
                (w.code, w.line.unwrap(), w.message)
            })
            .collect()
    }

    fn codes_and_lines(sql: &str) -> Vec<(String, usize)> {
        lint(sql).into_iter().map(|(c, l, _)| (c, l)).collect()
    }

    #[test]
    fn every_concurrently_form_warns_with_its_line() {
        let sql = "-- V2: indexes\nCREATE TABLE t (id int, v text);\n\
                   CREATE INDEX CONCURRENTLY t_v ON t (v);\n\
                   create unique index concurrently if not exists t_id on t (id);\n\
                   DROP INDEX CONCURRENTLY IF EXISTS old_idx;\n\
                   REINDEX TABLE CONCURRENTLY t;\n\
                   REINDEX (VERBOSE, CONCURRENTLY) INDEX t_v;\n\
                   ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY;\n\
                   ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok';\n";
        let c = CONCURRENTLY_IN_TRANSACTION.to_string();
        assert_eq!(
            codes_and_lines(sql),
            [
                (c.clone(), 3),
                (c.clone(), 4),
                (c.clone(), 5),
                (c.clone(), 6),
                (c.clone(), 7),
                (c.clone(), 8),
                (c, 9)
            ]
        );
        let messages: Vec<String> = lint(sql).into_iter().map(|(_, _, m)| m).collect();
        assert_eq!(
            messages[0],
            "`CREATE INDEX CONCURRENTLY` cannot run inside a transaction, and dbtool runs this file in one"
        );
        assert!(messages[6].starts_with("`ALTER TYPE … ADD VALUE` runs in dbtool's transaction: PostgreSQL before 12 refuses it"), "{}", messages[6]);
    }

    #[test]
    fn a_no_transaction_file_does_not_warn() {
        let sql = "-- dbtool:no-transaction\nCREATE INDEX CONCURRENTLY t_v ON t (v);\nVACUUM t;\n";
        assert!(lint_postgres(Path::new("V3__i.sql"), sql, true).is_empty());
        assert_eq!(codes_and_lines(sql).len(), 2);
    }

    #[test]
    fn comments_strings_and_bodies_mentioning_concurrently_do_not_warn() {
        let sql = "-- CREATE INDEX CONCURRENTLY would need its own file\n\
                   /* CREATE INDEX CONCURRENTLY x ON t (v); */\n\
                   COMMENT ON TABLE t IS 'build with CREATE INDEX CONCURRENTLY; later';\n\
                   CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\n\
                   BEGIN EXECUTE 'VACUUM t'; RAISE NOTICE 'DROP INDEX CONCURRENTLY'; END\n$$;\n\
                   SELECT E'\\'; CREATE INDEX CONCURRENTLY i ON t (v); --';\n\
                   CREATE TABLE \"concurrently\" (id int);\n";
        assert_eq!(codes_and_lines(sql), []);
    }

    #[test]
    fn statements_that_can_run_in_a_transaction_do_not_warn() {
        let sql = "CREATE INDEX t_v ON t (v);\nCREATE INDEX concurrently_named ON t (v);\n\
                   REFRESH MATERIALIZED VIEW CONCURRENTLY mv;\nREINDEX TABLE t;\n\
                   ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';\nALTER TYPE pair ADD ATTRIBUTE c int;\n\
                   ALTER TABLE m DETACH PARTITION m_2019;\nALTER DATABASE d SET work_mem = '64MB';\n";
        assert_eq!(codes_and_lines(sql), []);
    }

    #[test]
    fn statements_that_never_run_in_a_transaction_have_their_own_code() {
        let sql = "VACUUM (ANALYZE) t;\nCREATE DATABASE other;\nDROP DATABASE IF EXISTS other;\n\
                   CREATE TABLESPACE ts LOCATION '/x';\nALTER SYSTEM SET work_mem = '64MB';\n\
                   REINDEX DATABASE d;\n";
        let found = lint(sql);
        let lines: Vec<usize> = found.iter().map(|(_, l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
        assert!(found.iter().all(|(c, _, _)| c == NO_TRANSACTION_STATEMENT));
        assert!(found[2].2.starts_with("`DROP DATABASE` cannot run"));
    }
}
