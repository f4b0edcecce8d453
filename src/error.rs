//! The crate's error at the top: one variant per module, each module's error below it with its
//! own stable codes. Nothing in the library below this file imports it; exit statuses and hints
//! are attached by the CLI (`src/cli/errors.rs`).

pub use crate::autogen::AutogenError;
pub use crate::backup::BackupError;
pub use crate::check::CheckError;
pub use crate::config::ConfigError;
pub use crate::db::{DbError, FkViolation};
pub use crate::migrate::MigrateError;
pub use crate::rebuild::RebuildError;

/// Each module's error, boxed: `Result<T, Error>` stays small wherever it is returned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error(transparent)]
    Db(Box<DbError>),
    #[error(transparent)]
    Migrate(Box<MigrateError>),
    #[error(transparent)]
    Check(Box<CheckError>),
    #[error(transparent)]
    Backup(Box<BackupError>),
    #[error(transparent)]
    Rebuild(Box<RebuildError>),
    #[error(transparent)]
    Autogen(Box<AutogenError>),
}

macro_rules! from_module_error {
    ($($variant:ident($error:ty)),*) => {$(
        impl From<$error> for Error {
            fn from(e: $error) -> Self {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}

from_module_error!(
    Config(ConfigError),
    Db(DbError),
    Migrate(MigrateError),
    Check(CheckError),
    Backup(BackupError),
    Rebuild(RebuildError),
    Autogen(AutogenError)
);

impl Error {
    /// Stable machine-readable code, printed as `error[code]` and in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(e) => e.code(),
            Error::Db(e) => e.code(),
            Error::Migrate(e) => e.code(),
            Error::Check(e) => e.code(),
            Error::Backup(e) => e.code(),
            Error::Rebuild(e) => e.code(),
            Error::Autogen(e) => e.code(),
        }
    }

    /// The database-layer error at the bottom of this one, if any.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            Error::Config(_) => None,
            Error::Db(e) => Some(e),
            Error::Migrate(e) => e.db(),
            Error::Check(e) => e.db(),
            Error::Backup(e) => e.db(),
            Error::Rebuild(e) => e.db(),
            Error::Autogen(e) => e.db(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
