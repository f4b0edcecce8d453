//! `dbtool schema [--from migrations|database] [-o FILE]`.

use std::path::PathBuf;

use dbtool::autogen;
use dbtool::db::DbError;
use dbtool::Error;

use super::exit;

use super::Context;

/// Where a schema is read from.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum From {
    /// The schema at the head of the migrations folder
    Migrations,
    /// The live database's schema
    Database,
}

impl From {
    pub fn side(self) -> autogen::FromSide {
        match self {
            From::Migrations => autogen::FromSide::Migrations,
            From::Database => autogen::FromSide::Database,
        }
    }
}

/// Print the schema (migrations' head, or the live database) as a declared-schema file:
/// each table with its indexes and triggers, views last; no sqlite_* internals or history table
#[derive(clap::Args)]
pub struct Args {
    /// Read the schema from the migrations' head or the live database
    #[arg(long, value_enum, default_value = "migrations")]
    from: From,
    /// Write it to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let text = autogen::dump(&ctx.migrator(), args.from.side(), ctx.config.busy_timeout)?;
    let out = &ctx.out;
    match &args.output {
        Some(path) => {
            let path = ctx.out.cwd.join(path);
            std::fs::write(&path, &text)
                .map_err(|e| Error::from(DbError::io("writing the schema file", &path, e)))?;
            if out.json {
                out.json(&serde_json::json!({ "written": path }));
            } else {
                out.note(format!("wrote {}", out.path(&path)));
            }
        }
        None if out.json => out.json(&serde_json::json!({ "schema": text })),
        None => out.line(text.trim_end()),
    }
    Ok(exit::OK)
}
