//! The command line: global options, the command enum (one file per command), dispatch, and how
//! errors are shown (`error[code]: …`, `caused by: …`, `hint: …`, or JSON under `--json`).

mod backup;
mod backups;
mod check;
mod completions;
mod config;
mod create;
mod current;
mod deploy_script;
mod diff;
mod downgrade;
mod errors;
mod exec;
mod exit;
mod findings;
mod hints;
mod history;
mod init;
mod inspect;
mod interrupt;
mod output;
mod postgres;
mod progress;
mod prune;
mod rebuild;
mod redo;
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
  5  refused: needs --yes when no terminal can ask (restore, reset), --force (a backup of
     another database), or --allow-lossy (a rebuild that loses data)
  130  interrupted by Ctrl-C; nothing uncommitted is kept";

#[derive(Parser)]
#[command(
    name = "dbtool",
    version,
    about = "Migrations, safe table rebuilds and verified backups for SQLite and PostgreSQL",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes: under their own heading in every command's help.
#[derive(clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Database file, sqlite: URL or postgres:// URL [default: DATABASE_URL, dbtool.toml, content.db]
    #[arg(
        long,
        short = 'd',
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    database: Option<String>,
    /// Migrations folder [default: DBTOOL_MIGRATIONS, dbtool.toml, ./migrations]
    // No `-m`: that is Alembic's `revision -m MESSAGE`, which `create -m` accepts.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    migrations: Option<PathBuf>,
    /// Backup folder [default: DBTOOL_BACKUP_DIR, dbtool.toml, a per-database data folder]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    backup_dir: Option<PathBuf>,
    /// Declared schema file [default: DBTOOL_SCHEMA, dbtool.toml, ./schema.sql if present]
    #[arg(long, global = true, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// How long to wait for another process's lock, in milliseconds [default: 5000]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "MS",
        allow_negative_numbers = true
    )]
    busy_timeout: Option<u64>,
    /// Print the result as JSON on stdout
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// Print only errors (and JSON)
    #[arg(long, short = 'q', global = true, help_heading = "Global options")]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    Init(init::Args),
    Upgrade(upgrade::Args),
    Downgrade(downgrade::Args),
    Redo(redo::Args),
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
    DeployScript(deploy_script::Args),
    Completions(completions::Args),
    Man(completions::ManArgs),
    Schema(schema::Args),
    Diff(diff::Args),
}

impl Command {
    /// The command's name, and whether it can change the database (for the Ctrl-C message).
    fn describe(&self) -> (&'static str, bool) {
        match self {
            Command::Init(_) => ("init", true),
            Command::Upgrade(_) => ("upgrade", true),
            Command::Downgrade(_) => ("downgrade", true),
            Command::Redo(_) => ("redo", true),
            Command::Current(_) => ("current", false),
            Command::History(_) => ("history", false),
            Command::Status(_) => ("status", false),
            Command::Create(_) => ("create", false),
            Command::Rebuild(_) => ("rebuild", true),
            Command::Stamp(_) => ("stamp", true),
            Command::Backup(_) => ("backup", false),
            Command::Backups(_) => ("backups", false),
            Command::Restore(_) => ("restore", true),
            Command::Prune(_) => ("prune", false),
            Command::Reset(_) => ("reset", true),
            Command::Check(_) => ("check", false),
            Command::Verify(_) => ("verify", false),
            Command::Inspect(_) => ("inspect", false),
            Command::Rehearse(_) => ("rehearse", false),
            Command::Exec(_) => ("exec", true),
            Command::Config(_) => ("config", false),
            Command::DeployScript(_) => ("deploy-script", false),
            Command::Completions(_) => ("completions", false),
            Command::Man(_) => ("man", false),
            Command::Schema(_) => ("schema", false),
            Command::Diff(_) => ("diff", false),
        }
    }
}

impl Command {
    /// Whether the command may write to the database or its backup folder (and so first removes
    /// what killed runs left there).
    fn writes(&self) -> bool {
        match self {
            Command::Init(_)
            | Command::Upgrade(_)
            | Command::Downgrade(_)
            | Command::Redo(_)
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
            | Command::DeployScript(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Schema(_)
            | Command::Diff(_) => false,
        }
    }
}

/// What every command gets: resolved configuration and the output sink.
pub struct Context {
    pub config: Config,
    pub out: Output,
    /// The database as written on the command line or in DATABASE_URL (for hints; a URL's
    /// password blanked).
    pub raw_database: Option<String>,
    /// The SQLite file, or on PostgreSQL the redacted URL: what reports name.
    pub db_path: PathBuf,
}

impl Context {
    /// The PostgreSQL database, when the configured database is one.
    pub fn postgres(&self) -> Option<&dbtool::db::PgUrl> {
        match &self.config.database.value {
            dbtool::db::Database::Postgres(url) => Some(url),
            dbtool::db::Database::Sqlite(_) => None,
        }
    }

    pub fn migrator(&self) -> Migrator {
        Migrator::new(
            self.config.database.value.clone(),
            &self.config.migrations.value,
        )
        .busy_timeout(self.config.busy_timeout)
    }

    pub fn checker(&self) -> Checker {
        Checker::new(
            self.config.database.value.clone(),
            &self.config.migrations.value,
        )
        .busy_timeout(self.config.busy_timeout)
    }
}

/// Run the command line; returns the exit status.
pub fn main() -> u8 {
    interrupt::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return exit::OK;
        }
        Err(e) => {
            report_usage_error(&e, json_requested());
            return exit::USAGE;
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
    let config = match Config::resolve(&overrides, &env) {
        Ok(config) => config,
        Err(e) => {
            let e = Error::from(e);
            report_error(&e, None, json);
            return errors::exit_status(&e);
        }
    };
    let ctx = Context {
        db_path: config.database.value.place(),
        config,
        out,
        raw_database: cli
            .global
            .database
            .clone()
            .or(env.database_url.clone())
            .map(|raw| dbtool::db::redact_raw(&raw)),
    };
    let (name, writes) = cli.command.describe();
    interrupt::running(
        name,
        writes,
        &ctx.db_path,
        ctx.postgres().is_none(),
        &safety::backup_dir(&ctx).path,
    );
    match dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(e) => {
            report_error(&e, Some(&ctx), json);
            errors::exit_status(&e)
        }
    }
}

fn dispatch(ctx: &Context, command: Command) -> Result<u8, Error> {
    if let Some(url) = ctx.postgres() {
        postgres::refuse_unsupported(&command, url)?;
    }
    if command.writes() {
        safety::remove_leftovers(ctx);
    }
    match command {
        Command::Init(args) => init::run(ctx, args),
        Command::Upgrade(args) => upgrade::run(ctx, args),
        Command::Downgrade(args) => downgrade::run(ctx, args),
        Command::Redo(args) => redo::run(ctx, args),
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
        Command::DeployScript(args) => deploy_script::run(ctx, args),
        Command::Completions(args) => completions::run(ctx, args),
        Command::Man(args) => completions::man(ctx, args),
        Command::Schema(args) => schema::run(ctx, args),
        Command::Diff(args) => diff::run(ctx, args),
    }
}

/// Whether `--json` is on the command line (before `--`), for errors found while parsing it.
fn json_requested() -> bool {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A command-line error in the documented format: `error[usage]: …` and a hint (clap's tip and
/// the usage line), or the JSON error object on stdout.
fn report_usage_error(e: &clap::Error, json: bool) {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let mut hints: Vec<String> = lines
        .filter(|l| !l.starts_with("For more information"))
        .map(|l| l.trim_start_matches("tip: ").to_string())
        .collect();
    hints.push("see `dbtool --help` or `dbtool COMMAND --help`".into());
    let hint = hints.join("; ");
    if json {
        let value = serde_json::json!({
            "error": {
                "code": "usage",
                "exit_code": exit::USAGE,
                "message": message,
                "causes": [],
                "hint": hint,
            }
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        return;
    }
    eprintln!("error[usage]: {message}");
    eprintln!("  hint: {hint}");
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

fn report_error(e: &Error, ctx: Option<&Context>, json: bool) {
    let hint = hints::hint(e, ctx);
    if json {
        let value = serde_json::json!({
            "error": {
                "code": e.code(),
                "exit_code": errors::exit_status(e),
                "message": e.to_string(),
                "causes": causes(e),
                "hint": hint,
            }
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        return;
    }
    eprintln!("error[{}]: {e}", e.code());
    for cause in causes(e) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = hint {
        eprintln!("  hint: {hint}");
    }
}
