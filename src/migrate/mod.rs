//! Migrations: the [`Migrator`] library API behind `init`, `upgrade`, `downgrade`, `stamp`,
//! `current`, `history`, `status` and `create`.
//!
//! How a run executes (the guarantees the CLI documents):
//! 1. The folder is loaded and checked before the database is opened.
//! 2. `PRAGMA foreign_keys=OFF` is set on the connection *before* the transaction (inside one it
//!    is a silent no-op) and read back.
//! 3. `BEGIN IMMEDIATE` takes the write lock, waiting up to the busy timeout: this is the
//!    cross-process lock. The history is read and the plan computed *under* that lock, so two
//!    concurrent upgrades never apply a migration twice: the second one finds nothing pending.
//! 4. The before-change hook runs (the CLI takes the automatic backup there), then every step and
//!    its history row run in the same transaction: the whole plan is all-or-nothing.
//! 5. Before `COMMIT`, `PRAGMA foreign_key_check` must show no violation that was not there
//!    before; otherwise everything rolls back and the violations are listed.
//! 6. Foreign keys are restored to what they were.
//!
//! A migration marked `-- dbtool:no-transaction` (for `PRAGMA journal_mode=WAL` or `VACUUM`,
//! which SQLite refuses inside a transaction) is a commit boundary: the steps before it commit,
//! it runs on its own in autocommit mode, its history row is written right after, and the rest
//! of the plan continues in a new transaction. Such migrations must be safe to run twice (a
//! crash between the SQL and its history row leaves it unrecorded). Because SQLite's lock is
//! released around them, a folder holding any such migration also takes an advisory lock on
//! `<database>.dbtool-lock` for the whole run, so concurrent dbtool runs still serialise.

mod error;
mod exec;
mod executor;
mod files;
mod history;
mod lint_pg;
mod offline;
#[cfg(feature = "postgres")]
pub(crate) mod pg;
mod plan;
mod rebuild_cmd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use time::OffsetDateTime;

use crate::db::{self, DbError, OpenMode, WriteSession};
use crate::rebuild;
use error::Result;

pub use error::MigrateError;
pub use exec::{run_script, StatementReport};
pub use executor::{apply_in_memory, execute, run_plan, run_rebuild_sql, Observer, Prepared};
pub use files::{Directives, MigrationFile, MigrationName, MigrationSet, SqlFile};
pub use history::{AppliedMigration, CREATE_HISTORY_TABLE, HISTORY_TABLE};
pub use lint_pg::lint_postgres;
pub use offline::OfflineScript;
pub use plan::{
    down_path_for, plan_downgrade, plan_redo, plan_stamp, plan_upgrade, problems, Action,
    DownTarget, Entry, MigrationState, Overview, Plan, StampTarget, Step, UpTarget,
};
pub use rebuild_cmd::RebuildRun;

/// Read the history of an open database (empty when it has none).
pub fn read_history(conn: &Connection, path: &Path) -> Result<Vec<AppliedMigration>> {
    history::read(conn, path)
}

/// A warning about a migration (from the lint), shown by `status` and `upgrade --dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub code: String,
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

/// Which operation a [`RunReport`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Upgrade,
    Downgrade,
    /// `dbtool redo`: the newest migration's down, then its up, in one transaction.
    Redo,
    Stamp,
    /// `dbtool rebuild`: a generated table rebuild applied directly.
    Rebuild,
    /// A one-off script (`dbtool exec`): no migration runs, the hook still sees the change coming.
    Exec,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upgrade => "upgrade",
            Operation::Downgrade => "downgrade",
            Operation::Redo => "redo",
            Operation::Stamp => "stamp",
            Operation::Rebuild => "rebuild",
            Operation::Exec => "exec",
        }
    }
}

/// What the before-change hook sees: the write lock is held, nothing has changed yet.
pub struct ChangeContext<'a> {
    /// The SQLite file, or on PostgreSQL the redacted URL.
    pub db_path: &'a Path,
    /// The PostgreSQL database, when the run is on one (the backup is `pg_dump`'s).
    pub postgres: Option<&'a db::PgUrl>,
    pub operation: Operation,
    pub plan: &'a Plan,
    /// There is nothing to back up: the database did not exist before this run, or (PostgreSQL)
    /// it holds no table and no history yet.
    pub nothing_to_back_up: bool,
}

/// Runs after the plan is known and before the first change; an error aborts the run with the
/// database untouched. Returns the path of the backup it took, if any.
pub type BeforeChange<'a> =
    dyn Fn(&ChangeContext<'_>) -> Result<Option<PathBuf>, crate::backup::BackupError> + 'a;

/// Options of one run.
pub struct RunOptions<'a> {
    /// Compute and report the plan (with its SQL); change nothing.
    pub dry_run: bool,
    pub before_change: Option<&'a BeforeChange<'a>>,
    /// The time written to the history's `applied_on`.
    pub now: OffsetDateTime,
    /// Told after each step has run (inside the transaction, not yet committed): the CLI's
    /// progress display. The library never prints.
    pub on_step: Option<&'a OnStep<'a>>,
}

/// Progress callback: the step just run, its 1-based position and the plan's length.
pub type OnStep<'a> = dyn Fn(&StepReport, usize, usize) + 'a;

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            before_change: None,
            now: OffsetDateTime::now_utc(),
            on_step: None,
        }
    }
}

/// One executed (or, in a dry run, planned) step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub action: Action,
    pub version: i32,
    pub name: String,
    pub path: Option<PathBuf>,
    pub no_transaction: bool,
    /// Wall time of the step's SQL and history row (0 in a dry run).
    pub duration_ms: f64,
    /// The exact SQL (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    pub statements: Vec<StatementReport>,
    /// What a generated rebuild's preflight noticed without refusing (values kept as they were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The result of `upgrade`, `downgrade` or `stamp`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub operation: Operation,
    pub database: PathBuf,
    pub dry_run: bool,
    /// This run created the database file.
    pub created: bool,
    #[serde(rename = "from_version")]
    pub from: Option<i32>,
    #[serde(rename = "to_version")]
    pub to: Option<i32>,
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    pub steps: Vec<StepReport>,
    /// The backup the before-change hook took.
    pub backup: Option<PathBuf>,
    pub warnings: Vec<Warning>,
}

/// `init`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub database: PathBuf,
    pub already_initialised: bool,
    #[serde(rename = "current_version")]
    pub current: Option<i32>,
    /// Versions still pending (after an `init` that ran, none).
    pub pending: Vec<i32>,
    pub run: Option<RunReport>,
}

/// `current`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentReport {
    pub database: PathBuf,
    #[serde(rename = "current_version")]
    pub version: Option<i32>,
    pub name: Option<String>,
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    pub is_head: bool,
    pub pending: Vec<i32>,
}

/// A problem found by `status` (the same checks that stop `upgrade`).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

impl From<&MigrateError> for Problem {
    fn from(e: &MigrateError) -> Self {
        Problem {
            code: e.code().into(),
            message: e.to_string(),
            hint: None, // attached by the CLI, by code
        }
    }
}

/// `history`'s and `status`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub database: PathBuf,
    pub database_exists: bool,
    pub migrations: PathBuf,
    #[serde(rename = "current_version")]
    pub current: Option<i32>,
    #[serde(rename = "head_version")]
    pub head: Option<i32>,
    pub entries: Vec<Entry>,
    pub pending: Vec<i32>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

/// `create`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    pub version: i32,
    pub up: PathBuf,
    pub down: PathBuf,
}

/// The library API: migrate a SQLite database from a folder of SQL files.
///
/// ```no_run
/// let migrator = dbtool::Migrator::new("content.db", "migrations");
/// let report = migrator.upgrade(dbtool::UpTarget::Head, &Default::default())?;
/// for step in &report.steps {
///     eprintln!("applied V{}__{} in {:.1} ms", step.version, step.name, step.duration_ms);
/// }
/// # Ok::<(), dbtool::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Migrator {
    /// The SQLite file, or on PostgreSQL the redacted URL (what reports name).
    database: PathBuf,
    target: db::Database,
    migrations: PathBuf,
    busy_timeout: Duration,
    /// Only `init` creates a database file; every other run refuses a missing one.
    create_database: bool,
}

impl Migrator {
    /// A migrator for `database`: a SQLite path, or a [`db::Database`] (SQLite or PostgreSQL).
    pub fn new(database: impl Into<db::Database>, migrations: impl Into<PathBuf>) -> Migrator {
        let target = database.into();
        Migrator {
            database: target.place(),
            target,
            migrations: migrations.into(),
            busy_timeout: db::DEFAULT_BUSY_TIMEOUT,
            create_database: false,
        }
    }

    /// How long to wait for another process's lock before failing with [`crate::db::DbError::Locked`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Migrator {
        self.busy_timeout = timeout;
        self
    }

    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The PostgreSQL database, when this migrator works on one.
    pub fn postgres_url(&self) -> Option<&db::PgUrl> {
        match &self.target {
            db::Database::Postgres(url) => Some(url),
            db::Database::Sqlite(_) => None,
        }
    }

    pub fn migrations_dir(&self) -> &Path {
        &self.migrations
    }

    pub fn load_migrations(&self) -> Result<MigrationSet> {
        MigrationSet::load(&self.migrations)
    }

    /// Open the existing database read-only and read its history.
    pub fn read_history(&self) -> Result<Vec<AppliedMigration>> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_read_history(url);
        }
        let conn = db::open(&self.database, OpenMode::ReadOnly, self.busy_timeout)?;
        history::read(&conn, &self.database)
    }

    /// Create the database and bring it to head. An initialised database is left alone.
    pub fn init(&self, options: &RunOptions<'_>) -> Result<InitReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_init(url, options);
        }
        let set = self.load_migrations()?;
        if self.database.exists() {
            let conn = db::open(&self.database, OpenMode::ReadOnly, self.busy_timeout)?;
            if history::table_exists(&conn, &self.database)? {
                let applied = history::read(&conn, &self.database)?;
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
        let creating = Migrator {
            create_database: true,
            ..self.clone()
        };
        let run = creating.run(Operation::Upgrade, &set, options, |applied| {
            plan_upgrade(&set, applied, UpTarget::Head)
        })?;
        if !run.dry_run && run.steps.is_empty() {
            // No migrations yet: still leave a database that is recognisably dbtool's (and not a
            // zero-byte file), so `upgrade` has something to open after the first `create`.
            let conn = db::open(&self.database, OpenMode::ReadWrite, self.busy_timeout)?;
            let mut session = WriteSession::new(&conn, &self.database, self.busy_timeout)?;
            session.transaction(
                "init",
                db::Ending::Commit,
                |_| Ok::<_, MigrateError>(()),
                |conn, ()| {
                    conn.execute_batch(CREATE_HISTORY_TABLE).map_err(|e| {
                        MigrateError::sqlite("creating the history table", &self.database, e)
                    })
                },
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

    /// Apply pending migrations. A missing database is an error ([`DbError::DatabaseMissing`]):
    /// creating one is [`Migrator::init`]'s job, so a mistyped path never yields a new empty file.
    pub fn upgrade(&self, target: UpTarget, options: &RunOptions<'_>) -> Result<RunReport> {
        let set = self.load_migrations()?;
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_run(url, Operation::Upgrade, &set, options, false, |applied| {
                plan_upgrade(&set, applied, target)
            });
        }
        if !self.database.exists() {
            return Err(DbError::DatabaseMissing {
                path: self.database.clone(),
            }
            .into());
        }
        self.run(Operation::Upgrade, &set, options, |applied| {
            plan_upgrade(&set, applied, target)
        })
    }

    pub fn downgrade(&self, target: DownTarget, options: &RunOptions<'_>) -> Result<RunReport> {
        let set = self.load_migrations()?;
        self.run(Operation::Downgrade, &set, options, |applied| {
            plan_downgrade(&set, applied, target)
        })
    }

    /// Run the newest applied migration's current down, then its current up, in one transaction,
    /// and record its current checksum: for the migration still being written (an
    /// `edited-migration` on the newest one is what this is for).
    pub fn redo(&self, options: &RunOptions<'_>) -> Result<RunReport> {
        let set = self.load_migrations()?;
        self.run(Operation::Redo, &set, options, |applied| {
            plan_redo(&set, applied)
        })
    }

    /// Record (or forget) migrations without running their SQL.
    pub fn stamp(&self, target: StampTarget, options: &RunOptions<'_>) -> Result<RunReport> {
        let set = self.load_migrations()?;
        self.run(Operation::Stamp, &set, options, |applied| {
            plan_stamp(&set, applied, target)
        })
    }

    /// The current version and whether it is head. Only the folder's file names are needed (no
    /// file is read or hashed: `status` is the command that checks them).
    pub fn current(&self) -> Result<CurrentReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_current(url);
        }
        let listed = MigrationSet::list(&self.migrations)?;
        let applied = self.read_history()?;
        Ok(current_report(self.database.clone(), &listed, &applied))
    }

    /// Files and history side by side, with every problem. A missing database counts as empty.
    pub fn status(&self) -> Result<StatusReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_status(url);
        }
        let set = self.load_migrations()?;
        let database_exists = self.database.exists();
        let applied = if database_exists {
            self.read_history()?
        } else {
            Vec::new()
        };
        let overview = Overview::new(&set, &applied);
        let mut problems = plan::problems(&set, &applied);
        let pending: Vec<i32> = overview.pending().map(|e| e.version).collect();
        let existing = if database_exists {
            Some(db::open(
                &self.database,
                OpenMode::ReadOnly,
                self.busy_timeout,
            )?)
        } else {
            None
        };
        // Tables but no history: the refusal `upgrade` would meet, reported up front.
        if let Some(conn) = &existing {
            if let Err(e) = self.refuse_unmanaged(conn) {
                match e {
                    MigrateError::UnmanagedDatabase { .. } => problems.insert(0, e),
                    other => return Err(other),
                }
            }
        }
        let mut warnings = lint_steps(
            existing.as_ref(),
            set.migrations
                .iter()
                .filter(|m| pending.contains(&m.version))
                .map(|m| (m.up.path.as_path(), m.up.sql.as_str())),
        );
        warnings.extend(plan::empty_downs(&set.migrations));
        Ok(StatusReport {
            database: self.database.clone(),
            database_exists,
            migrations: self.migrations.clone(),
            current: overview.current,
            head: overview.head,
            pending,
            problems: problems.iter().map(Problem::from).collect(),
            entries: overview.entries,
            warnings,
        })
    }

    /// Write `V{next}__{slug}.sql` and its `.down.sql` from a short template.
    pub fn create(&self, description: &str, now: OffsetDateTime) -> Result<CreateReport> {
        let date = now.date();
        self.create_with(description, |version| {
            (
                match self.target {
                    db::Database::Sqlite(_) => format!(
                        "-- V{version:04}: {description}\n-- Created {date} by `dbtool create`. dbtool runs this file and its history row in one\n-- transaction, with foreign keys off: no BEGIN/COMMIT or PRAGMA foreign_keys needed here.\n\n"
                    ),
                    db::Database::Postgres(_) => format!(
                        "-- V{version:04}: {description}\n-- Created {date} by `dbtool create`. dbtool runs this file and its history row in one\n-- transaction: no BEGIN/COMMIT needed here (for CREATE INDEX CONCURRENTLY, put it in a file\n-- of its own whose first line is `-- dbtool:no-transaction`).\n\n"
                    ),
                },
                format!(
                    "-- Undo V{version:04}: {description}\n-- Must bring the schema back exactly as it was before V{version:04} (`dbtool verify` checks).\n\n"
                ),
            )
        })
    }

    /// Write `V{next}__{slug}.sql` and its `.down.sql` with the texts `contents(version)` gives.
    /// Neither file is left behind on error.
    pub fn create_with(
        &self,
        description: &str,
        contents: impl FnOnce(i32) -> (String, String),
    ) -> Result<CreateReport> {
        let slug = slugify(description);
        if slug.is_empty() {
            return Err(MigrateError::EmptySlug {
                name: description.to_string(),
            });
        }
        // The folder must exist, as for every other command: creating it here made a stray
        // `migrations/` wherever `create` happened to run (`dbtool init` starts a project).
        let set = self.load_migrations()?;
        let version = set.head().map_or(1, |m| m.version + 1);
        let up = self.migrations.join(format!("V{version:04}__{slug}.sql"));
        let down = self
            .migrations
            .join(format!("V{version:04}__{slug}.down.sql"));
        let (up_text, down_text) = contents(version);
        write_new(&up, &up_text)?;
        if let Err(e) = write_new(&down, &down_text) {
            let _ = std::fs::remove_file(&up);
            return Err(e);
        }
        Ok(CreateReport { version, up, down })
    }

    /// Open, lock, plan, run the hook, execute, check, commit: [`executor::execute`] on the
    /// database's [`WriteSession`].
    fn run(
        &self,
        operation: Operation,
        set: &MigrationSet,
        options: &RunOptions<'_>,
        make_plan: impl FnOnce(&[AppliedMigration]) -> Result<Plan>,
    ) -> Result<RunReport> {
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_url() {
            return self.pg_run(url, operation, set, options, false, make_plan);
        }
        if options.dry_run {
            return self.dry_run(operation, set, make_plan);
        }
        // Only a folder with no-transaction migrations needs a lock that outlives SQLite's.
        let _run_lock = if set.migrations.iter().any(has_no_transaction_step) {
            Some(db::run_lock(&self.database, self.busy_timeout)?)
        } else {
            None
        };
        let mode = if self.create_database {
            OpenMode::Create
        } else {
            OpenMode::ReadWrite
        };
        let created = !self.database.exists();
        let conn = db::open(&self.database, mode, self.busy_timeout)?;
        let result = self.run_on(&conn, operation, set, options, created, make_plan);
        drop(conn);
        if result.is_err() && created {
            self.remove_if_empty();
        }
        result
    }

    fn run_on(
        &self,
        conn: &Connection,
        operation: Operation,
        set: &MigrationSet,
        options: &RunOptions<'_>,
        created: bool,
        make_plan: impl FnOnce(&[AppliedMigration]) -> Result<Plan>,
    ) -> Result<RunReport> {
        let mut session = WriteSession::new(conn, &self.database, self.busy_timeout)?;
        // For `on_step`: the plan's length, and how many steps have run.
        let total = std::cell::Cell::new(0usize);
        let mut done = 0usize;
        let prepare = |conn: &Connection| -> Result<Prepared> {
            let applied = history::read(conn, &self.database)?;
            if operation == Operation::Upgrade {
                self.refuse_unmanaged(conn)?;
            }
            let plan = make_plan(&applied)?;
            total.set(plan.steps.len());
            let backup = match options.before_change {
                Some(hook) if !plan.is_empty() => hook(&ChangeContext {
                    db_path: &self.database,
                    postgres: None,
                    operation,
                    plan: &plan,
                    nothing_to_back_up: created,
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
                if let Some(on_step) = options.on_step {
                    // A re-run transaction reports its steps again: never count past the end.
                    done = (done + 1).min(total.get());
                    on_step(report, done, total.get());
                }
                Ok(())
            },
        )?;
        session.finish()?;
        Ok(RunReport {
            operation,
            database: self.database.clone(),
            dry_run: false,
            created,
            from: prepared.plan.from,
            to: prepared.plan.to,
            head: set.head().map(|m| m.version),
            steps,
            backup: prepared.backup,
            warnings: plan::empty_down_steps(&prepared.plan.steps),
        })
    }

    /// Unmanaged means no history table at all: an empty one (after `downgrade base`) is still
    /// dbtool's, whatever other tables the application keeps beside it.
    fn refuse_unmanaged(&self, conn: &Connection) -> Result<()> {
        if history::table_exists(conn, &self.database)? {
            return Ok(());
        }
        let tables = db::user_tables(conn, &self.database)?;
        if tables.is_empty() {
            return Ok(());
        }
        Err(MigrateError::UnmanagedDatabase {
            path: self.database.clone(),
            tables,
        })
    }

    /// Plan against the database as it is (or as empty when it does not exist), change nothing.
    fn dry_run(
        &self,
        operation: Operation,
        set: &MigrationSet,
        make_plan: impl FnOnce(&[AppliedMigration]) -> Result<Plan>,
    ) -> Result<RunReport> {
        let exists = self.database.exists();
        let mut existing = None;
        let applied = if exists {
            let conn = db::open(&self.database, OpenMode::ReadOnly, self.busy_timeout)?;
            let applied = history::read(&conn, &self.database)?;
            if operation == Operation::Upgrade {
                self.refuse_unmanaged(&conn)?;
            }
            existing = Some(conn);
            applied
        } else if operation == Operation::Upgrade {
            Vec::new()
        } else {
            return Err(DbError::DatabaseMissing {
                path: self.database.clone(),
            }
            .into());
        };
        let plan = make_plan(&applied)?;
        Ok(RunReport {
            operation,
            database: self.database.clone(),
            dry_run: true,
            created: false,
            from: plan.from,
            to: plan.to,
            head: set.head().map(|m| m.version),
            steps: plan
                .steps
                .iter()
                .map(|s| StepReport {
                    action: s.action,
                    version: s.version,
                    name: s.name.clone(),
                    path: s.path.clone(),
                    no_transaction: s.no_transaction,
                    duration_ms: 0.0,
                    sql: s.sql.clone(),
                    statements: Vec::new(),
                    warnings: Vec::new(),
                })
                .collect(),
            backup: None,
            warnings: if operation == Operation::Upgrade {
                lint_steps(
                    existing.as_ref(),
                    plan.steps
                        .iter()
                        .filter_map(|s| Some((s.path.as_deref()?, s.sql.as_deref()?))),
                )
            } else {
                plan::empty_down_steps(&plan.steps)
            },
        })
    }

    /// After a failed first run, leave no empty database file behind.
    fn remove_if_empty(&self) {
        if std::fs::metadata(&self.database).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&self.database);
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut side = self.database.clone().into_os_string();
                side.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(side));
            }
        }
    }
}

/// `current`'s report from the folder's listing and the history.
fn current_report(
    database: PathBuf,
    listed: &[MigrationName],
    applied: &[AppliedMigration],
) -> CurrentReport {
    let newest = applied.iter().max_by_key(|a| a.version);
    let head = listed.last().map(|m| m.version);
    CurrentReport {
        database,
        version: newest.map(|a| a.version),
        name: newest.map(|a| a.name.clone()),
        head,
        is_head: newest.map(|a| a.version) == head,
        pending: listed
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| m.version)
            .collect(),
    }
}

fn has_no_transaction_step(m: &MigrationFile) -> bool {
    m.up.directives.no_transaction || m.down.as_ref().is_some_and(|d| d.directives.no_transaction)
}

/// Lint warnings for migrations about to run, each judged against the schema the ones before it
/// leave: a replica of `db`'s schema (or an empty database), with each file applied in turn.
fn lint_steps<'a>(
    db: Option<&Connection>,
    files: impl IntoIterator<Item = (&'a Path, &'a str)>,
) -> Vec<Warning> {
    let scratch = match db {
        Some(conn) => crate::schema::replica(conn).ok(),
        None => db::scratch().ok(),
    };
    let Some(scratch) = scratch else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, sql) in files {
        let no_transaction = Directives::parse(sql).no_transaction;
        let outcome = rebuild::lint(sql, &scratch, no_transaction);
        out.extend(outcome.warnings.into_iter().map(|w| Warning {
            code: w.code.to_string(),
            path: Some(path.to_path_buf()),
            line: Some(w.line),
            message: w.message,
            hint: Some(w.hint),
        }));
        if !outcome.advanced {
            break; // later files would be judged against a schema they never see
        }
    }
    out
}

/// "Add user preferences table" -> `add_user_preferences_table` (ASCII letters, digits, `_`).
pub fn slugify(description: &str) -> String {
    let mut slug = String::new();
    for c in description.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    if slug.len() <= MAX_SLUG_LEN {
        return slug.to_string();
    }
    // Too long for a readable file name (and, past 255 bytes, for any file system): cut at the
    // last word boundary that fits, as Alembic truncates its slugs.
    let cut = &slug[..MAX_SLUG_LEN];
    match cut.rfind('_') {
        Some(i) if i >= MAX_SLUG_LEN / 2 => cut[..i].to_string(),
        _ => cut.to_string(),
    }
}

/// The longest slug `create` writes into a file name (Alembic's default is 40).
pub const MAX_SLUG_LEN: usize = 60;

fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => MigrateError::FileExists {
                path: path.to_path_buf(),
            },
            _ => MigrateError::io("creating", path, e),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| MigrateError::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("Add user preferences table"),
            "add_user_preferences_table"
        );
        assert_eq!(
            slugify("  Fix: posts.status (v2)!  "),
            "fix_posts_status_v2"
        );
        assert_eq!(slugify("!!!"), "");
        let long = slugify(&"add a very long column name ".repeat(20));
        assert!(
            long.len() <= super::MAX_SLUG_LEN && !long.ends_with('_'),
            "{long}"
        );
        assert_eq!(slugify("Crème brûlée"), "cr_me_br_l_e");
    }
}
