//! `RebuildError`: everything a rebuild can refuse or fail with. Each variant names the table (and
//! column or object), keeps the SQLite cause as `source`, and maps to a stable code, an exit status
//! and a hint through three exhaustive matches.

/// A value that blocks a change, with how many rows hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValueCount {
    pub value: String,
    pub rows: i64,
}

fn list(values: &[ValueCount]) -> String {
    values
        .iter()
        .map(|v| {
            format!(
                "{} ({} row{})",
                v.value,
                v.rows,
                if v.rows == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("invalid change {arg:?}: {reason}")]
    InvalidChange { arg: String, reason: String },
    #[error("table {table:?} does not exist")]
    TableNotFound { table: String },
    #[error("cannot rebuild {table:?}: {reason}")]
    Unsupported { table: String, reason: String },
    #[error("table {table:?} has no column {column:?} (change {change})")]
    ColumnNotFound {
        table: String,
        column: String,
        change: String,
    },
    #[error("change {change} on table {table:?} does nothing or conflicts: {reason}")]
    Conflict {
        table: String,
        change: String,
        reason: String,
    },
    #[error("cannot read the CREATE TABLE statement of {table:?}: {reason}")]
    Parse { table: String, reason: String },
    #[error("cannot drop or change column {table}.{column}: {} uses it", users.join(", "))]
    ColumnInUse {
        table: String,
        column: String,
        users: Vec<String>,
    },
    #[error("schema object {object} is broken before the rebuild of {table:?}")]
    BrokenSchema {
        table: String,
        object: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("table {table:?} changed since this rebuild was generated (DDL hash {actual}, file expects {expected})")]
    TableChanged {
        table: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{table}.{column} holds values the new CHECK ({check}) rejects: {}",
        list(values)
    )]
    CheckViolated {
        table: String,
        column: String,
        check: String,
        values: Vec<ValueCount>,
    },
    #[error("{table}: {rows} row{} violate the new CHECK ({check})", if *rows == 1 { "" } else { "s" })]
    RowsViolateCheck {
        table: String,
        check: String,
        rows: i64,
    },
    #[error("{table}.{column} cannot become NOT NULL: {rows} row{} hold NULL and no fill value was given", if *rows == 1 { "" } else { "s" })]
    NullsPresent {
        table: String,
        column: String,
        rows: i64,
    },
    #[error("{table}: UNIQUE ({}) is violated by duplicates: {}", columns.join(", "), list(examples))]
    Duplicates {
        table: String,
        columns: Vec<String>,
        examples: Vec<ValueCount>,
    },
    #[error("{table}.{column}: {rows} row{} point at no row of {parent} (new foreign key); for example {}", if *rows == 1 { "" } else { "s" }, examples.join(", "))]
    ForeignKeyViolated {
        table: String,
        column: String,
        parent: String,
        rows: i64,
        examples: Vec<String>,
    },
    #[error("new foreign key {table}.{column} → {parent}: {reason}")]
    ForeignKeyTarget {
        table: String,
        column: String,
        parent: String,
        reason: String,
    },
    #[error(
        "{table}.{column}: values do not fit the STRICT type {ty}: {}",
        list(values)
    )]
    TypeMismatch {
        table: String,
        column: String,
        ty: String,
        values: Vec<ValueCount>,
    },
    #[error("the down migration of this rebuild of {table:?} cannot restore everything: {}", reasons.join("; "))]
    LossyDown { table: String, reasons: Vec<String> },
    #[error("foreign keys are still ON for the rebuild of {table:?}; DROP TABLE would delete or change rows of child tables")]
    ForeignKeysOn { table: String },
    #[error("view {view} would no longer compile after the rebuild of {table:?} (it uses what the change removes or renames)")]
    ViewBroken {
        table: String,
        view: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("integrity check of {table:?} failed after the rebuild: {}", problems.join("; "))]
    IntegrityFailed {
        table: String,
        problems: Vec<String>,
    },
    #[error("the copy of {table:?} differs from the table before it is dropped: {detail}")]
    CopyDiffers { table: String, detail: String },
    #[error("trying the generated rebuild of {table:?} on a copy of the schema failed at {step}")]
    Simulation {
        table: String,
        step: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("internal check failed: up then down of the rebuild of {table:?} does not give back the original schema: {detail}")]
    RoundTrip { table: String, detail: String },
    #[error("rebuild file header is invalid: {reason}")]
    Header { reason: String },
    /// The write path refused (locked, a new foreign-key violation) or SQLite failed under it.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{doing} for table {table:?} failed")]
    Sqlite {
        table: String,
        doing: String,
        #[source]
        source: rusqlite::Error,
    },
}

impl RebuildError {
    pub(crate) fn sqlite(
        table: &str,
        doing: impl Into<String>,
    ) -> impl FnOnce(rusqlite::Error) -> Self + 'static {
        let table = table.to_string();
        let doing = doing.into();
        move |source| RebuildError::Sqlite {
            table,
            doing,
            source,
        }
    }

    /// The database-layer error at the bottom of this one, if any.
    pub fn db(&self) -> Option<&crate::db::DbError> {
        match self {
            RebuildError::Db(e) => Some(e),
            _ => None,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RebuildError::InvalidChange { .. } => "rebuild-invalid-change",
            RebuildError::TableNotFound { .. } => "rebuild-table-not-found",
            RebuildError::Unsupported { .. } => "rebuild-unsupported-table",
            RebuildError::ColumnNotFound { .. } => "rebuild-column-not-found",
            RebuildError::Conflict { .. } => "rebuild-conflicting-change",
            RebuildError::Parse { .. } => "rebuild-ddl-unreadable",
            RebuildError::ColumnInUse { .. } => "rebuild-column-in-use",
            RebuildError::BrokenSchema { .. } => "rebuild-broken-schema",
            RebuildError::TableChanged { .. } => "rebuild-table-changed",
            RebuildError::CheckViolated { .. } => "rebuild-check-violated",
            RebuildError::RowsViolateCheck { .. } => "rebuild-check-violated",
            RebuildError::NullsPresent { .. } => "rebuild-nulls-present",
            RebuildError::Duplicates { .. } => "rebuild-duplicates",
            RebuildError::ForeignKeyViolated { .. } => "rebuild-foreign-key-violated",
            RebuildError::ForeignKeyTarget { .. } => "rebuild-foreign-key-target",
            RebuildError::TypeMismatch { .. } => "rebuild-type-mismatch",
            RebuildError::LossyDown { .. } => "rebuild-lossy-down",
            RebuildError::ForeignKeysOn { .. } => "rebuild-foreign-keys-on",
            RebuildError::Db(e) => e.code(),
            RebuildError::ViewBroken { .. } => "rebuild-view-broken",
            RebuildError::IntegrityFailed { .. } => "rebuild-integrity-check",
            RebuildError::CopyDiffers { .. } => "rebuild-copy-differs",
            RebuildError::Simulation { .. } => "rebuild-simulation-failed",
            RebuildError::RoundTrip { .. } => "rebuild-round-trip",
            RebuildError::Header { .. } => "rebuild-header-invalid",
            RebuildError::Sqlite { source, .. } if is_busy(source) => "database-locked",
            RebuildError::Sqlite { .. } => "sqlite",
        }
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    crate::db::SqliteFailure::of(e) == crate::db::SqliteFailure::Busy
}
