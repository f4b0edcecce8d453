//! PostgreSQL archives in dbtool backups, checked without a server: the client tools
//! (`pg_dump`, `pg_restore`: found on PATH, connected through the environment so the password
//! is never on a command line), and [`check_archive`], the full read of a backup's archive that
//! a backup passes before it gets its final name and before a restore touches anything.
//!
//! The file is decompressed (zstd checksum, content hash) and the archive fed at once to
//! `pg_restore --list` (its table of contents) and `pg_restore -f -` (every entry and every row,
//! read as a restore reads them); the rows of each table are counted from that output, which is
//! what a restored database is compared against. Needs no cargo feature: a SQLite-only build
//! still verifies PostgreSQL backups.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use serde::Serialize;

use super::format::{BackupMeta, Engine};
use super::{read_entry, read_payload, BackupError, Hash, Phase, Progress};
use crate::db::PgUrl;

/// How much of a tool's standard error an error message keeps.
const STDERR_LIMIT: usize = 8 << 10;

/// The major version in a version string: "15.18 (Debian …)" → (15, 0), "9.6.24" → (9, 6)
/// (before 10 the major version had two parts).
pub fn major_version(version: &str) -> Option<(u32, u32)> {
    let token = version
        .split_whitespace()
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = token.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some((first, 0));
    }
    let second: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((first, second))
}

/// `tool --version`, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
pub fn tool_version(tool: &'static str) -> Result<String, BackupError> {
    let output = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BackupError::ToolMissing { tool, source })?;
    if !output.status.success() {
        return Err(tool_failed(
            tool,
            "reporting its version",
            output.status,
            &output.stderr,
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A PostgreSQL client tool, connected to `url` through the environment (never on the command
/// line, where `ps` shows it), never prompting for a password.
pub(crate) fn tool(name: &'static str, url: Option<&PgUrl>) -> Command {
    let mut cmd = Command::new(name);
    if let Some(url) = url {
        // A service file or a password file of the environment must not pick another server.
        cmd.env_remove("PGSERVICE");
        for (key, value) in url.libpq_env() {
            cmd.env(key, value);
        }
    }
    cmd.arg("--no-password");
    cmd
}

/// Make every lock wait of `cmd`'s session end after `timeout` (SQLSTATE 55P03), through
/// libpq's PGOPTIONS after the URL's own options: for `pg_restore` (`pg_dump` resets
/// lock_timeout itself and has `--lock-wait-timeout` instead).
pub(crate) fn set_lock_timeout(cmd: &mut Command, url: &PgUrl, timeout: std::time::Duration) {
    let ms = timeout.as_millis().max(1);
    let options = match url.param("options") {
        Some(own) => format!("{own} -c lock_timeout={ms}"),
        None => format!("-c lock_timeout={ms}"),
    };
    cmd.env("PGOPTIONS", options);
}

/// Whether `pg_restore`'s stderr reports the lock timeout. The client tools give no SQLSTATE,
/// only the server's message, which is English unless the server's `lc_messages` says otherwise.
pub(crate) fn reports_lock_timeout(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("lock timeout")
}

pub(crate) fn spawn(cmd: &mut Command, name: &'static str) -> Result<Child, BackupError> {
    cmd.spawn()
        .map_err(|source| BackupError::ToolMissing { tool: name, source })
}

pub(crate) fn tool_failed(
    tool: &'static str,
    doing: &'static str,
    status: ExitStatus,
    stderr: &[u8],
) -> BackupError {
    let text = String::from_utf8_lossy(stderr);
    let mut text = text.trim().to_string();
    if text.len() > STDERR_LIMIT {
        let mut cut = STDERR_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" […]");
    }
    BackupError::ToolFailed {
        tool,
        doing,
        status: status.to_string(),
        stderr: if text.is_empty() {
            "(no message)".into()
        } else {
            text
        },
    }
}

/// Read all of `from` on a thread of `scope` (a tool's stderr, so it never blocks on a full pipe).
pub(crate) fn drain<'s, R: Read + Send + 's>(
    scope: &'s std::thread::Scope<'s, '_>,
    from: Option<R>,
) -> std::thread::ScopedJoinHandle<'s, Vec<u8>> {
    scope.spawn(move || {
        let mut out = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut out);
        }
        out
    })
}

/// What a full read of a backup's archive found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveContents {
    /// Entries in the archive's table of contents (`pg_restore --list`).
    pub toc_entries: usize,
    /// Rows per table in the archive's data, by qualified name as `pg_restore` writes it
    /// (`public.posts`, `public."Weird name"`); not counted while a backup is taken.
    pub tables: BTreeMap<String, u64>,
}

/// Decompress the PostgreSQL backup at `path` (zstd checksum, content hash as `hash` says) and
/// read the whole archive with `pg_restore` (`ArchiveReader`). Changes nothing anywhere; needs
/// no server.
pub fn check_archive(
    path: &Path,
    hash: Hash,
    progress: &mut dyn FnMut(Progress),
) -> Result<(BackupMeta, ArchiveContents), BackupError> {
    let meta = read_entry(path)?.meta.expect("read_entry returns metadata");
    if meta.engine != Engine::Postgres {
        return Err(BackupError::PayloadNotPgArchive { path: path.into() });
    }
    let mut reader = ArchiveReader::start(true)?;
    let read = read_payload(path, Phase::ReadBack, hash, progress, &mut |chunk| {
        reader.feed(chunk);
        Ok(())
    });
    match read {
        Ok(meta) => Ok((meta, reader.finish()?)),
        Err(e) => {
            reader.abort();
            Err(e)
        }
    }
}

/// A full read of a `pg_dump` archive fed to it chunk by chunk: `pg_restore --list` (the table
/// of contents) and `pg_restore -f -` (every entry and every row, as a restore reads them), at
/// once, the rows of each table counted from the script (or `-f /dev/null` when the counts are
/// not needed: a backup being taken). Their output is read on threads of their own, so neither
/// ever blocks on a full pipe.
pub(crate) struct ArchiveReader {
    list: Child,
    full: Child,
    list_in: Option<ChildStdin>,
    full_in: Option<ChildStdin>,
    list_out: JoinHandle<io::Result<usize>>,
    full_out: Option<JoinHandle<io::Result<BTreeMap<String, u64>>>>,
    list_err: JoinHandle<Vec<u8>>,
    full_err: JoinHandle<Vec<u8>>,
}

impl ArchiveReader {
    /// Start both tools; `rows`: read the script and count each table's rows.
    pub(crate) fn start(rows: bool) -> Result<Self, BackupError> {
        let pg_restore = |args: &[&str], output: Stdio| {
            spawn(
                tool("pg_restore", None)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(output)
                    .stderr(Stdio::piped()),
                "pg_restore",
            )
        };
        let mut list = pg_restore(&["--list"], Stdio::piped())?;
        let full = match rows {
            true => pg_restore(&["--file=-"], Stdio::piped()),
            false => pg_restore(&["--file=/dev/null"], Stdio::null()),
        };
        let mut full = match full {
            Ok(child) => child,
            Err(e) => {
                let _ = list.kill();
                let _ = list.wait();
                return Err(e);
            }
        };
        let list_stdout = list.stdout.take().expect("piped");
        let full_stdout = full.stdout.take();
        Ok(ArchiveReader {
            list_in: list.stdin.take(),
            full_in: full.stdin.take(),
            list_out: std::thread::spawn(move || count_toc(list_stdout)),
            full_out: full_stdout.map(|out| std::thread::spawn(move || count_rows(out))),
            list_err: drain_thread(list.stderr.take()),
            full_err: drain_thread(full.stderr.take()),
            list,
            full,
        })
    }

    /// The next bytes of the archive. `--list` stops reading after the table of contents, and
    /// a tool that fails stops reading: its pipe is then closed and its exit status says why.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        feed(&mut self.list_in, chunk);
        feed(&mut self.full_in, chunk);
    }

    /// The archive is incomplete or damaged (reported by the caller): stop both tools.
    pub(crate) fn abort(mut self) {
        drop(self.list_in.take());
        drop(self.full_in.take());
        let _ = self.list.kill();
        let _ = self.full.kill();
        let _ = self.list.wait();
        let _ = self.full.wait();
    }

    /// The whole archive was fed: both tools must have read it without an error.
    pub(crate) fn finish(mut self) -> Result<ArchiveContents, BackupError> {
        drop(self.list_in.take());
        drop(self.full_in.take());
        let waited = |child: &mut Child| {
            child.wait().map_err(|e| BackupError::Read {
                path: "pg_restore".into(),
                doing: "waiting for pg_restore",
                source: e,
            })
        };
        let list_status = waited(&mut self.list)?;
        let full_status = waited(&mut self.full)?;
        let list_out = self
            .list_out
            .join()
            .expect("pg_restore --list reader panicked");
        let full_out = match self.full_out.take() {
            Some(reader) => reader.join().expect("pg_restore reader panicked"),
            None => Ok(BTreeMap::new()),
        };
        let list_err = self.list_err.join().expect("stderr reader panicked");
        let full_err = self.full_err.join().expect("stderr reader panicked");
        for (status, stderr, doing) in [
            (list_status, list_err, "listing the backup's archive"),
            (full_status, full_err, "reading the backup's archive"),
        ] {
            if !status.success() {
                return Err(tool_failed("pg_restore", doing, status, &stderr));
            }
        }
        let output = |doing| {
            move |e| BackupError::Read {
                path: "pg_restore".into(),
                doing,
                source: e,
            }
        };
        Ok(ArchiveContents {
            toc_entries: list_out.map_err(output("reading pg_restore's list"))?,
            tables: full_out.map_err(output("reading pg_restore's output"))?,
        })
    }
}

/// Read all of `from` on a thread of its own (a tool's stderr).
fn drain_thread<R: Read + Send + 'static>(from: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut out);
        }
        out
    })
}

/// Write `chunk` to a tool's stdin; once the tool stops reading, stop feeding it.
pub(crate) fn feed(stdin: &mut Option<ChildStdin>, chunk: &[u8]) {
    if let Some(pipe) = stdin {
        if pipe.write_all(chunk).is_err() {
            *stdin = None;
        }
    }
}

/// Entries in `pg_restore --list` output (comment lines start with `;`).
fn count_toc(from: impl Read) -> io::Result<usize> {
    let mut n = 0;
    for line in BufReader::new(from).lines() {
        let line = line?;
        if !line.trim().is_empty() && !line.starts_with(';') {
            n += 1;
        }
    }
    Ok(n)
}

/// Rows per table in a SQL script `pg_restore` writes: the lines between `COPY <table> … FROM
/// stdin;` and `\.` (COPY's text format escapes newlines inside values, so one line is one row).
fn count_rows(from: impl Read) -> io::Result<BTreeMap<String, u64>> {
    let mut reader = BufReader::with_capacity(1 << 20, from);
    let mut tables = BTreeMap::new();
    let mut line = Vec::with_capacity(1 << 12);
    let mut current: Option<(String, u64)> = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        match &mut current {
            Some((_, rows)) if line.as_slice() != b"\\.\n" => *rows += 1,
            Some(_) => {
                let (table, rows) = current.take().expect("in a COPY");
                *tables.entry(table).or_insert(0) += rows;
            }
            None => {
                if let Some(table) = copy_target(&line) {
                    current = Some((table, 0));
                }
            }
        }
    }
    Ok(tables)
}

/// The table of a `COPY <table> [(columns)] FROM stdin;` line.
fn copy_target(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let rest = text.strip_prefix("COPY ")?.strip_suffix(" FROM stdin;")?;
    // The qualified name: identifiers, quoted ones with "" inside, joined by dots.
    let mut end = 0;
    let mut quoted = false;
    let bytes = rest.as_bytes();
    while end < bytes.len() {
        match bytes[end] {
            b'"' => quoted = !quoted,
            b' ' | b'(' if !quoted => break,
            _ => {}
        }
        end += 1;
    }
    let name = &rest[..end];
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            major_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some((15, 0))
        );
        assert_eq!(major_version("pg_dump (PostgreSQL) 9.6"), Some((9, 6)));
        assert_eq!(major_version("pg_dump (PostgreSQL) 17beta1"), Some((17, 0)));
        assert_eq!(major_version("nothing"), None);
    }

    #[test]
    fn counts_copy_rows() {
        let script = b"SET x = 1;\nCOPY public.posts (id, body) FROM stdin;\n1\ta\\nb\n2\tc\n\\.\n\
COPY public.\"We ird\" (id) FROM stdin;\n\\.\nCOPY public.\"x (y\"  FROM stdin;\n7\n\\.\n";
        let tables = count_rows(&script[..]).unwrap();
        assert_eq!(tables["public.posts"], 2);
        assert_eq!(tables["public.\"We ird\""], 0);
        assert_eq!(tables["public.\"x (y\""], 1);
        assert_eq!(tables.len(), 3);
    }
}
