//! The checks on a PostgreSQL database: the same reports as on SQLite, with scratch databases on
//! the same server where SQLite uses in-memory databases and temporary copies.
//!
//! Invariants:
//! - The user's database is only read (`check`, `inspect`, `rehearse`, `verify`); `exec` changes
//!   it in one transaction of the write path ([`PgSession`]) after the before-change hook.
//! - Migrations run through the executor on a [`PgSession`] (`migrate::execute`), so what a
//!   check or a rehearsal proves is what `upgrade` does.
//! - A scratch database is `CREATE DATABASE <db>_dbtool_<purpose>_<pid>_<n> TEMPLATE template0`
//!   (with the user's database's encoding and locale when it can be read) and is dropped
//!   `WITH (FORCE)` when its [`ScratchDb`] guard is dropped: after success, after an error, and
//!   while unwinding from a panic.
//! - The rehearsal's copy is `pg_dump -Fc -Z0 | pg_restore --no-owner --no-acl
//!   --exit-on-error` into a scratch database, both tools given the connection through the
//!   environment ([`PgUrl::libpq_env`]): the password is never on a command line.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::drift::{self, CheckOptions, CheckReport, Drift};
use super::inspect::{against_files, IndexInfo, InspectReport, ServerInfo, TableInfo};
use super::rehearse::{pending_step, rows_changed, table_rows, RehearsalReport, StepStatus};
use super::script::{read_script, ExecOptions, ExecReport};
use super::verify::{stairway, Stair, VerifyOptions, VerifyReport};
use super::{CheckError, Checker, Finding, Result};
use crate::db::pg::{PgConn, PgSession};
use crate::db::{DbError, Ending, PgUrl};
use crate::migrate::pg::{read_history, run_script, user_tables};
use crate::migrate::{
    self, Action, ChangeContext, MigrateError, MigrationFile, MigrationSet, Operation, Overview,
    Plan, Prepared, Step, StepReport, UpTarget,
};
use crate::schema::Model;
use crate::sql::quote_ident;

// ---------------------------------------------------------------------------------------------
// Scratch databases

/// Scratch databases made by this process so far (part of their names).
static SCRATCH_COUNT: AtomicU32 = AtomicU32::new(0);

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes).
const MAX_NAME: usize = 63;

/// A database of its own on the user's server, dropped with the guard.
pub(super) struct ScratchDb {
    /// The connection that created it and drops it (to the user's database, or to `postgres`
    /// when that does not exist yet).
    admin: PgConn,
    url: PgUrl,
    name: String,
}

impl ScratchDb {
    /// Create an empty scratch database beside the one `server` names. `purpose` goes into its
    /// name (`check`, `verify`, `rehearse`), so a leftover (a killed run) says whose it was.
    pub(super) fn create(server: &PgUrl, purpose: &str) -> Result<ScratchDb> {
        let admin = match PgConn::connect(server) {
            Ok(conn) => conn,
            Err(DbError::DatabaseMissing { .. }) => {
                PgConn::connect(&server.with_dbname("postgres"))?
            }
            Err(e) => return Err(e.into()),
        };
        let name = scratch_name(server.dbname(), purpose);
        // The user's database's encoding and locale, so that text behaves there as it does in
        // the database (template0 may be created with others).
        let like = admin
            .client()
            .query_opt(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
                 WHERE datname = current_database() AND current_database() = $1",
                &[&server.dbname()],
            )
            .ok()
            .flatten()
            .map_or(String::new(), |r| {
                format!(
                    " ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                    literal(r.get(0)),
                    literal(r.get(1)),
                    literal(r.get(2))
                )
            });
        admin.run(
            &format!(
                "CREATE DATABASE {} TEMPLATE template0{like}",
                quote_ident(&name)
            ),
            &format!("creating the scratch database {name}"),
        )?;
        Ok(ScratchDb {
            admin,
            url: server.with_dbname(&name),
            name,
        })
    }

    /// A connection to the scratch database. Its commits do not wait for the WAL to reach the
    /// disk (`synchronous_commit = off`): the database is thrown away, and the stairway commits
    /// two or three times per migration (waiting for each flush made `verify` 10x slower).
    pub(super) fn connect(&self) -> Result<PgConn> {
        let conn = PgConn::connect(&self.url)?;
        conn.run(
            "SET synchronous_commit = off",
            "setting up the scratch database",
        )?;
        Ok(conn)
    }

    pub(super) fn url(&self) -> &PgUrl {
        &self.url
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        // FORCE: a connection still open on it (ours, or a pg_restore killed midway) does not
        // keep it alive. Nothing to report on failure: the name says whose it is.
        let _ = self.admin.execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        ));
    }
}

/// `<dbname>_dbtool_<purpose>_<pid>_<n>`, the database's name cut (at a character boundary) to
/// fit in 63 bytes.
fn scratch_name(dbname: &str, purpose: &str) -> String {
    let n = SCRATCH_COUNT.fetch_add(1, Ordering::Relaxed);
    let tail = format!("_dbtool_{purpose}_{}_{n}", std::process::id());
    let mut head = dbname.to_string();
    while head.len() + tail.len() > MAX_NAME {
        head.pop();
    }
    format!("{head}{tail}")
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------
// Running steps and reading schemas

/// Run `steps` on `conn` through the executor on a [`PgSession`] (the write path `upgrade`
/// uses), observing each step.
fn run_observed(
    conn: &PgConn,
    steps: Vec<Step>,
    busy_timeout: Duration,
    nested: bool,
    observe: &mut migrate::Observer<'_, PgConn>,
) -> std::result::Result<Vec<StepReport>, MigrateError> {
    let operation = match steps.first().map(|s| s.action) {
        Some(Action::Revert) => Operation::Downgrade,
        _ => Operation::Upgrade,
    };
    let plan = Plan {
        from: None,
        to: None,
        steps,
    };
    let mut session = if nested {
        PgSession::nested(conn, busy_timeout)
    } else {
        PgSession::new(conn, busy_timeout)
    };
    let (_, reports) = migrate::execute(
        &mut session,
        operation,
        OffsetDateTime::UNIX_EPOCH,
        |_| Ok(Prepared { plan, backup: None }),
        observe,
    )?;
    session.finish()?;
    Ok(reports)
}

pub(super) fn run_steps(
    conn: &PgConn,
    steps: Vec<Step>,
    busy_timeout: Duration,
) -> std::result::Result<Vec<StepReport>, MigrateError> {
    run_observed(conn, steps, busy_timeout, false, &mut |_, _, _| Ok(()))
}

pub(super) fn read_model(conn: &PgConn) -> Result<Model> {
    Ok(crate::schema::pg::read(conn)?)
}

/// The schema `files` produce on an empty scratch database beside `server`: `Err` inside when a
/// migration fails (a finding), outside when the scratch database itself cannot be had.
fn expected_schema(
    server: &PgUrl,
    files: &[&MigrationFile],
    busy_timeout: Duration,
) -> Result<std::result::Result<Model, MigrateError>> {
    let scratch = ScratchDb::create(server, "check")?;
    let conn = scratch.connect()?;
    if !files.is_empty() {
        if let Err(e) = run_steps(
            &conn,
            files.iter().map(|f| Step::apply(f)).collect(),
            busy_timeout,
        ) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(read_model(&conn)?))
}

// ---------------------------------------------------------------------------------------------
// check

pub(super) fn check(checker: &Checker, url: &PgUrl, options: &CheckOptions) -> Result<CheckReport> {
    let set = MigrationSet::load(checker.migrations_dir())?;
    check_against(checker, url, &set, options)
}

/// `check` of `url` against an already loaded `set` (also `verify --database`).
pub(super) fn check_against(
    checker: &Checker,
    url: &PgUrl,
    set: &MigrationSet,
    options: &CheckOptions,
) -> Result<CheckReport> {
    let conn = PgConn::connect(url)?;
    let applied = read_history(&conn)?;
    let overview = Overview::new(set, &applied);
    let mut report = CheckReport {
        database: checker.database().to_path_buf(),
        migrations: set.dir.clone(),
        current: overview.current,
        head: overview.head,
        integrity: options.integrity,
        drift_checked: false,
        findings: drift::history_findings(set, &applied, &overview),
        notes: Vec::new(),
    };
    if applied.is_empty() && !user_tables(&conn)?.is_empty() {
        report.notes.push(drift::UNMANAGED_NOTE.into());
    }
    match drift::applied_files(set, &applied) {
        Err(why) => report.notes.push(why),
        Ok(files) => {
            let actual = read_model(&conn)?;
            let expected = expected_schema(url, &files, checker.busy_timeout)?;
            match drift::compare(expected, &actual, &applied) {
                Drift::Checked(findings) => {
                    report.drift_checked = true;
                    report.findings.extend(findings);
                }
                Drift::NotChecked(why) => report.notes.push(why),
            }
        }
    }
    report.findings.extend(not_valid_constraints(&conn)?);
    let leftovers = scratch_leftovers(&conn, url)?;
    if !leftovers.is_empty() {
        report.notes.push(format!(
            "scratch database(s) of another dbtool run on the server (running now, or killed before it could drop them): {}; drop a killed run's with DROP DATABASE … WITH (FORCE)",
            leftovers.join(", ")
        ));
    }
    if options.schema_file.is_some() {
        report.notes.push(
            "the declared schema file is not compared on PostgreSQL (its schema model is SQLite's)"
                .into(),
        );
    }
    Ok(report)
}

/// Scratch databases named after `url`'s database (see [`scratch_name`]) that are still there.
fn scratch_leftovers(conn: &PgConn, url: &PgUrl) -> Result<Vec<String>> {
    let rows = conn
        .client()
        .query(
            "SELECT datname::text FROM pg_database
             WHERE strpos(datname, '_dbtool_') > 1
               AND starts_with($1, left(datname, strpos(datname, '_dbtool_') - 1))
             ORDER BY 1",
            &[&url.dbname()],
        )
        .map_err(|e| conn.error(&e, "listing scratch databases"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// PostgreSQL checks constraints as rows change, so there is no file to check as on SQLite;
/// what can hide violations is a constraint added `NOT VALID` and never validated.
fn not_valid_constraints(conn: &PgConn) -> Result<Vec<Finding>> {
    let rows = conn
        .client()
        .query(
            "SELECT c.conrelid::regclass::text || ': ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid)
             FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
             WHERE NOT c.convalidated AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1",
            &[],
        )
        .map_err(|e| conn.error(&e, "listing constraints not validated"))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut finding = Finding::new(
        "constraint-not-validated",
        format!(
            "{} constraint(s) added NOT VALID were never validated: existing rows may break them",
            rows.len()
        ),
    )
    .with_hint("validate them in a migration: ALTER TABLE … VALIDATE CONSTRAINT …");
    finding.details = drift::limited(rows.iter().map(|r| r.get::<_, String>(0)), 20);
    Ok(vec![finding])
}

// ---------------------------------------------------------------------------------------------
// inspect

pub(super) fn inspect(checker: &Checker, url: &PgUrl) -> Result<InspectReport> {
    let conn = PgConn::connect(url)?;
    let failed =
        |e: postgres::Error| -> CheckError { conn.error(&e, "inspecting the database").into() };
    let server = conn
        .client()
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int8,
               current_database()::text, pg_database_size(current_database())",
            &[],
        )
        .map_err(failed)?;
    let applied = read_history(&conn)?;
    let newest = applied.iter().max_by_key(|a| a.version);
    let (head, pending, migrations_problem) = against_files(checker, &applied);
    let schema_version = newest.map(|a| a.version);
    let tables = conn
        .client()
        .query(
            "SELECT c.oid, c.oid::regclass::text, c.reltuples::float8, pg_total_relation_size(c.oid),
               pg_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
               AND c.relname <> $1
             ORDER BY 4 DESC, 2",
            &[&migrate::HISTORY_TABLE],
        )
        .map_err(failed)?;
    let index_list = conn
        .client()
        .prepare(
            "SELECT ic.relname::text, i.indisunique, i.indpred IS NOT NULL,
               CASE WHEN i.indisprimary THEN 'pk'
                    WHEN EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype = 'u') THEN 'u'
                    ELSE 'c' END,
               pg_relation_size(i.indexrelid),
               ARRAY(SELECT coalesce(a.attname::text, '<expr>')
                     FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
                     ORDER BY k.ord)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1 ORDER BY 1",
        )
        .map_err(failed)?;
    let mut infos = Vec::new();
    for t in tables {
        let oid: u32 = t.get(0);
        let name: String = t.get(1);
        let reltuples: f64 = t.get(2);
        let heap_bytes: i64 = t.get(4);
        // -1: never vacuumed or analysed. Small tables are counted; a large one shows 0 until
        // autovacuum has looked at it (counting it would read it all).
        let (rows, estimated) = if reltuples >= 0.0 {
            (reltuples as u64, true)
        } else if heap_bytes <= 64 << 20 {
            let n: i64 = conn
                .client()
                .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .map_err(failed)?
                .get(0);
            (n as u64, false)
        } else {
            (0, true)
        };
        let mut indexes = Vec::new();
        for i in conn.client().query(&index_list, &[&oid]).map_err(failed)? {
            indexes.push(IndexInfo {
                name: i.get(0),
                unique: i.get(1),
                partial: i.get(2),
                origin: i.get(3),
                size_bytes: Some(i.get::<_, i64>(4) as u64),
                columns: i.get(5),
            });
        }
        infos.push(TableInfo {
            name,
            rows,
            rows_estimated: estimated,
            size_bytes: Some(t.get::<_, i64>(3) as u64),
            indexes,
        });
    }
    Ok(InspectReport {
        path: checker.database().to_path_buf(),
        size_bytes: server.get::<_, i64>(3) as u64,
        wal_bytes: None,
        page_size: None,
        page_count: None,
        freelist_count: None,
        journal_mode: None,
        sqlite_version: None,
        user_version: None,
        postgres: Some(ServerInfo {
            server_version: server.get(0),
            server_version_num: server.get(1),
            database_name: server.get(2),
        }),
        schema_version,
        schema_name: newest.map(|a| a.name.clone()),
        is_head: migrations_problem.is_none() && schema_version == head,
        head,
        pending,
        migrations_problem,
        tables: infos,
        latest_backup: None,
        leftovers: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// rehearse

/// Exact rows per user table (the rehearsal's copy is private, so counting is harmless).
fn row_counts(conn: &PgConn) -> std::result::Result<BTreeMap<String, u64>, MigrateError> {
    let mut counts = BTreeMap::new();
    for table in user_tables(conn)? {
        // `user_tables` names them as they resolve on the search path: qualify each part.
        let qualified = table.split_once('.').map_or_else(
            || quote_ident(&table),
            |(s, t)| format!("{}.{}", quote_ident(s), quote_ident(t)),
        );
        let n: i64 = conn
            .client()
            .query_one(&format!("SELECT count(*) FROM {qualified}"), &[])
            .map_err(|e| conn.error(&e, &format!("counting the rows of {table}")))?
            .get(0);
        counts.insert(table, n as u64);
    }
    Ok(counts)
}

pub(super) fn rehearse(
    checker: &Checker,
    url: &PgUrl,
    target: UpTarget,
) -> Result<RehearsalReport> {
    let database = checker.database();
    let set = MigrationSet::load(checker.migrations_dir())?;
    let (applied, unmanaged) = {
        let source = PgConn::connect(url)?;
        let applied = read_history(&source)?;
        let unmanaged = if applied.is_empty() {
            user_tables(&source)?
        } else {
            Vec::new()
        };
        (applied, unmanaged)
    };
    if !unmanaged.is_empty() {
        return Err(MigrateError::UnmanagedDatabase {
            path: database.to_path_buf(),
            tables: unmanaged,
        }
        .into());
    }
    let plan = migrate::plan_upgrade(&set, &applied, target)?;
    let mut report = RehearsalReport {
        database: database.to_path_buf(),
        from: plan.from,
        to: plan.to,
        head: set.head().map(|m| m.version),
        copy_ms: 0.0,
        copy_bytes: 0,
        steps: plan.steps.iter().map(pending_step).collect(),
        passed: false,
        findings: Vec::new(),
        notes: Vec::new(),
    };
    if plan.is_empty() {
        report.passed = true;
        report
            .notes
            .push("nothing pending: nothing to rehearse".into());
        return Ok(report);
    }

    let started = Instant::now();
    let scratch = ScratchDb::create(url, "rehearse")?;
    dump_restore(url, scratch.url(), database)?;
    report.copy_ms = started.elapsed().as_secs_f64() * 1000.0;
    let conn = scratch.connect()?;
    report.copy_bytes = conn
        .client()
        .query_one("SELECT pg_database_size(current_database())", &[])
        .map(|r| r.get::<_, i64>(0) as u64)
        .unwrap_or(0);
    // The copy's history is the source's: plan on it as `upgrade` would on the original.
    let copied = read_history(&conn)?;
    let plan = migrate::plan_upgrade(&set, &copied, target)?;

    let mut rows_before: Vec<Option<BTreeMap<String, u64>>> = vec![None; plan.steps.len()];
    rows_before[0] = Some(row_counts(&conn)?);
    let mut running = 0usize;
    let mut step_started = Instant::now();
    let result = {
        let mut observe = |conn: &PgConn,
                           step: &Step,
                           done: &StepReport|
         -> std::result::Result<(), MigrateError> {
            let Some(i) = plan.steps.iter().position(|s| s.version == step.version) else {
                return Ok(());
            };
            let after = row_counts(conn)?;
            let entry = &mut report.steps[i];
            entry.duration_ms = done.duration_ms;
            entry.rows_changed = rows_changed(done);
            entry.rows = table_rows(rows_before[i].as_ref().unwrap_or(&after), &after);
            // The server enforces constraints as rows change: no file-level check to run.
            entry.status = StepStatus::Passed;
            if let Some(next) = rows_before.get_mut(i + 1) {
                *next = Some(after);
            }
            running = i + 1;
            step_started = Instant::now();
            Ok(())
        };
        run_observed(
            &conn,
            plan.steps.clone(),
            checker.busy_timeout,
            false,
            &mut observe,
        )
    };
    if let Err(e) = result {
        // The transaction rolled back: every step of it is undone, and the one that was running
        // failed (a deferred constraint fails at the commit, after its transaction's last step).
        let failed = running.min(plan.steps.len() - 1);
        let entry = &mut report.steps[failed];
        if entry.status == StepStatus::NotRun {
            entry.duration_ms = step_started.elapsed().as_secs_f64() * 1000.0;
        }
        super::rehearse::fail(entry, &e);
    }
    drop(conn);
    drop(scratch);
    report.passed =
        report.findings.is_empty() && report.steps.iter().all(|s| s.status == StepStatus::Passed);
    Ok(report)
}

/// `pg_dump -Fc -Z0` of `source` piped into `pg_restore` into `target` (see the module header).
fn dump_restore(source: &PgUrl, target: &PgUrl, place: &Path) -> Result<()> {
    let copy_error = |tool: &'static str, message: String| CheckError::PgCopy {
        database: place.to_path_buf(),
        tool,
        message,
    };
    let spawn_error = |tool: &'static str, e: std::io::Error| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            format!("{tool} is not on PATH (install the PostgreSQL client tools of the server's major version)")
        } else {
            format!("cannot start {tool}: {e}")
        };
        copy_error(tool, why)
    };
    let mut dump = Command::new("pg_dump")
        .args(["--format=custom", "--compress=0"])
        .envs(source.libpq_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error("pg_dump", e))?;
    let dump_out = dump.stdout.take().expect("piped");
    let mut dump_err = dump.stderr.take().expect("piped");
    // Read pg_dump's messages while it runs, so a full pipe never stalls it.
    let dump_messages = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = dump_err.read_to_string(&mut text);
        text
    });
    let restore = Command::new("pg_restore")
        .args(["--no-owner", "--no-acl", "--exit-on-error"])
        .arg(format!("--dbname={}", target.dbname()))
        .envs(target.libpq_env())
        .stdin(Stdio::from(dump_out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let restore = match restore {
        Ok(child) => child,
        Err(e) => {
            let _ = dump.kill();
            let _ = dump.wait();
            return Err(spawn_error("pg_restore", e));
        }
    };
    let restored = restore
        .wait_with_output()
        .map_err(|e| copy_error("pg_restore", e.to_string()))?;
    let dumped = dump
        .wait()
        .map_err(|e| copy_error("pg_dump", e.to_string()))?;
    let dump_text = dump_messages.join().unwrap_or_default();
    if !dumped.success() {
        return Err(copy_error("pg_dump", tool_message(dumped, &dump_text)));
    }
    if !restored.status.success() {
        return Err(copy_error(
            "pg_restore",
            tool_message(restored.status, &String::from_utf8_lossy(&restored.stderr)),
        ));
    }
    Ok(())
}

fn tool_message(status: std::process::ExitStatus, stderr: &str) -> String {
    let text: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(5)
        .collect();
    if text.is_empty() {
        format!("it exited with {status}")
    } else {
        text.join("; ")
    }
}

// ---------------------------------------------------------------------------------------------
// exec

pub(super) fn exec(
    checker: &Checker,
    url: &PgUrl,
    script: &Path,
    options: &ExecOptions<'_>,
) -> Result<ExecReport> {
    let kind = options.kind;
    let sql = read_script(kind, script)?;
    let database = checker.database();
    let conn = PgConn::connect(url)?;
    let mut session = PgSession::new(&conn, checker.busy_timeout);
    let ending = if options.dry_run {
        Ending::Rollback
    } else {
        Ending::Commit
    };
    let prepare = |conn: &PgConn| -> Result<(Option<i32>, Option<PathBuf>)> {
        let applied = read_history(conn)?;
        let version = applied.iter().map(|a| a.version).max();
        let backup = match options.before_change {
            Some(hook) if !options.dry_run => hook(&ChangeContext {
                postgres: Some(url),
                db_path: database,
                operation: Operation::Exec,
                plan: &Plan {
                    from: version,
                    to: version,
                    steps: Vec::new(),
                },
                nothing_to_back_up: false,
            })?,
            _ => None,
        };
        Ok((version, backup))
    };
    let started = Instant::now();
    let ((version, backup), statements) = session.transaction(ending, prepare, |conn, _| {
        run_script(conn, &sql, script, true).map_err(|e| match e {
            MigrateError::PostgresStatementFailed {
                path,
                line,
                statement,
                source,
            } => CheckError::PgScriptFailed {
                kind,
                path,
                line,
                statement,
                source,
            },
            other => other.into(),
        })
    })?;
    session.finish()?;
    Ok(ExecReport {
        database: database.to_path_buf(),
        script: script.to_path_buf(),
        dry_run: options.dry_run,
        committed: !options.dry_run,
        version,
        rows_changed: statements.iter().map(|s| s.rows_changed).sum(),
        statements,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        backup,
    })
}

// ---------------------------------------------------------------------------------------------
// verify

/// PostgreSQL's stairway: a scratch database on the server. DDL is transactional there, so a
/// round trip of transactional migrations runs inside a transaction the stairway holds (the
/// executor's transactions nest as savepoints, [`PgSession::nested`]) and is undone with one
/// `ROLLBACK`, as SQLite's runs inside a rewind point. A round trip with a no-transaction file
/// that leaves the database off step is repaired by replaying the migrations so far in a new
/// scratch database.
struct PgStair {
    server: PgUrl,
    busy_timeout: Duration,
    /// A rewind point is open: runs nest inside it.
    rewinding: bool,
    // Declared before the guard: the connection closes before its database is dropped.
    conn: PgConn,
    scratch: ScratchDb,
}

impl PgStair {
    fn new(server: &PgUrl, busy_timeout: Duration) -> Result<PgStair> {
        let scratch = ScratchDb::create(server, "verify")?;
        Ok(PgStair {
            server: server.clone(),
            busy_timeout,
            rewinding: false,
            conn: scratch.connect()?,
            scratch,
        })
    }
}

impl Stair for PgStair {
    fn run(&mut self, steps: Vec<Step>) -> Result<()> {
        run_observed(
            &self.conn,
            steps,
            self.busy_timeout,
            self.rewinding,
            &mut |_, _, _| Ok(()),
        )?;
        Ok(())
    }

    fn model(&mut self) -> Result<Model> {
        if self.rewinding {
            Ok(crate::schema::pg::read_within_transaction(&self.conn)?)
        } else {
            read_model(&self.conn)
        }
    }

    fn rewind_begin(&mut self) -> Result<bool> {
        self.conn
            .run("BEGIN", "setting the stairway's rewind point")?;
        self.rewinding = true;
        Ok(true)
    }

    fn rewind_undo(&mut self) -> Result<()> {
        self.rewinding = false;
        self.conn.run("ROLLBACK", "rewinding the stairway")?;
        Ok(())
    }

    fn restore(&mut self, files: &[MigrationFile]) -> Result<usize> {
        let scratch = ScratchDb::create(&self.server, "verify")?;
        let conn = scratch.connect()?;
        if !files.is_empty() {
            run_steps(
                &conn,
                files.iter().map(Step::apply).collect(),
                self.busy_timeout,
            )?;
        }
        // The old connection, then the old database (dropped by its guard).
        self.conn = conn;
        self.scratch = scratch;
        Ok(files.len())
    }
}

/// `verify` on PostgreSQL after the checks of the folder itself: the stairway on scratch
/// databases, then `--database`'s check.
pub(super) fn verify_rest(
    checker: &Checker,
    url: &PgUrl,
    options: &VerifyOptions,
    set: &MigrationSet,
    mut report: VerifyReport,
    started: Instant,
) -> Result<VerifyReport> {
    if options.data.is_some() {
        return Err(DbError::NotOnPostgres {
            what: "`verify --data`".into(),
            reason: "it runs the round trips on a copy of a SQLite file; rehearse the pending migrations on a copy of the database instead".into(),
        }
        .into());
    }
    {
        let mut stair = PgStair::new(url, checker.busy_timeout)?;
        stairway(set, &mut report, &mut stair)?;
    }
    if options.schema_file.is_some() {
        report.notes.push(
            "the declared schema file is not compared on PostgreSQL (its schema model is SQLite's)"
                .into(),
        );
    }
    if options.check_database {
        report.database = Some(check_against(checker, url, set, &CheckOptions::default())?);
    }
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test server (`DBTOOL_TEST_POSTGRES_URL`), or `None` with a SKIPPED line (a failure
    /// under CI, as in `tests/common/pg.rs`).
    fn server(test: &str) -> Option<PgUrl> {
        let Ok(url) = std::env::var("DBTOOL_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: DBTOOL_TEST_POSTGRES_URL is not set under CI"
            );
            eprintln!("SKIPPED {test}: DBTOOL_TEST_POSTGRES_URL is not set (no PostgreSQL server)");
            return None;
        };
        Some(PgUrl::parse(&url, None, None).expect("DBTOOL_TEST_POSTGRES_URL parses"))
    }

    fn exists(admin: &PgConn, name: &str) -> bool {
        admin
            .client()
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .map(|r| r.get::<_, i64>(0) == 1)
            .unwrap()
    }

    #[test]
    fn a_scratch_database_is_dropped_after_a_panic_even_with_a_connection_open() {
        let Some(server) = server("scratch_drop") else {
            return;
        };
        let admin = PgConn::connect(&server).unwrap();
        let mut name = String::new();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let scratch = ScratchDb::create(&server, "test").unwrap();
            name = scratch.name.clone();
            let conn = scratch.connect().unwrap();
            conn.run("CREATE TABLE t (x int)", "test").unwrap();
            assert!(exists(&admin, &name));
            // The connection is leaked, still open: FORCE must still drop the database.
            std::mem::forget(conn);
            panic!("a check panicked midway");
        }));
        assert!(unwound.is_err());
        assert!(
            !name.is_empty() && !exists(&admin, &name),
            "{name} left behind"
        );
    }

    /// The stairway, and the executor after a failed no-transaction file, rely on it.
    #[test]
    fn in_transaction_tells_autocommit_from_an_open_transaction() {
        let Some(server) = server("in_transaction") else {
            return;
        };
        let conn = PgConn::connect(&server).unwrap();
        assert!(!conn.in_transaction());
        conn.run("BEGIN", "test").unwrap();
        assert!(conn.in_transaction());
        conn.run("ROLLBACK", "test").unwrap();
        assert!(!conn.in_transaction());
    }

    #[test]
    fn scratch_names_fit_in_an_identifier_and_say_whose_they_are() {
        let long = "é".repeat(40);
        let name = scratch_name(&long, "rehearse");
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(name.contains("_dbtool_rehearse_"));
        let short = scratch_name("app", "check");
        assert!(short.starts_with("app_dbtool_check_"), "{short}");
    }
}
