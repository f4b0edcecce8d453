//! `dbtool deploy-script`: print the single-host deploy recipe (scripts/deploy.sh), so it ships
//! with the binary and matches its version.

use dbtool::Error;

use super::exit;

use super::Context;

/// The deploy recipe, embedded at build time.
pub const SCRIPT: &str = include_str!("../../scripts/deploy.sh");

/// Print the deploy script (status, rehearse, upgrade with backup, restart the systemd unit, print
/// the restore command if it does not come back): `dbtool deploy-script > deploy.sh`
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> Result<u8, Error> {
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({ "script": SCRIPT }));
    } else {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout
            .write_all(SCRIPT.as_bytes())
            .and_then(|()| stdout.flush())
        {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::from(dbtool::db::DbError::io(
                    "writing the script to",
                    std::path::Path::new("stdout"),
                    e,
                )));
            }
        }
    }
    Ok(exit::OK)
}
