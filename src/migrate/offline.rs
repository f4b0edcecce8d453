//! `upgrade --sql`: the plan as one SQL script for `sqlite3 DB < script` (Alembic's offline mode),
//! for hosts where a DBA applies SQL by hand. Applied with the sqlite3 shell, it leaves the
//! database exactly as `dbtool upgrade` would: the same migrations, the same history rows
//! (refinery's checksums, `applied_on` in RFC 3339), in one transaction.
//!
//! What dbtool does in code, the script does in SQL:
//! - `.bail on` first: without it the sqlite3 shell carries on after a failing statement and the
//!   final COMMIT would commit half a plan. (Any other tool fails on that first line, before
//!   anything runs.) On an error the shell exits and SQLite rolls the transaction back.
//! - `PRAGMA foreign_keys=OFF` before `BEGIN IMMEDIATE` (inside a transaction it is a no-op).
//! - A version guard: the script refuses to run unless the history is at the version it was
//!   generated for, so it cannot be applied twice or to another database's state.
//! - Before COMMIT, the foreign-key check: the violations found at BEGIN are kept in a temporary
//!   table, and a CHECK constraint refuses the COMMIT if `pragma_foreign_key_check` shows any
//!   other. It cannot list the violations as dbtool does; `dbtool check` does afterwards.
//! - A `-- dbtool:no-transaction` migration is a commit boundary, as in `upgrade`.
//!
//! - After a generated table rebuild, `ANALYZE` of the table, as dbtool's post-check does.
//!
//! What only dbtool does: the automatic backup (take one first: `dbtool backup`), the preflight
//! and post-checks of generated table rebuilds beyond the guard written into the file (value
//! checks with counts, views compile, `integrity_check` of the table), and the advisory lock.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::Result;
use super::history::{self, CREATE_HISTORY_TABLE};
use super::plan::{plan_upgrade, Plan, UpTarget};
use super::Migrator;
use crate::db::{self, OpenMode};

/// The script and what it does.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineScript {
    pub database: std::path::PathBuf,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    /// Versions the script applies, in order.
    pub applies: Vec<i32>,
    pub script: String,
}

impl Migrator {
    /// The SQL script that brings the database from its current version to `target`. A missing
    /// database counts as empty (the script can create one: `sqlite3 new.db < script`). Changes
    /// nothing.
    pub fn upgrade_script(&self, target: UpTarget, now: OffsetDateTime) -> Result<OfflineScript> {
        let set = self.load_migrations()?;
        let applied = if self.database.exists() {
            let conn = db::open(&self.database, OpenMode::ReadOnly, self.busy_timeout)?;
            self.refuse_unmanaged(&conn)?;
            history::read(&conn, &self.database)?
        } else {
            Vec::new()
        };
        let plan = plan_upgrade(&set, &applied, target)?;
        Ok(OfflineScript {
            database: self.database.clone(),
            from_version: plan.from,
            to_version: plan.to,
            applies: plan.steps.iter().map(|s| s.version).collect(),
            script: render(&plan, &self.database, now),
        })
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn begin(out: &mut String) {
    out.push_str("PRAGMA foreign_keys=OFF;\nBEGIN IMMEDIATE;\n");
    out.push_str(CREATE_HISTORY_TABLE);
    out.push('\n');
    out.push_str(
        "DROP TABLE IF EXISTS temp.dbtool_fk_before;\n\
         CREATE TEMP TABLE dbtool_fk_before AS SELECT * FROM pragma_foreign_key_check;\n",
    );
}

fn commit(out: &mut String) {
    out.push_str(
        "-- no new foreign-key violation, or no COMMIT (dbtool checks the same before its COMMIT)\n\
         DROP TABLE IF EXISTS temp.dbtool_fk_guard;\n\
         CREATE TEMP TABLE dbtool_fk_guard(new_foreign_key_violations INTEGER CHECK (new_foreign_key_violations = 0));\n\
         INSERT INTO dbtool_fk_guard SELECT count(*) FROM (SELECT * FROM pragma_foreign_key_check EXCEPT SELECT * FROM dbtool_fk_before);\n\
         COMMIT;\n",
    );
}

fn render(plan: &Plan, database: &std::path::Path, now: OffsetDateTime) -> String {
    let applied_on = now
        .format(&Rfc3339)
        .expect("an OffsetDateTime always formats as RFC 3339");
    let version = |v: Option<i32>| v.map_or("base".to_string(), |v| format!("version {v}"));
    let mut out = String::new();
    out.push_str(&format!(
        "-- dbtool upgrade --sql: {} from {} to {}\n\
         -- Apply with: sqlite3 DATABASE < this-file (take a backup first: dbtool backup).\n\
         -- Stops at the first error (.bail on) and rolls back; refuses a database that is not at\n\
         -- {} and any new foreign-key violation.\n\
         .bail on\n",
        database.display(),
        version(plan.from),
        version(plan.to),
        version(plan.from),
    ));
    if plan.steps.is_empty() {
        out.push_str("-- nothing to apply\n");
        return out;
    }
    begin(&mut out);
    out.push_str(&format!(
        "-- the database must be at {} (a script applies once, to the state it was made for)\n\
         CREATE TEMP TABLE dbtool_version_guard(current_version CHECK (current_version IS {}));\n\
         INSERT INTO dbtool_version_guard SELECT max(version) FROM refinery_schema_history;\n",
        version(plan.from),
        plan.from.map_or("NULL".into(), |v| v.to_string())
    ));
    for step in &plan.steps {
        let file = step
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if step.no_transaction {
            commit(&mut out);
        }
        out.push_str(&format!("\n-- V{}__{} ({file})\n", step.version, step.name));
        if let Some(sql) = &step.sql {
            out.push_str(sql.trim_end());
            out.push('\n');
            // After a generated rebuild dbtool refreshes the table's statistics (see
            // rebuild::postcheck); so does the script, so both leave the same sqlite_stat tables.
            if let Ok(Some(rebuild)) = crate::rebuild::RebuildFile::parse(sql) {
                out.push_str(&format!(
                    "PRAGMA analysis_limit = 1000; ANALYZE main.\"{}\"; PRAGMA analysis_limit = 0;\n",
                    rebuild.table.replace('"', "\"\"")
                ));
            }
        }
        out.push_str(&format!(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ({}, {}, {}, {});\n",
            step.version,
            quote(&step.name),
            quote(&applied_on),
            quote(&step.checksum.to_string())
        ));
        if step.no_transaction {
            out.push('\n');
            begin(&mut out);
        }
    }
    out.push('\n');
    commit(&mut out);
    out
}
