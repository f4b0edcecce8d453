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

use super::error::{MigrateError, Result};

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

impl SqlFile {
    /// Whether the file holds no statement once comments, whitespace and stray `;` are stripped:
    /// running it does nothing (a down written as a placeholder and never filled in).
    pub fn is_empty(&self) -> bool {
        is_blank(&self.sql)
    }
}

/// No statement in `sql` once comments, whitespace and stray `;` are stripped.
pub fn is_blank(sql: &str) -> bool {
    use crate::sql::{significant, Kind};
    significant(sql).iter().all(|t| t.kind == Kind::Semi)
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

/// A migration as the folder listing names it, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationName {
    pub version: i32,
    pub name: String,
    pub up: PathBuf,
    pub down: Option<PathBuf>,
}

/// Every entry below `folder` with whether it is a folder, descending into real subfolders (not
/// symlinked ones, as refinery's walk does not follow links).
fn collect_entries(root: &Path, folder: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && folder == root => {
            return Err(MigrateError::MigrationsDirMissing {
                path: root.to_path_buf(),
            })
        }
        Err(e) => return Err(MigrateError::io("reading the migrations folder", folder, e)),
    };
    for entry in entries {
        let entry =
            entry.map_err(|e| MigrateError::io("reading the migrations folder", folder, e))?;
        // The entry's type comes with the listing; only a symlink costs a stat.
        let (is_dir, descend) = match entry.file_type() {
            Ok(t) if t.is_symlink() => (entry.path().is_dir(), false),
            Ok(t) => (t.is_dir(), t.is_dir()),
            Err(_) => (entry.path().is_dir(), false),
        };
        if descend {
            collect_entries(root, &entry.path(), out)?;
        }
        out.push((entry.path(), is_dir));
    }
    Ok(())
}

impl MigrationSet {
    /// List the migrations in `dir` and its subfolders (as refinery's loader and
    /// `embed_migrations!` find them) by file name only, sorted by version: names,
    /// unique versions and down/up pairing are checked, no file is read. For commands that only
    /// need versions (`current`), reading and hashing every file would be most of their work.
    pub fn list(dir: &Path) -> Result<Vec<MigrationName>> {
        let mut paths: Vec<(PathBuf, bool)> = Vec::new();
        collect_entries(dir, dir, &mut paths)?;
        paths.sort(); // deterministic error messages whatever the folder order
        let mut ups: BTreeMap<i32, MigrationName> = BTreeMap::new();
        let mut downs: Vec<(i32, String, PathBuf)> = Vec::new();
        for (path, is_dir) in paths {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file_name.to_ascii_lowercase().ends_with(".sql") || is_dir {
                continue;
            }
            let Some((version, name, kind)) = parse_file_name(file_name) else {
                return Err(MigrateError::BadMigrationName { path });
            };
            match kind {
                Kind::Up => {
                    if let Some(existing) = ups.get(&version) {
                        return Err(MigrateError::DuplicateVersion {
                            version,
                            first: existing.up.clone(),
                            second: path,
                        });
                    }
                    let up = path;
                    ups.insert(
                        version,
                        MigrationName {
                            version,
                            name,
                            up,
                            down: None,
                        },
                    );
                }
                Kind::Down => downs.push((version, name, path)),
            }
        }
        for (version, name, down) in downs {
            match ups.get_mut(&version) {
                Some(m) if m.name == name && m.down.is_none() => m.down = Some(down),
                Some(m) if m.name == name => {
                    return Err(MigrateError::DuplicateVersion {
                        version,
                        first: m.down.clone().unwrap_or_default(),
                        second: down,
                    })
                }
                _ => {
                    return Err(MigrateError::OrphanDown {
                        path: down,
                        version,
                        name,
                    })
                }
            }
        }
        Ok(ups.into_values().collect())
    }

    /// Read and check every migration file in `dir` and its subfolders.
    pub fn load(dir: &Path) -> Result<MigrationSet> {
        let mut migrations = Vec::new();
        for listed in Self::list(dir)? {
            let up = read_sql(listed.up)?;
            let down = listed.down.map(read_sql).transpose()?;
            let checksum = refinery_checksum(listed.version, &listed.name, &up)?;
            migrations.push(MigrationFile {
                version: listed.version,
                name: listed.name,
                checksum,
                up,
                down,
            });
        }
        Ok(MigrationSet {
            dir: dir.to_path_buf(),
            migrations,
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

fn read_sql(path: PathBuf) -> Result<SqlFile> {
    let bytes = std::fs::read(&path).map_err(|e| MigrateError::io("reading", &path, e))?;
    let sql = String::from_utf8(bytes).map_err(|_| MigrateError::NotUtf8 { path: path.clone() })?;
    Ok(SqlFile {
        directives: Directives::parse(&sql),
        path,
        sql,
    })
}

/// refinery's checksum: SipHash-1-3 (keys 0, 0) over the name, the version and the up SQL, fed
/// through `Hash` exactly as `refinery_core::Migration::unapplied` does.
///
/// `Migration::unapplied` first matches the file stem against refinery's Unicode regex, and
/// compiling that regex (plus the thread pool regex-automata sizes from the cgroup files) was
/// the largest single cost of `dbtool current`. An ASCII name that passed `parse_file_name` is
/// certain to match it, so only other names go through refinery itself (which also rejects the
/// few that refinery's `\w` refuses, keeping the two loaders in agreement).
fn refinery_checksum(version: i32, name: &str, up: &SqlFile) -> Result<u64> {
    use std::hash::{Hash, Hasher};
    if name.is_ascii() {
        let mut hasher = siphasher::sip::SipHasher13::new();
        name.hash(&mut hasher);
        version.hash(&mut hasher);
        up.sql.hash(&mut hasher);
        return Ok(hasher.finish());
    }
    let label = format!("V{version}__{name}");
    let migration = refinery_core::Migration::unapplied(&label, &up.sql).map_err(|_| {
        MigrateError::BadMigrationName {
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

    #[test]
    fn checksum_matches_refinery_for_ascii_and_unicode_names_and_any_sql() {
        let cases = [
            (1, "a", ""),
            (
                7,
                "add_tags",
                "ALTER TABLE t ADD COLUMN x;\r\n-- é ü 日本\n",
            ),
            (0, "x_1", "\u{feff}SELECT 1;"),
            (2_147_483_647, "big", "SELECT 'max i32';"),
            (3, "créer_table", "CREATE TABLE t(x);"),
        ];
        for (version, name, sql) in cases {
            let up = SqlFile {
                path: PathBuf::from("x.sql"),
                sql: sql.to_string(),
                directives: Directives::default(),
            };
            let ours = refinery_checksum(version, name, &up).unwrap();
            let theirs = refinery_core::Migration::unapplied(&format!("V{version}__{name}"), sql)
                .unwrap()
                .checksum();
            assert_eq!(ours, theirs, "V{version}__{name}");
        }
    }

    #[test]
    fn subfolders_count_as_refinery_counts_them() {
        // refinery's loader and `embed_migrations!` walk subfolders; a migration dbtool did not
        // see would be applied by the application behind dbtool's back.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("2026")).unwrap();
        std::fs::write(dir.path().join("V0001__a.sql"), "CREATE TABLE a(x);").unwrap();
        std::fs::write(dir.path().join("2026/V0002__b.sql"), "CREATE TABLE b(x);").unwrap();
        std::fs::write(dir.path().join("2026/V0002__b.down.sql"), "DROP TABLE b;").unwrap();
        let set = MigrationSet::load(dir.path()).unwrap();
        let versions: Vec<i32> = set.migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![1, 2]);
        assert!(set.migrations[1].down.is_some());

        let refinery = refinery_core::load_sql_migrations(dir.path()).unwrap();
        assert_eq!(refinery.len(), 2);
        assert_eq!(refinery[1].checksum(), set.migrations[1].checksum);

        std::fs::write(dir.path().join("2026/V0001__dup.sql"), "SELECT 1;").unwrap();
        assert_eq!(
            MigrationSet::load(dir.path()).unwrap_err().code(),
            "duplicate-version"
        );
    }
}
