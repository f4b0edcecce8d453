//! Regressions found by running dbtool over real projects' SQLite migration histories (issue 9,
//! "Found on real-world histories"). Each test rebuilds the shape of the defect with generated
//! SQL (no project's code is copied) and drives the real binary on real files.

mod common;

use common::{exec, tables, TestEnv};

/// Three migrations: two tables (the second a child of the first) and an index.
fn three(env: &TestEnv) {
    env.migration(
        1,
        "accounts",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);\n",
        Some("DROP TABLE accounts;\n"),
    );
    env.migration(
        2,
        "sessions",
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE, token TEXT);\n",
        Some("DROP TABLE sessions;\n"),
    );
    env.migration(
        3,
        "accounts_email",
        "CREATE INDEX accounts_email ON accounts(email);\n",
        Some("DROP INDEX accounts_email;\n"),
    );
}

/// A down file left as a placeholder ran as a no-op: `downgrade base` "succeeded" and left the
/// tables behind, and nothing warned. Now `status`, `downgrade --dry-run`, `downgrade` itself
/// and `verify` say so.
#[test]
fn empty_downs_are_warned_about_everywhere() {
    let env = TestEnv::new();
    three(&env);
    env.migration(
        2,
        "sessions",
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE, token TEXT);\n",
        Some("-- write the down migration here\n\n;\n"),
    );
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);

    let status = env.ok(&["status"]);
    assert!(
        status.stderr().contains("warning[empty-down]: migrations/V0002__sessions.down.sql: the down of V2__sessions is empty: downgrading past it runs nothing and reports success"),
        "{}",
        status.stderr()
    );
    assert!(
        status.stderr().contains("-- dbtool:irreversible"),
        "{}",
        status.stderr()
    );
    let json = env.ok(&["status", "--json"]).json();
    let codes: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["empty-down"]);

    // Not when the plan does not run it.
    let dry = env.ok(&["downgrade", "-1", "--dry-run", "--json"]).json();
    assert_eq!(dry["warnings"], serde_json::json!([]), "{dry}");
    let dry = env.ok(&["downgrade", "base", "--dry-run", "--json"]).json();
    assert_eq!(dry["warnings"][0]["code"], "empty-down", "{dry}");
    let dry = env.ok(&["downgrade", "base", "--dry-run"]);
    assert!(
        dry.stderr().contains("warning[empty-down]"),
        "{}",
        dry.stderr()
    );

    // The real run says so too, in its report.
    let run = env.ok(&["downgrade", "base"]);
    assert!(
        run.stderr().contains("warning[empty-down]"),
        "{}",
        run.stderr()
    );
    assert_eq!(tables(&env.db()), ["sessions"], "what the empty down left");

    let verify = env.run(&["verify"]);
    assert_eq!(verify.code(), 3, "{}", verify.stdout());
    assert!(
        verify.stdout().contains("problem[empty-down]: V0002__sessions: its down V0002__sessions.down.sql is empty: `dbtool downgrade` would run nothing, report success and leave the up's changes: left behind table sessions"),
        "{}",
        verify.stdout()
    );
    // One clear finding, not a confusing "the up fails when run again" as well.
    let json = env.run(&["verify", "--json"]).json();
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["empty-down"], "{json}");
    assert_eq!(json["first_failure"], "V0002__sessions");
}

/// An empty down of a migration that changes no schema (a data fix) still round-trips; verify
/// notes it instead of failing.
#[test]
fn an_empty_down_of_a_data_only_migration_is_a_note() {
    let env = TestEnv::new();
    three(&env);
    env.migration(
        4,
        "backfill",
        "UPDATE accounts SET email = lower(email);\n",
        Some("-- nothing to undo\n"),
    );
    let verify = env.run(&["verify"]);
    assert_eq!(verify.code(), 0, "{}", verify.stdout());
    assert!(
        verify
            .stdout()
            .contains("V0004__backfill: its down is empty; the up changes no schema"),
        "{}",
        verify.stdout()
    );
}

/// The stairway restores its database from a checkpoint after a round trip that left it off
/// step, instead of replaying every earlier migration; the findings must not change: every bad
/// down is still named, and the migrations after it are still checked from the right schema.
#[test]
fn verify_keeps_checking_after_downs_that_fail_or_do_not_restore() {
    let env = TestEnv::new();
    three(&env);
    // V2's down fails (and rolls back), V3's leaves the index behind (the up then fails again).
    env.write(
        "migrations/V0002__sessions.down.sql",
        "DROP TABLE sessions;\nDROP TABLE no_such_table;\n",
    );
    env.write("migrations/V0003__accounts_email.down.sql", "SELECT 1;\n");
    env.migration(
        4,
        "tokens_index",
        "CREATE INDEX sessions_token ON sessions(token);\n",
        Some("DROP INDEX sessions_token;\n"),
    );
    env.migration(
        5,
        "renamed",
        "ALTER TABLE sessions RENAME TO logins;\n",
        Some("ALTER TABLE logins RENAME TO sessions_old;\n"),
    );
    env.migration(
        6,
        "audit",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, login_id INTEGER REFERENCES logins(id));\n",
        Some("DROP TABLE audit;\n"),
    );
    let json = env.run(&["verify", "--json"]).json();
    let found: Vec<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let message = f["message"].as_str().unwrap();
            (
                f["code"].as_str().unwrap().to_string(),
                message.split(':').next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("down-failed".to_string(), "V0002__sessions".to_string()),
            (
                "down-does-not-restore".to_string(),
                "V0003__accounts_email".to_string()
            ),
            (
                "down-does-not-restore".to_string(),
                "V0005__renamed".to_string()
            ),
        ],
        "{json}"
    );
    assert_eq!(json["round_trips"], 6);
    // 6 ups, 5 downs that ran (V2's failed and rolled back: nothing to restore), 3 ups again
    // (V3's and V5's fail), and no replay at all: each round trip runs inside a rewind point and
    // is undone afterwards (replaying from scratch after every failure would add 3 + 5, the
    // up-only checkpoint V1-V3 and V4-V5).
    assert_eq!(json["migration_runs"], 6 + 5 + 3, "{json}");
}

/// A down that rebuilds a table differently (columns in another order, a constraint lost) made
/// `verify --data` blame the migrations below it (`data-reapply-differs`) without naming it. Now the down is named
/// and the walk stops there.
#[test]
fn verify_data_names_the_down_that_broke_the_walk() {
    let env = TestEnv::new();
    three(&env);
    env.migration(
        4,
        "accounts_plan",
        "ALTER TABLE accounts ADD COLUMN plan TEXT;\n",
        // Rebuilds accounts without plan, but with email before name and name nullable (column
        // order alone is not a difference in the one schema model; the lost NOT NULL is).
        Some("CREATE TABLE accounts_old (id INTEGER PRIMARY KEY, email TEXT, name TEXT);\nINSERT INTO accounts_old (id, email, name) SELECT id, email, name FROM accounts;\nDROP TABLE accounts;\nALTER TABLE accounts_old RENAME TO accounts;\nCREATE INDEX accounts_email ON accounts(email);\n"),
    );
    env.migration(
        5,
        "notes",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
        Some("DROP TABLE notes;\n"),
    );
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    exec(
        &env.db(),
        "INSERT INTO accounts (id, name, email, plan) VALUES (1, 'a', 'a@x', 'free'), (2, 'b', 'b@x', NULL);
         INSERT INTO sessions (account_id, token) VALUES (1, 't1'), (2, 't2');
         INSERT INTO notes (body) VALUES ('n');
         -- drift elsewhere (found on real histories: a table rebuilt by hand) must not hide it
         CREATE INDEX by_hand ON sessions(token);",
    );
    let json = env
        .run(&["verify", "--data", "content.db", "--json"])
        .json();
    let data = &json["data"];
    let found: Vec<(&str, &str)> = data["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap(),
                f["message"].as_str().unwrap().split(':').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("data-down-differs", "V0004__accounts_plan")],
        "only the culprit, and none of the innocent migrations below it: {data}"
    );
    let message = data["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("another schema than V0003__accounts_email: changed table accounts"),
        "{message}"
    );
    assert!(
        data["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("stopped at V0004__accounts_plan")),
        "{data}"
    );
    // The stairway names it too.
    assert_eq!(json["first_failure"], "V0004__accounts_plan", "{json}");
}
