//! The rebuild engine on real SQLite files: generate from the schema, run the up (and down) with
//! the executor `dbtool upgrade` and `dbtool rebuild` use (`migrate::run_rebuild_sql`: the one
//! write path), then assert the data and schema of the file.

use std::path::{Path, PathBuf};

use dbtool::rebuild::{generate, GenerateOptions, Generated, RebuildError, RebuildSpec};
use dbtool::schema::{self, model::canonical, Model};
use rusqlite::Connection;

mod common;
use common::rows;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Db {
    fn new(sql: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "foreign_keys", false).unwrap();
        c.execute_batch(sql).unwrap();
        Db { _dir: dir, path }
    }
    fn conn(&self) -> Connection {
        Connection::open(&self.path).unwrap()
    }
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
    fn rows(&self, sql: &str) -> Vec<String> {
        rows(&self.conn(), sql)
    }
}

/// Run a generated file as users' runs do: through the executor and its write session.
fn execute(c: &Connection, sql: &str) -> Result<dbtool::migrate::StepReport, dbtool::Error> {
    Ok(dbtool::migrate::run_rebuild_sql(
        c,
        Path::new("test.db"),
        sql,
    )?)
}

fn spec(table: &str, args: &[&str]) -> RebuildSpec {
    RebuildSpec::from_args(table, args).unwrap()
}

fn gen(db: &Db, table: &str, args: &[&str]) -> Result<Generated, RebuildError> {
    generate(
        &db.conn(),
        &spec(table, args),
        GenerateOptions {
            allow_lossy: true,
            up_only: false,
        },
    )
}

/// Generate and run the up; returns the generated pair.
fn rebuild(db: &Db, table: &str, args: &[&str]) -> Generated {
    let g = gen(db, table, args).unwrap_or_else(|e| {
        panic!(
            "{args:?} {e} [{}]: {:?}",
            e.code(),
            std::error::Error::source(&e)
        )
    });
    execute(&db.conn(), &g.up).unwrap_or_else(|e| panic!("{e}\n{}", g.up));
    g
}

/// Every table's rows (rowid included where there is one) and the normalised schema.
fn snapshot(db: &Db) -> (Vec<(String, String, String)>, Vec<String>) {
    let c = db.conn();
    let s = schema::Schema::read(&c).unwrap();
    let mut data = Vec::new();
    for t in s.tables() {
        if s.is_virtual(&t.name) || s.is_shadow(&t.name) {
            continue;
        }
        let without_rowid = t
            .sql
            .as_deref()
            .unwrap_or("")
            .to_ascii_uppercase()
            .contains("WITHOUT ROWID");
        let sql = if without_rowid {
            format!(
                "SELECT * FROM \"{}\" ORDER BY 1",
                t.name.replace('"', "\"\"")
            )
        } else {
            format!(
                "SELECT _rowid_, * FROM \"{}\" ORDER BY _rowid_",
                t.name.replace('"', "\"\"")
            )
        };
        for r in rows(&c, &sql) {
            data.push(format!("{}: {r}", t.name));
        }
    }
    if s.find("table", "sqlite_sequence").is_some() {
        let seq = rows(&c, "SELECT name, seq FROM sqlite_sequence ORDER BY name");
        data.extend(seq.into_iter().map(|r| format!("seq {r}")));
    }
    data.sort();
    let model = Model::read(&c).unwrap();
    let normalised = model
        .objects
        .iter()
        .map(|o| {
            (
                o.kind.clone(),
                o.name.to_ascii_lowercase(),
                canonical(&o.sql),
            )
        })
        .collect();
    (normalised, data)
}

fn fk_check(db: &Db) -> Vec<String> {
    db.rows("PRAGMA foreign_key_check")
}

const CONTENT: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, full_name TEXT);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'posted')),
    title TEXT COLLATE NOCASE DEFAULT ('untitled'),
    body TEXT
);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE SET NULL, token TEXT);
CREATE INDEX posts_status ON posts(status) WHERE status <> 'posted';
CREATE INDEX posts_title_lower ON posts(lower(title) DESC, author_id COLLATE BINARY);
CREATE UNIQUE INDEX posts_author_title ON posts(author_id, title);
CREATE VIEW published AS SELECT id, title FROM posts WHERE status = 'posted';
CREATE VIEW published_titles AS SELECT title FROM published;
CREATE TABLE audit (what TEXT);
CREATE TRIGGER posts_audit AFTER UPDATE ON posts BEGIN INSERT INTO audit VALUES ('post ' || new.id); END;
CREATE TRIGGER users_audit AFTER DELETE ON users BEGIN INSERT INTO audit SELECT 'orphan ' || count(*) FROM posts WHERE author_id = old.id; END;
INSERT INTO users VALUES (1, 'ann', 'Ann A'), (2, 'bob', NULL), (3, 'cy', NULL);
INSERT INTO posts (author_id, status, title, body) VALUES
    (1, 'draft', 'Hello', 'x'), (1, 'posted', 'World', NULL), (2, 'scheduled', 'Soon', 'y'),
    (3, 'posted', 'Gone', 'z'), (3, 'draft', 'Gone too', 'w');
DELETE FROM posts WHERE id = 5;
INSERT INTO sessions VALUES (1, 1, 't1'), (2, 2, 't2'), (3, NULL, 't3');
";

#[test]
fn enum_widening_keeps_children_rows_indexes_views_triggers_and_counter() {
    let db = Db::new(CONTENT);
    let (schema_before, data_before) = snapshot(&db);
    let indexes_before =
        db.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name");
    let g = rebuild(
        &db,
        "posts",
        &["--enum", "status=draft,scheduled,posted,failed"],
    );
    assert!(!g.up.contains("sqlite_autoindex"));
    // Rows, values, rowids and the AUTOINCREMENT counter are kept.
    let (_, data_after) = snapshot(&db);
    assert_eq!(data_before, data_after);
    // Indexes (partial, expression, DESC, COLLATE, UNIQUE) are identical, byte for byte.
    assert_eq!(
        indexes_before,
        db.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name")
    );
    let c = db.conn();
    c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    c.execute(
        "INSERT INTO posts (author_id, status) VALUES (1, 'failed')",
        [],
    )
    .unwrap();
    assert_eq!(c.last_insert_rowid(), 6, "deleted id 5 must not be reused");
    assert!(c
        .execute(
            "INSERT INTO posts (author_id, status) VALUES (1, 'bogus')",
            []
        )
        .is_err());
    // The views (and the view of the view) work; both triggers fire.
    assert_eq!(
        rows(&c, "SELECT title FROM published_titles ORDER BY 1"),
        ["'Gone'", "'World'"]
    );
    c.execute("UPDATE posts SET body = 'b' WHERE id = 1", [])
        .unwrap();
    c.execute("DELETE FROM users WHERE id = 3", []).unwrap();
    assert_eq!(
        rows(&c, "SELECT what FROM audit"),
        ["'post 1'", "'orphan 0'"]
    );
    // ON DELETE CASCADE still works after the rebuild (the children kept their keys).
    assert_eq!(
        rows(&c, "SELECT count(*) FROM posts WHERE author_id = 3"),
        ["0"]
    );
    // Then down: back to the original schema and data.
    let db2 = Db::new(CONTENT);
    let g2 = rebuild(
        &db2,
        "posts",
        &["--enum", "status=draft,scheduled,posted,failed"],
    );
    execute(&db2.conn(), &g2.down).unwrap();
    assert_eq!(snapshot(&db2), (schema_before, data_before));
}

#[test]
fn rebuilding_a_parent_keeps_cascade_and_set_null_children() {
    let db = Db::new(CONTENT);
    let before = db
        .rows("SELECT * FROM posts UNION ALL SELECT id, user_id, token, NULL, NULL FROM sessions");
    rebuild(&db, "users", &["--not-null", "full_name=(name)"]);
    assert_eq!(
        before,
        db.rows(
            "SELECT * FROM posts UNION ALL SELECT id, user_id, token, NULL, NULL FROM sessions"
        )
    );
    assert_eq!(
        db.rows("SELECT full_name FROM users ORDER BY id"),
        ["'Ann A'", "'bob'", "'cy'"]
    );
    assert!(fk_check(&db).is_empty());
    // The children still point at "users" (the old table was never renamed).
    let sql = db
        .rows("SELECT sql FROM sqlite_schema WHERE name IN ('posts', 'sessions')")
        .join(" ");
    assert!(
        sql.contains("REFERENCES users(id) ON DELETE CASCADE")
            && sql.contains("REFERENCES users(id) ON DELETE SET NULL"),
        "{sql}"
    );
}

#[test]
fn self_and_composite_foreign_keys() {
    let db = Db::new(
        "CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES nodes(id), label TEXT);
         INSERT INTO nodes VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 2, 'b');
         CREATE TABLE pairs (a TEXT, b TEXT, note TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
         CREATE TABLE uses (id INTEGER PRIMARY KEY, pa TEXT, pb TEXT, FOREIGN KEY (pa, pb) REFERENCES pairs(a, b) ON DELETE CASCADE);
         INSERT INTO pairs VALUES ('x', 'y', 'n1'), ('x', 'z', NULL);
         INSERT INTO uses VALUES (1, 'x', 'y'), (2, 'x', 'z');",
    );
    rebuild(
        &db,
        "nodes",
        &["--not-null", "label", "--type", "label=VARCHAR(20)"],
    );
    let sql = db.rows("SELECT sql FROM sqlite_schema WHERE name = 'nodes'")[0].clone();
    assert!(
        sql.contains("REFERENCES nodes(id)") && sql.contains("label VARCHAR(20) NOT NULL"),
        "{sql}"
    );
    rebuild(&db, "pairs", &["--default", "note='none'"]);
    rebuild(
        &db,
        "uses",
        &["--nullable", "pa"]
            .iter()
            .copied()
            .take(0)
            .chain(["--default", "pb='z'"])
            .collect::<Vec<_>>(),
    );
    assert!(fk_check(&db).is_empty());
    assert_eq!(
        db.rows("SELECT * FROM uses ORDER BY id"),
        ["1|'x'|'y'", "2|'x'|'z'"]
    );
    let c = db.conn();
    c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    assert!(c
        .execute("INSERT INTO nodes VALUES (9, 99, 'orphan')", [])
        .is_err());
    c.execute("DELETE FROM pairs WHERE b = 'y'", []).unwrap();
    assert_eq!(rows(&c, "SELECT id FROM uses"), ["2"]);
}

#[test]
fn rowids_without_integer_primary_key_and_without_rowid_tables() {
    let db = Db::new(
        "CREATE TABLE t (name TEXT, n INTEGER);
         INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4);
         DELETE FROM t WHERE n IN (1, 3);
         CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
         INSERT INTO w VALUES ('b', 2), ('a', 1);",
    );
    rebuild(&db, "t", &["--check", "n=n > 0"]);
    assert_eq!(
        db.rows("SELECT rowid, name FROM t ORDER BY rowid"),
        ["2|'b'", "4|'d'"]
    );
    rebuild(&db, "w", &["--not-null", "v"]);
    assert_eq!(db.rows("SELECT * FROM w"), ["'a'|1", "'b'|2"]);
    assert!(db.rows("SELECT sql FROM sqlite_schema WHERE name = 'w'")[0].contains("WITHOUT ROWID"));
}

#[test]
fn strict_table_refuses_values_that_do_not_fit_and_leaves_the_file_unchanged() {
    let db = Db::new(
        "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT) STRICT;
         INSERT INTO s VALUES (1, '12'), (2, 'abc'), (3, 'abc'), (4, NULL);",
    );
    let before = db.bytes();
    let g = gen(&db, "s", &["--type", "v=INTEGER"]).unwrap();
    let err = execute(&db.conn(), &g.up).unwrap_err();
    assert_eq!(err.code(), "rebuild-type-mismatch", "{err}");
    assert_eq!(
        err.to_string(),
        "s.v: values do not fit the STRICT type INTEGER: 'abc' (2 rows)"
    );
    assert_eq!(db.bytes(), before);
    // Once the bad values are gone, the same file runs and '12' became 12 (affinity, no CAST).
    db.conn()
        .execute("DELETE FROM s WHERE v = 'abc'", [])
        .unwrap();
    execute(&db.conn(), &g.up).unwrap();
    assert_eq!(
        db.rows("SELECT v, typeof(v) FROM s ORDER BY id"),
        ["12|'integer'", "NULL|'null'"]
    );
}

#[test]
fn non_strict_type_change_reports_values_that_keep_their_type() {
    let db = Db::new("CREATE TABLE p (id INTEGER PRIMARY KEY, price TEXT); INSERT INTO p VALUES (1, '10'), (2, 'n/a'), (3, '2.5');");
    let g = gen(&db, "p", &["--type", "price=NUMERIC"]).unwrap();
    assert!(!g.up.to_ascii_uppercase().contains("CAST("));
    let report = execute(&db.conn(), &g.up).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("'n/a' (1 rows)"),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        db.rows("SELECT price, typeof(price) FROM p ORDER BY id"),
        ["10|'integer'", "'n/a'|'text'", "2.5|'real'"]
    );
}

#[test]
fn generated_columns_are_recomputed_not_copied() {
    let db = Db::new(
        "CREATE TABLE g (a INTEGER, b INTEGER, total INTEGER GENERATED ALWAYS AS (a + b) VIRTUAL, doubled AS (a * 2) STORED, note TEXT);
         INSERT INTO g (a, b, note) VALUES (1, 2, NULL), (3, 4, 'x');",
    );
    let g = rebuild(
        &db,
        "g",
        &["--default", "note='-'", "--rename", "note=remark"],
    );
    assert!(g.up.contains("(rowid, \"a\", \"b\", \"note\")"), "{}", g.up);
    assert_eq!(
        db.rows("SELECT a, b, total, doubled, remark FROM g ORDER BY rowid"),
        ["1|2|3|2|NULL", "3|4|7|6|'x'"]
    );
    assert_eq!(
        db.rows("SELECT name, hidden FROM pragma_table_xinfo('g') WHERE hidden > 0"),
        ["'total'|2", "'doubled'|3"]
    );
}

#[test]
fn awkward_identifiers_survive() {
    let db = Db::new(
        r#"CREATE TABLE "My ""Posts""" ("select" TEXT CHECK ("select" IN ('a', 'b')), [a b] INTEGER, `Ünï` TEXT DEFAULT 'é' COLLATE NOCASE, MixedCase INT);
           CREATE INDEX "idx ""q""" ON "My ""Posts"""("a b", "Ünï");
           CREATE VIEW "v w" AS SELECT "select", [a b] FROM "My ""Posts""";
           INSERT INTO "My ""Posts""" VALUES ('a', 1, 'Ü', 5), ('b', 2, DEFAULT, 6);"#
            .replace("DEFAULT, 6", "'x', 6")
            .as_str(),
    );
    let before = db.rows(r#"SELECT * FROM "My ""Posts""" ORDER BY rowid"#);
    let g = rebuild(
        &db,
        "my \"posts\"",
        &[
            "--enum",
            "select=a,b,c",
            "--rename",
            "MIXEDCASE=Größe",
            "--type",
            "a b=TEXT",
        ],
    );
    assert_eq!(
        before,
        db.rows(r#"SELECT "select", "a b", "Ünï", "Größe" FROM "My ""Posts""" ORDER BY rowid"#)
            .into_iter()
            .map(|r| r.replacen("'1'", "1", 1).replacen("'2'", "2", 1))
            .collect::<Vec<_>>()
    );
    let sql = db.rows(r#"SELECT sql FROM sqlite_schema WHERE name = 'My "Posts"'"#)[0].clone();
    assert!(
        sql.contains("`Ünï` TEXT DEFAULT 'é' COLLATE NOCASE"),
        "{sql}"
    );
    assert!(
        sql.contains("('a', 'b', 'c')") && sql.contains("[a b] TEXT"),
        "{sql}"
    );
    assert_eq!(db.rows(r#"SELECT count(*) FROM "v w""#), ["2"]);
    execute(&db.conn(), &g.down).unwrap();
    assert_eq!(
        before,
        db.rows(r#"SELECT * FROM "My ""Posts""" ORDER BY rowid"#)
    );
}

#[test]
fn a_table_already_named_like_the_temporary_name_is_left_alone() {
    let db = Db::new(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE _dbtool_new_t (keep TEXT);
         INSERT INTO _dbtool_new_t VALUES ('precious');
         INSERT INTO t VALUES (1, 'x');",
    );
    let g = rebuild(&db, "t", &["--not-null", "v"]);
    assert!(g.up.contains("\"_dbtool_new_t_2\""));
    assert_eq!(db.rows("SELECT * FROM _dbtool_new_t"), ["'precious'"]);
    assert_eq!(db.rows("SELECT * FROM t"), ["1|'x'"]);
}

#[test]
fn rename_and_retype_together_and_back() {
    let db = Db::new(CONTENT);
    let before = snapshot(&db);
    let g = rebuild(
        &db,
        "posts",
        &["--rename", "body=content", "--type", "content=BLOB"],
    );
    let sql = db.rows("SELECT sql FROM sqlite_schema WHERE name = 'posts'")[0].clone();
    assert!(sql.contains("\"content\" BLOB"), "{sql}");
    assert_eq!(db.rows("SELECT content FROM posts WHERE id = 1"), ["'x'"]);
    execute(&db.conn(), &g.down).unwrap();
    assert_eq!(snapshot(&db), before);
}

#[test]
fn up_then_down_for_every_kind_of_change() {
    let cases: &[&[&str]] = &[
        &["--enum", "status=draft,posted,scheduled,failed"],
        &["--check", "body=length(body) < 100"],
        &["--drop-check", "status"],
        &["--type", "title=VARCHAR(200)"],
        &["--not-null", "body='(none)'"],
        &["--nullable", "status"],
        &["--default", "status='scheduled'"],
        &["--drop-default", "title"],
        &["--rename", "body=content"],
        &["--drop", "body"],
        &["--drop-fk", "author_id"],
        &["--unique", "body"],
        &["--add-fk", "body=users(id):set-null"],
    ];
    for args in cases {
        let db = Db::new(&CONTENT.replace("(1, 'draft', 'Hello', 'x'), (1, 'posted', 'World', NULL), (2, 'scheduled', 'Soon', 'y')", "(1, 'draft', 'Hello', 1), (1, 'posted', 'World', NULL), (2, 'scheduled', 'Soon', 2)").replace("(3, 'posted', 'Gone', 'z'), (3, 'draft', 'Gone too', 'w')", "(3, 'posted', 'Gone', 3), (3, 'draft', 'Gone too', NULL)"));
        let (schema_before, data_before) = snapshot(&db);
        let g = rebuild(&db, "posts", args);
        assert!(fk_check(&db).is_empty(), "{args:?}");
        execute(&db.conn(), &g.down).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", g.down));
        let (schema_after, data_after) = snapshot(&db);
        assert_eq!(schema_before, schema_after, "{args:?}");
        if g.lossy.is_empty() {
            assert_eq!(data_before, data_after, "{args:?}");
        } else {
            assert!(g.down.contains("-- dbtool:lossy"), "{args:?}");
        }
    }
}

#[test]
fn lossy_down_needs_the_flag() {
    let db = Db::new(CONTENT);
    let err = generate(
        &db.conn(),
        &spec("posts", &["--drop", "body"]),
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "rebuild-lossy-down");
    let g = gen(&db, "posts", &["--drop", "body"]).unwrap();
    assert!(
        g.down
            .lines()
            .any(|l| l.starts_with("-- dbtool:lossy body:")),
        "{}",
        g.down
    );
}

/// Each refusal: (setup, table, change, expected code, expected message fragment).
#[test]
fn every_refusal_leaves_the_file_byte_identical() {
    let cases: &[(&str, &str, &[&str], &str, &str)] = &[
        (
            "",
            "posts",
            &["--enum", "status=draft,posted"],
            "rebuild-check-violated",
            "'scheduled' (1 row)",
        ),
        (
            "",
            "users",
            &["--not-null", "full_name"],
            "rebuild-nulls-present",
            "2 rows hold NULL",
        ),
        (
            "INSERT INTO sessions VALUES (4, 1, 't1');",
            "sessions",
            &["--unique", "token"],
            "rebuild-duplicates",
            "'t1' (2 rows)",
        ),
        (
            "",
            "sessions",
            &["--add-fk", "token=posts(id)"],
            "rebuild-foreign-key-violated",
            "3 rows point at no row of posts(id)",
        ),
        (
            "",
            "posts",
            &["--drop", "title"],
            "rebuild-column-in-use",
            "index posts_title_lower",
        ),
        (
            "",
            "posts",
            &["--drop", "status"],
            "rebuild-column-in-use",
            "index posts_status",
        ),
        (
            "",
            "posts",
            &["--drop", "author_id"],
            "rebuild-column-in-use",
            "trigger users_audit",
        ),
        (
            "CREATE TABLE c2 (a INT, b INT, CHECK (a < b));",
            "c2",
            &["--drop", "b"],
            "rebuild-column-in-use",
            "a table CHECK constraint",
        ),
        (
            "CREATE TABLE v1t (a INT, b INT); CREATE VIEW uses_b AS SELECT a, b FROM v1t;",
            "v1t",
            &["--drop", "b"],
            "rebuild-view-broken",
            "view uses_b",
        ),
        (
            "CREATE VIRTUAL TABLE f USING fts5(x);",
            "f",
            &["--drop", "x"],
            "rebuild-unsupported-table",
            "virtual table",
        ),
        (
            "CREATE VIRTUAL TABLE f USING fts5(x);",
            "f_data",
            &["--drop", "block"],
            "rebuild-unsupported-table",
            "shadow table",
        ),
        (
            "CREATE VIEW broken AS SELECT nope FROM audit;",
            "posts",
            &["--not-null", "body='-'"],
            "rebuild-broken-schema",
            "view broken",
        ),
    ];
    for (setup, table, args, code, fragment) in cases {
        let db = Db::new(&format!("{CONTENT}{setup}"));
        let before = db.bytes();
        let result = gen(&db, table, args)
            .map_err(dbtool::Error::from)
            .and_then(|g| execute(&db.conn(), &g.up));
        let err = result.expect_err(&format!("{args:?} should be refused"));
        assert_eq!(err.code(), *code, "{args:?}: {err}");
        let message = format!("{err}");
        assert!(message.contains(fragment), "{args:?}: {message}");
        assert_eq!(db.bytes(), before, "{args:?} changed the file");
    }
}

#[test]
fn a_table_changed_since_generation_is_refused_by_dbtool_and_by_the_guard() {
    let db = Db::new(CONTENT);
    let g = gen(&db, "posts", &["--not-null", "body='-'"]).unwrap();
    db.conn()
        .execute_batch("CREATE INDEX posts_body ON posts(body)")
        .unwrap();
    let before = db.bytes();
    let err = execute(&db.conn(), &g.up).unwrap_err();
    assert_eq!(err.code(), "rebuild-table-changed");
    assert_eq!(db.bytes(), before);
    // Run by something else (plain refinery does BEGIN; the file; COMMIT), the guard aborts.
    let c = db.conn();
    c.pragma_update(None, "foreign_keys", false).unwrap();
    let err = c
        .execute_batch(&format!("BEGIN; {} COMMIT;", g.up))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("changed since this rebuild was generated"),
        "{err}"
    );
    c.execute_batch("ROLLBACK").unwrap();
    assert_eq!(db.bytes(), before);
}

#[test]
fn the_guard_aborts_when_foreign_keys_are_on() {
    let db = Db::new(CONTENT);
    let g = gen(&db, "users", &["--not-null", "name"]).unwrap();
    let before = db.bytes();
    let c = db.conn();
    c.pragma_update(None, "foreign_keys", true).unwrap();
    let err = c
        .execute_batch(&format!("BEGIN; {} COMMIT;", g.up))
        .unwrap_err();
    assert!(err.to_string().contains("foreign keys OFF"), "{err}");
    c.execute_batch("ROLLBACK").unwrap();
    drop(c);
    assert_eq!(db.bytes(), before);
    assert_eq!(db.rows("SELECT count(*) FROM posts"), ["4"]);
}

#[test]
fn external_content_fts5_index_still_passes_integrity_check() {
    let db = Db::new(&format!(
        "{CONTENT}
        CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');
        CREATE TRIGGER posts_fts_ai AFTER INSERT ON posts BEGIN INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
        CREATE TRIGGER posts_fts_ad AFTER DELETE ON posts BEGIN INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END;
        INSERT INTO posts_fts(posts_fts) VALUES ('rebuild');"
    ));
    rebuild(
        &db,
        "posts",
        &["--enum", "status=draft,scheduled,posted,failed"],
    );
    let c = db.conn();
    c.execute(
        "INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .unwrap();
    c.execute(
        "INSERT INTO posts (author_id, title, body) VALUES (1, 'Fresh', 'words')",
        [],
    )
    .unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'fresh'"
        ),
        ["6"]
    );
    c.execute(
        "INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .unwrap();
}

#[test]
fn a_locked_database_fails_with_the_locked_code_and_changes_nothing() {
    let db = Db::new(CONTENT);
    let g = gen(&db, "posts", &["--not-null", "body='-'"]).unwrap();
    let holder = db.conn();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let c = db.conn();
    c.busy_timeout(std::time::Duration::from_millis(0)).unwrap();
    let err = execute(&c, &g.up).unwrap_err();
    assert_eq!(err.code(), "database-locked");
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        db.rows("SELECT count(*) FROM posts WHERE body IS NULL"),
        ["1"]
    );
    let _ = Path::new("");
}

#[test]
fn renaming_a_referenced_column_carries_into_children_and_back() {
    let db = Db::new(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT UNIQUE, note TEXT);
         CREATE TABLE c (id INTEGER PRIMARY KEY, pcode TEXT REFERENCES p(code));
         CREATE INDEX p_code_note ON p(code, note);
         CREATE VIEW pv AS SELECT code FROM p;
         INSERT INTO p VALUES (1, 'a', NULL), (2, 'b', 'x');
         INSERT INTO c VALUES (1, 'a'), (2, 'b');",
    );
    let before = snapshot(&db);
    let g = rebuild(&db, "p", &["--rename", "code=key", "--default", "note='-'"]);
    let child = db.rows("SELECT sql FROM sqlite_schema WHERE name = 'c'")[0].clone();
    assert!(child.contains("REFERENCES p(\"key\")"), "{child}");
    assert!(fk_check(&db).is_empty());
    assert_eq!(db.rows("SELECT * FROM pv ORDER BY 1"), ["'a'", "'b'"]);
    assert!(
        g.down.contains("RENAME COLUMN \"key\" TO \"code\""),
        "{}",
        g.down
    );
    execute(&db.conn(), &g.down).unwrap();
    assert_eq!(snapshot(&db), before);
    assert!(fk_check(&db).is_empty());
}

#[test]
fn a_copy_that_loses_or_changes_a_row_is_refused_before_the_drop_and_changes_nothing() {
    // In both journal modes. A copy edited to skip a row runs as written and both tables are read
    // at the DROP; the generated copy digests the old rows as it reads them, and a change to the
    // new table after it shows in the read-back.
    for wal in [false, true] {
        copy_proof_refuses(wal);
    }
}

fn copy_proof_refuses(wal: bool) {
    let db = Db::new(CONTENT);
    if wal {
        db.conn()
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
    }
    let g = gen(&db, "posts", &["--not-null", "body='-'"]).unwrap();
    let before = db.bytes();
    let copy_end = r#"FROM main."posts";"#;
    assert!(g.up.contains(copy_end), "{}", g.up);
    // A lost row.
    let lost =
        g.up.replacen(copy_end, r#"FROM main."posts" WHERE rowid > 1;"#, 1);
    let err = execute(&db.conn(), &lost).unwrap_err();
    assert_eq!(err.code(), "rebuild-copy-differs", "{err}");
    assert!(err.to_string().contains("rows before"), "{err}");
    assert_eq!(db.bytes(), before);
    // A changed value.
    let changed = g.up.replacen(
        copy_end,
        &format!(
            "{copy_end}\nUPDATE main.\"_dbtool_new_posts\" SET body = 'changed' WHERE rowid = 1;"
        ),
        1,
    );
    let err = execute(&db.conn(), &changed).unwrap_err();
    assert_eq!(err.code(), "rebuild-copy-differs", "{err}");
    assert!(err.to_string().contains("not the same values"), "{err}");
    assert_eq!(db.bytes(), before);
    // A row deleted from the new table after the copy (the copy itself digested every old row).
    let deleted = g.up.replacen(
        copy_end,
        &format!("{copy_end}\nDELETE FROM main.\"_dbtool_new_posts\" WHERE rowid = 2;"),
        1,
    );
    let err = execute(&db.conn(), &deleted).unwrap_err();
    assert_eq!(err.code(), "rebuild-copy-differs", "{err}");
    assert!(
        err.to_string().contains("4 rows before, 3 in the copy"),
        "{err}"
    );
    assert_eq!(db.bytes(), before);
    // The file as generated runs, and keeps every row (NULL bodies filled, as asked).
    let rows =
        db.rows("SELECT id, author_id, status, title, coalesce(body, '-') FROM posts ORDER BY id");
    execute(&db.conn(), &g.up).unwrap();
    assert_eq!(db.rows("SELECT * FROM posts ORDER BY id"), rows);
}

/// A rebuild alone in its transaction spares its table the foreign-key check only when its
/// foreign keys are proven unchanged. A copy edited to fill `author_id` from another column is
/// proven (the new rows are what the statement says) but its keys are new values: they are
/// checked (before the copy), and the dangling one refuses the rebuild.
#[test]
fn a_copy_that_changes_a_foreign_key_column_is_still_checked() {
    let db = Db::new(CONTENT);
    let g = gen(
        &db,
        "posts",
        &["--enum", "status=draft,scheduled,posted,failed"],
    )
    .unwrap();
    let copy = r#"SELECT "id", "author_id""#;
    assert!(g.up.contains(copy), "{}", g.up);
    // Post ids 1..4 as authors: there is no user 4.
    let edited = g.up.replacen(copy, r#"SELECT "id", "id""#, 1);
    let before = db.bytes();
    let err = execute(&db.conn(), &edited).unwrap_err();
    assert_eq!(err.code(), "rebuild-foreign-key-violated", "{err}");
    assert_eq!(db.bytes(), before);
    // As generated, with a dangling post that was there before: the rebuild runs (an old
    // violation is not the rebuild's), and the dangling row is kept.
    db.conn()
        .execute_batch(
            "PRAGMA foreign_keys = OFF; INSERT INTO posts (author_id, title) VALUES (99, 'orphan')",
        )
        .unwrap();
    let g = gen(
        &db,
        "posts",
        &["--enum", "status=draft,scheduled,posted,failed"],
    )
    .unwrap();
    execute(&db.conn(), &g.up).unwrap();
    assert_eq!(
        db.rows("SELECT count(*) FROM posts WHERE author_id = 99"),
        ["1"]
    );
    assert_eq!(fk_check(&db).len(), 1);
}
