//! What to run, in which order: targets (`head`, `3`, `+2`, `-1`, `base`), the state of every
//! migration (files against history), the checks that must pass before anything runs, and the
//! resulting [`Plan`].
//!
//! refinery's own planning (`verify_migrations`) is crate-private and stops at the first problem
//! without naming files, so dbtool plans itself, with the same rules: an applied migration must
//! have its file, unchanged; no unapplied file may sit below the current version; versions are
//! unique.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;

use super::error::{MigrateError, Result};
use super::files::{is_blank, MigrationFile, MigrationSet};
use super::history::AppliedMigration;

/// `upgrade` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpTarget {
    Head,
    Version(i32),
    /// `+N`: the next N pending migrations.
    Relative(u32),
}

/// `downgrade` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// `-N`: undo the last N applied migrations.
    Relative(u32),
    /// Undo everything above this version.
    Version(i32),
    /// Undo everything.
    Base,
}

/// `stamp` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampTarget {
    Head,
    Version(i32),
    Base,
}

fn invalid(target: &str, reason: impl Into<String>) -> MigrateError {
    MigrateError::InvalidTarget {
        target: target.to_string(),
        reason: reason.into(),
    }
}

fn parse_version(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['V', 'v']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_count(s: &str, target: &str) -> Result<u32> {
    match s.parse::<u32>() {
        Ok(0) => Err(invalid(target, "a relative step must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid(target, "expected a number of steps")),
    }
}

impl FromStr for UpTarget {
    type Err = MigrateError;
    fn from_str(s: &str) -> Result<Self> {
        if s == "head" {
            Ok(UpTarget::Head)
        } else if let Some(n) = s.strip_prefix('+') {
            Ok(UpTarget::Relative(parse_count(n, s)?))
        } else if s.starts_with('-') {
            Err(invalid(
                s,
                "upgrade moves forward: use `dbtool downgrade` to go back",
            ))
        } else {
            parse_version(s)
                .map(UpTarget::Version)
                .ok_or_else(|| invalid(s, "expected head, +N or a version number"))
        }
    }
}

impl FromStr for DownTarget {
    type Err = MigrateError;
    fn from_str(s: &str) -> Result<Self> {
        if s == "base" {
            Ok(DownTarget::Base)
        } else if let Some(n) = s.strip_prefix('-') {
            Ok(DownTarget::Relative(parse_count(n, s)?))
        } else if s.starts_with('+') || s == "head" {
            Err(invalid(
                s,
                "downgrade moves back: use `dbtool upgrade` to go forward",
            ))
        } else {
            parse_version(s)
                .map(DownTarget::Version)
                .ok_or_else(|| invalid(s, "expected -N, a version number or base"))
        }
    }
}

impl FromStr for StampTarget {
    type Err = MigrateError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "head" => Ok(StampTarget::Head),
            "base" => Ok(StampTarget::Base),
            _ => parse_version(s)
                .map(StampTarget::Version)
                .ok_or_else(|| invalid(s, "expected head, base or a version number")),
        }
    }
}

/// Where one migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationState {
    Applied,
    Pending,
    /// Recorded in the history, but its file is gone.
    AppliedFileMissing,
    /// Recorded in the history with another checksum (or name) than its file has now.
    EditedSinceApplied,
}

impl MigrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::AppliedFileMissing => "applied, file missing",
            MigrationState::EditedSinceApplied => "edited since applied",
        }
    }
}

/// One line of `dbtool history`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub version: i32,
    pub name: String,
    pub state: MigrationState,
    #[serde(with = "time::serde::rfc3339::option")]
    pub applied_on: Option<OffsetDateTime>,
    pub current: bool,
    pub up_path: Option<PathBuf>,
    pub down_path: Option<PathBuf>,
    pub file_checksum: Option<String>,
    pub recorded_checksum: Option<String>,
}

/// Files and history side by side.
#[derive(Debug, Clone)]
pub struct Overview {
    pub entries: Vec<Entry>,
    /// Highest applied version.
    pub current: Option<i32>,
    /// Highest version in the folder.
    pub head: Option<i32>,
}

impl Overview {
    pub fn new(set: &MigrationSet, applied: &[AppliedMigration]) -> Overview {
        let current = applied.iter().map(|a| a.version).max();
        let mut entries: Vec<Entry> = Vec::new();
        for file in &set.migrations {
            let recorded = applied.iter().find(|a| a.version == file.version);
            let state = match recorded {
                None => MigrationState::Pending,
                Some(a) if a.checksum == file.checksum && a.name == file.name => {
                    MigrationState::Applied
                }
                Some(_) => MigrationState::EditedSinceApplied,
            };
            entries.push(Entry {
                version: file.version,
                name: recorded.map_or(file.name.clone(), |a| a.name.clone()),
                state,
                applied_on: recorded.map(|a| a.applied_on),
                current: Some(file.version) == current,
                up_path: Some(file.up.path.clone()),
                down_path: file.down.as_ref().map(|d| d.path.clone()),
                file_checksum: Some(file.checksum.to_string()),
                recorded_checksum: recorded.map(|a| a.checksum.to_string()),
            });
        }
        for a in applied {
            if set.get(a.version).is_none() {
                entries.push(Entry {
                    version: a.version,
                    name: a.name.clone(),
                    state: MigrationState::AppliedFileMissing,
                    applied_on: Some(a.applied_on),
                    current: Some(a.version) == current,
                    up_path: None,
                    down_path: None,
                    file_checksum: None,
                    recorded_checksum: Some(a.checksum.to_string()),
                });
            }
        }
        entries.sort_by_key(|e| e.version);
        Overview {
            entries,
            current,
            head: set.head().map(|m| m.version),
        }
    }

    pub fn pending(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.state == MigrationState::Pending)
    }
}

/// Every reason the folder and the history disagree, most fundamental first. Empty when it is
/// safe to plan. `status` lists them all; commands that change the database stop at the first.
pub fn problems(set: &MigrationSet, applied: &[AppliedMigration]) -> Vec<MigrateError> {
    let mut problems = Vec::new();
    let current = applied.iter().map(|a| a.version).max();
    let newest_file = set.head().map(|m| m.version);
    if let Some(db_version) = current {
        if newest_file.is_none_or(|newest| db_version > newest) {
            problems.push(MigrateError::DatabaseAhead {
                db_version,
                newest: set.head().map_or("none".into(), MigrationFile::label),
                dir: set.dir.clone(),
            });
        }
    }
    for a in applied {
        match set.get(a.version) {
            None => {
                if newest_file.is_some_and(|newest| a.version <= newest) {
                    problems.push(MigrateError::MissingMigrationFile {
                        version: a.version,
                        name: a.name.clone(),
                        dir: set.dir.clone(),
                    });
                }
            }
            Some(file) if file.checksum != a.checksum || file.name != a.name => {
                problems.push(MigrateError::EditedMigration {
                    version: a.version,
                    name: a.name.clone(),
                    path: file.up.path.clone(),
                });
            }
            Some(_) => {}
        }
    }
    if let Some(current) = current {
        for file in &set.migrations {
            if file.version < current && !applied.iter().any(|a| a.version == file.version) {
                problems.push(MigrateError::OutOfOrder {
                    version: file.version,
                    path: file.up.path.clone(),
                    current,
                });
            }
        }
    }
    problems
}

fn check(set: &MigrationSet, applied: &[AppliedMigration]) -> Result<()> {
    match problems(set, applied).into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Run the up file, record the history row.
    Apply,
    /// Run the down file, delete the history row.
    Revert,
    /// Record the history row only (`stamp`).
    Record,
    /// Delete the history row only (`stamp` below the current version).
    Forget,
    /// Run a generated table rebuild directly (`dbtool rebuild`): no history row.
    Rebuild,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub action: Action,
    pub version: i32,
    pub name: String,
    /// The file whose SQL runs (none for Record/Forget).
    pub path: Option<PathBuf>,
    #[serde(skip)]
    pub sql: Option<String>,
    #[serde(skip)]
    pub checksum: u64,
    pub no_transaction: bool,
}

/// An ordered list of steps, from one version to another.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Step {
    /// The step that applies `file`'s up.
    pub fn apply(file: &MigrationFile) -> Step {
        Step {
            action: Action::Apply,
            version: file.version,
            name: file.name.clone(),
            path: Some(file.up.path.clone()),
            sql: Some(file.up.sql.clone()),
            checksum: file.checksum,
            no_transaction: file.up.directives.no_transaction,
        }
    }

    /// The step that runs `file`'s down, when it has one.
    pub fn revert(file: &MigrationFile) -> Option<Step> {
        file.down.as_ref().map(|down| Step {
            action: Action::Revert,
            version: file.version,
            name: file.name.clone(),
            path: Some(down.path.clone()),
            sql: Some(down.sql.clone()),
            checksum: file.checksum,
            no_transaction: down.directives.no_transaction,
        })
    }
}

/// `empty-down` warnings for the migrations whose down file holds no statement: a downgrade
/// past them runs nothing, records them as reverted and reports success (found on a real history,
/// where `downgrade base` "succeeded" and left three tables). For `status`.
pub fn empty_downs<'a>(files: impl IntoIterator<Item = &'a MigrationFile>) -> Vec<super::Warning> {
    files
        .into_iter()
        .filter_map(|m| {
            let down = m.down.as_ref().filter(|d| d.is_empty())?;
            Some(empty_down_warning(&down.path, &m.label()))
        })
        .collect()
}

/// The same warnings for the downs a plan runs (`downgrade`, with or without `--dry-run`).
pub fn empty_down_steps(steps: &[Step]) -> Vec<super::Warning> {
    steps
        .iter()
        .filter(|s| s.action == Action::Revert && s.sql.as_deref().is_some_and(is_blank))
        .filter_map(|s| {
            let path = s.path.as_deref()?;
            Some(empty_down_warning(
                path,
                &format!("V{}__{}", s.version, s.name),
            ))
        })
        .collect()
}

fn empty_down_warning(path: &std::path::Path, label: &str) -> super::Warning {
    super::Warning {
        code: "empty-down".into(),
        path: Some(path.to_path_buf()),
        line: None,
        message: format!(
            "the down of {label} is empty: downgrading past it runs nothing and reports success, leaving whatever the up did"
        ),
        hint: Some(
            "write the down, or delete it and mark the up `-- dbtool:irreversible` if it cannot be undone".into(),
        ),
    }
}

pub fn plan_upgrade(
    set: &MigrationSet,
    applied: &[AppliedMigration],
    target: UpTarget,
) -> Result<Plan> {
    check(set, applied)?;
    let current = applied.iter().map(|a| a.version).max();
    let pending: Vec<&MigrationFile> = set
        .migrations
        .iter()
        .filter(|m| current.is_none_or(|c| m.version > c))
        .collect();
    let chosen: Vec<&MigrationFile> = match target {
        UpTarget::Head => pending,
        UpTarget::Version(v) => {
            let text = v.to_string();
            if set.get(v).is_none() {
                return Err(invalid(
                    &text,
                    format!("no migration with version {v} in {}", set.dir.display()),
                ));
            }
            if let Some(c) = current.filter(|&c| v < c) {
                return Err(invalid(
                    &text,
                    format!("the database is already at version {c}: use `dbtool downgrade {v}`"),
                ));
            }
            pending.into_iter().filter(|m| m.version <= v).collect()
        }
        UpTarget::Relative(n) => {
            if (pending.len() as u64) < u64::from(n) {
                return Err(invalid(
                    &format!("+{n}"),
                    format!("only {} migration(s) pending", pending.len()),
                ));
            }
            pending.into_iter().take(n as usize).collect()
        }
    };
    Ok(Plan {
        from: current,
        to: chosen.last().map(|m| m.version).or(current),
        steps: chosen.into_iter().map(Step::apply).collect(),
    })
}

pub fn plan_downgrade(
    set: &MigrationSet,
    applied: &[AppliedMigration],
    target: DownTarget,
) -> Result<Plan> {
    check(set, applied)?;
    let mut newest_first: Vec<&AppliedMigration> = applied.iter().collect();
    newest_first.sort_by_key(|a| std::cmp::Reverse(a.version));
    let current = newest_first.first().map(|a| a.version);
    let undo: Vec<&AppliedMigration> = match target {
        DownTarget::Base => newest_first.clone(),
        DownTarget::Relative(n) => {
            if (newest_first.len() as u64) < u64::from(n) {
                return Err(invalid(
                    &format!("-{n}"),
                    format!("only {} migration(s) applied", newest_first.len()),
                ));
            }
            newest_first.iter().take(n as usize).copied().collect()
        }
        DownTarget::Version(v) => {
            let text = v.to_string();
            if let Some(c) = current.filter(|&c| v > c) {
                // Only suggest `upgrade v` when there is a migration v to upgrade to.
                let reason = if set.get(v).is_some() {
                    format!("the database is at version {c}: use `dbtool upgrade {v}`")
                } else {
                    format!(
                        "the database is at version {c} and there is no migration with version {v} in {}",
                        set.dir.display()
                    )
                };
                return Err(invalid(&text, reason));
            }
            if current.is_some() && !applied.iter().any(|a| a.version == v) {
                return Err(invalid(&text, format!("version {v} is not applied (see dbtool history); use base to undo everything")));
            }
            newest_first
                .iter()
                .filter(|a| a.version > v)
                .copied()
                .collect()
        }
    };
    let mut steps = Vec::new();
    for a in &undo {
        let file = set
            .get(a.version)
            .expect("checked: every applied migration has its file");
        let expected_down = down_path_for(file);
        let Some(step) = Step::revert(file) else {
            if file.up.directives.irreversible {
                return Err(MigrateError::Irreversible {
                    version: file.version,
                    name: file.name.clone(),
                    path: file.up.path.clone(),
                });
            }
            return Err(MigrateError::MissingDown {
                version: file.version,
                name: file.name.clone(),
                path: expected_down,
            });
        };
        steps.push(step);
    }
    let remaining = newest_first
        .iter()
        .map(|a| a.version)
        .find(|v| !undo.iter().any(|u| u.version == *v));
    Ok(Plan {
        from: current,
        to: remaining,
        steps,
    })
}

/// `dbtool redo` (Rails' `db:migrate:redo`): the newest applied migration's *current* down, then
/// its *current* up, recording the file's checksum as it is now. The one problem it tolerates is
/// the one it exists for: that migration edited since it was applied. Everything else that stops
/// an upgrade stops it too.
pub fn plan_redo(set: &MigrationSet, applied: &[AppliedMigration]) -> Result<Plan> {
    let newest = applied.iter().max_by_key(|a| a.version);
    let blocking = problems(set, applied).into_iter().find(|p| {
        !matches!(p, MigrateError::EditedMigration { version, .. } if Some(*version) == newest.map(|a| a.version))
    });
    if let Some(problem) = blocking {
        return Err(problem);
    }
    let Some(newest) = newest else {
        return Err(invalid(
            "redo",
            "no migration is applied yet: use `dbtool upgrade`",
        ));
    };
    let file = set
        .get(newest.version)
        .expect("checked: every applied migration has its file");
    let Some(revert) = Step::revert(file) else {
        if file.up.directives.irreversible {
            return Err(MigrateError::Irreversible {
                version: file.version,
                name: file.name.clone(),
                path: file.up.path.clone(),
            });
        }
        return Err(MigrateError::MissingDown {
            version: file.version,
            name: file.name.clone(),
            path: down_path_for(file),
        });
    };
    // The row to delete is the one recorded, whatever the file is called now.
    let revert = Step {
        name: newest.name.clone(),
        checksum: newest.checksum,
        ..revert
    };
    Ok(Plan {
        from: Some(newest.version),
        to: Some(newest.version),
        steps: vec![revert, Step::apply(file)],
    })
}

/// `V0003__x.sql` -> `V0003__x.down.sql`, keeping the author's zero padding.
pub fn down_path_for(file: &MigrationFile) -> PathBuf {
    let up = &file.up.path;
    let name = up.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name.strip_suffix(".sql").unwrap_or(name);
    up.with_file_name(format!("{stem}.down.sql"))
}

pub fn plan_stamp(
    set: &MigrationSet,
    applied: &[AppliedMigration],
    target: StampTarget,
) -> Result<Plan> {
    let current = applied.iter().map(|a| a.version).max();
    let target_version = match target {
        StampTarget::Base => None,
        StampTarget::Head => Some(set.head().map(|m| m.version).ok_or_else(|| {
            invalid(
                "head",
                format!("there are no migrations in {}", set.dir.display()),
            )
        })?),
        StampTarget::Version(v) => {
            if set.get(v).is_none() {
                return Err(invalid(
                    &v.to_string(),
                    format!("no migration with version {v} in {}", set.dir.display()),
                ));
            }
            Some(v)
        }
    };
    let keeps = |version: i32| target_version.is_some_and(|t| version <= t);
    // Rows that stay must still match their files; gaps below the target are what stamp fills.
    for a in applied.iter().filter(|a| keeps(a.version)) {
        match set.get(a.version) {
            None => {
                return Err(MigrateError::MissingMigrationFile {
                    version: a.version,
                    name: a.name.clone(),
                    dir: set.dir.clone(),
                })
            }
            Some(file) if file.checksum != a.checksum || file.name != a.name => {
                return Err(MigrateError::EditedMigration {
                    version: a.version,
                    name: a.name.clone(),
                    path: file.up.path.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let mut steps: Vec<Step> = applied
        .iter()
        .filter(|a| !keeps(a.version))
        .rev()
        .map(|a| Step {
            action: Action::Forget,
            version: a.version,
            name: a.name.clone(),
            path: None,
            sql: None,
            checksum: a.checksum,
            no_transaction: false,
        })
        .collect();
    steps.extend(
        set.migrations
            .iter()
            .filter(|m| keeps(m.version) && !applied.iter().any(|a| a.version == m.version))
            .map(|m| Step {
                action: Action::Record,
                sql: None,
                ..Step::apply(m)
            }),
    );
    Ok(Plan {
        from: current,
        to: target_version,
        steps,
    })
}
