//! The migrations folder: `V{n}__{name}.sql` (up) and `V{n}__{name}.down.sql` (down).
//!
//! Names, versions and checksums are refinery's (`refinery_core::Migration::unapplied`), so an
//! application embedding the same folder with `refinery::embed_migrations!` computes the same
//! checksums and shares the history table. refinery's own loader ignores `.down.sql` files
//! (its pattern `V{n}__{\w+}.sql` cannot match the extra dot).
//!
//! Loading is strict: a `.sql` file that is not named like a migration, a file that is not UTF-8,
//! two files with one version, or a down without its up is an error naming the file. Files that
//! do not end in `.sql` (README.md, .gitkeep) are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Header directives: `-- dbtool:KEY [VALUE]` lines in the file's leading comment block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `-- dbtool:no-transaction`: run outside the plan's transaction (PRAGMA journal_mode, VACUUM).
    pub no_transaction: bool,
    /// `-- dbtool:irreversible`: the migration has deliberately no down.
    pub irreversible: bool,
    /// `-- dbtool:lossy`: a down that cannot bring everything back.
    pub lossy: bool,
    /// Every directive, including the ones above, in file order (key, value).
    pub all: Vec<(String, String)>,
}

impl Directives {
    pub fn parse(sql: &str) -> Directives {
        let mut directives = Directives::default();
        for line in sql.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some(comment) = line.strip_prefix("--") else {
                break; // the header ends at the first line of SQL
            };
            let Some(directive) = comment.trim().strip_prefix("dbtool:") else {
                continue;
            };
            let (key, value) = match directive.split_once(char::is_whitespace) {
                Some((key, value)) => (key.trim(), value.trim()),
                None => (directive.trim(), ""),
            };
            match key {
                "no-transaction" => directives.no_transaction = true,
                "irreversible" => directives.irreversible = true,
                "lossy" => directives.lossy = true,
                _ => {}
            }
            directives.all.push((key.to_string(), value.to_string()));
        }
        directives
    }

    /// The value of the first `-- dbtool:KEY VALUE` line.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One side (up or down) of a migration.
#[derive(Debug, Clone)]
pub struct SqlFile {
    pub path: PathBuf,
    pub sql: String,
    pub directives: Directives,
}

/// A migration as found in the folder.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i32,
    pub name: String,
    /// refinery's checksum of (name, version, up SQL).
    pub checksum: u64,
    pub up: SqlFile,
    pub down: Option<SqlFile>,
}

impl MigrationFile {
    /// `V3__add_tags`: how refinery prints it.
    pub fn label(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
}

/// Every migration in a folder, sorted by version.
#[derive(Debug, Clone, Default)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub migrations: Vec<MigrationFile>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Up,
    Down,
}

/// Parse `V0003__add_tags.sql` / `V0003__add_tags.down.sql` into (version, name, kind).
/// Mirrors refinery's pattern `^V(\d+)__(\w+)\.sql$`, with `\w` as Unicode word characters.
fn parse_file_name(file_name: &str) -> Option<(i32, String, Kind)> {
    let (stem, kind) = if let Some(stem) = file_name.strip_suffix(".down.sql") {
        (stem, Kind::Down)
    } else {
        (file_name.strip_suffix(".sql")?, Kind::Up)
    };
    let rest = stem.strip_prefix('V')?;
    let (digits, name) = rest.split_once("__")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let version = digits.parse::<i32>().ok()?;
    Some((version, name.to_string(), kind))
}

impl MigrationSet {
    /// Read and check every migration file in `dir` (not recursive).
    pub fn load(dir: &Path) -> Result<MigrationSet> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MigrationsDirMissing {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io("reading the migrations folder", dir, e)),
        };
        let mut ups: BTreeMap<i32, (String, SqlFile)> = BTreeMap::new();
        let mut downs: Vec<(i32, String, SqlFile)> = Vec::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading the migrations folder", dir, e))?;
            paths.push(entry.path());
        }
        paths.sort(); // deterministic error messages whatever the folder order
        for path in paths {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file_name.to_ascii_lowercase().ends_with(".sql") || path.is_dir() {
                continue;
            }
            let Some((version, name, kind)) = parse_file_name(file_name) else {
                return Err(Error::BadMigrationName { path });
            };
            let bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
            let sql =
                String::from_utf8(bytes).map_err(|_| Error::NotUtf8 { path: path.clone() })?;
            let file = SqlFile {
                directives: Directives::parse(&sql),
                path,
                sql,
            };
            match kind {
                Kind::Up => {
                    if let Some((_, existing)) = ups.get(&version) {
                        return Err(Error::DuplicateVersion {
                            version,
                            first: existing.path.clone(),
                            second: file.path,
                        });
                    }
                    ups.insert(version, (name, file));
                }
                Kind::Down => downs.push((version, name, file)),
            }
        }

        let mut migrations: BTreeMap<i32, MigrationFile> = BTreeMap::new();
        for (version, (name, up)) in ups {
            let checksum = refinery_checksum(version, &name, &up)?;
            migrations.insert(
                version,
                MigrationFile {
                    version,
                    name,
                    checksum,
                    up,
                    down: None,
                },
            );
        }
        for (version, name, down) in downs {
            match migrations.get_mut(&version) {
                Some(m) if m.name == name && m.down.is_none() => m.down = Some(down),
                Some(m) if m.name == name => {
                    return Err(Error::DuplicateVersion {
                        version,
                        first: m.down.as_ref().map(|d| d.path.clone()).unwrap_or_default(),
                        second: down.path,
                    })
                }
                _ => {
                    return Err(Error::OrphanDown {
                        path: down.path,
                        version,
                        name,
                    })
                }
            }
        }
        Ok(MigrationSet {
            dir: dir.to_path_buf(),
            migrations: migrations.into_values().collect(),
        })
    }

    pub fn get(&self, version: i32) -> Option<&MigrationFile> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }

    pub fn head(&self) -> Option<&MigrationFile> {
        self.migrations.last()
    }
}

fn refinery_checksum(version: i32, name: &str, up: &SqlFile) -> Result<u64> {
    let label = format!("V{version}__{name}");
    let migration = refinery_core::Migration::unapplied(&label, &up.sql).map_err(|_| {
        Error::BadMigrationName {
            path: up.path.clone(),
        }
    })?;
    Ok(migration.checksum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_file_name("V0001__create_users.sql"),
            Some((1, "create_users".into(), Kind::Up))
        );
        assert_eq!(
            parse_file_name("V12__x.down.sql"),
            Some((12, "x".into(), Kind::Down))
        );
        assert_eq!(parse_file_name("V1_create.sql"), None);
        assert_eq!(parse_file_name("V__create.sql"), None);
        assert_eq!(parse_file_name("V1__.sql"), None);
        assert_eq!(parse_file_name("V1__has-dash.sql"), None);
        assert_eq!(parse_file_name("U1__unversioned.sql"), None);
        assert_eq!(parse_file_name("V99999999999__too_big.sql"), None);
    }

    #[test]
    fn directives_stop_at_first_sql_line() {
        let d = Directives::parse(
            "-- V3: wal\n-- dbtool:no-transaction\n\nPRAGMA journal_mode=WAL;\n-- dbtool:lossy\n",
        );
        assert!(d.no_transaction);
        assert!(!d.lossy);
        let d = Directives::parse("-- dbtool:rebuild-of posts sha256:abc\nSELECT 1;");
        assert_eq!(d.get("rebuild-of"), Some("posts sha256:abc"));
    }

    #[test]
    fn checksum_matches_refinery() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("V0001__create_users.sql"),
            "CREATE TABLE users(id INTEGER PRIMARY KEY);\n",
        )
        .unwrap();
        let set = MigrationSet::load(dir.path()).unwrap();
        let expected = refinery_core::Migration::unapplied(
            "V1__create_users",
            "CREATE TABLE users(id INTEGER PRIMARY KEY);\n",
        )
        .unwrap();
        assert_eq!(set.migrations[0].checksum, expected.checksum());
        assert_eq!(set.migrations[0].name, "create_users");
    }
}
