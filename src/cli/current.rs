//! `dbtool current`.

use dbtool::Error;

use super::exit;

use super::Context;

/// Show the database's current version and whether it is head
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<u8, Error> {
    let report = ctx.migrator().current()?;
    let out = &ctx.out;
    if out.json {
        out.json(&report);
        return Ok(exit::OK);
    }
    match (report.version, &report.name) {
        (Some(version), Some(name)) => {
            let state = if report.is_head {
                " (head)".to_string()
            } else {
                format!(
                    " ({} pending, head is {})",
                    report.pending.len(),
                    report.head.map_or("none".into(), |h| h.to_string())
                )
            };
            out.line(format!("{version} {name}{state}"));
        }
        _ => out.line(format!(
            "no migrations applied ({} pending)",
            report.pending.len()
        )),
    }
    Ok(exit::OK)
}
