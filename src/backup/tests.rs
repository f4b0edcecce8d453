//! Engine tests on real SQLite files in temporary folders.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn make_db(path: &Path, wal: bool, rows: usize) {
    let conn = Connection::open(path).unwrap();
    if wal {
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE refinery_schema_history(version INT4 PRIMARY KEY, name VARCHAR(255),
                                              applied_on VARCHAR(255), checksum VARCHAR(255));
         INSERT INTO refinery_schema_history VALUES (1,'a','x','1'),(7,'b','x','2');
         CREATE TABLE parent(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id),
                            note TEXT);
         CREATE INDEX child_parent ON child(parent_id);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO parent(body) VALUES (?1)",
            [format!("row {i} {}", "lorem ipsum dolor ".repeat(i % 20))],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO child(parent_id, note) VALUES (last_insert_rowid(), 'n')",
            [],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn dump(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    for table in ["refinery_schema_history", "parent", "child"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        out.extend(rows.map(|r| format!("{table}:{}", r.unwrap())));
    }
    out
}

fn opts(dir: &Path, method: MethodChoice) -> CreateOptions {
    let mut o = CreateOptions::new(dir, "manual", NOW);
    o.method = method;
    o.busy_timeout = Duration::from_millis(200);
    o
}

fn restore_opts() -> RestoreOptions {
    RestoreOptions {
        force: false,
        safety_backup: None,
        check: CheckLevel::Full,
        busy_timeout: Duration::from_secs(2),
    }
}

fn no_progress() -> impl FnMut(Progress) {
    |_| {}
}

fn setup(wal: bool, rows: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("content.db");
    make_db(&db, wal, rows);
    let dir = tmp.path().join("backups");
    (tmp, db, dir)
}

#[test]
fn this_build_has_sqlite_dbpage() {
    // .cargo/config.toml compiles SQLite with SQLITE_ENABLE_DBPAGE_VTAB; if this fails, the
    // fast path silently became the fallback.
    let conn = Connection::open_in_memory().unwrap();
    assert!(snapshot::dbpage_available(&conn));
}

#[test]
fn both_methods_produce_the_same_image_and_zstd_d_gives_a_plain_database() {
    for wal in [false, true] {
        let (tmp, db, dir) = setup(wal, 500);
        let a = create(&db, &opts(&dir, MethodChoice::Dbpage), &mut no_progress()).unwrap();
        let mut o = opts(&dir, MethodChoice::BackupApi);
        o.reason = "other".into();
        let b = create(&db, &o, &mut no_progress()).unwrap();
        assert_eq!(a.meta.snapshot_method, SnapshotMethod::Dbpage);
        assert_eq!(b.meta.snapshot_method, SnapshotMethod::BackupApi);
        assert_eq!(a.meta.page_count, b.meta.page_count);
        assert_eq!(a.meta.schema_version, Some(7));
        assert!(a.verified && a.ratio > 1.0);

        // What `zstd -d` does: skip the skippable frame, decode the payload.
        let plain = zstd::decode_all(fs::File::open(&a.path).unwrap()).unwrap();
        assert_eq!(plain.len() as u64, a.meta.image_size);
        let out = tmp.path().join("plain.db");
        fs::write(&out, &plain).unwrap();
        assert_eq!(dump(&out), dump(&db));
        let conn = Connection::open(&out).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // The backup API copy may differ from the raw file in header bytes (change counter),
        // but holds the same data.
        let plain_b = zstd::decode_all(fs::File::open(&b.path).unwrap()).unwrap();
        fs::write(&out, &plain_b).unwrap();
        assert_eq!(dump(&out), dump(&db));
    }
}

#[test]
fn names_permissions_and_same_second_clash() {
    let (_tmp, db, dir) = setup(true, 10);
    let a = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    assert_eq!(
        a.path.file_name().unwrap(),
        "content-20250601T120000Z-v7-manual.db.zst"
    );
    assert_eq!(
        b.path.file_name().unwrap(),
        "content-20250601T120000Z-v7-manual-2.db.zst"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&a.path), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    // Nothing but the two finished files is left in the folder.
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn explicit_output_is_never_overwritten() {
    let (tmp, db, dir) = setup(false, 10);
    let mut o = opts(&dir, MethodChoice::Auto);
    o.output = Some(tmp.path().join("mine.db.zst"));
    let r = create(&db, &o, &mut no_progress()).unwrap();
    assert_eq!(r.path, tmp.path().join("mine.db.zst"));
    let before = fs::read(&r.path).unwrap();
    let err = create(&db, &o, &mut no_progress()).unwrap_err();
    assert_eq!(err.code(), "backup-write-failed");
    assert_eq!(fs::read(&r.path).unwrap(), before);
}

#[test]
fn listing_is_newest_first_and_ignores_leftovers() {
    let (_tmp, db, dir) = setup(false, 10);
    for (i, reason) in ["first", "second", "third"].iter().enumerate() {
        let mut o = opts(&dir, MethodChoice::Auto);
        o.reason = reason.to_string();
        o.now = NOW + time::Duration::minutes(i as i64);
        create(&db, &o, &mut no_progress()).unwrap();
    }
    // A crashed run's temporary file (its pid cannot exist) and some junk.
    let leftover = dir.join(".dbtool-backup-4000000000-0.tmp");
    fs::write(&leftover, b"partial").unwrap();
    fs::write(dir.join("notes.txt"), b"x").unwrap();
    fs::write(dir.join("broken.db.zst"), b"not a backup").unwrap();

    let entries = list(&dir).unwrap();
    let reasons: Vec<_> = entries
        .iter()
        .map(|e| e.meta.as_ref().map(|m| m.reason.as_str()).unwrap_or("?"))
        .collect();
    assert_eq!(reasons, ["third", "second", "first", "?"]);
    assert!(entries[3]
        .problem
        .as_deref()
        .unwrap()
        .contains("not a dbtool backup"));
    assert!(entries[0].ratio.unwrap() > 1.0);

    assert_eq!(cleanup_leftovers(&dir), vec![leftover.clone()]);
    assert!(!leftover.exists());
}

#[test]
fn verify_detects_every_kind_of_damage() {
    let (tmp, db, dir) = setup(true, 300);
    let good = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let scratch = tmp.path();
    verify(&good.path, scratch, CheckLevel::Full, &mut no_progress()).unwrap();
    let bytes = fs::read(&good.path).unwrap();
    let damaged = |name: &str, data: &[u8]| {
        let p = tmp.path().join(name);
        fs::write(&p, data).unwrap();
        verify(&p, scratch, CheckLevel::Full, &mut no_progress())
            .unwrap_err()
            .code()
    };
    assert_eq!(
        damaged("trunc.db.zst", &bytes[..bytes.len() - 100]),
        "backup-corrupt"
    );
    let mut flipped = bytes.clone();
    let mid = bytes.len() - (bytes.len() - 1024) / 2;
    flipped[mid] ^= 0x55;
    assert_eq!(damaged("flip.db.zst", &flipped), "backup-corrupt");
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"junk");
    assert_eq!(damaged("trail.db.zst", &trailing), "backup-corrupt");
    assert_eq!(
        damaged("random.db.zst", b"hello world, not zstd"),
        "not-a-backup"
    );
    assert_eq!(
        damaged(
            "plain.db.zst",
            &zstd::encode_all(&fs::read(&db).unwrap()[..], 3).unwrap()
        ),
        "not-a-backup"
    );
    // A well-formed backup whose payload is not SQLite.
    let mut meta = good.meta.clone();
    let payload = vec![7u8; meta.image_size as usize];
    meta.xxh3_128 = Some(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&payload)));
    let mut file = format::encode_header(&meta, None).unwrap();
    let mut enc = zstd::stream::write::Encoder::new(&mut file, 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(&payload).unwrap();
    enc.finish().unwrap();
    assert_eq!(damaged("notsqlite.db.zst", &file), "backup-not-sqlite");
    // Same bytes, wrong recorded hash.
    let mut meta2 = good.meta.clone();
    meta2.xxh3_128 = Some("ff".repeat(16));
    let mut rehashed = format::encode_header(&meta2, None).unwrap();
    let header_len = format::encode_header(&good.meta, None).unwrap().len();
    rehashed.extend_from_slice(&bytes[header_len..]);
    assert_eq!(damaged("hash.db.zst", &rehashed), "backup-hash-mismatch");
    // No scratch file is left behind by the failures.
    assert!(fs::read_dir(scratch).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn round_trip_restore_over_changed_database() {
    for wal in [false, true] {
        let (_tmp, db, dir) = setup(wal, 200);
        let before = dump(&db);
        let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("DELETE FROM child; DELETE FROM parent WHERE id > 10; VACUUM;")
            .unwrap();
        drop(conn);
        assert_ne!(dump(&db), before);

        let mut ro = restore_opts();
        let mut safety = opts(&dir, MethodChoice::Auto);
        safety.reason = "before-restore".into();
        safety.now = NOW + time::Duration::seconds(1);
        ro.safety_backup = Some(safety);
        let report = restore(&db, &b.path, &ro, &mut no_progress()).unwrap();
        assert!(report.replaced_existing);
        assert_eq!(dump(&db), before);
        // The safety backup holds the changed database and is itself restorable.
        let safety = report.safety_backup.unwrap();
        assert_eq!(safety.meta.reason, "before-restore");
        verify(&safety.path, &dir, CheckLevel::Full, &mut no_progress()).unwrap();
        // No temporary file is left beside the database.
        let leftovers: Vec<_> = fs::read_dir(db.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

/// A connection that leaves its `-wal` behind on close, like a process killed mid-work.
fn write_and_leave_wal(db: &Path, sql: &str) {
    let conn = Connection::open(db).unwrap();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn stale_wal_beside_the_target_does_not_resurrect_old_pages() {
    let (tmp, db, dir) = setup(true, 200);
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let expected = dump(&db);
    write_and_leave_wal(
        &db,
        "INSERT INTO parent(body) VALUES ('ghost'); DELETE FROM child;",
    );
    let wal = tmp.path().join("content.db-wal");
    assert!(fs::metadata(&wal).unwrap().len() > 0);
    restore(&db, &b.path, &restore_opts(), &mut no_progress()).unwrap();
    assert_eq!(dump(&db), expected);
    // Opening again (which replays any WAL) still shows the backup's data.
    assert_eq!(dump(&db), expected);
}

#[test]
fn restore_into_a_deleted_database_ignores_its_orphaned_wal() {
    let (tmp, db, dir) = setup(true, 200);
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let expected = dump(&db);
    write_and_leave_wal(
        &db,
        "INSERT INTO parent(body) VALUES ('ghost'); DELETE FROM child;",
    );
    fs::remove_file(&db).unwrap();
    assert!(tmp.path().join("content.db-wal").exists());
    let report = restore(&db, &b.path, &restore_opts(), &mut no_progress()).unwrap();
    assert!(!report.replaced_existing);
    assert_eq!(dump(&db), expected);
}

#[test]
fn backup_of_another_database_needs_force() {
    let (tmp, db, dir) = setup(false, 20);
    let other = tmp.path().join("other.db");
    make_db(&other, false, 3);
    let b = create(&other, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let before = fs::read(&db).unwrap();
    let err = restore(&db, &b.path, &restore_opts(), &mut no_progress()).unwrap_err();
    assert_eq!(err.code(), "backup-different-database");
    assert_eq!(fs::read(&db).unwrap(), before);
    let mut ro = restore_opts();
    ro.force = true;
    let r = restore(&db, &b.path, &ro, &mut no_progress()).unwrap();
    assert!(r.forced_other_database);
    assert_eq!(dump(&db), dump(&other));
}

#[test]
fn damaged_backup_leaves_the_database_byte_for_byte_unchanged() {
    let (tmp, db, dir) = setup(false, 200);
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM child", [])
        .unwrap();
    let before = fs::read(&db).unwrap();
    let bytes = fs::read(&b.path).unwrap();
    let bad = tmp.path().join("bad.db.zst");
    fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let mut ro = restore_opts();
    ro.force = true;
    ro.safety_backup = Some(opts(&dir, MethodChoice::Auto));
    let err = restore(&db, &bad, &ro, &mut no_progress()).unwrap_err();
    assert_eq!(err.code(), "backup-corrupt");
    assert_eq!(fs::read(&db).unwrap(), before);
    // The failed restore took no safety backup (it verifies first) and left nothing behind.
    assert_eq!(list(&dir).unwrap().len(), 1);
}

#[test]
fn database_locked_exclusively_by_another_connection() {
    let (_tmp, db, dir) = setup(false, 20);
    let holder = Connection::open(&db).unwrap();
    holder
        .execute_batch("BEGIN EXCLUSIVE; DELETE FROM child;")
        .unwrap();
    for method in [MethodChoice::Dbpage, MethodChoice::BackupApi] {
        let err = create(&db, &opts(&dir, method), &mut no_progress()).unwrap_err();
        assert_eq!(err.code(), "database-locked", "{method:?}: {err}");
    }
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(list(&dir).unwrap().is_empty());
}

#[test]
fn bad_database_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let o = opts(&dir, MethodChoice::Auto);
    let e = create(&tmp.path().join("missing.db"), &o, &mut no_progress()).unwrap_err();
    assert_eq!(e.code(), "database-missing");
    let e = create(tmp.path(), &o, &mut no_progress()).unwrap_err();
    assert_eq!(e.code(), "not-a-database");
    let junk = tmp.path().join("junk.db");
    fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let e = create(&junk, &o, &mut no_progress()).unwrap_err();
    assert_eq!(e.code(), "not-a-database");
    assert!(list(&dir).unwrap().is_empty());
}

#[test]
fn backup_during_continuous_writes_is_a_consistent_prefix() {
    for (wal, method) in [
        (true, MethodChoice::Dbpage),
        (true, MethodChoice::BackupApi),
        (false, MethodChoice::Dbpage),
        (false, MethodChoice::BackupApi),
    ] {
        let (tmp, db, dir) = setup(wal, 2000);
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel();
        let writer = {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let conn = Connection::open(&db).unwrap();
                conn.busy_timeout(Duration::from_secs(30)).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Each transaction adds a parent and its child: a consistent snapshot has
                    // as many children as parents.
                    conn.execute_batch(
                        "BEGIN IMMEDIATE;
                         INSERT INTO parent(body) VALUES (hex(randomblob(200)));
                         INSERT INTO child(parent_id, note) VALUES (last_insert_rowid(), 'w');
                         COMMIT;",
                    )
                    .unwrap();
                    n += 1;
                    if n == 1 {
                        started_tx.send(()).unwrap();
                    }
                }
                n
            })
        };
        started_rx.recv().unwrap();
        let mut o = opts(&dir, method);
        o.busy_timeout = Duration::from_secs(30);
        let b = create(&db, &o, &mut no_progress()).unwrap();
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written >= 1);

        let copy = tmp.path().join("copy.db");
        let r = restore(
            &copy,
            &b.path,
            &RestoreOptions {
                force: true,
                ..restore_opts()
            },
            &mut no_progress(),
        )
        .unwrap();
        assert!(!r.replaced_existing);
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
        let (parents, children, max_id): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM child),
                        (SELECT max(id) FROM parent)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(parents, children, "wal={wal} {method:?}");
        // A prefix: ids 1..=max with no gaps, at least the rows that existed before.
        assert_eq!(parents, max_id);
        assert!(parents > 2000);
    }
}

#[test]
fn prune_keeps_newest_and_respects_both_rules() {
    let (tmp, db, dir) = setup(false, 5);
    let other = tmp.path().join("other.db");
    make_db(&other, false, 1);
    for day in 0..6 {
        let mut o = opts(&dir, MethodChoice::Auto);
        o.now = NOW - time::Duration::days(10 - day);
        create(&db, &o, &mut no_progress()).unwrap();
    }
    create(&other, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let source = canonical_db_path(&db);
    // Backups are 10, 9, 8, 7, 6 and 5 days old. Keep 5 or younger than 1 day: the count rule.
    let r = prune(
        &dir,
        &source,
        Retention {
            keep: Some(5),
            keep_days: Some(1),
        },
        NOW,
    )
    .unwrap();
    assert_eq!((r.kept.len(), r.deleted.len()), (5, 1));
    // Keep 1 or younger than 8 days: the age rule keeps the 7, 6 and 5 day old ones.
    let r = prune(
        &dir,
        &source,
        Retention {
            keep: Some(1),
            keep_days: Some(8),
        },
        NOW,
    )
    .unwrap();
    assert_eq!((r.kept.len(), r.deleted.len()), (3, 2));
    // keep 0 still never deletes the newest.
    let r = prune(
        &dir,
        &source,
        Retention {
            keep: Some(0),
            keep_days: None,
        },
        NOW,
    )
    .unwrap();
    assert_eq!(r.kept.len(), 1);
    assert_eq!(
        r.kept[0].meta.as_ref().unwrap().created_at,
        NOW - time::Duration::days(5)
    );
    // The other database's backup is untouched.
    assert_eq!(list(&dir).unwrap().len(), 2);
}

#[test]
fn progress_is_reported_up_to_the_total() {
    let (_tmp, db, dir) = setup(true, 3000);
    let mut seen = Vec::new();
    let r = create(&db, &opts(&dir, MethodChoice::Auto), &mut |p| seen.push(p)).unwrap();
    let last_backup = seen
        .iter()
        .rev()
        .find(|p| p.phase == Phase::Backup)
        .unwrap();
    assert_eq!(last_backup.done, r.meta.image_size);
    assert_eq!(last_backup.total, r.meta.image_size);
    assert!(seen.iter().any(|p| p.phase == Phase::ReadBack));
}

#[test]
fn an_empty_database_file_backs_up_and_restores_as_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("empty.db");
    fs::write(&db, b"").unwrap();
    let dir = tmp.path().join("b");
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    assert_eq!(b.meta.image_size, 0);
    verify(&b.path, &dir, CheckLevel::Full, &mut no_progress()).unwrap();
    let copy = tmp.path().join("copy.db");
    let ro = RestoreOptions {
        force: true,
        ..restore_opts()
    };
    restore(&copy, &b.path, &ro, &mut no_progress()).unwrap();
    assert_eq!(fs::metadata(&copy).unwrap().len(), 0);
}

/// With `DBTOOL_TEST_HOLD=<db>` this test is a helper process for the ones below: it opens the
/// database (and reads once with `DBTOOL_TEST_HOLD_READ`, after which a WAL connection holds
/// SQLite's shared lock), prints "holder-ready" and keeps the connection until its stdin closes.
#[test]
fn hold_database_open_helper() {
    let Ok(db) = std::env::var("DBTOOL_TEST_HOLD") else {
        return;
    };
    let conn = Connection::open(db).unwrap();
    if std::env::var_os("DBTOOL_TEST_HOLD_READ").is_some() {
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .unwrap();
    }
    println!("holder-ready");
    let _ = io::Read::read_to_end(&mut io::stdin(), &mut Vec::new());
}

/// Another process with `db` open, until dropped.
struct Holder(
    std::process::Child,
    io::BufReader<std::process::ChildStdout>,
);

fn hold(db: &Path, read: bool) -> Holder {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "backup::tests::hold_database_open_helper",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("DBTOOL_TEST_HOLD", db)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    if read {
        cmd.env("DBTOOL_TEST_HOLD_READ", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // libtest prints the test's name on the same line first.
    while !line.trim_end().ends_with("holder-ready") {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "the helper process did not open the database");
    }
    Holder(child, out)
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        // Read what the helper still prints, so it never writes into a closed pipe.
        let _ = io::Read::read_to_end(&mut self.1, &mut Vec::new());
        let _ = self.0.wait();
    }
}

#[test]
fn restore_renames_when_nobody_else_has_the_database_open_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    for wal in [false, true] {
        let (tmp, db, dir) = setup(wal, 200);
        let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
        let expected = dump(&db);
        write_and_leave_wal(
            &db,
            "DELETE FROM child; INSERT INTO parent(body) VALUES ('x');",
        );
        fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).unwrap();
        let r = restore(&db, &b.path, &restore_opts(), &mut no_progress()).unwrap();
        assert_eq!(r.replacement, Some(ReplacedBy::Rename), "wal {wal}");
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(dump(&db), expected);
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn restore_replaces_in_place_while_another_process_has_the_database_open() {
    // WAL: the other connection has read, so it holds SQLite's shared lock. Rollback journal: it
    // is idle and holds no lock, but has the file open.
    for (wal, read) in [(true, true), (false, false)] {
        let (_tmp, db, dir) = setup(wal, 200);
        let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
        let expected = dump(&db);
        Connection::open(&db)
            .unwrap()
            .execute("DELETE FROM child", [])
            .unwrap();
        let holder = hold(&db, read);
        let r = restore(&db, &b.path, &restore_opts(), &mut no_progress()).unwrap();
        match &r.replacement {
            Some(ReplacedBy::InPlace(why)) => assert!(
                why.contains("lock") || why.contains("has it open") || why.contains("using it"),
                "{why}"
            ),
            other => panic!("wal {wal}: {other:?}"),
        }
        drop(holder);
        assert_eq!(dump(&db), expected);
    }
}

/// A backup file holding `image` under its correct content hash (format 2: XXH3-128), or under
/// a `wrong` one (as this dbtool writes it, or as format 1 did: a SHA-256 alone, or both).
fn backup_of_image(like: &BackupMeta, image: &[u8], wrong: Option<Wrong>, to: &Path) {
    let mut meta = like.clone();
    meta.xxh3_128 = Some(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(image)));
    let sha = format::hex(&Sha256::digest(image));
    match wrong {
        None => {}
        Some(Wrong::Xxh3) => meta.xxh3_128 = Some("cd".repeat(16)),
        Some(Wrong::OldFormatSha) => {
            meta.format_version = 1;
            meta.sha256 = Some("ab".repeat(32));
            meta.xxh3_128 = None;
        }
        Some(Wrong::OldFormatBoth) => {
            meta.format_version = 1;
            meta.sha256 = Some(sha);
            meta.xxh3_128 = Some("cd".repeat(16));
        }
    }
    let mut file = format::encode_header(&meta, None).unwrap();
    let mut enc = zstd::stream::write::Encoder::new(&mut file, 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(image).unwrap();
    enc.finish().unwrap();
    fs::write(to, file).unwrap();
}

enum Wrong {
    Xxh3,
    OldFormatSha,
    OldFormatBoth,
}

#[test]
fn corrupted_image_or_hash_mismatch_is_refused_with_the_database_unchanged() {
    let (tmp, db, dir) = setup(true, 400);
    let b = create(&db, &opts(&dir, MethodChoice::Auto), &mut no_progress()).unwrap();
    let mut image = Vec::new();
    read_payload(
        &b.path,
        Phase::Decompress,
        Hash::Check,
        &mut no_progress(),
        &mut |c| {
            image.extend_from_slice(c);
            Ok(())
        },
    )
    .unwrap();
    write_and_leave_wal(&db, "DELETE FROM child WHERE id > 5;");
    // The database and its WAL, by digest (`-shm` is an index SQLite rebuilds, not data).
    let files = || {
        ["", "-wal"].map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            fs::read(PathBuf::from(p))
                .map(|b| format::hex(&Sha256::digest(b)))
                .ok()
        })
    };
    let before = files();

    // A b-tree page in the middle zeroed: decompresses and hashes fine, fails quick_check.
    let page = b.meta.page_size as usize;
    let mid = (b.meta.page_count as usize / 2) * page;
    let mut corrupted = image.clone();
    corrupted[mid..mid + page].fill(0);
    let bad = tmp.path().join("corrupted.db.zst");
    backup_of_image(&b.meta, &corrupted, None, &bad);
    let mut ro = restore_opts();
    ro.safety_backup = Some(opts(&dir, MethodChoice::Auto));
    ro.check = CheckLevel::Quick;
    let err = restore(&db, &bad, &ro, &mut no_progress()).unwrap_err();
    assert_eq!(err.code(), "backup-integrity-failed", "{err}");
    assert_eq!(files(), before);

    // The right image under another recorded hash (also as format 1 wrote it).
    for wrong in [Wrong::Xxh3, Wrong::OldFormatSha, Wrong::OldFormatBoth] {
        let mismatch = tmp.path().join("mismatch.db.zst");
        backup_of_image(&b.meta, &image, Some(wrong), &mismatch);
        let err = restore(&db, &mismatch, &ro, &mut no_progress()).unwrap_err();
        assert_eq!(err.code(), "backup-hash-mismatch", "{err}");
        assert_eq!(files(), before);
    }
    // The same file with its right hashes verifies.
    let good = tmp.path().join("good.db.zst");
    backup_of_image(&b.meta, &image, None, &good);
    verify(&good, tmp.path(), CheckLevel::Full, &mut no_progress()).unwrap();
}
