//! The migration lifecycle through the real binary: init, upgrade, downgrade, current, history,
//! status, create, stamp, --dry-run and --json. Every test asserts the database afterwards
//! (history rows, schema, data), not only what was printed.

mod common;

use common::{bytes, columns, history, int, tables, text, versions, TestEnv};

#[test]
fn init_creates_the_database_at_head_and_prints_each_step() {
    let env = TestEnv::new();
    env.library_set();
    let run = env.ok(&["init"]);

    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    assert_eq!(
        history(&env.db())[1],
        (2, "create_books".to_string()),
        "names are refinery's (without the zero padding)"
    );
    assert_eq!(tables(&env.db()), vec!["authors", "books"]);
    assert_eq!(
        columns(&env.db(), "books"),
        vec!["id", "author_id", "title", "isbn"]
    );
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 2);

    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for (line, label) in lines.iter().zip([
        "V1__create_authors",
        "V2__create_books",
        "V3__seed",
        "V4__add_isbn",
    ]) {
        assert!(line.starts_with(&format!("applied   {label} ")), "{line}");
        assert!(
            line.ends_with(" ms"),
            "one line per migration with its duration: {line}"
        );
    }
    assert_eq!(
        lines[4],
        "content.db: base (no migrations applied) -> version 4 (head)"
    );
}

#[test]
fn init_twice_says_so_and_changes_nothing() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    let before = bytes(&env.db());

    let run = env.ok(&["init"]);
    assert_eq!(
        run.stdout(),
        "content.db is already initialised at version 4\n"
    );
    common::assert_unchanged(&env.db(), &before);

    // With a pending migration it still leaves the database alone and says what to run.
    env.migration(5, "more", "CREATE TABLE more(x);\n", None);
    let run = env.ok(&["init"]);
    assert!(
        run.stderr()
            .contains("1 migration(s) pending: run `dbtool upgrade`"),
        "{}",
        run.stderr()
    );
    common::assert_unchanged(&env.db(), &before);
}

#[test]
fn init_refuses_a_database_with_tables_but_no_history_and_points_to_stamp() {
    let env = TestEnv::new();
    env.library_set();
    common::exec(&env.db(), "CREATE TABLE legacy(id INTEGER PRIMARY KEY);");
    let before = bytes(&env.db());

    let run = env.run(&["init"]);
    run.assert_error(
        1,
        "error[unmanaged-database]: database $TMP/content.db has tables (legacy) but no migration history",
    );
    assert!(
        run.stderr().contains("dbtool stamp head"),
        "{}",
        run.stderr()
    );
    common::assert_unchanged(&env.db(), &before);

    // upgrade refuses the same way.
    env.run(&["upgrade"])
        .assert_error(1, "error[unmanaged-database]: database $TMP/content.db has tables (legacy) but no migration history");
    common::assert_unchanged(&env.db(), &before);
}

#[test]
fn upgrade_to_plus_n_a_version_and_head() {
    let env = TestEnv::new();
    env.library_set();

    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "+1"]);
    assert_eq!(versions(&env.db()), vec![1]);
    assert_eq!(tables(&env.db()), vec!["authors"]);

    let run = env.ok(&["upgrade", "3"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM books"), 2);
    assert!(run
        .stdout()
        .ends_with("content.db: version 1 -> version 3\n"));

    // V-prefixed and zero-padded versions are the same version.
    env.ok(&["upgrade", "V0004"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);

    let before = bytes(&env.db());
    let run = env.ok(&["upgrade"]);
    assert_eq!(
        run.stdout(),
        "content.db: nothing to upgrade, at version 4 (head)\n"
    );
    common::assert_unchanged(&env.db(), &before);
}

#[test]
fn upgrade_targets_that_make_no_sense_are_usage_errors() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    let before = bytes(&env.db());

    env.run(&["upgrade", "+3"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"+3\": only 2 migration(s) pending",
    );
    env.run(&["upgrade", "1"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"1\": the database is already at version 2: use `dbtool downgrade 1`",
    );
    env.run(&["upgrade", "9"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"9\": no migration with version 9 in $TMP/migrations",
    );
    env.run(&["upgrade", "-1"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"-1\": upgrade moves forward: use `dbtool downgrade` to go back",
    );
    env.run(&["upgrade", "+0"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"+0\": a relative step must be at least 1",
    );
    env.run(&["upgrade", "latest"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"latest\": expected head, +N or a version number",
    );
    let run = env.run(&["upgrade", "--no-such-flag"]);
    assert_eq!(run.code(), 2, "clap usage errors exit 2: {}", run.stderr());
    common::assert_unchanged(&env.db(), &before);
    assert_eq!(versions(&env.db()), vec![1, 2]);
}

#[test]
fn downgrade_by_steps_to_a_version_and_to_base() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);

    let run = env.ok(&["downgrade", "-1"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);
    assert_eq!(
        columns(&env.db(), "books"),
        vec!["id", "author_id", "title"]
    );
    assert!(
        run.stdout().starts_with("reverted  V4__add_isbn "),
        "{}",
        run.stdout()
    );
    assert!(run
        .stdout()
        .ends_with("content.db: version 4 -> version 3\n"));

    // Reverse order: V3's down (delete rows) runs before V2's (drop books).
    let run = env.ok(&["downgrade", "1"]);
    assert_eq!(versions(&env.db()), vec![1]);
    assert_eq!(tables(&env.db()), vec!["authors"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM authors"), 0);
    let stdout = run.stdout();
    let order: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(order[..2], ["V3__seed", "V2__create_books"]);

    env.ok(&["downgrade", "base"]);
    assert_eq!(versions(&env.db()), Vec::<i32>::new());
    assert_eq!(tables(&env.db()), Vec::<String>::new());

    // And all the way back up again.
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
}

#[test]
fn downgrade_targets_that_make_no_sense_are_usage_errors() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    let before = bytes(&env.db());

    env.run(&["downgrade", "-3"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"-3\": only 2 migration(s) applied",
    );
    env.run(&["downgrade", "4"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"4\": the database is at version 2: use `dbtool upgrade 4`",
    );
    env.run(&["downgrade", "head"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"head\": downgrade moves back: use `dbtool upgrade` to go forward",
    );
    let run = env.run(&["downgrade"]);
    assert_eq!(run.code(), 2, "TARGET is required: {}", run.stderr());
    common::assert_unchanged(&env.db(), &before);
}

#[test]
fn downgrade_of_a_missing_database_does_not_create_it() {
    let env = TestEnv::new();
    env.library_set();
    env.run(&["downgrade", "base"]).assert_error(
        1,
        "error[database-missing]: database $TMP/content.db does not exist",
    );
    assert!(!env.db().exists());
}

#[test]
fn current_says_version_name_and_whether_it_is_head() {
    let env = TestEnv::new();
    env.library_set();

    env.run(&["current"]).assert_error(
        1,
        "error[database-missing]: database $TMP/content.db does not exist",
    );
    assert!(!env.db().exists(), "current never creates the database");

    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "+1"]);
    env.ok(&["downgrade", "base"]);
    assert_eq!(
        env.ok(&["current"]).stdout(),
        "no migrations applied (4 pending)\n"
    );

    // An empty file is an empty database: no history at all.
    std::fs::write(env.root().join("empty.db"), b"").unwrap();
    assert_eq!(
        env.ok(&["current", "--database", "empty.db"]).stdout(),
        "no migrations applied (4 pending)\n"
    );

    env.ok(&["upgrade", "2"]);
    assert_eq!(
        env.ok(&["current"]).stdout(),
        "2 create_books (2 pending, head is 4)\n"
    );
    env.ok(&["upgrade"]);
    assert_eq!(env.ok(&["current"]).stdout(), "4 add_isbn (head)\n");

    let json = env.ok(&["current", "--json"]).json();
    assert_eq!(json["current_version"], 4);
    assert_eq!(json["name"], "add_isbn");
    assert_eq!(json["head_version"], 4);
    assert_eq!(json["is_head"], true);
    assert_eq!(json["pending"], serde_json::json!([]));
}

#[test]
fn history_shows_every_state_oldest_first() {
    let env = TestEnv::new();
    env.library_set();
    env.migration(5, "later", "CREATE TABLE later(x);\n", None);
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "3"]);
    // V2 edited after it was applied, V3's file gone, V4 and V5 pending.
    let v2 = env.migrations().join("V0002__create_books.sql");
    let mut sql = std::fs::read_to_string(&v2).unwrap();
    sql.push_str("-- an innocent comment still changes the checksum\n");
    std::fs::write(&v2, sql).unwrap();
    std::fs::remove_file(env.migrations().join("V0003__seed.sql")).unwrap();
    std::fs::remove_file(env.migrations().join("V0003__seed.down.sql")).unwrap();
    let before = bytes(&env.db());

    let run = env.ok(&["history"]);
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines[0].contains("version") && lines[0].ends_with("state"));
    let states: Vec<String> = lines[1..]
        .iter()
        .map(|l| {
            l.split("  ")
                .filter(|s| !s.trim().is_empty())
                .last()
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(
        states,
        vec![
            "applied",
            "edited since applied",
            "applied, file missing (current)",
            "pending",
            "pending (head)",
        ],
        "{stdout}"
    );
    assert!(
        lines[3].starts_with('>'),
        "the current one is marked: {stdout}"
    );
    assert!(lines[1].contains("create_authors") && lines[4].contains("add_isbn"));
    // applied-at is shown for applied rows (UTC, to the second), blank for pending ones.
    let applied_at = |line: &str| {
        line.split_whitespace()
            .nth(if line.starts_with('>') { 3 } else { 2 })
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(applied_at(lines[1]).len(), "2024-01-01".len());
    assert_eq!(applied_at(lines[4]), "pending");

    let json = env.ok(&["history", "--json"]).json();
    let states: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec![
            "applied",
            "edited-since-applied",
            "applied-file-missing",
            "pending",
            "pending"
        ]
    );
    assert_eq!(json["current_version"], 3);
    assert_eq!(json["head_version"], 5);

    let verbose = env.ok(&["history", "--verbose"]).stdout();
    assert!(
        verbose.contains("up:   migrations/V0001__create_authors.sql"),
        "{verbose}"
    );
    assert!(
        verbose.contains("down: migrations/V0001__create_authors.down.sql"),
        "{verbose}"
    );
    assert!(
        verbose.contains("down: (none)"),
        "V5 has no down: {verbose}"
    );
    let file_sums = verbose.matches("checksum (file):").count();
    let recorded_sums = verbose.matches("checksum (recorded):").count();
    assert_eq!((file_sums, recorded_sums), (4, 3), "{verbose}");
    // The edited file shows two different checksums.
    let v2_block: Vec<&str> = verbose
        .lines()
        .skip_while(|l| !l.contains("create_books"))
        .take(5)
        .collect();
    let sums: Vec<&str> = v2_block
        .iter()
        .filter(|l| l.contains("checksum"))
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(sums.len(), 2, "{v2_block:?}");
    assert_ne!(sums[0], sums[1]);

    common::assert_unchanged(&env.db(), &before);
}

#[test]
fn status_exit_code_is_3_when_anything_is_pending() {
    let env = TestEnv::new();
    env.library_set();

    // Not even created yet: everything is pending.
    let run = env.run(&["status", "--exit-code"]);
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert!(!env.db().exists(), "status never creates the database");

    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    let run = env.run(&["status", "--exit-code"]);
    assert_eq!(run.code(), 3);
    assert_eq!(
        run.stdout(),
        "content.db: at version 2, 2 pending:\n  pending V3__seed  migrations/V0003__seed.sql\n  pending V4__add_isbn  migrations/V0004__add_isbn.sql\n"
    );
    assert_eq!(env.run(&["status"]).code(), 0, "without --exit-code: 0");
    let json = env.run(&["status", "--exit-code", "--json"]);
    assert_eq!(json.code(), 3);
    assert_eq!(json.json()["pending"], serde_json::json!([3, 4]));

    env.ok(&["upgrade"]);
    let run = env.ok(&["status", "--exit-code"]);
    assert_eq!(run.stdout(), "content.db: up to date at version 4 (head)\n");

    // A problem (edited applied migration) also counts as a difference.
    env.write(
        "migrations/V0001__create_authors.sql",
        "CREATE TABLE authors(id);\n",
    );
    let run = env.run(&["status", "--exit-code"]);
    assert_eq!(run.code(), 3);
    assert!(
        run.stdout().contains("problem[edited-migration]"),
        "{}",
        run.stdout()
    );
}

#[test]
fn create_writes_zero_padded_pairs_and_refuses_empty_names() {
    let env = TestEnv::new();
    std::fs::create_dir(env.migrations()).unwrap(); // `create` never makes the folder

    let run = env.ok(&["create", "Add user preferences table"]);
    assert_eq!(
        run.stdout(),
        "created migrations/V0001__add_user_preferences_table.sql\ncreated migrations/V0001__add_user_preferences_table.down.sql\n"
    );
    let up = std::fs::read_to_string(
        env.migrations()
            .join("V0001__add_user_preferences_table.sql"),
    )
    .unwrap();
    assert!(
        up.starts_with("-- V0001: Add user preferences table\n"),
        "{up}"
    );

    env.migration(41, "jump", "SELECT 1;\n", None);
    let json = env.ok(&["create", "--json", "Next one!"]).json();
    assert_eq!(json["version"], 42);
    assert!(json["up"]
        .as_str()
        .unwrap()
        .ends_with("migrations/V0042__next_one.sql"));
    assert!(env.migrations().join("V0042__next_one.down.sql").exists());

    let files_before = std::fs::read_dir(env.migrations()).unwrap().count();
    env.run(&["create", "!!! ---"]).assert_error(
        2,
        "error[empty-name]: migration name \"!!! ---\" has no letters or digits to build a file name from",
    );
    assert_eq!(
        std::fs::read_dir(env.migrations()).unwrap().count(),
        files_before
    );

    // The generated pair is a working migration: it applies and reverts.
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 41, 42]);
    env.ok(&["downgrade", "41"]);
    assert_eq!(versions(&env.db()), vec![1, 41]);
}

/// A set whose SQL must never run: every up fails if executed.
fn poisoned_set(env: &TestEnv) {
    for (version, name) in [(1, "create_authors"), (2, "create_books"), (3, "add_isbn")] {
        env.migration(
            version,
            name,
            &format!("INSERT INTO must_not_run VALUES ({version});\n"),
            Some("INSERT INTO must_not_run VALUES (-1);\n"),
        );
    }
}

#[test]
fn stamp_records_and_forgets_without_running_sql() {
    let env = TestEnv::new();
    poisoned_set(&env);
    // An existing database adopted as is.
    common::exec(
        &env.db(),
        "CREATE TABLE authors(id INTEGER PRIMARY KEY); INSERT INTO authors VALUES (7);",
    );

    let run = env.ok(&["stamp", "2"]);
    assert_eq!(versions(&env.db()), vec![1, 2]);
    assert!(
        run.stdout().starts_with("stamped   V1__create_authors"),
        "{}",
        run.stdout()
    );
    assert!(run
        .stdout()
        .ends_with("content.db: base (no migrations applied) -> version 2\n"));

    env.ok(&["stamp", "head"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3]);

    env.ok(&["stamp", "1"]);
    assert_eq!(versions(&env.db()), vec![1]);

    let run = env.ok(&["stamp", "base"]);
    assert_eq!(versions(&env.db()), Vec::<i32>::new());
    assert!(
        run.stdout().starts_with("unstamped V1__create_authors"),
        "{}",
        run.stdout()
    );

    // The data was never touched (and the must_not_run table never existed).
    assert_eq!(tables(&env.db()), vec!["authors"]);
    assert_eq!(int(&env.db(), "SELECT id FROM authors"), 7);

    env.run(&["stamp", "7"]).assert_error(
        2,
        "error[invalid-target]: invalid target \"7\": no migration with version 7 in $TMP/migrations",
    );
}

#[test]
fn stamp_fills_a_gap_below_the_current_version() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    common::exec(
        &env.db(),
        "DELETE FROM refinery_schema_history WHERE version = 2",
    );
    env.run(&["upgrade"]).assert_error(
        1,
        "error[out-of-order]: migration $TMP/migrations/V0002__create_books.sql (version 2) is not applied but the database is already at version 4",
    );
    env.ok(&["stamp", "head"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    assert_eq!(
        int(&env.db(), "SELECT count(*) FROM books"),
        2,
        "no SQL ran"
    );
}

#[test]
fn dry_run_prints_the_plan_and_sql_and_leaves_the_file_byte_identical() {
    let env = TestEnv::new();
    env.library_set();

    // On a database that does not exist yet: refused like the real run, nothing is created.
    env.run(&["upgrade", "--dry-run"]).assert_error(
        1,
        "error[database-missing]: database $TMP/content.db does not exist",
    );
    assert!(!env.db().exists());
    env.empty_db();
    let run = env.ok(&["upgrade", "--dry-run"]);
    assert_eq!(bytes(&env.db()), b"", "the dry run wrote nothing");
    assert!(run
        .stdout()
        .contains("CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"));

    env.ok(&["upgrade", "2"]);
    let before = bytes(&env.db());

    let run = env.ok(&["upgrade", "--dry-run"]);
    assert_eq!(
        run.stdout(),
        "-- dry run: upgrade content.db from version 2 to version 4; nothing will change\n\
         -- apply V3__seed (migrations/V0003__seed.sql)\n\
         INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bob');\n\
         INSERT INTO books VALUES (1, 1, 'Alpha'), (2, 2, 'Beta');\n\
         -- apply V4__add_isbn (migrations/V0004__add_isbn.sql)\n\
         ALTER TABLE books ADD COLUMN isbn TEXT;\n"
    );
    common::assert_unchanged(&env.db(), &before);

    let run = env.ok(&["downgrade", "base", "--dry-run"]);
    assert_eq!(
        run.stdout(),
        "-- dry run: downgrade content.db from version 2 to base (no migrations applied); nothing will change\n\
         -- revert V2__create_books (migrations/V0002__create_books.down.sql)\n\
         DROP TABLE books;\n\
         -- revert V1__create_authors (migrations/V0001__create_authors.down.sql)\n\
         DROP TABLE authors;\n"
    );
    common::assert_unchanged(&env.db(), &before);

    let run = env.ok(&["stamp", "head", "--dry-run"]);
    assert!(
        run.stdout().contains("-- record (SQL not run) V3__seed"),
        "{}",
        run.stdout()
    );
    common::assert_unchanged(&env.db(), &before);
    let run = env.ok(&["stamp", "base", "--dry-run"]);
    assert!(
        run.stdout()
            .contains("-- forget (SQL not run) V2__create_books"),
        "{}",
        run.stdout()
    );
    common::assert_unchanged(&env.db(), &before);

    let json = env.ok(&["upgrade", "--dry-run", "--json"]).json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["steps"][0]["sql"], common::LIBRARY[2].2);
    common::assert_unchanged(&env.db(), &before);
    assert_eq!(versions(&env.db()), vec![1, 2]);
}

#[test]
fn json_output_parses_for_every_command() {
    let env = TestEnv::new();
    env.library_set();

    let init = env.ok(&["init", "--json"]).json();
    assert_eq!(init["already_initialised"], false);
    assert_eq!(init["run"]["steps"].as_array().unwrap().len(), 4);
    assert_eq!(init["run"]["steps"][0]["action"], "apply");
    assert_eq!(init["run"]["steps"][0]["version"], 1);
    assert!(init["run"]["steps"][0]["duration_ms"].as_f64().unwrap() >= 0.0);

    let down = env.ok(&["downgrade", "-2", "--json"]).json();
    assert_eq!(
        (down["from_version"].as_i64(), down["to_version"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(down["steps"][0]["action"], "revert");

    let up = env.ok(&["upgrade", "--json"]).json();
    assert_eq!(up["operation"], "upgrade");
    assert_eq!(up["to_version"], 4);

    let stamp = env.ok(&["stamp", "head", "--json"]).json();
    assert_eq!(stamp["steps"], serde_json::json!([]));

    let config = env.ok(&["config", "--json"]).json();
    assert_eq!(config["database"]["source"]["kind"], "default");

    assert_eq!(
        env.ok(&["init", "--json"]).json()["already_initialised"],
        true
    );
    assert_eq!(
        env.ok(&["status", "--json"]).json()["problems"],
        serde_json::json!([])
    );

    // Errors are JSON too, on stdout, with the code and the exit status.
    let run = env.run(&["upgrade", "99", "--json"]);
    assert_eq!(run.code(), 2);
    let error = &run.json()["error"];
    assert_eq!(error["code"], "invalid-target");
    assert_eq!(error["exit_code"], 2);
    assert!(error["hint"].as_str().unwrap().contains("head"));
}

#[test]
fn quiet_prints_nothing_on_success() {
    let env = TestEnv::new();
    env.library_set();
    let run = env.ok(&["--quiet", "init"]);
    assert_eq!((run.stdout(), run.stderr()), (String::new(), String::new()));
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
}

#[test]
fn help_documents_the_exit_codes() {
    let env = TestEnv::new();
    let help = env.ok(&["--help"]).stdout();
    for line in [
        "0  success, or nothing to do",
        "1  the operation failed",
        "2  usage error",
        "3  a check found a difference",
        "4  the database is locked by another process",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn the_example_project_initialises_and_round_trips() {
    let env = TestEnv::new();
    env.example_set();
    env.ok(&["init"]);
    let head = versions(&env.db());
    assert!(head.len() >= 4, "{head:?}");
    assert!(tables(&env.db()).contains(&"posts".to_string()));
    env.ok(&["downgrade", "base"]);
    assert_eq!(tables(&env.db()), Vec::<String>::new());
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), head);
}

#[test]
fn current_reads_file_names_only_but_still_checks_them() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade", "2"]);
    // `current` does not read or hash files (that is `status`'s job, and most of the cost)...
    env.write("migrations/V0005__latin1.sql", b"SELECT 'Jos\xe9';\n");
    assert_eq!(
        env.ok(&["current"]).stdout(),
        "2 create_books (3 pending, head is 5)\n"
    );
    assert_eq!(env.run(&["status"]).code(), 1, "status does read it");
    // ...but names, versions and pairing come from the listing and are still checked.
    env.write("migrations/V5__twice.sql", "SELECT 1;\n");
    env.run(&["current"]).assert_error(
        1,
        "error[duplicate-version]: two migration files have version 5: $TMP/migrations/V0005__latin1.sql and $TMP/migrations/V5__twice.sql",
    );
    std::fs::remove_file(env.migrations().join("V5__twice.sql")).unwrap();
    env.write("migrations/notes.sql", "-- scratch\n");
    env.run(&["current"]).assert_error(
        1,
        "error[bad-migration-name]: $TMP/migrations/notes.sql is not named V{n}__{name}.sql or V{n}__{name}.down.sql",
    );
}

/// Bug: after `downgrade base`, a table the migrations do not own (an application's cache) made
/// `upgrade` refuse with "has tables but no migration history" although the (empty) history
/// table was there, while `init` said "already initialised: run `dbtool upgrade`".
#[test]
fn regression_upgrade_after_downgrade_base_with_a_table_the_migrations_do_not_own() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    common::exec(
        &env.db(),
        "CREATE TABLE app_cache(k TEXT PRIMARY KEY, v TEXT);",
    );
    env.ok(&["downgrade", "base"]);
    assert_eq!(tables(&env.db()), vec!["app_cache"]);

    env.ok(&["upgrade", "--dry-run"]);
    env.ok(&["upgrade"]);
    assert_eq!(versions(&env.db()), vec![1, 2, 3, 4]);
    assert_eq!(tables(&env.db()), vec!["app_cache", "authors", "books"]);

    // Without any history table it is still refused.
    let env = TestEnv::new();
    env.library_set();
    common::exec(
        &env.db(),
        "CREATE TABLE app_cache(k TEXT PRIMARY KEY, v TEXT);",
    );
    env.run(&["upgrade", "--dry-run"]).assert_error(
        1,
        "error[unmanaged-database]: database $TMP/content.db has tables (app_cache) but no migration history",
    );
}

#[test]
fn regression_an_unknown_flag_is_a_usage_error_not_a_target() {
    // `upgrade --frobnicate` was taken as the target "--frobnicate" (the positional accepted
    // hyphen values so that `downgrade -1` parses); only negative numbers may look like flags.
    let env = TestEnv::new();
    env.example_set();
    for args in [
        &["upgrade", "--frobnicate"][..],
        &["downgrade", "--frobnicate"][..],
        &["rehearse", "--frobnicate"][..],
    ] {
        let run = env.run(args);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(
            run.stderr().contains("unexpected argument '--frobnicate'"),
            "{}",
            run.stderr()
        );
    }
    env.ok(&["init"]);
    env.ok(&["downgrade", "-1"]);
    let current = env.ok(&["current"]).stdout();
    assert!(current.starts_with("7 "), "{current}");
}

#[test]
fn regression_reset_seed_runs_on_the_exec_write_path_with_foreign_keys_off() {
    // `INSERT OR REPLACE` of a parent deletes the old row: with foreign keys on (as the seed ran
    // before), ON DELETE CASCADE took the children with it.
    let env = TestEnv::new();
    env.migration(
        1,
        "tables",
        "CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE c(id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id) ON DELETE CASCADE);\n",
        Some("DROP TABLE c;\nDROP TABLE p;\n"),
    );
    env.ok(&["init"]);
    env.write(
        "seed.sql",
        "INSERT INTO p VALUES (1, 'a');\nINSERT INTO c VALUES (10, 1);\nINSERT OR REPLACE INTO p VALUES (1, 'renamed');\n",
    );
    env.ok(&["reset", "--yes", "--no-backup", "--seed", "seed.sql"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM c"), 1);
    assert_eq!(text(&env.db(), "SELECT name FROM p"), "renamed");

    // A failing seed is called a seed, with its line, and the database is left as it was.
    env.write(
        "bad.sql",
        "INSERT INTO p VALUES (2, 'b');\n\nINSERT INTO nowhere VALUES (1);\n",
    );
    let before = common::bytes(&env.db());
    let out = env.run(&[
        "--json",
        "reset",
        "--yes",
        "--no-backup",
        "--seed",
        "bad.sql",
    ]);
    assert_eq!(out.code(), 1);
    let json = out.json();
    assert_eq!(json["error"]["code"], "seed-failed", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("seed ") && message.contains("bad.sql failed at line 3"),
        "{message}"
    );
    common::assert_unchanged(&env.db(), &before);
}
