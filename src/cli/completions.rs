//! `dbtool completions SHELL` and `dbtool man`: generated from the clap definitions, so they never
//! drift from `--help`.

use clap::CommandFactory;
use dbtool::Error;

use super::exit;

use super::{Cli, Context};

/// Print a shell completion script (see the README for where to put it)
#[derive(clap::Args)]
pub struct Args {
    /// bash, zsh, fish, powershell or elvish
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the man page (roff): `dbtool man > dbtool.1`
#[derive(clap::Args)]
pub struct ManArgs {}

pub fn run(_ctx: &Context, args: Args) -> Result<u8, Error> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "dbtool", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man(_ctx: &Context, _args: ManArgs) -> Result<u8, Error> {
    let command = Cli::command();
    clap_mangen::Man::new(command)
        .render(&mut std::io::stdout())
        .map_err(|e| {
            Error::from(dbtool::db::DbError::io(
                "writing the man page to",
                std::path::Path::new("stdout"),
                e,
            ))
        })?;
    Ok(exit::OK)
}
