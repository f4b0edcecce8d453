//! The first hour of a new user (issue 10): starting a project of one's own, the create → edit →
//! upgrade loop, and the habits people bring from Alembic and `db_migrate.py`.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// `dbtool ARGS` run in `dir` (a folder inside the test's world).
fn run_in(env: &TestEnv, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = env
        .command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run dbtool");
    let clean =
        |b: &[u8]| String::from_utf8_lossy(b).replace(&env.root().display().to_string(), "$TMP");
    (
        output.status.code().expect("exit status"),
        clean(&output.stdout),
        clean(&output.stderr),
    )
}

fn project(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn init_in_an_empty_folder_starts_a_project() {
    let env = TestEnv::new();
    let dir = project(&env, "shop");
    let (code, out, err) = run_in(&env, &dir, &["init"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created dbtool.toml (database = shop.db, migrations = migrations)"),
        "{out}"
    );
    assert!(out.contains("created migrations/"), "{out}");
    assert!(out.contains("created shop.db"), "{out}");
    assert!(
        out.contains("dbtool create \"Create users table\""),
        "{out}"
    );
    assert!(out.contains("dbtool upgrade"), "{out}");
    let toml = std::fs::read_to_string(dir.join("dbtool.toml")).unwrap();
    assert!(toml.contains("database = \"shop.db\""), "{toml}");
    assert!(dir.join("migrations").is_dir());
    assert!(
        !dir.join("content.db").exists(),
        "never the example's database name"
    );
    assert_eq!(versions(&dir.join("shop.db")), Vec::<i32>::new());

    // the loop: create, edit, upgrade, from a subfolder too (dbtool.toml is found upwards)
    let sub = dir.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let (code, out, err) = run_in(&env, &sub, &["create", "-m", "Add tags table"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!sub.join("migrations").exists(), "no stray migrations/");
    assert!(!dir.join("Add tags table").exists());
    let up = dir.join("migrations/V0001__add_tags_table.sql");
    let mut text = std::fs::read_to_string(&up).unwrap();
    text.push_str("CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT);\n");
    std::fs::write(&up, text).unwrap();
    let (code, out, err) = run_in(&env, &sub, &["upgrade"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&dir.join("shop.db")), vec![1]);
    assert!(tables(&dir.join("shop.db")).contains(&"tags".to_string()));

    // a second init leaves everything as it is
    let toml_before = std::fs::read(dir.join("dbtool.toml")).unwrap();
    let (code, out, _) = run_in(&env, &dir, &["init"]);
    assert_eq!(code, 0);
    assert!(out.contains("already initialised at version 1"), "{out}");
    assert_eq!(std::fs::read(dir.join("dbtool.toml")).unwrap(), toml_before);
}

#[test]
fn init_names_the_database_from_the_flag_and_never_content_db() {
    let env = TestEnv::new();
    let dir = project(&env, "blog");
    let (code, out, err) = run_in(&env, &dir, &["--database", "data.sqlite", "--json", "init"]);
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["database"], "$TMP/blog/data.sqlite");
    let toml = std::fs::read_to_string(dir.join("dbtool.toml")).unwrap();
    assert!(toml.contains("database = \"data.sqlite\""), "{toml}");
    assert!(dir.join("data.sqlite").exists());

    // a folder called `content` still does not get the example's name
    let dir = project(&env, "content");
    let (code, out, _) = run_in(&env, &dir, &["init"]);
    assert_eq!(code, 0);
    assert!(out.contains("database = app.db"), "{out}");
}

#[test]
fn init_in_the_example_repository_builds_content_db_at_head() {
    let env = TestEnv::new();
    env.example_set();
    let run = env.ok(&["init"]);
    assert!(!env.root().join("dbtool.toml").exists());
    assert!(
        run.stdout().contains("-> version 8 (head)"),
        "{}",
        run.stdout()
    );
    assert_eq!(versions(&env.db()), (1..=8).collect::<Vec<_>>());
}

#[test]
fn upgrade_never_creates_a_database() {
    let env = TestEnv::new();
    env.library_set();
    for args in [
        &["upgrade"][..],
        &["upgrade", "--dry-run"],
        &["upgrade", "2"],
    ] {
        env.run(args).assert_error(
            1,
            "error[database-missing]: database $TMP/content.db does not exist",
        );
        assert!(!env.db().exists(), "{args:?} created the database");
    }
    let run = env.run(&["--database", "typo.db", "upgrade"]);
    assert!(
        run.stderr().contains("hint: create it with `dbtool init`"),
        "{}",
        run.stderr()
    );
    assert!(!env.root().join("typo.db").exists());
    let json = env.run(&["--json", "upgrade"]).json();
    assert_eq!(json["error"]["code"], "database-missing");
    assert!(json["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("dbtool init"));
}

#[test]
fn sqlalchemy_three_slashes_get_a_hint_when_the_relative_file_exists() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["--database", "app.db", "init"]);
    let run = env
        .command()
        .env("DATABASE_URL", "sqlite:///app.db")
        .arg("upgrade")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("error[database-missing]: database /app.db does not exist"),
        "{err}"
    );
    assert!(
        err.contains("DATABASE_URL sqlite:///app.db names the absolute path /app.db, but app.db exists in this folder: for a relative path write sqlite:app.db"),
        "{err}"
    );
    assert!(!Path::new("/app.db").exists());
}

#[test]
fn create_takes_alembics_message_flag_and_never_makes_folders() {
    let env = TestEnv::new();
    // no migrations folder anywhere: create refuses like every other command, creates nothing
    let sub = project(&env, "src");
    let (code, _, err) = run_in(&env, &sub, &["create", "-m", "Add tags table"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error[migrations-dir-missing]"), "{err}");
    assert!(err.contains("dbtool init"), "{err}");
    assert_eq!(
        std::fs::read_dir(&sub).unwrap().count(),
        0,
        "nothing created"
    );
    assert!(!env.root().join("Add tags table").exists());

    env.library_set();
    env.ok(&["create", "--message", "Add tags table"]);
    assert!(env.migrations().join("V0005__add_tags_table.sql").exists());
    assert!(env
        .migrations()
        .join("V0005__add_tags_table.down.sql")
        .exists());
    // a name and -m at once is a usage error
    assert_eq!(env.run(&["create", "x", "-m", "y"]).code(), 2);

    // an over-long name becomes a valid, shortened file name
    let long = "Add a column for the very long description of what this migration does ".repeat(6);
    let run = env.ok(&["--json", "create", &long]);
    let up = PathBuf::from(run.json()["up"].as_str().unwrap());
    let name = up.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("V0006__add_a_column_for_the_very_long"),
        "{name}"
    );
    assert!(name.len() < 80, "{name}");
    assert!(up.exists());
}

#[test]
fn redo_reruns_the_edited_newest_migration_in_one_transaction() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    exec(&env.db(), "UPDATE books SET isbn = 'x'");
    // edit the newest applied migration, as one does while writing it
    env.migration(
        4,
        "add_isbn",
        "ALTER TABLE books ADD COLUMN isbn TEXT;\nALTER TABLE books ADD COLUMN pages INTEGER;\n",
        Some("ALTER TABLE books DROP COLUMN pages;\nALTER TABLE books DROP COLUMN isbn;\n"),
    );
    let run = env.run(&["upgrade"]);
    run.assert_error(
        1,
        "error[edited-migration]: applied migration V4__add_isbn was edited since it was applied: $TMP/migrations/V0004__add_isbn.sql",
    );
    assert!(run.stderr().contains("`dbtool redo`"), "{}", run.stderr());
    let before = bytes(&env.db());

    // a down that does not fit what is applied (no pages column yet) fails: nothing changes
    let run = env.run(&["redo"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("V0004__add_isbn.down.sql"),
        "{}",
        run.stderr()
    );
    assert_unchanged(&env.db(), &before);

    env.migration(
        4,
        "add_isbn",
        "ALTER TABLE books ADD COLUMN isbn TEXT;\nALTER TABLE books ADD COLUMN pages INTEGER;\n",
        Some("ALTER TABLE books DROP COLUMN isbn;\n"),
    );
    // a down that undoes what is applied now (isbn only), then the new up
    let run = env.ok(&["redo"]);
    assert!(
        run.stdout().contains("reverted  V4__add_isbn"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("applied   V4__add_isbn"),
        "{}",
        run.stdout()
    );
    assert!(run.stderr().contains("backup: "), "{}", run.stderr());
    assert_eq!(
        columns(&env.db(), "books"),
        ["id", "author_id", "title", "isbn", "pages"]
    );
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    // the new checksum is recorded: status is clean, upgrade has nothing to do
    env.ok(&["status", "--exit-code"]);
    assert!(env.ok(&["upgrade"]).stdout().contains("nothing to upgrade"));
    let backups = env.ok(&["backups"]).stdout();
    assert_eq!(
        backups
            .lines()
            .filter(|l| l.contains("before-redo"))
            .count(),
        2,
        "one per redo that got as far as changing something:\n{backups}"
    );
}

#[test]
fn edited_older_migration_hints_at_reset_and_redo_refuses_it() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    env.migration(
        2,
        "create_books",
        "CREATE TABLE books(id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT, x);\n",
        Some("DROP TABLE books;\n"),
    );
    let run = env.run(&["upgrade"]);
    assert!(
        run.stderr().contains("`dbtool reset --yes`"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("dbtool redo"), "{}", run.stderr());
    let status = env.run(&["status"]).stdout();
    assert!(
        status.contains("`dbtool reset --yes`") && !status.contains("dbtool redo"),
        "{status}"
    );
    let run = env.run(&["redo"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.error_line()
            .starts_with("error[edited-migration]: applied migration V2__create_books"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("reset --yes"), "{}", run.stderr());
}

#[test]
fn upgrade_warns_before_applying_an_empty_migration() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    env.ok(&["create", "Add tags"]);
    let run = env.ok(&["upgrade", "--dry-run"]);
    assert!(
        run.stderr().contains(
            "warning[empty-migration]: migrations/V0005__add_tags.sql: has no SQL statements"
        ),
        "{}",
        run.stderr()
    );
    let run = env.ok(&["upgrade"]);
    let err = run.stderr();
    let warning = err.find("warning[empty-migration]").expect(&err);
    let backup = err.find("backup: ").expect(&err);
    assert!(
        warning < backup,
        "the warning comes before anything happens:\n{err}"
    );
}
