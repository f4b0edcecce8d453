//! The command line: global options, the command enum (one file per command), dispatch, and how
//! errors are shown (`error[code]: …`, `caused by: …`, `hint: …`, or JSON under `--json`).

mod backup;
mod backups;
mod check;
mod config;
mod create;
mod current;
mod diff;
mod downgrade;
mod errors;
mod exec;
mod exit;
mod findings;
mod history;
mod init;
mod inspect;
mod output;
mod progress;
mod prune;
mod rebuild;
mod rehearse;
mod render;
mod reset;
mod restore;
mod safety;
mod schema;
mod stamp;
mod status;
mod upgrade;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use dbtool::check::Checker;
use dbtool::config::{Config, Environment, Overrides};
use dbtool::{Error, Migrator};

pub use output::Output;

const AFTER_HELP: &str = "\
Configuration (highest first): flags > environment (DATABASE_URL, DBTOOL_MIGRATIONS,
DBTOOL_BACKUP_DIR, DBTOOL_SCHEMA) > dbtool.toml in this folder or the nearest parent > defaults
(content.db, ./migrations). `dbtool config` shows what was resolved.

Exit status:
  0  success, or nothing to do
  1  the operation failed (the database is unchanged unless the message says otherwise)
  2  usage error (unknown flag, bad target)
  3  a check found a difference (status --exit-code with pending migrations; check, verify
     and rehearse findings; a damaged backup in `backups verify`)
  4  the database is locked by another process (busy timeout expired)
  5  refused: needs --yes when no terminal can ask (restore, reset), or --force
     (a backup of another database)";

#[derive(Parser)]
#[command(
    name = "dbtool",
    version,
    about = "Migrations, safe table rebuilds and verified backups for SQLite",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub struct GlobalArgs {
    /// Database file or sqlite: URL [default: DATABASE_URL, dbtool.toml, content.db]
    #[arg(long, short = 'd', global = true, value_name = "PATH")]
    database: Option<String>,
    /// Migrations folder [default: DBTOOL_MIGRATIONS, dbtool.toml, ./migrations]
    #[arg(long, short = 'm', global = true, value_name = "DIR")]
    migrations: Option<PathBuf>,
    /// Backup folder [default: DBTOOL_BACKUP_DIR, dbtool.toml, a per-database data folder]
    #[arg(long, global = true, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Declared schema file [default: DBTOOL_SCHEMA, dbtool.toml, ./schema.sql if present]
    #[arg(long, global = true, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// How long to wait for another process's lock, in milliseconds [default: 5000]
    #[arg(long, global = true, value_name = "MS")]
    busy_timeout: Option<u64>,
    /// Print the result as JSON on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Print only errors (and JSON)
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    Init(init::Args),
    Upgrade(upgrade::Args),
    Downgrade(downgrade::Args),
    Current(current::Args),
    History(history::Args),
    Status(status::Args),
    Create(create::Args),
    Rebuild(rebuild::Args),
    Stamp(stamp::Args),
    Backup(backup::Args),
    Backups(backups::Args),
    Restore(restore::Args),
    Prune(prune::Args),
    Reset(reset::Args),
    Check(check::Args),
    Verify(verify::Args),
    Inspect(inspect::Args),
    Rehearse(rehearse::Args),
    Exec(exec::Args),
    Config(config::Args),
    Schema(schema::Args),
    Diff(diff::Args),
}

impl Command {
    /// Whether the command may write to the database or its backup folder (and so first removes
    /// what killed runs left there).
    fn writes(&self) -> bool {
        match self {
            Command::Init(_)
            | Command::Upgrade(_)
            | Command::Downgrade(_)
            | Command::Rebuild(_)
            | Command::Stamp(_)
            | Command::Backup(_)
            | Command::Restore(_)
            | Command::Prune(_)
            | Command::Reset(_)
            | Command::Exec(_) => true,
            Command::Current(_)
            | Command::History(_)
            | Command::Status(_)
            | Command::Create(_)
            | Command::Backups(_)
            | Command::Check(_)
            | Command::Verify(_)
            | Command::Inspect(_)
            | Command::Rehearse(_)
            | Command::Config(_)
            | Command::Schema(_)
            | Command::Diff(_) => false,
        }
    }
}

/// What every command gets: resolved configuration and the output sink.
pub struct Context {
    pub config: Config,
    pub out: Output,
}

impl Context {
    pub fn migrator(&self) -> Migrator {
        Migrator::new(&self.config.database.value, &self.config.migrations.value)
            .busy_timeout(self.config.busy_timeout)
    }

    pub fn checker(&self) -> Checker {
        Checker::new(&self.config.database.value, &self.config.migrations.value)
            .busy_timeout(self.config.busy_timeout)
    }
}

/// Run the command line; returns the exit status.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let json = cli.global.json;
    let env = match Environment::from_process() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error[io]: cannot read the current folder\n  caused by: {e}");
            return exit::FAILURE;
        }
    };
    let out = Output {
        json,
        quiet: cli.global.quiet,
        cwd: env.cwd.clone(),
    };
    let overrides = Overrides {
        database: cli.global.database.clone(),
        migrations: cli.global.migrations.clone(),
        backup_dir: cli.global.backup_dir.clone(),
        busy_timeout_ms: cli.global.busy_timeout,
        schema: cli.global.schema.clone(),
    };
    let result = Config::resolve(&overrides, &env)
        .map_err(Error::from)
        .and_then(|config| {
            let ctx = Context { config, out };
            dispatch(&ctx, cli.command)
        });
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e, json);
            errors::exit_status(&e)
        }
    }
}

fn dispatch(ctx: &Context, command: Command) -> Result<u8, Error> {
    if command.writes() {
        safety::remove_leftovers(ctx);
    }
    match command {
        Command::Init(args) => init::run(ctx, args),
        Command::Upgrade(args) => upgrade::run(ctx, args),
        Command::Downgrade(args) => downgrade::run(ctx, args),
        Command::Current(args) => current::run(ctx, args),
        Command::History(args) => history::run(ctx, args),
        Command::Status(args) => status::run(ctx, args),
        Command::Create(args) => create::run(ctx, args),
        Command::Rebuild(args) => rebuild::run(ctx, args),
        Command::Stamp(args) => stamp::run(ctx, args),
        Command::Backup(args) => backup::run(ctx, args),
        Command::Backups(args) => backups::run(ctx, args),
        Command::Restore(args) => restore::run(ctx, args),
        Command::Prune(args) => prune::run(ctx, args),
        Command::Reset(args) => reset::run(ctx, args),
        Command::Check(args) => check::run(ctx, args),
        Command::Verify(args) => verify::run(ctx, args),
        Command::Inspect(args) => inspect::run(ctx, args),
        Command::Rehearse(args) => rehearse::run(ctx, args),
        Command::Exec(args) => exec::run(ctx, args),
        Command::Config(args) => config::run(ctx, args),
        Command::Schema(args) => schema::run(ctx, args),
        Command::Diff(args) => diff::run(ctx, args),
    }
}

fn causes(e: &Error) -> Vec<String> {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes
}

fn report_error(e: &Error, json: bool) {
    if json {
        let value = serde_json::json!({
            "error": {
                "code": e.code(),
                "exit_code": errors::exit_status(e),
                "message": e.to_string(),
                "causes": causes(e),
                "hint": errors::hint(e),
            }
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        return;
    }
    eprintln!("error[{}]: {e}", e.code());
    for cause in causes(e) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = errors::hint(e) {
        eprintln!("  hint: {hint}");
    }
}
