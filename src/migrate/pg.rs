//! PostgreSQL: the executor's second [`Engine`], refinery's history table on the server, and the
//! [`Migrator`]'s operations on a `postgres://` database.
//!
//! Everything above the engine is shared with SQLite: the folder, the checksums, the plan, the
//! commit boundaries of no-transaction steps, the reports. What differs is below it: the write
//! path is [`PgSession`] (advisory lock, `lock_timeout`, transactional DDL, no foreign-key
//! dance), statements are split by the PostgreSQL dialect of the one lexer, and a failure names
//! its line with the server's message, detail and constraint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{MigrateError, Result};
use super::executor::{self, Engine, Prepared};
use super::history::{AppliedMigration, CREATE_HISTORY_TABLE, HISTORY_TABLE};
use super::{
    has_no_transaction_step, plan, Action, ChangeContext, CurrentReport, InitReport, MigrationSet,
    Migrator, Operation, Overview, Plan, RunOptions, RunReport, StatementReport, StatusReport,
    Step, StepReport, UpTarget,
};
use crate::db::pg::{self, PgConn, PgSession};
use crate::db::{DbError, Ending, PgUrl};

impl Engine for PgSession<'_> {
    type Conn = PgConn;

    fn place(&self) -> PathBuf {
        self.conn().place().to_path_buf()
    }

    fn transaction<P, T>(
        &mut self,
        _what: &str,
        prepare: impl FnOnce(&PgConn) -> Result<P>,
        change: impl FnMut(&PgConn, &P) -> Result<T>,
    ) -> Result<(P, T)> {
        PgSession::transaction(self, Ending::Commit, prepare, change)
    }

    fn outside_transaction<T>(&mut self, run: impl FnOnce(&PgConn) -> Result<T>) -> Result<T> {
        PgSession::outside_transaction(self, run)
    }

    fn transaction_open(conn: &PgConn) -> bool {
        conn.in_transaction()
    }

    fn create_history(conn: &PgConn, _place: &Path) -> Result<()> {
        conn.run(CREATE_HISTORY_TABLE, "creating the history table")?;
        Ok(())
    }

    fn run_step(
        conn: &PgConn,
        _place: &Path,
        step: &Step,
        now: OffsetDateTime,
        _only_step: bool,
    ) -> Result<StepReport> {
        let started = Instant::now();
        let path = step
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("<{}>", step.name)));
        let statements = match &step.sql {
            Some(sql) => {
                if matches!(crate::rebuild::RebuildFile::parse(sql), Ok(Some(_))) {
                    return Err(DbError::NotOnPostgres {
                        what: format!("the generated table rebuild {}", path.display()),
                        reason: "it is SQLite's rebuild; PostgreSQL's ALTER TABLE makes the change in place".into(),
                    }
                    .into());
                }
                run_script(conn, sql, &path, !step.no_transaction)?
            }
            None => Vec::new(),
        };
        match step.action {
            Action::Apply | Action::Record => {
                insert_history(conn, step.version, &step.name, step.checksum, now)?
            }
            Action::Revert | Action::Forget => delete_history(conn, step.version)?,
            Action::Rebuild => {}
        }
        Ok(StepReport::ran(step, started, statements, Vec::new()))
    }
}

/// Run every statement of `sql` on `conn`, one at a time so that a failure names its line.
/// `in_transaction`: dbtool holds a transaction, which a `BEGIN`/`COMMIT` in the file would
/// break (refused before it runs).
pub fn run_script(
    conn: &PgConn,
    sql: &str,
    path: &Path,
    in_transaction: bool,
) -> Result<Vec<StatementReport>> {
    let mut reports = Vec::new();
    for statement in crate::sql::statements(sql, crate::sql::Dialect::Postgres) {
        let (bare, line) = (statement.text, statement.line);
        if in_transaction && controls_transaction(bare) {
            return Err(MigrateError::TransactionControl {
                path: path.to_path_buf(),
                line,
                statement: bare.to_string(),
            });
        }
        let rows = conn.execute(bare).map_err(|e| {
            match pg::classify(&e, "running a migration", conn.url(), Duration::ZERO) {
                // Waiting for a lock past the timeout is "locked" (exit 4), not a bad migration.
                locked @ DbError::Locked { .. } => MigrateError::Db(locked),
                _ => MigrateError::PostgresStatementFailed {
                    path: path.to_path_buf(),
                    line,
                    statement: bare.to_string(),
                    source: Box::new(pg::failure(&e)),
                },
            }
        })?;
        reports.push(StatementReport {
            line,
            sql: bare.to_string(),
            rows_changed: rows,
        });
    }
    Ok(reports)
}

/// `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ABORT`, `ROLLBACK` (not `ROLLBACK TO`) and
/// the two-phase forms: statements that would end or nest dbtool's transaction.
fn controls_transaction(statement: &str) -> bool {
    let mut words = statement
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase());
    match words.next().as_deref() {
        Some("BEGIN") | Some("COMMIT") | Some("END") | Some("ABORT") => true,
        Some("START") => words.next().as_deref() == Some("TRANSACTION"),
        Some("PREPARE") => words.next().as_deref() == Some("TRANSACTION"),
        Some("ROLLBACK") => !words.take(2).any(|w| w == "TO"),
        _ => false,
    }
}

fn insert_history(
    conn: &PgConn,
    version: i32,
    name: &str,
    checksum: u64,
    now: OffsetDateTime,
) -> Result<()> {
    let applied_on = super::history::applied_on_text(now);
    conn.client()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ($1, $2, $3, $4)",
            &[&version, &name, &applied_on, &checksum.to_string()],
        )
        .map_err(|e| conn.error(&e, &format!("recording V{version}__{name} in the history")))?;
    Ok(())
}

fn delete_history(conn: &PgConn, version: i32) -> Result<()> {
    conn.client()
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = $1",
            &[&version],
        )
        .map_err(|e| conn.error(&e, &format!("removing version {version} from the history")))?;
    Ok(())
}

/// Whether the history table exists (in the schemas of the search path, as refinery finds it).
pub fn history_exists(conn: &PgConn) -> Result<bool> {
    let row = conn
        .client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])
        .map_err(|e| conn.error(&e, "looking for the history table"))?;
    Ok(row.get(0))
}

/// Every applied migration, oldest first; an absent table is an empty history. Rows are
/// validated as on SQLite: a damaged one is [`MigrateError::HistoryDamaged`].
pub fn read_history(conn: &PgConn) -> Result<Vec<AppliedMigration>> {
    if !history_exists(conn)? {
        return Ok(Vec::new());
    }
    let damaged = |detail: String| MigrateError::HistoryDamaged {
        path: conn.place().to_path_buf(),
        table: HISTORY_TABLE.into(),
        detail,
    };
    let rows = conn
        .client()
        .query(
            "SELECT version::int8, name::text, applied_on::text, checksum::text FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .map_err(|e| match pg::failure(&e).sqlstate.as_str() {
            // A column missing or of a type that does not cast: not refinery's table.
            "42703" | "42846" => damaged(format!("cannot read it: {}", pg::failure(&e))),
            _ => conn.error(&e, "reading the history table").into(),
        })?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in rows {
        let version: Option<i64> = row.get(0);
        let Some(version) = version else {
            return Err(damaged(format!(
                "row {}: version is NULL",
                applied.len() + 1
            )));
        };
        let version = i32::try_from(version)
            .map_err(|_| damaged(format!("version {version} is out of range")))?;
        let at = |what: String| damaged(format!("version {version}: {what}"));
        let name: Option<String> = row.get(1);
        let name = name.ok_or_else(|| at("name is NULL".into()))?;
        let applied_on: Option<String> = row.get(2);
        let applied_on = applied_on.ok_or_else(|| at("applied_on is NULL".into()))?;
        let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339)
            .map_err(|_| at(format!("applied_on {applied_on:?} is not an RFC 3339 time")))?;
        let checksum: Option<String> = row.get(3);
        let checksum = checksum.ok_or_else(|| at("checksum is NULL".into()))?;
        let checksum = checksum
            .parse::<u64>()
            .map_err(|_| at(format!("checksum {checksum:?} is not an unsigned integer")))?;
        applied.push(AppliedMigration {
            version,
            name,
            applied_on,
            checksum,
        });
    }
    Ok(applied)
}

/// Tables the application keeps outside dbtool's history (schemas other than the system ones).
pub fn user_tables(conn: &PgConn) -> Result<Vec<String>> {
    let rows = conn
        .client()
        .query(
            "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
               AND c.relname <> $1
             ORDER BY 1",
            &[&HISTORY_TABLE],
        )
        .map_err(|e| conn.error(&e, "listing tables"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Create the database `url` names when it does not exist (from the maintenance database
/// `postgres`, as `createdb` does). Returns whether it was created.
pub fn create_database_if_missing(url: &PgUrl) -> Result<bool> {
    match PgConn::connect(url) {
        Ok(_) => return Ok(false),
        Err(DbError::DatabaseMissing { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let maintenance = PgConn::connect(&url.with_dbname("postgres"))?;
    let sql = format!("CREATE DATABASE {}", crate::sql::quote_ident(url.dbname()));
    match maintenance.execute(&sql) {
        Ok(_) => Ok(true),
        // Created by a concurrent `init` in the meantime.
        Err(e) if pg::failure(&e).sqlstate == "42P04" => Ok(false),
        Err(e) => Err(pg::classify(
            &e,
            &format!("creating the database {:?}", url.dbname()),
            url,
            Duration::ZERO,
        )
        .into()),
    }
}

impl Migrator {
    /// `init` on PostgreSQL: create the database when missing (and the role may), then upgrade.
    pub(super) fn pg_init(&self, url: &PgUrl, options: &RunOptions<'_>) -> Result<InitReport> {
        let set = self.load_migrations()?;
        let created = if options.dry_run {
            false
        } else {
            create_database_if_missing(url)?
        };
        if !created {
            let conn = PgConn::connect(url)?;
            if history_exists(&conn)? {
                let applied = read_history(&conn)?;
                let overview = Overview::new(&set, &applied);
                return Ok(InitReport {
                    database: self.database.clone(),
                    already_initialised: true,
                    current: overview.current,
                    pending: overview.pending().map(|e| e.version).collect(),
                    run: None,
                });
            }
        }
        let mut run = self.pg_run(url, Operation::Upgrade, &set, options, created, |applied| {
            super::plan_upgrade(&set, applied, UpTarget::Head)
        })?;
        run.created = created;
        if !run.dry_run && run.steps.is_empty() {
            // No migrations yet: leave the history table, so the database is recognisably dbtool's.
            let conn = PgConn::connect(url)?;
            let mut session = PgSession::new(&conn, self.busy_timeout);
            session.transaction(
                Ending::Commit,
                |_| Ok::<_, MigrateError>(()),
                |conn, ()| <PgSession as Engine>::create_history(conn, Path::new("")),
            )?;
            session.finish()?;
        }
        Ok(InitReport {
            database: self.database.clone(),
            already_initialised: false,
            current: run.to,
            pending: Vec::new(),
            run: Some(run),
        })
    }

    /// Connect, lock, plan under the lock, run the hook, execute, commit: [`executor::execute`]
    /// on a [`PgSession`].
    pub(super) fn pg_run(
        &self,
        url: &PgUrl,
        operation: Operation,
        set: &MigrationSet,
        options: &RunOptions<'_>,
        created: bool,
        make_plan: impl FnOnce(&[AppliedMigration]) -> Result<Plan>,
    ) -> Result<RunReport> {
        let conn = PgConn::connect(url)?;
        if options.dry_run {
            return self.pg_dry_run(&conn, operation, set, make_plan);
        }
        let mut session = PgSession::new(&conn, self.busy_timeout);
        // A run with a no-transaction step holds the lock between its transactions too.
        if set.migrations.iter().any(has_no_transaction_step) {
            session.hold_run_lock()?;
        }
        let total = std::cell::Cell::new(0usize);
        let mut done = 0usize;
        let prepare = |conn: &PgConn| -> Result<Prepared> {
            let applied = read_history(conn)?;
            if operation == Operation::Upgrade {
                refuse_unmanaged(conn)?;
            }
            let plan = make_plan(&applied)?;
            total.set(plan.steps.len());
            let backup = match options.before_change {
                Some(hook) if !plan.is_empty() => hook(&ChangeContext {
                    db_path: &self.database,
                    postgres: Some(url),
                    operation,
                    plan: &plan,
                    // A database with no table and no history (just created, by `init` or by
                    // hand) has nothing a backup could give back.
                    nothing_to_back_up: created
                        || (applied.is_empty() && user_tables(conn)?.is_empty()),
                })?,
                _ => None,
            };
            Ok(Prepared { plan, backup })
        };
        let (prepared, steps) = executor::execute(
            &mut session,
            operation,
            options.now,
            prepare,
            &mut |_, _, report| {
                super::tell_progress(options, report, &mut done, total.get());
                Ok(())
            },
        )?;
        session.finish()?;
        Ok(self.ran_report(operation, set, created, prepared, steps))
    }

    fn pg_dry_run(
        &self,
        conn: &PgConn,
        operation: Operation,
        set: &MigrationSet,
        make_plan: impl FnOnce(&[AppliedMigration]) -> Result<Plan>,
    ) -> Result<RunReport> {
        let applied = read_history(conn)?;
        if operation == Operation::Upgrade {
            refuse_unmanaged(conn)?;
        }
        let plan = make_plan(&applied)?;
        let warnings =
            if operation == Operation::Upgrade {
                lint(plan.steps.iter().filter_map(|s| {
                    Some((s.path.as_deref()?, s.sql.as_deref()?, s.no_transaction))
                }))
            } else {
                plan::empty_down_steps(&plan.steps)
            };
        Ok(self.planned_report(operation, set, &plan, warnings))
    }

    pub(super) fn pg_read_history(&self, url: &PgUrl) -> Result<Vec<AppliedMigration>> {
        read_history(&PgConn::connect(url)?)
    }

    pub(super) fn pg_current(&self, url: &PgUrl) -> Result<CurrentReport> {
        let listed = MigrationSet::list(&self.migrations)?;
        let applied = self.pg_read_history(url)?;
        Ok(super::current_report(
            self.database.clone(),
            &listed,
            &applied,
        ))
    }

    pub(super) fn pg_status(&self, url: &PgUrl) -> Result<StatusReport> {
        let set = self.load_migrations()?;
        let conn = match PgConn::connect(url) {
            Ok(conn) => Some(conn),
            Err(DbError::DatabaseMissing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let applied = match &conn {
            Some(conn) => read_history(conn)?,
            None => Vec::new(),
        };
        let overview = Overview::new(&set, &applied);
        let mut problems = plan::problems(&set, &applied);
        if let Some(conn) = &conn {
            if let Err(e) = refuse_unmanaged(conn) {
                match e {
                    MigrateError::UnmanagedDatabase { .. } => problems.insert(0, e),
                    other => return Err(other),
                }
            }
        }
        let pending: Vec<i32> = overview.pending().map(|e| e.version).collect();
        let mut warnings = lint(
            set.migrations
                .iter()
                .filter(|m| pending.contains(&m.version))
                .map(|m| {
                    (
                        m.up.path.as_path(),
                        m.up.sql.as_str(),
                        m.up.directives.no_transaction,
                    )
                }),
        );
        warnings.extend(plan::empty_downs(&set.migrations));
        Ok(StatusReport {
            database: self.database.clone(),
            database_exists: conn.is_some(),
            migrations: self.migrations.clone(),
            current: overview.current,
            head: overview.head,
            pending,
            problems: problems.iter().map(super::Problem::from).collect(),
            entries: overview.entries,
            warnings,
        })
    }
}

/// The PostgreSQL lint over files about to run.
fn lint<'a>(files: impl IntoIterator<Item = (&'a Path, &'a str, bool)>) -> Vec<super::Warning> {
    files
        .into_iter()
        .flat_map(|(path, sql, no_transaction)| super::lint_postgres(path, sql, no_transaction))
        .collect()
}

fn refuse_unmanaged(conn: &PgConn) -> Result<()> {
    if history_exists(conn)? {
        return Ok(());
    }
    let tables = user_tables(conn)?;
    if tables.is_empty() {
        return Ok(());
    }
    Err(MigrateError::UnmanagedDatabase {
        path: conn.place().to_path_buf(),
        tables,
    })
}
