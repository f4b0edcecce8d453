//! Shared helpers for the integration tests: a hermetic environment per test, and small readers
//! that look at the database file directly (never through dbtool) so that assertions check what
//! is really on disk.
//!
//! Hermetic means: the process runs with a fresh temporary folder as its current directory, with
//! `DATABASE_URL` and every `DBTOOL_*` variable removed, and `HOME` / `XDG_*` pointing into the
//! temporary folder, so neither the developer's shell nor their data folder can leak in.
#![allow(dead_code)] // each test crate uses a different subset

pub mod pg;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use rusqlite::{Connection, OpenFlags};

/// Path of the binary under test.
pub const DBTOOL: &str = env!("CARGO_BIN_EXE_dbtool");

/// One test's world: a temporary folder that is the current directory of every `dbtool` run.
pub struct TestEnv {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        // The binary sees its cwd through getcwd(), which resolves symlinks: compare like with like.
        let root = dir
            .path()
            .canonicalize()
            .expect("canonicalize the temp folder");
        std::fs::create_dir(root.join("home")).unwrap();
        // dbtool looks for dbtool.toml in the cwd and its parents: a stray one above the temp
        // folder would make every test depend on the machine.
        if let Some(stray) = root
            .ancestors()
            .skip(1)
            .map(|d| d.join("dbtool.toml"))
            .find(|p| p.exists())
        {
            panic!("tests are not hermetic: {} exists", stray.display());
        }
        TestEnv { _dir: dir, root }
    }

    /// The temporary folder (the cwd of every run).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The default database: `content.db` in the cwd.
    pub fn db(&self) -> PathBuf {
        self.root.join("content.db")
    }

    /// An empty (zero-byte) `content.db`: SQLite's empty database, for tests that upgrade step by
    /// step from base (`upgrade` never creates the file; `init` would go straight to head).
    pub fn empty_db(&self) {
        std::fs::write(self.db(), b"").unwrap();
    }

    /// The default migrations folder: `./migrations`.
    pub fn migrations(&self) -> PathBuf {
        self.root.join("migrations")
    }

    /// `dbtool` with the hermetic environment, not yet run.
    pub fn command(&self) -> Command {
        Command::from_std(self.std_command())
    }

    /// The same as a `std::process::Command`, for tests that spawn and wait themselves.
    pub fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(DBTOOL);
        hermetic(&mut cmd, &self.root);
        cmd
    }

    /// Run `dbtool ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command().args(args).output().expect("run dbtool");
        Run {
            output,
            root: self.root.clone(),
        }
    }

    /// Run `dbtool ARGS` and insist on exit status 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code(),
            0,
            "dbtool {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        );
        run
    }

    /// Write a file relative to the root, creating folders.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Write `migrations/V{version:04}__{name}.sql` and, when given, its `.down.sql`.
    pub fn migration(&self, version: u32, name: &str, up: &str, down: Option<&str>) -> PathBuf {
        let up_path = self.write(&format!("migrations/V{version:04}__{name}.sql"), up);
        if let Some(down) = down {
            self.write(&format!("migrations/V{version:04}__{name}.down.sql"), down);
        }
        up_path
    }

    /// Four small migrations with downs: authors, books (FK to authors), seed rows, a column.
    pub fn library_set(&self) {
        for (version, name, up, down) in LIBRARY {
            self.migration(*version, name, up, Some(down));
        }
    }

    /// A copy of the repository's example `migrations/` folder.
    pub fn example_set(&self) {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        std::fs::create_dir_all(self.migrations()).unwrap();
        for entry in std::fs::read_dir(source).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), self.migrations().join(entry.file_name())).unwrap();
        }
    }

    /// Replace the absolute temp path in `text` by `$TMP`.
    pub fn normalise(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), "$TMP")
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// Apply the hermetic environment to a command.
pub fn hermetic(cmd: &mut std::process::Command, root: &Path) {
    cmd.current_dir(root);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text == "DATABASE_URL" || key_text.starts_with("DBTOOL_") {
            cmd.env_remove(&key);
        }
    }
    let home = root.join("home");
    cmd.env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("NO_COLOR", "1")
        .env("TZ", "UTC");
}

/// A finished run: exit status and output.
pub struct Run {
    pub output: Output,
    root: PathBuf,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output
            .status
            .code()
            .expect("dbtool was killed by a signal")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8(self.output.stdout.clone())
            .unwrap()
            .replace(&self.root.display().to_string(), "$TMP")
    }

    pub fn stderr(&self) -> String {
        String::from_utf8(self.output.stderr.clone())
            .unwrap()
            .replace(&self.root.display().to_string(), "$TMP")
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&self.output.stdout)
            )
        })
    }

    /// The first line of stderr: `error[code]: message`.
    pub fn error_line(&self) -> String {
        self.stderr().lines().next().unwrap_or_default().to_string()
    }

    /// Assert the exit status and the exact `error[code]: message` line.
    pub fn assert_error(&self, code: i32, line: &str) -> &Run {
        assert_eq!(
            (self.code(), self.error_line().as_str()),
            (code, line),
            "\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The library set used across the test crates.
pub const LIBRARY: &[(u32, &str, &str, &str)] = &[
    (
        1,
        "create_authors",
        "CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
        "DROP TABLE authors;\n",
    ),
    (
        2,
        "create_books",
        "CREATE TABLE books(\n  id INTEGER PRIMARY KEY,\n  author_id INTEGER NOT NULL REFERENCES authors(id),\n  title TEXT NOT NULL\n);\n",
        "DROP TABLE books;\n",
    ),
    (
        3,
        "seed",
        "INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bob');\nINSERT INTO books VALUES (1, 1, 'Alpha'), (2, 2, 'Beta');\n",
        "DELETE FROM books;\nDELETE FROM authors;\n",
    ),
    (
        4,
        "add_isbn",
        "ALTER TABLE books ADD COLUMN isbn TEXT;\n",
        "ALTER TABLE books DROP COLUMN isbn;\n",
    ),
];

// --- reading the database directly ---

/// Open read-only, so a reader never changes what it inspects.
pub fn open(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// `(version, name)` of every history row, by version.
pub fn history(db: &Path) -> Vec<(i32, String)> {
    let conn = open(db);
    let mut stmt = conn
        .prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Versions in the history, by version.
pub fn versions(db: &Path) -> Vec<i32> {
    history(db).into_iter().map(|(v, _)| v).collect()
}

/// User tables (not sqlite_*, not the history), sorted.
pub fn tables(db: &Path) -> Vec<String> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> 'refinery_schema_history' ORDER BY name",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Column names of a table, in order.
pub fn columns(db: &Path, table: &str) -> Vec<String> {
    let conn = open(db);
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    let rows = stmt.query_map([table], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// A single integer from a query.
pub fn int(db: &Path, sql: &str) -> i64 {
    open(db)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A single text from a query.
pub fn text(db: &Path, sql: &str) -> String {
    open(db)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Run SQL on the database outside dbtool (to set up a situation).
pub fn exec(db: &Path, sql: &str) {
    Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The file's bytes (to prove an operation left it untouched).
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Assert that `path` still has exactly the bytes `before`, and no journal was left behind.
pub fn assert_unchanged(path: &Path, before: &[u8]) {
    let after = bytes(path);
    assert!(
        after == before,
        "{} changed: {} bytes before, {} after",
        path.display(),
        before.len(),
        after.len()
    );
    for suffix in ["-journal", "-wal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        assert!(
            !side.exists() || std::fs::metadata(&side).unwrap().len() == 0,
            "{} left behind",
            side.display()
        );
    }
}

/// `PRAGMA integrity_check` says ok.
pub fn assert_integrity(db: &Path) {
    assert_eq!(text(db, "PRAGMA integrity_check"), "ok");
}

/// Every row of `sql` as `a|b|c` text (NULL, numbers, 'text', x[blob bytes]): compact enough to
/// compare whole tables in assertions.
pub fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_string(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => format!("{v:?}"),
                rusqlite::types::ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Blob(b) => format!("x{b:?}"),
            })
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
