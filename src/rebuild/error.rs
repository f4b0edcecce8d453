//! `RebuildError`: everything a rebuild can refuse or fail with. Each variant names the table (and
//! column or object), keeps the SQLite cause as `source`, and maps to a stable code, an exit status
//! and a hint through three exhaustive matches.

use crate::exit;

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
            RebuildError::Simulation { .. } => "rebuild-simulation-failed",
            RebuildError::RoundTrip { .. } => "rebuild-round-trip",
            RebuildError::Header { .. } => "rebuild-header-invalid",
            RebuildError::Sqlite { source, .. } if is_busy(source) => "database-locked",
            RebuildError::Sqlite { .. } => "rebuild-sqlite",
        }
    }

    /// Exit status (`dbtool::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RebuildError::InvalidChange { .. }
            | RebuildError::TableNotFound { .. }
            | RebuildError::ColumnNotFound { .. }
            | RebuildError::Conflict { .. } => exit::USAGE,
            RebuildError::LossyDown { .. } => exit::NEEDS_CONFIRMATION,
            RebuildError::Sqlite { source, .. } if is_busy(source) => exit::LOCKED,
            RebuildError::Unsupported { .. }
            | RebuildError::Parse { .. }
            | RebuildError::ColumnInUse { .. }
            | RebuildError::BrokenSchema { .. }
            | RebuildError::TableChanged { .. }
            | RebuildError::CheckViolated { .. }
            | RebuildError::RowsViolateCheck { .. }
            | RebuildError::NullsPresent { .. }
            | RebuildError::Duplicates { .. }
            | RebuildError::ForeignKeyViolated { .. }
            | RebuildError::ForeignKeyTarget { .. }
            | RebuildError::TypeMismatch { .. }
            | RebuildError::ForeignKeysOn { .. }
            | RebuildError::Db(_)
            | RebuildError::ViewBroken { .. }
            | RebuildError::IntegrityFailed { .. }
            | RebuildError::Simulation { .. }
            | RebuildError::RoundTrip { .. }
            | RebuildError::Header { .. }
            | RebuildError::Sqlite { .. } => exit::FAILURE,
        }
    }

    /// What to do about it, where there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            RebuildError::InvalidChange { .. } => Some(
                "changes: --enum COL=a,b,c  --check COL=EXPR  --drop-check COL  --type COL=TYPE  --not-null COL[=FILL]  --nullable COL  --default COL=VALUE  --drop-default COL  --rename OLD=NEW  --drop COL  --add-fk COL=TABLE(COL)[:on-delete-action]  --drop-fk COL  --unique COL[,COL…]".into(),
            ),
            RebuildError::TableNotFound { .. } => Some("the table is looked up in the schema at the head of the migrations folder (create) or in the database (rebuild)".into()),
            RebuildError::Unsupported { .. } => None,
            RebuildError::ColumnNotFound { .. } => Some("column names are matched ignoring ASCII case; quote a name that contains = or , with double quotes".into()),
            RebuildError::Conflict { .. } => None,
            RebuildError::Parse { .. } => Some("write this migration by hand, or report the statement so dbtool learns to read it".into()),
            RebuildError::ColumnInUse { .. } => Some("drop or change those objects first (in an earlier migration), then rebuild".into()),
            RebuildError::BrokenSchema { .. } => Some("fix or drop the broken object first; SQLite's ALTER TABLE RENAME refuses to run while it exists".into()),
            RebuildError::TableChanged { .. } => Some("regenerate the rebuild with `dbtool create NAME --rebuild TABLE …` from the current migrations".into()),
            RebuildError::CheckViolated { .. } | RebuildError::RowsViolateCheck { .. } => Some("update or delete those rows first (a data migration), or keep the values allowed".into()),
            RebuildError::NullsPresent { column, .. } => Some(format!("give a fill value: --not-null {column}=VALUE, or backfill the NULLs first")),
            RebuildError::Duplicates { .. } => Some("remove the duplicates first (a data migration)".into()),
            RebuildError::ForeignKeyViolated { .. } => Some("fix or delete the orphan rows first, or choose another parent".into()),
            RebuildError::ForeignKeyTarget { .. } => Some("a foreign key must point at the parent's PRIMARY KEY or a UNIQUE column".into()),
            RebuildError::TypeMismatch { .. } => Some("convert those values first, or choose a type that holds them".into()),
            RebuildError::LossyDown { .. } => Some("pass --allow-lossy to write a down migration that says what it cannot restore".into()),
            RebuildError::ForeignKeysOn { .. } => Some("run the migration with `dbtool upgrade`, which turns foreign keys off before the transaction".into()),
            RebuildError::Db(_) => None,
            RebuildError::ViewBroken { .. } => Some("nothing was changed; change or drop the view first (in an earlier migration)".into()),
            RebuildError::IntegrityFailed { .. } => Some("nothing was changed; run `PRAGMA integrity_check` on the database".into()),
            RebuildError::Simulation { .. } => Some("nothing was written; SQLite's message (Caused by) names the object in the way: change or drop it in an earlier migration. If it looks like a dbtool bug, report it with the table's CREATE statement".into()),
            RebuildError::RoundTrip { .. } => Some("nothing was written; this is a dbtool bug, please report it with the table's CREATE statement".into()),
            RebuildError::Header { .. } => Some("the first comment lines of a generated rebuild are read by dbtool; restore them or regenerate the file".into()),
            RebuildError::Sqlite { source, .. } if is_busy(source) => Some("another process holds the database; retry, or raise the busy timeout".into()),
            RebuildError::Sqlite { .. } => None,
        }
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
