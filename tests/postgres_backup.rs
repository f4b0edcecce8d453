//! Backups of PostgreSQL databases against a real server: `pg_dump` through dbtool's zstd stream
//! into the same store as SQLite's, verified by `pg_restore`; restore into a new database swapped
//! in by renaming, or in place in one transaction; a damaged backup or a failing restore leaves
//! the database as it was; the password is written nowhere; `pg_dump`'s version is checked.
//!
//! The server's URL comes from `DBTOOL_TEST_POSTGRES_URL` (`.ci/run` starts one with
//! `scripts/pg-server.sh`); without it each test prints a SKIPPED line (and fails under CI).

mod common;

use std::path::{Path, PathBuf};

use common::pg::{self, FreshDb};
use common::TestEnv;

const V1: &str = "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE);\n";
const V2: &str = "CREATE TABLE posts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), body text);
INSERT INTO users (email) SELECT 'u' || g || '@x' FROM generate_series(1, 50) g;
INSERT INTO posts (user_id, body) SELECT 1 + g % 50, E'line one\\nline two ' || g FROM generate_series(1, 300) g;
";

fn setup(test: &str) -> Option<(TestEnv, FreshDb)> {
    let server = pg::server(test)?;
    let db = FreshDb::create(&server, test);
    let env = TestEnv::new();
    env.migration(1, "users", V1, Some("DROP TABLE users;\n"));
    env.migration(
        2,
        "posts",
        V2,
        Some("DROP TABLE posts;\nDELETE FROM users;\n"),
    );
    Some((env, db))
}

/// `dbtool --database URL --backup-dir backups ARGS`.
fn args<'a>(db: &'a FreshDb, rest: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--database", db.url(), "--backup-dir", "backups"];
    all.extend_from_slice(rest);
    all
}

fn backups(env: &TestEnv) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(env.root().join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Databases on the server whose name starts with this test database's (the restore's side
/// databases are `<name>_dbtool_…`).
fn side_databases(db: &FreshDb) -> Vec<String> {
    let mut admin = db.admin();
    admin
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2",
            &[&format!("{}_dbtool_", db.name()), &db.name()],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn counts(db: &FreshDb) -> (i64, i64, Vec<i32>) {
    (
        db.int("SELECT count(*) FROM users"),
        db.int("SELECT count(*) FROM posts"),
        db.versions(),
    )
}

#[test]
fn backup_and_restore_round_trip_by_rename() {
    let Some((env, db)) = setup("bk_round_trip") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    let taken = env.ok(&args(&db, &["--json", "backup", "--reason", "known good"]));
    let json = taken.json();
    let meta = &json["meta"];
    assert_eq!(meta["engine"], "postgres");
    assert_eq!(meta["snapshot_method"], "pg-dump");
    assert_eq!(meta["schema_version"], 2);
    assert_eq!(meta["format_version"], 2);
    assert!(meta["postgres"]["server_version"].as_str().unwrap().len() > 1);
    assert!(meta["postgres"]["pg_dump_version"]
        .as_str()
        .unwrap()
        .starts_with("pg_dump"));
    assert!(meta["source_path"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{}", db.name())));
    assert_eq!(json["verified"], true);
    let file = PathBuf::from(json["path"].as_str().unwrap());
    assert!(file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .ends_with("-v2-known-good.db.zst"));
    // The file is a plain zstd stream of a pg_dump archive (the metadata frame is skippable).
    let archive = zstd::decode_all(std::fs::File::open(&file).unwrap()).unwrap();
    assert!(archive.starts_with(b"PGDMP"));
    assert_eq!(meta["image_size"], archive.len() as u64);
    let before = counts(&db);
    assert_eq!(before, (50, 300, vec![1, 2]));

    // The database moves on: rows change, a migration is undone.
    db.client()
        .batch_execute("DELETE FROM posts WHERE id > 10; UPDATE users SET email = 'changed' || id")
        .unwrap();
    env.ok(&args(&db, &["downgrade", "1"]));
    assert_eq!(db.versions(), vec![1]);

    // Automatic backups were taken before the downgrade (and the upgrade), in the same store.
    let listed = env.ok(&args(&db, &["--json", "backups"])).json();
    let reasons: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["meta"]["reason"].as_str().unwrap())
        .collect();
    // (The first upgrade, of an empty database, had nothing to back up.)
    assert_eq!(reasons, ["before-downgrade", "known good"]);

    let file_arg = file.to_str().unwrap();
    let restored = env
        .ok(&args(&db, &["--json", "restore", "--yes", file_arg]))
        .json();
    assert_eq!(restored["replacement"]["how"], "rename", "{restored}");
    assert_eq!(restored["contents"]["tables"]["public.posts"], 300);
    assert_eq!(restored["contents"]["tables"]["public.users"], 50);
    assert_eq!(
        restored["safety_backup"]["meta"]["reason"], "before-restore",
        "{restored}"
    );
    assert_eq!(counts(&db), before);
    assert_eq!(
        db.strings("SELECT email FROM users WHERE id = 7"),
        ["u7@x"],
        "the rows are the backup's"
    );
    assert!(side_databases(&db).is_empty(), "{:?}", side_databases(&db));
    // The restored database works with dbtool: it is at version 2 with nothing pending.
    let status = env.ok(&args(&db, &["--json", "status"])).json();
    assert_eq!(status["current_version"], 2);

    // And the backup of the state just before the restore brings that state back.
    let safety = restored["safety_backup"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&args(&db, &["restore", "--yes", "--no-backup", &safety]));
    assert_eq!(db.versions(), vec![1]);
    assert!(!db.table_exists("posts"), "V2's down had dropped it");
    assert_eq!(
        db.int("SELECT count(*) FROM users"),
        0,
        "V2's down had emptied it"
    );
}

#[test]
fn restore_in_place_when_another_session_is_connected() {
    let Some((env, db)) = setup("bk_in_place") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    env.ok(&args(&db, &["backup"]));
    db.client()
        .batch_execute("DELETE FROM posts; CREATE TABLE notes (id int)")
        .unwrap();
    // An application's idle session: a rename would fail, so the restore goes in place.
    let app = db.client();
    let run = env.ok(&args(&db, &["restore", "--yes"]));
    assert!(
        run.stderr().contains("restored in place with pg_restore --clean --single-transaction (1 other session(s) connected"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("left as they were: public.notes"),
        "{}",
        run.stderr()
    );
    assert_eq!(counts(&db), (50, 300, vec![1, 2]));
    drop(app);
}

/// Flip one byte in the middle of the compressed payload.
fn damage(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = 512 + (bytes.len() - 512) / 2;
    bytes[at] ^= 0x55;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn damaged_backup_is_refused_before_the_database_is_touched() {
    let Some((env, db)) = setup("bk_damaged") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    let file = env.ok(&args(&db, &["--json", "backup"])).json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    damage(Path::new(&file));
    db.client().batch_execute("DELETE FROM posts").unwrap();
    let before = counts(&db);
    let files_before = backups(&env);

    let run = env.run(&args(&db, &["restore", "--yes", &file]));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let line = run.error_line();
    assert!(
        line.contains("error[backup-corrupt]") || line.contains("error[backup-hash-mismatch]"),
        "{line}"
    );
    assert_eq!(counts(&db), before);
    assert!(side_databases(&db).is_empty());
    assert_eq!(
        backups(&env),
        files_before,
        "no safety backup was even needed"
    );

    let verify = env.run(&args(&db, &["backups", "verify"]));
    assert_eq!(verify.code(), 3, "{}", verify.stdout());
    assert!(verify.stdout().contains("FAILED"), "{}", verify.stdout());
}

/// A backup that decompresses and reads fine but cannot be restored: it gives a table to a role
/// that no longer exists. Both the rename path and the in-place path leave the database as it
/// was.
#[test]
fn restore_that_fails_midway_leaves_the_database_intact() {
    let Some((env, db)) = setup("bk_midway") else {
        return;
    };
    let role = format!("dbtool_t_role_{}", std::process::id());
    env.ok(&args(&db, &["upgrade"]));
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE {role}; CREATE TABLE owned (id int); INSERT INTO owned VALUES (1);              ALTER TABLE owned OWNER TO {role}"
        ))
        .unwrap();
    let file = env.ok(&args(&db, &["--json", "backup"])).json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    db.client()
        .batch_execute(&format!(
            "DROP OWNED BY {role}; DROP ROLE {role}; DELETE FROM posts WHERE id > 100"
        ))
        .unwrap();
    let before = counts(&db);

    // By rename: the new database fails and is dropped.
    let run = env.run(&args(&db, &["restore", "--yes", "--no-backup", &file]));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.error_line().contains("error[pg-tool-failed]"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains(&role), "{}", run.stderr());
    assert_eq!(counts(&db), before);
    assert!(!db.table_exists("owned"));
    assert!(side_databases(&db).is_empty(), "{:?}", side_databases(&db));

    // In place: the single transaction rolls back.
    let app = db.client();
    let run = env.run(&args(&db, &["restore", "--yes", "--no-backup", &file]));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.error_line().contains("error[pg-tool-failed]"));
    assert_eq!(counts(&db), before);
    assert!(!db.table_exists("owned"));
    drop(app);
}

#[test]
fn the_password_is_written_nowhere() {
    let Some((env, db)) = setup("bk_password") else {
        return;
    };
    let secret = db
        .url()
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_string())
        .expect("the test URL carries a password");
    let mut seen = String::new();
    for rest in [
        &["upgrade"][..],
        &["backup"],
        &["--json", "backup"],
        &["backups"],
        &["--json", "backups"],
        &["--json", "backups", "verify"],
        &["restore", "--yes"],
        &["--json", "restore", "--yes"],
        &["prune", "--keep", "2", "--dry-run"],
        &["--json", "backups", "--all"],
    ] {
        let run = env.ok(&args(&db, rest));
        seen.push_str(&run.stdout());
        seen.push_str(&run.stderr());
    }
    assert!(!seen.contains(&secret), "printed the password: {seen}");
    let files = backups(&env);
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let archive = zstd::decode_all(&bytes[..]).unwrap();
        for (what, content) in [("file", &bytes), ("archive", &archive)] {
            assert!(
                !content
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "the {what} {} holds the password",
                file.display()
            );
        }
    }
}

/// A folder early on PATH with a fake `pg_dump` that reports `version` and otherwise runs `body`.
fn fake_pg_dump(env: &TestEnv, version: &str, body: &str) -> String {
    let bin = env.root().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("pg_dump");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) {version}'; exit 0; fi\n{body}\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn pg_dump_older_than_the_server_or_missing_is_refused_and_nothing_changes() {
    let Some((env, db)) = setup("bk_old_pg_dump") else {
        return;
    };
    env.ok(&args(&db, &["upgrade", "1"]));
    let path = fake_pg_dump(&env, "9.6", "exit 1");
    let run = env
        .command()
        .env("PATH", &path)
        .args(args(&db, &["backup"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[pg-dump-too-old]"), "{stderr}");
    assert!(stderr.contains("9.6"), "{stderr}");
    assert!(
        stderr.contains("hint: install the client tools"),
        "{stderr}"
    );
    assert!(backups(&env)
        .iter()
        .all(|f| !f.to_string_lossy().contains("manual")));

    // The automatic backup fails closed: the upgrade does not run without it.
    let run = env
        .command()
        .env("PATH", &path)
        .args(args(&db, &["upgrade"]))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(db.versions(), vec![1]);

    // No pg_dump at all.
    let empty = env.root().join("emptybin");
    std::fs::create_dir_all(&empty).unwrap();
    let run = env
        .command()
        .env("PATH", &empty)
        .args(args(&db, &["backup"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[pg-tool-missing]"), "{stderr}");
    assert!(stderr.contains("`pg_dump`"), "{stderr}");
}

#[test]
fn prune_and_listing_treat_postgres_backups_like_sqlite_ones() {
    let Some((env, db)) = setup("bk_prune") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    for _ in 0..4 {
        env.ok(&args(&db, &["backup"]));
    }
    // 4 manual (the upgrade of the empty database took none).
    assert_eq!(backups(&env).len(), 4);
    let dry = env
        .ok(&args(&db, &["--json", "prune", "--keep", "2", "--dry-run"]))
        .json();
    assert_eq!(dry["deleted"].as_array().unwrap().len(), 2, "{dry}");
    assert_eq!(backups(&env).len(), 4);
    env.ok(&args(&db, &["prune", "--keep", "2"]));
    assert_eq!(backups(&env).len(), 2);

    // In the data folder (no --backup-dir): listed with its database, never an orphan.
    let url = db.url();
    env.ok(&["--database", url, "backup"]);
    let all = env.ok(&["--json", "backups", "--all"]).json();
    let folders = all["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 1, "{all}");
    assert_eq!(folders[0]["engine"], "postgres");
    assert_eq!(folders[0]["database_exists"], true);
    env.ok(&["prune", "--orphans"]);
    let listed = env.ok(&["--database", url, "--json", "backups"]).json();
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1, "{listed}");
}

/// What the server's pg_dump reports (`pg_dump (PostgreSQL) 15.4 …`), for fakes that pass the
/// version check.
fn real_pg_dump_version() -> String {
    let out = std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn a_failing_or_garbled_dump_is_never_published() {
    let Some((env, db)) = setup("bk_garbled") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    let version = real_pg_dump_version();
    for (body, expect) in [
        // pg_dump fails halfway: its message is the error.
        (
            "printf PGDMP; echo 'pg_dump: error: query failed: the disk exploded' >&2; exit 1",
            "the disk exploded",
        ),
        // pg_dump "succeeds" with something that is no archive: pg_restore refuses it.
        (
            "printf 'PGDMP this is not an archive at all'; exit 0",
            "pg_restore",
        ),
    ] {
        let path = fake_pg_dump(&env, &version, body);
        let run = env
            .command()
            .env("PATH", &path)
            .args(args(&db, &["backup"]))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("error[pg-tool-failed]"), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        // No backup and no temporary file is left (the upgrade of the empty database took none).
        let files = backups(&env);
        assert!(files.is_empty(), "{files:?}");
    }
}

#[test]
fn reset_rebuilds_beside_and_swaps_in_after_a_backup() {
    let Some((env, db)) = setup("bk_reset") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    db.client()
        .batch_execute("CREATE TABLE scratch (x int); INSERT INTO scratch VALUES (1)")
        .unwrap();
    env.write(
        "seed.sql",
        "INSERT INTO users (email) VALUES ('seeded@x');\n",
    );

    // Without a terminal it needs --yes; nothing happens.
    let refused = env.run(&args(&db, &["reset"]));
    assert_eq!(refused.code(), 5, "{}", refused.stderr());
    assert!(db.table_exists("scratch"));

    // Another session: refused (exit 4) before anything, no backup, no side database.
    let app = db.client();
    let busy = env.run(&args(&db, &["reset", "--yes"]));
    assert_eq!(busy.code(), 4, "{}", busy.stderr());
    assert!(
        busy.error_line().contains("error[database-in-use]"),
        "{}",
        busy.stderr()
    );
    assert!(db.table_exists("scratch"));
    assert!(backups(&env)
        .iter()
        .all(|f| !f.to_string_lossy().contains("before-reset")));
    drop(app);

    let run = env.ok(&args(
        &db,
        &["--json", "reset", "--yes", "--seed", "seed.sql"],
    ));
    let json = run.json();
    assert_eq!(json["backup"]["meta"]["reason"], "before-reset", "{json}");
    assert_eq!(json["init"]["current_version"], 2, "{json}");
    assert!(!db.table_exists("scratch"), "the old database is gone");
    assert_eq!(db.versions(), vec![1, 2]);
    // V2's inserts, then the seed.
    assert_eq!(db.int("SELECT count(*) FROM users"), 51);
    assert_eq!(
        db.int("SELECT count(*) FROM users WHERE email = 'seeded@x'"),
        1
    );
    assert!(side_databases(&db).is_empty(), "{:?}", side_databases(&db));

    // The backup taken first brings the old database back.
    let file = json["backup"]["path"].as_str().unwrap().to_string();
    env.ok(&args(&db, &["restore", "--yes", "--no-backup", &file]));
    assert!(db.table_exists("scratch"));
}

#[test]
fn exec_and_stamp_take_the_automatic_backup_and_no_backup_skips_it() {
    let Some((env, db)) = setup("bk_auto") else {
        return;
    };
    env.ok(&args(&db, &["upgrade", "1"]));
    env.write("fix.sql", "INSERT INTO users (email) VALUES ('fix@x');\n");
    env.ok(&args(&db, &["exec", "fix.sql"]));
    env.ok(&args(&db, &["stamp", "2"]));
    let skipped = env.ok(&args(&db, &["stamp", "1", "--no-backup"]));
    assert!(
        skipped.stderr().contains("backup skipped (--no-backup)"),
        "{}",
        skipped.stderr()
    );
    let listed = env.ok(&args(&db, &["--json", "backups"])).json();
    let reasons: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["meta"]["reason"].as_str().unwrap())
        .collect();
    // The first upgrade, of an empty database, had nothing to back up.
    assert_eq!(reasons, ["before-stamp", "before-exec"]);
    // The exec backup holds the database as it was before the script.
    let exec_backup = listed["backups"][1]["path"].as_str().unwrap().to_string();
    let verified = env
        .ok(&args(&db, &["--json", "backups", "verify", &exec_backup]))
        .json();
    assert_eq!(
        verified["backups"][0]["report"]["archive"]["tables"]["public.users"],
        0
    );
    assert_eq!(db.int("SELECT count(*) FROM users"), 1);
}

#[test]
fn a_table_locked_by_the_application_ends_the_backup_after_the_busy_timeout() {
    let Some((env, db)) = setup("bk_locked") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    let app = db.lock_table_in_transaction("posts");
    let run = env.run(&args(&db, &["--busy-timeout", "300", "backup"]));
    assert_eq!(run.code(), 4, "{}", run.stderr());
    assert!(
        run.error_line().contains("error[database-locked]"),
        "{}",
        run.stderr()
    );
    assert!(
        backups(&env).is_empty(),
        "no backup, not even a partial one"
    );
    drop(app);
    env.ok(&args(&db, &["backup"]));
}

#[test]
fn a_backup_restores_only_into_its_own_engine() {
    let Some((env, db)) = setup("bk_engines") else {
        return;
    };
    env.ok(&args(&db, &["upgrade"]));
    let pg_backup = env.ok(&args(&db, &["--json", "backup"])).json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    env.write(
        "sqlite/V0001__t.sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
    );
    env.ok(&["--database", "app.db", "--migrations", "sqlite", "init"]);
    let sqlite_backup = env.ok(&["--database", "app.db", "--json", "backup"]).json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let onto_sqlite = env.run(&[
        "--database",
        "app.db",
        "restore",
        "--yes",
        "--force",
        &pg_backup,
    ]);
    assert_eq!(onto_sqlite.code(), 1, "{}", onto_sqlite.stderr());
    assert!(onto_sqlite
        .error_line()
        .contains("error[backup-other-engine]"));
    let onto_pg = env.run(&args(&db, &["restore", "--yes", "--force", &sqlite_backup]));
    assert_eq!(onto_pg.code(), 1, "{}", onto_pg.stderr());
    assert!(
        onto_pg.error_line().contains("error[backup-other-engine]"),
        "{}",
        onto_pg.stderr()
    );
    assert_eq!(db.versions(), vec![1, 2]);
}
