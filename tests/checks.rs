//! `check`, `verify`, `inspect`, `rehearse`, `exec` and `upgrade --rehearse`, driven through the
//! real binary on real SQLite files in temporary folders. Every detector is provoked by the
//! change it exists to catch, and the test asserts the message and the exit status; the commands
//! that must not write assert the database file is byte-for-byte unchanged.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rusqlite::Connection;
use serde_json::Value;

const DIFFERENCE: i32 = 3;
const FAILURE: i32 = 1;

/// A temporary project: a copy of the repository's migrations and, once `init`ed, content.db.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.path().join("migrations").join(entry.file_name()),
            )
            .unwrap();
        }
        Project { dir }
    }

    /// A project whose content.db is a copy of content.db.example (head, with demo data).
    fn with_example() -> Project {
        let project = Project::new();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("content.db.example"),
            project.db(),
        )
        .unwrap();
        project
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> PathBuf {
        self.path("content.db")
    }

    /// An empty content.db (`upgrade` never creates the file).
    fn empty_db(&self) {
        std::fs::write(self.db(), b"").unwrap();
    }

    fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.path("migrations").join(file), sql).unwrap();
    }

    fn remove_migration(&self, file: &str) {
        std::fs::remove_file(self.path("migrations").join(file)).unwrap();
    }

    /// The binary, in the project folder, with a hermetic environment.
    fn dbtool(&self) -> Command {
        let mut cmd = Command::cargo_bin("dbtool").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("DBTOOL_MIGRATIONS")
            .env_remove("DBTOOL_BACKUP_DIR")
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.path("xdg"))
            .env("TMPDIR", self.dir.path());
        cmd
    }

    /// Run `args`; return (exit status, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.dbtool().args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = self.run(&all);
        let value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
        (code, value)
    }

    fn sql(&self, sql: &str) {
        let conn = Connection::open(self.db()).unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn count(&self, sql: &str) -> i64 {
        let conn = Connection::open(self.db()).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.db()).unwrap()
    }

    /// Names of the files in the project folder (to see that nothing was left behind).
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn codes(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

// --- check ----------------------------------------------------------------------------------

#[test]
fn check_passes_a_clean_database() {
    let p = Project::with_example();
    let before = p.bytes();
    let (code, out, err) = p.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("at version 8 (head)"), "{out}");
    assert!(
        out.contains("ok: schema matches the migrations, nothing pending, quick_check ok, no foreign-key violations"),
        "{out}"
    );
    let (code, out, _) = p.run(&["check", "--full"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("integrity_check ok"), "{out}");
    let (code, json) = p.json(&["check"]);
    assert_eq!(code, 0);
    assert_eq!(json["findings"], Value::Array(vec![]));
    assert_eq!(json["drift_checked"], true);
    assert_eq!(p.bytes(), before, "check must not write");
}

#[test]
fn check_finds_a_table_created_by_hand() {
    let p = Project::with_example();
    p.sql("CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL)");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[schema-drift]: table audit is in the database but not in the migrations (created by hand?)"),
        "{out}"
    );
    assert!(out.contains("+CREATE TABLE audit("), "{out}");
    assert!(out.contains("+  what TEXT NOT NULL"), "{out}");
    assert!(out.contains("1 problem(s) found"), "{out}");
}

#[test]
fn check_finds_an_index_dropped_by_hand() {
    let p = Project::with_example();
    p.sql("DROP INDEX idx_users_email");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[schema-drift]: index idx_users_email on users is in the migrations but not in the database (dropped by hand?)"),
        "{out}"
    );
    assert!(
        out.contains("-CREATE INDEX idx_users_email ON users(email)"),
        "{out}"
    );
}

#[test]
fn check_finds_a_column_added_by_hand_as_a_line_diff() {
    let p = Project::with_example();
    p.sql("ALTER TABLE users ADD COLUMN nickname TEXT");
    let (code, json) = p.json(&["check"]);
    assert_eq!(code, DIFFERENCE);
    let finding = &json["findings"][0];
    assert_eq!(finding["code"], "schema-drift");
    assert_eq!(
        finding["message"],
        "table users in the database differs from the migrations (changed by hand?)"
    );
    let change = &finding["diff"]["changes"][0];
    assert_eq!(change["change"], "changed");
    assert!(change["actual"].as_str().unwrap().contains("nickname TEXT"));
    assert!(!change["expected"].as_str().unwrap().contains("nickname"));
}

#[test]
fn check_ignores_formatting_differences() {
    // The same index, recreated by hand with other spacing, case and quoting: not drift.
    let p = Project::with_example();
    p.sql(
        "DROP INDEX idx_users_email; create   index \"IDX_USERS_EMAIL\" on \"Users\" ( Email ) ;",
    );
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn check_finds_an_edited_applied_migration() {
    let p = Project::with_example();
    // (sessions: posts and users are rebuilt by generated migrations later, whose guards refuse
    // to run on a table an edited earlier file changed)
    let path = p.path("migrations").join("V0002__create_sessions.sql");
    let mut sql = std::fs::read_to_string(&path).unwrap();
    sql.push_str("CREATE INDEX idx_sessions_created ON sessions (created_at);\n");
    std::fs::write(&path, sql).unwrap();
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[edited-migration]: applied migration V2__create_sessions was edited since it was applied"),
        "{out}"
    );
    // and the schema the edited file now produces is shown against the database
    assert!(
        out.contains(
            "index idx_sessions_created on sessions is in the migrations but not in the database"
        ),
        "{out}"
    );
}

#[test]
fn check_finds_a_missing_applied_migration_file_and_skips_drift() {
    let p = Project::with_example();
    p.remove_migration("V0003__create_posts.sql");
    p.remove_migration("V0003__create_posts.down.sql");
    let (code, json) = p.json(&["check"]);
    assert_eq!(code, DIFFERENCE);
    assert_eq!(codes(&json["findings"]), vec!["missing-migration-file"]);
    assert_eq!(json["drift_checked"], false);
    assert!(json["notes"][0]
        .as_str()
        .unwrap()
        .contains("applied migration V3__create_posts has no file"));
}

#[test]
fn check_finds_pending_migrations() {
    let p = Project::new();
    p.empty_db(); // `upgrade` never creates the database
    let (code, _, err) = p.run(&["upgrade", "4"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[pending-migrations]: 4 migration(s) pending: the database is at version 4, the files go to version 8"),
        "{out}"
    );
    assert!(out.contains("V5__create_oauth_tokens"), "{out}");
    assert!(!out.contains("schema-drift"), "{out}");
}

#[test]
fn check_finds_foreign_key_violations() {
    let p = Project::with_example();
    p.sql("PRAGMA foreign_keys = OFF; INSERT INTO sessions (id, user_id, expires_at) VALUES ('orphan', 99, 'x');");
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains(
            "problem[foreign-key-violation]: 1 row(s) point at a parent row that does not exist"
        ),
        "{out}"
    );
    assert!(out.contains("sessions rowid 3 -> users"), "{out}");
}

#[test]
fn check_finds_a_damaged_file() {
    let p = Project::with_example();
    // Page 13 is idx_users_email's root in content.db.example: zero its first cell pointer area.
    let conn = Connection::open(p.db()).unwrap();
    let (root, page_size): (i64, i64) = conn
        .query_row(
            "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_schema WHERE name = 'idx_users_email'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);
    let mut bytes = p.bytes();
    let at = ((root - 1) * page_size) as usize;
    bytes[at + 3] = 0x00; // cell count: 0x0040 cells on a page that holds 3
    bytes[at + 4] = 0x40;
    std::fs::write(p.db(), bytes).unwrap();
    let (code, out, _) = p.run(&["check"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[integrity-check]: PRAGMA quick_check reports"),
        "{out}"
    );
    assert!(out.contains("… and "), "long reports are cut: {out}");
}

// --- verify ---------------------------------------------------------------------------------

#[test]
fn verify_passes_the_example_migrations_and_database() {
    let p = Project::with_example();
    let before = p.bytes();
    let (code, out, err) = p.run(&["verify", "--database", "content.db", "--data", "content.db"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stairway: 8 round trip(s) (up, down, up), 24 migration runs"),
        "{out}"
    );
    assert!(
        out.contains("database content.db: at version 8 (head): ok"),
        "{out}"
    );
    assert!(
        out.contains("8 down-then-up round trip(s) on a copy"),
        "{out}"
    );
    assert!(out.ends_with("verify passed\n"), "{out}");
    assert_eq!(p.bytes(), before, "verify --data works on a copy");
    assert!(
        !p.files().iter().any(|f| f.starts_with("dbtool-")),
        "scratch copy removed: {:?}",
        p.files()
    );
}

#[test]
fn verify_finds_a_down_that_forgets_an_index() {
    let p = Project::new();
    p.migration(
        "V0009__index_names.sql",
        "CREATE INDEX idx_users_name ON users (name);\n",
    );
    p.migration(
        "V0009__index_names.down.sql",
        "-- a typo: the index is never dropped (an empty down is its own finding, empty-down)\nDROP INDEX IF EXISTS idx_users_nam;\n",
    );
    let (code, out, _) = p.run(&["verify"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[down-does-not-restore]: V0009__index_names: the down does not restore the schema of V0008__make_users_full_name_not_null: left behind index idx_users_name on users"),
        "{out}"
    );
    assert!(
        out.contains("+CREATE INDEX idx_users_name ON users(name)"),
        "{out}"
    );
    assert!(
        out.contains("index idx_users_name already exists"),
        "up again fails: {out}"
    );
    assert!(
        out.ends_with(
            "verify FAILED: 1 problem(s); the stairway first fails at V0009__index_names\n"
        ),
        "{out}"
    );
}

#[test]
fn verify_finds_a_down_that_leaves_a_table_behind() {
    let p = Project::new();
    p.migration(
        "V0009__tags.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nCREATE INDEX idx_tags_name ON tags (name);\n",
    );
    p.migration("V0009__tags.down.sql", "DROP INDEX idx_tags_name;\n");
    // a correct migration after it is still checked, from the right schema
    p.migration(
        "V0010__notes.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
    );
    p.migration("V0010__notes.down.sql", "DROP TABLE notes;\n");
    let (code, json) = p.json(&["verify"]);
    assert_eq!(code, DIFFERENCE);
    assert_eq!(codes(&json["findings"]), vec!["down-does-not-restore"]);
    let finding = &json["findings"][0];
    assert!(
        finding["message"].as_str().unwrap().starts_with("V0009__tags: the down does not restore the schema of V0008__make_users_full_name_not_null: left behind table tags"),
        "{finding}"
    );
    assert_eq!(finding["diff"]["changes"][0]["change"], "unexpected");
    assert_eq!(json["first_failure"], "V0009__tags");
    assert_eq!(json["round_trips"], 10);
}

#[test]
fn verify_finds_a_migration_that_breaks_a_foreign_key() {
    let p = Project::new();
    p.migration(
        "V0009__seed_sessions.sql",
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ('seed', 42, '2030-01-01');\n",
    );
    p.migration(
        "V0009__seed_sessions.down.sql",
        "DELETE FROM sessions WHERE id = 'seed';\n",
    );
    let (code, out, _) = p.run(&["verify"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[up-failed]: V0009__seed_sessions: the up migration fails after V0008__make_users_full_name_not_null: this upgrade would leave 1 new foreign-key violation(s): sessions rowid 1 -> users"),
        "{out}"
    );
}

#[test]
fn verify_finds_gaps_and_missing_downs_and_respects_irreversible() {
    let p = Project::new();
    p.migration("V0009__no_down.sql", "CREATE TABLE a (x);\n");
    p.migration(
        "V0011__one_way.sql",
        "-- dbtool:irreversible\nCREATE TABLE b (x);\n",
    );
    let (code, json) = p.json(&["verify"]);
    assert_eq!(code, DIFFERENCE);
    assert_eq!(
        codes(&json["findings"]),
        vec!["version-gap", "missing-down"]
    );
    assert_eq!(
        json["findings"][0]["message"],
        "no migration between V0009__no_down and V0011__one_way: version 10 is missing"
    );
    assert!(json["findings"][1]["message"]
        .as_str()
        .unwrap()
        .starts_with("V0009__no_down has no down migration"));
    assert_eq!(
        json["notes"][0],
        "V0011__one_way is marked irreversible: no round trip for it"
    );
}

#[test]
fn verify_reports_duplicate_versions_as_a_finding() {
    let p = Project::new();
    p.migration("V0009__a.sql", "CREATE TABLE a (x);\n");
    p.migration("V9__b.sql", "CREATE TABLE b (x);\n");
    let (code, json) = p.json(&["verify"]);
    assert_eq!(code, DIFFERENCE);
    assert_eq!(codes(&json["findings"]), vec!["duplicate-version"]);
}

#[test]
fn verify_database_finds_drift() {
    let p = Project::with_example();
    p.sql("CREATE TABLE scratch (x)");
    let (code, out, _) = p.run(&["verify", "--database", "content.db"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("database content.db: at version 8 (head): PROBLEMS"),
        "{out}"
    );
    assert!(
        out.contains(
            "  problem[schema-drift]: table scratch is in the database but not in the migrations"
        ),
        "{out}"
    );
    // without --database, the database is not part of verify
    let (code, out, _) = p.run(&["verify"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn verify_data_finds_a_down_that_loses_rows() {
    let p = Project::with_example();
    p.migration(
        "V0009__post_titles.sql",
        "ALTER TABLE posts ADD COLUMN title TEXT;\n",
    );
    p.migration(
        "V0009__post_titles.down.sql",
        "DELETE FROM posts WHERE status = 'draft';\nALTER TABLE posts DROP COLUMN title;\n",
    );
    let (code, _, err) = p.run(&["upgrade"]);
    assert_eq!(code, 0, "{err}");
    let before = p.bytes();
    let (code, out, _) = p.run(&["verify", "--data", "content.db"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(
        out.contains("problem[row-count-changed]: V0009__post_titles: down-then-up does not keep the row count of 1 table(s)"),
        "{out}"
    );
    assert!(
        out.contains("posts: 4 row(s) before the down, 3 after down and up again"),
        "{out}"
    );
    assert_eq!(p.bytes(), before);

    // Marked lossy, the same loss is a note.
    p.migration(
        "V0009__post_titles.down.sql",
        "-- dbtool:lossy\nDELETE FROM posts WHERE status = 'draft';\nALTER TABLE posts DROP COLUMN title;\n",
    );
    let (code, out, _) = p.run(&["verify", "--data", "content.db"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("note: V0009__post_titles: its down is marked lossy and changes row counts: posts: 4 row(s)"), "{out}");
}

// --- rehearse and upgrade --rehearse -----------------------------------------------------------

#[test]
fn rehearse_reports_each_step_and_leaves_the_file_byte_identical() {
    let p = Project::new();
    p.empty_db(); // `upgrade` never creates the database
    p.run(&["upgrade", "4"]);
    p.sql("INSERT INTO users (linkedin_sub, name) VALUES ('a', 'Ann'), ('b', 'Bob');");
    let before = p.bytes();
    let (code, out, err) = p.run(&["rehearse"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("version 4 -> version 8"), "{out}");
    assert!(out.contains("passed   V5__create_oauth_tokens"), "{out}");
    assert!(out.contains("oauth_tokens: (none) -> 0 rows"), "{out}");
    assert!(out.contains("passed   V6__add_users_full_name"), "{out}");
    assert!(out.contains("2 row(s) changed"), "the backfill: {out}");
    assert!(out.contains("rehearsal passed: 4 migration(s)"), "{out}");
    assert_eq!(p.bytes(), before, "rehearse must not touch the database");
    assert_eq!(
        p.count("SELECT max(version) FROM refinery_schema_history"),
        4
    );
    assert!(
        !p.files().iter().any(|f| f.starts_with("dbtool-")),
        "scratch copy removed: {:?}",
        p.files()
    );

    let (code, json) = p.json(&["rehearse"]);
    assert_eq!(code, 0);
    let rows = &json["steps"][1]["rows"];
    let users = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "users")
        .unwrap();
    assert_eq!(users["before"], 2);
    assert_eq!(users["after"], 2);
    assert_eq!(json["steps"][1]["rows_changed"], 2);
}

#[test]
fn rehearse_copies_a_live_wal_database_consistently() {
    // Rows committed to the -wal file and not yet checkpointed are part of the database; a copy
    // of the main file alone would miss them.
    let p = Project::new();
    p.empty_db(); // `upgrade` never creates the database
    p.run(&["upgrade", "4"]);
    let conn = Connection::open(p.db()).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    conn.execute_batch(
        "INSERT INTO users (linkedin_sub, name) VALUES ('a', 'Ann'), ('b', 'Bob'), ('c', 'Cy');",
    )
    .unwrap();
    let wal = p.path("content.db-wal");
    let (main_before, wal_before) = (p.bytes(), std::fs::read(&wal).unwrap());
    assert!(!wal_before.is_empty());
    let (code, json) = p.json(&["rehearse"]);
    assert_eq!(code, 0, "{json}");
    let users = json["steps"][1]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "users")
        .unwrap()
        .clone();
    assert_eq!(users["before"], 3, "the rows in the WAL are in the copy");
    assert_eq!(json["steps"][1]["rows_changed"], 3);
    assert_eq!(p.bytes(), main_before);
    assert_eq!(std::fs::read(&wal).unwrap(), wal_before);
    drop(conn);
}

#[test]
fn rehearse_finds_a_migration_that_breaks_a_foreign_key_on_the_data() {
    let p = Project::with_example();
    p.migration(
        "V0009__drop_grace.sql",
        "DELETE FROM users WHERE linkedin_sub = 'li-grace';\n",
    );
    p.migration("V0009__drop_grace.down.sql", "-- dbtool:lossy\n");
    let before = p.bytes();
    let (code, out, _) = p.run(&["rehearse"]);
    assert_eq!(code, DIFFERENCE, "{out}");
    assert!(out.contains("FAILED   V9__drop_grace"), "{out}");
    assert!(
        out.contains("problem[foreign-key-violation]: V9__drop_grace fails on a copy of the database: this upgrade would leave 2 new foreign-key violation(s)"),
        "{out}"
    );
    assert!(
        out.contains(
            "rehearsal FAILED at V9__drop_grace (foreign-key-violation); the original is untouched"
        ),
        "{out}"
    );
    assert_eq!(p.bytes(), before);

    // upgrade --rehearse stops before touching the database
    let (code, out, err) = p.run(&["upgrade", "--rehearse"]);
    assert_eq!(code, FAILURE, "{out}{err}");
    assert!(
        err.contains("error[rehearsal-failed]: the rehearsal of the upgrade of"),
        "{err}"
    );
    assert!(
        err.contains("failed at V9__drop_grace (foreign-key-violation); nothing was changed"),
        "{err}"
    );
    assert_eq!(p.bytes(), before);
}

#[test]
fn rehearse_accepts_violations_that_a_later_step_of_the_plan_repairs() {
    // upgrade checks foreign keys at the end of the plan; so does the rehearsal, with a note.
    let p = Project::with_example();
    p.migration(
        "V0009__move_sessions.sql",
        "DELETE FROM users WHERE id = 2;\n",
    );
    p.migration("V0009__move_sessions.down.sql", "-- dbtool:lossy\n");
    p.migration(
        "V0010__fix_orphans.sql",
        "DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users);\nDELETE FROM posts WHERE user_id NOT IN (SELECT id FROM users);\nDELETE FROM chat_messages WHERE user_id NOT IN (SELECT id FROM users);\n",
    );
    p.migration("V0010__fix_orphans.down.sql", "-- dbtool:lossy\n");
    let (code, json) = p.json(&["rehearse"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["passed"], true);
    assert!(json["notes"][0]
        .as_str()
        .unwrap()
        .contains("V9__move_sessions leaves 2 foreign-key violation(s) that later migrations of the plan repair"));
    // and the real upgrade agrees
    let (code, out, err) = p.run(&["upgrade", "--rehearse"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(p.count("SELECT count(*) FROM users"), 2);
}

#[test]
fn upgrade_rehearse_upgrades_after_a_passing_rehearsal() {
    let p = Project::new();
    p.empty_db(); // `upgrade` never creates the database
    p.run(&["upgrade", "4"]);
    let (code, out, err) = p.run(&["upgrade", "--rehearse"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rehearsal passed: 4 migration(s)"), "{out}");
    assert!(out.contains("version 4 -> version 8 (head)"), "{out}");
    assert_eq!(
        p.count("SELECT max(version) FROM refinery_schema_history"),
        8
    );
    let (code, out, _) = p.run(&["rehearse"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to rehearse"), "{out}");
    let (code, _, err) = p.run(&["upgrade", "--rehearse", "--dry-run"]);
    assert_eq!(code, 2, "conflicting flags are a usage error: {err}");
}

// --- exec -----------------------------------------------------------------------------------

const FIX: &str = "-- backfill emails\nUPDATE users SET email = lower(linkedin_sub) || '@example.com'\n WHERE email IS NULL;\n\nDELETE FROM sessions WHERE expires_at < '2026-12-20';\n";

#[test]
fn exec_dry_run_reports_and_changes_nothing() {
    let p = Project::with_example();
    std::fs::write(p.path("fix.sql"), FIX).unwrap();
    let before = p.bytes();
    let (code, out, err) = p.run(&["exec", "fix.sql", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("line    2         1 row(s)  UPDATE users SET email = lower(linkedin_sub) || '@example.com' …"), "{out}");
    assert!(
        out.contains(
            "line    5         1 row(s)  DELETE FROM sessions WHERE expires_at < '2026-12-20';"
        ),
        "{out}"
    );
    assert!(
        out.contains("dry run: 2 row(s) would change in content.db; rolled back, nothing changed"),
        "{out}"
    );
    assert_eq!(p.bytes(), before);
    assert_eq!(
        p.files(),
        vec!["content.db", "fix.sql", "migrations"],
        "no journal left behind"
    );
}

#[test]
fn exec_commits_in_one_transaction() {
    let p = Project::with_example();
    std::fs::write(p.path("fix.sql"), FIX).unwrap();
    let (code, json) = p.json(&["exec", "fix.sql"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["committed"], true);
    assert_eq!(json["rows_changed"], 2);
    assert_eq!(json["statements"][0]["line"], 2);
    assert_eq!(p.count("SELECT count(*) FROM users WHERE email IS NULL"), 0);
    assert_eq!(p.count("SELECT count(*) FROM sessions"), 1);
}

#[test]
fn exec_failure_names_the_line_and_changes_nothing() {
    let p = Project::with_example();
    std::fs::write(
        p.path("fix.sql"),
        "UPDATE users SET name = 'x';\n\nUPDATE posts SET status = 'archived';\n",
    )
    .unwrap();
    let before = p.bytes();
    let (code, _, err) = p.run(&["exec", "fix.sql"]);
    assert_eq!(code, FAILURE, "{err}");
    assert!(err.contains("error[script-failed]: script"), "{err}");
    assert!(
        err.contains("fix.sql failed at line 3: UPDATE posts SET status = 'archived';"),
        "{err}"
    );
    assert!(err.contains("CHECK constraint failed"), "{err}");
    assert_eq!(p.bytes(), before);
}

#[test]
fn exec_refuses_a_script_that_ends_the_transaction() {
    let p = Project::with_example();
    std::fs::write(p.path("fix.sql"), "UPDATE users SET name = 'x';\nCOMMIT;\n").unwrap();
    let before = p.bytes();
    let (code, _, err) = p.run(&["exec", "fix.sql", "--dry-run"]);
    assert_eq!(code, FAILURE, "{err}");
    assert!(err.contains("error[transaction-in-script]"), "{err}");
    assert!(
        err.contains("line 2: `COMMIT;` would end dbtool's transaction"),
        "{err}"
    );
    assert_eq!(p.bytes(), before);
}

#[test]
fn exec_refuses_a_script_that_orphans_rows() {
    let p = Project::with_example();
    std::fs::write(p.path("fix.sql"), "DELETE FROM users WHERE id = 3;\n").unwrap();
    let before = p.bytes();
    let (code, _, err) = p.run(&["exec", "fix.sql"]);
    assert_eq!(code, FAILURE, "{err}");
    assert!(
        err.contains("error[foreign-key-violation]: script"),
        "{err}"
    );
    assert!(err.contains("posts rowid 3 -> users"), "{err}");
    assert_eq!(p.bytes(), before, "no cascade, no commit");
}

// --- inspect --------------------------------------------------------------------------------

#[test]
fn inspect_describes_the_file() {
    let p = Project::with_example();
    let before = p.bytes();
    let (code, json) = p.json(&["inspect"]);
    assert_eq!(code, 0);
    assert_eq!(json["current_version"], 8);
    assert_eq!(json["is_head"], true);
    assert_eq!(json["journal_mode"], "delete");
    assert_eq!(json["page_size"], 4096);
    assert_eq!(
        json["size_bytes"],
        json["page_size"].as_u64().unwrap() * json["page_count"].as_u64().unwrap()
    );
    assert_eq!(json["latest_backup"], Value::Null);
    let tables = json["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "posts",
            "chat_messages",
            "users",
            "oauth_tokens",
            "sessions"
        ]
    );
    let users = &tables[2];
    assert_eq!(users["rows"], 3);
    let indexes: Vec<&str> = users["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(indexes, vec!["idx_users_email", "sqlite_autoindex_users_1"]);
    let (code, out, _) = p.run(&["inspect"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("schema        8 make_users_full_name_not_null (head)"),
        "{out}"
    );
    assert_eq!(p.bytes(), before);
}

// --- a core regression found while building exec ----------------------------------------------

#[test]
fn regression_commit_inside_a_migration_no_longer_commits_half_a_plan() {
    // Before the fix, the COMMIT below committed V7 and the first half of V8; the failure that
    // followed still said "nothing was applied".
    let p = Project::with_example();
    p.migration("V0009__a.sql", "CREATE TABLE a (x);\n");
    p.migration("V0009__a.down.sql", "DROP TABLE a;\n");
    p.migration(
        "V0010__b.sql",
        "CREATE TABLE b (x);\nCOMMIT;\nCREATE TABLE c (x);\n",
    );
    p.migration("V0010__b.down.sql", "DROP TABLE c;\nDROP TABLE b;\n");
    let before = p.bytes();
    let (code, _, err) = p.run(&["upgrade"]);
    assert_eq!(code, FAILURE, "{err}");
    assert!(err.contains("error[transaction-in-script]"), "{err}");
    assert!(
        err.contains("V0010__b.sql line 2: `COMMIT;` would end dbtool's transaction"),
        "{err}"
    );
    assert_eq!(p.bytes(), before);
}
