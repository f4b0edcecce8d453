//! dbtool: migrations, table rebuilds and verified backups for SQLite and PostgreSQL.
//!
//! The library does the work and returns reports (all `serde::Serialize`); it never prints. The
//! `dbtool` binary is a thin layer that parses arguments, calls in here and renders the reports.
//!
//! Start with [`Migrator`] to migrate a database from a folder of `V{n}__{name}.sql` files;
//! [`check::Checker`] checks one (drift, the stairway of `verify`, rehearsals, data scripts).
#![forbid(unsafe_code)]

pub mod autogen;
pub mod backup;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod migrate;
pub mod rebuild;
pub mod schema;
pub mod sidefiles;
pub mod sql;

pub use check::Checker;
pub use error::{Error, Result};
pub use migrate::{DownTarget, Migrator, RunOptions, StampTarget, UpTarget};
