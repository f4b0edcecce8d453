//! What every destructive command shares: where backups go, how they are taken (verified, with
//! progress, pruned afterwards), the before-change hook for the migrator, and confirmation
//! prompts for the commands that replace the whole database.

use std::cell::Cell;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use dbtool::backup::{
    self, BackupDir, BackupEntry, BackupError, BackupReport, CreateOptions, Retention,
};
use dbtool::migrate::{BeforeChange, ChangeContext};
use dbtool::{sidefiles, Error};
use time::OffsetDateTime;

use super::progress::{self, ProgressLine};
use super::Context;

/// Retention when dbtool.toml says nothing: the newest 10 backups of each database. No age rule by
/// default: "everything younger than 30 days" grew without bound in the dev loop (ten resets a
/// day of a 500 MB database kept 1.5 GB a day); `keep_days` adds one when configured.
pub const DEFAULT_RETENTION: Retention = Retention {
    keep: Some(10),
    keep_days: None,
};

/// The backup folder of the configured database.
pub fn backup_dir(ctx: &Context) -> BackupDir {
    let explicit = ctx.config.backup_dir.as_ref().map(|d| d.value.as_path());
    match ctx.postgres() {
        Some(url) => backup::resolve_pg_dir(url, explicit),
        None => backup::resolve_dir(&ctx.db_path, explicit),
    }
}

/// What the configured database's backups record as their source (`source_path`): the
/// canonical path of the file, or `postgres://host:port/dbname`.
pub fn source(ctx: &Context) -> PathBuf {
    match ctx.postgres() {
        Some(url) => PathBuf::from(backup::postgres_source(url)),
        None => backup::canonical_db_path(&ctx.db_path),
    }
}

/// The folders where dbtool's temporary files live: beside a SQLite database, and the backup
/// folder.
fn temp_folders(ctx: &Context) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if ctx.postgres().is_none() {
        folders.push(sidefiles::folder_of(&ctx.db_path).to_path_buf());
    }
    folders.push(backup_dir(ctx).path);
    folders
}

/// Temporary files that killed dbtool runs left beside the configured database and in its
/// backup folder (see `dbtool::sidefiles`).
pub fn leftovers(ctx: &Context) -> Vec<PathBuf> {
    temp_folders(ctx)
        .iter()
        .flat_map(|f| sidefiles::leftovers(f))
        .collect()
}

/// Remove [`leftovers`], with a note for each: every command that writes to the database (or
/// its backups) starts with this, so a killed run's full-size copies do not pile up.
pub fn remove_leftovers(ctx: &Context) {
    let removed: Vec<PathBuf> = temp_folders(ctx)
        .iter()
        .flat_map(|f| sidefiles::remove_leftovers(f))
        .collect();
    for path in removed {
        ctx.out.note(format!(
            "removed {} (left by a dbtool run that was killed)",
            ctx.out.path(&path)
        ));
    }
}

/// The newest readable backup of the configured database in its backup folder.
pub fn latest(ctx: &Context) -> Result<Option<BackupEntry>, Error> {
    let me = source(ctx);
    Ok(backup::list(&backup_dir(ctx).path)?.into_iter().find(|e| {
        e.meta
            .as_ref()
            .is_some_and(|m| Path::new(&m.source_path) == me)
    }))
}

/// Retention from dbtool.toml (`[backup] keep`, `keep_days`), each key falling back to
/// [`DEFAULT_RETENTION`] on its own. A backup is kept when either rule keeps it; the newest always is.
pub fn retention(ctx: &Context) -> Retention {
    Retention {
        keep: ctx.config.backup_keep.or(DEFAULT_RETENTION.keep),
        keep_days: ctx.config.backup_keep_days.or(DEFAULT_RETENTION.keep_days),
    }
}

/// The retention policy in words (`dbtool config`, `prune`).
pub fn describe_retention(r: Retention) -> String {
    let keep = match r.keep {
        Some(0 | 1) | None => "the newest backup".to_string(),
        Some(n) => format!("the newest {n} backups"),
    };
    match r.keep_days {
        Some(d) => format!("{keep} and every backup younger than {d} days, per database"),
        None => format!("{keep} per database"),
    }
}

pub fn create_options(ctx: &Context, reason: &str, now: OffsetDateTime) -> CreateOptions {
    let mut opts = CreateOptions::new(backup_dir(ctx).path, reason, now);
    opts.busy_timeout = ctx.config.busy_timeout;
    opts
}

/// Take a verified backup of `db` (on PostgreSQL: of the configured database, with `pg_dump`)
/// with progress on a terminal, then apply retention (a failed prune is only a note: the new
/// backup is safely on disk either way).
pub fn take(ctx: &Context, db: &Path, opts: &CreateOptions) -> Result<BackupReport, BackupError> {
    let bar = ProgressLine::new(&ctx.out);
    let report = match ctx.postgres() {
        #[cfg(feature = "postgres")]
        Some(url) => backup::postgres::create(url, opts, &mut |p| bar.update(p))?,
        _ => backup::create(db, opts, &mut |p| bar.update(p))?,
    };
    bar.finish();
    if opts.output.is_none() {
        after_backup(ctx, &report);
    }
    Ok(report)
}

/// Retention, once a new backup is safely on disk.
pub fn after_backup(ctx: &Context, report: &BackupReport) {
    let dir = report.path.parent().unwrap_or(Path::new("."));
    match backup::prune(
        dir,
        &report.database,
        retention(ctx),
        report.meta.created_at,
    ) {
        Ok(pruned) => {
            for gone in &pruned.deleted {
                ctx.out
                    .note(format!("pruned old backup {}", gone.file_name));
            }
        }
        Err(e) => ctx
            .out
            .note(format!("warning: could not prune old backups: {e}")),
    }
}

/// One line about a backup just taken.
pub fn describe(ctx: &Context, report: &BackupReport) -> String {
    format!(
        "backup: {} ({} -> {}, {:.1}x{})",
        ctx.out.path(&report.path),
        progress::size(report.meta.image_size),
        progress::size(report.size),
        report.ratio,
        if report.verified { ", verified" } else { "" }
    )
}

/// Run `operation` with the automatic backup as its before-change hook (for `RunOptions` or
/// `ExecOptions`), then say so if `--no-backup` skipped a backup that would have been taken.
pub fn with_auto_backup<T, E: Into<Error>>(
    ctx: &Context,
    no_backup: bool,
    operation: impl FnOnce(&BeforeChange<'_>) -> Result<T, E>,
) -> Result<T, Error> {
    let auto = AutoBackup::new(ctx, no_backup);
    let hook = |change: &ChangeContext<'_>| auto.before_change(change);
    let result = operation(&hook).map_err(Into::into)?;
    auto.report_skipped();
    Ok(result)
}

/// The automatic backup before a migrator run: the before-change hook, and a flag telling
/// afterwards whether a backup was skipped by `--no-backup`.
struct AutoBackup<'a> {
    ctx: &'a Context,
    no_backup: bool,
    now: OffsetDateTime,
    skipped: Cell<bool>,
}

impl<'a> AutoBackup<'a> {
    fn new(ctx: &'a Context, no_backup: bool) -> Self {
        AutoBackup {
            ctx,
            no_backup,
            now: OffsetDateTime::now_utc(),
            skipped: Cell::new(false),
        }
    }

    /// Called with the write lock held and nothing changed yet; an error aborts the run.
    fn before_change(&self, change: &ChangeContext<'_>) -> Result<Option<PathBuf>, BackupError> {
        // Nothing to lose: the database is new, or (SQLite) the file is still empty (another
        // process created it and has not written to it yet).
        let empty = change.postgres.is_none()
            && std::fs::metadata(change.db_path).is_ok_and(|m| m.len() == 0);
        if change.nothing_to_back_up || empty {
            return Ok(None);
        }
        if self.no_backup {
            self.skipped.set(true);
            return Ok(None);
        }
        let reason = format!("before-{}", change.operation.as_str());
        let opts = create_options(self.ctx, &reason, self.now);
        let report = take(self.ctx, change.db_path, &opts)?;
        Ok(Some(report.path))
    }

    /// Say so when `--no-backup` skipped a backup that would have been taken.
    fn report_skipped(&self) {
        if self.skipped.get() {
            self.ctx.out.note("backup skipped (--no-backup)");
        }
    }
}

/// Ask on a terminal; without one, refuse unless `yes`. `details` are shown before the question.
pub fn confirm(
    ctx: &Context,
    action: &'static str,
    database: &Path,
    details: &[String],
    yes: bool,
) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !ctx.out.interactive() {
        return Err(BackupError::ConfirmationRequired {
            action,
            database: database.into(),
        }
        .into());
    }
    let mut err = std::io::stderr().lock();
    for line in details {
        let _ = writeln!(err, "{line}");
    }
    let _ = write!(err, "{action} {}? [y/N] ", ctx.out.path(database));
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(BackupError::Declined {
            action,
            database: database.into(),
        }
        .into())
    }
}

/// "2025-06-01 12:00:00 UTC".
pub fn when(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}
