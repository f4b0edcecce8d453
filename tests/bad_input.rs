//! Everything the issue lists under "checked before anything runs", and the failures that happen
//! while running: each is a clear error with a stable code and exit status, never a panic, and
//! the database file is byte-for-byte what it was before.

mod common;

use common::{bytes, exec, int, tables, versions, TestEnv};

/// Run `args`, expect `error_line` with exit status `code`, and prove the database untouched.
fn refused(env: &TestEnv, args: &[&str], code: i32, error_line: &str) -> String {
    let db = env.db();
    let before = db.exists().then(|| bytes(&db));
    let run = env.run(args);
    run.assert_error(code, error_line);
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    match before {
        Some(before) => common::assert_unchanged(&db, &before),
        None => assert!(
            !db.exists(),
            "a refused run must not create {}",
            db.display()
        ),
    }
    run.stderr()
}

/// The library set at head.
fn at_head() -> TestEnv {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    env
}

#[test]
fn an_applied_migration_edited_since_is_refused() {
    let env = at_head();
    env.migration(
        5,
        "more",
        "CREATE TABLE more(x);\n",
        Some("DROP TABLE more;\n"),
    );
    env.write(
        "migrations/V0002__create_books.sql",
        "CREATE TABLE books(id INTEGER PRIMARY KEY);\n",
    );
    let line = "error[edited-migration]: applied migration V2__create_books was edited since it was applied: $TMP/migrations/V0002__create_books.sql";
    let stderr = refused(&env, &["upgrade"], 1, line);
    assert!(
        stderr.contains("hint: restore the file as it was applied"),
        "{stderr}"
    );
    refused(&env, &["downgrade", "-1"], 1, line);
    refused(&env, &["upgrade", "--dry-run"], 1, line);
    // stamp cannot paper over it either: the row it would keep no longer matches its file.
    refused(&env, &["stamp", "head"], 1, line);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
}

#[test]
fn an_applied_migration_renamed_since_is_refused() {
    let env = at_head();
    std::fs::rename(
        env.migrations().join("V0002__create_books.sql"),
        env.migrations().join("V0002__make_books.sql"),
    )
    .unwrap();
    std::fs::rename(
        env.migrations().join("V0002__create_books.down.sql"),
        env.migrations().join("V0002__make_books.down.sql"),
    )
    .unwrap();
    refused(
        &env,
        &["upgrade"],
        1,
        "error[edited-migration]: applied migration V2__create_books was edited since it was applied: $TMP/migrations/V0002__make_books.sql",
    );
}

#[test]
fn an_applied_migration_whose_file_is_gone_is_refused() {
    let env = at_head();
    env.migration(5, "more", "CREATE TABLE more(x);\n", None);
    std::fs::remove_file(env.migrations().join("V0003__seed.sql")).unwrap();
    std::fs::remove_file(env.migrations().join("V0003__seed.down.sql")).unwrap();
    let stderr = refused(
        &env,
        &["upgrade"],
        1,
        "error[missing-migration-file]: applied migration V3__seed has no file in $TMP/migrations",
    );
    assert!(
        stderr.contains("hint: restore the file from version control"),
        "{stderr}"
    );
    refused(
        &env,
        &["downgrade", "base"],
        1,
        "error[missing-migration-file]: applied migration V3__seed has no file in $TMP/migrations",
    );
}

#[test]
fn two_files_with_one_version_are_refused() {
    let env = at_head();
    env.write("migrations/V5__tags.sql", "CREATE TABLE tags(x);\n");
    env.write("migrations/V0005__labels.sql", "CREATE TABLE labels(x);\n");
    let line = "error[duplicate-version]: two migration files have version 5: $TMP/migrations/V0005__labels.sql and $TMP/migrations/V5__tags.sql";
    refused(&env, &["upgrade"], 1, line);
    refused(&env, &["status"], 1, line);
    refused(&env, &["history"], 1, line);
    assert!(!tables(&env.db()).contains(&"tags".to_string()));

    // The same name with another zero padding is still the same version twice.
    let env = TestEnv::new();
    env.write("migrations/V1__a.sql", "CREATE TABLE a(x);\n");
    env.write("migrations/V001__a.sql", "CREATE TABLE a(x);\n");
    refused(
        &env,
        &["upgrade"],
        1,
        "error[duplicate-version]: two migration files have version 1: $TMP/migrations/V001__a.sql and $TMP/migrations/V1__a.sql",
    );
}

#[test]
fn an_unapplied_file_below_the_current_version_is_refused() {
    let env = TestEnv::new();
    for (version, name, up, down) in common::LIBRARY.iter().filter(|m| m.0 != 3) {
        env.migration(*version, name, up, Some(down));
    }
    env.ok(&["init"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 4]);
    // A merged branch brings V3: below the current version, never applied.
    let (version, name, up, down) = common::LIBRARY[2];
    env.migration(version, name, up, Some(down));
    let line = "error[out-of-order]: migration $TMP/migrations/V0003__seed.sql (version 3) is not applied but the database is already at version 4";
    let stderr = refused(&env, &["upgrade"], 1, line);
    assert!(
        stderr.contains("renumber the file above the current version"),
        "{stderr}"
    );
    refused(&env, &["downgrade", "-1"], 1, line);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 0);
}

#[test]
fn a_database_newer_than_every_file_is_refused() {
    let env = at_head();
    // An old checkout: only V1 and V2 exist here.
    for name in ["V0003__seed", "V0004__add_isbn"] {
        std::fs::remove_file(env.migrations().join(format!("{name}.sql"))).unwrap();
        std::fs::remove_file(env.migrations().join(format!("{name}.down.sql"))).unwrap();
    }
    let line = "error[database-ahead]: database is at version 4 but the newest migration file in $TMP/migrations is V2__create_books";
    let stderr = refused(&env, &["upgrade"], 1, line);
    assert!(
        stderr.contains("this checkout is older than the database"),
        "{stderr}"
    );
    refused(&env, &["downgrade", "-1"], 1, line);

    // With no files at all.
    let env = at_head();
    std::fs::remove_dir_all(env.migrations()).unwrap();
    std::fs::create_dir(env.migrations()).unwrap();
    refused(
        &env,
        &["upgrade"],
        1,
        "error[database-ahead]: database is at version 4 but the newest migration file in $TMP/migrations is none",
    );
}

#[test]
fn a_damaged_history_table_is_an_error_not_a_panic() {
    let cases: &[(&str, &str)] = &[
        (
            "UPDATE refinery_schema_history SET applied_on = 'last tuesday' WHERE version = 2",
            "version 2: applied_on \"last tuesday\" is not an RFC 3339 time",
        ),
        (
            "UPDATE refinery_schema_history SET applied_on = NULL WHERE version = 3",
            "version 3: applied_on is NULL",
        ),
        (
            "UPDATE refinery_schema_history SET checksum = 'abc' WHERE version = 1",
            "version 1: checksum \"abc\" is not an unsigned integer",
        ),
        (
            "UPDATE refinery_schema_history SET checksum = -5 WHERE version = 1",
            // int4 affinity does not apply to the VARCHAR column: it stays text.
            "version 1: checksum \"-5\" is not an unsigned integer",
        ),
        (
            "INSERT INTO refinery_schema_history VALUES (NULL, 'ghost', '2024-01-01T00:00:00Z', '1')",
            "row 1: version is NULL",
        ),
        (
            "UPDATE refinery_schema_history SET version = 'four' WHERE version = 4",
            "row 4: version is the text \"four\"",
        ),
        (
            "UPDATE refinery_schema_history SET name = NULL WHERE version = 2",
            "version 2: name is NULL",
        ),
    ];
    for (sql, detail) in cases {
        let env = at_head();
        exec(&env.db(), sql);
        let line = format!(
            "error[history-damaged]: migration history table refinery_schema_history in $TMP/content.db is damaged: {detail}"
        );
        for args in [
            &["upgrade"][..],
            &["downgrade", "-1"],
            &["stamp", "head"],
            &["current"],
            &["history"],
            &["status"],
            &["init"],
        ] {
            let stderr = refused(&env, args, 1, &line);
            assert!(stderr.contains("hint: inspect it with"), "{sql}: {stderr}");
        }
    }
}

#[test]
fn a_history_table_of_another_shape_is_damaged() {
    let env = TestEnv::new();
    env.library_set();
    exec(
        &env.db(),
        "CREATE TABLE refinery_schema_history(version INTEGER PRIMARY KEY, name TEXT);",
    );
    refused(
        &env,
        &["upgrade"],
        1,
        "error[history-damaged]: migration history table refinery_schema_history in $TMP/content.db is damaged: cannot read it: no such column: applied_on in SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version at offset 22",
    );
}

#[test]
fn a_migration_file_that_is_not_utf8_is_refused() {
    let env = at_head();
    env.write(
        "migrations/V0005__latin1.sql",
        b"INSERT INTO authors VALUES (9, 'Jos\xe9');\n",
    );
    let line =
        "error[not-utf8]: migration file $TMP/migrations/V0005__latin1.sql is not valid UTF-8";
    let stderr = refused(&env, &["upgrade"], 1, line);
    assert!(stderr.contains("hint: save the file as UTF-8"), "{stderr}");
    refused(&env, &["downgrade", "-1"], 1, line);
    refused(&env, &["status"], 1, line);

    // A down file counts too.
    let env = at_head();
    env.write("migrations/V0004__add_isbn.down.sql", b"-- \xff\n");
    refused(
        &env,
        &["downgrade", "-1"],
        1,
        "error[not-utf8]: migration file $TMP/migrations/V0004__add_isbn.down.sql is not valid UTF-8",
    );
}

#[test]
fn a_sql_file_not_named_like_a_migration_is_refused() {
    for name in [
        "V5_one_underscore.sql",
        "add_tags.sql",
        "V5__has-dash.sql",
        "V__no_version.sql",
        "V5__.sql",
        "U5__unversioned.sql",
        "v5__lowercase.sql",
        "V5__x.up.sql",
        "V99999999999__too_big.sql",
    ] {
        let env = at_head();
        env.write(&format!("migrations/{name}"), "CREATE TABLE t(x);\n");
        let stderr = refused(
            &env,
            &["upgrade"],
            1,
            &format!(
                "error[bad-migration-name]: $TMP/migrations/{name} is not named V{{n}}__{{name}}.sql or V{{n}}__{{name}}.down.sql"
            ),
        );
        assert!(stderr.contains("hint: rename it"), "{stderr}");
    }
    // Files that are not SQL are none of dbtool's business.
    let env = at_head();
    env.write("migrations/README.md", "how we write migrations\n");
    env.write("migrations/.gitkeep", "");
    env.ok(&["upgrade"]);
}

#[test]
fn a_down_file_without_its_up_is_refused() {
    let env = at_head();
    env.write("migrations/V0004__add_isbm.down.sql", "SELECT 1;\n");
    refused(
        &env,
        &["downgrade", "-1"],
        1,
        "error[orphan-down]: down migration $TMP/migrations/V0004__add_isbm.down.sql has no up migration V4__add_isbm.sql beside it",
    );
}

#[test]
fn a_path_that_is_not_a_sqlite_database_is_refused() {
    let env = TestEnv::new();
    env.library_set();
    let text = env.write("notes.db", "these are my notes, not a database\n");
    std::fs::create_dir(env.root().join("folder.db")).unwrap();
    std::fs::write(env.root().join("short.db"), b"SQLite").unwrap();
    let text_before = bytes(&text);
    for args in [
        &["upgrade"][..],
        &["init"],
        &["downgrade", "base"],
        &["stamp", "head"],
        &["current"],
        &["history"],
        &["status"],
        &["upgrade", "--dry-run"],
    ] {
        let run = env
            .command()
            .args(args)
            .args(["--database", "notes.db"])
            .output()
            .unwrap();
        let stderr = env.normalise(&String::from_utf8(run.stderr).unwrap());
        assert_eq!(run.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error[not-a-database]: $TMP/notes.db is not a SQLite database: the file does not start with the SQLite header\n"),
            "{args:?}: {stderr}"
        );
        assert_eq!(bytes(&text), text_before, "{args:?} changed the text file");

        let run = env
            .command()
            .args(args)
            .args(["--database", "folder.db"])
            .output()
            .unwrap();
        let stderr = env.normalise(&String::from_utf8(run.stderr).unwrap());
        assert_eq!(run.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(
                "error[not-a-database]: $TMP/folder.db is not a SQLite database: it is a folder\n"
            ),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(env.root().join("folder.db"))
                .unwrap()
                .count(),
            0
        );

        let run = env
            .command()
            .args(args)
            .args(["--database", "short.db"])
            .output()
            .unwrap();
        let stderr = env.normalise(&String::from_utf8(run.stderr).unwrap());
        assert!(
            stderr.starts_with("error[not-a-database]: $TMP/short.db is not a SQLite database: the file is only 6 bytes long\n"),
            "{args:?}: {stderr}"
        );
        assert_eq!(bytes(&env.root().join("short.db")), b"SQLite");
    }
    for side in ["notes.db-journal", "notes.db-wal", "folder.db-journal"] {
        assert!(!env.root().join(side).exists(), "{side}");
    }
}

#[test]
fn a_sql_error_names_file_statement_line_and_sqlite_message_and_applies_nothing() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "1"]);
    // A plan of three: V2 and V3 succeed, V4 fails at its third statement (line 5).
    env.migration(
        4,
        "add_isbn",
        "-- V4: isbn\nALTER TABLE books ADD COLUMN isbn TEXT;\nUPDATE books SET isbn = 'x';\n\nINSERT INTO books(id, author_id, title) VALUES (1, 1, 'duplicate id');\n",
        None,
    );
    let stderr = refused(
        &env,
        &["upgrade"],
        1,
        "error[migration-failed]: migration $TMP/migrations/V0004__add_isbn.sql failed at line 5: INSERT INTO books(id, author_id, title) VALUES (1, 1, 'duplicate id');",
    );
    assert!(
        stderr.contains("caused by: UNIQUE constraint failed: books.id"),
        "SQLite's own message: {stderr}"
    );
    assert!(stderr.contains("hint: nothing was applied"), "{stderr}");
    assert_eq!(versions(&env.db()), vec![1], "still at the old version");
    assert_eq!(
        tables(&env.db()),
        vec!["authors"],
        "V2's table was rolled back"
    );
    common::assert_integrity(&env.db());
}

#[test]
fn a_syntax_error_names_its_line() {
    let env = TestEnv::new();
    env.migration(1, "a", "CREATE TABLE a(x);\n", None);
    env.migration(
        2,
        "b",
        "CREATE TABLE b(x);\n\n-- comment\nCREAT TABLE c(x);\n",
        None,
    );
    env.empty_db(); // `upgrade` never creates the database
    let stderr = refused(
        &env,
        &["upgrade"],
        1,
        "error[migration-failed]: migration $TMP/migrations/V0002__b.sql failed at line 4: CREAT TABLE c(x);",
    );
    assert!(
        stderr.contains("caused by: near \"CREAT\": syntax error"),
        "{stderr}"
    );
}

#[test]
fn begin_and_commit_inside_a_migration_are_refused_with_a_hint() {
    let env = TestEnv::new();
    env.migration(1, "a", "CREATE TABLE a(x);\n", None);
    env.migration(2, "b", "BEGIN;\nCREATE TABLE b(x);\nCOMMIT;\n", None);
    env.empty_db(); // `upgrade` never creates the database
    let stderr = refused(
        &env,
        &["upgrade"],
        1,
        "error[migration-failed]: migration $TMP/migrations/V0002__b.sql failed at line 1: BEGIN;",
    );
    assert!(
        stderr.contains("hint: remove BEGIN/COMMIT from the file"),
        "{stderr}"
    );
}

#[test]
fn a_missing_down_anywhere_in_the_plan_stops_it_before_anything_runs() {
    let env = at_head();
    // V4 and V3 have downs, V2's is missing: downgrade base must not even revert V4.
    std::fs::remove_file(env.migrations().join("V0002__create_books.down.sql")).unwrap();
    let stderr = refused(
        &env,
        &["downgrade", "base"],
        1,
        "error[missing-down]: cannot downgrade V2__create_books: $TMP/migrations/V0002__create_books.down.sql does not exist",
    );
    assert!(stderr.contains("hint: write the down file"), "{stderr}");
    refused(
        &env,
        &["downgrade", "--dry-run", "1"],
        1,
        "error[missing-down]: cannot downgrade V2__create_books: $TMP/migrations/V0002__create_books.down.sql does not exist",
    );
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    // Above V2 the plan is fine.
    env.ok(&["downgrade", "2"]);
    assert_eq!(versions(&env.db()), vec![1, 2]);
}

#[test]
fn an_irreversible_migration_stops_a_downgrade_before_anything_runs() {
    let env = TestEnv::new();
    env.migration(1, "a", "CREATE TABLE a(x);\n", Some("DROP TABLE a;\n"));
    env.migration(2, "b", "-- dbtool:irreversible\nCREATE TABLE b(x);\n", None);
    env.migration(3, "c", "CREATE TABLE c(x);\n", Some("DROP TABLE c;\n"));
    env.ok(&["init"]);
    refused(
        &env,
        &["downgrade", "base"],
        1,
        "error[irreversible]: cannot downgrade V2__b: $TMP/migrations/V0002__b.sql is marked `-- dbtool:irreversible`",
    );
}

#[test]
fn a_migration_that_breaks_a_foreign_key_rolls_back_and_lists_the_violation() {
    let env = at_head();
    // Deletes a parent whose child row stays: books 1 -> authors 1.
    env.migration(5, "drop_ann", "DELETE FROM authors WHERE id = 1;\n", None);
    env.migration(6, "fine", "CREATE TABLE fine(x);\n", None);
    let stderr = refused(
        &env,
        &["upgrade"],
        1,
        "error[foreign-key-violation]: this upgrade would leave 1 new foreign-key violation(s): books rowid 1 -> authors",
    );
    assert!(stderr.contains("hint: nothing was committed"), "{stderr}");
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 2);

    // A violation that was there before the run is not dbtool's to refuse.
    let env = at_head();
    exec(
        &env.db(),
        "PRAGMA foreign_keys = OFF; INSERT INTO books VALUES (9, 99, 'orphan', NULL);",
    );
    env.migration(5, "fine", "CREATE TABLE fine(x);\n", None);
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4, 5]);
}

#[test]
fn cascade_children_keep_their_rows_when_a_migration_recreates_the_parent() {
    let env = TestEnv::new();
    env.migration(
        1,
        "tables",
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n\
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE);\n\
         INSERT INTO parent VALUES (1), (2);\n\
         INSERT INTO child VALUES (10, 1), (20, 2);\n",
        None,
    );
    // The 12-step rebuild: new table, copy, drop the old one, rename. With foreign keys on, the
    // DROP TABLE would cascade-delete every child row. The PRAGMA in the file is a no-op.
    env.migration(
        2,
        "rebuild_parent",
        "PRAGMA foreign_keys = ON;\n\
         CREATE TABLE new_parent(id INTEGER PRIMARY KEY, label TEXT);\n\
         INSERT INTO new_parent(id) SELECT id FROM parent;\n\
         DROP TABLE parent;\n\
         ALTER TABLE new_parent RENAME TO parent;\n",
        None,
    );
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM child"), 2);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM parent"), 2);
    assert_eq!(common::columns(&env.db(), "parent"), vec!["id", "label"]);
    common::assert_integrity(&env.db());
}

#[test]
fn a_missing_migrations_folder_is_refused() {
    let env = TestEnv::new();
    refused(
        &env,
        &["upgrade"],
        1,
        "error[migrations-dir-missing]: migrations folder $TMP/migrations does not exist",
    );
}

/// Bug: a `COMMIT;` (or `END;`) in a migration committed the plan's transaction half-way:
/// the foreign-key check was skipped (commit_checked saw autocommit and returned), the rest of
/// the plan ran statement by statement, and the run exited 0 with orphaned rows. A `ROLLBACK;`
/// silently undid the earlier steps and then failed on the vanished history table.
#[test]
fn regression_commit_end_or_rollback_in_a_migration_is_refused_before_it_runs() {
    for (ender, line) in [("COMMIT;", 2), ("END TRANSACTION;", 2), ("rollback;", 2)] {
        let env = at_head();
        env.migration(
            5,
            "drop_ann",
            &format!("DELETE FROM authors WHERE id = 1;\n{ender}\n"),
            None,
        );
        env.migration(6, "more", "CREATE TABLE more(x);\n", None);
        let stderr = refused(
            &env,
            &["upgrade"],
            1,
            &format!(
                "error[transaction-in-script]: $TMP/migrations/V0005__drop_ann.sql line {line}: `{ender}` would end dbtool's transaction; refused before it ran"
            ),
        );
        assert!(stderr.contains("nothing was applied"), "{stderr}");
        assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
        assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 2);
    }

    // Savepoints nest inside dbtool's transaction and are fine.
    let env = at_head();
    env.migration(
        5,
        "savepoints",
        "SAVEPOINT s;\nINSERT INTO authors VALUES (3, 'Cy');\nROLLBACK TO s;\nRELEASE s;\nINSERT INTO authors VALUES (4, 'Di');\n",
        None,
    );
    env.ok(&["upgrade"]);
    assert_eq!(
        common::text(&env.db(), "SELECT group_concat(id) FROM authors"),
        "1,2,4"
    );

    // A no-transaction migration may manage its own transaction.
    let env = at_head();
    env.migration(
        5,
        "own_transaction",
        "-- dbtool:no-transaction\nBEGIN;\nINSERT INTO authors VALUES (3, 'Cy');\nCOMMIT;\n",
        None,
    );
    env.ok(&["upgrade"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 3);
}
