//! `check`, `verify`, `rehearse`, `inspect` and `exec` on a real PostgreSQL server, through the
//! binary. The server's URL comes from `DBTOOL_TEST_POSTGRES_URL` (`.ci/run` sets it); without it
//! every test prints a SKIPPED line and passes without asserting anything.
//!
//! Each test works in a database of its own (`ck_<test>_<pid>`), dropped afterwards, and checks
//! that dbtool's scratch databases (`<db>_dbtool_…`) are gone after every command, including
//! after a failing migration.
#![cfg(feature = "postgres")]

mod common;

use common::pg::{self, FreshDb};
use common::{Run, TestEnv};

/// The test's own database (see `common::pg`), and what dbtool leaves beside it.
struct PgDb {
    fresh: FreshDb,
    url: String,
}

impl PgDb {
    /// `None` (with a visible SKIPPED line) when no server is configured.
    fn new(test: &str) -> Option<PgDb> {
        let server = pg::server(test)?;
        let fresh = FreshDb::create(&server, test);
        Some(PgDb {
            url: fresh.url().to_string(),
            fresh,
        })
    }

    fn batch(&self, sql: &str) {
        self.fresh.client().batch_execute(sql).expect(sql);
    }

    fn int(&self, sql: &str) -> i64 {
        self.fresh.int(sql)
    }

    fn name(&self) -> &str {
        self.fresh.name()
    }

    /// dbtool's scratch databases for this test's database still on the server.
    fn scratch_left(&self) -> Vec<String> {
        self.fresh.strings(&format!(
            "SELECT datname::text FROM pg_database WHERE starts_with(datname, '{}_dbtool_') ORDER BY 1",
            self.fresh.name()
        ))
    }
}

/// `dbtool --database URL ARGS`, insisting the URL's password appears in no output.
fn at(env: &TestEnv, db: &PgDb, args: &[&str]) -> Run {
    let mut all = vec!["--database", db.url.as_str()];
    all.extend_from_slice(args);
    let run = env.run(&all);
    assert!(
        !run.stdout().contains(pg::PASSWORD_MARK) && !run.stderr().contains(pg::PASSWORD_MARK),
        "the password leaked: {}{}",
        run.stdout(),
        run.stderr()
    );
    run
}

/// Two migrations with an enum, an identity column, a view, a function and its trigger.
fn two_migrations(env: &TestEnv) {
    env.migration(
        1,
        "users",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');\n\
         CREATE TABLE users (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  email text NOT NULL UNIQUE,\n  m mood DEFAULT 'ok'\n);\n\
         CREATE INDEX users_email_lower ON users (lower(email));\n",
        Some("DROP TABLE users;\nDROP TYPE mood;\n"),
    );
    env.migration(
        2,
        "posts",
        "CREATE TABLE posts (id serial PRIMARY KEY, user_id bigint REFERENCES users(id), body text CHECK (body <> ''));\n\
         CREATE VIEW post_emails AS SELECT p.id, u.email FROM posts p JOIN users u ON u.id = p.user_id;\n\
         CREATE FUNCTION trim_body() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.body := trim(NEW.body); RETURN NEW; END';\n\
         CREATE TRIGGER posts_trim BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trim_body();\n",
        Some("DROP VIEW post_emails;\nDROP TABLE posts;\nDROP FUNCTION trim_body();\n"),
    );
}

fn codes(json: &serde_json::Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn check_finds_drift_after_a_manual_alter_and_is_clean_after_upgrade() {
    let Some(db) = PgDb::new("drift") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    let at = |args: &[&str]| at(&env, &db, args);

    // Pending migrations are a finding (exit 3), then a clean check after the upgrade.
    assert!(at(&["upgrade", "1"]).output.status.success());
    let pending = at(&["--json", "check"]);
    assert_eq!(pending.code(), 3, "{}", pending.stderr());
    assert_eq!(codes(&pending.json()), ["pending-migrations"]);
    assert!(at(&["upgrade"]).output.status.success());
    let clean = at(&["--json", "check"]);
    assert_eq!(clean.code(), 0, "{}{}", clean.stdout(), clean.stderr());
    assert_eq!(clean.json()["drift_checked"], true);
    assert_eq!(clean.json()["current_version"], 2);

    // A column and an index added by hand, a trigger dropped by hand.
    db.batch(
        "ALTER TABLE users ADD COLUMN age int; CREATE INDEX posts_body ON posts (body); DROP TRIGGER posts_trim ON posts",
    );
    let drift = at(&["--json", "check"]);
    assert_eq!(drift.code(), 3, "{}", drift.stderr());
    let json = drift.json();
    assert_eq!(
        codes(&json),
        ["schema-drift", "schema-drift", "schema-drift"]
    );
    let objects: Vec<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = &f["diff"]["changes"][0];
            (
                format!(
                    "{} {}",
                    c["kind"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                ),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        [
            ("table public.users".to_string(), "changed".to_string()),
            (
                "index public.posts_body".to_string(),
                "unexpected".to_string()
            ),
            ("trigger posts_trim".to_string(), "missing".to_string()),
        ]
    );
    let changed = json["findings"][0]["diff"]["changes"][0]["actual"]
        .as_str()
        .unwrap();
    assert!(changed.contains("    age integer,"), "{changed}");
    // The human output names the object and the line that differs.
    let human = at(&["check"]);
    assert_eq!(human.code(), 3);
    assert!(
        human.stdout().contains("+    age integer,"),
        "{}",
        human.stdout()
    );
    assert_eq!(db.scratch_left(), Vec::<String>::new());
    // Nothing was written to the database: the manual changes are all still there.
    assert_eq!(
        db.int("SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'age'"),
        1
    );
}

#[test]
fn check_reports_an_edited_migration_and_a_replay_that_fails_then_drops_its_scratch_database() {
    let Some(db) = PgDb::new("edited") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    assert!(at(&env, &db, &["upgrade"]).output.status.success());
    // The applied V2 edited so that it no longer runs on an empty database.
    env.migration(
        2,
        "posts",
        "CREATE TABLE posts (id serial PRIMARY KEY, user_id bigint REFERENCES nowhere(id));\n",
        None,
    );
    let run = at(&env, &db, &["--json", "check"]);
    assert_eq!(run.code(), 3, "{}", run.stderr());
    let codes = codes(&run.json());
    assert!(codes.contains(&"edited-migration".to_string()), "{codes:?}");
    assert!(codes.contains(&"migrations-fail".to_string()), "{codes:?}");
    assert_eq!(db.scratch_left(), Vec::<String>::new());
}

#[test]
fn verify_passes_a_correct_set_and_catches_a_wrong_down() {
    let Some(db) = PgDb::new("verify") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    // An explicit --database is also checked (at head, no drift): upgrade it first.
    assert!(at(&env, &db, &["upgrade"]).output.status.success());
    let ok = at(&env, &db, &["--json", "verify"]);
    assert_eq!(ok.code(), 0, "{}{}", ok.stdout(), ok.stderr());
    assert_eq!(ok.json()["round_trips"], 2);
    assert_eq!(ok.json()["database"]["drift_checked"], true);

    // V1's down forgets the enum type: the schema below V1 is not restored.
    env.write("migrations/V0001__users.down.sql", "DROP TABLE users;\n");
    let bad = at(&env, &db, &["--json", "verify"]);
    assert_eq!(bad.code(), 3, "{}{}", bad.stdout(), bad.stderr());
    let json = bad.json();
    assert_eq!(json["first_failure"], "V0001__users");
    let finding = &json["findings"][0];
    assert_eq!(finding["code"], "down-does-not-restore");
    assert_eq!(finding["diff"]["changes"][0]["kind"], "type");
    assert_eq!(finding["diff"]["changes"][0]["name"], "public.mood");
    // V2 was still walked from the right schema (V1's up failed again on the leftover type,
    // so the scratch database was replayed afresh): no finding for it.
    assert_eq!(json["findings"].as_array().unwrap().len(), 1, "{json:#}");
    // A no-transaction migration (CREATE INDEX CONCURRENTLY) whose down forgets the index:
    // no rewind point around it, so the stairway replays afresh and still walks V4 from the
    // right schema.
    env.write(
        "migrations/V0001__users.down.sql",
        "DROP TABLE users;\nDROP TYPE mood;\n",
    );
    env.migration(
        3,
        "concurrent_index",
        "-- dbtool:no-transaction\nCREATE INDEX CONCURRENTLY posts_body ON posts (body);\n",
        Some("SELECT 1;\n"),
    );
    env.migration(
        4,
        "age",
        "ALTER TABLE users ADD COLUMN age int;\n",
        Some("ALTER TABLE users DROP COLUMN age;\n"),
    );
    let concurrent = at(&env, &db, &["--json", "verify"]);
    assert_eq!(concurrent.code(), 3);
    let json = concurrent.json();
    assert_eq!(json["first_failure"], "V0003__concurrent_index");
    assert_eq!(json["round_trips"], 4);
    let codes_now = codes(&json);
    assert_eq!(codes_now, ["down-does-not-restore"], "{json:#}");
    assert_eq!(
        json["findings"][0]["diff"]["changes"][0]["name"],
        "public.posts_body"
    );
    // A failing up: the stairway stops there; every scratch database is gone.
    env.migration(
        5,
        "broken",
        "ALTER TABLE nowhere ADD COLUMN x int;\n",
        Some("SELECT 1;\n"),
    );
    let broken = at(&env, &db, &["--json", "verify"]);
    assert_eq!(broken.code(), 3);
    assert!(codes(&broken.json()).contains(&"up-failed".to_string()));
    assert_eq!(db.scratch_left(), Vec::<String>::new());
}

#[test]
fn rehearse_runs_on_a_copy_and_leaves_the_original_unchanged() {
    let Some(db) = PgDb::new("rehearse") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    assert!(at(&env, &db, &["upgrade", "1"]).output.status.success());
    db.batch("INSERT INTO users (email) VALUES ('a@x'), ('b@x'), ('c@x')");
    env.migration(
        3,
        "backfill",
        "INSERT INTO posts (user_id, body) SELECT id, '  hello ' FROM users;\nALTER TABLE users ADD COLUMN age int;\n",
        Some("ALTER TABLE users DROP COLUMN age;\nDELETE FROM posts;\n"),
    );
    let run = at(&env, &db, &["--json", "rehearse"]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    let json = run.json();
    assert_eq!(json["passed"], true);
    assert_eq!(
        (json["from_version"].as_i64(), json["to_version"].as_i64()),
        (Some(1), Some(3))
    );
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["rows_changed"], 3);
    let posts = steps[1]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "posts")
        .unwrap();
    assert_eq!(
        (posts["before"].as_i64(), posts["after"].as_i64()),
        (Some(0), Some(3))
    );
    // The original: still at version 1, no posts table, its rows as they were.
    assert_eq!(
        db.int("SELECT max(version)::int8 FROM refinery_schema_history"),
        1
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_class WHERE relname = 'posts'"),
        0
    );
    assert_eq!(db.int("SELECT count(*) FROM users"), 3);
    assert_eq!(db.scratch_left(), Vec::<String>::new());

    // A migration that fails on the data (a CHECK the copied rows break): exit 3, the original
    // unchanged, the copy gone.
    env.migration(
        4,
        "strict",
        "ALTER TABLE users ADD CONSTRAINT short_email CHECK (length(email) > 5);\n",
        Some("ALTER TABLE users DROP CONSTRAINT short_email;\n"),
    );
    let failed = at(&env, &db, &["--json", "rehearse"]);
    assert_eq!(failed.code(), 3, "{}{}", failed.stdout(), failed.stderr());
    let json = failed.json();
    assert_eq!(json["passed"], false);
    assert_eq!(json["steps"][2]["status"], "failed");
    assert_eq!(json["steps"][2]["problems"][0]["code"], "migration-failed");
    assert_eq!(
        db.int("SELECT max(version)::int8 FROM refinery_schema_history"),
        1
    );
    assert_eq!(db.scratch_left(), Vec::<String>::new());

    // `upgrade --rehearse` refuses to upgrade after the failed rehearsal.
    let upgrade = at(&env, &db, &["upgrade", "--rehearse"]);
    assert_ne!(upgrade.code(), 0);
    assert_eq!(
        db.int("SELECT max(version)::int8 FROM refinery_schema_history"),
        1
    );
    assert_eq!(db.scratch_left(), Vec::<String>::new());
}

#[test]
fn inspect_shows_the_server_tables_by_size_and_the_history() {
    let Some(db) = PgDb::new("inspect") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    assert!(at(&env, &db, &["upgrade", "1"]).output.status.success());
    db.batch("INSERT INTO users (email) SELECT 'u' || g || '@x' FROM generate_series(1, 500) g");
    let run = at(&env, &db, &["--json", "inspect"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let json = run.json();
    assert!(json["postgres"]["server_version_num"].as_i64().unwrap() >= 130000);
    assert_eq!(json["postgres"]["database_name"], db.name());
    assert!(json["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(json["current_version"], 1);
    assert_eq!(json["head_version"], 2);
    assert_eq!(json["pending"], serde_json::json!([2]));
    // No SQLite fields on PostgreSQL; the password-free URL as the database.
    assert!(json.get("journal_mode").is_none() && json.get("page_size").is_none());
    assert!(json["database"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{}", db.name())));
    let tables = json["tables"].as_array().unwrap();
    assert_eq!(
        tables.len(),
        1,
        "the history table is not the user's: {tables:?}"
    );
    assert_eq!(tables[0]["name"], "users");
    assert_eq!(tables[0]["rows"], 500);
    assert!(tables[0]["size_bytes"].as_u64().unwrap() > 0);
    let indexes: Vec<(&str, &str)> = tables[0]["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["origin"].as_str().unwrap()))
        .collect();
    assert_eq!(
        indexes,
        [
            ("users_email_key", "u"),
            ("users_email_lower", "c"),
            ("users_pkey", "pk")
        ]
    );
    let human = at(&env, &db, &["inspect"]);
    assert!(
        human.stdout().contains("postgres      "),
        "{}",
        human.stdout()
    );
}

#[test]
fn exec_commits_in_one_transaction_and_a_failing_script_changes_nothing() {
    let Some(db) = PgDb::new("exec") else {
        return;
    };
    let env = TestEnv::new();
    two_migrations(&env);
    assert!(at(&env, &db, &["upgrade"]).output.status.success());
    db.batch("INSERT INTO users (email) VALUES ('a@x'), ('b@x')");
    env.write(
        "fix.sql",
        "UPDATE users SET m = 'sad';\nDELETE FROM users WHERE email = 'b@x';\n",
    );
    let dry = at(&env, &db, &["--json", "exec", "fix.sql", "--dry-run"]);
    assert_eq!(dry.code(), 0, "{}", dry.stderr());
    assert_eq!(dry.json()["rows_changed"], 3);
    assert_eq!(db.int("SELECT count(*) FROM users WHERE m = 'sad'"), 0);
    let run = at(&env, &db, &["--json", "exec", "fix.sql", "--no-backup"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let json = run.json();
    assert_eq!(json["committed"], true);
    assert_eq!(json["current_version"], 2);
    let lines: Vec<i64> = json["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2]);
    assert_eq!(db.int("SELECT count(*) FROM users WHERE m = 'sad'"), 1);

    // The second statement breaks a foreign key: the first one's change is rolled back too.
    env.write(
        "bad.sql",
        "UPDATE users SET m = 'ok';\nINSERT INTO posts (user_id, body) VALUES (999, 'x');\n",
    );
    let bad = at(&env, &db, &["exec", "bad.sql", "--no-backup"]);
    assert_eq!(bad.code(), 1, "{}", bad.stderr());
    assert!(
        bad.error_line().starts_with("error[script-failed]:")
            && bad.error_line().contains("line 2"),
        "{}",
        bad.stderr()
    );
    assert!(
        bad.stderr().contains("posts_user_id_fkey"),
        "{}",
        bad.stderr()
    );
    assert_eq!(db.int("SELECT count(*) FROM users WHERE m = 'sad'"), 1);
}

/// Every kind of object the schema reader knows: the same migrations replayed compare equal (a
/// clean check, a passing stairway), and a change by hand to each is found.
#[test]
fn every_kind_of_object_compares_equal_after_a_replay_and_a_change_to_each_is_found() {
    let Some(db) = PgDb::new("kinds") else {
        return;
    };
    let env = TestEnv::new();
    env.migration(
        1,
        "everything",
        "CREATE SCHEMA app;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE app.status AS ENUM ('new', 'done');
CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE TYPE app.pair AS (a int, b text);
CREATE SEQUENCE app.ticket START 100 INCREMENT 5;
CREATE TABLE app.events (
  id bigint GENERATED BY DEFAULT AS IDENTITY,
  at date NOT NULL,
  status app.status NOT NULL DEFAULT 'new',
  who app.email,
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_at ON app.events (at);
CREATE TABLE tasks (
  id serial PRIMARY KEY,
  owner text NOT NULL DEFAULT current_user,
  title text COLLATE \"C\",
  price numeric(10,2),
  total numeric GENERATED ALWAYS AS (price * 2) STORED
);
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tasks ON tasks FOR SELECT USING (owner = current_user);
CREATE MATERIALIZED VIEW task_counts AS SELECT owner, count(*) AS n FROM tasks GROUP BY owner;
CREATE FUNCTION app.double(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
CREATE FUNCTION app.double(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
",
        Some(
            "DROP FUNCTION app.double(numeric);
DROP FUNCTION app.double(int);
DROP MATERIALIZED VIEW task_counts;
DROP TABLE tasks;
DROP TABLE app.events;
DROP SEQUENCE app.ticket;
DROP TYPE app.pair;
DROP DOMAIN app.email;
DROP TYPE app.status;
DROP EXTENSION pgcrypto;
DROP SCHEMA app;
",
        ),
    );
    assert!(at(&env, &db, &["upgrade"]).output.status.success());
    let clean = at(&env, &db, &["--json", "check"]);
    assert_eq!(clean.code(), 0, "{}{}", clean.stdout(), clean.stderr());
    let verify = at(&env, &db, &["--json", "verify"]);
    assert_eq!(verify.code(), 0, "{}{}", verify.stdout(), verify.stderr());

    db.batch(
        "ALTER TYPE app.status ADD VALUE 'late';
         ALTER SEQUENCE app.ticket INCREMENT 1;
         CREATE OR REPLACE FUNCTION app.double(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 3';
         DROP POLICY own_tasks ON tasks;
         ALTER DOMAIN app.email SET NOT NULL;
         CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    );
    let drift = at(&env, &db, &["--json", "check"]);
    assert_eq!(drift.code(), 3, "{}", drift.stderr());
    let mut found: Vec<String> = drift.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = &f["diff"]["changes"][0];
            format!(
                "{} {} {}",
                c["change"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "changed function app.double(x integer)",
            "changed sequence app.ticket",
            "changed type app.email",
            "changed type app.status",
            "missing policy own_tasks",
            "unexpected table app.events_2025",
        ]
    );
    assert_eq!(db.scratch_left(), Vec::<String>::new());
}
