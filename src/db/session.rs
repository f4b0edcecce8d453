//! The one write path: every change dbtool makes to a database goes through a [`WriteSession`].
//!
//! A transaction always begins the same way, whatever ran on the connection before it (a
//! `-- dbtool:no-transaction` migration may have turned foreign keys on again):
//!
//! 1. `PRAGMA foreign_keys=OFF`, set *outside* the transaction (inside one it is a silent no-op)
//!    and read back: with foreign keys on, a `DROP TABLE` in a migration would fire
//!    `ON DELETE CASCADE` and delete child rows.
//! 2. `BEGIN IMMEDIATE`: the write lock, waiting up to the busy timeout. This is the
//!    cross-process lock: the caller reads (history, plan) and runs its before-change hook (the
//!    automatic backup) under it, in `prepare`.
//! 3. The changes, after a savepoint.
//! 4. `PRAGMA foreign_key_check`: the transaction may not add a violation. It runs once, after
//!    the changes (not at all when no row and no schema changed); only when it finds violations does the session roll back to the savepoint
//!    to see which the database already had, and then make the changes again (once a database
//!    is known to hold old violations, later transactions take that list up front instead). A
//!    table a rebuild alone in the transaction proved unchanged (same rows, same foreign keys)
//!    is not checked as the child ([`super::mark_foreign_keys_unchanged`]); on a large table
//!    that check is a full read of it.
//! 5. `COMMIT` (or `ROLLBACK` for a dry run). Any error rolls everything back, as does dropping
//!    the session mid-transaction.
//! 6. When the session ends, foreign keys are restored to what they were.
//!
//! Nothing else in the crate issues `BEGIN`, `COMMIT`, `ROLLBACK` or `PRAGMA foreign_keys`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{classify, foreign_key_violations, DbError, FkViolation};

/// How a transaction ends when everything in it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Commit,
    /// A dry run: everything ran and was checked; nothing is kept.
    Rollback,
}

const SAVEPOINT: &str = "dbtool_changes";
/// The savepoint a session uses instead of `BEGIN IMMEDIATE` when its caller already holds a
/// transaction (see [`Rewind`]).
const NESTED: &str = "dbtool_transaction";

/// How a session's transaction began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `BEGIN IMMEDIATE`.
    Top,
    /// A savepoint inside the caller's transaction.
    Nested,
}

/// A connection lent to dbtool's write path for the length of one operation.
pub struct WriteSession<'c> {
    conn: &'c Connection,
    path: PathBuf,
    busy_timeout: Duration,
    foreign_keys_were_on: bool,
    /// The database had foreign-key violations before this session changed anything.
    old_violations: bool,
    /// The transaction this session has open, if any.
    open: Option<Open>,
    ended: bool,
}

impl<'c> WriteSession<'c> {
    /// Start a session on `conn` (the database at `path`); remembers the foreign-key setting to
    /// restore. No lock is taken until [`WriteSession::transaction`].
    pub fn new(conn: &'c Connection, path: &Path, busy_timeout: Duration) -> Result<Self, DbError> {
        let foreign_keys_were_on = foreign_keys_enabled(conn, path)?;
        Ok(WriteSession {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
            foreign_keys_were_on,
            old_violations: false,
            open: None,
            ended: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One transaction: foreign keys off (read back), `BEGIN IMMEDIATE`, `prepare` (reads under
    /// the lock and the before-change hook; changes nothing), the `change`s, the foreign-key
    /// check, then `ending`. `what` names the change in a foreign-key refusal ("this upgrade").
    ///
    /// `change` may run twice (see the module documentation): it must do the same thing each
    /// time, and report only what its last run did.
    pub fn transaction<P, T, E>(
        &mut self,
        what: &str,
        ending: Ending,
        prepare: impl FnOnce(&Connection) -> Result<P, E>,
        mut change: impl FnMut(&Connection, &P) -> Result<T, E>,
    ) -> Result<(P, T), E>
    where
        E: From<DbError>,
    {
        self.begin()?;
        let result = (|| {
            let prepared = prepare(self.conn)?;
            let before = if self.old_violations {
                Some(self.violations()?)
            } else {
                None
            };
            self.execute(&format!("SAVEPOINT {SAVEPOINT}"), "setting a savepoint")?;
            let untouched = self.untouched()?;
            let mut value = change(self.conn, &prepared)?;
            // No row and no schema changed (an upgrade with nothing to do): no violation can be
            // new, and the check, a read of every table with a foreign key, is skipped.
            let mut after = if self.untouched()? == untouched {
                Vec::new()
            } else {
                self.violations()?
            };
            if !after.is_empty() {
                let before = match before {
                    Some(before) => before,
                    None => {
                        // Which of these were there before? Undo, look, and redo only when the
                        // database really had some (otherwise every one is new: refuse).
                        self.execute(
                            &format!("ROLLBACK TO {SAVEPOINT}"),
                            "rolling back to the savepoint",
                        )?;
                        let before = self.violations()?;
                        if !before.is_empty() {
                            self.old_violations = true;
                            value = change(self.conn, &prepared)?;
                            after = self.violations()?;
                        }
                        before
                    }
                };
                let new: Vec<FkViolation> = after
                    .into_iter()
                    .filter(|v| before.binary_search(v).is_err())
                    .collect();
                if !new.is_empty() {
                    return Err(DbError::ForeignKeyViolations {
                        what: what.to_string(),
                        violations: new,
                    }
                    .into());
                }
            }
            // The marks of tables proven unchanged end with the check they spared.
            super::forget_foreign_keys_unchanged(self.conn, &self.path)?;
            self.execute(&format!("RELEASE {SAVEPOINT}"), "releasing the savepoint")?;
            match (ending, self.open) {
                (Ending::Commit, Some(Open::Nested)) => {
                    self.execute(&format!("RELEASE {NESTED}"), "releasing the savepoint")?
                }
                (Ending::Commit, _) => self
                    .conn
                    .execute_batch("COMMIT")
                    .map_err(|e| classify(e, "committing", &self.path, self.busy_timeout))?,
                (Ending::Rollback, _) => self.rollback(),
            }
            self.open = None;
            Ok((prepared, value))
        })();
        if result.is_err() {
            self.rollback();
        }
        result
    }

    /// Run `body` outside any transaction (a `-- dbtool:no-transaction` migration), with foreign
    /// keys off and read back as for a transaction. The body may not leave a transaction open.
    pub fn outside_transaction<T, E>(
        &mut self,
        body: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        self.set_foreign_keys(false)?;
        let value = body(self.conn);
        if !self.conn.is_autocommit() {
            // The file began a transaction of its own and did not end it.
            let _ = self.conn.execute_batch("ROLLBACK");
            value?;
            return Err(DbError::TransactionLeftOpen {
                path: self.path.clone(),
            }
            .into());
        }
        value
    }

    /// End the session: foreign keys back to what they were, reporting a failure to do so.
    pub fn finish(mut self) -> Result<(), DbError> {
        self.ended = true;
        self.set_foreign_keys(self.foreign_keys_were_on)
    }

    fn begin(&mut self) -> Result<(), DbError> {
        // Inside the caller's transaction the pragma cannot change, but reading it back still
        // proves foreign keys are off (the caller turned them off before its transaction).
        self.set_foreign_keys(false)?;
        let (open, begin) = if self.conn.is_autocommit() {
            (Open::Top, "BEGIN IMMEDIATE".to_string())
        } else {
            (Open::Nested, format!("SAVEPOINT {NESTED}"))
        };
        self.conn.execute_batch(&begin).map_err(|e| {
            classify(
                e,
                "starting a write transaction",
                &self.path,
                self.busy_timeout,
            )
        })?;
        self.open = Some(open);
        super::forget_foreign_keys_unchanged(self.conn, &self.path)?;
        Ok(())
    }

    /// Undo the transaction this session opened (nested: its savepoint, never the caller's).
    fn rollback(&mut self) {
        // Nothing useful to do if this fails: SQLite rolls back when the connection closes.
        match self.open.take() {
            Some(Open::Top) => {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            Some(Open::Nested) => {
                let _ = self
                    .conn
                    .execute_batch(&format!("ROLLBACK TO {NESTED}; RELEASE {NESTED}"));
            }
            None => {}
        }
    }

    fn execute(&self, sql: &str, action: &str) -> Result<(), DbError> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| classify(e, action, &self.path, self.busy_timeout))
    }

    /// What changes when the transaction changes anything a foreign key can see: rows inserted,
    /// updated or deleted on this connection (`total_changes`, triggers included) and the schema
    /// (`schema_version`, bumped by every DDL statement).
    fn untouched(&self) -> Result<(u64, i64), DbError> {
        let version = self
            .conn
            .query_row("PRAGMA main.schema_version", [], |r| r.get(0))
            .map_err(|e| DbError::sqlite("reading the schema version", &self.path, e))?;
        Ok((self.conn.total_changes(), version))
    }

    fn violations(&self) -> Result<Vec<FkViolation>, DbError> {
        foreign_key_violations(self.conn, &self.path)
    }

    /// Set `PRAGMA foreign_keys` and read it back: inside a transaction the pragma is a silent
    /// no-op, so trusting it unread is how cascades delete rows.
    fn set_foreign_keys(&self, on: bool) -> Result<(), DbError> {
        set_foreign_keys(self.conn, &self.path, on)
    }
}

impl Drop for WriteSession<'_> {
    fn drop(&mut self) {
        self.rollback();
        if !self.ended {
            let _ = self.set_foreign_keys(self.foreign_keys_were_on);
        }
    }
}

fn set_foreign_keys(conn: &Connection, path: &Path, on: bool) -> Result<(), DbError> {
    conn.pragma_update(None, "foreign_keys", on)
        .map_err(|e| DbError::sqlite("setting foreign_keys", path, e))?;
    if foreign_keys_enabled(conn, path)? != on {
        return Err(DbError::ForeignKeysStillOn {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

pub fn foreign_keys_enabled(conn: &Connection, path: &Path) -> Result<bool, DbError> {
    conn.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, bool>(0))
        .map_err(|e| DbError::sqlite("reading foreign_keys", path, e))
}

/// A private in-memory database for simulations and lint (nothing of the user's): foreign keys
/// off, as the write path runs migrations. (A fresh connection is outside any transaction, where
/// the pragma always takes effect.)
pub fn scratch() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", false)?;
    Ok(conn)
}

/// A point to come back to on a scratch connection: everything done after [`Rewind::begin`]
/// (write sessions included, which then nest inside it) is undone by [`Rewind::undo`]. `verify`
/// uses it to take a migration down and up again and return to the state after its up for free,
/// instead of copying a checkpoint database after every round trip that went wrong. (A rewind
/// point left without `undo` stays an open transaction on the connection: for scratch databases
/// only, which are thrown away on error.)
#[must_use = "undo it, or the connection stays in its transaction"]
pub struct Rewind(());

const REWIND: &str = "dbtool_rewind";

impl Rewind {
    /// Begin (foreign keys must already be off: they cannot change inside the transaction).
    pub fn begin(conn: &Connection) -> rusqlite::Result<Self> {
        conn.execute_batch(&format!("SAVEPOINT {REWIND}"))?;
        Ok(Rewind(()))
    }

    /// Undo everything since [`Rewind::begin`] and end the transaction.
    pub fn undo(self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(&format!("ROLLBACK TO {REWIND}; RELEASE {REWIND}"))
    }

    /// Keep everything since [`Rewind::begin`] and end the transaction.
    pub fn keep(self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(&format!("RELEASE {REWIND}"))
    }
}

/// Pin one consistent read snapshot of the database until [`end_read`] (a deferred `BEGIN` takes
/// no lock; the first read does). Used to stream a backup while others keep writing.
pub fn begin_read(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema;")
}

/// End the read snapshot [`begin_read`] started.
pub fn end_read(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("COMMIT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent_child(conn: &Connection) {
        conn.execute_batch(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE c(id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id) ON DELETE CASCADE);
             INSERT INTO p VALUES (1), (2); INSERT INTO c VALUES (10, 1), (11, 2);",
        )
        .unwrap();
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn every_transaction_begins_with_foreign_keys_off_whatever_ran_before() {
        let conn = Connection::open_in_memory().unwrap();
        parent_child(&conn);
        let path = Path::new(":memory:");
        let initially = foreign_keys_enabled(&conn, path).unwrap();
        let mut session = WriteSession::new(&conn, path, Duration::ZERO).unwrap();
        // A no-transaction step turns foreign keys on, as a real migration did.
        session
            .outside_transaction(|c| {
                c.execute_batch("PRAGMA foreign_keys=ON")
                    .map_err(|e| DbError::sqlite("t", path, e))
            })
            .unwrap();
        assert!(foreign_keys_enabled(&conn, path).unwrap());
        // The next transaction drops and recreates the parent: no cascade may fire.
        session
            .transaction(
                "test",
                Ending::Commit,
                |_| Ok::<_, DbError>(()),
                |c, _| {
                    c.execute_batch(
                        "CREATE TABLE p_new(id INTEGER PRIMARY KEY); INSERT INTO p_new SELECT id FROM p;
                         DROP TABLE p; ALTER TABLE p_new RENAME TO p;",
                    )
                    .map_err(|e| DbError::sqlite("t", path, e))
                },
            )
            .unwrap();
        session.finish().unwrap();
        assert_eq!(count(&conn, "c"), 2);
        assert_eq!(
            foreign_keys_enabled(&conn, path).unwrap(),
            initially,
            "restored"
        );
    }

    #[test]
    fn a_transaction_that_changes_nothing_does_not_check_foreign_keys() {
        // A foreign key to a column without a unique index: SQLite's check fails on it ("foreign
        // key mismatch"), so whether the check ran shows.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE p(code TEXT); CREATE TABLE c(id INTEGER PRIMARY KEY, code TEXT REFERENCES p(code));",
        )
        .unwrap();
        let path = Path::new(":memory:");
        let mut session = WriteSession::new(&conn, path, Duration::ZERO).unwrap();
        let nothing = |_: &Connection, _: &()| Ok::<_, DbError>(());
        session
            .transaction("this test", Ending::Commit, |_| Ok(()), nothing)
            .unwrap();
        for sql in ["INSERT INTO p VALUES ('a')", "CREATE TABLE t(x)"] {
            let err = session
                .transaction(
                    "this test",
                    Ending::Commit,
                    |_| Ok(()),
                    |c: &Connection, _: &()| {
                        c.execute_batch(sql)
                            .map_err(|e| DbError::sqlite("t", path, e))
                    },
                )
                .unwrap_err();
            assert!(
                format!("{err:?}").contains("foreign key mismatch"),
                "{sql}: {err:?}"
            );
        }
    }

    #[test]
    fn a_table_marked_unchanged_is_spared_the_check_of_that_transaction_only() {
        let conn = Connection::open_in_memory().unwrap();
        parent_child(&conn);
        let path = Path::new(":memory:");
        let mut session = WriteSession::new(&conn, path, Duration::ZERO).unwrap();
        // Marked: a dangling child row goes unseen (the mark is a promise the marker proved).
        session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                |c: &Connection, _: &()| {
                    c.execute_batch("INSERT INTO c VALUES (20, 99)")
                        .map_err(|e| DbError::sqlite("t", path, e))?;
                    super::super::mark_foreign_keys_unchanged(c, path, "C")
                },
            )
            .unwrap();
        // Other tables are still checked in a transaction that marks one.
        let err = session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                |c: &Connection, _: &()| {
                    super::super::mark_foreign_keys_unchanged(c, path, "p")?;
                    c.execute_batch("INSERT INTO c VALUES (21, 98)")
                        .map_err(|e| DbError::sqlite("t", path, e))
                },
            )
            .unwrap_err();
        assert_eq!(err.code(), "foreign-key-violation");
        // The mark ended with its transaction: the next one checks `c` again.
        let err = session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                |c: &Connection, _: &()| {
                    c.execute_batch("INSERT INTO c VALUES (22, 97)")
                        .map_err(|e| DbError::sqlite("t", path, e))
                },
            )
            .unwrap_err();
        assert_eq!(err.code(), "foreign-key-violation");
        assert_eq!(
            count(&conn, "c"),
            3,
            "the two refused rows were rolled back"
        );
        // Nothing of the marks is left in the connection once the transaction is over.
        let left: i64 = conn
            .query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn new_violations_refuse_old_ones_do_not_and_the_changes_are_kept_once() {
        let conn = Connection::open_in_memory().unwrap();
        parent_child(&conn);
        let path = Path::new(":memory:");
        let change = |sql: &'static str| {
            move |c: &Connection, _: &()| {
                c.execute_batch(sql)
                    .map_err(|e| DbError::sqlite("t", path, e))
            }
        };
        let mut session = WriteSession::new(&conn, path, Duration::ZERO).unwrap();
        let err = session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                change("DELETE FROM p WHERE id = 1"),
            )
            .unwrap_err();
        assert_eq!(err.code(), "foreign-key-violation");
        assert_eq!(count(&conn, "p"), 2, "rolled back");
        // An old violation (made behind dbtool's back) does not block an unrelated change, and
        // the change, made twice to tell old from new, is kept once.
        conn.execute_batch("INSERT INTO c VALUES (12, 99)").unwrap();
        session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                change("INSERT INTO p VALUES (3)"),
            )
            .unwrap();
        assert_eq!(count(&conn, "p"), 3);
        let err = session
            .transaction(
                "this test",
                Ending::Commit,
                |_| Ok(()),
                change("DELETE FROM p WHERE id = 2"),
            )
            .unwrap_err();
        assert_eq!(err.code(), "foreign-key-violation");
        assert_eq!(count(&conn, "p"), 3);
        // A dry run checks and keeps nothing.
        session
            .transaction(
                "this test",
                Ending::Rollback,
                |_| Ok(()),
                change("INSERT INTO p VALUES (4)"),
            )
            .unwrap();
        assert_eq!(count(&conn, "p"), 3);
    }
}
