//! The PostgreSQL engine's foundation: connecting, classifying the server's errors by SQLSTATE,
//! and [`PgSession`], PostgreSQL's implementation of the one write path.
//!
//! What the write path means on PostgreSQL (where DDL is transactional and foreign keys need no
//! dance):
//!
//! 1. `BEGIN`, then `SET LOCAL lock_timeout` to the configured busy timeout: every lock wait of the
//!    transaction — the advisory lock, and any table lock a migration's DDL waits for while the
//!    application holds it — ends after that long with SQLSTATE 55P03, reported as
//!    [`DbError::Locked`] (exit 4), and everything rolls back.
//! 2. `pg_advisory_xact_lock(key)`: the cross-process lock, the counterpart of SQLite's
//!    `BEGIN IMMEDIATE`. The caller reads (history, plan) and runs its before-change hook (the
//!    automatic backup) under it, in `prepare`; two `dbtool upgrade` at once apply each
//!    migration exactly once. It is released by the `COMMIT`.
//! 3. The changes, then `COMMIT` (or `ROLLBACK` for a dry run, on any error, or when the session
//!    is dropped mid-transaction). Constraints are checked by the server as the rows change.
//!
//! A `-- dbtool:no-transaction` step (`CREATE INDEX CONCURRENTLY`) runs in autocommit; for a run
//! holding one, [`PgSession::hold_run_lock`] takes the same key as a session-level advisory lock
//! for the whole run, so concurrent runs still serialise between its statements.
//!
//! The client is behind a `RefCell` so that the executor hands `&PgConn` to its closures exactly as
//! it hands `&rusqlite::Connection` on SQLite.

use std::cell::{RefCell, RefMut};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, SimpleQueryMessage};

use super::{DbError, Ending, PgFailure, PgUrl};

type Result<T, E = DbError> = std::result::Result<T, E>;

/// The advisory-lock key every dbtool run takes ("dbtool" in ASCII, then 1): one per database,
/// since advisory locks are scoped to the database they are taken in.
pub const LOCK_KEY: i64 = 0x6462_746f_6f6c_0001;

/// How long to wait for a connection when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection to one database.
pub struct PgConn {
    client: RefCell<Client>,
    url: PgUrl,
    /// The redacted URL as a path: what reports and errors shared with SQLite name.
    place: PathBuf,
}

impl PgConn {
    /// Connect to the database `url` names. Missing database, refused authentication, an
    /// unreachable server each have their own error.
    pub fn connect(url: &PgUrl) -> Result<PgConn> {
        let mut config = postgres::Config::new();
        config
            .user(url.user())
            .host(url.host())
            .port(url.port())
            .dbname(url.dbname())
            .application_name(url.param("application_name").unwrap_or("dbtool"));
        if let Some(password) = url.password() {
            config.password(password);
        }
        if let Some(options) = url.param("options") {
            config.options(options);
        }
        let timeout = url
            .param("connect_timeout")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .map_or(CONNECT_TIMEOUT, Duration::from_secs);
        config.connect_timeout(timeout);
        match url.param("sslmode") {
            None | Some("disable") | Some("allow") | Some("prefer") => {}
            Some(mode) => {
                return Err(DbError::CannotConnect {
                    url: url.redacted(),
                    failure: Box::new(client_failure(format!(
                        "sslmode={mode} needs TLS, which this build of dbtool does not support yet"
                    ))),
                })
            }
        }
        let client = config
            .connect(NoTls)
            .map_err(|e| classify(&e, "connecting", url, Duration::ZERO))?;
        Ok(PgConn {
            client: RefCell::new(client),
            place: PathBuf::from(url.redacted()),
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    /// The redacted URL, as the path shared reports and errors carry.
    pub fn place(&self) -> &Path {
        &self.place
    }

    /// The driver's client, for queries with parameters.
    pub fn client(&self) -> RefMut<'_, Client> {
        self.client.borrow_mut()
    }

    /// Run one or more statements with the simple query protocol; returns the rows each
    /// statement changed, summed.
    pub fn execute(&self, sql: &str) -> std::result::Result<u64, postgres::Error> {
        let messages = self.client().simple_query(sql)?;
        Ok(messages
            .iter()
            .map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => *n,
                _ => 0,
            })
            .sum())
    }

    /// [`PgConn::execute`], with the failure classified and `action` named in it.
    pub fn run(&self, sql: &str, action: &str) -> Result<u64> {
        self.execute(sql)
            .map_err(|e| classify(&e, action, &self.url, Duration::ZERO))
    }

    /// Whether a transaction is open on this connection (a failed no-transaction file may leave
    /// its own `BEGIN` open).
    pub fn in_transaction(&self) -> bool {
        // `now()` is the transaction's start time and `statement_timestamp()` this statement's:
        // they are equal only in a statement of its own (autocommit). With the simple query
        // protocol: under the extended one (`query_one`) they differ even in autocommit, and
        // this always answered true.
        self.client()
            .simple_query("SELECT now() <> statement_timestamp()")
            .ok()
            .and_then(|messages| {
                messages.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0) != Some("f")),
                    _ => None,
                })
            })
            .unwrap_or(true)
    }

    /// A classified error for `e`, raised while doing `action` on this connection.
    pub fn error(&self, e: &postgres::Error, action: &str) -> DbError {
        classify(e, action, &self.url, Duration::ZERO)
    }
}

/// PostgreSQL's failure behind a driver error, as plain data.
pub fn failure(e: &postgres::Error) -> PgFailure {
    match e.as_db_error() {
        Some(db) => PgFailure {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            constraint: db.constraint().map(str::to_string),
            table: db.table().map(str::to_string),
        },
        None => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            client_failure(message)
        }
    }
}

fn client_failure(message: String) -> PgFailure {
    PgFailure {
        sqlstate: String::new(),
        message,
        detail: None,
        hint: None,
        constraint: None,
        table: None,
    }
}

/// Classify a driver error by SQLSTATE (never by the server's message text, which is
/// translated): missing database, refused authentication, lock timeout, permission denied; a
/// failure without a SQLSTATE is the connection's.
pub fn classify(e: &postgres::Error, action: &str, url: &PgUrl, waited: Duration) -> DbError {
    let failure = Box::new(failure(e));
    let redacted = url.redacted();
    match failure.sqlstate.as_str() {
        "3D000" => DbError::DatabaseMissing {
            path: PathBuf::from(redacted),
        },
        "28P01" | "28000" => DbError::AuthenticationFailed {
            url: redacted,
            user: url.user().to_string(),
            failure,
        },
        "55P03" => DbError::Locked {
            path: PathBuf::from(redacted),
            waited_ms: waited.as_millis() as u64,
        },
        "42501" => DbError::PermissionDenied {
            action: action.to_string(),
            url: redacted,
            failure,
        },
        "" if e.as_db_error().is_none() && failure.message.contains("password missing") => {
            // The driver's own refusal when the server asks for a password and none was given.
            DbError::AuthenticationFailed {
                url: redacted,
                user: url.user().to_string(),
                failure,
            }
        }
        "" if e.is_closed() || action == "connecting" => DbError::CannotConnect {
            url: redacted,
            failure,
        },
        _ => DbError::Postgres {
            action: action.to_string(),
            url: redacted,
            failure,
        },
    }
}

/// A connection lent to dbtool's write path for one operation (see the module documentation).
pub struct PgSession<'c> {
    conn: &'c PgConn,
    lock_timeout: Duration,
    open: bool,
    run_lock_held: bool,
    /// The caller holds a transaction: each of the session's is a savepoint inside it.
    nested: bool,
}

/// The savepoint a nested session uses instead of `BEGIN`.
const NESTED: &str = "dbtool_session";

impl<'c> PgSession<'c> {
    pub fn new(conn: &'c PgConn, lock_timeout: Duration) -> Self {
        PgSession {
            conn,
            lock_timeout,
            open: false,
            run_lock_held: false,
            nested: false,
        }
    }

    /// A session inside a transaction the caller holds (the stairway of `verify`, which undoes
    /// a whole round trip with one `ROLLBACK`): each of its transactions is a savepoint, its
    /// commit a `RELEASE`, its rollback never the caller's. Not for no-transaction steps.
    pub fn nested(conn: &'c PgConn, lock_timeout: Duration) -> Self {
        PgSession {
            nested: true,
            ..PgSession::new(conn, lock_timeout)
        }
    }

    pub fn conn(&self) -> &'c PgConn {
        self.conn
    }

    /// `lock_timeout` in milliseconds; at least 1, since 0 would mean "wait forever".
    fn timeout_ms(&self) -> u128 {
        self.lock_timeout.as_millis().max(1)
    }

    /// Take the session-level advisory lock for the rest of the run (a run with a
    /// no-transaction step), waiting up to the lock timeout.
    pub fn hold_run_lock(&mut self) -> Result<()> {
        if self.run_lock_held {
            return Ok(());
        }
        let started = Instant::now();
        let sql = format!(
            "SET lock_timeout = {}; SELECT pg_advisory_lock({LOCK_KEY}); RESET lock_timeout",
            self.timeout_ms()
        );
        self.conn.execute(&sql).map_err(|e| {
            let _ = self.conn.execute("RESET lock_timeout");
            classify(
                &e,
                "taking dbtool's lock",
                &self.conn.url,
                started.elapsed(),
            )
        })?;
        self.run_lock_held = true;
        Ok(())
    }

    /// One transaction: `BEGIN`, the lock timeout, the advisory lock, `prepare` (reads under the
    /// lock and the before-change hook), `change`, then `ending`. Any error rolls back.
    pub fn transaction<P, T, E>(
        &mut self,
        ending: Ending,
        prepare: impl FnOnce(&PgConn) -> std::result::Result<P, E>,
        mut change: impl FnMut(&PgConn, &P) -> std::result::Result<T, E>,
    ) -> std::result::Result<(P, T), E>
    where
        E: From<DbError>,
    {
        let started = Instant::now();
        let begin = format!(
            "{}; SET LOCAL lock_timeout = {}; SELECT pg_advisory_xact_lock({LOCK_KEY})",
            if self.nested {
                format!("SAVEPOINT {NESTED}")
            } else {
                "BEGIN".to_string()
            },
            self.timeout_ms()
        );
        self.open = true;
        if let Err(e) = self.conn.execute(&begin) {
            self.rollback();
            return Err(classify(
                &e,
                "taking dbtool's lock",
                &self.conn.url,
                started.elapsed(),
            )
            .into());
        }
        let result = (|| {
            let prepared = prepare(self.conn)?;
            let value = change(self.conn, &prepared)?;
            Ok((prepared, value))
        })();
        match (result, ending) {
            (Ok(done), Ending::Commit) => {
                self.open = false;
                let commit = if self.nested {
                    format!("RELEASE SAVEPOINT {NESTED}")
                } else {
                    "COMMIT".to_string()
                };
                self.conn
                    .execute(&commit)
                    .map_err(|e| self.conn.error(&e, "committing"))?;
                Ok(done)
            }
            (Ok(done), Ending::Rollback) => {
                self.rollback();
                Ok(done)
            }
            (Err(e), _) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Run `f` in autocommit mode (a no-transaction step). A transaction `f` leaves open (a
    /// file's own `BEGIN` before a failure) is rolled back.
    pub fn outside_transaction<T, E>(
        &mut self,
        f: impl FnOnce(&PgConn) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<DbError>,
    {
        let lock_timeout = format!("SET lock_timeout = {}", self.timeout_ms());
        self.conn
            .run(&lock_timeout, "setting the lock timeout")
            .map_err(E::from)?;
        let result = f(self.conn);
        if result.is_err() || self.conn.in_transaction() {
            let _ = self.conn.execute("ROLLBACK");
        }
        let _ = self.conn.execute("RESET lock_timeout");
        result
    }

    fn rollback(&mut self) {
        if self.open {
            self.open = false;
            if self.nested {
                let _ = self.conn.execute(&format!(
                    "ROLLBACK TO SAVEPOINT {NESTED}; RELEASE SAVEPOINT {NESTED}"
                ));
            } else {
                let _ = self.conn.execute("ROLLBACK");
            }
        }
    }

    /// End the session: release the run lock.
    pub fn finish(mut self) -> Result<()> {
        self.release();
        Ok(())
    }

    fn release(&mut self) {
        self.rollback();
        if self.run_lock_held {
            self.run_lock_held = false;
            let _ = self
                .conn
                .execute(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"));
        }
    }
}

impl Drop for PgSession<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
