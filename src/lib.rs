//! dbtool: migrations, table rebuilds and verified backups for SQLite.
#![forbid(unsafe_code)]

pub mod exit;
pub mod rebuild;
