//! Why `diff` or `create --autogenerate` refused or failed.

use std::path::PathBuf;

use crate::check::CheckError;
use crate::db::DbError;
use crate::migrate::MigrateError;
use crate::schema::declared::DeclaredError;

/// Exit statuses and hints are the CLI's (`src/cli/errors.rs`), keyed by [`AutogenError::code`].
#[derive(Debug, thiserror::Error)]
pub enum AutogenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("no declared schema: give --schema FILE, set DBTOOL_SCHEMA, add `schema = \"schema.sql\"` to dbtool.toml, or create ./schema.sql")]
    NoSchemaFile,
    #[error(transparent)]
    Declared(#[from] DeclaredError),
    #[error("{arg}: {reason}")]
    InvalidFlag { arg: String, reason: String },
    #[error("ambiguous rename: {what}")]
    AmbiguousRename {
        what: String,
        /// The flag for each reading.
        readings: Vec<String>,
    },
    #[error("the change drops what may hold data: {}", lost.join(", "))]
    WouldDrop { lost: Vec<String> },
    #[error("new NOT NULL column(s) without a default on an existing table: {}", columns.join(", "))]
    NeedsFill { columns: Vec<String> },
    #[error("generating the migration failed at `{step}`")]
    Step {
        step: String,
        #[source]
        source: Box<rusqlite::Error>,
    },
    #[error("generating the rebuild of table {table} failed")]
    Rebuild {
        table: String,
        #[source]
        source: Box<crate::rebuild::RebuildError>,
    },
    #[error("the generated migration does not reach the declared schema:\n{}", diff.join("\n"))]
    Unreachable { diff: Vec<String> },
    #[error("the generated migration failed its proof ({stage}); nothing was written:\n{}", detail.join("\n"))]
    ProofFailed { stage: String, detail: Vec<String> },
    #[error("the rehearsal on a copy of {data} failed ({stage}); nothing was written:\n{}", detail.join("\n"))]
    DataRehearsal {
        data: PathBuf,
        stage: String,
        detail: Vec<String>,
    },
}

impl AutogenError {
    /// The database-layer error at the bottom of this one, if any.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            AutogenError::Db(e) => Some(e),
            AutogenError::Migrate(e) => e.db(),
            AutogenError::Check(e) => e.db(),
            AutogenError::Rebuild { source, .. } => source.db(),
            _ => None,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AutogenError::Db(e) => e.code(),
            AutogenError::Migrate(e) => e.code(),
            AutogenError::Check(e) => e.code(),
            AutogenError::NoSchemaFile => "no-schema-file",
            AutogenError::Declared(DeclaredError::Read { .. }) => "schema-file-unreadable",
            AutogenError::Declared(DeclaredError::Statement { .. }) => "schema-file-invalid",
            AutogenError::InvalidFlag { .. } => "autogen-invalid-flag",
            AutogenError::AmbiguousRename { .. } => "ambiguous-rename",
            AutogenError::WouldDrop { .. } => "would-drop-data",
            AutogenError::NeedsFill { .. } => "needs-fill",
            AutogenError::Step { .. } => "autogen-failed",
            AutogenError::Rebuild { source, .. } => source.code(),
            AutogenError::Unreachable { .. } => "autogen-unreachable",
            AutogenError::ProofFailed { .. } => "proof-failed",
            AutogenError::DataRehearsal { .. } => "data-rehearsal-failed",
        }
    }
}
