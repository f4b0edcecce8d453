//! dbtool's migration commands against a real PostgreSQL server: the lifecycle, one transaction
//! per plan, the advisory lock (two upgrades at once, the lock timeout), no-transaction
//! `CREATE INDEX CONCURRENTLY`, failures that leave nothing, bad URLs and credentials, and the
//! password kept out of every output.
//!
//! The server's URL comes from `DBTOOL_TEST_POSTGRES_URL` (`.ci/run` starts one with
//! `scripts/pg-server.sh`); without it each test prints a SKIPPED line (and fails under CI).

mod common;

use common::pg::{self, FreshDb};
use common::TestEnv;

const V1: &str = "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.email := lower(NEW.email);  -- a ';' inside the body
  RETURN NEW;
END;
$$;
CREATE TRIGGER users_lower BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION lower_email();
";
const V1_DOWN: &str = "DROP TABLE users;\nDROP FUNCTION lower_email();\n";
const V2: &str = "CREATE TABLE posts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id) ON DELETE CASCADE, title text);
INSERT INTO users (email) VALUES ('A@x'), ('B@x');
INSERT INTO posts (user_id, title) VALUES (1, 'hello');
";
const V2_DOWN: &str = "DROP TABLE posts;\nDELETE FROM users;\n";

fn project(env: &TestEnv) {
    env.migration(1, "users", V1, Some(V1_DOWN));
    env.migration(2, "posts", V2, Some(V2_DOWN));
}

fn setup(test: &str) -> Option<(TestEnv, FreshDb)> {
    let server = pg::server(test)?;
    let db = FreshDb::create(&server, test);
    let env = TestEnv::new();
    project(&env);
    Some((env, db))
}

#[test]
fn lifecycle_on_postgres() {
    let Some((env, db)) = setup("lifecycle") else {
        return;
    };
    let url = db.url();
    env.ok(&["--database", url, "upgrade"]);
    assert_eq!(db.versions(), vec![1, 2]);
    // The trigger's body (with its ';') ran as one statement: emails are lower-cased.
    assert_eq!(
        db.strings("SELECT email FROM users ORDER BY id"),
        ["a@x", "b@x"]
    );

    let out = env.ok(&["--database", url, "current"]);
    assert!(
        out.stdout().contains("V2") || out.stdout().contains('2'),
        "{}",
        out.stdout()
    );
    env.ok(&["--database", url, "downgrade", "1"]);
    assert_eq!(db.versions(), vec![1]);
    assert_eq!(db.int("SELECT count(*) FROM users"), 0, "V2's down ran");
    assert!(!db.table_exists("posts"));
    env.ok(&["--database", url, "redo"]);
    assert_eq!(db.versions(), vec![1]);
    env.ok(&["--database", url, "upgrade"]);
    env.ok(&["--database", url, "stamp", "1"]);
    assert_eq!(db.versions(), vec![1]);
    assert!(db.table_exists("posts"), "stamp runs no SQL");
    env.ok(&["--database", url, "stamp", "head"]);
    let status = env.ok(&["--database", url, "--json", "status"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(json["current_version"], 2);
    assert_eq!(json["problems"].as_array().unwrap().len(), 0, "{json}");
    let history = env.ok(&["--database", url, "history"]);
    assert!(history.stdout().contains("posts"), "{}", history.stdout());

    // The password is in no output, human or JSON.
    for args in [
        &["current"][..],
        &["--json", "current"],
        &["status"],
        &["config"],
    ] {
        let mut full = vec!["--database", url];
        full.extend_from_slice(args);
        let run = env.run(&full);
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            !all.contains(pg::PASSWORD_MARK),
            "{args:?} printed the password: {all}"
        );
    }
}

#[test]
fn init_creates_the_database_and_applies_everything() {
    let Some(server) = pg::server("init") else {
        return;
    };
    let db = FreshDb::reserve(&server, "init"); // named, not created
    let env = TestEnv::new();
    project(&env);
    let missing = env.run(&["--database", db.url(), "upgrade"]);
    assert_eq!(missing.code(), 1, "{}", missing.stderr());
    assert!(
        missing.stderr().contains("error[database-missing]"),
        "{}",
        missing.stderr()
    );
    assert!(
        missing.stderr().contains("dbtool init"),
        "{}",
        missing.stderr()
    );
    env.ok(&["--database", db.url(), "init"]);
    assert_eq!(db.versions(), vec![1, 2]);
    let again = env.ok(&["--database", db.url(), "init"]);
    assert!(
        again.stdout().contains("already initialised"),
        "{}",
        again.stdout()
    );
}

#[test]
fn a_failing_migration_leaves_nothing_and_names_its_line() {
    let Some((env, db)) = setup("failing") else {
        return;
    };
    env.ok(&["--database", db.url(), "upgrade"]);
    env.migration(
        3,
        "broken",
        "CREATE TABLE tags (id int PRIMARY KEY);\nALTER TABLE users ADD COLUMN name text;\nINSERT INTO posts (user_id, title) VALUES (999, 'orphan');\n",
        Some("DROP TABLE tags;\n"),
    );
    env.migration(
        4,
        "later",
        "CREATE TABLE later (id int);\n",
        Some("DROP TABLE later;\n"),
    );
    let run = env.run(&["--database", db.url(), "upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[migration-failed]"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("line 3"), "{}", run.stderr());
    assert!(run.stderr().contains("SQLSTATE 23503"), "{}", run.stderr());
    assert!(
        run.stderr().contains("posts_user_id_fkey"),
        "the constraint is named: {}",
        run.stderr()
    );
    // Nothing of V3 (nor V4) is there: DDL is transactional.
    assert_eq!(db.versions(), vec![1, 2]);
    assert!(!db.table_exists("tags") && !db.table_exists("later"));
    assert_eq!(
        db.int("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'"),
        0
    );
}

#[test]
fn two_upgrades_at_once_apply_each_migration_exactly_once() {
    let Some((env, db)) = setup("concurrent") else {
        return;
    };
    env.migration(
        3,
        "counted",
        "CREATE TABLE IF NOT EXISTS runs (n int);\nINSERT INTO runs VALUES (1);\n",
        Some("DROP TABLE runs;\n"),
    );
    // Hold dbtool's lock, start both, see both waiting for it, then let them go: they overlap
    // for certain, with no sleep.
    let holder = db.lock_dbtool();
    let spawn = || {
        env.std_command()
            .args(["--database", db.url(), "upgrade"])
            .output()
    };
    std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        db.wait_for_lock_waiters(2);
        drop(holder);
        let (a, b) = (a.join().unwrap().unwrap(), b.join().unwrap().unwrap());
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    });
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(db.int("SELECT count(*) FROM runs"), 1, "V3 ran once");
}

#[test]
fn a_lock_wait_past_the_timeout_exits_4_with_nothing_changed() {
    let Some((env, db)) = setup("lock_timeout") else {
        return;
    };
    env.ok(&["--database", db.url(), "upgrade"]);
    env.migration(
        3,
        "alter",
        "ALTER TABLE users ADD COLUMN name text;\n",
        Some("ALTER TABLE users DROP COLUMN name;\n"),
    );
    // Another dbtool run holds the lock.
    {
        let _holder = db.lock_dbtool();
        let run = env.run(&["--database", db.url(), "--busy-timeout", "300", "upgrade"]);
        assert_eq!(run.code(), 4, "{}", run.stderr());
        assert!(
            run.stderr().contains("error[database-locked]"),
            "{}",
            run.stderr()
        );
    }
    // The application holds a lock on the table the migration alters.
    {
        let _app = db.lock_table_in_transaction("users");
        let run = env.run(&["--database", db.url(), "--busy-timeout", "300", "upgrade"]);
        assert_eq!(run.code(), 4, "{}", run.stderr());
        assert!(
            run.stderr().contains("error[database-locked]"),
            "{}",
            run.stderr()
        );
    }
    assert_eq!(db.versions(), vec![1, 2]);
    env.ok(&["--database", db.url(), "upgrade"]);
    assert_eq!(db.versions(), vec![1, 2, 3]);
}

#[test]
fn create_index_concurrently_runs_in_a_no_transaction_file_and_is_refused_in_a_transaction() {
    let Some((env, db)) = setup("concurrently") else {
        return;
    };
    env.migration(
        3,
        "index_in_tx",
        "CREATE INDEX CONCURRENTLY posts_title ON posts (title);\n",
        Some("DROP INDEX posts_title;\n"),
    );
    let run = env.run(&["--database", db.url(), "upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("SQLSTATE 25001"), "{}", run.stderr());
    assert!(
        run.stderr().contains("dbtool:no-transaction"),
        "the hint says what to do: {}",
        run.stderr()
    );
    assert!(db.versions().is_empty(), "V1 and V2 rolled back with it");

    std::fs::write(
        env.migrations().join("V0003__index_in_tx.sql"),
        "-- dbtool:no-transaction\nCREATE INDEX CONCURRENTLY posts_title ON posts (title);\n",
    )
    .unwrap();
    std::fs::write(
        env.migrations().join("V0003__index_in_tx.down.sql"),
        "-- dbtool:no-transaction\nDROP INDEX CONCURRENTLY posts_title;\n",
    )
    .unwrap();
    env.ok(&["--database", db.url(), "upgrade"]);
    assert_eq!(db.versions(), vec![1, 2, 3]);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'posts_title'"),
        1
    );
    env.ok(&["--database", db.url(), "downgrade", "2"]);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'posts_title'"),
        0
    );
}

#[test]
fn bad_urls_and_credentials_fail_clearly_and_change_nothing() {
    let Some((env, db)) = setup("bad_urls") else {
        return;
    };
    let unreachable = "postgres://someone:hunter2@127.0.0.1:1/nowhere";
    let run = env.run(&["--database", unreachable, "upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[cannot-connect]"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("hunter2"), "{}", run.stderr());

    let invalid = env.run(&[
        "--database",
        "postgres://u:hunter2@host:notaport/db",
        "current",
    ]);
    assert_eq!(invalid.code(), 2, "{}", invalid.stderr());
    assert!(
        invalid.stderr().contains("error[invalid-url]"),
        "{}",
        invalid.stderr()
    );
    assert!(
        !invalid.stderr().contains("hunter2"),
        "{}",
        invalid.stderr()
    );

    let json = env.run(&["--json", "--database", unreachable, "current"]);
    assert!(
        json.stdout().contains("\"cannot-connect\""),
        "{}",
        json.stdout()
    );
    assert!(!json.stdout().contains("hunter2"), "{}", json.stdout());

    match db.url_with_wrong_password() {
        Some(wrong) => {
            let run = env.run(&["--database", &wrong, "upgrade"]);
            assert_eq!(run.code(), 1, "{}", run.stderr());
            assert!(
                run.stderr().contains("error[authentication-failed]"),
                "{}",
                run.stderr()
            );
            assert!(!run.stderr().contains("wrong-password"), "{}", run.stderr());
        }
        None => eprintln!("SKIPPED part of bad_urls: the server does not check passwords (trust)"),
    }
    assert!(db.versions().is_empty(), "nothing was applied");
    assert!(!db.table_exists("users"));
}

#[test]
fn rebuild_is_refused_on_postgres_with_its_own_code() {
    let Some((env, db)) = setup("rebuild") else {
        return;
    };
    let run = env.run(&[
        "--database",
        db.url(),
        "rebuild",
        "users",
        "--drop",
        "email",
    ]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[not-on-postgres]"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("ALTER TABLE"), "{}", run.stderr());
}

#[test]
fn a_role_without_the_privilege_gets_permission_denied_and_nothing_changes() {
    let Some(server) = pg::server("permission") else {
        return;
    };
    let env = TestEnv::new();
    project(&env);
    // `init` may create the database only when the role may: this one lacks CREATEDB.
    let missing = FreshDb::reserve(&server, "perm_init");
    let Some(limited) = missing.limited_url() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "DBTOOL_TEST_POSTGRES_LIMITED_URL is not set under CI"
        );
        eprintln!("SKIPPED permission: DBTOOL_TEST_POSTGRES_LIMITED_URL is not set");
        return;
    };
    let run = env.run(&["--database", &limited, "init"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("error[permission-denied]"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("creating the database"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(pg::PASSWORD_MARK));

    // A database the limited role may not create tables in.
    let db = FreshDb::create(&server, "perm_schema");
    db.client()
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .unwrap();
    let limited = db.limited_url().unwrap();
    let run = env.run(&["--database", &limited, "upgrade", "--no-backup"]);
    let all = run.stderr();
    assert_eq!(run.code(), 1, "{all}");
    assert!(all.contains("error[permission-denied]"), "{all}");
    assert!(
        all.contains("schema public"),
        "the server's message names what: {all}"
    );
    assert!(db.versions().is_empty(), "nothing was applied");
}

#[test]
fn init_in_an_empty_folder_starts_a_project_on_the_server_without_writing_the_password() {
    let Some(server) = pg::server("init_project") else {
        return;
    };
    let db = FreshDb::reserve(&server, "init_project");
    let env = TestEnv::new(); // no migrations/, no dbtool.toml
    let run = env.ok(&["--database", db.url(), "init"]);
    assert!(
        run.stdout().contains("created dbtool.toml"),
        "{}",
        run.stdout()
    );
    let toml = std::fs::read_to_string(env.root().join("dbtool.toml")).unwrap();
    assert!(!toml.contains(pg::PASSWORD_MARK), "{toml}");
    assert!(toml.contains(&format!("/{}\"", db.name())), "{toml}");
    assert!(env.migrations().is_dir());
    assert!(
        !env.root().join(format!("{}.db", db.name())).exists(),
        "no SQLite file"
    );
    assert!(
        db.versions().is_empty(),
        "created, with the history table and no migration"
    );
    assert!(db.table_exists("refinery_schema_history"));
}

/// Found on River's migrations (riverqueue/river, V4 adds `pending` to an enum that a later
/// statement of the same plan uses): PostgreSQL refuses a new enum value before its transaction
/// commits. The error says how to split it; a no-transaction file makes the plan pass.
#[test]
fn an_enum_value_used_in_the_plan_that_adds_it_is_refused_with_the_way_out() {
    let Some((env, db)) = setup("enum_value") else {
        return;
    };
    env.migration(
        3,
        "state",
        "CREATE TYPE job_state AS ENUM ('available', 'running');\nCREATE TABLE jobs (id int PRIMARY KEY, state job_state NOT NULL);\n",
        Some("DROP TABLE jobs;\nDROP TYPE job_state;\n"),
    );
    env.migration(
        4,
        "pending",
        "ALTER TYPE job_state ADD VALUE IF NOT EXISTS 'pending';\n",
        Some("-- enum values cannot be dropped\n"),
    );
    env.migration(
        5,
        "use_pending",
        "ALTER TABLE jobs ALTER COLUMN state SET DEFAULT 'pending';\n",
        Some("ALTER TABLE jobs ALTER COLUMN state DROP DEFAULT;\n"),
    );
    let run = env.run(&["--database", db.url(), "upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("SQLSTATE 55P04"), "{}", run.stderr());
    assert!(
        run.stderr().contains("-- dbtool:no-transaction"),
        "{}",
        run.stderr()
    );
    assert!(db.versions().is_empty());

    std::fs::write(
        env.migrations().join("V0004__pending.sql"),
        "-- dbtool:no-transaction\nALTER TYPE job_state ADD VALUE IF NOT EXISTS 'pending';\n",
    )
    .unwrap();
    std::fs::write(
        env.migrations().join("V0004__pending.down.sql"),
        "-- dbtool:no-transaction\n-- enum values cannot be dropped\n",
    )
    .unwrap();
    env.ok(&["--database", db.url(), "upgrade"]);
    assert_eq!(db.versions(), vec![1, 2, 3, 4, 5]);
}
