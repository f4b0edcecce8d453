//! Crash tests: the real `dbtool` binary killed with SIGKILL at the exact system calls where files
//! are published or replaced (`fsync`, `fdatasync`, `rename*`, `link*`, `unlink*`, `ftruncate`),
//! through strace's fault injection (`-e inject=SYSCALL:signal=SIGKILL:when=N`), for every
//! command that writes, in rollback-journal and WAL mode.
//!
//! After each kill: `PRAGMA integrity_check` is ok, `foreign_key_check` is empty, the database is
//! in one of the states the command may leave (before, after, or a commit boundary of a
//! `-- dbtool:no-transaction` upgrade: history, schema and data of each, compared whole), every
//! backup under its final name decompresses and passes `integrity_check`; then the same command is
//! run again (without strace): it succeeds, reaches the end state of an uninterrupted run, and
//! leaves no dbtool temporary file beside the database or in the backup folder.
//!
//! WAL-mode worlds keep their last committed changes only in the `-wal` (written by a connection
//! that does not checkpoint on close), as an application killed before a checkpoint leaves them.
//!
//! How kill points are sampled: each scenario runs once under `strace -f` to count the calls to
//! each syscall per thread (strace numbers `when=N` per syscall and per thread). A syscall with at
//! most [`SAMPLE`] calls is killed at every call; one with more at [`SAMPLE`] calls spread evenly
//! from the first to the last, both included. Deterministic, no randomness: the same binary gets
//! the same kill points. Each scenario prints its row of the crash matrix (run with
//! `--nocapture` to see it).
//!
//! Without strace: fails when `CI` is set, else prints "skipped: strace not installed".

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{hermetic, rows, DBTOOL};
use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// The system calls where files are published or replaced (`?`: absent on some architectures).
const SYSCALLS: [&str; 10] = [
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "ftruncate",
];

/// Kill points per syscall and scenario at most (see the module header).
const SAMPLE: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Rollback,
    Wal,
}

/// A project folder: `content.db`, `migrations/`, `backups/` (the backup folder), `home/`.
struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::create_dir_all(root.join("migrations")).unwrap();
        World { _dir: dir, root }
    }

    /// A copy of the whole folder (taken at rest: no process has the database open).
    fn copy(&self) -> World {
        let world = World::new();
        copy_dir(&self.root, &world.root);
        world
    }

    fn db(&self) -> PathBuf {
        self.root.join("content.db")
    }

    fn backups(&self) -> PathBuf {
        self.root.join("backups")
    }

    fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.root.join(relative), text).unwrap();
    }

    /// `dbtool --backup-dir backups ARGS`, hermetic.
    fn dbtool_command(&self, program: &str, before: &[String], args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.root);
        cmd.args(before)
            .args(["--backup-dir", "backups"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.dbtool_command(DBTOOL, &[], args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dbtool {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run under strace: `-e trace=SYSCALLS`, plus `extra` (-o, -e inject=…).
    fn strace(&self, extra: &[String], args: &[&str]) -> Output {
        let mut before: Vec<String> = vec!["-f".into(), "-qq".into()];
        before.extend(extra.iter().cloned());
        before.push(DBTOOL.into());
        self.dbtool_command("strace", &before, args)
            .output()
            .expect("run strace")
    }

    /// dbtool's temporary files (and their side files) beside the database and in the backups.
    fn temp_files(&self) -> Vec<String> {
        [self.root.clone(), self.backups()]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dbtool-") || n.contains(".dbtool-reset"))
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Is strace there? Without it: fail under CI, else say the suite was skipped.
fn strace_available() -> bool {
    let found = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is not installed, and CI is set: the crash tests must run in CI"
        );
        // Straight to stderr, not through eprintln!, which the test harness captures.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipped: strace not installed (the crash tests in tests/crash.rs did not run)\n",
            );
        });
    }
    found
}

// --- the migrations and the worlds ---------------------------------------------------------------

const TABLES: &str = "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE, x INTEGER NOT NULL, note TEXT);
CREATE INDEX child_parent ON child(parent_id);
";
const DATA: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) INSERT INTO parent(id, name) SELECT i, 'parent ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO child(id, parent_id, x) SELECT i, 1 + i % 60, i FROM n;
";
/// A data migration: all of it or none of it must be visible.
const MOVE: &str = "UPDATE child SET x = x + 1000;
WITH RECURSIVE n(i) AS (SELECT 501 UNION ALL SELECT i + 1 FROM n WHERE i < 800) INSERT INTO child(id, parent_id, x) SELECT i, 1 + i % 60, i + 1000 FROM n;
";
const MOVE_DOWN: &str = "DELETE FROM child WHERE id > 500;\nUPDATE child SET x = x - 1000;\n";
/// A table rebuild: with foreign keys on, the DROP would cascade into `child`.
const REBUILD: &str =
    "CREATE TABLE parent_new(id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
INSERT INTO parent_new SELECT id, coalesce(name, '') FROM parent;
DROP TABLE parent;
ALTER TABLE parent_new RENAME TO parent;
";
const REBUILD_DOWN: &str = "CREATE TABLE parent_old(id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO parent_old SELECT id, name FROM parent;
DROP TABLE parent;
ALTER TABLE parent_old RENAME TO parent;
";
const NO_TRANSACTION: &str = "-- dbtool:no-transaction\nVACUUM;\n";

/// The migrations: tables, data, a data migration, a rebuild; with `no_transaction`, a
/// `-- dbtool:no-transaction` VACUUM as version 3 (the rest move up by one).
fn write_migrations(world: &World, no_transaction: bool) {
    let mut files = vec![
        ("tables", TABLES, "DROP TABLE child;\nDROP TABLE parent;\n"),
        ("data", DATA, "DELETE FROM child;\nDELETE FROM parent;\n"),
    ];
    if no_transaction {
        files.push(("vacuum", NO_TRANSACTION, NO_TRANSACTION));
    }
    files.push(("move", MOVE, MOVE_DOWN));
    files.push(("rebuild_parent", REBUILD, REBUILD_DOWN));
    for (i, (name, up, down)) in files.into_iter().enumerate() {
        let v = i + 1;
        world.write(&format!("migrations/V{v}__{name}.sql"), up);
        world.write(&format!("migrations/V{v}__{name}.down.sql"), down);
    }
}

/// Put the database in `mode`, then make a last change the way an application does; in WAL mode
/// it stays in the `-wal` (no checkpoint on close).
fn settle(world: &World, mode: Mode, last_change: &str) {
    let conn = Connection::open(world.db()).unwrap();
    if mode == Mode::Wal {
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .unwrap();
        conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    }
    conn.execute_batch(last_change).unwrap();
    drop(conn);
    if mode == Mode::Wal {
        let wal = common_wal(&world.db());
        assert!(
            std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
            "the last change should be only in the -wal"
        );
    }
}

fn common_wal(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    p.into()
}

/// A command to kill, the world it starts from, and the states it may leave.
struct Scenario {
    args: Vec<&'static str>,
    template: World,
    /// Fingerprints of the states a crash may leave besides "before" and "after" (the commit
    /// boundaries of a no-transaction upgrade).
    also_allowed: Vec<String>,
}

/// The application's last change before dbtool runs (in WAL mode, only in the `-wal`). SQLite
/// skips writing a row whose bytes do not change, so it must change something.
const TOUCH: &str = "UPDATE parent SET name = name || ' (renamed)' WHERE id <= 30;";

fn scenario(name: &'static str, mode: Mode) -> Scenario {
    let template = World::new();
    let no_transaction = name == "upgrade-no-transaction";
    write_migrations(&template, no_transaction);
    template.write("content.db", ""); // `upgrade` never creates the database: an empty one
    let mut also_allowed = Vec::new();
    let args: Vec<&'static str> = match name {
        "upgrade" | "upgrade-no-transaction" => {
            template.ok(&["upgrade", "2"]);
            settle(&template, mode, TOUCH);
            if no_transaction {
                // Commit boundaries: V3 (the VACUUM, recorded on its own), then V5.
                let at_3 = template.copy();
                at_3.ok(&["upgrade", "3"]);
                also_allowed.push(fingerprint(&at_3.db()));
            }
            vec!["upgrade"]
        }
        "downgrade" => {
            template.ok(&["upgrade"]);
            settle(&template, mode, TOUCH);
            vec!["downgrade", "2"]
        }
        "backup" => {
            template.ok(&["upgrade"]);
            settle(&template, mode, TOUCH);
            vec!["backup"]
        }
        "restore" => {
            template.ok(&["upgrade"]);
            template.ok(&["backup", "--output", "backups/known.db.zst"]);
            settle(&template, mode, "DELETE FROM child WHERE id > 300;");
            // --force: every copy of the world has another path than the one backed up.
            vec!["restore", "--yes", "--force", "backups/known.db.zst"]
        }
        "restore-new" => {
            // The database is gone (deleted, lost disk): restore puts the backup in its place.
            template.ok(&["upgrade"]);
            settle(&template, mode, TOUCH);
            template.ok(&["backup", "--output", "backups/known.db.zst"]);
            for suffix in ["", "-wal", "-shm"] {
                let mut path = template.db().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
            vec!["restore", "--yes", "--force", "backups/known.db.zst"]
        }
        "reset" => {
            template.ok(&["upgrade"]);
            template.write(
                "seed.sql",
                "INSERT INTO parent(id, name) VALUES (1000, 'seeded');\nINSERT INTO child(id, parent_id, x) VALUES (1000, 1000, 7);\n",
            );
            settle(&template, mode, TOUCH);
            vec!["reset", "--yes", "--seed", "seed.sql"]
        }
        "rebuild" => {
            template.ok(&["upgrade"]);
            settle(&template, mode, TOUCH);
            vec!["rebuild", "child", "--check", "x=x >= 0"]
        }
        "exec" => {
            template.ok(&["upgrade"]);
            template.write(
                "fix.sql",
                "UPDATE child SET note = 'fixed' WHERE note IS NULL;\nDELETE FROM child WHERE id % 7 = 0;\n",
            );
            settle(&template, mode, TOUCH);
            vec!["exec", "fix.sql"]
        }
        other => panic!("no scenario {other}"),
    };
    Scenario {
        args,
        template,
        also_allowed,
    }
}

// --- looking at the result -----------------------------------------------------------------------

/// History (version, name, checksum), schema and every row of every table, as the next opener of
/// the database sees them (a read-write connection rolls back a hot journal, reads the `-wal`).
fn fingerprint(db: &Path) -> String {
    if !db.exists() {
        return "no database".into();
    }
    let conn = Connection::open(db).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    let mut out = rows(
        &conn,
        "SELECT type, name, tbl_name, sql FROM sqlite_schema \
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    );
    let tables = rows(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    for table in tables {
        let table = table.trim_matches('\'');
        let sql = if table == "refinery_schema_history" {
            "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version".into()
        } else {
            format!("SELECT * FROM \"{table}\" ORDER BY rowid")
        };
        out.push(format!("-- {table}"));
        out.extend(rows(&conn, &sql));
    }
    out.join("\n")
}

/// A short description of a fingerprint for messages: history versions and row counts.
fn summary(db: &Path) -> String {
    let conn = Connection::open(db).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    let versions = rows(
        &conn,
        "SELECT group_concat(version) FROM refinery_schema_history",
    );
    let counts = rows(
        &conn,
        "SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM child)",
    );
    format!("history {versions:?}, parent|child rows {counts:?}")
}

/// Integrity, foreign keys, an allowed state, sound backups. Returns the problems found.
fn check_after_crash(world: &World, allowed: &[&String]) -> Vec<String> {
    let mut problems = Vec::new();
    if !world.db().exists() {
        if !allowed.contains(&&fingerprint(&world.db())) {
            problems.push("the database is gone".into());
        }
        return problems;
    }
    let conn = Connection::open(world.db()).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    let integrity = rows(&conn, "PRAGMA integrity_check");
    if integrity != ["'ok'"] {
        problems.push(format!("integrity_check: {integrity:?}"));
    }
    let fk = rows(&conn, "PRAGMA foreign_key_check");
    if !fk.is_empty() {
        problems.push(format!("foreign_key_check: {fk:?}"));
    }
    drop(conn);
    let now = fingerprint(&world.db());
    if !allowed.contains(&&now) {
        problems.push(format!(
            "the database is in none of the allowed states: {}",
            summary(&world.db())
        ));
    }
    problems.extend(backup_problems(world));
    problems
}

/// Every `*.db.zst` under its final name must decompress (zstd skips the metadata frame) into a
/// database that passes `integrity_check`.
fn backup_problems(world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(world.backups()) else {
        return problems;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".db.zst") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let image = match zstd::stream::decode_all(&bytes[..]) {
            Ok(image) => image,
            Err(e) => {
                problems.push(format!("backup {name} does not decompress: {e}"));
                continue;
            }
        };
        let copy = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(copy.path(), &image).unwrap();
        let ok = Connection::open(copy.path())
            .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
        if !matches!(ok.as_deref(), Ok("ok")) {
            problems.push(format!("backup {name} fails integrity_check: {ok:?}"));
        }
    }
    problems
}

// --- counting and killing ------------------------------------------------------------------------

/// The most calls any one thread makes to each syscall during an uninterrupted run.
fn count_calls(world: &World, args: &[&str]) -> BTreeMap<String, u32> {
    let log = world.root.join("strace.log");
    let out = world.strace(
        &[
            "-o".into(),
            log.display().to_string(),
            "-e".into(),
            format!("trace={}", traced(&SYSCALLS)),
        ],
        args,
    );
    assert!(
        out.status.success(),
        "dbtool {args:?} under strace failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut per_thread: BTreeMap<(String, String), u32> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        // "1234 fsync(3) = 0", "1234 fsync(3 <unfinished ...>"; not "1234 <... fsync resumed>".
        let Some((tid, rest)) = line.split_once(' ') else {
            continue;
        };
        // strace pads the pid column: "977  fsync(3)".
        let Some((name, _)) = rest.trim_start().split_once('(') else {
            continue;
        };
        if SYSCALLS.contains(&name) {
            *per_thread
                .entry((name.to_string(), tid.to_string()))
                .or_default() += 1;
        }
    }
    std::fs::remove_file(&log).unwrap();
    let mut counts = BTreeMap::new();
    for ((name, _), n) in per_thread {
        let max = counts.entry(name).or_insert(0);
        *max = n.max(*max);
    }
    counts
}

fn traced(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Kill points for a syscall called `calls` times (see the module header).
fn sample(calls: u32) -> Vec<u32> {
    if calls <= SAMPLE {
        return (1..=calls).collect();
    }
    let mut points: Vec<u32> = (0..SAMPLE)
        .map(|i| 1 + (i * (calls - 1) + (SAMPLE - 1) / 2) / (SAMPLE - 1))
        .collect();
    points.dedup();
    points
}

/// Run `args` and kill dbtool at the `n`-th call (per thread) of `syscall`. True when it died.
fn kill_at(world: &World, syscall: &str, n: u32, args: &[&str]) -> bool {
    let out = world.strace(
        &[
            "-o".into(),
            "/dev/null".into(),
            "-e".into(),
            format!("trace={syscall}"),
            "-e".into(),
            format!("inject={syscall}:signal=SIGKILL:when={n}"),
        ],
        args,
    );
    match out.status.signal() {
        Some(9) => true,
        _ => {
            // Not killed (a helper thread's calls vary from run to run): it must have succeeded.
            assert!(
                out.status.success(),
                "dbtool {args:?} failed without being killed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
    }
}

/// One row of the crash matrix.
struct Row {
    syscall: String,
    calls: u32,
    trials: u32,
    killed: u32,
    failures: Vec<String>,
}

fn run_matrix(name: &'static str, mode: Mode) {
    if !strace_available() {
        return;
    }
    let sc = scenario(name, mode);
    let args = &sc.args;
    let before = fingerprint(&sc.template.db());
    let finished = sc.template.copy();
    finished.ok(args);
    let after = fingerprint(&finished.db());
    let mut allowed = vec![&before, &after];
    allowed.extend(sc.also_allowed.iter());

    let counts = count_calls(&sc.template.copy(), args);
    let mut matrix = Vec::new();
    for (syscall, calls) in &counts {
        let mut row = Row {
            syscall: syscall.clone(),
            calls: *calls,
            trials: 0,
            killed: 0,
            failures: Vec::new(),
        };
        for n in sample(*calls) {
            let world = sc.template.copy();
            row.trials += 1;
            if kill_at(&world, syscall, n, args) {
                row.killed += 1;
            }
            let at = format!("{name} {mode:?}, killed at {syscall} #{n}");
            for problem in check_after_crash(&world, &allowed) {
                row.failures.push(format!("{at}: {problem}"));
            }
            let rerun = world.run(args);
            if !rerun.status.success() {
                row.failures.push(format!(
                    "{at}: running it again failed:\n{}",
                    String::from_utf8_lossy(&rerun.stderr)
                ));
                continue;
            }
            if fingerprint(&world.db()) != after {
                row.failures.push(format!(
                    "{at}: running it again did not reach the end state: {}",
                    summary(&world.db())
                ));
            }
            let temps = world.temp_files();
            if !temps.is_empty() {
                row.failures.push(format!(
                    "{at}: temporary files survived the rerun: {temps:?}"
                ));
            }
        }
        matrix.push(row);
    }

    let mut failures = Vec::new();
    for row in &matrix {
        println!(
            "crash-matrix {name:<24} {:<8} {:<10} calls {:>3}  trials {:>2}  killed {:>2}  failures {}",
            format!("{mode:?}"),
            row.syscall,
            row.calls,
            row.trials,
            row.killed,
            row.failures.len()
        );
        failures.extend(row.failures.iter().cloned());
    }
    assert!(
        matrix.iter().any(|r| r.killed > 0),
        "{name} {mode:?}: no kill point was reached: {counts:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! matrix {
    ($($test:ident: $name:literal, $mode:ident;)*) => {
        $(
            #[test]
            fn $test() {
                run_matrix($name, Mode::$mode);
            }
        )*
    };
}

matrix! {
    upgrade_killed_anywhere_rollback: "upgrade", Rollback;
    upgrade_killed_anywhere_wal: "upgrade", Wal;
    upgrade_with_a_no_transaction_step_killed_anywhere_rollback: "upgrade-no-transaction", Rollback;
    upgrade_with_a_no_transaction_step_killed_anywhere_wal: "upgrade-no-transaction", Wal;
    downgrade_killed_anywhere_rollback: "downgrade", Rollback;
    downgrade_killed_anywhere_wal: "downgrade", Wal;
    backup_killed_anywhere_rollback: "backup", Rollback;
    backup_killed_anywhere_wal: "backup", Wal;
    restore_killed_anywhere_rollback: "restore", Rollback;
    restore_killed_anywhere_wal: "restore", Wal;
    restore_of_a_missing_database_killed_anywhere_rollback: "restore-new", Rollback;
    restore_of_a_missing_database_killed_anywhere_wal: "restore-new", Wal;
    reset_killed_anywhere_rollback: "reset", Rollback;
    reset_killed_anywhere_wal: "reset", Wal;
    rebuild_killed_anywhere_rollback: "rebuild", Rollback;
    rebuild_killed_anywhere_wal: "rebuild", Wal;
    exec_killed_anywhere_rollback: "exec", Rollback;
    exec_killed_anywhere_wal: "exec", Wal;
}

#[test]
fn sampling_takes_every_call_or_an_even_spread_with_both_ends() {
    assert_eq!(sample(0), Vec::<u32>::new());
    assert_eq!(sample(3), [1, 2, 3]);
    assert_eq!(sample(SAMPLE), (1..=SAMPLE).collect::<Vec<_>>());
    let spread = sample(100);
    assert_eq!(spread.len(), SAMPLE as usize);
    assert_eq!((spread[0], spread[spread.len() - 1]), (1, 100));
    assert!(spread.windows(2).all(|w| w[0] < w[1]));
}

/// Defect 2, the reproduction: 500 rows only in the `-wal` of a writer killed before it
/// checkpointed, then `reset` killed at its `rename` (and, as the old code removed the `-wal` and
/// `-shm` just before, at its first `unlink`s). `reset` used to remove the old `-wal` and rename
/// the new file over the database: killed in between, the database had neither the 500 rows nor
/// the new content, and `current` said all was well. Now: the old database with every row, or the
/// new one (told apart by the seed).
#[test]
fn defect_2_reset_killed_between_removing_the_wal_and_its_rename_keeps_every_row() {
    if !strace_available() {
        return;
    }
    let template = World::new();
    template.write(
        "migrations/V1__t.sql",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n",
    );
    template.write("seed.sql", "INSERT INTO t(v) VALUES ('seed');\n");
    template.write("content.db", ""); // `upgrade` never creates the database
    template.ok(&["upgrade"]);
    // A writer with autocheckpoint off, killed after committing: the rows are only in the -wal.
    let mut writer = Command::new("sqlite3")
        .arg(template.db())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sqlite3 is installed");
    let mut stdin = writer.stdin.take().unwrap();
    std::io::Write::write_all(
        &mut stdin,
        b"PRAGMA journal_mode=WAL;\nPRAGMA wal_autocheckpoint=0;\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO t(v) SELECT i FROM n;\n.print written\n",
    )
    .unwrap();
    let mut stdout = std::io::BufReader::new(writer.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "written" {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0);
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(std::fs::metadata(common_wal(&template.db())).is_ok_and(|m| m.len() > 0));

    let count = |world: &World, sql: &str| -> i64 {
        let conn = Connection::open(world.db()).unwrap();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count(&template.copy(), "SELECT count(*) FROM t"), 500);

    let kills = [
        vec![
            "-e".to_string(),
            "trace=?rename".into(),
            "-e".into(),
            "inject=?rename:signal=SIGKILL".into(),
        ],
        vec![
            "-e".into(),
            "trace=unlink".into(),
            "-e".into(),
            "inject=unlink:signal=SIGKILL:when=1".into(),
        ],
        vec![
            "-e".into(),
            "trace=unlink".into(),
            "-e".into(),
            "inject=unlink:signal=SIGKILL:when=2".into(),
        ],
        vec![
            "-e".into(),
            "trace=unlink".into(),
            "-e".into(),
            "inject=unlink:signal=SIGKILL:when=3".into(),
        ],
    ];
    for kill in kills {
        let world = template.copy();
        let mut extra = vec!["-o".to_string(), "/dev/null".into()];
        extra.extend(kill.iter().cloned());
        let out = world.strace(&extra, &["reset", "--yes", "--seed", "seed.sql"]);
        let rows = count(&world, "SELECT count(*) FROM t");
        let seeded = count(&world, "SELECT count(*) FROM t WHERE v = 'seed'");
        let killed = out.status.signal() == Some(9);
        assert!(
            killed || (out.status.success() && rows == 1),
            "{kill:?}: neither killed nor a completed reset: {out:?}"
        );
        assert!(
            (rows == 500 && seeded == 0) || (rows == 1 && seeded == 1),
            "{kill:?} (killed: {killed}): {rows} rows, {seeded} seeded: neither the old database nor the new one"
        );
        assert_eq!(
            check_after_crash(&world, &[&fingerprint(&world.db())]),
            Vec::<String>::new()
        );
        world.ok(&["reset", "--yes", "--seed", "seed.sql"]);
        assert_eq!(count(&world, "SELECT count(*) FROM t WHERE v = 'seed'"), 1);
        assert_eq!(world.temp_files(), Vec::<String>::new());
    }
}
