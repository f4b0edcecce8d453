//! The test server itself (`scripts/pg-server.sh`, `DBTOOL_TEST_POSTGRES_URL`): reachable,
//! checking passwords, with a role that may not create databases; and dbtool's reading of
//! PostgreSQL SQL checked against it: every piece the splitter cuts from a file full of traps is
//! exactly one statement the server accepts, and the lint flags exactly what the server refuses
//! in a transaction (and `status` / `upgrade --dry-run` show it).
//!
//! Without the variable each test prints a SKIPPED line (and fails under CI).

mod common;

use common::pg::{self, FreshDb};
use common::TestEnv;
use dbtool::sql::{statements, Dialect};
use postgres::{Client, NoTls};

#[test]
fn the_server_answers_and_checks_passwords() {
    let Some(server) = pg::server("the_server_answers_and_checks_passwords") else {
        return;
    };
    let mut client = Client::connect(&server, NoTls).expect("connect to the test server");
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);

    let db = FreshDb::create(&server, "server_smoke");
    let name: String = db
        .client()
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(name, db.name());
    assert!(
        db.url_with_wrong_password().is_some(),
        "the server let a wrong password in (scripts/pg-server.sh sets scram-sha-256 for host connections)"
    );

    // The role without CREATEDB, for permission-denied tests (set by scripts/pg-server.sh env).
    if let Some(limited) = db.limited_url() {
        let mut client = Client::connect(&limited, NoTls).expect("connect as the limited role");
        let err = client
            .batch_execute("CREATE DATABASE dbtool_t_must_not_exist")
            .expect_err("the limited role created a database");
        assert_eq!(
            err.code(),
            Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
        );
    }
}

/// Every trap of the PostgreSQL splitter in one migration-like file.
const TRAPS: &str = r#"-- header: a comment; with 'quotes' and $$dollars$$
/* a block /* nested; */ still a comment; */
CREATE TABLE "odd;name" (
  id int PRIMARY KEY,
  note text DEFAULT E'it\'s; \\ fine',
  tags text[] DEFAULT ARRAY['a]b;'],
  a$b int
);
CREATE TYPE mood AS ENUM ('sad', 'ok;', 'happy');
CREATE FUNCTION add_one(x int) RETURNS int AS $$
BEGIN
  -- a comment; inside
  RETURN x + 1; /* ; */
END;
$$ LANGUAGE plpgsql;
CREATE FUNCTION tagged() RETURNS text LANGUAGE plpgsql AS $fn$
BEGIN RETURN $$in;ner$$ || $x$;$x$ || 'q''s;'; END
$fn$;
CREATE FUNCTION std_body(x int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x > 0 THEN x ELSE 0 END;
END;
CREATE OR REPLACE PROCEDURE ins(v int) LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO "odd;name" (id) VALUES (v);
  INSERT INTO "odd;name" (id) VALUES (v + 1000);
END;
create function ret_case(begin int, "end" int) returns int language sql
  return case when begin > 0 then "end" end;
DO $do$ BEGIN IF add_one(1) = 2 THEN RAISE NOTICE 'x;'; END IF; END $do$;
CALL ins(1);
PREPARE p(int) AS SELECT $1::int + 1;
EXECUTE p(41);
DEALLOCATE p;
CREATE RULE r AS ON UPDATE TO "odd;name" DO ALSO (NOTIFY a; NOTIFY b);
CREATE TABLE log (id int);
CREATE INDEX CONCURRENTLY log_id ON log (id);
SELECT 'back\' AS plain, U&'d\0061t\+000061;' AS unicode, B'1010' AS bits, X'1F' AS hex, 1||$$x;$$ AS dollar;
SELECT 1 -- trailing; comment
;
;;
VACUUM log;
/* the end; */
"#;

#[test]
fn each_split_statement_is_one_statement_the_server_accepts() {
    let Some(server) = pg::server("each_split_statement_is_one_statement_the_server_accepts")
    else {
        return;
    };
    let db = FreshDb::create(&server, "splitter");
    let mut client = db.client();
    let pieces = statements(TRAPS, Dialect::Postgres);
    for piece in &pieces {
        // The extended protocol takes exactly one statement: two would fail with "cannot insert
        // multiple commands into a prepared statement", a cut one with a syntax error.
        client.execute(piece.text, &[]).unwrap_or_else(|e| {
            panic!(
                "line {}: the server refused the piece {:?}: {e:?}",
                piece.line, piece.text
            )
        });
    }
    let lines: Vec<usize> = pieces.iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        [3, 9, 10, 16, 19, 23, 28, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 42]
    );

    let tagged: String = client.query_one("SELECT tagged()", &[]).unwrap().get(0);
    assert_eq!(tagged, "in;ner;q's;");
    let rows: Vec<(i32, String)> = client
        .query("SELECT id, note FROM \"odd;name\" ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "it's; \\ fine".to_string()),
            (1001, "it's; \\ fine".to_string())
        ]
    );
    let std_body: i32 = client.query_one("SELECT std_body(-5)", &[]).unwrap().get(0);
    assert_eq!(std_body, 0);
    let ret_case: i32 = client
        .query_one("SELECT ret_case(1, 7)", &[])
        .unwrap()
        .get(0);
    assert_eq!(ret_case, 7);
    let valid: bool = client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'log_id'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(valid);
}

/// The lint's claims checked on the server: what it flags is refused in a transaction block
/// (SQLSTATE 25001; `ALTER TYPE … ADD VALUE` instead leaves a value that cannot be used before
/// commit, 55P04), and what it lets through runs there.
#[test]
fn the_lint_flags_what_the_server_refuses_in_a_transaction() {
    let Some(server) = pg::server("the_lint_flags_what_the_server_refuses_in_a_transaction") else {
        return;
    };
    let db = FreshDb::create(&server, "lint");
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             CREATE INDEX t_v ON t (v);
             CREATE TYPE mood AS ENUM ('sad', 'ok');
             CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
             CREATE UNIQUE INDEX mv_id ON mv (id);
             CREATE TABLE m (d date) PARTITION BY RANGE (d);
             CREATE TABLE m_2020 PARTITION OF m FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');",
        )
        .unwrap();
    let flagged = [
        "CREATE INDEX CONCURRENTLY t_v2 ON t (v)",
        "CREATE UNIQUE INDEX CONCURRENTLY t_id2 ON t (id)",
        "DROP INDEX CONCURRENTLY t_v",
        "REINDEX TABLE CONCURRENTLY t",
        "REINDEX (CONCURRENTLY) INDEX t_v",
        "ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY",
        "VACUUM t",
        "CREATE DATABASE dbtool_t_lint_never",
        &format!("REINDEX DATABASE {}", db.name()),
        "ALTER SYSTEM SET work_mem = '64MB'",
    ];
    let allowed = [
        "CREATE INDEX t_v3 ON t (v)",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
        "REINDEX TABLE t",
        "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'",
        "ALTER TABLE m DETACH PARTITION m_2020",
        "COMMENT ON TABLE t IS 'CREATE INDEX CONCURRENTLY later'",
    ];
    let lint = |sql: &str| dbtool::migrate::lint_postgres("V1__x.sql".as_ref(), sql, false);
    for sql in flagged {
        assert_eq!(lint(sql).len(), 1, "the lint let through {sql}");
        let mut tx = client.transaction().unwrap();
        let err = tx
            .batch_execute(sql)
            .expect_err(&format!("the server ran {sql} in a transaction"));
        assert_eq!(
            err.code(),
            Some(&postgres::error::SqlState::ACTIVE_SQL_TRANSACTION),
            "{sql}: {err:?}"
        );
    }
    for sql in allowed {
        assert!(lint(sql).is_empty(), "the lint flagged {sql}");
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql} in a transaction: {e:?}"));
    }
    // ADD VALUE runs in a transaction (PostgreSQL 12+), but the value is unusable until commit:
    // a later migration in the same plan that uses it fails.
    let add = "ALTER TYPE mood ADD VALUE 'meh'";
    assert_eq!(lint(add).len(), 1);
    let mut tx = client.transaction().unwrap();
    tx.batch_execute(add).unwrap();
    let err = tx
        .batch_execute("SELECT 'meh'::mood")
        .expect_err("the new enum value was usable before commit");
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::UNSAFE_NEW_ENUM_VALUE_USAGE),
        "{err:?}"
    );
}

/// `status` and `upgrade --dry-run` on a postgres:// database show the lint's warning for a
/// pending transactional file with `CREATE INDEX CONCURRENTLY`, and none once the file is marked.
#[test]
fn status_warns_about_concurrently_in_a_transactional_file() {
    let Some(server) = pg::server("status_warns_about_concurrently_in_a_transactional_file") else {
        return;
    };
    let db = FreshDb::create(&server, "lint_status");
    let env = TestEnv::new();
    env.migration(
        1,
        "users",
        "CREATE TABLE users (id int, email text);\n",
        None,
    );
    let index = "-- V2: index\n\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n";
    env.migration(2, "index", index, None);
    let url = db.url();

    let status = env.ok(&["--database", url, "status", "--json"]).json();
    let warnings = status["warnings"].as_array().unwrap();
    let found: Vec<_> = warnings
        .iter()
        .filter(|w| w["code"] == "concurrently-in-transaction")
        .collect();
    assert_eq!(found.len(), 1, "{status:#}");
    assert_eq!(found[0]["line"], 3);
    assert!(found[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("V0002__index.sql"));
    let dry = env
        .ok(&["--database", url, "upgrade", "--dry-run", "--json"])
        .json();
    assert!(
        dry.to_string().contains("concurrently-in-transaction"),
        "{dry:#}"
    );

    env.migration(
        2,
        "index",
        &format!("-- dbtool:no-transaction\n{index}"),
        None,
    );
    let status = env.ok(&["--database", url, "status", "--json"]).json();
    assert!(
        !status.to_string().contains("concurrently-in-transaction"),
        "{status:#}"
    );
}
