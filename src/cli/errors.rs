//! What the command line adds to the library's errors: the exit status and the hint. Both are
//! keyed by the error's stable code (one code per situation), so an application embedding the
//! library gets no advice about flags it does not have, and every code has exactly one exit
//! status and one hint. A few hints depend on the error's details; they are worked out first.

use dbtool::autogen::AutogenError;
use dbtool::backup::error::is_out_of_space;
use dbtool::backup::BackupError;
use dbtool::check::{CheckError, ScriptKind};
use dbtool::db::{DbError, SqliteFailure};
use dbtool::migrate::MigrateError;
use dbtool::Error;

use super::exit;

/// One row per code: the exit status and the hint (if there is something useful to say).
pub(crate) const CODES: &[(&str, u8, Option<&str>)] = &[
    // configuration and command line
    ("config-read", exit::FAILURE, None),
    ("config-invalid", exit::FAILURE, Some("known keys: database, migrations, schema, busy_timeout_ms, and [backup] dir, keep, keep_days")),
    ("unsupported-url", exit::USAGE, Some("use sqlite:PATH, sqlite://PATH, sqlite:///ABS/PATH, a plain path, or postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME")),
    ("invalid-url", exit::USAGE, Some("the form is postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?PARAM=VALUE…]; %-encode @ : / in the password, or give it in PGPASSWORD")),
    ("postgres-not-built", exit::USAGE, Some("build dbtool with its default features (`cargo install dbtool` does)")),
    ("invalid-target", exit::USAGE, Some("targets: head, a version (3), +N / -N relative steps, base (see dbtool history)")),
    ("empty-name", exit::USAGE, Some("describe the change, e.g. \"add user preferences\"")),
    // the database file
    ("database-missing", exit::FAILURE, Some("create it with `dbtool init`, or pass --database PATH (`dbtool config` shows what was resolved)")),
    ("not-a-database", exit::FAILURE, Some("check --database, DATABASE_URL and dbtool.toml (`dbtool config`); a folder is not a database")),
    ("database-locked", exit::LOCKED, Some("another process holds a lock on it (a writer, or a reader blocking a checkpoint or restore); retry when it is done, or raise --busy-timeout (milliseconds)")),
    ("sqlite", exit::FAILURE, None),
    // a PostgreSQL server
    ("cannot-connect", exit::FAILURE, Some("is the server running and reachable at that host and port? (`pg_isready -h HOST -p PORT` tells)")),
    ("authentication-failed", exit::FAILURE, Some("check the user and password in the URL (or PGPASSWORD); nothing was changed")),
    ("permission-denied", exit::FAILURE, Some("the role in the URL lacks this privilege: grant it, or use a role that owns the database; nothing was changed")),
    ("postgres", exit::FAILURE, None),
    ("not-on-postgres", exit::USAGE, None),
    ("io", exit::FAILURE, None),
    ("symlink-refused", exit::FAILURE, Some("dbtool creates this file itself: remove the link (who planted it?) and run the command again")),
    ("transaction-left-open", exit::FAILURE, Some("a -- dbtool:no-transaction file must end every transaction it begins")),
    ("foreign-keys-on", exit::FAILURE, None),
    ("foreign-key-violation", exit::FAILURE, Some("nothing was committed; fix the rows left orphaned (or add the missing parents) and run again")),
    ("unmanaged-database", exit::FAILURE, Some("if its schema matches the migrations, adopt it with `dbtool stamp head` (or `dbtool stamp VERSION`)")),
    ("history-damaged", exit::FAILURE, Some("inspect it with `sqlite3 DB 'SELECT * FROM refinery_schema_history'`; restore a backup or repair the row, then `dbtool history`")),
    // the migrations folder and history
    ("migrations-dir-missing", exit::FAILURE, Some("pass --migrations DIR, set DBTOOL_MIGRATIONS, or create the folder")),
    ("bad-migration-name", exit::FAILURE, Some("rename it (e.g. V0007__add_tags.sql) or move it out of the migrations folder")),
    ("not-utf8", exit::FAILURE, Some("save the file as UTF-8")),
    ("duplicate-version", exit::FAILURE, Some("renumber one of them (branches merged with the same version?)")),
    ("orphan-down", exit::FAILURE, Some("rename it to match its up migration")),
    ("edited-migration", exit::FAILURE, Some("restore the file as it was applied (git log -p on it) and put the change in a new migration (`dbtool create`)")),
    ("missing-migration-file", exit::FAILURE, Some("restore the file from version control (git log --all -- migrations/), or check out the branch that added it")),
    ("out-of-order", exit::FAILURE, Some("renumber the file above the current version (a merged branch?), or record it with `dbtool stamp` if its changes are already in the database")),
    ("database-ahead", exit::FAILURE, Some("this checkout is older than the database: pull the newer migrations, or pass --migrations")),
    ("missing-down", exit::FAILURE, Some("write the down file, or restore a backup instead of downgrading (dbtool restore)")),
    ("irreversible", exit::FAILURE, Some("restore a backup taken before it was applied (dbtool backups)")),
    ("migration-failed", exit::FAILURE, Some("nothing was applied: fix the file and run the command again")),
    ("transaction-in-script", exit::FAILURE, Some("remove BEGIN/COMMIT/ROLLBACK: dbtool runs each plan (and each exec script) in its own transaction; nothing was applied")),
    ("no-transaction-failed", exit::FAILURE, Some("check the database by hand, finish or undo the statements, then record it with `dbtool stamp`")),
    ("stopped", exit::FAILURE, None),
    ("file-exists", exit::FAILURE, None),
    // checks
    ("scratch-dir", exit::FAILURE, Some("the copy goes to the temporary folder: point TMPDIR at a folder with room for the whole database")),
    ("copy-failed", exit::FAILURE, Some("the copy goes to the temporary folder: point TMPDIR at a folder with room for the whole database")),
    ("pg-copy-failed", exit::FAILURE, Some("the rehearsal copies the database with pg_dump | pg_restore into a scratch database on the same server: put pg_dump and pg_restore of the server's major version (or newer) on PATH, and give the role CREATEDB")),
    ("rehearsal-failed", exit::FAILURE, Some("the report above names the failing migration and why; fix it (or the data) and run `dbtool rehearse` again")),
    ("script-unreadable", exit::FAILURE, None),
    ("script-not-utf8", exit::FAILURE, Some("save the file as UTF-8")),
    ("script-failed", exit::FAILURE, Some("nothing was changed (the transaction was rolled back); fix the script and try it with --dry-run")),
    ("seed-failed", exit::FAILURE, Some("nothing was changed: the database is as it was before the reset; fix the seed file and run the reset again")),
    // backups
    ("backup-dir-unusable", exit::FAILURE, Some("choose a writable folder with --backup-dir, DBTOOL_BACKUP_DIR or `[backup] dir` in dbtool.toml")),
    ("backup-write-failed", exit::FAILURE, Some("check free space and permissions of the backup folder")),
    ("backup-read-failed", exit::FAILURE, None),
    ("snapshot-inconsistent", exit::FAILURE, Some("this is a bug in dbtool or SQLite; please report it with the database's size")),
    ("backup-not-found", exit::FAILURE, Some("`dbtool backups` lists the backups and the folder they live in")),
    ("not-a-backup", exit::FAILURE, Some("dbtool backups start with a metadata frame; a plain .zst of a database can be restored with `zstd -d` and copied by hand")),
    ("backup-format-unsupported", exit::FAILURE, Some("upgrade dbtool to read this backup")),
    ("backup-corrupt", exit::FAILURE, Some("this backup cannot be trusted; pick another one from `dbtool backups`")),
    ("backup-hash-mismatch", exit::FAILURE, Some("this backup cannot be trusted; pick another one from `dbtool backups`")),
    ("backup-not-sqlite", exit::FAILURE, Some("this backup cannot be trusted; pick another one from `dbtool backups`")),
    ("backup-not-pg-archive", exit::FAILURE, Some("this backup cannot be trusted; pick another one from `dbtool backups`")),
    ("backup-other-engine", exit::FAILURE, Some("a backup restores into a database of the engine it was taken from; check --database and DATABASE_URL (`dbtool config`)")),
    ("pg-tool-missing", exit::FAILURE, Some("install PostgreSQL's client tools (Debian/Ubuntu: `apt-get install postgresql-client`) and put pg_dump and pg_restore on PATH")),
    ("pg-dump-too-old", exit::FAILURE, Some("install the client tools of the server's major version or newer and put them first on PATH (`pg_dump --version`)")),
    ("pg-tool-failed", exit::FAILURE, Some("nothing was changed; the tool's own message is above")),
    ("database-in-use", exit::LOCKED, Some("nothing was changed; disconnect the application (or stop it) and run the command again")),
    ("restore-mismatch", exit::FAILURE, Some("nothing was changed: the database is as it was; check the backup with `dbtool backups verify` and report this if it passes")),
    ("backup-integrity-failed", exit::FAILURE, Some("the database was already damaged when this backup was taken; try an older backup")),
    ("backup-different-database", exit::NEEDS_CONFIRMATION, Some("pass --force if you really mean to restore it over this database")),
    ("no-backups", exit::FAILURE, Some("take one with `dbtool backup`")),
    ("needs-confirmation", exit::NEEDS_CONFIRMATION, Some("no terminal to ask on: pass --yes to confirm")),
    ("declined", exit::NEEDS_CONFIRMATION, None),
    // rebuilds
    ("rebuild-invalid-change", exit::USAGE, Some("changes: --enum COL=a,b,c  --check COL=EXPR  --drop-check COL  --type COL=TYPE  --not-null COL[=FILL]  --nullable COL  --default COL=VALUE  --drop-default COL  --rename OLD=NEW  --drop COL  --add-fk COL=TABLE(COL)[:on-delete-action]  --drop-fk COL  --unique COL[,COL…]")),
    ("rebuild-table-not-found", exit::USAGE, Some("the table is looked up in the schema at the head of the migrations folder (create) or in the database (rebuild)")),
    ("rebuild-unsupported-table", exit::FAILURE, None),
    ("rebuild-column-not-found", exit::USAGE, Some("column names are matched ignoring ASCII case; quote a name that contains = or , with double quotes")),
    ("rebuild-conflicting-change", exit::USAGE, None),
    ("rebuild-ddl-unreadable", exit::FAILURE, Some("write this migration by hand, or report the statement so dbtool learns to read it")),
    ("rebuild-column-in-use", exit::FAILURE, Some("drop or change those objects first (in an earlier migration), then rebuild")),
    ("rebuild-broken-schema", exit::FAILURE, Some("fix or drop the broken object first; SQLite's ALTER TABLE RENAME refuses to run while it exists")),
    ("rebuild-table-changed", exit::FAILURE, Some("regenerate the rebuild with `dbtool create NAME --rebuild TABLE …` from the current migrations")),
    ("rebuild-check-violated", exit::FAILURE, Some("update or delete those rows first (a data migration), or keep the values allowed")),
    ("rebuild-nulls-present", exit::FAILURE, Some("give a fill value (--not-null COLUMN=VALUE), or backfill the NULLs first")),
    ("rebuild-duplicates", exit::FAILURE, Some("remove the duplicates first (a data migration)")),
    ("rebuild-foreign-key-violated", exit::FAILURE, Some("fix or delete the orphan rows first, or choose another parent")),
    ("rebuild-foreign-key-target", exit::FAILURE, Some("a foreign key must point at the parent's PRIMARY KEY or a UNIQUE column")),
    ("rebuild-type-mismatch", exit::FAILURE, Some("convert those values first, or choose a type that holds them")),
    ("rebuild-lossy-down", exit::NEEDS_CONFIRMATION, Some("pass --allow-lossy to write a down migration that says what it cannot restore")),
    ("rebuild-foreign-keys-on", exit::FAILURE, Some("run the migration with `dbtool upgrade`, which turns foreign keys off before the transaction")),
    ("rebuild-view-broken", exit::FAILURE, Some("nothing was changed; change or drop the view first (in an earlier migration)")),
    ("rebuild-integrity-check", exit::FAILURE, Some("nothing was changed; run `PRAGMA integrity_check` on the database")),
    ("rebuild-copy-differs", exit::FAILURE, Some("nothing was changed; a trigger or a hand edit of the file may change rows as they are copied; if not, report it as a dbtool bug")),
    ("rebuild-simulation-failed", exit::FAILURE, Some("nothing was written; SQLite's message (caused by) names the object in the way: change or drop it in an earlier migration. If it looks like a dbtool bug, report it with the table's CREATE statement")),
    ("rebuild-round-trip", exit::FAILURE, Some("nothing was written; this is a dbtool bug, please report it with the table's CREATE statement")),
    ("rebuild-header-invalid", exit::FAILURE, Some("the first comment lines of a generated rebuild are read by dbtool; restore them or regenerate the file")),
    // authoring from a declared schema
    ("no-schema-file", exit::FAILURE, Some("write one from the migrations with `dbtool schema -o schema.sql`, or pass --schema FILE")),
    ("schema-file-unreadable", exit::FAILURE, Some("pass --schema FILE, set DBTOOL_SCHEMA or `schema` in dbtool.toml (`dbtool config` shows what was resolved)")),
    ("schema-file-invalid", exit::FAILURE, Some("the declared schema must run on an empty database as it is")),
    ("autogen-invalid-flag", exit::USAGE, Some("--rename TABLE.OLD=NEW (a column) or OLD=NEW (a table); --fill TABLE.COLUMN=EXPR")),
    ("ambiguous-rename", exit::NEEDS_CONFIRMATION, Some("say which with --rename, --allow-drop or a `-- dbtool:renamed-from OLD` comment in the schema file")),
    ("would-drop-data", exit::NEEDS_CONFIRMATION, Some("nothing was written; add --allow-drop if losing it is intended, or declare a rename (--rename)")),
    ("needs-fill", exit::NEEDS_CONFIRMATION, Some("nothing was written; give the existing rows a value with --fill TABLE.COLUMN=EXPR or a `-- dbtool:fill EXPR` comment on the column")),
    ("autogen-failed", exit::FAILURE, Some("nothing was written; SQLite's message (caused by) names what is in the way")),
    ("autogen-unreachable", exit::FAILURE, Some("nothing was written; write this migration by hand (`dbtool create`), or report the schema so dbtool learns it")),
    ("proof-failed", exit::FAILURE, Some("nothing was written; the difference above is what the generated pair got wrong: please report it with the schema file")),
    ("data-rehearsal-failed", exit::FAILURE, Some("nothing was written; fix the rows (a data migration first) or change the declared schema")),
];

/// Hints for what checks find (`problem[code]`) that is not an error of its own.
const FINDING_HINTS: &[(&str, &str)] = &[
    (
        "integrity-check",
        "restore a backup first (`dbtool restore`); do not migrate a damaged file",
    ),
    (
        "leftover-temp-files",
        "the next dbtool command that writes to this database removes them (`dbtool backup` will do)",
    ),
];

fn row(code: &str) -> Option<&'static (&'static str, u8, Option<&'static str>)> {
    CODES.iter().find(|(c, _, _)| *c == code)
}

/// The process exit status for an error (see `exit`).
pub fn exit_status(e: &Error) -> u8 {
    row(e.code()).map_or(exit::FAILURE, |(_, status, _)| *status)
}

/// The hint for a code, when it does not depend on the error's details (problems and findings
/// in reports carry only their code).
pub fn hint_for_code(code: &str) -> Option<String> {
    let finding = || {
        FINDING_HINTS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, h)| *h)
    };
    row(code)
        .and_then(|(_, _, hint)| *hint)
        .or_else(finding)
        .map(str::to_string)
}

/// What the user can do about an error.
pub fn hint(e: &Error) -> Option<String> {
    detailed_hint(e).or_else(|| hint_for_code(e.code()))
}

/// Hints that depend on more than the code.
fn detailed_hint(e: &Error) -> Option<String> {
    if let Some(DbError::PermissionDenied { action, .. }) = e.db() {
        if action.starts_with(dbtool::check::CREATING_SCRATCH_DATABASE) {
            return Some(
                "check, verify and rehearse replay the migrations in a scratch database on the same server: give the role CREATEDB (ALTER ROLE … CREATEDB), or run them as a role that has it; nothing was changed"
                    .into(),
            );
        }
    }
    if let Some(db) = e.db() {
        if let DbError::Sqlite { .. } = db {
            return match db.sqlite_failure()? {
                SqliteFailure::ReadOnly => {
                    Some("check the permissions of the database file and its folder".into())
                }
                SqliteFailure::Full => Some("free some disk space; nothing was changed".into()),
                _ => None,
            };
        }
    }
    if let Some(BackupError::Write { source, .. }) = backup_error(e) {
        if is_out_of_space(source) {
            return Some(
                "the disk (or a file-size limit) is full: free space or choose another folder with --backup-dir"
                    .into(),
            );
        }
        match source.kind() {
            // `backup -o EXISTING`: backups never overwrite; free space is not the cause.
            std::io::ErrorKind::AlreadyExists => return Some(
                "backups never overwrite a file: choose another name, or remove the old file first"
                    .into(),
            ),
            std::io::ErrorKind::PermissionDenied => return Some(
                "check the permissions of the backup folder (or choose another with --backup-dir)"
                    .into(),
            ),
            _ => {}
        }
    }
    match e {
        Error::Autogen(a) => match a.as_ref() {
            AutogenError::AmbiguousRename { readings, .. } => Some(format!(
                "say which: {} (or a `-- dbtool:renamed-from OLD` comment in the schema file); nothing was written",
                readings.join(" or ")
            )),
            AutogenError::NeedsFill { columns } => Some(format!(
                "nothing was written; give the existing rows a value: {} (an SQL expression over the table's columns), or a `-- dbtool:fill EXPR` comment on the column",
                columns
                    .iter()
                    .map(|c| format!("--fill {c}=EXPR"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            _ => None,
        },
        Error::Migrate(m) => match m.as_ref() {
            MigrateError::MigrationFailed { source, .. } => {
                transaction_hint(&source.to_string(), "the file")
            }
            MigrateError::PostgresStatementFailed { source, .. } if source.sqlstate == "42501" => {
                Some("the role in the URL lacks a privilege this statement needs (the server's message says which): grant it, or run migrations as the role that owns the schema; nothing was applied".into())
            }
            MigrateError::PostgresStatementFailed { source, .. } if source.sqlstate == "55P04" => {
                Some("a value added with ALTER TYPE … ADD VALUE cannot be used until its transaction commits, and dbtool runs the whole plan in one: put the ADD VALUE in a file of its own that starts with `-- dbtool:no-transaction` (it then commits on its own), or upgrade in two steps (`dbtool upgrade VERSION`); nothing was applied".into())
            }
            MigrateError::PostgresStatementFailed { source, .. } if source.sqlstate == "25001" => {
                Some("CREATE INDEX CONCURRENTLY and its kind cannot run in a transaction: put it in a file of its own that starts with `-- dbtool:no-transaction`; nothing was applied".into())
            }
            MigrateError::NoTransactionFailed {
                own_transaction_rolled_back: true,
                ..
            } => Some(
                "nothing of this migration was applied: fix the file and run the command again"
                    .into(),
            ),
            _ => None,
        },
        Error::Check(c) => match c.as_ref() {
            CheckError::ScriptFailed {
                kind: ScriptKind::Script,
                source,
                ..
            } => transaction_hint(&source.to_string(), "the script"),
            _ => None,
        },
        _ => None,
    }
}

/// The backup error inside `e`: a backup command's own, or the automatic backup's that stopped
/// a migration or a script.
fn backup_error(e: &Error) -> Option<&BackupError> {
    match e {
        Error::Backup(b) => Some(b),
        Error::Migrate(m) => match m.as_ref() {
            MigrateError::Backup(b) => Some(b),
            _ => None,
        },
        Error::Check(c) => match c.as_ref() {
            CheckError::Backup(b) | CheckError::Migrate(MigrateError::Backup(b)) => Some(b),
            _ => None,
        },
        _ => None,
    }
}

/// SQLite refuses `BEGIN` inside dbtool's transaction and `VACUUM`-like statements inside any.
fn transaction_hint(message: &str, what: &str) -> Option<String> {
    if message.contains("cannot start a transaction within a transaction") {
        Some(format!("remove BEGIN/COMMIT from {what}: dbtool runs it in its own transaction (or mark a migration `-- dbtool:no-transaction`)"))
    } else if message.contains("safely run in a transaction")
        || message.contains("from within a transaction")
    {
        Some("mark the migration with a first line `-- dbtool:no-transaction`".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use dbtool::backup::BackupError;
    use dbtool::check::{CheckError, ScriptKind};
    use dbtool::config::ConfigError;
    use dbtool::db::DbError;
    use dbtool::migrate::MigrateError;
    use dbtool::rebuild::RebuildError;

    use super::*;

    fn sqlite_error() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(1), Some("boom".into()))
    }

    fn io_error() -> std::io::Error {
        std::io::Error::other("boom")
    }

    /// One value of every variant of every module's error (wrappers of other modules' errors
    /// aside: they take the wrapped error's code).
    fn pg_failure() -> dbtool::db::PgFailure {
        dbtool::db::PgFailure {
            sqlstate: "00000".into(),
            message: "x".into(),
            detail: None,
            hint: None,
            constraint: None,
            table: None,
        }
    }

    fn every_variant() -> Vec<Error> {
        let p = || PathBuf::from("x.db");
        let s = || "x".to_string();
        let mut all: Vec<Error> = Vec::new();
        all.extend(
            [
                ConfigError::Read {
                    path: p(),
                    source: io_error(),
                },
                ConfigError::Invalid {
                    path: p(),
                    message: s(),
                },
                ConfigError::UnsupportedUrl { url: s() },
                ConfigError::InvalidPostgresUrl { reason: s() },
                ConfigError::PostgresNotBuilt,
            ]
            .map(Error::from),
        );
        all.extend(
            [
                DbError::DatabaseMissing { path: p() },
                DbError::NotADatabase {
                    path: p(),
                    reason: s(),
                },
                DbError::Locked {
                    path: p(),
                    waited_ms: 1,
                },
                DbError::sqlite("x", &p(), sqlite_error()),
                DbError::io("x", &p(), io_error()),
                DbError::SymlinkRefused { path: p() },
                DbError::TransactionLeftOpen { path: p() },
                DbError::ForeignKeysStillOn { path: p() },
                DbError::ForeignKeyViolations {
                    what: s(),
                    violations: vec![],
                },
                DbError::CannotConnect {
                    url: s(),
                    failure: Box::new(pg_failure()),
                },
                DbError::AuthenticationFailed {
                    url: s(),
                    user: s(),
                    failure: Box::new(pg_failure()),
                },
                DbError::PermissionDenied {
                    action: s(),
                    url: s(),
                    failure: Box::new(pg_failure()),
                },
                DbError::Postgres {
                    action: s(),
                    url: s(),
                    failure: Box::new(pg_failure()),
                },
                DbError::NotOnPostgres {
                    what: s(),
                    reason: s(),
                },
            ]
            .map(Error::from),
        );
        all.extend(
            [
                MigrateError::Stopped {
                    version: 1,
                    name: s(),
                    reason: s(),
                },
                MigrateError::InvalidTarget {
                    target: s(),
                    reason: s(),
                },
                MigrateError::UnmanagedDatabase {
                    path: p(),
                    tables: vec![],
                },
                MigrateError::HistoryDamaged {
                    path: p(),
                    table: s(),
                    detail: s(),
                },
                MigrateError::MigrationsDirMissing { path: p() },
                MigrateError::BadMigrationName { path: p() },
                MigrateError::NotUtf8 { path: p() },
                MigrateError::DuplicateVersion {
                    version: 1,
                    first: p(),
                    second: p(),
                },
                MigrateError::OrphanDown {
                    path: p(),
                    version: 1,
                    name: s(),
                },
                MigrateError::EditedMigration {
                    version: 1,
                    name: s(),
                    path: p(),
                },
                MigrateError::MissingMigrationFile {
                    version: 1,
                    name: s(),
                    dir: p(),
                },
                MigrateError::OutOfOrder {
                    version: 1,
                    path: p(),
                    current: 2,
                },
                MigrateError::DatabaseAhead {
                    db_version: 2,
                    newest: s(),
                    dir: p(),
                },
                MigrateError::MissingDown {
                    version: 1,
                    name: s(),
                    path: p(),
                },
                MigrateError::Irreversible {
                    version: 1,
                    name: s(),
                    path: p(),
                },
                MigrateError::MigrationFailed {
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: sqlite_error(),
                },
                MigrateError::PostgresStatementFailed {
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(pg_failure()),
                },
                MigrateError::TransactionControl {
                    path: p(),
                    line: 1,
                    statement: s(),
                },
                MigrateError::NoTransactionFailed {
                    path: p(),
                    committed_through: None,
                    own_transaction_rolled_back: false,
                    source: Box::new(MigrateError::NotUtf8 { path: p() }),
                },
                MigrateError::EmptySlug { name: s() },
                MigrateError::FileExists { path: p() },
            ]
            .map(Error::from),
        );
        all.extend(
            [
                CheckError::ScratchDir {
                    database: p(),
                    source: io_error(),
                },
                CheckError::Copy {
                    database: p(),
                    copy: p(),
                    source: Box::new(sqlite_error()),
                },
                CheckError::RehearsalFailed {
                    database: p(),
                    failed_at: s(),
                },
                CheckError::ScriptRead {
                    kind: ScriptKind::Script,
                    path: p(),
                    source: io_error(),
                },
                CheckError::ScriptNotUtf8 {
                    kind: ScriptKind::Script,
                    path: p(),
                },
                CheckError::ScriptFailed {
                    kind: ScriptKind::Script,
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(sqlite_error()),
                },
                CheckError::ScriptFailed {
                    kind: ScriptKind::Seed,
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(sqlite_error()),
                },
                CheckError::PgCopy {
                    database: p(),
                    tool: "pg_restore",
                    message: s(),
                },
                CheckError::PgScriptFailed {
                    kind: ScriptKind::Script,
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(pg_failure()),
                },
                CheckError::PgScriptFailed {
                    kind: ScriptKind::Seed,
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(pg_failure()),
                },
            ]
            .map(Error::from),
        );
        all.extend(
            [
                BackupError::BackupDir {
                    path: p(),
                    source: io_error(),
                },
                BackupError::Write {
                    path: p(),
                    doing: "x",
                    source: io_error(),
                },
                BackupError::Read {
                    path: p(),
                    doing: "x",
                    source: io_error(),
                },
                BackupError::SnapshotInconsistent {
                    path: p(),
                    detail: s(),
                },
                BackupError::BackupMissing { path: p() },
                BackupError::NotABackup {
                    path: p(),
                    detail: s(),
                },
                BackupError::UnsupportedFormat {
                    path: p(),
                    found: 9,
                    supported: 1,
                },
                BackupError::Corrupt {
                    path: p(),
                    detail: s(),
                    source: None,
                },
                BackupError::HashMismatch {
                    path: p(),
                    algorithm: "XXH3-128",
                    expected: s(),
                    actual: s(),
                },
                BackupError::PayloadNotSqlite { path: p() },
                BackupError::PayloadNotPgArchive { path: p() },
                BackupError::OtherEngine {
                    backup: p(),
                    backup_engine: "sqlite",
                    target: p(),
                    target_engine: "postgres",
                },
                BackupError::ToolMissing {
                    tool: "pg_dump",
                    source: io_error(),
                },
                BackupError::PgDumpTooOld {
                    tool: "pg_dump",
                    tool_version: s(),
                    server_version: s(),
                },
                BackupError::ToolFailed {
                    tool: "pg_dump",
                    doing: "x",
                    status: s(),
                    stderr: s(),
                },
                BackupError::RestoreMismatch {
                    backup: p(),
                    detail: s(),
                },
                BackupError::DatabaseInUse {
                    action: "reset",
                    database: s(),
                    reason: s(),
                },
                BackupError::IntegrityFailed {
                    path: p(),
                    problems: vec![],
                },
                BackupError::DifferentDatabase {
                    backup: p(),
                    source_path: s(),
                    target: p(),
                },
                BackupError::NoBackups {
                    database: p(),
                    dir: p(),
                },
                BackupError::ConfirmationRequired {
                    action: "x",
                    database: p(),
                },
                BackupError::Declined {
                    action: "x",
                    database: p(),
                },
            ]
            .map(Error::from),
        );
        all.extend(
            [
                RebuildError::InvalidChange {
                    arg: s(),
                    reason: s(),
                },
                RebuildError::TableNotFound { table: s() },
                RebuildError::Unsupported {
                    table: s(),
                    reason: s(),
                },
                RebuildError::ColumnNotFound {
                    table: s(),
                    column: s(),
                    change: s(),
                },
                RebuildError::Conflict {
                    table: s(),
                    change: s(),
                    reason: s(),
                },
                RebuildError::Parse {
                    table: s(),
                    reason: s(),
                },
                RebuildError::ColumnInUse {
                    table: s(),
                    column: s(),
                    users: vec![],
                },
                RebuildError::BrokenSchema {
                    table: s(),
                    object: s(),
                    source: sqlite_error(),
                },
                RebuildError::TableChanged {
                    table: s(),
                    expected: s(),
                    actual: s(),
                },
                RebuildError::CheckViolated {
                    table: s(),
                    column: s(),
                    check: s(),
                    values: vec![],
                },
                RebuildError::NullsPresent {
                    table: s(),
                    column: s(),
                    rows: 1,
                },
                RebuildError::Duplicates {
                    table: s(),
                    columns: vec![],
                    examples: vec![],
                },
                RebuildError::ForeignKeyViolated {
                    table: s(),
                    column: s(),
                    parent: s(),
                    rows: 1,
                    examples: vec![],
                },
                RebuildError::ForeignKeyTarget {
                    table: s(),
                    column: s(),
                    parent: s(),
                    reason: s(),
                },
                RebuildError::TypeMismatch {
                    table: s(),
                    column: s(),
                    ty: s(),
                    values: vec![],
                },
                RebuildError::LossyDown {
                    table: s(),
                    reasons: vec![],
                },
                RebuildError::ForeignKeysOn { table: s() },
                RebuildError::ViewBroken {
                    table: s(),
                    view: s(),
                    source: sqlite_error(),
                },
                RebuildError::IntegrityFailed {
                    table: s(),
                    problems: vec![],
                },
                RebuildError::CopyDiffers {
                    table: s(),
                    detail: s(),
                },
                RebuildError::Simulation {
                    table: s(),
                    step: s(),
                    source: sqlite_error(),
                },
                RebuildError::RoundTrip {
                    table: s(),
                    detail: s(),
                },
                RebuildError::Header { reason: s() },
                RebuildError::Sqlite {
                    table: s(),
                    doing: s(),
                    source: sqlite_error(),
                },
            ]
            .map(Error::from),
        );
        all.extend(
            [
                AutogenError::NoSchemaFile,
                AutogenError::Declared(dbtool::schema::declared::DeclaredError::Read {
                    path: p(),
                    source: io_error(),
                }),
                AutogenError::Declared(dbtool::schema::declared::DeclaredError::Statement {
                    path: p(),
                    line: 1,
                    statement: s(),
                    source: Box::new(sqlite_error()),
                }),
                AutogenError::InvalidFlag {
                    arg: s(),
                    reason: s(),
                },
                AutogenError::AmbiguousRename {
                    what: s(),
                    readings: vec![s()],
                },
                AutogenError::WouldDrop { lost: vec![s()] },
                AutogenError::NeedsFill { columns: vec![s()] },
                AutogenError::Step {
                    step: s(),
                    source: Box::new(sqlite_error()),
                },
                AutogenError::Unreachable { diff: vec![s()] },
                AutogenError::ProofFailed {
                    stage: s(),
                    detail: vec![s()],
                },
                AutogenError::DataRehearsal {
                    data: p(),
                    stage: s(),
                    detail: vec![s()],
                },
            ]
            .map(Error::from),
        );
        all
    }

    #[test]
    fn every_code_has_one_row() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, status, _) in CODES {
            assert!(seen.insert(*code), "{code} has two rows");
            assert!((1..=5).contains(status), "{code}: exit status {status}");
        }
    }

    #[test]
    fn every_error_variant_has_a_unique_code_with_its_exit_status_and_hint() {
        let all = every_variant();
        let mut by_code: std::collections::BTreeMap<&str, String> = Default::default();
        for e in &all {
            let code = e.code();
            assert!(row(code).is_some(), "{code} ({e}) has no row in CODES");
            // One code per situation: two variants share a code only when they are the same
            // situation (a SQLite failure met by the db layer or by the rebuild engine; rows a
            // CHECK rejects, found per value or per row; a migration's or a script's statement
            // that failed on SQLite or on PostgreSQL).
            if let Some(other) = by_code.insert(code, format!("{e:?}")) {
                assert!(
                    [
                        "sqlite",
                        "rebuild-check-violated",
                        "migration-failed",
                        "script-failed",
                        "seed-failed"
                    ]
                    .contains(&code),
                    "{code} is the code of two variants: {other} and {e:?}"
                );
            }
            let status = exit_status(e);
            assert!((1..=5).contains(&status), "{code}: {status}");
            // A hint, where the table has one, reaches the user for every variant.
            assert!(hint(e).is_some() || hint_for_code(code).is_none(), "{code}");
        }
        // No row in the table is dead.
        for (code, _, _) in CODES {
            assert!(
                by_code.contains_key(code),
                "CODES has a row for {code} that no error uses"
            );
        }
    }

    #[test]
    fn locked_and_confirmation_have_their_exit_statuses() {
        let locked = Error::from(DbError::Locked {
            path: "x".into(),
            waited_ms: 5,
        });
        assert_eq!(exit_status(&locked), exit::LOCKED);
        let wrapped = Error::from(MigrateError::Db(DbError::Locked {
            path: "x".into(),
            waited_ms: 5,
        }));
        assert_eq!(exit_status(&wrapped), exit::LOCKED);
        let refused = Error::from(BackupError::ConfirmationRequired {
            action: "reset",
            database: "x".into(),
        });
        assert_eq!(exit_status(&refused), exit::NEEDS_CONFIRMATION);
    }
}
