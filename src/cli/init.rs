//! `dbtool init`: start a project, or create the database and bring it to head.
//!
//! In a folder with a migrations folder (the example repository, or a project that has one), it
//! creates the database and applies every migration. In a folder with neither a migrations folder
//! nor a `dbtool.toml`, it starts a project: `dbtool.toml` naming the database, an empty
//! `migrations/`, and the database itself, then says what to run next.

use std::path::{Path, PathBuf};

use dbtool::config::{self, Source};
use dbtool::db::{Database, DbError};
use dbtool::{Error, Migrator, RunOptions};
use serde::Serialize;

use super::exit;

use super::{render, safety, Context};

/// Start a project here (dbtool.toml, migrations/, the database), or create the database and
/// upgrade it to the newest migration
#[derive(clap::Args)]
pub struct Args {
    /// Do not take the automatic backup when an existing database gets pending migrations
    #[arg(long)]
    no_backup: bool,
}

/// What `init` created when it started a project.
#[derive(Serialize)]
struct ProjectReport {
    database: PathBuf,
    migrations: PathBuf,
    /// Files and folders created, in order.
    created: Vec<PathBuf>,
    /// The commands to run next.
    next: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let config = &ctx.config;
    if !config.migrations.value.exists() {
        return start_project(ctx);
    }
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        ctx.migrator().init(&RunOptions {
            before_change: Some(hook),
            ..RunOptions::default()
        })
    })?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    let db = out.path(&report.database);
    match &report.run {
        Some(run) => render::run_report(out, run),
        None => {
            out.line(format!(
                "{db} is already initialised at {}",
                render::version(report.current)
            ));
            if !report.pending.is_empty() {
                out.note(format!(
                    "{} migration(s) pending: run `dbtool upgrade`",
                    report.pending.len()
                ));
            }
        }
    }
    Ok(exit::OK)
}

/// No migrations folder: create it, a `dbtool.toml` when there is none, and the database.
fn start_project(ctx: &Context) -> Result<u8, Error> {
    let config = &ctx.config;
    let out = &ctx.out;
    let cwd = &out.cwd;
    let target = match (&config.config_file, &config.database.source) {
        (None, Source::Default) => Database::Sqlite(cwd.join(default_database_name(cwd))),
        _ => config.database.value.clone(),
    };
    let database = target.place();
    let migrations = config.migrations.value.clone();
    let mut created = Vec::new();
    if config.config_file.is_none() {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let database_line = match (&target, &config.database.source) {
            (Database::Sqlite(_), _) => {
                format!("database = {}", quote(&relative_to(&database, cwd)))
            }
            // The URL came with its password from the environment: keep both there.
            (Database::Postgres(_), Source::Env(var)) => {
                format!("# database: from {var} (with its password, kept out of this file)")
            }
            (Database::Postgres(url), _) => format!(
                "database = {}  # the password: PGPASSWORD, never this file",
                quote(&url.redacted())
            ),
        };
        let path = write_config_file(cwd, &database_line, &relative_to(&migrations, cwd))?;
        created.push(path);
    }
    std::fs::create_dir_all(&migrations).map_err(|e| {
        Error::from(dbtool::db::DbError::io(
            "creating the migrations folder",
            &migrations,
            e,
        ))
    })?;
    created.push(migrations.clone());
    let file_existed = database.exists();
    let report = Migrator::new(target.clone(), &migrations)
        .busy_timeout(config.busy_timeout)
        .init(&RunOptions::default())?;
    let database_created = match target {
        Database::Sqlite(_) => !file_existed,
        Database::Postgres(_) => report.run.as_ref().is_some_and(|run| run.created),
    };
    if database_created {
        created.push(database.clone());
    }
    let next = vec![
        "dbtool create \"Create users table\"".to_string(),
        "dbtool upgrade".to_string(),
    ];
    if out.json {
        out.json(&ProjectReport {
            database,
            migrations,
            created,
            next,
        });
        return Ok(exit::OK);
    }
    for path in &created {
        let mut shown = out.path(path);
        if path.is_dir() {
            shown.push('/');
        }
        if path.file_name() == Some(config::CONFIG_FILE_NAME.as_ref()) {
            out.line(format!(
                "created {shown} (database = {}, migrations = {})",
                relative_to(&database, cwd),
                relative_to(&migrations, cwd)
            ));
        } else if *path == database {
            out.line(format!("created {shown} (empty: no migrations yet)"));
        } else {
            out.line(format!("created {shown}"));
        }
    }
    out.line("");
    out.line("next:");
    out.line(format!(
        "  {:<38} writes {}/V0001__create_users_table.sql and its .down.sql",
        next[0],
        out.path(&migrations)
    ));
    out.line("  (edit both: the up makes the change, the down undoes it exactly)");
    out.line(format!(
        "  {:<38} applies it (after an automatic backup of the database)",
        next[1]
    ));
    Ok(exit::OK)
}

/// `<folder name>.db`, never the example's `content.db`: `app.db` when the folder name gives
/// nothing usable.
fn default_database_name(cwd: &Path) -> String {
    let slug = cwd
        .file_name()
        .map(|n| dbtool::migrate::slugify(&n.to_string_lossy()))
        .unwrap_or_default();
    let stem = Path::new(config::DEFAULT_DATABASE)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if slug.is_empty() || slug == stem {
        "app.db".into()
    } else {
        format!("{slug}.db")
    }
}

/// `path` as written in a `dbtool.toml` in `dir`: relative when inside it.
fn relative_to(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// Write a new `dbtool.toml` in `dir` with `database_line` and the migrations folder (relative to
/// `dir`). Never overwrites: an existing file is an error.
fn write_config_file(dir: &Path, database_line: &str, migrations: &str) -> Result<PathBuf, Error> {
    use std::io::Write;
    let path = dir.join(config::CONFIG_FILE_NAME);
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let text = format!(
        "# dbtool configuration, found by every dbtool command run in this folder or below.\n\
         # Paths are relative to this file. `dbtool config` shows what is in effect.\n\
         {}\n\
         migrations = {}\n\
         \n\
         # [backup]\n\
         # dir = \"backups\"  # default: a per-database folder in the platform data directory\n\
         # keep = 10         # the newest N backups of the database are kept (default 10)\n\
         # keep_days = 30    # also keep every backup younger than D days (default: unset)\n",
        database_line,
        quote(migrations)
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::from(DbError::io("creating", &path, e)))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::from(DbError::io("writing", &path, e)))?;
    Ok(path)
}
