//! `-- dbtool:no-transaction` migrations (`PRAGMA journal_mode=WAL`, `VACUUM`, which SQLite
//! refuses inside a transaction) in the middle of a plan: the steps before them commit, they run
//! on their own, and the rest of the plan continues in a new transaction.

mod common;

use common::{int, text, versions, TestEnv};

#[test]
fn journal_mode_wal_in_the_middle_of_a_plan() {
    let env = TestEnv::new();
    env.migration(
        1,
        "authors",
        "CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT);\n",
        Some("DROP TABLE authors;\n"),
    );
    env.migration(
        2,
        "wal",
        "-- Readers no longer block the writer.\n-- dbtool:no-transaction\nPRAGMA journal_mode = WAL;\n",
        Some("-- dbtool:no-transaction\nPRAGMA journal_mode = DELETE;\n"),
    );
    env.migration(
        3,
        "seed",
        "INSERT INTO authors VALUES (1, 'Ann');\n",
        Some("DELETE FROM authors;\n"),
    );

    env.empty_db(); // `upgrade` never creates the database
    let run = env.ok(&["upgrade"]);
    let stdout = run.stdout();
    let wal_line = stdout.lines().find(|l| l.contains("V2__wal")).unwrap();
    assert!(wal_line.ends_with("(no transaction)"), "{stdout}");
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);
    assert_eq!(text(&env.db(), "PRAGMA journal_mode"), "wal");
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 1);

    env.ok(&["downgrade", "base"]);
    assert_eq!(versions(&env.db()), Vec::<i32>::new());
    assert_eq!(text(&env.db(), "PRAGMA journal_mode"), "delete");
    common::assert_integrity(&env.db());
}

#[test]
fn vacuum_in_the_middle_of_a_plan() {
    let env = TestEnv::new();
    env.migration(
        1,
        "scratch",
        "CREATE TABLE scratch(x BLOB);\n\
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)\n\
         INSERT INTO scratch SELECT randomblob(1000) FROM c;\n",
        None,
    );
    env.migration(2, "drop_scratch", "DROP TABLE scratch;\n", None);
    env.migration(3, "vacuum", "-- dbtool:no-transaction\nVACUUM;\n", None);
    env.migration(
        4,
        "after",
        "CREATE TABLE after(x);\nINSERT INTO after VALUES (4);\n",
        None,
    );

    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    assert!(
        int(&env.db(), "PRAGMA freelist_count") > 100,
        "dropped pages are free"
    );
    let size_before = std::fs::metadata(env.db()).unwrap().len();

    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    assert_eq!(int(&env.db(), "PRAGMA freelist_count"), 0, "VACUUM ran");
    assert!(std::fs::metadata(env.db()).unwrap().len() < size_before / 10);
    assert_eq!(int(&env.db(), "SELECT x FROM after"), 4);
    common::assert_integrity(&env.db());

    // In one plan from empty, too.
    let env2 = TestEnv::new();
    for entry in std::fs::read_dir(env.migrations()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        env2.write(
            &format!("migrations/{name}"),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    env2.ok(&["init"]);
    assert_eq!(versions(&env2.db()), vec![1, 2, 3, 4]);
    assert_eq!(int(&env2.db(), "PRAGMA freelist_count"), 0);
}

/// Bug: the error said "Vnothing and earlier are committed" when the failing no-transaction
/// migration was the first step of the run.
#[test]
fn regression_a_failing_no_transaction_migration_says_what_is_committed() {
    let env = TestEnv::new();
    env.migration(1, "a", "CREATE TABLE a(x);\n", None);
    env.migration(2, "b", "CREATE TABLE b(x);\n", None);
    env.migration(
        3,
        "wal_then_typo",
        "-- dbtool:no-transaction\nPRAGMA journal_mode = WAL;\nINSERT INTO nosuch VALUES (1);\n",
        None,
    );
    env.migration(4, "d", "CREATE TABLE d(x);\n", None);

    env.empty_db(); // `upgrade` never creates the database
    let run = env.run(&["upgrade"]);
    run.assert_error(
        1,
        "error[no-transaction-failed]: migration $TMP/migrations/V0003__wal_then_typo.sql runs without a transaction and failed; V2__b and the steps before it are committed, this migration may be partly applied",
    );
    assert!(
        run.stderr().contains("no such table: nosuch"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("hint: check the database by hand"));
    // What the message says is what is on disk: V1, V2 committed; V3 half done, unrecorded.
    assert_eq!(versions(&env.db()), vec![1, 2]);
    assert_eq!(text(&env.db(), "PRAGMA journal_mode"), "wal");
    assert_eq!(common::tables(&env.db()), vec!["a", "b"]);

    // First step of its run: nothing of this run was committed.
    env.write(
        "migrations/V0003__wal_then_typo.sql",
        "-- dbtool:no-transaction\nINSERT INTO nosuch VALUES (1);\n",
    );
    env.run(&["upgrade"]).assert_error(
        1,
        "error[no-transaction-failed]: migration $TMP/migrations/V0003__wal_then_typo.sql runs without a transaction and failed; no earlier step of this run was committed, this migration may be partly applied",
    );
    assert_eq!(versions(&env.db()), vec![1, 2]);
}
