//! The declared schema (`schema.sql`): a plain SQL file of `CREATE TABLE/INDEX/VIEW/TRIGGER`
//! statements, loaded into an in-memory database so it is read by the same reader and model as
//! every other schema, plus the `-- dbtool:renamed-from NAME` and `-- dbtool:fill EXPR` hints it
//! carries for `autogen`.
//!
//! A hint on a column's line (or on its own line right before the column) applies to that
//! column; a `renamed-from` hint before a `CREATE TABLE` applies to the table.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::ddl::parse_create_table;
use crate::sql::{line_of, split_statements, tokenize, Kind};

/// Why the declared schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    #[error("cannot read the declared schema {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the declared schema {path} fails at line {line}: {statement}")]
    Statement {
        path: PathBuf,
        line: usize,
        statement: String,
        #[source]
        source: Box<rusqlite::Error>,
    },
}

/// A rename or fill hint found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `-- dbtool:renamed-from OLD` before `CREATE TABLE new`.
    TableRenamedFrom { table: String, from: String },
    /// `-- dbtool:renamed-from OLD` on the line of column `column` of `table`.
    ColumnRenamedFrom {
        table: String,
        column: String,
        from: String,
    },
    /// `-- dbtool:fill EXPR` on the line of a new NOT NULL column.
    Fill {
        table: String,
        column: String,
        expr: String,
    },
}

/// The declared schema, loaded.
pub struct Declared {
    pub path: PathBuf,
    /// An in-memory database holding exactly the declared objects (foreign keys off).
    pub conn: Connection,
    pub hints: Vec<Hint>,
}

/// Load `path` into a fresh in-memory database, statement by statement (so an error names its
/// line), and read its hints.
pub fn load(path: &Path) -> Result<Declared, DeclaredError> {
    let text = std::fs::read_to_string(path).map_err(|source| DeclaredError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let failed = |line: usize, statement: &str, e: rusqlite::Error| DeclaredError::Statement {
        path: path.to_path_buf(),
        line,
        statement: statement.lines().next().unwrap_or_default().to_string(),
        source: Box::new(e),
    };
    let conn = crate::db::scratch().map_err(|e| failed(0, "", e))?;
    for range in split_statements(&text) {
        let statement = &text[range.clone()];
        conn.execute_batch(statement)
            .map_err(|e| failed(line_of(&text, range.start), statement, e))?;
    }
    Ok(Declared {
        path: path.to_path_buf(),
        conn,
        hints: hints(&text),
    })
}

/// The `-- dbtool:renamed-from` and `-- dbtool:fill` hints of a schema file.
pub fn hints(text: &str) -> Vec<Hint> {
    let mut out = Vec::new();
    let mut before = 0; // end of the previous statement
    let ranges = split_statements(text);
    for (i, range) in ranges.iter().cloned().enumerate() {
        let next = ranges.get(i + 1).map_or(text.len(), |r| r.start);
        let statement = &text[range.clone()];
        let Ok(table) = parse_create_table(statement) else {
            before = range.end;
            continue;
        };
        // Table hints: comments between the previous statement and this one.
        for (_, key, value) in directives(&text[before..range.start]) {
            if key == "renamed-from" {
                out.push(Hint::TableRenamedFrom {
                    table: table.name.clone(),
                    from: crate::sql::unquote(&value),
                });
            }
        }
        // Column hints: comments inside the statement, plus the rest of its last line.
        let line_end = text[range.end..next]
            .find('\n')
            .map_or(next, |n| range.end + n);
        for (at, key, value) in directives(&text[range.start..line_end]) {
            let line = line_of(statement, at);
            // The column the comment follows on its line, else the next column.
            let column = table
                .columns
                .iter()
                .rfind(|c| c.span.end <= at && line_of(statement, c.span.end) == line)
                .or_else(|| table.columns.iter().find(|c| c.span.start > at))
                .or(table.columns.last());
            let Some(column) = column else { continue };
            let (t, c) = (table.name.clone(), column.name.clone());
            match key.as_str() {
                "renamed-from" => out.push(Hint::ColumnRenamedFrom {
                    table: t,
                    column: c,
                    from: crate::sql::unquote(&value),
                }),
                "fill" => out.push(Hint::Fill {
                    table: t,
                    column: c,
                    expr: value,
                }),
                _ => {}
            }
        }
        before = line_end;
    }
    out
}

/// `(offset, key, value)` of each `-- dbtool:KEY VALUE` comment in `src`.
fn directives(src: &str) -> Vec<(usize, String, String)> {
    tokenize(src)
        .into_iter()
        .filter(|t| t.kind == Kind::Comment)
        .filter_map(|t| {
            let body = t.text(src).strip_prefix("--")?.trim();
            let directive = body.strip_prefix("dbtool:")?;
            let (key, value) = directive
                .split_once(char::is_whitespace)
                .unwrap_or((directive, ""));
            Some((t.start, key.to_string(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_find_their_column_and_table() {
        let text = "CREATE TABLE users (\n  id INTEGER PRIMARY KEY,\n  full_name TEXT NOT NULL, -- dbtool:renamed-from name\n  -- dbtool:fill 'none'\n  nick TEXT NOT NULL\n);\n\n-- dbtool:renamed-from posts\nCREATE TABLE articles (id INTEGER PRIMARY KEY);\n";
        assert_eq!(
            hints(text),
            vec![
                Hint::ColumnRenamedFrom {
                    table: "users".into(),
                    column: "full_name".into(),
                    from: "name".into()
                },
                Hint::Fill {
                    table: "users".into(),
                    column: "nick".into(),
                    expr: "'none'".into()
                },
                Hint::TableRenamedFrom {
                    table: "articles".into(),
                    from: "posts".into()
                },
            ]
        );
    }
}
