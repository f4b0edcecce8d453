//! `dbtool inspect`.

use dbtool::check::LatestBackup;
use dbtool::Error;

use super::exit;

use super::{render, safety, Context};

/// The stable code `check` reports leftovers under; `inspect` shows it too.
pub const LEFTOVER_CODE: &str = "leftover-temp-files";

/// Show what the database file holds: size, pages, journal mode, SQLite version, schema
/// version, tables largest first with row counts and indexes, the latest backup
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<u8, Error> {
    let mut report = ctx.checker().inspect()?;
    report.latest_backup = latest_backup(ctx);
    report.leftovers = safety::leftovers(ctx);
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    let field = |name: &str, value: String| out.line(format!("{name:<14}{value}"));
    field("database", out.path(&report.path));
    if let Some(server) = &report.postgres {
        field(
            "size",
            format!("{} (pg_database_size)", bytes(report.size_bytes)),
        );
        field("postgres", server.server_version.clone());
    } else {
        let wal = report
            .wal_bytes
            .map_or(String::new(), |w| format!(" + {} in -wal", bytes(w)));
        field(
            "size",
            format!(
                "{}{wal} ({} pages of {} bytes, {} free)",
                bytes(report.size_bytes),
                report.page_count.unwrap_or_default(),
                report.page_size.unwrap_or_default(),
                report.freelist_count.unwrap_or_default()
            ),
        );
        field(
            "journal mode",
            report.journal_mode.clone().unwrap_or_default(),
        );
        field("sqlite", report.sqlite_version.clone().unwrap_or_default());
    }
    let schema = match (&report.schema_name, report.schema_version) {
        (Some(name), Some(v)) => format!("{v} {name}"),
        _ => "no migrations applied".into(),
    };
    let head = match (&report.migrations_problem, report.head) {
        (Some(problem), _) => format!(" (migrations unreadable: {problem})"),
        (None, _) if report.is_head => render::head_mark(report.schema_version, report.head).into(),
        (None, Some(head)) => format!(" ({} pending, head is {head})", report.pending.len()),
        (None, None) => " (no migration files)".into(),
    };
    field("schema", format!("{schema}{head}"));
    field(
        "latest backup",
        match &report.latest_backup {
            Some(b) => format!("{} ({})", out.path(&b.path), bytes(b.size_bytes)),
            None => "none found".into(),
        },
    );
    for leftover in &report.leftovers {
        field(
            "leftover",
            format!(
                "{} [{LEFTOVER_CODE}] (a killed dbtool run's; the next command that writes removes it)",
                out.path(leftover)
            ),
        );
    }
    if report.tables.is_empty() {
        field("tables", "none".into());
        return Ok(exit::OK);
    }
    out.line(if report.postgres.is_some() {
        "tables (largest first; rows estimated by the planner where marked ~):"
    } else {
        "tables (most rows first):"
    });
    let width = report
        .tables
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for table in &report.tables {
        let approx = if table.rows_estimated { "~" } else { "" };
        let size = table
            .size_bytes
            .map_or(String::new(), |b| format!("  {:>10}", bytes(b)));
        out.line(format!(
            "  {:<width$}  {:>10} rows{size}",
            table.name,
            format!("{approx}{}", table.rows)
        ));
        for index in &table.indexes {
            let mut traits = Vec::new();
            if index.unique {
                traits.push("unique");
            }
            if index.partial {
                traits.push("partial");
            }
            match index.origin.as_str() {
                "pk" => traits.push("primary key"),
                "u" => traits.push("UNIQUE constraint"),
                _ => {}
            }
            let traits = if traits.is_empty() {
                String::new()
            } else {
                format!("  [{}]", traits.join(", "))
            };
            out.line(format!(
                "    index {} ({}){traits}",
                index.name,
                index.columns.join(", ")
            ));
        }
    }
    Ok(exit::OK)
}

/// The newest backup of the configured database (none when the folder cannot be read).
fn latest_backup(ctx: &Context) -> Option<LatestBackup> {
    let entry = safety::latest(ctx).ok()??;
    let meta = entry.meta?;
    Some(LatestBackup {
        path: entry.path,
        size_bytes: entry.size,
        created_at: Some(meta.created_at),
        schema_version: meta.schema_version.map(|v| v as i32),
        reason: Some(meta.reason),
    })
}

/// "57.3 KiB".
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
