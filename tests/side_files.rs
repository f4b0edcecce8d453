//! The files dbtool keeps beside a database and in its backup folder: the database file itself
//! keeps its identity through `reset`, temporary files never outlive a run (and a killed run's are
//! reported, then removed by the next command that writes), nothing dbtool creates follows a
//! symbolic link, and the binary has no test hook.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{exec, int, TestEnv, DBTOOL};

/// dbtool's temporary files (and their side files) in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dbtool-") || n.contains(".dbtool-reset"))
        .collect();
    names.sort();
    names
}

/// Defect 3: `reset` renamed a new file over the database, so a 0600 database owned by the
/// application's user became 0644 and owned by whoever ran reset (and an application holding the
/// file open kept writing to the unlinked one). Now the new content is written into the same file.
#[test]
fn defect_3_reset_keeps_the_database_files_mode_owner_and_inode() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    let db = env.db();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Only root can give the file away; elsewhere the mode and inode still tell.
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root {
        std::os::unix::fs::chown(&db, Some(4242), Some(4343)).unwrap();
    }
    let before = std::fs::metadata(&db).unwrap();
    env.write("seed.sql", "INSERT INTO authors VALUES (7, 'Seeded');\n");

    env.ok(&["reset", "--yes", "--seed", "seed.sql"]);

    let after = std::fs::metadata(&db).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o600, "mode");
    assert_eq!(
        after.ino(),
        before.ino(),
        "the database is still the same file"
    );
    assert_eq!(
        (after.uid(), after.gid()),
        (before.uid(), before.gid()),
        "owner"
    );
    assert_eq!(
        int(&db, "SELECT count(*) FROM authors WHERE name = 'Seeded'"),
        1
    );
    assert_eq!(temp_files(env.root()), Vec::<String>::new());
}

/// Defect 4: every restore of a WAL-mode database left `.dbtool-restore-<pid>-0.tmp-wal` and
/// `-shm` beside it (SQLite creates them when it opens the WAL-mode copy, even to read).
#[test]
fn defect_4_restoring_a_wal_database_leaves_no_temporary_file() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    exec(&env.db(), "PRAGMA journal_mode=WAL;");
    env.ok(&["backup"]);
    exec(&env.db(), "DELETE FROM books;");
    env.ok(&["restore", "--yes"]);
    assert_eq!(int(&env.db(), "SELECT count(*) FROM books"), 2);
    assert_eq!(temp_files(env.root()), Vec::<String>::new());
}

/// Defect 4: a killed restore or reset left a full copy of the database beside it, and a killed
/// backup its temporary file in the backup folder, until the next restore/reset/backup. Now
/// `inspect` and `check` report them (code `leftover-temp-files`) and the next command that
/// writes removes them, saying so.
#[test]
fn defect_4_a_killed_runs_leftovers_are_reported_then_removed_by_the_next_write() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    let backups = env.root().join("backups");
    std::fs::create_dir(&backups).unwrap();
    // What a killed run leaves (its pid cannot exist: beyond any pid_max).
    let planted = [
        env.root().join(".dbtool-restore-4000000000-0.tmp"),
        env.root().join(".dbtool-reset-4000000001-0.tmp"),
        env.root().join(".dbtool-reset-4000000001-0.tmp-journal"),
        backups.join(".dbtool-backup-4000000002-0.tmp"),
    ];
    for path in &planted {
        std::fs::write(path, b"a killed run's copy").unwrap();
    }
    let with_dir = |args: &[&str]| {
        let mut all = vec!["--backup-dir", "backups"];
        all.extend_from_slice(args);
        env.run(&all)
    };

    let inspect = with_dir(&["--json", "inspect"]);
    assert_eq!(inspect.code(), 0, "{}", inspect.stderr());
    assert_eq!(
        inspect.json()["leftovers"].as_array().map(Vec::len),
        Some(4),
        "{}",
        inspect.stdout()
    );
    let text = with_dir(&["inspect"]).stdout();
    assert!(
        text.contains("[leftover-temp-files]") && text.contains(".dbtool-restore-4000000000-0.tmp"),
        "{text}"
    );
    let check = with_dir(&["--json", "check"]);
    assert_eq!(check.code(), 3, "{}", check.stdout());
    let codes: Vec<String> = check.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, ["leftover-temp-files"]);
    for path in &planted {
        assert!(path.exists(), "reading commands remove nothing");
    }

    // A command that writes, without a backup of its own, cleans both folders.
    env.write("fix.sql", "UPDATE books SET title = title || '!';\n");
    let run = with_dir(&["exec", "--no-backup", "fix.sql"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains(
            "removed .dbtool-restore-4000000000-0.tmp (left by a dbtool run that was killed)"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(temp_files(env.root()), Vec::<String>::new());
    assert_eq!(temp_files(&backups), Vec::<String>::new());
    assert_eq!(with_dir(&["check"]).code(), 0);
}

/// Defect 5: the run lock was opened with O_CREAT through whatever sat at its path, so a symbolic
/// link planted at `<db>.dbtool-lock` got its target created. Now no file dbtool creates follows a
/// link, and the error names the path.
#[test]
fn defect_5_a_symlink_planted_at_the_lock_path_is_not_followed() {
    let env = TestEnv::new();
    env.migration(
        1,
        "tables",
        "CREATE TABLE t(id INTEGER PRIMARY KEY);\n",
        None,
    );
    // A no-transaction migration makes upgrade take the run lock.
    env.migration(
        2,
        "wal",
        "-- dbtool:no-transaction\nPRAGMA journal_mode=WAL;\n",
        None,
    );
    let victim = env.root().join("victim");
    let lock = env.root().join("content.db.dbtool-lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();

    env.empty_db(); // `upgrade` never creates the database
    let run = env.run(&["upgrade"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains(
            "error[symlink-refused]: refusing to follow the symbolic link at $TMP/content.db.dbtool-lock"
        ),
        "{}",
        run.stderr()
    );
    assert!(!victim.exists(), "the link's target was created");
    assert!(std::fs::symlink_metadata(&lock)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Defect 5 for backups: `--output` pointing at a planted link is refused; the target is not
/// created.
#[test]
fn defect_5_a_symlink_planted_at_a_backup_path_is_not_followed() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    let victim = env.root().join("victim.db.zst");
    let out = env.root().join("out.db.zst");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let run = env.run(&["backup", "--output", "out.db.zst"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(!victim.exists(), "the link's target was created");
    assert_eq!(temp_files(env.root()), Vec::<String>::new());
}

/// Defect 7: the shipped binary read `DBTOOL_TEST_CRASH` and aborted half-way through a backup
/// or restore. The hook is gone (the crash tests kill the real binary with strace instead).
#[test]
fn defect_7_the_binary_has_no_crash_hook() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db(); // `upgrade` never creates the database
    env.ok(&["upgrade"]);
    for phase in ["backup", "read-back"] {
        let out = env
            .command()
            .env("DBTOOL_TEST_CRASH", phase)
            .args(["backup"])
            .output()
            .unwrap();
        assert!(out.status.success(), "DBTOOL_TEST_CRASH={phase}: {out:?}");
    }
    // The name of the variable must not be in the binary at all (a test build's is the same code).
    let binary = std::fs::read(DBTOOL).unwrap();
    let needle = b"DBTOOL_TEST_CRASH";
    let found = binary
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == needle[0])
        .any(|(i, _)| binary[i..].starts_with(needle));
    assert!(!found, "the binary still mentions DBTOOL_TEST_CRASH");
}
