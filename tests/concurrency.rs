//! Other processes: two upgrades at once, a lock held past the busy timeout, and a `dbtool
//! upgrade` killed with SIGKILL in the middle of a plan. Synchronisation is by observable state
//! (a held SQLite lock, a process's open files, a journal that appears), never by sleeping.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bytes, history, int, versions, TestEnv};
use rusqlite::Connection;

/// Poll `done` until it holds, failing the test after a generous deadline (a hung test must
/// fail, not hang CI). Yields between polls; no fixed sleep decides anything.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Whether process `pid` has `path` open (Linux: /proc/PID/fd). Elsewhere: assume yes, and the
/// test degrades to "both started before the lock was released".
fn has_open(pid: u32, path: &Path) -> bool {
    let fds = Path::new("/proc").join(pid.to_string()).join("fd");
    if !Path::new("/proc/self/fd").exists() {
        return true;
    }
    std::fs::read_dir(fds).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|target| target == path))
    })
}

fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.std_command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool")
}

/// Ten migrations that each do real work and log their own version once per execution.
fn busy_set(env: &TestEnv, no_transaction_at: Option<u32>) {
    env.migration(
        1,
        "log",
        "CREATE TABLE runs(version INTEGER NOT NULL);\nINSERT INTO runs VALUES (1);\n",
        None,
    );
    for v in 2..=10 {
        let sql = if Some(v) == no_transaction_at {
            // Slow on purpose while holding no lock: the window in which another process used to
            // slip in and run this migration a second time.
            format!(
                "-- dbtool:no-transaction\n\
                 WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000000) SELECT count(*) FROM c;\n\
                 INSERT INTO runs VALUES ({v});\n"
            )
        } else {
            format!(
                "CREATE TABLE t{v}(id INTEGER PRIMARY KEY, payload BLOB);\n\
                 WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)\n\
                 INSERT INTO t{v}(payload) SELECT randomblob(32) FROM c;\n\
                 INSERT INTO runs VALUES ({v});\n"
            )
        };
        env.migration(v, &format!("step{v}"), &sql, None);
    }
}

/// Start two `dbtool upgrade`s while a third connection holds the write lock, let them both
/// reach the database, release, and return their (exit status, JSON report).
fn race_two_upgrades(env: &TestEnv) -> Vec<(i32, serde_json::Value)> {
    let db = env.db();
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let args = ["upgrade", "--json", "--busy-timeout", "120000"];
    let children = [spawn(env, &args), spawn(env, &args)];
    // Each is either waiting for SQLite's lock or for dbtool's run lock (held by the other).
    let run_lock = dbtool::db::run_lock_path(&db);
    for child in &children {
        wait_for("both upgrades to open the database", || {
            has_open(child.id(), &db) || has_open(child.id(), &run_lock)
        });
    }
    holder.execute_batch("ROLLBACK").unwrap();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let json =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
            (out.status.code().unwrap(), json)
        })
        .collect()
}

fn assert_each_applied_once(env: &TestEnv, results: &[(i32, serde_json::Value)]) {
    for (code, json) in results {
        assert_eq!(*code, 0, "both succeed: {json}");
    }
    let steps: Vec<usize> = results
        .iter()
        .map(|(_, json)| json["steps"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(
        steps.iter().sum::<usize>(),
        10,
        "steps per process: {steps:?}"
    );
    assert_eq!(versions(&env.db()), (1..=10).collect::<Vec<_>>());
    // Every migration's SQL ran exactly once.
    let db = env.db();
    let conn = common::open(&db);
    let mut stmt = conn
        .prepare("SELECT version, count(*) FROM runs GROUP BY version ORDER BY version")
        .unwrap();
    let runs: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(runs, (1..=10).map(|v| (v, 1)).collect::<Vec<_>>());
}

#[test]
fn two_upgrades_started_at_once_apply_each_migration_exactly_once() {
    let env = TestEnv::new();
    busy_set(&env, None);
    std::fs::write(env.db(), b"").unwrap(); // exists, empty: both open the same file
    let results = race_two_upgrades(&env);
    assert_each_applied_once(&env, &results);
    for v in 2..=10 {
        assert_eq!(int(&env.db(), &format!("SELECT count(*) FROM t{v}")), 20000);
    }
    // The loser found nothing pending (it planned under the lock, after the winner committed).
    assert!(results
        .iter()
        .any(|(_, json)| json["steps"].as_array().unwrap().is_empty()));
}

/// Bug: a `-- dbtool:no-transaction` migration runs outside any SQLite lock, so a second
/// `dbtool upgrade` waiting for the lock slipped in, ran the same migration again, and then
/// failed on the history row with `no-transaction-failed`.
#[test]
fn regression_a_no_transaction_migration_is_not_run_twice_by_concurrent_upgrades() {
    let env = TestEnv::new();
    busy_set(&env, Some(5));
    std::fs::write(env.db(), b"").unwrap();
    let results = race_two_upgrades(&env);
    assert_each_applied_once(&env, &results);
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_exit_4_and_changes_nothing() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    let before = bytes(&env.db());

    // A writer in the middle of a transaction (RESERVED lock): readers still work, writers wait.
    let holder = Connection::open(env.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    for args in [
        &["upgrade", "--busy-timeout", "200"][..],
        &["downgrade", "-1", "--busy-timeout", "200"],
        &["stamp", "head", "--busy-timeout", "200"],
    ] {
        let run = env.run(args);
        run.assert_error(
            4,
            "error[database-locked]: database $TMP/content.db is locked by another process (waited 200 ms)",
        );
        assert!(run
            .stderr()
            .contains("hint: another process holds a lock on it"));
    }
    assert_eq!(
        env.ok(&["current", "--busy-timeout", "200"]).stdout(),
        "2 create_books (2 pending, head is 4)\n"
    );
    holder.execute_batch("ROLLBACK").unwrap();

    // An exclusive lock: even reading waits, then gives up.
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for args in [
        &["upgrade", "--busy-timeout", "200"][..],
        &["current", "--busy-timeout", "200"],
        &["status", "--busy-timeout", "200"],
    ] {
        env.run(args).assert_error(
            4,
            "error[database-locked]: database $TMP/content.db is locked by another process (waited 200 ms)",
        );
    }
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    common::assert_unchanged(&env.db(), &before);
    assert_eq!(versions(&env.db()), vec![1, 2]);

    // Released: the same command now succeeds.
    env.ok(&["upgrade", "--busy-timeout", "200"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
}

/// Bug: after a writer was killed, its hot journal made every read-only command (`current`,
/// `status`, `history`, `init`, `--dry-run`) fail with "attempt to write a readonly database"
/// and a hint about file permissions, until some other program happened to open it for writing.
#[test]
fn regression_kill_9_mid_plan_leaves_the_old_version_and_read_only_commands_recover() {
    let env = TestEnv::new();
    env.migration(
        1,
        "small",
        "CREATE TABLE small(x);\nINSERT INTO small VALUES (1);\n",
        None,
    );
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    let size_before = std::fs::metadata(env.db()).unwrap().len();
    env.migration(2, "tiny", "CREATE TABLE tiny(x);\n", None);
    env.migration(
        3,
        "huge",
        "CREATE TABLE huge(id INTEGER PRIMARY KEY, payload BLOB);\n\
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000)\n\
         INSERT INTO huge(payload) SELECT randomblob(48) FROM c;\n",
        None,
    );

    let mut child = spawn(&env, &["upgrade"]);
    let journal = env.root().join("content.db-journal");
    // Started writing: the journal exists and pages have spilled into the database file.
    wait_for("the upgrade to write into the database", || {
        journal.exists()
            && std::fs::metadata(env.db()).is_ok_and(|m| m.len() > size_before + 1_000_000)
    });
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal, not finished");
    assert!(journal.exists(), "a hot journal is left behind");

    // The first command after the crash is a read-only one.
    assert_eq!(
        env.ok(&["current"]).stdout(),
        "1 small (2 pending, head is 3)\n"
    );
    assert!(
        !journal.exists() || std::fs::metadata(&journal).unwrap().len() == 0,
        "the hot journal was rolled back"
    );
    assert_eq!(history(&env.db()), vec![(1, "small".to_string())]);
    assert_eq!(common::tables(&env.db()), vec!["small"]);
    common::assert_integrity(&env.db());

    // And the database carries on: a lighter V3 applies.
    env.migration(3, "huge", "CREATE TABLE huge(x);\n", None);
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);
}

#[test]
fn a_run_lock_held_past_the_busy_timeout_is_exit_4_and_changes_nothing() {
    let env = TestEnv::new();
    env.migration(1, "a", "CREATE TABLE a(x);\n", None);
    env.migration(
        2,
        "wal",
        "-- dbtool:no-transaction\nPRAGMA journal_mode = WAL;\n",
        None,
    );
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "1"]);
    let before = bytes(&env.db());
    // Another dbtool run in progress (in a no-transaction step, holding no SQLite lock).
    let lock = std::fs::File::create(dbtool::db::run_lock_path(&env.db())).unwrap();
    lock.lock().unwrap();
    env.run(&["upgrade", "--busy-timeout", "200"]).assert_error(
        4,
        "error[database-locked]: database $TMP/content.db is locked by another process (waited 200 ms)",
    );
    common::assert_unchanged(&env.db(), &before);
    drop(lock);
    env.ok(&["upgrade", "--busy-timeout", "200"]);
    assert_eq!(versions(&env.db()), vec![1, 2]);
    assert_eq!(common::text(&env.db(), "PRAGMA journal_mode"), "wal");
}
