//! `dbtool config`: what was resolved and where each value came from.

use dbtool::Error;

use super::exit;

use super::Context;

/// Show the resolved database, migrations folder and backup folder, with their sources
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<u8, Error> {
    let config = &ctx.config;
    let out = &ctx.out;
    if out.json {
        out.json(config);
        return Ok(exit::OK);
    }
    let file = config
        .config_file
        .as_deref()
        .map_or("(none found)".into(), |p| p.display().to_string());
    out.line(format!("config file:  {file}"));
    out.line(format!(
        "database:     {}  [{}]",
        config.database.value.display(),
        config.database.source
    ));
    out.line(format!(
        "migrations:   {}  [{}]",
        config.migrations.value.display(),
        config.migrations.source
    ));
    match &config.backup_dir {
        Some(dir) => out.line(format!(
            "backup dir:   {}  [{}]",
            dir.value.display(),
            dir.source
        )),
        None => out
            .line("backup dir:   (per-database folder in the platform data directory)  [default]"),
    }
    match &config.schema {
        Some(file) => out.line(format!(
            "schema:       {}  [{}]",
            file.value.display(),
            file.source
        )),
        None => {
            out.line("schema:       (none: no --schema, DBTOOL_SCHEMA, schema key or ./schema.sql)")
        }
    }
    out.line(format!(
        "busy timeout: {} ms",
        config.busy_timeout.as_millis()
    ));
    Ok(exit::OK)
}
