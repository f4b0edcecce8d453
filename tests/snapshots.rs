//! Snapshots of every command's human and JSON output (issue 10: one JSON vocabulary, output that
//! matters is reviewed as a diff). Temporary paths, times, durations, sizes and hashes are
//! normalised, so a snapshot changes only when what dbtool says changes.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test --test snapshots`, then review the
//! diff of `tests/snapshots/` (or use `cargo insta review`).

mod common;

use common::*;

/// (pattern, replacement) applied to every snapshot.
const FILTERS: &[(&str, &str)] = &[
    // backup folders end in a hash of the database's full path
    (r"(backups/\w+)-[0-9a-f]{8}\b", "$1-[HASH]"),
    // backup file names carry the time
    (r"\d{8}T\d{6}Z", "[STAMP]"),
    (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[TIME]",
    ),
    (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( UTC)?", "[TIME]"),
    (r"\b\d{4}-\d\d-\d\d\b", "[DATE]"),
    (r#""(\w+_ms)": [0-9.e-]+"#, r#""$1": [MS]"#),
    (r" +\d+\.\d+ ms", " [MS] ms"),
    (r"\d+(\.\d+)? ?s\b", "[SECS]"),
    (
        r#""(size|size_bytes|copy_bytes|image_size|wal_bytes|page_count)": \d+"#,
        r#""$1": [N]"#,
    ),
    (r"\d+\.\d (KiB|MiB|GiB)", "[SIZE]"),
    (r#""ratio": [0-9.]+"#, r#""ratio": [RATIO]"#),
    (r"\d+\.\dx", "[RATIO]x"),
    (r"[0-9a-f]{64}", "[SHA256]"),
    (r#""xxh3_128": "[0-9a-f]{32}""#, r#""xxh3_128": "[XXH3]""#),
    (r#""host": "[^"]*""#, r#""host": "[HOST]""#),
    (
        r#""sqlite_version": "[^"]*""#,
        r#""sqlite_version": "[SQLITE]""#,
    ),
    (r"SQLite \d+\.\d+\.\d+", "SQLite [SQLITE]"),
    (
        r#""dbtool_version": "[^"]*""#,
        r#""dbtool_version": "[VERSION]""#,
    ),
];

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in FILTERS {
        settings.add_filter(pattern, *replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

/// `dbtool ARGS` and `dbtool --json ARGS`, both outputs and exit statuses, in one snapshot.
fn snap(env: &TestEnv, name: &str, args: &[&str]) {
    let mut text = String::new();
    for json in [false, true] {
        let mut all: Vec<&str> = Vec::new();
        if json {
            all.push("--json");
        }
        all.extend_from_slice(args);
        let run = env.run(&all);
        text.push_str(&format!("$ dbtool {}\n", all.join(" ")));
        text.push_str(&format!("exit {}\n", run.code()));
        let (stdout, stderr) = (run.stdout(), run.stderr());
        if !stdout.is_empty() {
            text.push_str("--- stdout\n");
            text.push_str(&stdout);
        }
        if !stderr.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&stderr);
        }
        if json && !stdout.is_empty() {
            let value: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{name}: --json stdout is not JSON ({e}):\n{stdout}"));
            assert!(value.is_object(), "{name}: JSON output is an object");
        }
        text.push('\n');
    }
    settings().bind(|| insta::assert_snapshot!(name, text));
}

/// A command whose two runs would differ (it changes the database): human output only, then the
/// JSON of a second scenario step.
fn snap_once(env: &TestEnv, name: &str, args: &[&str]) {
    let run = env.run(args);
    let mut text = format!("$ dbtool {}\nexit {}\n", args.join(" "), run.code());
    let (stdout, stderr) = (run.stdout(), run.stderr());
    if !stdout.is_empty() {
        text.push_str("--- stdout\n");
        text.push_str(&stdout);
    }
    if !stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&stderr);
    }
    if args.first() == Some(&"--json") {
        let value: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{stdout}"));
        assert!(value.is_object(), "{name}: JSON output is an object");
    }
    settings().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn migration_commands() {
    let env = TestEnv::new();
    env.library_set();
    snap(&env, "status_missing_database", &["status"]);
    snap(&env, "upgrade_missing_database", &["upgrade"]);
    env.empty_db();
    snap(&env, "upgrade_dry_run", &["upgrade", "2", "--dry-run"]);
    snap(&env, "upgrade_sql", &["upgrade", "2", "--sql"]);
    snap_once(&env, "upgrade_2", &["upgrade", "2"]);
    snap(&env, "status_pending", &["status"]);
    snap(&env, "current", &["current"]);
    snap(&env, "history", &["history", "--verbose"]);
    snap_once(&env, "upgrade_json", &["--json", "upgrade"]);
    snap(&env, "init_already", &["init"]);
    snap(&env, "downgrade_dry_run", &["downgrade", "-1", "--dry-run"]);
    snap_once(&env, "downgrade_json", &["--json", "downgrade", "-1"]);
    snap_once(&env, "stamp_json", &["--json", "stamp", "head"]);
    snap(&env, "redo_dry_run", &["redo", "--dry-run"]);
    snap(&env, "downgrade_bad_target", &["downgrade", "9"]);
    snap(&env, "usage_error", &["prune", "--keep", "-1"]);
    snap(&env, "config", &["config"]);
    snap(&env, "create", &["create", "-m", "Add tags table"]);
    snap(&env, "empty_migration_warning", &["upgrade", "--dry-run"]);
}

#[test]
fn project_start() {
    let env = TestEnv::new();
    let dir = env.root().join("shop");
    std::fs::create_dir(&dir).unwrap();
    let run = env
        .command()
        .current_dir(&dir)
        .args(["init"])
        .output()
        .unwrap();
    let text = format!(
        "$ dbtool init\nexit {}\n--- stdout\n{}",
        run.status.code().unwrap(),
        env.normalise(&String::from_utf8_lossy(&run.stdout))
    );
    settings().bind(|| insta::assert_snapshot!("init_new_project", text));
    let run = env
        .command()
        .current_dir(dir.join("migrations"))
        .args(["--json", "status"])
        .output()
        .unwrap();
    let text = env.normalise(&String::from_utf8_lossy(&run.stdout));
    settings().bind(|| insta::assert_snapshot!("status_new_project_json", text));
}

#[test]
fn check_commands() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    exec(&env.db(), "CREATE TABLE audit(x)");
    snap(&env, "check_drift", &["check"]);
    snap(&env, "verify", &["verify"]);
    snap(&env, "inspect", &["inspect"]);
    env.write(
        "migrations/V0005__tags.sql",
        "CREATE TABLE tags(id INTEGER PRIMARY KEY);\n",
    );
    env.write("migrations/V0005__tags.down.sql", "DROP TABLE tags;\n");
    snap(&env, "rehearse", &["rehearse"]);
    env.write("fix.sql", "UPDATE books SET isbn = 'x' WHERE id = 1;\n");
    snap(&env, "exec_dry_run", &["exec", "fix.sql", "--dry-run"]);
}

#[test]
fn backup_commands() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    snap_once(&env, "backup", &["backup"]);
    snap_once(
        &env,
        "backup_json",
        &["--json", "backup", "--reason", "second"],
    );
    snap(&env, "backups", &["backups"]);
    snap(&env, "backups_verify", &["backups", "verify"]);
    snap(&env, "backups_all", &["backups", "--all"]);
    snap(
        &env,
        "prune_dry_run",
        &["prune", "--keep", "1", "--dry-run"],
    );
    snap_once(
        &env,
        "restore_json",
        &["--json", "restore", "--yes", "--no-backup"],
    );
    snap_once(&env, "reset", &["reset", "--yes", "--no-backup"]);
    snap_once(
        &env,
        "reset_json",
        &["--json", "reset", "--yes", "--no-backup"],
    );
    snap(
        &env,
        "prune_orphans_none",
        &["prune", "--orphans", "--dry-run"],
    );
}
