//! On PostgreSQL as on SQLite, dbtool and refinery share one history table: refinery's
//! `postgres` driver finds a dbtool-migrated database up to date (same versions, names and
//! checksums), and dbtool finds a refinery-migrated one up to date.

mod common;

use common::pg::{self, FreshDb};
use common::TestEnv;
use refinery::Migration;

const FILES: &[(&str, &str)] = &[
    (
        "V0001__users",
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE);\n",
    ),
    (
        "V0002__posts",
        "CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users(id));\nCREATE INDEX posts_user ON posts (user_id);\n",
    ),
    (
        "V0003__seed",
        "INSERT INTO users (email) VALUES ('a@example.com');\n",
    ),
];

fn project(env: &TestEnv) {
    for (name, sql) in FILES {
        env.write(&format!("migrations/{name}.sql"), sql);
    }
}

fn runner() -> refinery::Runner {
    let migrations: Vec<Migration> = FILES
        .iter()
        .map(|(name, sql)| Migration::unapplied(name, sql).expect("a refinery migration name"))
        .collect();
    refinery::Runner::new(&migrations)
}

/// (version, name, checksum) as refinery reads them from the server.
fn refinery_view(client: &mut postgres::Client) -> Vec<(i32, String, u64)> {
    runner()
        .get_applied_migrations(client)
        .unwrap()
        .iter()
        .map(|m| (m.version(), m.name().to_string(), m.checksum()))
        .collect()
}

#[test]
fn refinery_finds_nothing_to_apply_on_a_postgres_database_dbtool_migrated() {
    let Some(server) = pg::server("refinery_after_dbtool") else {
        return;
    };
    let db = FreshDb::create(&server, "ref_after");
    let env = TestEnv::new();
    project(&env);
    env.ok(&["--database", db.url(), "upgrade"]);

    let mut client = db.client();
    let report = runner()
        .run(&mut client)
        .expect("refinery accepts dbtool's history");
    assert!(
        report.applied_migrations().is_empty(),
        "refinery wanted to apply {:?}",
        report.applied_migrations()
    );
    let expected: Vec<(i32, String, u64)> = runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_string(), m.checksum()))
        .collect();
    assert_eq!(refinery_view(&mut client), expected);
    assert_eq!(db.int("SELECT count(*) FROM users"), 1, "V3 ran once");
}

#[test]
fn dbtool_finds_a_postgres_database_refinery_migrated_up_to_date() {
    let Some(server) = pg::server("dbtool_after_refinery") else {
        return;
    };
    let db = FreshDb::create(&server, "dbt_after");
    let env = TestEnv::new();
    project(&env);
    let mut client = db.client();
    let report = runner().run(&mut client).expect("refinery migrates");
    assert_eq!(report.applied_migrations().len(), 3);

    let status = env.ok(&["--database", db.url(), "--json", "status"]);
    let json = status.json();
    assert_eq!(json["current_version"], 3, "{json}");
    assert_eq!(json["pending"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(
        json["problems"].as_array().unwrap().len(),
        0,
        "no edited-migration: the checksums agree: {json}"
    );
    let upgrade = env.ok(&["--database", db.url(), "--json", "upgrade"]);
    assert_eq!(upgrade.json()["steps"].as_array().unwrap().len(), 0);
    assert_eq!(db.int("SELECT count(*) FROM users"), 1);
}
