//! `dbtool backup`: a verified, compressed snapshot of the database, taken while others write.

use std::path::PathBuf;

use dbtool::backup::MethodChoice;
use dbtool::Error;

use super::exit;
use time::OffsetDateTime;

use super::{safety, Context};

/// Take a verified zstd backup of the database (safe while other processes write to it)
///
/// The file is named <db>-<UTC time>-v<schema version>-<reason>.db.zst and `zstd -d` turns it
/// into a plain SQLite file. Old backups are pruned afterwards ([backup] keep / keep_days).
#[derive(clap::Args)]
pub struct Args {
    /// Why the backup is taken; goes into the file name and metadata
    #[arg(long, default_value = "manual")]
    reason: String,
    /// Write exactly this file instead of a new file in the backup folder (never overwrites)
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// zstd compression level
    #[arg(long, default_value_t = dbtool::backup::DEFAULT_LEVEL,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    /// Skip reading the finished file back (decompress and check) before reporting success
    #[arg(long)]
    no_verify: bool,
    /// How to read the live database (for benchmarks and diagnosis)
    #[arg(long, value_enum, default_value = "auto", hide = true)]
    method: Method,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    Auto,
    Dbpage,
    BackupApi,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let db = &ctx.db_path;
    let mut opts = safety::create_options(ctx, &args.reason, OffsetDateTime::now_utc());
    opts.output = args.output.map(|o| ctx.out.cwd.join(o));
    opts.level = args.level;
    opts.verify = !args.no_verify;
    opts.method = match args.method {
        Method::Auto => MethodChoice::Auto,
        Method::Dbpage => MethodChoice::Dbpage,
        Method::BackupApi => MethodChoice::BackupApi,
    };
    let report = safety::take(ctx, db, &opts)?;
    if ctx.out.json {
        ctx.out.json(&report);
    } else {
        ctx.out.line(safety::describe(ctx, &report));
    }
    Ok(exit::OK)
}
