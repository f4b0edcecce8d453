//! Conventions (issue 10): usage errors, error messages that fit their cause, completions and the
//! man page, one help layout, and a `status` that tells the truth.

mod common;

use common::*;

#[test]
fn argument_errors_are_usage_errors_in_the_documented_format() {
    let env = TestEnv::new();
    for (args, message) in [
        (
            &["--busy-timeout", "-1", "status"][..],
            "error[usage]: invalid value '-1' for '--busy-timeout <MS>': invalid digit found in string",
        ),
        (
            &["backup", "--level", "99"],
            "error[usage]: invalid value '99' for '--level <LEVEL>': 99 is not in 1..=19",
        ),
        (
            &["prune", "--keep", "-1"],
            "error[usage]: invalid value '-1' for '--keep <N>': invalid digit found in string",
        ),
        (
            &["status", "--frobnicate"],
            "error[usage]: unexpected argument '--frobnicate' found",
        ),
    ] {
        let run = env.run(args);
        run.assert_error(2, message);
        assert!(run.stderr().contains("\n  hint: "), "{}", run.stderr());
        assert_eq!(run.stdout(), "");

        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let run = env.run(&with_json);
        assert_eq!(run.code(), 2);
        let json = run.json();
        assert_eq!(json["error"]["code"], "usage");
        assert_eq!(json["error"]["exit_code"], 2);
        assert_eq!(
            format!("error[usage]: {}", json["error"]["message"].as_str().unwrap()),
            message
        );
    }
    // --help and --version are not errors
    assert!(env.ok(&["--version"]).stdout().starts_with("dbtool "));
}

#[test]
fn a_prepare_error_names_the_statement_and_line_once() {
    let env = TestEnv::new();
    env.migration(
        1,
        "a",
        "CREATE TABLE a(x);\n\nSELECT * FROM missing_table;\nCREATE TABLE rest_of_the_file(y);\n",
        None,
    );
    env.empty_db();
    let run = env.run(&["upgrade"]);
    run.assert_error(
        1,
        "error[migration-failed]: migration $TMP/migrations/V0001__a.sql failed at line 3: SELECT * FROM missing_table;",
    );
    let err = run.stderr();
    assert!(
        err.contains("  caused by: no such table: missing_table\n"),
        "{err}"
    );
    assert!(!err.contains("at offset"), "{err}");
    assert!(
        !err.contains("rest_of_the_file"),
        "the rest of the file is not repeated:\n{err}"
    );
}

#[test]
fn completions_and_man_page() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = env.ok(&["completions", shell]).stdout();
        assert!(
            out.contains("upgrade") && out.contains("busy-timeout"),
            "{shell}: {out}"
        );
    }
    assert_eq!(env.run(&["completions", "tcsh"]).code(), 2);
    let man = env.ok(&["man"]).stdout();
    assert!(man.contains(".TH dbtool 1"), "{man}");
    assert!(man.contains("upgrade"), "{man}");
}

#[test]
fn every_command_shows_global_options_under_their_own_heading() {
    let env = TestEnv::new();
    let help = env.ok(&["--help"]).stdout();
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 20, "{commands:?}");
    for command in &commands {
        let help = env.ok(&[command, "--help"]).stdout();
        let heading = help
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{command}:\n{help}"));
        let database = help.find("--database <PATH>").unwrap();
        assert!(
            database > heading,
            "{command}: --database under Global options\n{help}"
        );
        assert!(help.contains("\nUsage: dbtool "), "{command}");
    }
    assert!(
        help_text(&env).contains("--allow-lossy"),
        "exit 5 names --allow-lossy"
    );
}

fn help_text(env: &TestEnv) -> String {
    env.ok(&["--help"]).stdout()
}

#[test]
fn backup_to_an_existing_file_does_not_hint_at_free_space() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    env.write("taken.zst", "x");
    let run = env.run(&["backup", "-o", "taken.zst"]);
    assert_eq!(run.code(), 1);
    let err = run.stderr();
    assert!(!err.contains("free space"), "{err}");
    assert!(
        err.contains("hint: backups never overwrite a file"),
        "{err}"
    );
}

#[test]
fn status_tells_the_truth() {
    let env = TestEnv::new();
    env.library_set();
    // tables but no history: the problem upgrade would refuse with
    exec(&env.db(), "CREATE TABLE legacy(x)");
    let run = env.run(&["status", "--exit-code"]);
    assert_eq!(run.code(), 3);
    assert!(
        run.stdout().contains("problem[unmanaged-database]: database $TMP/content.db has tables (legacy) but no migration history"),
        "{}",
        run.stdout()
    );
    assert!(!run.stdout().contains("up to date"), "{}", run.stdout());
    std::fs::remove_file(env.db()).unwrap();

    // a database newer than the files is not "up to date"
    env.ok(&["init"]);
    std::fs::remove_file(env.migrations().join("V0004__add_isbn.sql")).unwrap();
    std::fs::remove_file(env.migrations().join("V0004__add_isbn.down.sql")).unwrap();
    let run = env.run(&["status", "--exit-code"]);
    assert_eq!(run.code(), 3);
    let out = run.stdout();
    assert!(
        out.starts_with(
            "content.db: at version 4, 0 pending, 1 problem(s) that stop `dbtool upgrade`:"
        ),
        "{out}"
    );
    assert!(out.contains("problem[database-ahead]"), "{out}");
    assert!(!out.contains("up to date"), "{out}");

    // downgrade to a version above the current one that does not exist: no `upgrade 9` advice
    env.library_set();
    env.ok(&["downgrade", "2"]);
    let run = env.run(&["downgrade", "9"]);
    assert_eq!(run.code(), 2);
    assert!(
        !run.stderr().contains("dbtool upgrade 9"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("there is no migration with version 9"),
        "{}",
        run.stderr()
    );

    // history times are labelled UTC
    assert!(env.ok(&["history"]).stdout().contains("applied at (UTC)"));
}

#[test]
fn drift_diff_prints_removed_lines_before_added_ones() {
    let env = TestEnv::new();
    env.migration(1, "t", "CREATE TABLE t(a INTEGER, b TEXT);\n", None);
    env.ok(&["init"]);
    exec(&env.db(), "DROP TABLE t; CREATE TABLE t(a INTEGER, c TEXT)");
    let run = env.run(&["check"]);
    assert_eq!(run.code(), 3);
    let out = run.stdout();
    let body = &out[out.find("@@ table t @@").expect(&out)..];
    let minus = body.find("\n    -").expect(&out);
    let plus = body.find("\n    +").expect(&out);
    assert!(minus < plus, "{out}");
}
