//! dbtool: migrations, table rebuilds and verified backups for SQLite.
