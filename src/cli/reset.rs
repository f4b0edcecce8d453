//! `dbtool reset`: back up, recreate the database at head (optionally seeded), and replace the
//! old one with it.
//!
//! Fails closed: the new database is built and seeded in a temporary file beside the old one, and
//! only once that has succeeded does it replace the old database (side files removed, then one
//! atomic rename). A failing migration or seed leaves the old database byte-for-byte as it was.

use std::path::{Path, PathBuf};

use dbtool::backup::{self, BackupError, BackupReport};
use dbtool::check::{CheckError, ExecOptions, ScriptKind};
use dbtool::db::{self, OpenMode};
use dbtool::migrate::{InitReport, StatementReport};
use dbtool::{exit, Error, RunOptions};
use serde::Serialize;
use time::OffsetDateTime;

use super::{render, safety, Context};

/// Back up, delete and recreate the database at the newest migration (optionally seeded)
///
/// Asks on a terminal, showing the path and row counts; without one, refuses unless --yes.
#[derive(clap::Args)]
pub struct Args {
    /// Do not ask (needed when no terminal is attached)
    #[arg(long, short = 'y')]
    yes: bool,
    /// Run this SQL file after recreating the database (in one transaction)
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Do not back up the database first
    #[arg(long)]
    no_backup: bool,
}

#[derive(Serialize)]
struct Report {
    database: PathBuf,
    backup: Option<BackupReport>,
    backup_skipped: bool,
    removed: Vec<PathBuf>,
    init: InitReport,
    seed: Option<SeedReport>,
}

#[derive(Serialize)]
struct SeedReport {
    path: PathBuf,
    statements: Vec<StatementReport>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let db = &ctx.config.database.value;
    if db.is_dir() {
        return Err(BackupError::DatabaseIsDirectory { path: db.clone() }.into());
    }
    // Everything that could fail after the delete is checked before it: the migrations load and
    // the seed file is readable.
    ctx.migrator().load_migrations()?;
    let seed = match &args.seed {
        Some(path) => {
            let path = ctx.out.cwd.join(path);
            // Read now so that a missing seed stops the reset before anything happens; it is
            // read again (and run) by the exec write path on the new database.
            std::fs::read(&path).map_err(|source| CheckError::ScriptRead {
                kind: ScriptKind::Seed,
                path: path.clone(),
                source,
            })?;
            Some(path)
        }
        None => None,
    };
    let exists = db.exists();
    let mut backup_report = None;
    if exists {
        let details = row_counts(ctx, db)?;
        safety::confirm(ctx, "reset", db, &details, args.yes)?;
        if !args.no_backup {
            let opts = safety::create_options(ctx, "before-reset", OffsetDateTime::now_utc());
            backup_report = Some(safety::take(ctx, db, &opts)?);
        }
    }
    let fresh = fresh_path(db);
    discard(&fresh); // leftovers of a reset that was killed half-way
    let built = build(ctx, &fresh, seed.as_ref());
    let (mut init, seed) = match built {
        Ok(built) => built,
        Err(e) => {
            discard(&fresh);
            return Err(e);
        }
    };
    let removed = match backup::replace_database(db, &fresh) {
        Ok(removed) => removed,
        Err(e) => {
            discard(&fresh);
            return Err(e.into());
        }
    };
    // The reports name the database the user asked for, not the temporary file.
    init.database = db.clone();
    if let Some(run) = &mut init.run {
        run.database = db.clone();
    }

    let out = &ctx.out;
    let report = Report {
        database: db.clone(),
        backup_skipped: exists && args.no_backup,
        backup: backup_report,
        removed,
        init,
        seed,
    };
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    match &report.backup {
        Some(b) => out.note(safety::describe(ctx, b)),
        None if report.backup_skipped => out.note("backup skipped (--no-backup)"),
        None => {}
    }
    if let Some(run) = &report.init.run {
        render::run_report(out, run);
    }
    if let Some(seed) = &report.seed {
        let rows: u64 = seed.statements.iter().map(|s| s.rows_changed).sum();
        out.line(format!(
            "seeded from {}: {} statement(s), {rows} row(s)",
            out.path(&seed.path),
            seed.statements.len()
        ));
    }
    out.line(format!(
        "reset {} at {}",
        out.path(db),
        render::version(report.init.current)
    ));
    Ok(exit::OK)
}

/// Where the new database is built: beside the old one, so the final rename stays on one file
/// system.
fn fresh_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(".dbtool-reset.tmp");
    db.with_file_name(name)
}

/// Remove a temporary database and its side files; nothing to report if they are not there.
fn discard(fresh: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut path = fresh.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(path));
    }
}

/// Create the new database at head in `fresh` and run the seed on it.
fn build(
    ctx: &Context,
    fresh: &Path,
    seed: Option<&PathBuf>,
) -> Result<(InitReport, Option<SeedReport>), Error> {
    let migrator = dbtool::Migrator::new(fresh, &ctx.config.migrations.value)
        .busy_timeout(ctx.config.busy_timeout);
    let init = migrator.init(&RunOptions::default())?;
    let seed = match seed {
        Some(path) => Some(run_seed(ctx, fresh, path)?),
        None => None,
    };
    Ok((init, seed))
}

/// "posts: 12 rows" lines for the prompt.
fn row_counts(ctx: &Context, db: &Path) -> Result<Vec<String>, Error> {
    let conn = db::open(db, OpenMode::ReadOnly, ctx.config.busy_timeout)?;
    let mut lines = vec![format!("database: {}", db.display())];
    for (table, n) in db::row_counts(&conn, db)? {
        lines.push(format!("  {table}: {n} row(s)"));
    }
    Ok(lines)
}

/// The seed runs through the same write path as `dbtool exec` (foreign keys off, one
/// transaction, no new foreign-key violation), on the new database before it is swapped in.
fn run_seed(ctx: &Context, fresh: &Path, path: &Path) -> Result<SeedReport, Error> {
    let checker = dbtool::Checker::new(fresh, &ctx.config.migrations.value)
        .busy_timeout(ctx.config.busy_timeout);
    let report = checker.exec(
        path,
        &ExecOptions {
            kind: ScriptKind::Seed,
            ..Default::default()
        },
    )?;
    Ok(SeedReport {
        path: path.to_path_buf(),
        statements: report.statements,
    })
}
