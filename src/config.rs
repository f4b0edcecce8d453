//! Where the database, the migrations and the backups are, and where each answer came from.
//!
//! Precedence, highest first: command-line flag > environment variable > `dbtool.toml` in the
//! current folder or the nearest parent > built-in default. Relative paths in the config file are
//! resolved against the file's own folder; relative paths from flags and the environment against
//! the current folder. The library never reads the process environment itself: the caller hands
//! in an [`Environment`], so tests and embedding applications stay hermetic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// Errors of reading the configuration (flags, environment, `dbtool.toml`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("unsupported database URL {url:?}: dbtool manages SQLite and PostgreSQL databases")]
    UnsupportedUrl { url: String },
    #[error("invalid PostgreSQL URL: {reason}")]
    InvalidPostgresUrl { reason: String },
    #[error("this dbtool was built without PostgreSQL support (the cargo feature `postgres`)")]
    PostgresNotBuilt,
}

impl ConfigError {
    /// Stable machine-readable code, printed as `error[code]` and in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config-read",
            ConfigError::Invalid { .. } => "config-invalid",
            ConfigError::UnsupportedUrl { .. } => "unsupported-url",
            ConfigError::InvalidPostgresUrl { .. } => "invalid-url",
            ConfigError::PostgresNotBuilt => "postgres-not-built",
        }
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

pub const CONFIG_FILE_NAME: &str = "dbtool.toml";
pub const DEFAULT_DATABASE: &str = "content.db";
pub const DEFAULT_MIGRATIONS: &str = "migrations";
pub const DEFAULT_SCHEMA: &str = "schema.sql";
pub use crate::db::DEFAULT_BUSY_TIMEOUT;
use crate::db::{Database, PgUrl};

/// Where a resolved value came from, shown by `dbtool config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Source {
    Flag(String),
    Env(String),
    ConfigFile(PathBuf),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::ConfigFile(path) => write!(f, "{}", path.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolved<T> {
    pub value: T,
    pub source: Source,
}

/// The values the command line supplied (`None` = not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database: Option<String>,
    pub migrations: Option<PathBuf>,
    pub backup_dir: Option<PathBuf>,
    pub busy_timeout_ms: Option<u64>,
    /// `--schema FILE`: the declared schema.
    pub schema: Option<PathBuf>,
}

/// The process environment as far as dbtool cares.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub cwd: PathBuf,
    pub database_url: Option<String>,
    pub migrations: Option<String>,
    pub backup_dir: Option<String>,
    /// `DBTOOL_SCHEMA`.
    pub schema: Option<String>,
    /// `PGPASSWORD`: the PostgreSQL password when the URL holds none.
    pub pg_password: Option<String>,
    /// `PGUSER`, else `USER`: the PostgreSQL user when the URL names none.
    pub pg_user: Option<String>,
}

impl Environment {
    /// Read the real process environment (for `main`).
    pub fn from_process() -> std::io::Result<Self> {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Environment {
            cwd: std::env::current_dir()?,
            database_url: non_empty("DATABASE_URL"),
            migrations: non_empty("DBTOOL_MIGRATIONS"),
            backup_dir: non_empty("DBTOOL_BACKUP_DIR"),
            schema: non_empty("DBTOOL_SCHEMA"),
            pg_password: non_empty("PGPASSWORD"),
            pg_user: non_empty("PGUSER").or_else(|| non_empty("USER")),
        })
    }
}

/// The `dbtool.toml` file. Unknown keys are an error: a typo must not silently fall back to a
/// default database.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database: Option<String>,
    migrations: Option<PathBuf>,
    /// The declared schema file (`schema.sql`), relative to this file.
    schema: Option<PathBuf>,
    busy_timeout_ms: Option<u64>,
    #[serde(default)]
    backup: BackupSection,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupSection {
    dir: Option<PathBuf>,
    keep: Option<usize>,
    keep_days: Option<u32>,
}

/// Everything resolved, with provenance.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub database: Resolved<Database>,
    pub migrations: Resolved<PathBuf>,
    /// `None`: the backup module picks its platform default.
    pub backup_dir: Option<Resolved<PathBuf>>,
    pub backup_keep: Option<usize>,
    pub backup_keep_days: Option<u32>,
    /// The declared schema (`--schema` > `DBTOOL_SCHEMA` > `schema` in dbtool.toml >
    /// `./schema.sql` when it exists); `None` when there is none.
    pub schema: Option<Resolved<PathBuf>>,
    #[serde(serialize_with = "serialize_millis")]
    pub busy_timeout: Duration,
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Config {
    pub fn resolve(overrides: &Overrides, env: &Environment) -> Result<Config> {
        let config_path = find_config_file(&env.cwd);
        let file = match &config_path {
            Some(path) => read_config_file(path)?,
            None => ConfigFile::default(),
        };
        let config_dir = config_path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        let from_file = |p: &Path| config_dir.as_deref().unwrap_or(&env.cwd).join(p);
        let file_source = || Source::ConfigFile(config_path.clone().unwrap_or_default());

        let database = if let Some(flag) = &overrides.database {
            Resolved {
                value: database_from_url(flag, env, &env.cwd)?,
                source: Source::Flag("--database".into()),
            }
        } else if let Some(url) = &env.database_url {
            Resolved {
                value: database_from_url(url, env, &env.cwd)?,
                source: Source::Env("DATABASE_URL".into()),
            }
        } else if let Some(db) = &file.database {
            let base = config_dir.as_deref().unwrap_or(&env.cwd);
            let value = database_from_url(db, env, base).map_err(|e| match e {
                ConfigError::UnsupportedUrl { .. } => ConfigError::Invalid {
                    path: config_path.clone().unwrap_or_default(),
                    message: format!(
                        "database = {:?} is not a SQLite path, sqlite: URL or postgres:// URL",
                        crate::db::redact_raw(db)
                    ),
                },
                other => other,
            })?;
            Resolved {
                value,
                source: file_source(),
            }
        } else {
            Resolved {
                value: Database::Sqlite(env.cwd.join(DEFAULT_DATABASE)),
                source: Source::Default,
            }
        };

        let migrations = if let Some(dir) = &overrides.migrations {
            Resolved {
                value: env.cwd.join(dir),
                source: Source::Flag("--migrations".into()),
            }
        } else if let Some(dir) = &env.migrations {
            Resolved {
                value: env.cwd.join(dir),
                source: Source::Env("DBTOOL_MIGRATIONS".into()),
            }
        } else if let Some(dir) = &file.migrations {
            Resolved {
                value: from_file(dir),
                source: file_source(),
            }
        } else {
            Resolved {
                value: env.cwd.join(DEFAULT_MIGRATIONS),
                source: Source::Default,
            }
        };

        let backup_dir = if let Some(dir) = &overrides.backup_dir {
            Some(Resolved {
                value: env.cwd.join(dir),
                source: Source::Flag("--backup-dir".into()),
            })
        } else if let Some(dir) = &env.backup_dir {
            Some(Resolved {
                value: env.cwd.join(dir),
                source: Source::Env("DBTOOL_BACKUP_DIR".into()),
            })
        } else {
            file.backup.dir.as_ref().map(|dir| Resolved {
                value: from_file(dir),
                source: file_source(),
            })
        };

        let schema = if let Some(file) = &overrides.schema {
            Some(Resolved {
                value: env.cwd.join(file),
                source: Source::Flag("--schema".into()),
            })
        } else if let Some(file) = &env.schema {
            Some(Resolved {
                value: env.cwd.join(file),
                source: Source::Env("DBTOOL_SCHEMA".into()),
            })
        } else if let Some(file) = &file.schema {
            Some(Resolved {
                value: from_file(file),
                source: file_source(),
            })
        } else {
            let default = env.cwd.join(DEFAULT_SCHEMA);
            default.is_file().then_some(Resolved {
                value: default,
                source: Source::Default,
            })
        };

        let busy_timeout = overrides
            .busy_timeout_ms
            .or(file.busy_timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_BUSY_TIMEOUT);

        Ok(Config {
            config_file: config_path,
            database,
            migrations,
            backup_dir,
            backup_keep: file.backup.keep,
            backup_keep_days: file.backup.keep_days,
            schema,
            busy_timeout,
        })
    }
}

/// `dbtool.toml` in `start` or its nearest parent.
fn find_config_file(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(CONFIG_FILE_NAME))
        .find(|candidate| candidate.is_file())
}

fn read_config_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// A database from a URL or path: `postgres://`/`postgresql://` URLs name PostgreSQL databases
/// (password from the URL or `PGPASSWORD`); everything [`database_path_from_url`] accepts names a
/// SQLite file, relative to `base`.
pub fn database_from_url(url: &str, env: &Environment, base: &Path) -> Result<Database> {
    if crate::db::is_postgres_url(url) {
        if !cfg!(feature = "postgres") {
            return Err(ConfigError::PostgresNotBuilt);
        }
        let parsed = PgUrl::parse(url, env.pg_password.as_deref(), env.pg_user.as_deref())
            .map_err(|e| ConfigError::InvalidPostgresUrl { reason: e.0 })?;
        return Ok(Database::Postgres(parsed));
    }
    Ok(Database::Sqlite(base.join(database_path_from_url(url)?)))
}

/// Accepts `sqlite:PATH`, `sqlite://PATH`, `sqlite:///ABS/PATH` and a bare path; refuses every
/// other scheme. A `?query` (as sqlx writes `?mode=rwc`) is dropped.
pub fn database_path_from_url(url: &str) -> Result<PathBuf> {
    let unsupported = || ConfigError::UnsupportedUrl {
        url: crate::db::redact_raw(url),
    };
    let Some(scheme_end) = url.find(':').filter(|&i| looks_like_scheme(&url[..i])) else {
        return Ok(PathBuf::from(url));
    };
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("sqlite") && !scheme.eq_ignore_ascii_case("sqlite3") {
        return Err(unsupported());
    }
    let rest = &url[scheme_end + 1..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() || rest == ":memory:" {
        return Err(unsupported());
    }
    Ok(PathBuf::from(rest))
}

/// A URL scheme is two or more letters (so `C:\db` stays a Windows path).
fn looks_like_scheme(s: &str) -> bool {
    s.len() >= 2
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls() {
        let env = Environment {
            pg_password: Some("from-env".into()),
            ..Environment::default()
        };
        let db = database_from_url("postgresql://app@h/shop", &env, Path::new("/")).unwrap();
        match db {
            Database::Postgres(url) => {
                assert_eq!(url.password(), Some("from-env"));
                assert_eq!(url.redacted(), "postgres://app@h:5432/shop");
            }
            other => panic!("{other:?}"),
        }
        let err =
            database_from_url("postgres://app:pw@h:99999/shop", &env, Path::new("/")).unwrap_err();
        assert_eq!(err.code(), "invalid-url");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            database_path_from_url("content.db").unwrap(),
            PathBuf::from("content.db")
        );
        assert_eq!(
            database_path_from_url("sqlite:data/c.db").unwrap(),
            PathBuf::from("data/c.db")
        );
        assert_eq!(
            database_path_from_url("sqlite://c.db").unwrap(),
            PathBuf::from("c.db")
        );
        assert_eq!(
            database_path_from_url("sqlite:///abs/c.db").unwrap(),
            PathBuf::from("/abs/c.db")
        );
        assert_eq!(
            database_path_from_url("sqlite://c.db?mode=rwc").unwrap(),
            PathBuf::from("c.db")
        );
        let err = database_path_from_url("postgres://u@h/db").unwrap_err();
        assert_eq!(err.code(), "unsupported-url");
        assert_eq!(
            database_path_from_url("sqlite::memory:")
                .unwrap_err()
                .code(),
            "unsupported-url"
        );
    }

    #[test]
    fn precedence_and_config_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("app/sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            dir.path().join("app/dbtool.toml"),
            "database = \"data/app.db\"\nmigrations = \"db/migrations\"\n[backup]\nkeep = 3\n",
        )
        .unwrap();
        let env = Environment {
            cwd: sub.clone(),
            ..Default::default()
        };
        let config = Config::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(
            config.database.value.place(),
            dir.path().join("app/data/app.db")
        );
        assert_eq!(
            config.migrations.value,
            dir.path().join("app/db/migrations")
        );
        assert_eq!(config.backup_keep, Some(3));
        assert!(matches!(config.database.source, Source::ConfigFile(_)));

        let env = Environment {
            database_url: Some("sqlite:env.db".into()),
            ..env
        };
        let config = Config::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(config.database.value.place(), sub.join("env.db"));
        assert_eq!(config.database.source, Source::Env("DATABASE_URL".into()));

        let overrides = Overrides {
            database: Some("flag.db".into()),
            ..Default::default()
        };
        let config = Config::resolve(&overrides, &env).unwrap();
        assert_eq!(config.database.value.place(), sub.join("flag.db"));
    }

    #[test]
    fn unknown_config_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dbtool.toml"), "databse = \"x.db\"\n").unwrap();
        let env = Environment {
            cwd: dir.path().to_path_buf(),
            ..Default::default()
        };
        let err = Config::resolve(&Overrides::default(), &env).unwrap_err();
        assert_eq!(err.code(), "config-invalid");
        assert!(err.to_string().contains("databse"), "{err}");
    }
}
