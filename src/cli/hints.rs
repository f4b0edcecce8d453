//! Hints that name commands or flags, or that need to know how the command was run (the
//! configuration, the database's history). They live here, beside the command line they talk
//! about; every other hint comes from the library's error.

use std::path::Path;

use dbtool::config::Source;
use dbtool::migrate::MigrateError;
use dbtool::Error;

use super::Context;

/// The hint for `e` as this command line met it.
pub fn hint(e: &Error, ctx: Option<&Context>) -> Option<String> {
    let library = super::errors::hint(e);
    let Some(ctx) = ctx else {
        return library;
    };
    if let Some(dbtool::db::DbError::DatabaseMissing { path }) = e.db() {
        return Some(database_missing(ctx, path));
    }
    match e {
        Error::Migrate(m) => match m.as_ref() {
            MigrateError::MigrationsDirMissing { .. } => Some(
                "start a project here with `dbtool init`, or pass --migrations DIR (DBTOOL_MIGRATIONS, `migrations` in dbtool.toml)"
                    .into(),
            ),
            MigrateError::EditedMigration { version, .. } => Some(edited_migration(ctx, *version)),
            _ => library,
        },
        _ => library,
    }
}

fn database_missing(ctx: &Context, path: &Path) -> String {
    let mut hint = "create it with `dbtool init`, or check --database, DATABASE_URL and dbtool.toml (`dbtool config`)".to_string();
    // SQLAlchemy writes `sqlite:///name.db` for a relative path; dbtool (like sqlx) reads the
    // third slash as the root. Say so when the relative file is right here.
    if let Some(raw) = &ctx.raw_database {
        let rest = raw
            .strip_prefix("sqlite:///")
            .or_else(|| raw.strip_prefix("sqlite3:///"));
        if let Some(rest) = rest.filter(|r| !r.starts_with('/')) {
            let relative = ctx.out.cwd.join(rest);
            if path.is_absolute() && relative.exists() {
                let source = match &ctx.config.database.source {
                    Source::Env(var) => var.clone(),
                    _ => "--database".into(),
                };
                hint = format!(
                    "{source} {raw} names the absolute path {}, but {rest} exists in this folder: for a relative path write sqlite:{rest} (three slashes mean the root here, as in sqlx; SQLAlchemy reads them as relative)",
                    path.display()
                );
            }
        }
    }
    hint
}

fn edited_migration(ctx: &Context, version: i32) -> String {
    let newest = ctx
        .migrator()
        .read_history()
        .ok()
        .and_then(|applied| applied.iter().map(|a| a.version).max());
    edited_migration_hint(version, newest)
}

/// `redo` for the newest applied migration (the one still being written), `reset --yes` for an
/// older one.
pub fn edited_migration_hint(version: i32, newest_applied: Option<i32>) -> String {
    if newest_applied == Some(version) {
        "it is the newest applied migration: in development, `dbtool redo` runs its current down and up again (after a backup) and records the new checksum; if it is already deployed, restore the file (git log -p) and put the change in a new migration (`dbtool create`)".into()
    } else {
        "restore the file as it was applied (git log -p on it) and put the change in a new migration (`dbtool create`); in development, `dbtool reset --yes` rebuilds the database from the files (after a backup)".into()
    }
}
