//! Lint for hand-written migrations: the statements that look harmless in SQLite and are not,
//! each pointing to `--rebuild`.
//!
//! Invariants: [`lint`] never fails (what it cannot read it does not warn about) and writes only
//! to the caller's schema-only scratch database, which it advances statement by statement so that
//! each statement is judged against the schema the file has left so far. Generated rebuild files (with a
//! `-- dbtool:rebuild` header) are not linted: their DROP/RENAME are the safe procedure itself.

use rusqlite::Connection;

use super::edit::{self, Context};
use super::schema::child_keys;
use super::spec::{Change, RebuildSpec};
use super::{RebuildError, RebuildFile};
use crate::schema::ddl::{parse_create_table, ColumnConstraintKind};
use crate::schema::Schema;
use crate::sql::{line_of, same_name, significant, split_statements, unquote, Kind, Token};

/// One warning about a migration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintWarning {
    /// Stable code, e.g. `lint-drop-table-cascade`.
    pub code: &'static str,
    /// 1-based line in the file where the statement starts.
    pub line: usize,
    pub message: String,
    pub hint: String,
}

/// What [`lint`] found in one file.
#[derive(Debug, Clone, Default)]
pub struct LintOutcome {
    pub warnings: Vec<LintWarning>,
    /// Whether every statement also ran on the scratch schema, which then holds the schema the
    /// file leaves. False after a statement failed there or could write outside it (ATTACH,
    /// VACUUM): later files would be judged against a schema they never see.
    pub advanced: bool,
}

/// Warnings for the migration `sql`, each statement judged against the schema as the file has
/// left it so far: `scratch` is a schema-only scratch database the caller owns, and each
/// statement runs on it after being judged (so a `DROP TABLE` of a parent whose children the
/// same file already dropped is not a cascade). `no_transaction` is the file's
/// `-- dbtool:no-transaction` directive, which changes what a `PRAGMA foreign_keys` does.
pub fn lint(sql: &str, scratch: &Connection, no_transaction: bool) -> LintOutcome {
    if matches!(RebuildFile::parse(sql), Ok(Some(_))) {
        return LintOutcome {
            warnings: Vec::new(),
            advanced: scratch.execute_batch(sql).is_ok(),
        };
    }
    let schema = scratch;
    let mut advanced = true;
    let mut out = Vec::new();
    for range in split_statements(sql) {
        let stmt = &sql[range.clone()];
        let toks = significant(stmt);
        let line = line_of(sql, range.start);
        let rest = &sql[range.end..];
        judge(stmt, &toks, line, rest, schema, no_transaction, &mut out);
        // Advance the scratch schema past this statement, unless it could write outside the
        // scratch database or fails there; the rest of the file is then judged against the
        // schema as far as it got.
        if advanced {
            let escapes = toks.first().is_some_and(|t| {
                t.is_word(stmt, "ATTACH") || t.is_word(stmt, "DETACH") || t.is_word(stmt, "VACUUM")
            });
            advanced = !escapes && schema.execute_batch(stmt).is_ok();
        }
    }
    LintOutcome {
        warnings: out,
        advanced,
    }
}

/// Warnings about one statement, judged against `schema` as it is now (`rest`: the file after it).
fn judge(
    stmt: &str,
    toks: &[Token],
    line: usize,
    rest: &str,
    schema: &Connection,
    no_transaction: bool,
    out: &mut Vec<LintWarning>,
) {
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(stmt, w));
    if !(word(0, "PRAGMA") || word(0, "DROP") || word(0, "ALTER")) {
        return;
    }
    let Ok(s) = Schema::read(schema) else {
        return;
    };
    {
        if word(0, "PRAGMA") {
            let name_at = if toks.get(2).is_some_and(|t| t.kind == Kind::Dot) {
                3
            } else {
                1
            };
            if word(name_at, "foreign_keys") {
                out.push(pragma_foreign_keys_warning(line, no_transaction));
            }
        } else if word(0, "DROP") && word(1, "TABLE") {
            let mut i = 2;
            if word(2, "IF") && word(3, "EXISTS") {
                i = 4;
            }
            let Some(table) = name_at(stmt, toks, i) else {
                return;
            };
            let acting: Vec<String> = child_keys(schema, &s, &table)
                .unwrap_or_default()
                .into_iter()
                .filter(|k| {
                    !same_name(&k.child, &table)
                        && matches!(k.on_delete.as_str(), "CASCADE" | "SET NULL" | "SET DEFAULT")
                })
                .map(|k| format!("{} (ON DELETE {})", k.child, k.on_delete))
                .collect();
            if !acting.is_empty() {
                // The usual hand-made rebuild renames its new table into the name afterwards: with
                // foreign keys OFF the children then point at the new table, so only ON is a loss.
                let when_off = if renamed_to_later(rest, &table) {
                    format!("; with them OFF (as dbtool runs migrations) the later RENAME TO {table} points them at the new table")
                } else {
                    ", and leaves them pointing at nothing when they are OFF".to_string()
                };
                out.push(LintWarning {
                    code: "lint-drop-table-cascade",
                    line,
                    message: format!(
                        "DROP TABLE {table} deletes or changes rows of {} when foreign keys are ON{when_off}",
                        acting.join(", ")
                    ),
                    hint: format!("to change {table}'s definition, rebuild it: `dbtool create NAME --rebuild {table} …`"),
                });
            }
        } else if word(0, "ALTER") && word(1, "TABLE") {
            let Some(table) = name_at(stmt, toks, 2) else {
                return;
            };
            let mut i = if toks.get(3).is_some_and(|t| t.kind == Kind::Dot) {
                5
            } else {
                3
            };
            if word(i, "RENAME") {
                if word(i + 1, "TO") {
                    let referencing: Vec<String> = child_keys(schema, &s, &table)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|k| !same_name(&k.child, &table))
                        .map(|k| k.child)
                        .collect();
                    if !referencing.is_empty() {
                        let new = name_at(stmt, toks, i + 2).unwrap_or_default();
                        out.push(LintWarning {
                            code: "lint-rename-referenced-table",
                            line,
                            message: format!(
                                "ALTER TABLE {table} RENAME TO {new}: the foreign keys of {} are rewritten to point at {new}",
                                referencing.join(", ")
                            ),
                            hint: format!("if this is the first half of a hand-made rebuild (rename, create, copy), the children end up pointing at the old copy; use `dbtool create NAME --rebuild {table} …` instead"),
                        });
                    }
                }
                return;
            }
            if word(i, "ADD") {
                i += 1;
                if word(i, "COLUMN") {
                    i += 1;
                }
                let Some(first) = toks.get(i) else { return };
                let def = &stmt[first.start..];
                if let Some(problem) = add_column_problem(def) {
                    out.push(alter_warning(
                        line,
                        &table,
                        &format!("ADD COLUMN with {problem}"),
                        &format!("--rebuild {table} …"),
                    ));
                }
                return;
            }
            if word(i, "DROP") {
                i += 1;
                if word(i, "COLUMN") {
                    i += 1;
                }
                let Some(column) = name_at(stmt, toks, i) else {
                    return;
                };
                if let Some(users) = drop_column_users(schema, &s, &table, &column) {
                    out.push(alter_warning(
                        line,
                        &table,
                        &format!("DROP COLUMN {column}, which {users} uses"),
                        &format!("--rebuild {table} --drop {column} (after removing what uses it)"),
                    ));
                }
                return;
            }
            let form = toks
                .get(i)
                .map(|t| t.text(stmt).to_ascii_uppercase())
                .unwrap_or_default();
            let second = toks
                .get(i + 1)
                .map(|t| t.text(stmt).to_ascii_uppercase())
                .unwrap_or_default();
            out.push(alter_warning(
                line,
                &table,
                &format!("ALTER TABLE … {form} {second}"),
                &format!("--rebuild {table} --type/--not-null/--default/--check …"),
            ));
        }
    }
}

/// `PRAGMA foreign_keys` in a migration: inside dbtool's transaction SQLite ignores it; in a
/// `-- dbtool:no-transaction` file it takes effect on the connection.
fn pragma_foreign_keys_warning(line: usize, no_transaction: bool) -> LintWarning {
    if no_transaction {
        LintWarning {
            code: "lint-pragma-foreign-keys",
            line,
            message: "PRAGMA foreign_keys in a no-transaction migration takes effect: it changes the connection for the statements after it in this file and for the rest of the run (dbtool turns foreign keys off again before each transaction it begins)".into(),
            hint: "remove it unless a statement after it in this file needs it: dbtool turns foreign keys off before each migration's transaction and checks them before commit".into(),
        }
    } else {
        LintWarning {
            code: "lint-pragma-foreign-keys",
            line,
            message: "PRAGMA foreign_keys inside a migration does nothing: SQLite ignores it inside a transaction".into(),
            hint: "remove it; dbtool turns foreign keys off before each migration's transaction and checks them before commit. For a table change use `dbtool create NAME --rebuild TABLE …`".into(),
        }
    }
}

fn alter_warning(line: usize, table: &str, what: &str, rebuild: &str) -> LintWarning {
    LintWarning {
        code: "lint-alter-unsupported",
        line,
        message: format!("SQLite rejects {what} on table {table}: its ALTER TABLE only renames tables and columns, adds plain columns and drops unused ones"),
        hint: format!("use `dbtool create NAME {rebuild}`"),
    }
}

/// Whether a statement in `rest` is `ALTER TABLE … RENAME TO table`.
fn renamed_to_later(rest: &str, table: &str) -> bool {
    split_statements(rest).into_iter().any(|range| {
        let stmt = &rest[range];
        let toks = significant(stmt);
        let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(stmt, w));
        if !(word(0, "ALTER") && word(1, "TABLE")) {
            return false;
        }
        let at = if toks.get(3).is_some_and(|t| t.kind == Kind::Dot) {
            5
        } else {
            3
        };
        word(at, "RENAME")
            && word(at + 1, "TO")
            && name_at(stmt, &toks, at + 2).is_some_and(|n| same_name(&n, table))
    })
}

/// The name at token `i` (with an optional `schema.` before it).
fn name_at(stmt: &str, toks: &[Token], i: usize) -> Option<String> {
    let t = toks.get(i)?;
    if !t.is_name() {
        return None;
    }
    if toks.get(i + 1).is_some_and(|d| d.kind == Kind::Dot) {
        return toks
            .get(i + 2)
            .filter(|n| n.is_name())
            .map(|n| unquote(n.text(stmt)));
    }
    Some(unquote(t.text(stmt)))
}

/// Why SQLite would reject `ALTER TABLE … ADD COLUMN <def>` (lang_altertable.html, "ALTER TABLE
/// ADD COLUMN" restrictions), if it would.
fn add_column_problem(def: &str) -> Option<&'static str> {
    let ddl = format!("CREATE TABLE x({def})");
    let t = parse_create_table(&ddl).ok()?;
    let c = t.columns.first()?;
    let default = c.constraints.iter().find_map(|k| match &k.kind {
        ColumnConstraintKind::Default { value } => Some(ddl[value.clone()].to_string()),
        _ => None,
    });
    if c.has(|k| matches!(k, ColumnConstraintKind::PrimaryKey { .. })) {
        return Some("PRIMARY KEY");
    }
    if c.has(|k| *k == ColumnConstraintKind::Unique) {
        return Some("UNIQUE");
    }
    if c.has(|k| matches!(k, ColumnConstraintKind::Generated { stored: true, .. })) {
        return Some("a STORED generated column");
    }
    let default_is_null = default
        .as_deref()
        .is_none_or(|d| d.trim().eq_ignore_ascii_case("NULL"));
    if c.has(|k| *k == ColumnConstraintKind::NotNull) && default_is_null && !c.generated() {
        return Some("NOT NULL and no non-NULL DEFAULT");
    }
    if let Some(d) = &default {
        let u = d.trim().to_ascii_uppercase();
        if u.starts_with('(') || u.starts_with("CURRENT_") {
            return Some("a non-constant DEFAULT");
        }
        if c.has(|k| matches!(k, ColumnConstraintKind::References(_))) && u != "NULL" {
            return Some(
                "a foreign key and a non-NULL DEFAULT (rejected when foreign keys are ON)",
            );
        }
    }
    None
}

/// What uses `table.column` so that SQLite's DROP COLUMN would refuse, if anything.
fn drop_column_users(conn: &Connection, s: &Schema, table: &str, column: &str) -> Option<String> {
    let obj = s.find("table", table)?;
    let src = obj.sql.as_deref()?;
    let parsed = parse_create_table(src).ok()?;
    parsed.column(column)?;
    let children = child_keys(conn, s, &obj.name).ok()?;
    let spec = RebuildSpec::new(
        &obj.name,
        vec![Change::Drop {
            column: column.to_string(),
        }],
    )
    .ok()?;
    match edit::apply(
        src,
        &parsed,
        &spec,
        &Context {
            conn,
            schema: s,
            children: &children,
        },
    ) {
        Err(RebuildError::ColumnInUse { users, .. }) => Some(users.join(", ")),
        _ => {
            // SQLite also refuses UNIQUE columns and indexed columns the edit would drop with the
            // column itself.
            let (_, c) = parsed.column(column)?;
            c.has(|k| *k == ColumnConstraintKind::Unique)
                .then(|| "a UNIQUE constraint".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT, nick TEXT);
             CREATE INDEX users_name ON users(name);
             CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES users(id) ON DELETE CASCADE);
             CREATE TABLE logs (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));",
        )
        .unwrap();
        c
    }

    fn warnings(sql: &str) -> Vec<LintWarning> {
        lint(sql, &schema(), false).warnings
    }

    fn codes(sql: &str) -> Vec<(&'static str, usize)> {
        warnings(sql)
            .into_iter()
            .map(|w| (w.code, w.line))
            .collect()
    }

    #[test]
    fn warns_with_lines() {
        // Each statement is judged against the schema the file has left so far; the first one
        // SQLite rejects (line 5) freezes that schema, as the real run would stop there.
        let sql = "-- header\nPRAGMA foreign_keys = OFF;\nCREATE TABLE x(a);\n\nALTER TABLE users ALTER COLUMN name SET NOT NULL;\nALTER TABLE users ADD COLUMN age INTEGER NOT NULL;\nALTER TABLE users ADD COLUMN ok INTEGER NOT NULL DEFAULT 0;\nALTER TABLE users ADD created TEXT DEFAULT CURRENT_TIMESTAMP;\nALTER TABLE users DROP COLUMN name;\nALTER TABLE users DROP COLUMN nick;\nALTER TABLE users DROP email;\nALTER TABLE posts RENAME TO articles;\nALTER TABLE users RENAME TO old_users;\nDROP TABLE IF EXISTS main.users;\n";
        assert_eq!(
            codes(sql),
            [
                ("lint-pragma-foreign-keys", 2),
                ("lint-alter-unsupported", 5),
                ("lint-alter-unsupported", 6),
                ("lint-alter-unsupported", 8),
                ("lint-alter-unsupported", 9),
                ("lint-alter-unsupported", 11),
                ("lint-rename-referenced-table", 13),
                ("lint-drop-table-cascade", 14),
            ]
        );
        let w = warnings(sql);
        assert!(
            w[7].message.contains("posts (ON DELETE CASCADE)") && !w[7].message.contains("logs"),
            "{}",
            w[7].message
        );
        assert!(w[6].message.contains("posts, logs"), "{}", w[6].message);
        assert!(
            w[4].message.contains("index users_name"),
            "{}",
            w[4].message
        );
        assert!(w
            .iter()
            .all(|w| w.hint.contains("--rebuild") || w.code == "lint-pragma-foreign-keys"));
    }

    /// Found on a real history: a file that drops the children and then the parent was warned
    /// about cascading into children it had already dropped.
    #[test]
    fn drop_table_cascade_is_judged_against_the_schema_the_file_has_left() {
        assert!(codes("DROP TABLE posts;\nDROP TABLE users;").is_empty());
        // Children dropped after the parent still see the cascade.
        assert_eq!(
            codes("DROP TABLE users;\nDROP TABLE posts;"),
            [("lint-drop-table-cascade", 1)]
        );
        // A child created earlier in the file counts too.
        let w = warnings("CREATE TABLE tags (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE SET NULL);\nDROP TABLE posts;\nDROP TABLE users;");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("tags (ON DELETE SET NULL)") && !w[0].message.contains("posts"),
            "{}",
            w[0].message
        );
    }

    /// Found on a real history (a hand-made rebuild whose new table already references the final
    /// name): the warning said the children point at nothing with foreign keys OFF, but the
    /// RENAME after the DROP points them at the new table.
    #[test]
    fn drop_then_rename_into_the_name_is_only_a_loss_with_foreign_keys_on() {
        let w = warnings("CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT);\nINSERT INTO users_new SELECT id, email FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("when foreign keys are ON; with them OFF (as dbtool runs migrations) the later RENAME TO users points them at the new table"), "{}", w[0].message);
        assert!(
            !w[0].message.contains("pointing at nothing"),
            "{}",
            w[0].message
        );
        let w = warnings("DROP TABLE users;\n");
        assert!(
            w[0].message
                .contains("pointing at nothing when they are OFF"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn the_scratch_schema_ends_where_the_file_leaves_it() {
        let scratch = schema();
        let outcome = lint("DROP TABLE posts;\nCREATE TABLE t(a);", &scratch, false);
        assert!(outcome.advanced);
        let names: Vec<String> = scratch
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(names, ["logs", "t", "users"]);
        assert!(!lint("CREATE TABLE t(a);", &scratch, false).advanced);
        assert!(!lint("ATTACH 'x.db' AS x;", &schema(), false).advanced);
    }

    /// In a `-- dbtool:no-transaction` file the pragma does take effect (issue 8, defect 1).
    #[test]
    fn pragma_foreign_keys_in_a_no_transaction_file_takes_effect() {
        let sql = "-- dbtool:no-transaction\nPRAGMA foreign_keys=OFF;\nCREATE INDEX i ON posts(author_id);\nPRAGMA foreign_keys=ON;\n";
        let w = lint(sql, &schema(), true).warnings;
        assert_eq!(
            w.iter().map(|w| (w.code, w.line)).collect::<Vec<_>>(),
            [
                ("lint-pragma-foreign-keys", 2),
                ("lint-pragma-foreign-keys", 4)
            ]
        );
        for w in &w {
            assert!(!w.message.contains("does nothing"), "{}", w.message);
            assert!(
                w.message.contains("takes effect") && w.message.contains("rest of the run"),
                "{}",
                w.message
            );
        }
        let w = lint("PRAGMA foreign_keys=OFF;", &schema(), false).warnings;
        assert!(w[0].message.contains("does nothing"), "{}", w[0].message);
    }

    #[test]
    fn generated_rebuilds_and_plain_migrations_are_quiet() {
        assert!(codes("CREATE TABLE t(a); INSERT INTO t VALUES (1); DROP TABLE logs; ALTER TABLE logs RENAME TO l2;").is_empty());
        assert!(codes("-- dbtool:rebuild table=\"users\" temp=\"_dbtool_new_users\" sha256=00 direction=up\nDROP TABLE users;").is_empty());
    }
}
