//! `dbtool reset`: back up, recreate the database at head (optionally seeded), and replace the
//! old one with it.
//!
//! Fails closed: the new database is built and seeded in a temporary file beside the old one, and
//! only once that has succeeded is it written into the old database, in one SQLite transaction
//! ([`backup::Replacement`]). A failing migration or seed, or a crash at any point, leaves the old
//! database with every committed row (or, after the commit, the new one).

use std::path::{Path, PathBuf};

use dbtool::backup::{self, BackupReport};
use dbtool::check::{CheckError, ExecOptions, ScriptKind};
use dbtool::db::{self, OpenMode};
use dbtool::migrate::{InitReport, StatementReport};
use dbtool::{Error, RunOptions};

use super::exit;
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
    /// Temporary files of killed dbtool runs removed from the database's folder.
    leftovers_removed: Vec<PathBuf>,
    init: InitReport,
    seed: Option<SeedReport>,
}

#[derive(Serialize)]
struct SeedReport {
    path: PathBuf,
    statements: Vec<StatementReport>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let db = &ctx.db_path;
    if db.exists() {
        dbtool::db::check_file(db, OpenMode::ReadWrite)?;
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
    #[cfg(feature = "postgres")]
    if let Some(url) = ctx.postgres() {
        return run_postgres(ctx, url, &args, seed.as_ref());
    }
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
    // Killed runs' leftovers go first; the new database is built in a temporary file beside the
    // old one, which is only written to once that has succeeded.
    let replacement = backup::Replacement::begin(db)?;
    let (mut init, seed) = build(ctx, replacement.path(), seed.as_ref())?;
    let leftovers_removed = replacement.leftovers_removed.clone();
    replacement.commit(ctx.config.busy_timeout)?;
    // The reports name the database the user asked for, not the temporary file.
    init.database = db.clone();
    if let Some(run) = &mut init.run {
        run.database = db.clone();
    }

    render_report(
        ctx,
        Report {
            database: db.clone(),
            backup_skipped: exists && args.no_backup,
            backup: backup_report,
            leftovers_removed,
            init,
            seed,
        },
    )
}

fn render_report(ctx: &Context, report: Report) -> Result<u8, Error> {
    let out = &ctx.out;
    let db = &ctx.db_path;
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

/// `reset` on PostgreSQL: the new database is built (migrations, seed) beside the old one and
/// swapped in by renaming both in one transaction (`backup::postgres::SideDatabase`); another
/// session on the database refuses the reset with nothing changed (a rename needs none).
#[cfg(feature = "postgres")]
fn run_postgres(
    ctx: &Context,
    url: &dbtool::db::PgUrl,
    args: &Args,
    seed: Option<&PathBuf>,
) -> Result<u8, Error> {
    use backup::postgres::{self, Server, Swap};
    let db = &ctx.db_path;
    let in_use = |reason: String| {
        Error::from(backup::BackupError::DatabaseInUse {
            action: "reset",
            database: url.redacted(),
            reason,
        })
    };
    let server = Server::connect(url)?;
    for stale in &server.stale_removed {
        ctx.out.note(format!(
            "dropped database {stale} (left by a dbtool run that was killed)"
        ));
    }
    let exists = server.target_exists();
    let mut backup_report = None;
    if exists {
        let mut details = vec![format!("database: {}", db.display())];
        for (table, n) in postgres::row_counts(url)? {
            details.push(format!("  {table}: {n} row(s)"));
        }
        safety::confirm(ctx, "reset", db, &details, args.yes)?;
        // Refused before the backup and the build when it cannot succeed.
        if let Some(reason) = server.busy()? {
            return Err(in_use(reason));
        }
        if !args.no_backup {
            let opts = safety::create_options(ctx, "before-reset", OffsetDateTime::now_utc());
            backup_report = Some(safety::take(ctx, db, &opts)?);
        }
    }
    let side = server.side_database("reset")?;
    let fresh = dbtool::db::Database::Postgres(side.url());
    let (mut init, seed) = build(ctx, fresh, seed)?;
    if let Swap::Busy(reason) = side.swap_in()? {
        return Err(in_use(reason));
    }
    init.database = db.clone();
    if let Some(run) = &mut init.run {
        run.database = db.clone();
    }
    render_report(
        ctx,
        Report {
            database: db.clone(),
            backup_skipped: exists && args.no_backup,
            backup: backup_report,
            leftovers_removed: Vec::new(),
            init,
            seed,
        },
    )
}

/// Create the new database at head in `fresh` and run the seed on it.
fn build(
    ctx: &Context,
    fresh: impl Into<dbtool::db::Database>,
    seed: Option<&PathBuf>,
) -> Result<(InitReport, Option<SeedReport>), Error> {
    let fresh = fresh.into();
    let migrator = dbtool::Migrator::new(fresh.clone(), &ctx.config.migrations.value)
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
fn run_seed(ctx: &Context, fresh: dbtool::db::Database, path: &Path) -> Result<SeedReport, Error> {
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
