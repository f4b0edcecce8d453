//! `upgrade --sql` (Alembic's offline mode): the script, applied with the sqlite3 shell, gives
//! exactly the state `dbtool upgrade` gives.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `sqlite3 DB < script`; returns (exit status, stderr).
fn sqlite3(db: &Path, script: &[u8]) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the sqlite3 shell is installed");
    child.stdin.take().unwrap().write_all(script).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn history_rows(db: &Path) -> Vec<String> {
    rows(
        &open(db),
        "SELECT version || ' ' || name || ' ' || checksum FROM refinery_schema_history ORDER BY version",
    )
}

/// The schema, without sqlite_stat4: the bundled SQLite has STAT4, the sqlite3 shell of the
/// distribution may not (both write sqlite_stat1).
fn schema(db: &Path) -> Vec<String> {
    rows(
        &open(db),
        "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema WHERE name <> 'sqlite_stat4' ORDER BY type, name",
    )
}

#[test]
fn the_script_gives_the_state_upgrade_gives() {
    let env = TestEnv::new();
    env.example_set();
    env.empty_db();
    env.ok(&["upgrade", "3"]);
    exec(
        &env.db(),
        "INSERT INTO users(id, linkedin_sub, email, name) VALUES (1, 'li-1', 'a@example.com', 'Ann')",
    );
    let copy = env.root().join("copy.db");
    std::fs::copy(env.db(), &copy).unwrap();

    let run = env.ok(&["--database", "copy.db", "upgrade", "--sql"]);
    let script = run.output.stdout.clone();
    let text = String::from_utf8_lossy(&script).into_owned();
    assert!(
        text.contains(".bail on\nPRAGMA foreign_keys=OFF;\nBEGIN IMMEDIATE;"),
        "{text}"
    );
    assert!(
        text.contains("INSERT INTO refinery_schema_history"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("COMMIT;"), "{text}");
    assert_eq!(versions(&copy), vec![1, 2, 3], "--sql changed nothing");

    env.ok(&["upgrade"]);
    let (code, err) = sqlite3(&copy, &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(history_rows(&copy), history_rows(&env.db()));
    assert_eq!(schema(&copy), schema(&env.db()));
    env.ok(&["--database", "copy.db", "status", "--exit-code"]);
    env.ok(&["--database", "copy.db", "check"]);

    // applied a second time it refuses at the version guard and changes nothing
    let before = bytes(&copy);
    let (code, err) = sqlite3(&copy, &script);
    assert_ne!(code, 0);
    assert!(err.contains("CHECK constraint failed"), "{err}");
    assert_unchanged(&copy, &before);
}

#[test]
fn a_failing_statement_or_a_new_foreign_key_violation_rolls_everything_back() {
    let env = TestEnv::new();
    env.library_set();
    env.migration(
        5,
        "orphan",
        "INSERT INTO books VALUES (9, 99, 'No author', NULL);\n",
        None,
    );
    env.empty_db();
    env.ok(&["upgrade", "2"]);
    let script = env.ok(&["upgrade", "--sql"]).output.stdout.clone();
    let before = bytes(&env.db());
    let (code, err) = sqlite3(&env.db(), &script);
    assert_ne!(code, 0);
    assert!(err.contains("new_foreign_key_violations"), "{err}");
    assert_unchanged(&env.db(), &before);
    assert_eq!(versions(&env.db()), vec![1, 2]);

    std::fs::remove_file(env.migrations().join("V0005__orphan.sql")).unwrap();
    env.migration(
        5,
        "typo",
        "CREATE TABLE t(x);\nINSERT INTO nope VALUES (1);\n",
        None,
    );
    let script = env.ok(&["upgrade", "--sql"]).output.stdout.clone();
    let (code, err) = sqlite3(&env.db(), &script);
    assert_ne!(code, 0);
    assert!(err.contains("no such table: nope"), "{err}");
    assert_unchanged(&env.db(), &before);
}
