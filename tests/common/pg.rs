//! A real PostgreSQL server for the tests: its URL from `DBTOOL_TEST_POSTGRES_URL`
//! (`scripts/pg-server.sh start` gives one), a fresh database per test (dropped afterwards), and
//! readers that look at the server directly, never through dbtool.
//!
//! Without the variable a test prints `SKIPPED …` and returns; under CI (`CI` set) it fails
//! instead, so a server that did not start can never pass as green.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

/// The password the tests put in URLs, to check it is printed nowhere.
pub const PASSWORD_MARK: &str = "pw-must-not-leak";

/// The server's URL (with the test password when the variable's URL has none), or `None` with a
/// visible SKIPPED line.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("DBTOOL_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "{test}: DBTOOL_TEST_POSTGRES_URL is not set under CI (.ci/run starts the server)"
            )
        }
        _ => {
            // Written to the stderr handle, not with eprintln!: the test harness captures the
            // print macros of passing tests, which would hide the line.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: DBTOOL_TEST_POSTGRES_URL is not set (start a server with scripts/pg-server.sh start)"
            );
            None
        }
    }
}

/// `postgres://user[:password]@host:port/` split from its database name.
fn split(url: &str) -> (String, String) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (url.to_string(), String::new()),
    };
    let scheme_end = base.find("://").expect("a URL") + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    (base[..path_start].to_string(), query)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database of its own for one test, dropped (with any session still on it) at the end.
pub struct FreshDb {
    server_base: String,
    query: String,
    name: String,
    url: String,
}

impl FreshDb {
    /// A unique name on `server`, not created (for `init`).
    pub fn reserve(server: &str, test: &str) -> FreshDb {
        let (server_base, query) = split(server);
        // PostgreSQL cuts names past 63 bytes (and the URL would then name another database):
        // keep the test's part short, and to characters that need no quoting in a URL.
        let test: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let name = format!(
            "dbtool_t_{test}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let (scheme, rest) = server_base.split_once("://").expect("a URL");
        let with_password = match rest.split_once('@') {
            Some((userinfo, _)) if userinfo.contains(':') => server_base.clone(),
            // Add the marker password (a trust server ignores it) so leaks can be checked.
            Some((userinfo, host)) => format!("{scheme}://{userinfo}:{PASSWORD_MARK}@{host}"),
            None => server_base.clone(),
        };
        let url = format!("{with_password}/{name}{query}");
        let db = FreshDb {
            server_base,
            query,
            name,
            url,
        };
        db.drop_database();
        db
    }

    /// A new empty database on `server`.
    pub fn create(server: &str, test: &str) -> FreshDb {
        let db = FreshDb::reserve(server, test);
        db.admin()
            .batch_execute(&format!("CREATE DATABASE \"{}\"", db.name))
            .expect("create the test database");
        db
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection to the server's maintenance database.
    pub fn admin(&self) -> Client {
        Client::connect(
            &format!("{}/postgres{}", self.server_base, self.query),
            NoTls,
        )
        .expect("connect to the test server")
    }

    /// A connection to this test's database.
    pub fn client(&self) -> Client {
        Client::connect(
            &format!("{}/{}{}", self.server_base, self.name, self.query),
            NoTls,
        )
        .expect("connect to the test database")
    }

    pub fn versions(&self) -> Vec<i32> {
        let mut c = self.client();
        let exists: bool = c
            .query_one(
                "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
                &[],
            )
            .unwrap()
            .get(0);
        if !exists {
            return Vec::new();
        }
        c.query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    pub fn int(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }

    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.client()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn table_exists(&self, table: &str) -> bool {
        self.client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .unwrap()
            .get(0)
    }

    /// Hold dbtool's advisory lock (as another dbtool run would) until the guard is dropped.
    pub fn lock_dbtool(&self) -> Client {
        let mut c = self.client();
        c.batch_execute("SELECT pg_advisory_lock(7233471973469978625)")
            .unwrap();
        c
    }

    /// Hold `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` in an open transaction (an application's
    /// long transaction) until the guard is dropped.
    pub fn lock_table_in_transaction(&self, table: &str) -> Client {
        let mut c = self.client();
        c.batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .unwrap();
        c
    }

    /// Wait until `n` sessions wait for dbtool's advisory lock in this database (seen in
    /// `pg_locks`, not guessed with a sleep). Fails after a minute.
    pub fn wait_for_lock_waiters(&self, n: i64) {
        let mut c = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let waiting: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                     WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1",
                    &[&self.name],
                )
                .unwrap()
                .get(0);
            if waiting >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {waiting} of {n} waiters after a minute"
            );
            std::thread::yield_now();
        }
    }

    /// This database's URL with a wrong password, when the server checks passwords (`None` on a
    /// trust server, where any password gets in).
    pub fn url_with_wrong_password(&self) -> Option<String> {
        let (scheme, rest) = self.server_base.split_once("://")?;
        let (userinfo, host) = rest.split_once('@')?;
        let user = userinfo.split(':').next()?;
        let wrong = format!(
            "{scheme}://{user}:wrong-password@{host}/{}{}",
            self.name, self.query
        );
        Client::connect(&wrong, NoTls).is_err().then_some(wrong)
    }

    /// This database's URL as the role without CREATEDB (`DBTOOL_TEST_POSTGRES_LIMITED_URL`,
    /// which `scripts/pg-server.sh env` sets), for permission-denied tests; `None` when unset.
    pub fn limited_url(&self) -> Option<String> {
        let limited = std::env::var("DBTOOL_TEST_POSTGRES_LIMITED_URL").ok()?;
        let (base, query) = split(&limited);
        Some(format!("{base}/{}{query}", self.name))
    }

    fn drop_database(&self) {
        let _ = self.admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        self.drop_database();
    }
}
