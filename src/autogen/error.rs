//! Why `diff` or `create --autogenerate` refused or failed.

use std::path::PathBuf;

use crate::exit;
use crate::schema::declared::DeclaredError;

#[derive(Debug, thiserror::Error)]
pub enum AutogenError {
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
    pub fn code(&self) -> &'static str {
        match self {
            AutogenError::NoSchemaFile => "no-schema-file",
            AutogenError::Declared(DeclaredError::Read { .. }) => "schema-file-unreadable",
            AutogenError::Declared(DeclaredError::Statement { .. }) => "schema-file-invalid",
            AutogenError::InvalidFlag { .. } => "invalid-flag",
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

    pub fn exit_code(&self) -> u8 {
        match self {
            AutogenError::InvalidFlag { .. } => exit::USAGE,
            AutogenError::AmbiguousRename { .. }
            | AutogenError::WouldDrop { .. }
            | AutogenError::NeedsFill { .. } => exit::NEEDS_CONFIRMATION,
            _ => exit::FAILURE,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            AutogenError::NoSchemaFile => {
                Some("write one from the migrations with `dbtool schema -o schema.sql`".into())
            }
            AutogenError::AmbiguousRename { readings, .. } => Some(format!(
                "say which: {} (or a `-- dbtool:renamed-from OLD` comment in the schema file)",
                readings.join(" or ")
            )),
            AutogenError::WouldDrop { .. } => Some(
                "nothing was written; add --allow-drop if losing it is intended, or declare a rename (--rename)"
                    .into(),
            ),
            AutogenError::NeedsFill { columns } => Some(format!(
                "nothing was written; give the existing rows a value: {} (an SQL expression over the table's columns), or a `-- dbtool:fill EXPR` comment on the column",
                columns
                    .iter()
                    .map(|c| format!("--fill {c}=EXPR"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            AutogenError::Declared(DeclaredError::Statement { .. }) => {
                Some("the declared schema must run on an empty database as it is".into())
            }
            _ => None,
        }
    }
}
