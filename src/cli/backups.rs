//! `dbtool backups` (list, newest first, without decompressing) and `dbtool backups verify`.

use std::path::{Path, PathBuf};

use dbtool::backup::{self, BackupDir, BackupEntry, CheckLevel, VerifyReport};
use dbtool::Error;

use super::exit;
use serde::Serialize;

use super::progress::{self, ProgressLine};
use super::{safety, Context};

/// List backups, newest first: time, reason, version, size, ratio
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Every backup folder under the data directory, with the database it belongs to; marks
    /// those whose database no longer exists (`dbtool prune --orphans` removes them)
    #[arg(long)]
    all: bool,
}

#[derive(clap::Subcommand)]
enum Sub {
    Verify(VerifyArgs),
}

/// Decompress every backup (or the given ones) and check the zstd checksum, the content hash and
/// PRAGMA integrity_check; exits 3 when any fails
#[derive(clap::Args)]
struct VerifyArgs {
    /// Backup files (paths, or names in the backup folder); default: all
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ListReport {
    dir: BackupDir,
    backups: Vec<BackupEntry>,
}

#[derive(Serialize)]
struct VerifyOutcome {
    path: PathBuf,
    ok: bool,
    report: Option<VerifyReport>,
    error: Option<ErrorView>,
}

#[derive(Serialize)]
struct ErrorView {
    code: &'static str,
    message: String,
    hint: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    match args.command {
        None if args.all => list_all(ctx),
        None => list(ctx),
        Some(Sub::Verify(v)) => verify(ctx, v),
    }
}

fn list(ctx: &Context) -> Result<u8, Error> {
    let dir = safety::backup_dir(ctx);
    let backups = backup::list(&dir.path)?;
    let out = &ctx.out;
    if out.json {
        out.json(&ListReport { dir, backups });
        return Ok(exit::OK);
    }
    out.line(format!("backup folder: {}", dir.path.display()));
    if backups.is_empty() {
        out.line("no backups yet (take one with `dbtool backup`)");
        return Ok(exit::OK);
    }
    out.line(format!(
        "{:<20} {:<20} {:>7} {:>11} {:>6}  FILE",
        "CREATED (UTC)", "REASON", "VERSION", "SIZE", "RATIO"
    ));
    for entry in &backups {
        match &entry.meta {
            Some(meta) => out.line(format!(
                "{:<20} {:<20} {:>7} {:>11} {:>5.1}x  {}",
                meta.created_at
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ))
                    .unwrap_or_default(),
                meta.reason,
                meta.schema_version.map_or("-".into(), |v| v.to_string()),
                progress::size(entry.size),
                entry.ratio.unwrap_or(0.0),
                entry.file_name
            )),
            None => out.line(format!(
                "{:<20} {:<20} {:>7} {:>11} {:>6}  {}  ({})",
                "?",
                "unreadable",
                "-",
                progress::size(entry.size),
                "-",
                entry.file_name,
                entry.problem.as_deref().unwrap_or("")
            )),
        }
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct AllReport {
    root: Option<PathBuf>,
    folders: Vec<backup::FolderSummary>,
}

fn list_all(ctx: &Context) -> Result<u8, Error> {
    let root = backup::data_root();
    let folders = match &root {
        Some(root) => backup::folders(root)?,
        None => Vec::new(),
    };
    let out = &ctx.out;
    if out.json {
        out.json(&AllReport { root, folders });
        return Ok(exit::OK);
    }
    let Some(root) = root else {
        out.line("no data directory (no home folder): backups live beside each database");
        return Ok(exit::OK);
    };
    out.line(format!("backup folders in {}", root.display()));
    if folders.is_empty() {
        out.line("none yet");
        return Ok(exit::OK);
    }
    out.line(format!(
        "{:>7} {:>11}  {:<20}  DATABASE",
        "BACKUPS", "SIZE", "NEWEST (UTC)"
    ));
    for f in &folders {
        let newest = f
            .newest
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
            })
            .unwrap_or_else(|| "?".into());
        let database = f
            .database
            .as_deref()
            .map_or("(unreadable)".into(), |p| p.display().to_string());
        let mark = if f.orphan() { "  (gone: orphaned)" } else { "" };
        out.line(format!(
            "{:>7} {:>11}  {:<20}  {database}{mark}",
            f.backups,
            progress::size(f.size),
            newest
        ));
    }
    let orphans = folders.iter().filter(|f| f.orphan()).count();
    if orphans > 0 {
        out.note(format!(
            "{orphans} folder(s) belong to databases that no longer exist: `dbtool prune --orphans --dry-run` lists what `dbtool prune --orphans` deletes"
        ));
    }
    Ok(exit::OK)
}

fn verify(ctx: &Context, args: VerifyArgs) -> Result<u8, Error> {
    let dir = safety::backup_dir(ctx);
    let files: Vec<PathBuf> = if args.files.is_empty() {
        backup::list(&dir.path)?
            .into_iter()
            .map(|e| e.path)
            .collect()
    } else {
        args.files
            .iter()
            .map(|f| locate(&ctx.out.cwd, &dir.path, f))
            .collect()
    };
    let out = &ctx.out;
    let mut outcomes = Vec::new();
    for file in &files {
        let scratch = file.parent().unwrap_or(Path::new("."));
        let bar = ProgressLine::new(out);
        let result = backup::verify(file, scratch, CheckLevel::Full, &mut |p| bar.update(p));
        bar.finish();
        let outcome = match result {
            Ok(report) => VerifyOutcome {
                path: file.clone(),
                ok: true,
                report: Some(report),
                error: None,
            },
            Err(e) => VerifyOutcome {
                path: file.clone(),
                ok: false,
                report: None,
                error: Some(ErrorView {
                    code: e.code(),
                    message: e.to_string(),
                    hint: super::errors::hint_for_code(e.code()),
                }),
            },
        };
        if !out.json {
            match &outcome.error {
                None => out.line(format!("ok      {}", out.path(file))),
                Some(e) => out.line(format!(
                    "FAILED  {}: [{}] {}",
                    out.path(file),
                    e.code,
                    e.message
                )),
            }
        }
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    if out.json {
        // An object, like every other command's JSON (not a top-level array).
        out.json(&serde_json::json!({
            "dir": dir,
            "backups": outcomes,
            "failed": failed,
        }));
    } else if outcomes.is_empty() {
        out.line(format!("no backups in {}", dir.path.display()));
    } else {
        out.line(format!(
            "{} verified, {failed} failed",
            outcomes.len() - failed
        ));
    }
    Ok(if failed > 0 {
        exit::DIFFERENCE
    } else {
        exit::OK
    })
}

/// A backup given on the command line: a path as typed, else a name in the backup folder.
pub fn locate(cwd: &Path, dir: &Path, file: &Path) -> PathBuf {
    let as_typed = cwd.join(file);
    if as_typed.exists() || file.components().count() > 1 {
        as_typed
    } else {
        dir.join(file)
    }
}
