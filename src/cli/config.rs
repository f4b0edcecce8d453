//! `dbtool config`: what was resolved and where each value came from.

use dbtool::Error;

use super::exit;

use dbtool::backup::BackupDirOrigin;

use super::{safety, Context};

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
        config.database.value.place().display(),
        config.database.source
    ));
    out.line(format!(
        "migrations:   {}  [{}]",
        config.migrations.value.display(),
        config.migrations.source
    ));
    let dir = safety::backup_dir(ctx);
    let source = match (&config.backup_dir, dir.origin) {
        (Some(d), _) => d.source.to_string(),
        (None, BackupDirOrigin::DataDir) => "default: per database, in the data directory".into(),
        (None, _) => "default: beside the database (no home folder)".into(),
    };
    out.line(format!("backup dir:   {}  [{source}]", dir.path.display()));
    let retention = safety::retention(ctx);
    let source = if config.backup_keep.is_some() || config.backup_keep_days.is_some() {
        config
            .config_file
            .as_deref()
            .map_or("config".into(), |p| p.display().to_string())
    } else {
        "default".into()
    };
    out.line(format!(
        "retention:    {}  [{source}]",
        safety::describe_retention(retention)
    ));
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
