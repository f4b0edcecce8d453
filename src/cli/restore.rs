//! `dbtool restore [FILE | latest]`: verify a backup, back up the current database, replace it.

use std::path::Path;

use dbtool::backup::{self, BackupError, CheckLevel, RestoreOptions, RestoreReport};
use dbtool::Error;

use super::exit;
use serde::Serialize;
use time::OffsetDateTime;

use super::progress::ProgressLine;
use super::{backups, render, safety, Context};

/// Replace the database with a backup (verified first; the current database is backed up)
///
/// Asks on a terminal; without one, refuses unless --yes. A backup taken from another database
/// path needs --force.
#[derive(clap::Args)]
pub struct Args {
    /// A backup file, a file name from `dbtool backups`, or latest
    #[arg(default_value = "latest")]
    backup: String,
    /// Do not ask (needed when no terminal is attached)
    #[arg(long, short = 'y')]
    yes: bool,
    /// Restore even if the backup was taken from a different database path
    #[arg(long)]
    force: bool,
    /// Do not back up the current database first
    #[arg(long)]
    no_backup: bool,
    /// How to check the decompressed backup before it replaces anything: quick (PRAGMA
    /// quick_check) or full (PRAGMA integrity_check, slower: also compares every index)
    #[arg(long, value_enum, default_value = "quick")]
    check: Check,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Check {
    Quick,
    Full,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    restore: RestoreReport,
    /// Versions in the migrations folder newer than the restored one (`None`: folder unreadable).
    pending: Option<Vec<i32>>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let db = &ctx.db_path;
    let dir = safety::backup_dir(ctx);
    let file = if args.backup == "latest" {
        safety::latest(ctx)?
            .map(|e| e.path)
            .ok_or_else(|| BackupError::NoBackups {
                database: db.clone(),
                dir: dir.path.clone(),
            })?
    } else {
        backups::locate(&ctx.out.cwd, &dir.path, args.backup.as_ref())
    };
    let entry = backup::read_entry(&file)?;
    let meta = entry.meta.as_ref().expect("read_entry returns metadata");
    // Refuse a backup of another database before asking anything (the library checks again).
    let target = safety::source(ctx);
    if Path::new(&meta.source_path) != target && !args.force {
        return Err(BackupError::DifferentDatabase {
            backup: file,
            source_path: meta.source_path.clone(),
            target,
        }
        .into());
    }
    // A server database is taken to exist (the restore finds out; asking costs nothing).
    if db.exists() || ctx.postgres().is_some() {
        let details = vec![
            format!("database: {}", db.display()),
            format!(
                "backup:   {} (taken {}, {}, version {})",
                entry.file_name,
                safety::when(meta.created_at),
                meta.reason,
                meta.schema_version.map_or("-".into(), |v| v.to_string())
            ),
        ];
        safety::confirm(ctx, "restore", db, &details, args.yes)?;
    }
    let now = OffsetDateTime::now_utc();
    #[cfg(feature = "postgres")]
    if let Some(url) = ctx.postgres() {
        return run_postgres(ctx, url, &file, &args, now);
    }
    let opts = RestoreOptions {
        force: args.force,
        safety_backup: (!args.no_backup)
            .then(|| safety::create_options(ctx, "before-restore", now)),
        check: match args.check {
            Check::Quick => CheckLevel::Quick,
            Check::Full => CheckLevel::Full,
        },
        busy_timeout: ctx.config.busy_timeout,
    };
    let bar = ProgressLine::new(&ctx.out);
    let restored = backup::restore(db, &file, &opts, &mut |p| bar.update(p))?;
    bar.finish();
    if let Some(safety_backup) = &restored.safety_backup {
        safety::after_backup(ctx, safety_backup);
    }
    let pending = ctx.migrator().status().ok().map(|s| s.pending);
    let out = &ctx.out;
    if out.json {
        out.json(&Report {
            restore: restored,
            pending,
        });
        return Ok(exit::OK);
    }
    match &restored.safety_backup {
        Some(b) => out.note(safety::describe(ctx, b)),
        None if restored.replaced_existing => out.note("backup skipped (--no-backup)"),
        None => {}
    }
    if let Some(backup::ReplacedBy::InPlace(why)) = &restored.replacement {
        // The slow path: say why, and how to get the fast one.
        out.note(format!(
            "replaced in place through SQLite ({why}); stop the application for a faster restore by rename"
        ));
    }
    restored_lines(
        ctx,
        &restored.meta,
        &file,
        restored.forced_other_database,
        pending,
    );
    Ok(exit::OK)
}

/// The closing lines both engines print.
fn restored_lines(
    ctx: &Context,
    meta: &backup::BackupMeta,
    file: &Path,
    forced_other_database: bool,
    pending: Option<Vec<i32>>,
) {
    let out = &ctx.out;
    if forced_other_database {
        out.note(format!(
            "warning: the backup was taken from {}",
            meta.source_path
        ));
    }
    out.line(format!(
        "restored {} from {} ({}, taken {})",
        out.path(&ctx.db_path),
        out.path(file),
        render::version(meta.schema_version.map(|v| v as i32)),
        safety::when(meta.created_at)
    ));
    match pending.as_deref() {
        Some([]) | None => {}
        Some(pending) => out.line(format!(
            "behind the migrations folder by {}: run `dbtool upgrade`",
            pending.len()
        )),
    }
}

#[cfg(feature = "postgres")]
#[derive(Serialize)]
struct PgReport {
    #[serde(flatten)]
    restore: backup::postgres::RestoreReport,
    pending: Option<Vec<i32>>,
}

/// `restore` on PostgreSQL: into a new database swapped in by renaming, or in place in one
/// transaction (see `dbtool::backup::postgres`).
#[cfg(feature = "postgres")]
fn run_postgres(
    ctx: &Context,
    url: &dbtool::db::PgUrl,
    file: &Path,
    args: &Args,
    now: OffsetDateTime,
) -> Result<u8, Error> {
    let opts = backup::postgres::RestoreOptions {
        force: args.force,
        safety_backup: (!args.no_backup)
            .then(|| safety::create_options(ctx, "before-restore", now)),
        busy_timeout: ctx.config.busy_timeout,
    };
    let bar = ProgressLine::new(&ctx.out);
    let restored = backup::postgres::restore(url, file, &opts, &mut |p| bar.update(p))?;
    bar.finish();
    if let Some(safety_backup) = &restored.safety_backup {
        safety::after_backup(ctx, safety_backup);
    }
    let pending = ctx.migrator().status().ok().map(|s| s.pending);
    let out = &ctx.out;
    if out.json {
        out.json(&PgReport {
            restore: restored,
            pending,
        });
        return Ok(exit::OK);
    }
    match &restored.safety_backup {
        Some(b) => out.note(safety::describe(ctx, b)),
        None if restored.replaced_existing => out.note("backup skipped (--no-backup)"),
        None => {}
    }
    for stale in &restored.stale_removed {
        out.note(format!(
            "dropped database {stale} (left by a dbtool run that was killed)"
        ));
    }
    match &restored.replacement {
        Some(backup::ReplacedBy::Rename) => out.note(
            "restored into a new database, checked, and renamed over the old one in one transaction",
        ),
        Some(backup::ReplacedBy::InPlace(why)) => out.note(format!(
            "restored in place with pg_restore --clean --single-transaction ({why}); disconnect the application for a restore into a new database"
        )),
        None => {}
    }
    if !restored.left_in_place.is_empty() {
        out.note(format!(
            "warning: tables the backup does not have were left as they were: {}",
            restored.left_in_place.join(", ")
        ));
    }
    let rows: u64 = restored.contents.tables.values().sum();
    if restored.differences.is_empty() {
        out.note(format!(
            "checked: {} table(s), {rows} row(s), as in the backup",
            restored.contents.tables.len()
        ));
    } else {
        out.note(format!(
            "warning: right after the restore the database differed from the backup (other sessions may have written meanwhile): {}",
            restored.differences.join("; ")
        ));
    }
    restored_lines(
        ctx,
        &restored.meta,
        file,
        restored.forced_other_database,
        pending,
    );
    Ok(exit::OK)
}
