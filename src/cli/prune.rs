//! `dbtool prune`: delete old backups by count and age (never the newest), and with `--orphans`
//! the backups of databases that no longer exist.

use dbtool::backup::{self, BackupEntry, FolderSummary, PruneReport, Retention};
use dbtool::Error;
use serde::Serialize;

use super::exit;
use time::OffsetDateTime;

use super::{safety, Context};

/// Delete old backups of this database: keeps the newest N and, when set, those younger than D
/// days; never deletes the newest
///
/// Without options, uses [backup] keep / keep_days from dbtool.toml, else keeps the newest 10.
/// One option replaces only its own setting: `--keep 3` keeps the configured keep_days.
#[derive(clap::Args)]
pub struct Args {
    /// Keep the newest N backups
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    keep: Option<usize>,
    /// Also keep every backup younger than D days
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    keep_days: Option<u32>,
    /// List what would be deleted; delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Instead: delete every backup folder under the data directory whose database no longer
    /// exists (listed first; see `dbtool backups --all`)
    #[arg(long, conflicts_with_all = ["keep", "keep_days"])]
    orphans: bool,
}

#[derive(Serialize)]
struct OrphansReport {
    dry_run: bool,
    folders: Vec<OrphanRemoved>,
}

#[derive(Serialize)]
struct OrphanRemoved {
    #[serde(flatten)]
    folder: FolderSummary,
    deleted: Vec<BackupEntry>,
}

#[derive(Serialize)]
struct Pruned<'a> {
    dry_run: bool,
    #[serde(flatten)]
    report: &'a PruneReport,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    if args.orphans {
        return orphans(ctx, args.dry_run);
    }
    let configured = safety::retention(ctx);
    let retention = Retention {
        keep: args.keep.or(configured.keep),
        keep_days: args.keep_days.or(configured.keep_days),
    };
    let dir = safety::backup_dir(ctx);
    let source = safety::source(ctx);
    let now = OffsetDateTime::now_utc();
    let report = if args.dry_run {
        backup::prune_plan(&dir.path, &source, retention, now)?
    } else {
        backup::prune(&dir.path, &source, retention, now)?
    };
    let out = &ctx.out;
    if out.json {
        out.json(&Pruned {
            dry_run: args.dry_run,
            report: &report,
        });
        return Ok(exit::OK);
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for gone in &report.deleted {
        out.line(format!("{verb} {}", gone.file_name));
    }
    out.line(format!(
        "{} {verb}, {} kept in {} (keeping {})",
        report.deleted.len(),
        report.kept.len(),
        dir.path.display(),
        safety::describe_retention(retention)
    ));
    Ok(exit::OK)
}

fn orphans(ctx: &Context, dry_run: bool) -> Result<u8, Error> {
    let out = &ctx.out;
    let Some(root) = backup::data_root() else {
        out.note("no data directory (no home folder): no backup folders to look at");
        return Ok(exit::OK);
    };
    let orphans: Vec<FolderSummary> = backup::folders(&root)?
        .into_iter()
        .filter(FolderSummary::orphan)
        .collect();
    let mut removed = Vec::new();
    for folder in orphans {
        if !out.json {
            out.line(format!(
                "{} {} backup(s), {} in {} (database {} no longer exists)",
                if dry_run { "would delete" } else { "deleting" },
                folder.backups,
                super::progress::size(folder.size),
                folder.path.display(),
                folder
                    .database
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ));
        }
        let deleted = if dry_run {
            Vec::new()
        } else {
            backup::remove_folder_backups(&folder.path)?
        };
        removed.push(OrphanRemoved { folder, deleted });
    }
    if out.json {
        out.json(&OrphansReport {
            dry_run,
            folders: removed,
        });
    } else if removed.is_empty() {
        out.line(format!("no orphaned backup folders in {}", root.display()));
    }
    Ok(exit::OK)
}
