//! Authoring from a declared schema: `dbtool schema` (write one), `dbtool diff` (the SQL from the
//! migrations' head, or the live database, to it) and `dbtool create --autogenerate` (a migration
//! pair from that diff, proven before it is written).
//!
//! Invariants: nothing here touches the user's database or writes a file until the pair is
//! proven: the migrations plus the new up on a scratch database give the declared schema (the
//! one model of [`crate::schema::model`]), the down then gives the head again, and the up again
//! the declared schema; with `--data` the same on a copy of that database, row counts kept.
//! Renames are never guessed and drops are refused without `allow_drop`.

mod engine;
mod error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

pub use engine::{ChangeItem, Direction, Spec};
pub use error::AutogenError;

type Result<T, E = AutogenError> = std::result::Result<T, E>;

use crate::db::{self, DbError, OpenMode};
use crate::migrate::{
    self, apply_in_memory, Action, CreateReport, MigrationSet, Migrator, Operation, Plan, Step,
    UpTarget,
};
use crate::schema::declared::{self, Declared, Hint};
use crate::schema::{self as schema_mod, Model, Schema};

/// Where the "current" side of a diff comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FromSide {
    /// The schema at the head of the migrations folder (replayed on a scratch database).
    Migrations,
    /// The live database's schema.
    Database,
}

/// What the user said beyond the declared schema.
#[derive(Debug, Clone, Default)]
pub struct AutogenOptions {
    /// `users.name=full_name` (column) or `posts=articles` (table).
    pub renames: Vec<String>,
    /// `users.full_name=EXPR`.
    pub fills: Vec<String>,
    pub allow_drop: bool,
    /// Rehearse the pair on a copy of this database too.
    pub data: Option<PathBuf>,
}

/// A generated migration pair (SQL bodies, without the file headers).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pair {
    pub changes: Vec<ChangeItem>,
    pub up: String,
    pub down: String,
    /// What the down cannot bring back.
    pub lossy: Vec<String>,
}

impl Pair {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// `dbtool diff`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub from: FromSide,
    pub schema_file: PathBuf,
    pub differs: bool,
    pub changes: Vec<ChangeItem>,
    /// The SQL that takes the current side to the declared schema.
    pub sql: String,
}

/// `dbtool create --autogenerate`'s result; `created` is `None` when there was no difference.
#[derive(Debug, Clone, Serialize)]
pub struct AutogenReport {
    pub created: Option<CreateReport>,
    pub schema_file: PathBuf,
    pub changes: Vec<ChangeItem>,
    pub lossy: Vec<String>,
    /// Rows per table of the `--data` copy before the up, when rehearsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_rows: Option<BTreeMap<String, u64>>,
}

/// The migrations folder; a new project starts from its schema file, so no folder yet is no
/// migrations yet (`create` makes the folder when it writes).
fn migrations(migrator: &Migrator) -> Result<MigrationSet> {
    if migrator.migrations_dir().exists() {
        return Ok(migrator.load_migrations()?);
    }
    Ok(MigrationSet {
        dir: migrator.migrations_dir().to_path_buf(),
        migrations: Vec::new(),
    })
}

/// The schema of the current side as a scratch connection.
fn current(
    migrator: &Migrator,
    from: FromSide,
    busy_timeout: Duration,
) -> Result<(Connection, Option<MigrationSet>)> {
    match from {
        FromSide::Migrations => {
            let set = migrations(migrator)?;
            let conn = apply_in_memory(&set, UpTarget::Head)?;
            Ok((conn, Some(set)))
        }
        FromSide::Database => {
            let path = migrator.database();
            let live = db::open(path, OpenMode::ReadOnly, busy_timeout)?;
            let conn = schema_mod::replica(&live).map_err(|e| {
                DbError::sqlite(format!("copying the schema ({})", e.object), path, e.source)
            })?;
            Ok((conn, None))
        }
    }
}

/// `dbtool schema`: the schema at the head of the migrations (or of the live database) as a
/// declared-schema file.
pub fn dump(migrator: &Migrator, from: FromSide, busy_timeout: Duration) -> Result<String> {
    let (conn, _) = current(migrator, from, busy_timeout)?;
    let schema = Schema::read(&conn)
        .map_err(|e| DbError::sqlite("reading the schema", Path::new(":memory:"), e))?;
    Ok(schema_mod::dump(&schema))
}

/// Load the declared schema file.
pub fn load_declared(path: Option<&Path>) -> Result<Declared> {
    let path = path.ok_or(AutogenError::NoSchemaFile)?;
    Ok(declared::load(path)?)
}

/// `dbtool diff`.
pub fn diff(
    migrator: &Migrator,
    schema_file: Option<&Path>,
    from: FromSide,
    options: &AutogenOptions,
    busy_timeout: Duration,
) -> Result<DiffReport> {
    let declared = load_declared(schema_file)?;
    let (conn, _) = current(migrator, from, busy_timeout)?;
    // A preview writes nothing: drops are listed, not refused.
    let options = AutogenOptions {
        allow_drop: true,
        ..options.clone()
    };
    let pair = generate_up(&conn, &declared, &options)?;
    Ok(DiffReport {
        from,
        schema_file: declared.path.clone(),
        differs: !pair.changes.is_empty(),
        changes: pair.changes,
        sql: pair.sql,
    })
}

/// The spec of the up: flags first, then the schema file's hints.
fn up_spec(declared: &Declared, options: &AutogenOptions) -> Result<Spec> {
    let mut spec = Spec {
        allow_drop: options.allow_drop,
        ..Spec::default()
    };
    for arg in &options.renames {
        let bad = |reason: &str| AutogenError::InvalidFlag {
            arg: format!("--rename {arg}"),
            reason: reason.into(),
        };
        let (left, to) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected TABLE=NEW or TABLE.COLUMN=NEW"))?;
        let to = crate::sql::unquote(to.trim());
        match left.split_once('.') {
            Some((table, column)) => spec.column_renames.push((
                crate::sql::unquote(table.trim()),
                crate::sql::unquote(column.trim()),
                to,
            )),
            None => spec
                .table_renames
                .push((crate::sql::unquote(left.trim()), to)),
        }
    }
    for arg in &options.fills {
        let bad = |reason: &str| AutogenError::InvalidFlag {
            arg: format!("--fill {arg}"),
            reason: reason.into(),
        };
        let (left, expr) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected TABLE.COLUMN=EXPR"))?;
        let (table, column) = left
            .split_once('.')
            .ok_or_else(|| bad("expected TABLE.COLUMN=EXPR"))?;
        if expr.trim().is_empty() {
            return Err(bad("the expression is empty"));
        }
        spec.fills.insert(
            (
                table.trim().to_ascii_lowercase(),
                column.trim().to_ascii_lowercase(),
            ),
            expr.trim().to_string(),
        );
    }
    for hint in &declared.hints {
        match hint {
            Hint::TableRenamedFrom { table, from } => {
                if !spec
                    .table_renames
                    .iter()
                    .any(|(_, to)| to.eq_ignore_ascii_case(table))
                {
                    spec.table_renames.push((from.clone(), table.clone()));
                }
            }
            Hint::ColumnRenamedFrom {
                table,
                column,
                from,
            } => {
                if !spec.column_renames.iter().any(|(t, _, to)| {
                    t.eq_ignore_ascii_case(table) && to.eq_ignore_ascii_case(column)
                }) {
                    spec.column_renames
                        .push((table.clone(), from.clone(), column.clone()));
                }
            }
            Hint::Fill {
                table,
                column,
                expr,
            } => {
                spec.fills
                    .entry((table.to_ascii_lowercase(), column.to_ascii_lowercase()))
                    .or_insert_with(|| expr.clone());
            }
        }
    }
    // A hint that no longer applies (the rename is already in the migrations) is not an error.
    Ok(spec)
}

/// Drop renames whose source no longer exists but whose target does (already applied).
fn applicable(spec: &mut Spec, current: &Connection) -> Result<()> {
    let schema = Schema::read(current)
        .map_err(|e| DbError::sqlite("reading the schema", Path::new(":memory:"), e))?;
    spec.table_renames.retain(|(from, to)| {
        !(schema.find("table", from).is_none() && schema.find("table", to).is_some())
    });
    let has_col = |table: &str, col: &str| {
        schema
            .find("table", table)
            .and_then(|t| t.sql.as_deref())
            .and_then(|sql| crate::schema::ddl::parse_create_table(sql).ok())
            .is_some_and(|t| t.column(col).is_some())
    };
    let renames = spec.table_renames.clone();
    spec.column_renames.retain(|(table, from, to)| {
        // The table as it is named before the table renames run.
        let before = renames
            .iter()
            .find(|(_, t)| t.eq_ignore_ascii_case(table))
            .map_or(table.as_str(), |(f, _)| f.as_str());
        has_col(before, from) || !has_col(before, to)
    });
    Ok(())
}

fn generate_up(
    conn: &Connection,
    declared: &Declared,
    options: &AutogenOptions,
) -> Result<Direction> {
    let mut spec = up_spec(declared, options)?;
    applicable(&mut spec, conn)?;
    let work = replica(conn)?;
    engine::transform(&work, &declared.conn, &spec)
}

fn replica(conn: &Connection) -> Result<Connection> {
    schema_mod::replica(conn).map_err(|e| {
        DbError::sqlite(
            format!("copying the schema ({})", e.object),
            Path::new(":memory:"),
            e.source,
        )
        .into()
    })
}

/// Generate the up and the down from `conn` (the current side) to the declared schema.
pub fn generate(conn: &Connection, declared: &Declared, options: &AutogenOptions) -> Result<Pair> {
    let mut spec = up_spec(declared, options)?;
    applicable(&mut spec, conn)?;
    let work = replica(conn)?;
    let up = engine::transform(&work, &declared.conn, &spec)?;
    if up.changes.is_empty() {
        return Ok(Pair::default());
    }
    let head = replica(conn)?;
    let down_spec = Spec {
        table_renames: spec
            .table_renames
            .iter()
            .rev()
            .map(|(f, t)| (t.clone(), f.clone()))
            .collect(),
        column_renames: spec
            .column_renames
            .iter()
            .rev()
            .map(|(table, f, t)| {
                let old_table = spec
                    .table_renames
                    .iter()
                    .find(|(_, new)| new.eq_ignore_ascii_case(table))
                    .map_or(table.clone(), |(old, _)| old.clone());
                (old_table, t.clone(), f.clone())
            })
            .collect(),
        fills: BTreeMap::new(),
        allow_drop: true,
        force_rebuild: up
            .changes
            .iter()
            .filter(|c| c.change == "rebuild-table")
            .map(|c| {
                spec.table_renames
                    .iter()
                    .find(|(_, new)| new.eq_ignore_ascii_case(&c.object))
                    .map_or(c.object.clone(), |(old, _)| old.clone())
                    .to_ascii_lowercase()
            })
            .collect(),
        down: true,
    };
    let down = engine::transform(&work, &head, &down_spec)?;
    Ok(Pair {
        changes: up.changes,
        up: up.sql,
        down: down.sql,
        lossy: down.lossy,
    })
}

/// The file texts of a pair for migration `version`.
pub fn files(version: i32, description: &str, schema_file: &Path, pair: &Pair) -> (String, String) {
    let file = schema_file.file_name().map_or_else(
        || schema_file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut up = format!(
        "-- V{version:04}: {description}\n-- Generated by `dbtool create --autogenerate` from {file}, and proven on scratch\n-- databases: up gives the declared schema, down gives {prev} back, up again.\n-- dbtool runs it with foreign keys off, in one transaction.\n-- Changes:\n",
        prev = if version > 1 {
            format!("V{:04}", version - 1)
        } else {
            "the empty database".to_string()
        }
    );
    for c in &pair.changes {
        up.push_str(&format!("--   {} {} ({})\n", c.change, c.object, c.how));
    }
    up.push('\n');
    up.push_str(pair.up.trim_end());
    up.push('\n');
    let mut down = format!(
        "-- Undo V{version:04}: {description}\n-- Generated by `dbtool create --autogenerate`.\n"
    );
    for l in &pair.lossy {
        down.push_str(&format!("-- dbtool:lossy {l}\n"));
    }
    down.push('\n');
    down.push_str(pair.down.trim_end());
    down.push('\n');
    (up, down)
}

fn run(conn: &Connection, step: Step, operation: Operation) -> Result<()> {
    let plan = Plan {
        from: None,
        to: None,
        steps: vec![step],
    };
    migrate::run_plan(
        conn,
        Path::new(":memory:"),
        plan,
        operation,
        &mut |_, _, _| Ok(()),
    )?;
    Ok(())
}

fn step(action: Action, version: i32, name: &str, sql: &str) -> Step {
    Step {
        action,
        version,
        name: name.to_string(),
        path: None,
        sql: Some(sql.to_string()),
        checksum: 0,
        no_transaction: false,
    }
}

/// Replay the migrations, then up → declared, down → head, up → declared, on a scratch database.
pub fn prove(
    set: &MigrationSet,
    version: i32,
    name: &str,
    (up, down): (&str, &str),
    declared: &Declared,
) -> Result<()> {
    let conn = apply_in_memory(set, UpTarget::Head)?;
    let read = |c: &Connection| {
        Model::read(c).map_err(|e| DbError::sqlite("reading the schema", Path::new(":memory:"), e))
    };
    let head = read(&conn)?;
    let want = read(&declared.conn)?;
    let failed = |stage: &str, detail: Vec<String>| AutogenError::ProofFailed {
        stage: stage.into(),
        detail,
    };
    let stages = [
        (
            Action::Apply,
            up,
            Operation::Upgrade,
            &want,
            "the up",
            "the declared schema",
        ),
        (
            Action::Revert,
            down,
            Operation::Downgrade,
            &head,
            "the down",
            "the migrations' head",
        ),
        (
            Action::Apply,
            up,
            Operation::Upgrade,
            &want,
            "the up again",
            "the declared schema",
        ),
    ];
    for (action, sql, op, expected, stage, label) in stages {
        run(&conn, step(action, version, name, sql), op)
            .map_err(|e| failed(stage, vec![with_causes(&e)]))?;
        let diff = expected.diff(&read(&conn)?, label, &format!("after {stage}"));
        if !diff.is_empty() {
            return Err(failed(stage, diff.lines()));
        }
    }
    Ok(())
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn row_counts(conn: &Connection, path: &Path) -> Result<BTreeMap<String, u64>> {
    Ok(db::row_counts(conn, path)?
        .into_iter()
        .map(|(t, n)| (t.to_ascii_lowercase(), n))
        .collect())
}

/// The pair on a copy of `data`: pending migrations first, then the up keeps every row (tables
/// renamed are followed; dropped ones only with `allow_drop`), the down restores the counts.
#[allow(clippy::too_many_arguments)]
fn rehearse_data(
    set: &MigrationSet,
    data: &Path,
    busy_timeout: Duration,
    version: i32,
    name: &str,
    (up, down): (&str, &str),
    renames: &[(String, String)],
    allow_drop: bool,
) -> Result<BTreeMap<String, u64>> {
    let failed = |stage: &str, detail: Vec<String>| AutogenError::DataRehearsal {
        data: data.to_path_buf(),
        stage: stage.into(),
        detail,
    };
    let copy = crate::check::scratch_copy(data, busy_timeout, "autogen")?;
    let (conn, path) = (&copy.conn, copy.path.as_path());
    let applied = migrate::read_history(conn, path)?;
    let pending = migrate::plan_upgrade(set, &applied, UpTarget::Head)?;
    if !pending.is_empty() {
        migrate::run_plan(conn, path, pending, Operation::Upgrade, &mut |_, _, _| {
            Ok(())
        })
        .map_err(|e| failed("the pending migrations", vec![with_causes(&e)]))?;
    }
    let before = row_counts(conn, path)?;
    run(
        conn,
        step(Action::Apply, version, name, up),
        Operation::Upgrade,
    )
    .map_err(|e| failed("the up", vec![with_causes(&e)]))?;
    let after = row_counts(conn, path)?;
    let mut lost = Vec::new();
    for (table, n) in &before {
        let now = renames
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(table))
            .map_or(table.clone(), |(_, to)| to.to_ascii_lowercase());
        match after.get(&now) {
            Some(m) if m == n => {}
            Some(m) => lost.push(format!("table {table}: {n} rows before the up, {m} after")),
            None if allow_drop => {}
            None => lost.push(format!("table {table} ({n} rows) is gone after the up")),
        }
    }
    if !lost.is_empty() {
        return Err(failed("the up does not keep every row", lost));
    }
    run(
        conn,
        step(Action::Revert, version, name, down),
        Operation::Downgrade,
    )
    .map_err(|e| failed("the down", vec![with_causes(&e)]))?;
    let back = row_counts(conn, path)?;
    let differ: Vec<String> = before
        .iter()
        .filter(|(t, n)| back.get(*t) != Some(*n) && (after.contains_key(*t) || !allow_drop))
        .map(|(t, n)| {
            format!(
                "table {t}: {n} rows before the up, {} after the down",
                back.get(t).map_or("none".into(), |m| m.to_string())
            )
        })
        .collect();
    if !differ.is_empty() {
        return Err(failed("the down does not restore the row counts", differ));
    }
    Ok(before)
}

/// `dbtool create "…" --autogenerate`: generate, prove, (rehearse on `--data`), then write.
pub fn create(
    migrator: &Migrator,
    description: &str,
    schema_file: Option<&Path>,
    options: &AutogenOptions,
    busy_timeout: Duration,
) -> Result<AutogenReport> {
    let declared = load_declared(schema_file)?;
    let set = migrations(migrator)?;
    let conn = apply_in_memory(&set, UpTarget::Head)?;
    let pair = generate(&conn, &declared, options)?;
    let mut report = AutogenReport {
        created: None,
        schema_file: declared.path.clone(),
        changes: pair.changes.clone(),
        lossy: pair.lossy.clone(),
        data_rows: None,
    };
    if pair.is_empty() {
        return Ok(report);
    }
    let slug = migrate::slugify(description);
    let version = set.head().map_or(1, |m| m.version + 1);
    let (up, down) = files(version, description, &declared.path, &pair);
    prove(&set, version, &slug, (&up, &down), &declared)?;
    if let Some(data) = &options.data {
        let mut spec = up_spec(&declared, options)?;
        applicable(&mut spec, &conn)?;
        report.data_rows = Some(rehearse_data(
            &set,
            data,
            busy_timeout,
            version,
            &slug,
            (&up, &down),
            &spec.table_renames,
            options.allow_drop,
        )?);
    }
    let created = migrator.create_with(description, |v| {
        if v == version {
            (up.clone(), down.clone())
        } else {
            files(v, description, &declared.path, &pair)
        }
    })?;
    report.created = Some(created);
    Ok(report)
}
