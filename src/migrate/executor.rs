//! The executor: runs a plan's steps through the one write path ([`db::WriteSession`]).
//!
//! The plan is computed under the write lock, in the first transaction's `prepare` (so two
//! concurrent runs never apply a migration twice), and the before-change hook (the automatic
//! backup) runs there too, before anything changes. The steps then run in that same transaction
//! with their history rows: all or nothing. A `-- dbtool:no-transaction` step is a commit
//! boundary: the steps before it commit, it runs alone in autocommit mode with its history row
//! right after, and the rest continues in a new transaction, which begins like every other one
//! (foreign keys off and read back, whatever the no-transaction step did to them).
//!
//! `upgrade`, `downgrade`, `stamp`, `rebuild`, `redo`, `rehearse`, `verify` and `check` all run
//! their steps here, so what a rehearsal or the stairway proves is what an upgrade does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;
use time::OffsetDateTime;

use super::error::{MigrateError, Result};
use super::history::{self, CREATE_HISTORY_TABLE};
use super::{run_script, Action, Operation, Plan, Step, StepReport};
use crate::db::{self, Ending, WriteSession};
use crate::rebuild;

/// What `prepare` learnt under the lock: the plan, and the backup the hook took (if any).
pub struct Prepared {
    pub plan: Plan,
    pub backup: Option<PathBuf>,
}

/// Called after each step has run, inside its transaction (a rehearsal counts rows and runs
/// `quick_check` here). An error aborts the run and rolls the transaction back. It may be called
/// again for the same step when the session re-runs a transaction (see [`WriteSession`]).
pub type Observer<'a, C = Connection> = dyn FnMut(&C, &Step, &StepReport) -> Result<()> + 'a;

/// What the executor needs of an engine: its write session (the one write path of that engine)
/// and how one step runs on its connection. SQLite's is [`WriteSession`]; PostgreSQL's is
/// `db::pg::PgSession`. Planning, the commit boundaries of no-transaction steps, history rows and
/// reports are the executor's, shared by both.
pub trait Engine {
    /// The connection the closures are lent.
    type Conn;
    /// What errors and reports name: the file, or the redacted URL.
    fn place(&self) -> PathBuf;
    /// One transaction of the engine's write path, ending in `COMMIT`.
    fn transaction<P, T>(
        &mut self,
        what: &str,
        prepare: impl FnOnce(&Self::Conn) -> Result<P>,
        change: impl FnMut(&Self::Conn, &P) -> Result<T>,
    ) -> Result<(P, T)>;
    /// Run `run` in autocommit mode (a no-transaction step).
    fn outside_transaction<T>(&mut self, run: impl FnOnce(&Self::Conn) -> Result<T>) -> Result<T>;
    /// Whether a transaction is open on `conn` (a failed no-transaction file's own).
    fn transaction_open(conn: &Self::Conn) -> bool;
    /// Create the history table when it does not exist.
    fn create_history(conn: &Self::Conn, place: &Path) -> Result<()>;
    /// Run one step's SQL and its history row.
    fn run_step(
        conn: &Self::Conn,
        place: &Path,
        step: &Step,
        now: OffsetDateTime,
        only_step: bool,
    ) -> Result<StepReport>;
}

impl Engine for WriteSession<'_> {
    type Conn = Connection;

    fn place(&self) -> PathBuf {
        self.path().to_path_buf()
    }

    fn transaction<P, T>(
        &mut self,
        what: &str,
        prepare: impl FnOnce(&Connection) -> Result<P>,
        change: impl FnMut(&Connection, &P) -> Result<T>,
    ) -> Result<(P, T)> {
        WriteSession::transaction(self, what, Ending::Commit, prepare, change)
    }

    fn outside_transaction<T>(&mut self, run: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        WriteSession::outside_transaction(self, run)
    }

    fn transaction_open(conn: &Connection) -> bool {
        !conn.is_autocommit()
    }

    fn create_history(conn: &Connection, place: &Path) -> Result<()> {
        conn.execute_batch(CREATE_HISTORY_TABLE)
            .map_err(|e| MigrateError::sqlite("creating the history table", place, e))
    }

    fn run_step(
        conn: &Connection,
        place: &Path,
        step: &Step,
        now: OffsetDateTime,
        only_step: bool,
    ) -> Result<StepReport> {
        run_step(conn, place, step, now, only_step)
    }
}

/// Run the plan `prepare` makes under the write lock. Returns it with the report of each step.
pub fn execute<E: Engine>(
    session: &mut E,
    operation: Operation,
    now: OffsetDateTime,
    prepare: impl FnOnce(&E::Conn) -> Result<Prepared>,
    observe: &mut Observer<'_, E::Conn>,
) -> Result<(Prepared, Vec<StepReport>)> {
    let what = format!("this {}", operation.as_str());
    let db_path = session.place();
    let (prepared, mut reports) = session.transaction(&what, prepare, |conn, prepared| {
        let steps = &prepared.plan.steps;
        let end = next_boundary(steps, 0);
        run_steps::<E>(conn, &db_path, &steps[..end], now, observe)
    })?;
    let steps = &prepared.plan.steps;
    let mut i = reports.len();
    while i < steps.len() {
        if steps[i].no_transaction {
            let step = &steps[i];
            // A failure inside the file's own BEGIN … COMMIT leaves that transaction open; the
            // session rolls it back, and then nothing of the file is applied.
            let mut own_transaction_open = false;
            let report = session
                .outside_transaction(|conn| {
                    let result =
                        run_steps::<E>(conn, &db_path, std::slice::from_ref(step), now, observe);
                    own_transaction_open = result.is_err() && E::transaction_open(conn);
                    result
                })
                .map_err(|e| MigrateError::NoTransactionFailed {
                    path: step.path.clone().unwrap_or_default(),
                    committed_through: i
                        .checked_sub(1)
                        .map(|k| format!("V{}__{}", steps[k].version, steps[k].name)),
                    own_transaction_rolled_back: own_transaction_open,
                    source: Box::new(e),
                })?;
            reports.extend(report);
            i += 1;
        } else {
            let end = next_boundary(steps, i);
            let ((), more) = session.transaction(
                &what,
                |_| Ok(()),
                |conn, ()| run_steps::<E>(conn, &db_path, &steps[i..end], now, observe),
            )?;
            reports.extend(more);
            i = end;
        }
    }
    Ok((prepared, reports))
}

/// Run a ready-made plan on a connection through the write path (scratch databases of `verify`,
/// `check` and rebuild generation; the copy a rehearsal works on).
pub fn run_plan(
    conn: &Connection,
    db_path: &Path,
    plan: Plan,
    operation: Operation,
    observe: &mut Observer<'_>,
) -> Result<Vec<StepReport>> {
    let mut session = WriteSession::new(conn, db_path, db::DEFAULT_BUSY_TIMEOUT)?;
    let (_, reports) = execute(
        &mut session,
        operation,
        OffsetDateTime::UNIX_EPOCH,
        |_| Ok(Prepared { plan, backup: None }),
        observe,
    )?;
    session.finish()?;
    Ok(reports)
}

/// Run a generated rebuild file (`-- dbtool:rebuild` header) on `conn` exactly as `upgrade` and
/// `dbtool rebuild` run it: preflight, the SQL, post-checks, the foreign-key check, all in one
/// transaction of the write path. No history row is written.
pub fn run_rebuild_sql(conn: &Connection, db_path: &Path, sql: &str) -> Result<StepReport> {
    let plan = Plan {
        from: None,
        to: None,
        steps: vec![Step {
            action: Action::Rebuild,
            version: 0,
            name: "rebuild".into(),
            path: None,
            sql: Some(sql.to_string()),
            checksum: 0,
            no_transaction: false,
        }],
    };
    let mut reports = run_plan(conn, db_path, plan, Operation::Rebuild, &mut |_, _, _| {
        Ok(())
    })?;
    Ok(reports.remove(0))
}

/// A fresh in-memory database with the migrations of `set` applied up to `target` (with history
/// rows): the schema "as the migrations say it should be".
pub fn apply_in_memory(set: &super::MigrationSet, target: super::UpTarget) -> Result<Connection> {
    let path = Path::new(":memory:");
    let conn = Connection::open_in_memory()
        .map_err(|e| MigrateError::sqlite("opening a scratch database", path, e))?;
    let plan = super::plan_upgrade(set, &[], target)?;
    run_plan(&conn, path, plan, Operation::Upgrade, &mut |_, _, _| Ok(()))?;
    Ok(conn)
}

/// The index of the first no-transaction step at or after `from` (or the end).
fn next_boundary(steps: &[Step], from: usize) -> usize {
    steps[from..]
        .iter()
        .position(|s| s.no_transaction)
        .map_or(steps.len(), |k| from + k)
}

fn run_steps<E: Engine>(
    conn: &E::Conn,
    db_path: &Path,
    steps: &[Step],
    now: OffsetDateTime,
    observe: &mut Observer<'_, E::Conn>,
) -> Result<Vec<StepReport>> {
    if steps.iter().any(|s| s.action != Action::Rebuild) {
        E::create_history(conn, db_path)?;
    }
    let mut reports = Vec::with_capacity(steps.len());
    for step in steps {
        // A rebuild alone in its transaction may spare the foreign-key check its table.
        let only_step = steps.len() == 1;
        let report = E::run_step(conn, db_path, step, now, only_step)?;
        observe(conn, step, &report)?;
        reports.push(report);
    }
    Ok(reports)
}

fn run_step(
    conn: &Connection,
    db_path: &Path,
    step: &Step,
    now: OffsetDateTime,
    only_step: bool,
) -> Result<StepReport> {
    let started = Instant::now();
    let path = step
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("<{}>", step.name)));
    // A generated rebuild is checked before its DDL and after it, inside this transaction.
    let refused = |source| match &step.path {
        Some(path) => MigrateError::RebuildMigration {
            path: path.clone(),
            source: Box::new(source),
        },
        None => MigrateError::from(source),
    };
    let rebuild = match (&step.sql, step.action) {
        (Some(sql), Action::Apply | Action::Revert | Action::Rebuild) => {
            rebuild::RebuildFile::parse(sql).map_err(refused)?
        }
        _ => None,
    };
    let preflight = match &rebuild {
        Some(file) => Some(rebuild::preflight(conn, file).map_err(refused)?),
        None => None,
    };
    // The rebuild's copy is proven before its first DROP (a hook before each statement).
    let mut copy_check = rebuild
        .as_ref()
        .map(|file| rebuild::CopyCheck::new(conn, file));
    let statements = match (&step.sql, &mut copy_check) {
        (Some(sql), Some(check)) => {
            super::exec::run_script_with(conn, sql, &path, &mut |s| match check
                .before_statement(s)
                .map_err(refused)?
            {
                rebuild::Copied::Run => Ok(None),
                rebuild::Copied::Ran(outcome) => Ok(Some(outcome)),
            })?
        }
        (Some(sql), None) => run_script(conn, sql, &path)?,
        (None, _) => Vec::new(),
    };
    if let Some(pre) = &preflight {
        let (proof, unchanged) = copy_check
            .map(|c| (c.proof, c.foreign_keys_unchanged))
            .unwrap_or_default();
        rebuild::postcheck(conn, pre, proof).map_err(refused)?;
        // Nothing else in this transaction: the table's rows and foreign keys are what they were
        // (proven), so its own foreign keys need no check (its children are still checked).
        if only_step && unchanged {
            crate::db::mark_foreign_keys_unchanged(conn, db_path, &pre.table)?;
        }
    }
    match step.action {
        Action::Apply | Action::Record => {
            history::insert(conn, db_path, step.version, &step.name, step.checksum, now)?
        }
        Action::Revert | Action::Forget => history::delete(conn, db_path, step.version)?,
        Action::Rebuild => {}
    }
    Ok(StepReport::ran(
        step,
        started,
        statements,
        preflight.map(|p| p.warnings).unwrap_or_default(),
    ))
}
