//! `dbtool rebuild TABLE [changes…]`, and the change flags it shares with `create --rebuild`.

use dbtool::rebuild::{Change, RebuildSpec};
use dbtool::{Error, RunOptions};

use super::exit;

use super::progress::Spinner;
use super::{safety, Context};

/// The changes of one rebuild (several per rebuild).
#[derive(clap::Args, Default)]
#[command(next_help_heading = "Rebuild changes")]
pub struct ChangeArgs {
    /// Replace COL's CHECK (COL IN (…)) with these values, or add one
    #[arg(long = "enum", value_name = "COL=a,b,c")]
    enum_values: Vec<String>,
    /// Replace COL's CHECK constraints with CHECK (EXPR)
    #[arg(long, value_name = "COL=EXPR", allow_hyphen_values = true)]
    check: Vec<String>,
    /// Remove COL's CHECK constraints
    #[arg(long, value_name = "COL")]
    drop_check: Vec<String>,
    /// Change COL's declared type (no CAST: values that do not convert are reported)
    #[arg(long = "type", value_name = "COL=TYPE")]
    type_: Vec<String>,
    /// Make COL NOT NULL; existing NULLs become FILL (a SQL literal or (expression))
    #[arg(long, value_name = "COL[=FILL]", allow_hyphen_values = true)]
    not_null: Vec<String>,
    /// Allow NULL in COL
    #[arg(long, value_name = "COL")]
    nullable: Vec<String>,
    /// Set COL's DEFAULT (a SQL literal or (expression))
    #[arg(long, value_name = "COL=VALUE", allow_hyphen_values = true)]
    default: Vec<String>,
    /// Remove COL's DEFAULT
    #[arg(long, value_name = "COL")]
    drop_default: Vec<String>,
    /// Rename a column (indexes, triggers, views and child foreign keys follow); with create
    /// --autogenerate: TABLE.OLD=NEW for a column, OLD=NEW for a table
    #[arg(long, value_name = "OLD=NEW")]
    pub rename: Vec<String>,
    /// Drop a column (refused while a view, trigger, index or constraint uses it)
    #[arg(long, value_name = "COL")]
    drop: Vec<String>,
    /// Add a foreign key to COL
    #[arg(long, value_name = "COL=TABLE(COL)[:ON-DELETE]")]
    add_fk: Vec<String>,
    /// Remove COL's foreign key
    #[arg(long, value_name = "COL")]
    drop_fk: Vec<String>,
    /// Add UNIQUE (COL, …)
    #[arg(long, value_name = "COL[,COL…]")]
    unique: Vec<String>,
}

impl ChangeArgs {
    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, v)| v.is_empty())
    }

    /// Whether any change flag other than --rename is given.
    pub fn has_other_than_rename(&self) -> bool {
        self.all()
            .iter()
            .any(|(flag, v)| *flag != "rename" && !v.is_empty())
    }

    fn all(&self) -> [(&'static str, &Vec<String>); 13] {
        [
            ("enum", &self.enum_values),
            ("check", &self.check),
            ("drop-check", &self.drop_check),
            ("type", &self.type_),
            ("not-null", &self.not_null),
            ("nullable", &self.nullable),
            ("default", &self.default),
            ("drop-default", &self.drop_default),
            ("rename", &self.rename),
            ("drop", &self.drop),
            ("add-fk", &self.add_fk),
            ("drop-fk", &self.drop_fk),
            ("unique", &self.unique),
        ]
    }

    /// The changes as a spec for `table` (values are parsed and checked here).
    pub fn spec(&self, table: &str) -> Result<RebuildSpec, Error> {
        let mut changes = Vec::new();
        for (flag, values) in self.all() {
            for value in values {
                changes.push(Change::parse(flag, value)?);
            }
        }
        Ok(RebuildSpec::new(table, changes)?)
    }
}

/// Rebuild a table of the database now (backup first; use `create --rebuild` for a migration)
#[derive(clap::Args)]
pub struct Args {
    /// The table to rebuild
    table: String,
    #[command(flatten)]
    changes: ChangeArgs,
    /// Print the SQL that would run; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not take the automatic backup before changing the database
    #[arg(long)]
    no_backup: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let spec = args.changes.spec(&args.table)?;
    // Drawn from the end of the automatic backup until the rebuild is committed.
    let rebuilding: std::cell::RefCell<Option<Spinner>> = std::cell::RefCell::new(None);
    let report = safety::with_auto_backup(ctx, args.no_backup, |hook| {
        let backup_then_spin = |change: &dbtool::migrate::ChangeContext<'_>| {
            let backup = hook(change)?;
            *rebuilding.borrow_mut() = Some(Spinner::start(
                &ctx.out,
                format!("rebuilding table {}", args.table),
            ));
            Ok(backup)
        };
        ctx.migrator().rebuild(
            &spec,
            &RunOptions {
                dry_run: args.dry_run,
                before_change: Some(&backup_then_spin),
                ..RunOptions::default()
            },
        )
    })?;
    drop(rebuilding.take());
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    let db = out.path(&report.run.database);
    if report.run.dry_run {
        out.line(format!(
            "-- dry run: rebuild of {} in {db}; nothing will change",
            report.table
        ));
        for step in &report.run.steps {
            if let Some(sql) = &step.sql {
                out.line(sql.trim_end());
            }
        }
        return Ok(exit::OK);
    }
    if let Some(backup) = &report.run.backup {
        out.note(format!("backup: {}", out.path(backup)));
    }
    for step in &report.run.steps {
        for warning in &step.warnings {
            out.note(format!("warning[rebuild-value-kept]: {warning}"));
        }
        out.line(format!(
            "rebuilt {} in {db} ({:.1} ms):",
            report.table, step.duration_ms
        ));
    }
    for line in &report.summary {
        out.line(format!("  {line}"));
    }
    Ok(exit::OK)
}
