//! `dbtool create "description" [--rebuild TABLE changes… [--sql]]`.

use dbtool::rebuild::GenerateOptions;
use dbtool::Error;

use super::exit;
use time::OffsetDateTime;

use super::diff::AutogenArgs;
use super::rebuild::ChangeArgs;
use super::Context;

/// Write a new migration pair V{next}__{slug}.sql and .down.sql (a table rebuild with --rebuild;
/// generated from the declared schema, and proven, with --autogenerate)
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
    /// Write the pair from the difference between the migrations' head and the declared schema
    /// (--schema, schema.sql), proven on scratch databases before anything is written
    #[arg(long, conflicts_with = "rebuild")]
    autogenerate: bool,
    #[command(flatten)]
    autogen: AutogenArgs,
    /// With --autogenerate: allow dropping tables and columns (what may hold data)
    #[arg(long, requires = "autogenerate")]
    allow_drop: bool,
    /// With --autogenerate: also rehearse the pair on a copy of this database (rows kept)
    #[arg(long, requires = "autogenerate", value_name = "FILE")]
    data: Option<std::path::PathBuf>,
}

impl Args {
    /// Whether the migration pair is generated from the declared schema.
    pub fn autogenerate(&self) -> bool {
        self.autogenerate
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let out = &ctx.out;
    let name = args
        .name
        .as_deref()
        .or(args.message.as_deref())
        .unwrap_or_default();
    if args.autogenerate {
        return autogenerate(ctx, &args, name);
    }
    if !args.autogen.fill.is_empty() {
        return Err(dbtool::autogen::AutogenError::InvalidFlag {
            arg: "--fill".into(),
            reason: "it steers --autogenerate".into(),
        }
        .into());
    }
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

fn autogenerate(ctx: &Context, args: &Args, name: &str) -> Result<u8, Error> {
    let out = &ctx.out;
    // --rename is shared with --rebuild (TABLE.OLD=NEW or OLD=NEW here); no other change flag
    // applies: the declared schema says what changes.
    let renames = args.changes.rename.clone();
    if args.changes.has_other_than_rename() {
        return Err(dbtool::autogen::AutogenError::InvalidFlag {
            arg: "(change flags)".into(),
            reason: "with --autogenerate the declared schema says what changes; only --rename, --fill, --allow-drop and --data apply".into(),
        }
        .into());
    }
    let mut options = args.autogen.options(&renames);
    options.allow_drop = args.allow_drop;
    options.data = args.data.as_ref().map(|p| out.cwd.join(p));
    let schema = ctx.config.schema.as_ref().map(|s| s.value.as_path());
    let report = dbtool::autogen::create(
        &ctx.migrator(),
        name,
        schema,
        &options,
        ctx.config.busy_timeout,
    )?;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    let Some(created) = &report.created else {
        out.note(format!(
            "no difference between the migrations' head and {}: nothing written",
            out.path(&report.schema_file)
        ));
        return Ok(exit::OK);
    };
    out.line(format!("created {}", out.path(&created.up)));
    out.line(format!("created {}", out.path(&created.down)));
    for c in &report.changes {
        out.note(format!("  {} {} ({})", c.change, c.object, c.how));
    }
    for l in &report.lossy {
        out.note(format!("  lossy down: {l}"));
    }
    let proof = if report.data_rows.is_some() {
        "proven on scratch databases and on a copy of the --data database"
    } else {
        "proven on scratch databases (up, down, up)"
    };
    out.note(format!("  {proof}; review it, then `dbtool upgrade`"));
    Ok(exit::OK)
}
