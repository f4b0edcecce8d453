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

/// The migrations of issue 8's defect 1: a no-transaction step that ends with foreign keys ON,
/// then a hand-written rebuild of the parent (`DROP TABLE p` with `ON DELETE CASCADE` children).
fn cascade_after_no_transaction_project(env: &TestEnv) {
    env.migration(
        1,
        "tables",
        "CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE c(id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id) ON DELETE CASCADE);\n",
        Some("DROP TABLE c;\nDROP TABLE p;\n"),
    );
    env.migration(
        2,
        "tune",
        "-- dbtool:no-transaction\nPRAGMA foreign_keys=OFF;\nCREATE INDEX IF NOT EXISTS c_p_id ON c(p_id);\nPRAGMA foreign_keys=ON;\n",
        Some("-- dbtool:no-transaction\nPRAGMA foreign_keys=OFF;\nDROP INDEX IF EXISTS c_p_id;\nPRAGMA foreign_keys=ON;\n"),
    );
    env.migration(
        3,
        "rebuild_p",
        "CREATE TABLE p_new(id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');\n\
         INSERT INTO p_new SELECT id, coalesce(name, '') FROM p;\n\
         DROP TABLE p;\nALTER TABLE p_new RENAME TO p;\n",
        Some(
            "CREATE TABLE p_old(id INTEGER PRIMARY KEY, name TEXT);\n\
             INSERT INTO p_old SELECT id, name FROM p;\n\
             DROP TABLE p;\nALTER TABLE p_old RENAME TO p;\n",
        ),
    );
}

#[test]
fn regression_cascade_after_a_no_transaction_step_keeps_the_children() {
    let env = TestEnv::new();
    cascade_after_no_transaction_project(&env);
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "1"]);
    common::exec(
        &env.db(),
        "INSERT INTO p VALUES (1,'a'),(2,'b'); INSERT INTO c VALUES (10,1),(11,2);",
    );
    // The rehearsal runs the executor upgrade runs: it sees the same rows kept.
    let rehearsal = env.ok(&["--json", "rehearse"]).json();
    assert_eq!(rehearsal["passed"], true, "{rehearsal}");
    let steps = rehearsal["steps"].as_array().unwrap();
    let last_rows = steps.last().unwrap()["rows"].as_array().unwrap();
    let c = last_rows.iter().find(|r| r["table"] == "c").unwrap();
    assert_eq!(
        (c["before"].as_u64(), c["after"].as_u64()),
        (Some(2), Some(2))
    );

    env.ok(&["upgrade", "--rehearse"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM c"), 2);

    // And back down across the no-transaction step: the down of V3 drops p again.
    env.ok(&["downgrade", "1"]);
    assert_eq!(versions(&env.db()), vec![1]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM c"), 2);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM p"), 2);
    env.ok(&["upgrade"]);
    env.ok(&["downgrade", "-1"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM c"), 2);
    common::assert_integrity(&env.db());
}

#[test]
fn verify_runs_the_upgrade_executor_across_a_no_transaction_step() {
    // The stairway and the data walk see what upgrade does: no step loses the children.
    let env = TestEnv::new();
    cascade_after_no_transaction_project(&env);
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "3"]);
    common::exec(
        &env.db(),
        "INSERT INTO p VALUES (1,'a'),(2,'b'); INSERT INTO c VALUES (10,1),(11,2);",
    );
    let data = env.db();
    let out = env.run(&["--json", "verify", "--data", data.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}{}", out.stdout(), out.stderr());
}

#[test]
fn a_no_transaction_file_failing_inside_its_own_transaction_says_it_was_rolled_back() {
    // Found on pocket-id's migrations run as no-transaction files: their own BEGIN … COMMIT
    // failed and rolled back, yet the error said the migration "may be partly applied".
    let env = TestEnv::new();
    env.migration(1, "t", "CREATE TABLE t(id INTEGER PRIMARY KEY);\n", None);
    env.migration(
        2,
        "own_transaction",
        "-- dbtool:no-transaction\nBEGIN;\nCREATE TABLE half(x);\nINSERT INTO missing VALUES (1);\nCOMMIT;\n",
        None,
    );
    env.empty_db();
    let run = env.run(&["upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains(
            "V1__t and the steps before it are committed, and its own transaction (BEGIN in the file) was rolled back: nothing of it is applied"
        ),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains(
            "hint: nothing of this migration was applied: fix the file and run the command again"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(versions(&env.db()), vec![1]);
    assert!(!common::tables(&env.db()).contains(&"half".to_string()));
}
