//! Commands on a `postgres://` database: which of them have a meaning there. The commands
//! themselves are the same modules as on SQLite; the library picks the engine.

use dbtool::db::{DbError, PgUrl};
use dbtool::Error;

use super::Command;

/// Refuse, before anything runs, a command that has no meaning on PostgreSQL (with its own code,
/// `not-on-postgres`) or that this version does not do there yet.
pub fn refuse_unsupported(command: &Command, _url: &PgUrl) -> Result<(), Error> {
    let (what, reason) = match command {
        Command::Rebuild(_) => (
            "`dbtool rebuild`",
            "it rebuilds SQLite tables for what SQLite's ALTER TABLE cannot do; PostgreSQL's ALTER TABLE changes a table in place, so write the ALTER TABLE in a migration (`dbtool create`)",
        ),
        Command::Schema(_) | Command::Diff(_) => (
            "declared-schema authoring (`dbtool schema`, `dbtool diff`, `create --autogenerate`)",
            "its schema model is SQLite's so far",
        ),
        Command::Create(args) if args.autogenerate() => (
            "`dbtool create --autogenerate`",
            "its schema model is SQLite's so far",
        ),
        _ => return Ok(()),
    };
    Err(DbError::NotOnPostgres {
        what: what.to_string(),
        reason: reason.to_string(),
    }
    .into())
}
