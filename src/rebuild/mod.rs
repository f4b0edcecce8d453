//! Table rebuilds: SQLite's 12-step procedure for the schema changes `ALTER TABLE` cannot make
//! (CHECK-constraint enums, types, nullability, defaults, dropping constrained columns, foreign
//! keys, UNIQUE), generated as reviewable SQL and run with nothing lost.
//!
//! Flow: [`RebuildSpec`] (the changes) + a connection holding the schema → [`generate()`] (edits the
//! table's `CREATE TABLE` text with the [`crate::sql`] lexer and [`crate::schema::ddl`] parser, renders up and down SQL, and
//! proves them on an in-memory replica) → [`run`] (preflight checks that refuse before any DDL,
//! the SQL, post-checks, `ANALYZE`). [`lint()`] warns about hand-written migrations that should
//! have been rebuilds.
//!
//! Invariants: nothing here prints; the generated SQL never renames the old table, never uses
//! CAST, and carries a guard that aborts it when run with foreign keys ON or on a table that
//! changed since it was generated.

pub mod edit;
mod error;
pub mod generate;
pub mod lint;
mod proof;
pub mod run;
pub mod schema;
pub mod spec;

pub use error::{RebuildError, ValueCount};
pub use generate::{generate, GenerateOptions, Generated};
pub use lint::{lint, LintWarning};
pub use proof::{prove_copy, Copied, CopyCheck, CopyProof};
pub use run::{postcheck, preflight, Preflight, RebuildFile};
pub use spec::{Change, RebuildSpec};
