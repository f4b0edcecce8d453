//! `dbtool prune`: delete old backups by count and age; never the newest.

use dbtool::backup::{self, Retention};
use dbtool::Error;

use super::exit;
use time::OffsetDateTime;

use super::{safety, Context};

/// Delete old backups of this database (keeps the newest N and those younger than D days; never
/// deletes the newest)
///
/// Without options, uses [backup] keep / keep_days from dbtool.toml, else keep 10 and 30 days.
#[derive(clap::Args)]
pub struct Args {
    /// Keep the newest N backups
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Keep every backup younger than D days
    #[arg(long, value_name = "D")]
    keep_days: Option<u32>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let retention = match (args.keep, args.keep_days) {
        (None, None) => safety::retention(ctx),
        (keep, keep_days) => Retention { keep, keep_days },
    };
    let dir = safety::backup_dir(ctx);
    let source = backup::canonical_db_path(&ctx.config.database.value);
    let report = backup::prune(&dir.path, &source, retention, OffsetDateTime::now_utc())?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    for gone in &report.deleted {
        out.line(format!("deleted {}", gone.file_name));
    }
    out.line(format!(
        "{} deleted, {} kept in {}",
        report.deleted.len(),
        report.kept.len(),
        dir.path.display()
    ));
    Ok(exit::OK)
}
