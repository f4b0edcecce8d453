//! PostgreSQL connection URLs: `postgres://` and `postgresql://`, parsed the way libpq reads them,
//! and shown only with the password removed.
//!
//! The password never leaves this type except to the driver and, through the environment, to
//! `pg_dump`/`pg_restore` (never on a command line, where `ps` would show it). `Display` and
//! `Debug` print [`PgUrl::redacted`], so an error, a report, JSON output or backup metadata cannot
//! carry it by accident.

use std::collections::BTreeMap;
use std::fmt;

/// A parsed `postgres://user:password@host:port/dbname?param=value` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    user: Option<String>,
    password: Option<String>,
    /// A host name, an IP address, or a folder holding the server's Unix socket.
    host: Option<String>,
    port: Option<u16>,
    dbname: Option<String>,
    /// Other libpq parameters (`sslmode`, `application_name`, `connect_timeout`, `options`, …).
    params: BTreeMap<String, String>,
}

/// Why a URL could not be read (the message never holds the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrlError(pub String);

impl fmt::Display for PgUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgUrlError {}

/// Whether `url` names a PostgreSQL database (by its scheme).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl PgUrl {
    /// Parse a `postgres://` or `postgresql://` URL. `env_password` (`PGPASSWORD`, read by the
    /// caller) is used when the URL holds none; `env_user` (`PGUSER`, else the login name) when it
    /// names no user.
    pub fn parse(
        url: &str,
        env_password: Option<&str>,
        env_user: Option<&str>,
    ) -> Result<PgUrl, PgUrlError> {
        let bad = |why: &str| PgUrlError(format!("{why} in {}", redact_raw(url)));
        let rest = strip_scheme(url).ok_or_else(|| bad("not a postgres:// URL"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (
                    Some(decode(u).map_err(|e| bad(&e))?),
                    Some(decode(p).map_err(|e| bad(&e))?),
                ),
                None => (Some(decode(info).map_err(|e| bad(&e))?), None),
            },
            None => (None, None),
        };
        if hostport.contains(',') {
            return Err(bad("several hosts are not supported"));
        }
        let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
        let dbname = match path {
            Some(p) if !p.is_empty() => Some(decode(p).map_err(|e| bad(&e))?),
            _ => None,
        };
        let mut parsed = PgUrl {
            user: user.filter(|u| !u.is_empty()),
            password: password.filter(|p| !p.is_empty()),
            host: host.map(|h| decode(&h)).transpose().map_err(|e| bad(&e))?,
            port,
            dbname,
            params: BTreeMap::new(),
        };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("a parameter without `=`"))?;
            let value = decode(value).map_err(|e| bad(&e))?;
            match key {
                "user" => parsed.user = Some(value),
                "password" => parsed.password = Some(value),
                "host" => parsed.host = Some(value),
                "port" => parsed.port = Some(value.parse().map_err(|_| bad("an invalid port"))?),
                "dbname" => parsed.dbname = Some(value),
                _ => {
                    parsed.params.insert(key.to_string(), value);
                }
            }
        }
        if parsed.password.is_none() {
            parsed.password = env_password.filter(|p| !p.is_empty()).map(str::to_string);
        }
        if parsed.user.is_none() {
            parsed.user = env_user.filter(|u| !u.is_empty()).map(str::to_string);
        }
        if parsed.user.is_none() {
            return Err(bad("no user (give one in the URL or in PGUSER)"));
        }
        Ok(parsed)
    }

    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or_default()
    }

    /// The database name (libpq's default: the user name).
    pub fn dbname(&self) -> &str {
        self.dbname.as_deref().unwrap_or_else(|| self.user())
    }

    /// The host, or `localhost` when the URL names none.
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(5432)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// The same server and credentials, another database (scratch databases, the maintenance
    /// database `postgres` that `CREATE DATABASE` runs from).
    pub fn with_dbname(&self, dbname: &str) -> PgUrl {
        PgUrl {
            dbname: Some(dbname.to_string()),
            ..self.clone()
        }
    }

    /// `postgres://user@host:port/dbname` (with its non-secret parameters): safe to print.
    pub fn redacted(&self) -> String {
        let mut out = format!("postgres://{}@", encode(self.user()));
        let host = self.host();
        if host.starts_with('/') {
            out.push_str(&encode(host));
        } else if host.contains(':') {
            out.push_str(&format!("[{host}]"));
        } else {
            out.push_str(host);
        }
        out.push_str(&format!(":{}/{}", self.port(), encode(self.dbname())));
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    /// The connection as libpq environment variables, for `pg_dump`, `pg_restore` and `psql`
    /// (so the password is never on a command line).
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host().to_string()),
            ("PGPORT", self.port().to_string()),
            ("PGUSER", self.user().to_string()),
            ("PGDATABASE", self.dbname().to_string()),
        ];
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD", password.clone()));
        }
        for (key, var) in [
            ("sslmode", "PGSSLMODE"),
            ("application_name", "PGAPPNAME"),
            ("connect_timeout", "PGCONNECT_TIMEOUT"),
            ("options", "PGOPTIONS"),
        ] {
            if let Some(value) = self.params.get(key) {
                env.push((var, value.clone()));
            }
        }
        env
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

fn strip_scheme(url: &str) -> Option<&str> {
    for scheme in ["postgresql://", "postgres://"] {
        if url.len() >= scheme.len() && url[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&url[scheme.len()..]);
        }
    }
    None
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or empty.
fn split_host_port(s: &str) -> Result<(Option<String>, Option<u16>), String> {
    if s.is_empty() {
        return Ok((None, None));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("an unclosed `[` in the host")?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("text after the `]` of the host".into()),
        };
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| "an invalid port".to_string())?,
        ),
    };
    Ok(((!host.is_empty()).then(|| host.to_string()), port))
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "an invalid %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape that is not UTF-8".to_string())
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL as typed, with anything between `://user:` and `@` blanked: for errors about URLs that
/// could not be parsed.
pub fn redact_raw(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{}{shown}{}", &url[..start], &rest[at..])
        }
        None => url.to_string(),
    }
    .split("password=")
    .enumerate()
    .map(|(i, part)| {
        if i == 0 {
            part.to_string()
        } else {
            let end = part.find('&').unwrap_or(part.len());
            format!("password=***{}", &part[end..])
        }
    })
    .collect::<Vec<_>>()
    .join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_defaults() {
        let url = PgUrl::parse(
            "postgres://app:s3cr%40t@db.example:6543/shop?sslmode=disable",
            None,
            None,
        )
        .unwrap();
        assert_eq!(url.user(), "app");
        assert_eq!(url.password(), Some("s3cr@t"));
        assert_eq!(url.host(), "db.example");
        assert_eq!(url.port(), 6543);
        assert_eq!(url.dbname(), "shop");
        assert_eq!(url.param("sslmode"), Some("disable"));
        assert_eq!(
            url.redacted(),
            "postgres://app@db.example:6543/shop?sslmode=disable"
        );
        assert!(!format!("{url} {url:?}").contains("s3cr"));

        let url = PgUrl::parse("postgresql://localhost", Some("pw"), Some("me")).unwrap();
        assert_eq!((url.user(), url.dbname(), url.port()), ("me", "me", 5432));
        assert_eq!(url.password(), Some("pw"));

        let url = PgUrl::parse("postgres://u@[::1]:5433/d", None, None).unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 5433));
        assert_eq!(url.redacted(), "postgres://u@[::1]:5433/d");

        let url = PgUrl::parse("postgres://u@%2Fvar%2Frun%2Fpostgresql/d", None, None).unwrap();
        assert_eq!(url.host(), "/var/run/postgresql");
        let url = PgUrl::parse("postgres:///d?host=/tmp/pg&user=x&password=y", None, None).unwrap();
        assert_eq!(
            (url.host(), url.user(), url.password()),
            ("/tmp/pg", "x", Some("y"))
        );
        assert!(!url.redacted().contains('y') || !url.redacted().contains("password"));
        assert!(url.libpq_env().contains(&("PGPASSWORD", "y".to_string())));
    }

    #[test]
    fn errors_never_show_the_password() {
        for bad in [
            "postgres://u:hunter2@h:notaport/d",
            "postgres://u:hunter2@h/d?password=hunter2&broken",
            "postgres://u:hunter2@[::1/d",
        ] {
            let e = PgUrl::parse(bad, None, None).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        assert!(PgUrl::parse("postgres://h/d", None, None).is_err());
        assert!(is_postgres_url("PostgreSQL://x") && !is_postgres_url("sqlite:x"));
    }
}
