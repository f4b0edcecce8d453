//! The autogenerate corpus: each case is (schema before, rows, declared schema) driven through the
//! real binary: `create --autogenerate`, `upgrade`, the live schema means the declared one, every
//! row kept (values compared), `verify` clean (schema.sql included), `downgrade -1` gives the
//! schema and rows back (except the values a lossy down cannot bring back). Refusals leave
//! nothing written. Failures are collected per case and reported together.

use std::collections::BTreeMap;
use std::path::Path;

use dbtool::schema::{declared, Model};
use rusqlite::Connection;

mod common;
use common::{rows, TestEnv};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A pair is written and round-trips.
    Written,
    /// No difference: nothing written, exit 0.
    NoChange,
    /// Refused with this error code (exit 5), nothing written.
    Refused(&'static str),
}
use Expect::*;

struct Case {
    name: &'static str,
    before: &'static str,
    rows: &'static str,
    declared: &'static str,
    args: &'static [&'static str],
    /// Renames for the row comparison: `table` → `table`, `table.col` → `col`.
    map: &'static [(&'static str, &'static str)],
    expect: Expect,
}

const BASE: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'posted')),
  body TEXT
);
CREATE INDEX posts_user ON posts(user_id);
";

const ROWS: &str = "
INSERT INTO users VALUES (1, 'ann', 'a@x'), (2, 'bob', NULL), (5, 'cy', 'c@x');
INSERT INTO posts VALUES (1, 1, 'hello', 'draft', 'b1'), (2, 1, 'again', 'posted', NULL), (3, 5, 'third', 'posted', 'b3');
";

const POSTS: &str = "
CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'posted')),
  body TEXT
);
CREATE INDEX posts_user ON posts(user_id);
";

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);";

fn cases() -> Vec<Case> {
    #[allow(clippy::too_many_arguments)]
    fn c(
        name: &'static str,
        before: &'static str,
        rows: &'static str,
        declared: &'static str,
        args: &'static [&'static str],
        map: &'static [(&'static str, &'static str)],
        expect: Expect,
    ) -> Case {
        Case {
            name,
            before,
            rows,
            declared,
            args,
            map,
            expect,
        }
    }
    // Declared schemas are built with leak so cases can share BASE pieces.
    let s = |parts: &[&str]| -> &'static str { Box::leak(parts.concat().into_boxed_str()) };
    vec![
        // --- columns
        c("add nullable column", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, bio TEXT);", POSTS]),
          &[], &[], Written),
        c("add column with constant default", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, active INTEGER NOT NULL DEFAULT 1);", POSTS]),
          &[], &[], Written),
        c("add NOT NULL column with --fill", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, handle TEXT NOT NULL);", POSTS]),
          &["--fill", "users.handle=upper(name)"], &[], Written),
        c("add NOT NULL column with a fill hint", BASE, ROWS,
          s(&["CREATE TABLE users (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL,\n  email TEXT,\n  handle TEXT NOT NULL -- dbtool:fill 'user_' || id\n);", POSTS]),
          &[], &[], Written),
        c("add column with non-constant default (rebuild)", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP);", POSTS]),
          &[], &[], Written),
        c("add UNIQUE column (rebuild)", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, code TEXT UNIQUE);", POSTS]),
          &[], &[], Written),
        c("drop a column nothing uses (--allow-drop, lossy down)", BASE, ROWS,
          s(&[USERS, "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE CASCADE, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'posted')));\nCREATE INDEX posts_user ON posts(user_id);"]),
          &["--allow-drop"], &[], Written),
        c("drop an indexed column with its index", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT); CREATE INDEX t_b ON t(b);",
          "INSERT INTO t VALUES (1, 'x', 'y'), (2, 'z', NULL);",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);", &["--allow-drop"], &[], Written),
        c("drop a column used in a CHECK (rebuild)", "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, CHECK (b > 0));",
          "INSERT INTO t VALUES (1, 1, 2), (2, 3, 4);",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER);", &["--allow-drop"], &[], Written),
        c("rename column with --rename", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT);", POSTS]),
          &["--rename", "users.name=full_name"], &[("users.name", "full_name")], Written),
        c("rename column with a hint", BASE, ROWS,
          s(&["CREATE TABLE users (\n  id INTEGER PRIMARY KEY,\n  full_name TEXT NOT NULL, -- dbtool:renamed-from name\n  email TEXT\n);", POSTS]),
          &[], &[("users.name", "full_name")], Written),
        c("rename a column a view uses",
          s(&[BASE, "CREATE VIEW user_names AS SELECT id, name FROM users;"]), ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT);", POSTS, "CREATE VIEW user_names AS SELECT id, full_name FROM users;"]),
          &["--rename", "users.name=full_name"], &[("users.name", "full_name")], Written),
        c("change a type (rebuild)", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email VARCHAR(200));", POSTS]),
          &[], &[], Written),
        c("drop NOT NULL", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);", POSTS]),
          &[], &[], Written),
        c("add NOT NULL to a column without NULLs", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);",
          "INSERT INTO t VALUES (1, 'x'), (2, 'y');",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL);", &[], &[], Written),
        c("change a default", BASE, ROWS,
          s(&[USERS, &POSTS.replace("DEFAULT 'draft'", "DEFAULT 'posted'")]),
          &[], &[], Written),
        c("change a collation", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, email TEXT);", POSTS]),
          &[], &[], Written),
        c("generated VIRTUAL column added", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, shout TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL);", POSTS]),
          &[], &[], Written),
        c("generated STORED column added (rebuild)", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, shout TEXT GENERATED ALWAYS AS (upper(name)) STORED);", POSTS]),
          &[], &[], Written),
        c("generated column's expression changed",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, twice INTEGER AS (a * 2));",
          "INSERT INTO t (id, a) VALUES (1, 1), (2, 5);",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, twice INTEGER AS (a + a));", &[], &[], Written),
        // --- constraints
        c("widen a CHECK enum", BASE, ROWS,
          s(&[USERS, &POSTS.replace("('draft', 'posted')", "('draft', 'posted', 'archived')")]),
          &[], &[], Written),
        c("add an unnamed table CHECK", BASE, ROWS,
          s(&[USERS, &POSTS.replace("body TEXT\n", "body TEXT,\n  CHECK (length(title) > 0)\n")]),
          &[], &[], Written),
        c("drop a CHECK", BASE, ROWS,
          s(&[USERS, &POSTS.replace(" CHECK (status IN ('draft', 'posted'))", "")]),
          &[], &[], Written),
        c("add a foreign key", "CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER);",
          "INSERT INTO users VALUES (1), (2); INSERT INTO posts VALUES (1, 1), (2, 2), (3, NULL);",
          "CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));",
          &[], &[], Written),
        c("drop a foreign key", BASE, ROWS,
          s(&[USERS, &POSTS.replace(" REFERENCES users(id) ON DELETE CASCADE", "")]),
          &[], &[], Written),
        c("ON DELETE CASCADE becomes SET NULL", BASE, ROWS,
          s(&[USERS, &POSTS.replace("CASCADE", "SET NULL")]),
          &[], &[], Written),
        c("rebuild a parent with ON DELETE CASCADE children", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (name <> ''), email TEXT);", POSTS]),
          &[], &[], Written),
        c("two tables at once with a foreign key between them", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (length(name) < 100), email TEXT);",
              &POSTS.replace("('draft', 'posted')", "('draft', 'posted', 'hidden')")]),
          &[], &[], Written),
        c("STRICT added", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n INTEGER);",
          "INSERT INTO t VALUES (1, 'x', 1), (2, NULL, 2);",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n INTEGER) STRICT;", &[], &[], Written),
        c("STRICT removed", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT) STRICT;",
          "INSERT INTO t VALUES (1, 'x');",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);", &[], &[], Written),
        c("WITHOUT ROWID", "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);",
          "INSERT INTO kv VALUES ('a', '1'), ('b', NULL);",
          "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;", &[], &[], Written),
        c("AUTOINCREMENT with a gap at the top",
          "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT);",
          "INSERT INTO t (a) VALUES ('x'), ('y'), ('z'); DELETE FROM t WHERE id = 3;",
          "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT CHECK (a <> ''));", &[], &[], Written),
        c("column UNIQUE becomes a table constraint (same meaning)",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE);", "INSERT INTO t VALUES (1, 'a');",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, UNIQUE (email));", &[], &[], NoChange),
        c("spelling only (case, quotes, comments, NO ACTION)",
          "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE NO ACTION);",
          "INSERT INTO p VALUES (1);",
          "create table \"P\" (ID integer primary key); -- parents\ncreate table [c] (id INTEGER PRIMARY KEY, p integer references p(id));",
          &[], &[], NoChange),
        c("column order only", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);", "",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, b TEXT, a TEXT);", &[], &[], NoChange),
        // --- tables
        c("new table with a foreign key", BASE, ROWS,
          s(&[BASE, "CREATE TABLE tags (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES posts(id), tag TEXT NOT NULL);"]),
          &[], &[], Written),
        c("drop a table (--allow-drop, lossy down)", s(&[BASE, "CREATE TABLE old (x);"]), s(&[ROWS, "INSERT INTO old VALUES (1);"]),
          BASE, &["--allow-drop"], &[], Written),
        c("rename a table with --rename", BASE, ROWS,
          s(&[USERS, &POSTS.replace("TABLE posts", "TABLE articles").replace("ON posts", "ON articles")]),
          &["--rename", "posts=articles"], &[("posts", "articles")], Written),
        c("rename a table with a hint", BASE, ROWS,
          s(&[USERS, "\n-- dbtool:renamed-from posts\n", &POSTS.replace("TABLE posts", "TABLE articles").replace("ON posts", "ON articles")]),
          &[], &[("posts", "articles")], Written),
        // --- indexes, triggers, views
        c("add an index", BASE, ROWS, s(&[BASE, "CREATE INDEX users_email ON users(email);"]), &[], &[], Written),
        c("drop an index", BASE, ROWS, s(&[USERS, &POSTS.replace("CREATE INDEX posts_user ON posts(user_id);", "")]), &[], &[], Written),
        c("add a partial index", BASE, ROWS,
          s(&[BASE, "CREATE INDEX posts_posted ON posts(user_id) WHERE status = 'posted';"]), &[], &[], Written),
        c("index becomes UNIQUE", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT); CREATE INDEX t_a ON t(a);",
          "INSERT INTO t VALUES (1, 'x'), (2, 'y');",
          "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT); CREATE UNIQUE INDEX t_a ON t(a);", &[], &[], Written),
        c("add a trigger", BASE, ROWS,
          s(&[BASE, "CREATE TRIGGER posts_title AFTER UPDATE OF title ON posts BEGIN UPDATE posts SET status = 'draft' WHERE id = new.id; END;"]),
          &[], &[], Written),
        c("change a trigger body",
          s(&[BASE, "CREATE TRIGGER users_del AFTER DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END;"]), ROWS,
          s(&[BASE, "CREATE TRIGGER users_del AFTER DELETE ON users BEGIN UPDATE posts SET user_id = NULL WHERE user_id = old.id; END;"]),
          &[], &[], Written),
        c("triggers and views on the rebuilt table",
          s(&[BASE, "CREATE VIEW posted AS SELECT * FROM posts WHERE status = 'posted';\nCREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = email WHERE id = new.user_id; END;\nCREATE TRIGGER users_del BEFORE DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END;"]),
          ROWS,
          s(&[USERS, &POSTS.replace("('draft', 'posted')", "('draft', 'posted', 'gone')"),
              "CREATE VIEW posted AS SELECT * FROM posts WHERE status = 'posted';\nCREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE users SET email = email WHERE id = new.user_id; END;\nCREATE TRIGGER users_del BEFORE DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END;"]),
          &[], &[], Written),
        c("add views built on views", BASE, ROWS,
          s(&[BASE, "CREATE VIEW posted AS SELECT * FROM posts WHERE status = 'posted';\nCREATE VIEW posted_titles AS SELECT title FROM posted;"]),
          &[], &[], Written),
        c("change a view", s(&[BASE, "CREATE VIEW v AS SELECT id FROM users;"]), ROWS,
          s(&[BASE, "CREATE VIEW v AS SELECT id, name FROM users;"]), &[], &[], Written),
        c("drop a view", s(&[BASE, "CREATE VIEW v AS SELECT id FROM users;"]), ROWS, BASE, &[], &[], Written),
        c("drop a column a view uses, the view changed too (--allow-drop)",
          s(&[BASE, "CREATE VIEW v AS SELECT id, email FROM users;"]), ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);", POSTS, "CREATE VIEW v AS SELECT id FROM users;"]),
          &["--allow-drop"], &[], Written),
        // --- refusals: nothing written
        c("ambiguous column rename", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT);", POSTS]),
          &[], &[], Refused("ambiguous-rename")),
        c("ambiguous table rename", BASE, ROWS,
          s(&[USERS, &POSTS.replace("TABLE posts", "TABLE articles").replace("ON posts", "ON articles")]),
          &[], &[], Refused("ambiguous-rename")),
        c("drop a column without --allow-drop", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);", POSTS]),
          &[], &[], Refused("would-drop-data")),
        c("drop a table without --allow-drop", s(&[BASE, "CREATE TABLE old (x);"]), ROWS, BASE,
          &[], &[], Refused("would-drop-data")),
        c("NOT NULL column without a fill", BASE, ROWS,
          s(&["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, handle TEXT NOT NULL);", POSTS]),
          &[], &[], Refused("needs-fill")),
    ]
}

/// `DROP` statements that undo `sql` on an empty database (the V1 down).
fn drop_all(sql: &str) -> String {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(sql).unwrap();
    let mut out = String::new();
    for (kind, name) in c
        .prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table', rowid DESC")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
    {
        out.push_str(&format!("DROP {} \"{name}\";\n", kind.to_uppercase()));
    }
    out
}

/// Rows of every user table (and sqlite_sequence), per column, keyed by `table.column` as named
/// after `map`; each value list sorted, so rebuilds that reorder rows compare equal.
type Snapshot = BTreeMap<String, Vec<String>>;

/// The columns of `layout` that `live` still has (looked up under their `map`ped names).
fn kept_columns(
    live: &Connection,
    map: &[(&str, &str)],
    layout: &[(String, Vec<String>)],
) -> Vec<(String, Vec<String>)> {
    layout
        .iter()
        .map(|(table, cols)| {
            let new_table = map
                .iter()
                .find(|(k, _)| k == table)
                .map_or(table.clone(), |(_, v)| v.to_string());
            let kept = cols
                .iter()
                .filter(|c| {
                    let key = format!("{table}.{c}");
                    let new_col = map
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map_or(c.to_string(), |(_, v)| v.to_string());
                    live.query_row(
                        "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE name = ?2",
                        [&new_table, &new_col],
                        |r| r.get::<_, i64>(0),
                    )
                    .unwrap()
                        > 0
                })
                .cloned()
                .collect();
            (table.clone(), kept)
        })
        .collect()
}

/// The user tables of a database and their columns, in creation order.
fn tables_and_columns(conn: &Connection) -> Vec<(String, Vec<String>)> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'refinery_schema_history'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let cols: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_xinfo(?1)")
                .unwrap()
                .query_map([&t], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t, cols)
        })
        .collect()
}

fn snapshot(db: &Path, map: &[(&str, &str)], before: &[(String, Vec<String>)]) -> Snapshot {
    let conn = Connection::open(db).unwrap();
    let mut out = Snapshot::new();
    for (table, cols) in before {
        let table = table.clone();
        let new_table = map
            .iter()
            .find(|(k, _)| *k == table)
            .map_or(table.clone(), |(_, v)| v.to_string());
        // One row = all columns that still exist, with their new names.
        let mut select = Vec::new();
        let mut keys = Vec::new();
        for col in cols {
            let key = format!("{table}.{col}");
            let new_col = map
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(col.clone(), |(_, v)| v.to_string());
            let exists: i64 = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE name = ?2",
                    [&new_table, &new_col],
                    |r| r.get(0),
                )
                .unwrap();
            if exists > 0 {
                select.push(format!("\"{new_col}\""));
                keys.push(col.clone());
            }
        }
        let present: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [&new_table],
                |r| r.get(0),
            )
            .unwrap();
        if present == 0 || select.is_empty() {
            continue;
        }
        let mut data = rows(
            &conn,
            &format!("SELECT {} FROM \"{new_table}\"", select.join(", ")),
        );
        data.sort();
        out.insert(format!("{table}({})", keys.join(",")), data);
    }
    let has_seq: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if has_seq > 0 {
        let mut seq = rows(&conn, "SELECT name, seq FROM sqlite_sequence");
        for s in &mut seq {
            for (k, v) in map {
                if !k.contains('.') && s.starts_with(&format!("'{k}'|")) {
                    *s = s.replacen(&format!("'{k}'"), &format!("'{v}'"), 1);
                }
            }
        }
        seq.sort();
        out.insert("sqlite_sequence".into(), seq);
    }
    out
}

fn model(conn: &Connection) -> Model {
    Model::read(conn).unwrap()
}

fn migration_files(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.migrations())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn run_case(case: &Case) -> Result<(), String> {
    let env = TestEnv::new();
    env.migration(1, "before", case.before, Some(&drop_all(case.before)));
    env.write("schema.sql", case.declared);
    let step = |args: &[&str]| -> Result<common::Run, String> {
        let run = env.run(args);
        if run.code() != 0 {
            return Err(format!(
                "dbtool {args:?} exited {}\nstdout:\n{}\nstderr:\n{}",
                run.code(),
                run.stdout(),
                run.stderr()
            ));
        }
        Ok(run)
    };
    step(&["init", "-q"])?;
    Connection::open(env.db())
        .unwrap()
        .execute_batch(case.rows)
        .map_err(|e| format!("rows: {e}"))?;
    let before_conn = Connection::open(env.db()).unwrap();
    let before_model = model(&before_conn);
    let layout = tables_and_columns(&before_conn);
    let before_rows = snapshot(&env.db(), &[], &layout);
    let files_before = migration_files(&env);
    drop(before_conn);
    std::fs::copy(env.db(), env.root().join("before.db")).unwrap();

    let mut args = vec!["create", "change", "--autogenerate"];
    args.extend_from_slice(case.args);
    let run = env.run(&args);
    match case.expect {
        Refused(code) => {
            if run.code() != 5 || !run.stderr().contains(&format!("error[{code}]")) {
                return Err(format!(
                    "expected refusal {code} (exit 5), got exit {}\nstderr:\n{}",
                    run.code(),
                    run.stderr()
                ));
            }
            if migration_files(&env) != files_before {
                return Err(format!(
                    "a refusal wrote files: {:?}",
                    migration_files(&env)
                ));
            }
            return Ok(());
        }
        NoChange => {
            if run.code() != 0 || migration_files(&env) != files_before {
                return Err(format!(
                    "expected no change, got exit {} and files {:?}\nstderr:\n{}",
                    run.code(),
                    migration_files(&env),
                    run.stderr()
                ));
            }
            let diff = env.run(&["diff"]);
            if diff.code() != 0 {
                return Err(format!(
                    "diff exited {} for no change:\n{}",
                    diff.code(),
                    diff.stdout()
                ));
            }
            return Ok(());
        }
        Written => {
            if run.code() != 0 {
                return Err(format!(
                    "create --autogenerate exited {}\nstderr:\n{}",
                    run.code(),
                    run.stderr()
                ));
            }
        }
    }
    let up_file = std::fs::read_to_string(env.migrations().join("V0002__change.sql")).unwrap();
    let down_file =
        std::fs::read_to_string(env.migrations().join("V0002__change.down.sql")).unwrap();
    let context = format!("--- up\n{up_file}\n--- down\n{down_file}");
    let mut diff_args = vec!["diff", "--from", "database"];
    diff_args.extend(case.args.iter().filter(|a| **a != "--allow-drop"));
    let diff = env.run(&diff_args);
    if diff.code() != 3 {
        return Err(format!(
            "diff --from database before the upgrade should exit 3, got {}",
            diff.code()
        ));
    }

    step(&["upgrade", "-q"]).map_err(|e| format!("{e}\n{context}"))?;
    let live = Connection::open(env.db()).unwrap();
    let want = model(&declared::load(&env.root().join("schema.sql")).unwrap().conn);
    let d = want.diff(&model(&live), "declared", "live after upgrade");
    if !d.is_empty() {
        return Err(format!(
            "live schema differs:\n{}\n{context}",
            d.lines().join("\n")
        ));
    }
    // The columns that still exist (under their new names): compared before and after.
    let kept = kept_columns(&live, case.map, &layout);
    let before_kept = snapshot(&env.root().join("before.db"), &[], &kept);
    let after_rows = snapshot(&env.db(), case.map, &kept);
    // Every value of every column that still exists is kept.
    for (key, values) in &after_rows {
        if before_kept.get(key) != Some(values) {
            return Err(format!(
                "rows of {key} changed by the up:\nbefore {:?}\nafter  {values:?}\n{context}",
                before_kept.get(key)
            ));
        }
    }
    step(&["verify"]).map_err(|e| format!("{e}\n{context}"))?;

    step(&["downgrade", "-1", "-q"]).map_err(|e| format!("{e}\n{context}"))?;
    drop(live);
    let back = Connection::open(env.db()).unwrap();
    let d = before_model.diff(&model(&back), "before", "after downgrade");
    if !d.is_empty() {
        return Err(format!(
            "downgrade does not restore the schema:\n{}\n{context}",
            d.lines().join("\n")
        ));
    }
    // Lossy downs aside (the values of columns or tables the up dropped), the rows come back.
    let back_rows = snapshot(&env.db(), &[], &kept);
    if back_rows != before_kept {
        return Err(format!(
            "rows not restored by the down:\nbefore {before_kept:?}\nafter  {back_rows:?}\n{context}"
        ));
    }
    let lossy = down_file.contains("-- dbtool:lossy");
    if !lossy && snapshot(&env.db(), &[], &layout) != before_rows {
        return Err(format!(
            "a down without `-- dbtool:lossy` lost values\n{context}"
        ));
    }
    Ok(())
}

fn run_all(filter: impl Fn(&Case) -> bool) {
    let cases: Vec<Case> = cases().into_iter().filter(|c| filter(c)).collect();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case)
                .err()
                .map(|e| format!("=== case `{}`:\n{e}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn corpus_has_forty_cases_or_more() {
    assert!(cases().len() >= 40, "{}", cases().len());
}

// Split in halves so the test harness runs them on both cores.
#[test]
fn corpus_first_half() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    let half: Vec<&str> = names[..names.len() / 2].to_vec();
    run_all(|c| half.contains(&c.name));
}

#[test]
fn corpus_second_half() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    let half: Vec<&str> = names[names.len() / 2..].to_vec();
    run_all(|c| half.contains(&c.name));
}
