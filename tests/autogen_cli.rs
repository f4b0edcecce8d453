//! `dbtool schema`, `dbtool diff`, `create --autogenerate` (its refusals and `--data`) and the
//! `schema-file-drift` finding of `check` and `verify`, through the real binary.

use std::path::Path;

mod common;
use common::{exec, int, TestEnv};

const V1: &str = "
CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER REFERENCES users(id), title TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'posted')));
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE VIEW posted_titles AS SELECT title FROM posted;
CREATE VIEW posted AS SELECT * FROM posts WHERE status = 'posted';
CREATE TRIGGER users_gone AFTER DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END;
CREATE INDEX posts_user ON posts(user_id);
CREATE TRIGGER posted_ins INSTEAD OF INSERT ON posted BEGIN INSERT INTO posts (title, status) VALUES (new.title, 'posted'); END;
";
const V1_DOWN: &str =
    "DROP VIEW posted_titles; DROP VIEW posted; DROP TABLE posts; DROP TABLE users;";

fn project() -> TestEnv {
    let env = TestEnv::new();
    env.migration(1, "init", V1, Some(V1_DOWN));
    env
}

fn files(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.migrations())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn schema_prints_parents_first_then_views_in_dependency_order_without_internals() {
    let env = project();
    let text = env.ok(&["schema"]).stdout();
    let expected = "\
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TRIGGER users_gone AFTER DELETE ON users BEGIN DELETE FROM posts WHERE user_id = old.id; END;

CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER REFERENCES users(id), title TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'posted')));
CREATE INDEX posts_user ON posts(user_id);

CREATE VIEW posted AS SELECT * FROM posts WHERE status = 'posted';

CREATE VIEW posted_titles AS SELECT title FROM posted;
CREATE TRIGGER posted_ins INSTEAD OF INSERT ON posted BEGIN INSERT INTO posts (title, status) VALUES (new.title, 'posted'); END;
";
    assert_eq!(text, expected);
    // The file form, and the live database after the upgrade, give the same text.
    env.ok(&["schema", "-o", "schema.sql"]);
    assert_eq!(
        std::fs::read_to_string(env.root().join("schema.sql")).unwrap(),
        expected
    );
    env.ok(&["init"]);
    let live = env.ok(&["schema", "--from", "database"]).stdout();
    assert_eq!(live, expected);
    assert!(!live.contains("sqlite_sequence") && !live.contains("refinery_schema_history"));
    // Adopting the workflow: the written file is clean against the migrations.
    env.ok(&["diff"]);
    env.ok(&["verify"]);
}

#[test]
fn diff_exits_3_on_a_difference_and_lists_changes_in_json() {
    let env = project();
    let run = env.run(&["diff"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[no-schema-file]"),
        "{}",
        run.stderr()
    );

    env.ok(&["schema", "-o", "schema.sql"]);
    let same = env.ok(&["diff"]);
    assert!(same.stderr().contains("no difference"), "{}", same.stderr());

    let declared = std::fs::read_to_string(env.root().join("schema.sql")).unwrap();
    env.write(
        "schema.sql",
        declared.replace("('draft', 'posted')", "('draft', 'posted', 'hidden')")
            + "\nCREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n",
    );
    let run = env.run(&["diff"]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stdout().contains("CREATE TABLE tags"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("_dbtool_new_posts"),
        "{}",
        run.stdout()
    );
    let run = env.run(&["diff", "--json"]);
    assert_eq!(run.code(), 3);
    let json = run.json();
    let changes: Vec<(String, String, String)> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["object"].as_str().unwrap().to_string(),
                c["how"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("add-table".into(), "tags".into(), "create".into()),
            ("rebuild-table".into(), "posts".into(), "rebuild".into()),
        ]
    );
    assert_eq!(json["differs"], true);
    // Nothing was written by a diff.
    assert_eq!(files(&env).len(), 2);
}

#[test]
fn create_autogenerate_without_a_difference_writes_nothing() {
    let env = project();
    env.ok(&["schema", "-o", "schema.sql"]);
    let run = env.ok(&["create", "nothing", "--autogenerate"]);
    assert!(
        run.stderr().contains("no difference") && run.stderr().contains("nothing written"),
        "{}",
        run.stderr()
    );
    assert_eq!(files(&env).len(), 2);
}

#[test]
fn ambiguous_rename_names_both_readings_and_the_flag_for_each() {
    let env = project();
    env.ok(&["schema", "-o", "schema.sql"]);
    let declared = std::fs::read_to_string(env.root().join("schema.sql")).unwrap();
    env.write(
        "schema.sql",
        declared.replace("name TEXT NOT NULL", "full_name TEXT NOT NULL"),
    );
    let run = env.run(&["create", "rename", "--autogenerate"]);
    assert_eq!(run.code(), 5, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("error[ambiguous-rename]"), "{err}");
    assert!(err.contains("--rename users.name=full_name"), "{err}");
    assert!(err.contains("--allow-drop"), "{err}");
    assert_eq!(files(&env).len(), 2);
    // Either reading, once declared, is written.
    env.ok(&[
        "create",
        "rename",
        "--autogenerate",
        "--rename",
        "users.name=full_name",
    ]);
    let up = std::fs::read_to_string(env.migrations().join("V0002__rename.sql")).unwrap();
    assert!(
        up.contains("RENAME COLUMN \"name\" TO \"full_name\""),
        "{up}"
    );
}

#[test]
fn data_rehearsal_refuses_a_change_the_rows_break_and_writes_nothing() {
    let env = project();
    env.ok(&["init"]);
    exec(
        &env.db(),
        "INSERT INTO users VALUES (1, 'ann'); INSERT INTO posts (user_id, title, status) VALUES (1, 'a', 'draft'), (1, 'b', 'posted');",
    );
    env.ok(&["schema", "-o", "schema.sql"]);
    let declared = std::fs::read_to_string(env.root().join("schema.sql")).unwrap();
    // Narrowing the enum is fine on an empty scratch database, not on these rows.
    env.write(
        "schema.sql",
        declared.replace("('draft', 'posted')", "('draft')"),
    );
    let run = env.run(&["create", "narrow", "--autogenerate", "--data", "content.db"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[data-rehearsal-failed]"),
        "{}",
        run.stderr()
    );
    assert_eq!(files(&env).len(), 2);
    // The data itself was not touched (the rehearsal ran on a copy).
    assert_eq!(int(&env.db(), "SELECT count(*) FROM posts"), 2);

    // A change the rows allow passes the same rehearsal and is written.
    env.write(
        "schema.sql",
        declared.replace("('draft', 'posted')", "('draft', 'posted', 'hidden')"),
    );
    let run = env.ok(&["create", "widen", "--autogenerate", "--data", "content.db"]);
    assert!(run.stderr().contains("--data"), "{}", run.stderr());
    assert_eq!(files(&env).len(), 4);
    env.ok(&["upgrade"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM posts"), 2);
}

#[test]
fn check_and_verify_report_schema_file_drift() {
    let env = project();
    env.ok(&["init"]);
    env.ok(&["schema", "-o", "schema.sql"]);
    env.ok(&["check"]);
    let declared = std::fs::read_to_string(env.root().join("schema.sql")).unwrap();
    env.write(
        "schema.sql",
        declared + "\nCREATE INDEX users_name ON users(name);\n",
    );
    for command in ["check", "verify"] {
        let run = env.run(&[command]);
        assert_eq!(run.code(), 3, "{command}: {}", run.stdout());
        assert!(
            run.stdout().contains("problem[schema-file-drift]")
                && run
                    .stdout()
                    .contains("+CREATE INDEX users_name ON users(name)"),
            "{command}: {}",
            run.stdout()
        );
    }
    // Generating the migration puts the folder back in step.
    env.ok(&["create", "index users by name", "--autogenerate"]);
    env.ok(&["verify"]);
}

#[test]
fn the_example_project_schema_file_is_in_step_with_its_migrations() {
    let env = TestEnv::new();
    env.example_set();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.sql");
    let run = env.run(&["verify", "--schema", schema.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let run = env.run(&["diff", "--schema", schema.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
}

#[test]
fn a_new_project_starts_from_its_schema_file() {
    let env = TestEnv::new();
    env.write(
        "schema.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nCREATE VIEW names AS SELECT name FROM a;\n",
    );
    assert_eq!(env.run(&["diff"]).code(), 3);
    // `create` never makes a migrations folder of its own (`dbtool init` starts a project).
    std::fs::create_dir(env.migrations()).unwrap();
    env.ok(&["create", "init", "--autogenerate"]);
    let up = std::fs::read_to_string(env.migrations().join("V0001__init.sql")).unwrap();
    assert!(up.contains("down gives the empty database back"), "{up}");
    env.ok(&["init"]);
    env.ok(&["check"]);
    env.ok(&["verify"]);
    env.ok(&["downgrade", "base"]);
    assert_eq!(
        int(
            &env.db(),
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('a', 'names')"
        ),
        0
    );
}
