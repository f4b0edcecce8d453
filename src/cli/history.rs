//! `dbtool history [--verbose]`.

use dbtool::migrate::MigrationState;
use dbtool::Error;

use super::exit;

use super::Context;

/// List every migration, oldest first, with its state
#[derive(clap::Args)]
pub struct Args {
    /// Add file paths and checksums
    #[arg(long, short = 'v')]
    verbose: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8, Error> {
    let report = ctx.migrator().status()?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    if report.entries.is_empty() {
        out.line(format!("no migrations in {}", out.path(&report.migrations)));
        return Ok(exit::OK);
    }
    let width = report
        .entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.line(format!(
        "  {:>7}  {:<width$}  {:<20}  state",
        "version", "name", "applied at (UTC)"
    ));
    for entry in &report.entries {
        let applied = entry
            .applied_on
            .map(|t| {
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    t.year(),
                    t.month() as u8,
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                )
            })
            .unwrap_or_default();
        let mut state = entry.state.as_str().to_string();
        if entry.current {
            state.push_str(" (current)");
        }
        if Some(entry.version) == report.head && entry.state != MigrationState::AppliedFileMissing {
            state.push_str(" (head)");
        }
        let mark = if entry.current { ">" } else { " " };
        out.line(format!(
            "{mark} {:>7}  {:<width$}  {:<20}  {state}",
            entry.version, entry.name, applied
        ));
        if args.verbose {
            if let Some(up) = &entry.up_path {
                out.line(format!("{:>11}up:   {}", "", out.path(up)));
            }
            match &entry.down_path {
                Some(down) => out.line(format!("{:>11}down: {}", "", out.path(down))),
                None if entry.up_path.is_some() => out.line(format!("{:>11}down: (none)", "")),
                None => {}
            }
            if let Some(sum) = &entry.file_checksum {
                out.line(format!("{:>11}checksum (file):     {sum}", ""));
            }
            if let Some(sum) = &entry.recorded_checksum {
                out.line(format!("{:>11}checksum (recorded): {sum}", ""));
            }
        }
    }
    Ok(exit::OK)
}
