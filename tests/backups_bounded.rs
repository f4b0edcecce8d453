//! Backups stay bounded in the development loop (issue 10): default retention, `prune` flags,
//! `--dry-run`, backup folders of databases that are gone.

mod common;

use common::*;

fn backup_files(env: &TestEnv) -> Vec<String> {
    let json = env.ok(&["--json", "backups"]).json();
    json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file_name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn thirty_resets_with_default_settings_leave_ten_backups() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    for _ in 0..30 {
        env.ok(&["reset", "--yes"]);
    }
    let files = backup_files(&env);
    assert_eq!(files.len(), 10, "{files:#?}");
    // the newest is kept: the last reset's backup is listed first
    let newest = &files[0];
    assert!(newest.contains("before-reset"), "{newest}");
    let config = env.ok(&["config"]).stdout();
    assert!(
        config.contains("retention:    the newest 10 backups per database  [default]"),
        "{config}"
    );
}

#[test]
fn prune_flags_replace_only_their_own_setting_and_dry_run_deletes_nothing() {
    let env = TestEnv::new();
    env.library_set();
    env.write("dbtool.toml", "[backup]\nkeep = 2\nkeep_days = 1\n");
    env.ok(&["init"]);
    for _ in 0..5 {
        env.ok(&["backup"]);
    }
    // keep_days = 1 keeps all five (all younger than a day): keep alone never prunes them
    assert_eq!(backup_files(&env).len(), 5);
    let run = env.ok(&["prune", "--keep", "1"]);
    assert!(
        run.stdout().starts_with("0 deleted, 5 kept"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("keeping the newest backup and every backup younger than 1 days"),
        "{}",
        run.stdout()
    );
    // --keep-days 0 with the configured keep = 2: the dry run lists three, deletes nothing
    let run = env.ok(&["prune", "--keep-days", "0", "--dry-run"]);
    assert_eq!(
        run.stdout().matches("would delete ").count(),
        3,
        "{}",
        run.stdout()
    );
    assert_eq!(backup_files(&env).len(), 5);
    let json = env
        .ok(&["--json", "prune", "--keep-days", "0", "--dry-run"])
        .json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["deleted"].as_array().unwrap().len(), 3);
    let run = env.ok(&["prune", "--keep-days", "0"]);
    assert!(
        run.stdout().contains("3 deleted, 2 kept"),
        "{}",
        run.stdout()
    );
    assert_eq!(backup_files(&env).len(), 2);
    let config = env.ok(&["config"]).stdout();
    assert!(
        config.contains("retention:    the newest 2 backups and every backup younger than 1 days"),
        "{config}"
    );
}

#[test]
fn backups_all_marks_orphans_and_prune_orphans_removes_only_those() {
    let env = TestEnv::new();
    env.library_set();
    for db in ["keep.db", "gone.db"] {
        env.ok(&["--database", db, "init"]);
        env.ok(&["--database", db, "backup"]);
    }
    std::fs::remove_file(env.root().join("gone.db")).unwrap();
    let run = env.ok(&["backups", "--all"]);
    let out = run.stdout();
    let gone = out.lines().find(|l| l.contains("gone.db")).expect(&out);
    assert!(gone.ends_with("$TMP/gone.db  (gone: orphaned)"), "{out}");
    let kept = out.lines().find(|l| l.contains("keep.db")).expect(&out);
    assert!(!kept.contains("orphaned"), "{out}");
    let json = env.ok(&["--json", "backups", "--all"]).json();
    let folders = json["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 2);
    let orphan = folders
        .iter()
        .find(|f| f["database_exists"] == false)
        .unwrap();
    let orphan_dir = std::path::PathBuf::from(orphan["path"].as_str().unwrap());

    let run = env.ok(&["prune", "--orphans", "--dry-run"]);
    assert!(
        run.stdout().starts_with("would delete 1 backup(s)"),
        "{}",
        run.stdout()
    );
    assert!(orphan_dir.exists());
    let run = env.ok(&["prune", "--orphans"]);
    assert!(
        run.stdout().starts_with("deleting 1 backup(s)"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("gone.db no longer exists"),
        "{}",
        run.stdout()
    );
    assert!(!orphan_dir.exists(), "the orphaned folder is removed");
    let run = env.ok(&["--database", "keep.db", "backups"]);
    assert!(run.stdout().contains("-manual.db.zst"), "{}", run.stdout());
    assert!(env
        .ok(&["prune", "--orphans"])
        .stdout()
        .starts_with("no orphaned backup folders"));
}

#[test]
fn a_file_that_is_not_a_database_gets_no_backup_folder() {
    let env = TestEnv::new();
    env.write(
        "notes.db",
        "these are my notes, not a database\n".repeat(200),
    );
    let run = env.run(&["--database", "notes.db", "backup"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.error_line().starts_with("error[not-a-database]"),
        "{}",
        run.stderr()
    );
    let backups = env.root().join("home/.local/share/dbtool/backups");
    let folders: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(folders.is_empty(), "{folders:?}");
}
