//! The test server itself (`scripts/pg-server.sh`, `DBTOOL_TEST_POSTGRES_URL`): reachable,
//! checking passwords, with a role that may not create databases; and dbtool's PostgreSQL
//! statement splitter checked against it: every piece of a file full of traps is exactly one
//! statement the server accepts, and running them in order gives what the file means.
//!
//! Without the variable each test prints a SKIPPED line (and fails under CI).

mod common;

use common::pg::{self, FreshDb};
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
