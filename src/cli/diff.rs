//! `dbtool diff [--from migrations|database]`.

use dbtool::autogen::{self, AutogenOptions};
use dbtool::Error;

use super::exit;

use super::schema::From;
use super::Context;

/// Flags that steer a generated migration (shared by `diff` and `create --autogenerate`).
#[derive(clap::Args, Default)]
pub struct AutogenArgs {
    /// Value of a new NOT NULL column for the existing rows: TABLE.COLUMN=EXPR
    #[arg(long, value_name = "TABLE.COLUMN=EXPR")]
    pub fill: Vec<String>,
}

impl AutogenArgs {
    pub fn options(&self, renames: &[String]) -> AutogenOptions {
        AutogenOptions {
            renames: renames.to_vec(),
            fills: self.fill.clone(),
            ..AutogenOptions::default()
        }
    }
}

/// Show the SQL that takes the migrations' head (or the live database) to the declared schema;
/// exits 3 when there is a difference
#[derive(clap::Args)]
pub struct Args {
    /// Compare the declared schema with the migrations' head or the live database
    #[arg(long, value_enum, default_value = "migrations")]
    from: From,
    /// Declare a rename: TABLE.OLD=NEW for a column, OLD=NEW for a table (never guessed)
    #[arg(long, value_name = "FROM=TO")]
    rename: Vec<String>,
    #[command(flatten)]
    autogen: AutogenArgs,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let schema = ctx.config.schema.as_ref().map(|s| s.value.as_path());
    let report = autogen::diff(
        &ctx.migrator(),
        schema,
        args.from.side(),
        &args.autogen.options(&args.rename),
        ctx.config.busy_timeout,
    )?;
    let code = if report.differs {
        exit::DIFFERENCE
    } else {
        exit::OK
    };
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(code);
    }
    let side = match args.from {
        From::Migrations => "the migrations' head",
        From::Database => "the database",
    };
    if !report.differs {
        out.note(format!(
            "no difference: {} matches {side}",
            out.path(&report.schema_file)
        ));
        return Ok(code);
    }
    out.line(format!(
        "-- From {side} to {} ({} change(s)):",
        out.path(&report.schema_file),
        report.changes.len()
    ));
    for c in &report.changes {
        out.line(format!("--   {} {} ({})", c.change, c.object, c.how));
    }
    out.line("");
    out.line(report.sql.trim_end());
    Ok(code)
}
