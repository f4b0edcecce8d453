//! `dbtool create "description" [--rebuild TABLE changes… [--sql]]`.

use dbtool::rebuild::GenerateOptions;
use dbtool::Error;

use super::exit;
use time::OffsetDateTime;

use super::rebuild::ChangeArgs;
use super::Context;

/// Write a new migration pair V{next}__{slug}.sql and .down.sql (a table rebuild with --rebuild)
#[derive(clap::Args)]
pub struct Args {
    /// What the migration does, e.g. "Add user preferences table"
    #[arg(required_unless_present = "message", conflicts_with = "message")]
    name: Option<String>,
    /// The same as NAME (Alembic's `revision -m`)
    #[arg(long, short = 'm', value_name = "MESSAGE")]
    message: Option<String>,
    /// Generate a table rebuild (SQLite's 12-step procedure) from the schema at the head of the
    /// migrations folder, with the changes given below
    #[arg(long, value_name = "TABLE")]
    rebuild: Option<String>,
    #[command(flatten)]
    changes: ChangeArgs,
    /// With --rebuild: print the up and down SQL instead of writing files
    #[arg(long, requires = "rebuild")]
    sql: bool,
    /// With --rebuild: write a down even when the up loses data (marked `-- dbtool:lossy`)
    #[arg(long, requires = "rebuild")]
    allow_lossy: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let out = &ctx.out;
    let name = args
        .name
        .as_deref()
        .or(args.message.as_deref())
        .unwrap_or_default();
    let Some(table) = &args.rebuild else {
        if !args.changes.is_empty() {
            return Err(dbtool::rebuild::RebuildError::InvalidChange {
                arg: "(changes)".into(),
                reason: "change flags need --rebuild TABLE".into(),
            }
            .into());
        }
        let report = ctx.migrator().create(name, OffsetDateTime::now_utc())?;
        if out.json {
            out.json(&report);
        } else {
            out.line(format!("created {}", out.path(&report.up)));
            out.line(format!("created {}", out.path(&report.down)));
        }
        return Ok(exit::OK);
    };
    let spec = args.changes.spec(table)?;
    let options = GenerateOptions {
        allow_lossy: args.allow_lossy,
        up_only: false,
    };
    let migrator = ctx.migrator();
    if args.sql {
        let generated = migrator.generate_rebuild(&spec, options)?;
        if out.json {
            out.json(&generated);
        } else {
            out.line(format!("-- up\n{}", generated.up.trim_end()));
            out.line(format!("\n-- down\n{}", generated.down.trim_end()));
        }
        return Ok(exit::OK);
    }
    let (report, generated) = migrator.create_rebuild(name, &spec, options)?;
    if out.json {
        out.json(&serde_json::json!({ "created": report, "rebuild": generated }));
        return Ok(exit::OK);
    }
    out.line(format!("created {}", out.path(&report.up)));
    out.line(format!("created {}", out.path(&report.down)));
    for line in &generated.summary {
        out.note(format!("  {line}"));
    }
    for line in &generated.lossy {
        out.note(format!("  lossy down: {line}"));
    }
    Ok(exit::OK)
}
