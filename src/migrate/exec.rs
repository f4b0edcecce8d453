//! Running a SQL script statement by statement, so that a failure names its statement and its
//! line in the file, and each statement's row changes can be reported.
//!
//! Statements are split by SQLite's own parser (`rusqlite::Batch`), never by a hand-written
//! splitter, so triggers, strings and comments holding `;` are handled exactly as `sqlite3` does.

use std::path::{Path, PathBuf};

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::{Batch, Connection};
use serde::Serialize;

use super::error::{MigrateError, Result};

/// What one statement did.
#[derive(Debug, Clone, Serialize)]
pub struct StatementReport {
    /// 1-based line of the statement's first token in the file.
    pub line: usize,
    /// The statement's text, trimmed (at most one line of it in human output).
    pub sql: String,
    /// Rows inserted, updated or deleted (including by triggers).
    pub rows_changed: u64,
}

/// Run every statement of `sql` on `conn` (inside whatever transaction the caller holds).
/// `path` names the file in errors.
pub fn run_script(conn: &Connection, sql: &str, path: &Path) -> Result<Vec<StatementReport>> {
    run_script_with(conn, sql, path, &mut |_| Ok(None))
}

/// [`run_script`], calling `before` with each statement's text before running it (a generated
/// rebuild proves its copy there, before the old table is dropped). `before` returns `None` to
/// have the statement run as written, or the outcome of running it itself (a rebuild's copy that
/// digests the rows it reads), which is then reported as the statement's own.
pub fn run_script_with(
    conn: &Connection,
    sql: &str,
    path: &Path,
    before: &mut dyn FnMut(&str) -> Result<Option<rusqlite::Result<()>>>,
) -> Result<Vec<StatementReport>> {
    let mut batch = Batch::new(conn, sql);
    let mut cursor = 0usize;
    let mut reports = Vec::new();
    // Whether the caller holds a transaction (a `-- dbtool:no-transaction` file runs without
    // one, and may then manage its own).
    let in_callers_transaction = !conn.is_autocommit();
    loop {
        let mut stmt = match batch.next() {
            Ok(Some(stmt)) => stmt,
            Ok(None) => break,
            Err(e) => return Err(prepare_error(e, sql, cursor, path.to_path_buf())),
        };
        let text = stmt.expanded_sql().unwrap_or_default();
        let start = sql[cursor..]
            .find(text.as_str())
            .map_or(cursor, |offset| cursor + offset);
        cursor = (start + text.len()).min(sql.len());
        let statement_start = start + leading_trivia(&text);
        let bare = &text[leading_trivia(&text)..];
        if in_callers_transaction && ends_transaction(bare) {
            // Run, it would commit (or drop) the caller's transaction half-way through the plan
            // and leave the rest to autocommit: refuse it before it runs.
            return Err(MigrateError::TransactionControl {
                path: path.to_path_buf(),
                line: line_of(sql, statement_start),
                statement: bare.trim().to_string(),
            });
        }
        let changes_before = conn.total_changes();
        let ran_by_hook = before(bare)?;
        let run = || -> rusqlite::Result<()> {
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(())
        };
        if let Err(source) = ran_by_hook.unwrap_or_else(run) {
            return Err(MigrateError::MigrationFailed {
                path: path.to_path_buf(),
                line: line_of(sql, statement_start),
                statement: text.trim().to_string(),
                source,
            });
        }
        reports.push(StatementReport {
            line: line_of(sql, statement_start),
            sql: text.trim().to_string(),
            rows_changed: conn.total_changes().saturating_sub(changes_before),
        });
    }
    Ok(reports)
}

/// `COMMIT`, `END` or `ROLLBACK` (but not `ROLLBACK TO savepoint`): statements that end the
/// transaction dbtool holds. `BEGIN` needs no check: SQLite refuses it inside a transaction.
fn ends_transaction(statement: &str) -> bool {
    let mut words = statement
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase());
    match words.next().as_deref() {
        Some("COMMIT") | Some("END") => true,
        Some("ROLLBACK") => !words.take(2).any(|w| w == "TO"),
        _ => false,
    }
}

/// A statement that failed to prepare (syntax error, unknown table): SQLite gives the offset of
/// the offending token within the remaining text.
fn prepare_error(e: rusqlite::Error, sql: &str, cursor: usize, path: PathBuf) -> MigrateError {
    let (error_at, statement_start) = match &e {
        rusqlite::Error::SqlInputError {
            sql: rest, offset, ..
        } if rest.len() <= sql.len() => {
            let rest_start = sql.len() - rest.len();
            let start = rest_start + leading_trivia(rest);
            let at = if *offset >= 0 {
                rest_start + *offset as usize
            } else {
                start
            };
            (at, start)
        }
        _ => {
            let start = cursor + leading_trivia(&sql[cursor..]);
            (start, start)
        }
    };
    let tail = &sql[statement_start..];
    let end = tail.find(';').map_or(tail.len(), |i| i + 1);
    // rusqlite's SqlInputError displays as "<message> in <the rest of the file> at offset N":
    // the statement and its line are already in the error, so keep SQLite's message only.
    let source = match e {
        rusqlite::Error::SqlInputError { error, msg, .. } => {
            rusqlite::Error::SqliteFailure(error, Some(msg))
        }
        other => other,
    };
    MigrateError::MigrationFailed {
        path,
        line: line_of(sql, error_at.min(sql.len())),
        statement: tail[..end].trim().to_string(),
        source,
    }
}

fn line_of(sql: &str, offset: usize) -> usize {
    let offset = floor_char_boundary(sql, offset);
    sql[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Bytes of whitespace and comments before the first token.
fn leading_trivia(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            match s[i + 2..].find("*/") {
                Some(end) => i += 2 + end + 2,
                None => return bytes.len(),
            }
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_error_names_statement_and_line() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "-- header\nCREATE TABLE t(a UNIQUE);\nINSERT INTO t VALUES (1);\n\n  INSERT INTO t VALUES (1);\n";
        let err = run_script(&conn, sql, Path::new("V1__t.sql")).unwrap_err();
        match err {
            MigrateError::MigrationFailed {
                line, statement, ..
            } => {
                assert_eq!(line, 5);
                assert_eq!(statement, "INSERT INTO t VALUES (1);");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn prepare_error_names_line() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "CREATE TABLE t(a);\n\nSELECT * FROM\n  missing_table;\n";
        let err = run_script(&conn, sql, Path::new("V1__t.sql")).unwrap_err();
        match err {
            MigrateError::MigrationFailed {
                line,
                statement,
                source,
                ..
            } => {
                assert!(source.to_string().contains("no such table"), "{source}");
                assert!(line == 3 || line == 4, "line {line}");
                assert!(statement.starts_with("SELECT * FROM"), "{statement}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refuses_statements_that_end_the_callers_transaction() {
        // Regression: a COMMIT in a migration file committed the plan half-way, and the error
        // that followed said "nothing was applied".
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let sql = "CREATE TABLE a(x);\n-- done\nCOMMIT;\nCREATE TABLE b(x);\n";
        let err = run_script(&conn, sql, Path::new("V2__b.sql")).unwrap_err();
        match err {
            MigrateError::TransactionControl {
                line, statement, ..
            } => {
                assert_eq!(line, 3);
                assert_eq!(statement, "COMMIT;");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            !conn.is_autocommit(),
            "the caller's transaction is still open"
        );
        conn.execute_batch("ROLLBACK").unwrap();
        for sql in ["end transaction", "ROLLBACK;"] {
            conn.execute_batch("BEGIN").unwrap();
            assert!(run_script(&conn, sql, Path::new("x.sql")).is_err(), "{sql}");
            conn.execute_batch("ROLLBACK").unwrap();
        }
        // savepoints nest inside the transaction, and outside one (no-transaction files) the
        // author's own transaction statements are theirs to run
        conn.execute_batch("BEGIN").unwrap();
        run_script(
            &conn,
            "SAVEPOINT s; ROLLBACK TO s; RELEASE s;",
            Path::new("x.sql"),
        )
        .unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        run_script(
            &conn,
            "BEGIN; CREATE TABLE c(x); COMMIT;",
            Path::new("x.sql"),
        )
        .unwrap();
    }

    #[test]
    fn triggers_and_semicolons_in_strings_and_row_counts() {
        let conn = Connection::open_in_memory().unwrap();
        let sql = "CREATE TABLE t(a);\nCREATE TABLE log(x);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('a;b'); END;\nINSERT INTO t VALUES (1), (2);\n";
        let reports = run_script(&conn, sql, Path::new("x.sql")).unwrap();
        assert_eq!(reports.len(), 4);
        assert_eq!(reports[3].line, 4);
        assert_eq!(reports[3].rows_changed, 4, "two rows plus two trigger rows");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM log WHERE x = 'a;b'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
