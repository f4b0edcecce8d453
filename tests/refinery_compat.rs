//! dbtool and refinery share one history table: an application that embeds the same folder with
//! `refinery::embed_migrations!` (or runs refinery's `Runner`) finds a dbtool-migrated database
//! up to date, and dbtool finds a refinery-migrated one up to date. Same versions, names and
//! checksums; the `.down.sql` files are invisible to refinery.

mod common;

use common::{history, versions, TestEnv};
use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// (version, name, checksum) as refinery reads them.
fn refinery_view(conn: &mut Connection, runner: &refinery::Runner) -> Vec<(i32, String, u64)> {
    runner
        .get_applied_migrations(conn)
        .unwrap()
        .iter()
        .map(|m| (m.version(), m.name().to_string(), m.checksum()))
        .collect()
}

#[test]
fn refinery_finds_nothing_to_apply_on_a_database_dbtool_migrated() {
    let env = TestEnv::new();
    env.example_set();
    env.ok(&["init"]);
    let dbtool_rows = history(&env.db());

    let mut conn = Connection::open(env.db()).unwrap();
    let runner = embedded::migrations::runner();
    let report = runner
        .run(&mut conn)
        .expect("refinery accepts dbtool's history");
    assert!(
        report.applied_migrations().is_empty(),
        "refinery wanted to apply {:?}",
        report.applied_migrations()
    );
    let seen = refinery_view(&mut conn, &runner);
    assert_eq!(
        seen.iter()
            .map(|(v, n, _)| (*v, n.clone()))
            .collect::<Vec<_>>(),
        dbtool_rows
    );
    // The checksums refinery computes from the embedded files are the ones dbtool recorded.
    let embedded: Vec<(i32, u64)> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.checksum()))
        .collect();
    assert_eq!(
        seen.iter().map(|(v, _, c)| (*v, *c)).collect::<Vec<_>>(),
        embedded
    );
    assert_eq!(history(&env.db()), dbtool_rows, "refinery wrote nothing");
}

#[test]
fn dbtool_finds_a_database_refinery_migrated_up_to_date() {
    let env = TestEnv::new();
    env.example_set();
    let mut conn = Connection::open(env.db()).unwrap();
    // The example's generated rebuilds (V0007, V0008) refuse to run with foreign keys ON (their
    // guard): an application running them with plain refinery turns them off first, outside
    // refinery's transaction, as dbtool does.
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    let report = embedded::migrations::runner().run(&mut conn).unwrap();
    let applied = report.applied_migrations().len();
    assert!(applied >= 4);
    drop(conn);

    let before = common::bytes(&env.db());
    let run = env.ok(&["status", "--exit-code"]);
    assert!(run.stdout().ends_with("(head)\n"), "{}", run.stdout());
    let json = env.ok(&["history", "--json"]).json();
    assert!(json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["state"] == "applied"));
    let run = env.ok(&["upgrade"]);
    assert!(
        run.stdout().contains("nothing to upgrade"),
        "{}",
        run.stdout()
    );
    common::assert_unchanged(&env.db(), &before);

    // dbtool's downs work on refinery's history, and refinery re-applies what dbtool undid.
    env.ok(&["downgrade", "-2"]);
    assert_eq!(versions(&env.db()).len(), applied - 2);
    let mut conn = Connection::open(env.db()).unwrap();
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    let report = embedded::migrations::runner().run(&mut conn).unwrap();
    assert_eq!(report.applied_migrations().len(), 2);
    drop(conn);
    env.ok(&["status", "--exit-code"]);
}

#[test]
fn refinery_runner_on_a_folder_with_down_files_shares_the_history_both_ways() {
    let env = TestEnv::new();
    env.library_set();
    // refinery's loader, reading the same folder at run time: it must ignore the .down.sql files.
    let migrations = refinery::load_sql_migrations(env.migrations()).unwrap();
    assert_eq!(
        migrations.iter().map(|m| m.version()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );

    // refinery applies two, dbtool the rest.
    let mut conn = Connection::open(env.db()).unwrap();
    refinery::Runner::new(&migrations)
        .set_target(refinery::Target::Version(2))
        .run(&mut conn)
        .unwrap();
    drop(conn);
    assert_eq!(
        env.ok(&["current"]).stdout(),
        "2 create_books (2 pending, head is 4)\n"
    );
    env.ok(&["upgrade"]);

    // refinery sees dbtool's rows as its own.
    let mut conn = Connection::open(env.db()).unwrap();
    let runner = refinery::Runner::new(&migrations);
    let report = runner.run(&mut conn).unwrap();
    assert!(report.applied_migrations().is_empty());
    let seen = refinery_view(&mut conn, &runner);
    let expected: Vec<(i32, String, u64)> = migrations
        .iter()
        .map(|m| (m.version(), m.name().to_string(), m.checksum()))
        .collect();
    assert_eq!(seen, expected);
}
