//! The backup commands driven through the real binary on real SQLite files: round trips,
//! concurrent writers, stale -wal files, full disks, locks, and the
//! automatic backup before every destructive command.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};

use assert_cmd::Command;
use rusqlite::Connection;

/// A hermetic project folder: migrations copied from the repository, HOME inside the temp dir
/// (so the platform data dir is too), no DATABASE_URL and friends from the outer environment.
struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let migrations = tmp.path().join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        for entry in
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")).unwrap()
        {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), migrations.join(entry.file_name())).unwrap();
        }
        std::fs::create_dir(tmp.path().join("home")).unwrap();
        Env { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn db(&self) -> PathBuf {
        self.path("content.db")
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("dbtool").unwrap();
        cmd.current_dir(self.tmp.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"));
        cmd
    }

    /// Run dbtool with `args`; return the output (not asserting success).
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dbtool {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn init_with_data(&self, posts: usize) {
        self.ok(&["init"]);
        let conn = Connection::open(self.db()).unwrap();
        conn.execute_batch(
            "INSERT INTO users(linkedin_sub, name, full_name, email) VALUES ('s1', 'Ann', 'Ann A', 'a@x');",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..posts {
            tx.execute(
                "INSERT INTO posts(content, status, user_id) VALUES (?1, 'draft', 1)",
                [format!(
                    "post {i}: {}",
                    "some words that compress ".repeat(1 + i % 30)
                )],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    /// `(reason, path)` of every listed backup, newest first.
    fn backups(&self) -> Vec<(String, PathBuf)> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["backups", "--json"])).unwrap();
        json["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["meta"]["reason"].as_str().unwrap_or("?").to_string(),
                    PathBuf::from(b["path"].as_str().unwrap()),
                )
            })
            .collect()
    }

    fn backup_dir(&self) -> PathBuf {
        let json: serde_json::Value =
            serde_json::from_str(&self.ok(&["backups", "--json"])).unwrap();
        PathBuf::from(json["dir"]["path"].as_str().unwrap())
    }
}

/// `sqlite3 DB .dump`, the user-visible content of a database.
fn dump(db: &Path) -> String {
    let out = StdCommand::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn code_of(out: &Output) -> String {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON error: {}", String::from_utf8_lossy(&out.stderr)));
    json["error"]["code"].as_str().unwrap().to_string()
}

/// A `sqlite3` process fed from a pipe; `wait_for` reads its stdout up to a marker line.
struct Sqlite3 {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Sqlite3 {
    fn spawn(db: &Path) -> Sqlite3 {
        let mut child = StdCommand::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Sqlite3 { child, stdout }
    }

    fn send(&mut self, sql: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(sql.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn wait_for(&mut self, marker: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "sqlite3 ended before {marker}"
            );
            if line.trim() == marker {
                return;
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn round_trip_restore_gives_an_identical_dump_and_zstd_d_gives_plain_sqlite() {
    let env = Env::new();
    env.init_with_data(300);
    let before = dump(&env.db());
    let out = env.ok(&["backup", "--reason", "round trip", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let file = PathBuf::from(report["path"].as_str().unwrap());
    let current: serde_json::Value = serde_json::from_str(&env.ok(&["current", "--json"])).unwrap();
    let version = current["current_version"].as_i64().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.ends_with(&format!("-v{version}-round-trip.db.zst")),
        "{name}"
    );
    assert_eq!(report["verified"], true);

    Connection::open(env.db())
        .unwrap()
        .execute_batch("DELETE FROM posts WHERE id % 2 = 0; UPDATE users SET name = 'changed';")
        .unwrap();
    assert_ne!(dump(&env.db()), before);

    env.ok(&["restore", "--yes", file.to_str().unwrap()]);
    assert_eq!(dump(&env.db()), before);

    // zstd -d on the backup gives a plain SQLite file that passes integrity_check.
    let plain = env.path("plain.db");
    let status = StdCommand::new("zstd")
        .args(["-d", "-q", "-f"])
        .arg(&file)
        .arg("-o")
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let check = StdCommand::new("sqlite3")
        .arg(&plain)
        .arg("PRAGMA integrity_check")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    assert_eq!(dump(&plain), before);
}

#[test]
fn backup_while_another_process_writes_in_wal_mode() {
    let env = Env::new();
    env.init_with_data(2000);
    Connection::open(env.db())
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE w_parent(id INTEGER PRIMARY KEY, body TEXT);
             CREATE TABLE w_child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES w_parent(id));",
        )
        .unwrap();
    let mut writer = Sqlite3::spawn(&env.db());
    let mut script = String::from(".timeout 30000\n");
    for i in 0..20000 {
        script.push_str(
            "BEGIN IMMEDIATE; INSERT INTO w_parent(body) VALUES (hex(randomblob(300)));
             INSERT INTO w_child(parent_id) VALUES (last_insert_rowid()); COMMIT;\n",
        );
        if i == 0 {
            script.push_str(".print started\n");
        }
    }
    writer.send(&script);
    writer.wait_for("started");
    let out = env.ok(&["--busy-timeout", "30000", "backup", "--json"]);
    writer.kill();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();

    let copy = env.path("copy.db");
    env.ok(&[
        "--database",
        copy.to_str().unwrap(),
        "restore",
        "--yes",
        "--force",
        report["path"].as_str().unwrap(),
    ]);
    let conn = Connection::open(&copy).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0);
    // Each writer transaction adds one parent and one child: a consistent snapshot has a
    // gap-free prefix with as many children as parents.
    let (parents, children, max_id): (i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM w_parent), (SELECT count(*) FROM w_child), (SELECT max(id) FROM w_parent)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(parents >= 1);
    assert_eq!(parents, children);
    assert_eq!(Some(parents), max_id);
}

#[test]
fn a_stale_wal_left_by_a_killed_process_does_not_come_back_after_restore() {
    let env = Env::new();
    env.init_with_data(100);
    Connection::open(env.db())
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL")
        .unwrap();
    env.ok(&["backup"]);
    let expected = dump(&env.db());
    // A process writes in WAL mode and is killed before it checkpoints.
    let mut writer = Sqlite3::spawn(&env.db());
    writer.send("PRAGMA wal_autocheckpoint=0;\nDELETE FROM posts;\nINSERT INTO users(linkedin_sub, name, full_name) VALUES ('ghost', 'Ghost', 'G');\n.print written\n");
    writer.wait_for("written");
    writer.kill();
    // The killed process's changes are committed in the -wal (read without checkpointing it).
    let probe = Connection::open(env.db()).unwrap();
    probe
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    let ghosts: i64 = probe
        .query_row("SELECT count(*) FROM users WHERE name = 'Ghost'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ghosts, 1);
    drop(probe);
    assert!(std::fs::metadata(env.path("content.db-wal")).unwrap().len() > 0);

    env.ok(&["restore", "--yes", "--no-backup"]);
    assert_eq!(dump(&env.db()), expected);
    let conn = Connection::open(env.db()).unwrap();
    let ghosts: i64 = conn
        .query_row("SELECT count(*) FROM users WHERE name = 'Ghost'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ghosts, 0);
}

#[test]
fn a_full_disk_stops_the_backup_and_the_upgrade_it_guards() {
    let env = Env::new();
    env.init_with_data(10);
    // Incompressible rows so the backup is larger than the file-size limit.
    Connection::open(env.db())
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO posts(content, user_id) SELECT hex(randomblob(2000)), 1 FROM n;",
        )
        .unwrap();
    // Roll the schema back one step so an upgrade is pending.
    env.ok(&["downgrade", "-1", "--no-backup"]);
    let before = std::fs::read(env.db()).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("dbtool");
    for args in ["backup", "upgrade"] {
        // SIGXFSZ ignored (inherited across exec) so writes past the limit fail with EFBIG,
        // as on a full disk, instead of killing the process.
        let out = StdCommand::new("bash")
            .current_dir(env.tmp.path())
            .env("HOME", env.path("home"))
            .env("XDG_DATA_HOME", env.path("home/.local/share"))
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 200; exec '{}' --json {args}",
                bin.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(code_of(&out), "backup-write-failed", "{args}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("full"),
            "{args}: the hint should mention a full disk: {text}"
        );
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            before,
            "{args}: database changed"
        );
        assert!(
            env.backups().is_empty(),
            "{args}: a partial backup is listed"
        );
    }
}

#[test]
fn unusable_backup_folder_and_database_paths_are_clear_errors() {
    let env = Env::new();
    env.init_with_data(5);
    std::fs::write(env.path("a-file"), b"x").unwrap();
    let out = env.run(&["--json", "--backup-dir", "a-file/backups", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(code_of(&out), "backup-dir-unusable");

    // An upgrade whose automatic backup cannot be written does not start.
    env.ok(&["downgrade", "-1", "--no-backup"]);
    let before = std::fs::read(env.db()).unwrap();
    let out = env.run(&["--json", "--backup-dir", "a-file/backups", "upgrade"]);
    assert_eq!(code_of(&out), "backup-dir-unusable");
    assert_eq!(std::fs::read(env.db()).unwrap(), before);

    std::fs::create_dir(env.path("folder.db")).unwrap();
    let out = env.run(&["--json", "--database", "folder.db", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(code_of(&out), "not-a-database");

    let out = env.run(&["--json", "--database", "missing.db", "backup"]);
    assert_eq!(code_of(&out), "database-missing");
}

#[test]
fn a_database_locked_exclusively_by_another_process() {
    let env = Env::new();
    env.init_with_data(5);
    let before = std::fs::read(env.db()).unwrap();
    let mut holder = Sqlite3::spawn(&env.db());
    holder.send("PRAGMA locking_mode=EXCLUSIVE;\nBEGIN EXCLUSIVE;\nSELECT count(*) FROM posts;\n.print locked\n");
    holder.wait_for("locked");
    let out = env.run(&["--json", "--busy-timeout", "100", "backup"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(code_of(&out), "database-locked");
    holder.kill();
    assert_eq!(std::fs::read(env.db()).unwrap(), before);
    assert!(env.backups().is_empty());
}

#[test]
fn damaged_or_foreign_backups_are_refused_and_the_database_is_unchanged() {
    let env = Env::new();
    env.init_with_data(200);
    let out = env.ok(&["backup", "--json"]);
    let file = PathBuf::from(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["path"]
            .as_str()
            .unwrap(),
    );
    let bytes = std::fs::read(&file).unwrap();
    Connection::open(env.db())
        .unwrap()
        .execute("DELETE FROM posts", [])
        .unwrap();
    let before = std::fs::read(env.db()).unwrap();

    let truncated = env.path("truncated.db.zst");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let plain = env.path("plain.db.zst");
    std::fs::write(&plain, zstd::encode_all(&before[..], 3).unwrap()).unwrap();
    for (file, code) in [(&truncated, "backup-corrupt"), (&plain, "not-a-backup")] {
        let out = env.run(&["--json", "restore", "--yes", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(code_of(&out), code);
        assert_eq!(std::fs::read(env.db()).unwrap(), before);
    }
    // backups verify reports the damaged one and exits 3.
    std::fs::copy(
        &truncated,
        env.backup_dir()
            .join("content-20000101T000000Z-v1-bad.db.zst"),
    )
    .unwrap();
    let out = env.run(&["backups", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let oks: Vec<bool> = results["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [true, false]);

    // A backup of another database needs --force.
    let other = env.path("other.db");
    std::fs::copy(env.db(), &other).unwrap();
    let out = env.ok(&["--database", other.to_str().unwrap(), "backup", "--json"]);
    let other_backup = serde_json::from_str::<serde_json::Value>(&out).unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.run(&["--json", "restore", "--yes", &other_backup]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(code_of(&out), "backup-different-database");
    assert_eq!(std::fs::read(env.db()).unwrap(), before);
    env.ok(&["restore", "--yes", "--force", &other_backup]);
}

#[test]
fn restore_and_reset_refuse_without_a_terminal_unless_yes() {
    let env = Env::new();
    env.init_with_data(20);
    env.ok(&["backup"]);
    let before = std::fs::read(env.db()).unwrap();
    for args in [&["--json", "restore"][..], &["--json", "reset"][..]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(5), "{args:?}");
        assert_eq!(code_of(&out), "needs-confirmation");
        assert_eq!(std::fs::read(env.db()).unwrap(), before);
    }
    assert_eq!(env.backups().len(), 1, "a refused command takes no backup");
}

#[test]
fn every_automatic_backup_is_taken_verified_and_restorable() {
    for wal in [false, true] {
        automatic_backups(wal);
    }
}

fn automatic_backups(wal: bool) {
    let env = Env::new();
    env.init_with_data(50);
    if wal {
        Connection::open(env.db())
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL")
            .unwrap();
    }
    let seed = env.path("seed.sql");
    std::fs::write(
        &seed,
        "INSERT INTO users(linkedin_sub, name, full_name) VALUES ('seeded', 'Seed', 'Seed S');",
    )
    .unwrap();

    // Each destructive command, with the dump just before it.
    let mut expected = Vec::new();
    std::fs::write(env.path("fix.sql"), "UPDATE users SET name = 'fixed';").unwrap();
    let steps: [(&str, &[&str]); 7] = [
        ("before-downgrade", &["downgrade", "-2"]),
        ("before-upgrade", &["upgrade"]),
        ("before-stamp", &["stamp", "4"]),
        ("before-restore", &["restore", "--yes"]),
        ("before-exec", &["exec", "fix.sql"]),
        (
            "before-rebuild",
            &["rebuild", "posts", "--default", "platform='x'"],
        ),
        ("before-reset", &["reset", "--yes", "--seed", "seed.sql"]),
    ];
    for (reason, args) in steps {
        Connection::open(env.db())
            .unwrap()
            .execute(
                "INSERT INTO users(linkedin_sub, name, full_name) VALUES (?1, 'x', 'x')",
                [reason],
            )
            .unwrap();
        expected.push((reason, dump(&env.db())));
        let out = env.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("backup: "),
            "{args:?} did not report its backup: {stderr}"
        );
    }
    let seeded: i64 = Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM users WHERE linkedin_sub = 'seeded'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seeded, 1);

    let backups = env.backups();
    let verify = env.run(&["backups", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    for (reason, dump_before) in expected {
        let (_, file) = backups
            .iter()
            .find(|(r, _)| r == reason)
            .unwrap_or_else(|| panic!("no {reason} backup in {backups:?}"));
        let copy = env.path(&format!("{reason}.db"));
        env.ok(&[
            "--database",
            copy.to_str().unwrap(),
            "restore",
            "--yes",
            "--force",
            file.to_str().unwrap(),
        ]);
        assert_eq!(dump(&copy), dump_before, "wal={wal} {reason}");
    }
}

#[test]
fn no_backup_says_it_skipped_and_takes_none() {
    let env = Env::new();
    env.init_with_data(5);
    let out = env.run(&["downgrade", "-1", "--no-backup"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup skipped (--no-backup)"));
    assert!(env.backups().is_empty());
    // Nothing pending: no backup either.
    env.ok(&["upgrade"]);
    let n = env.backups().len();
    env.ok(&["upgrade"]);
    assert_eq!(env.backups().len(), n);
}

#[test]
fn prune_keeps_the_newest() {
    let env = Env::new();
    env.init_with_data(5);
    for reason in ["a", "b", "c"] {
        env.ok(&["backup", "--reason", reason]);
    }
    let out = env.ok(&["prune", "--keep", "0", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["deleted"].as_array().unwrap().len(), 2);
    let left = env.backups();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "c");
}

#[test]
fn restore_says_how_far_behind_the_migrations_the_restored_database_is() {
    let env = Env::new();
    env.init_with_data(5);
    env.ok(&["downgrade", "-1", "--no-backup"]);
    env.ok(&["backup"]);
    env.ok(&["upgrade", "--no-backup"]);
    let out = env.ok(&["restore", "--yes", "--no-backup"]);
    assert!(
        out.contains("behind the migrations folder by 1: run `dbtool upgrade`"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["restore", "--yes", "--no-backup", "--json"])).unwrap();
    assert_eq!(json["pending"], serde_json::json!([8]));
}

#[test]
fn regression_a_reset_whose_seed_fails_leaves_the_old_database_untouched() {
    // `reset` used to delete the database and only then run init and the seed: a seed with a SQL
    // error left the user with no database. Now the new one is built beside it and swapped in
    // only when complete.
    for wal in [false, true] {
        let env = Env::new();
        env.init_with_data(20);
        if wal {
            Connection::open(env.db())
                .unwrap()
                .execute_batch("PRAGMA journal_mode=WAL")
                .unwrap();
        }
        let before = dump(&env.db());
        let bytes_before = std::fs::read(env.db()).unwrap();
        std::fs::write(
            env.path("bad-seed.sql"),
            "INSERT INTO users(linkedin_sub, name, full_name) VALUES ('a', 'A', 'A');\nINSERT INTO no_such_table VALUES (1);\n",
        )
        .unwrap();
        let out = env.run(&["--json", "reset", "--yes", "--seed", "bad-seed.sql"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(code_of(&out), "seed-failed");
        assert_eq!(std::fs::read(env.db()).unwrap(), bytes_before, "wal={wal}");
        assert_eq!(dump(&env.db()), before);
        let leftovers: Vec<_> = std::fs::read_dir(env.db().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("dbtool-reset"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // The same reset with a good seed replaces it, and no stale -wal brings old rows back.
        std::fs::write(
            env.path("seed.sql"),
            "INSERT INTO users(linkedin_sub, name, full_name) VALUES ('a', 'A', 'A');\n",
        )
        .unwrap();
        env.ok(&["reset", "--yes", "--seed", "seed.sql"]);
        let users: i64 = Connection::open(env.db())
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(users, 1, "wal={wal}");
    }
}
