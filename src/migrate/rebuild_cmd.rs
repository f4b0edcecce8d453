//! The rebuild engine wired to the migrations folder and the executor: `create NAME --rebuild`
//! generates from the schema at the head of the folder (applied to an in-memory database, never
//! the live one), and `dbtool rebuild` runs a generated rebuild on the database through the same
//! executor as a migration (foreign keys off before the transaction, before-change hook for the
//! backup, preflight, post-checks, foreign-key check, all or nothing), without a history row.

use serde::Serialize;

use super::error::Result;
use super::{
    apply_in_memory, execute, history, Action, ChangeContext, CreateReport, Migrator, Operation,
    Plan, Prepared, RunOptions, RunReport, Step, StepReport, UpTarget,
};
use crate::db::{self, OpenMode, WriteSession};
use crate::rebuild::{generate, GenerateOptions, Generated, RebuildSpec};

/// The result of `dbtool rebuild`: what changed and the run.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildRun {
    pub table: String,
    /// One line per change.
    pub summary: Vec<String>,
    pub run: RunReport,
}

impl Migrator {
    /// Generate a rebuild from the schema at the head of the migrations folder.
    pub fn generate_rebuild(
        &self,
        spec: &RebuildSpec,
        options: GenerateOptions,
    ) -> Result<Generated> {
        let set = self.load_migrations()?;
        let conn = apply_in_memory(&set, UpTarget::Head)?;
        Ok(generate(&conn, spec, options)?)
    }

    /// Write the next migration pair holding a generated rebuild (up and its mirror down).
    pub fn create_rebuild(
        &self,
        description: &str,
        spec: &RebuildSpec,
        options: GenerateOptions,
    ) -> Result<(CreateReport, Generated)> {
        let generated = self.generate_rebuild(spec, options)?;
        let report = self.create_with(description, |version| {
            (
                format!("-- V{version:04}: {description}\n{}", generated.up),
                format!("-- Undo V{version:04}: {description}\n{}", generated.down),
            )
        })?;
        Ok((report, generated))
    }

    /// Rebuild a table of the database now. The SQL is generated from the database's own schema
    /// under the write lock, so nothing can change it between generation and execution.
    pub fn rebuild(&self, spec: &RebuildSpec, options: &RunOptions<'_>) -> Result<RebuildRun> {
        let up_only = GenerateOptions {
            up_only: true,
            ..GenerateOptions::default()
        };
        if options.dry_run {
            let conn = db::open(&self.database, OpenMode::ReadOnly, self.busy_timeout)?;
            let current = history::read(&conn, &self.database)?
                .iter()
                .map(|a| a.version)
                .max();
            let generated = generate(&conn, spec, up_only)?;
            let plan = rebuild_plan(current, &generated);
            let steps = plan
                .steps
                .iter()
                .map(|s| StepReport {
                    action: s.action,
                    version: s.version,
                    name: s.name.clone(),
                    path: None,
                    no_transaction: false,
                    duration_ms: 0.0,
                    sql: s.sql.clone(),
                    statements: Vec::new(),
                    warnings: Vec::new(),
                })
                .collect();
            return Ok(RebuildRun {
                table: generated.table.clone(),
                summary: generated.summary,
                run: self.rebuild_report(true, current, steps),
            });
        }
        let conn = db::open(&self.database, OpenMode::ReadWrite, self.busy_timeout)?;
        let mut session = WriteSession::new(&conn, &self.database, self.busy_timeout)?;
        let mut generated_table = None;
        let prepare = |conn: &rusqlite::Connection| -> Result<Prepared> {
            let current = history::read(conn, &self.database)?
                .iter()
                .map(|a| a.version)
                .max();
            let generated = generate(conn, spec, up_only)?;
            let plan = rebuild_plan(current, &generated);
            let backup = match options.before_change {
                Some(hook) => hook(&ChangeContext {
                    postgres: None,
                    db_path: &self.database,
                    operation: Operation::Rebuild,
                    plan: &plan,
                    nothing_to_back_up: false,
                })?,
                None => None,
            };
            generated_table = Some((generated.table, generated.summary));
            Ok(Prepared { plan, backup })
        };
        let (prepared, steps) = execute(
            &mut session,
            Operation::Rebuild,
            options.now,
            prepare,
            &mut |_, _, _| Ok(()),
        )?;
        session.finish()?;
        let (table, summary) = generated_table.unwrap_or_default();
        let mut run = self.rebuild_report(false, prepared.plan.from, steps);
        run.backup = prepared.backup;
        Ok(RebuildRun {
            table,
            summary,
            run,
        })
    }

    fn rebuild_report(
        &self,
        dry_run: bool,
        current: Option<i32>,
        steps: Vec<StepReport>,
    ) -> RunReport {
        RunReport {
            operation: Operation::Rebuild,
            database: self.database.clone(),
            dry_run,
            created: false,
            from: current,
            to: current,
            head: None,
            steps,
            backup: None,
            warnings: Vec::new(),
        }
    }
}

fn rebuild_plan(current: Option<i32>, generated: &Generated) -> Plan {
    Plan {
        from: current,
        to: current,
        steps: vec![Step {
            action: Action::Rebuild,
            version: current.unwrap_or(0),
            name: format!("rebuild of {}", generated.table),
            path: None,
            sql: Some(generated.up.clone()),
            checksum: 0,
            no_transaction: false,
        }],
    }
}
