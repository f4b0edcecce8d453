//! The backup file format: one zstd skippable frame holding the metadata, then one ordinary zstd
//! frame holding the raw SQLite database image.
//!
//! ```text
//! [skippable frame: magic 0x184D2A5E | u32 LE length | "DBTOOL-BACKUP\n" + JSON, space-padded]
//! [zstd frame with content checksum: the database file, byte for byte]
//! ```
//!
//! Invariants:
//! - `zstd -d backup.db.zst` ignores the skippable frame and yields a plain SQLite file; there is
//!   no private container to unpack.
//! - The metadata sits at the start, so listing reads a few hundred bytes, never the payload.
//! - The metadata frame has a fixed length chosen before the payload is written; the content hash
//!   (the only value known at the end) has a fixed width, so the frame is rewritten in place once
//!   the payload is done, without moving anything.
//! - Every backup records a content hash of the image: format 2 the XXH3-128 (`xxh3_128`);
//!   format 1 a SHA-256 (`sha256`), and from later 1.x writers also the XXH3-128. Readers accept
//!   both formats; a metadata frame without any content hash is refused.
//! - The payload frame always carries zstd's content checksum; a reader refuses a frame without it.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::BackupError;

/// The format version this dbtool writes and the newest it reads (it reads every older one too).
/// 2: the content hash is the XXH3-128 alone (computing a SHA-256 beside it cost a fifth of the
/// backup's time beyond the compression and proved nothing more against damage), and the
/// metadata names the engine ([`Engine::Postgres`] backups hold a `pg_dump` archive); an older
/// dbtool says it needs upgrading instead of failing on fields it does not know. 1: SQLite
/// only, with a SHA-256.
pub const FORMAT_VERSION: u32 = 2;
/// Skippable-frame magic used for the metadata (any of 0x184D2A50..=0x184D2A5F is skippable).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number of an ordinary zstd frame.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// First bytes of the metadata payload, so a random skippable frame is not taken for ours.
const META_PREFIX: &[u8] = b"DBTOOL-BACKUP\n";
/// Refuse metadata frames larger than this (a corrupt length must not make us allocate gigabytes).
const MAX_META_LEN: u32 = 1 << 20;
/// Placeholder for the XXH3-128 until the payload is done; same width as the real value.
const HASH_PLACEHOLDER: &str = "00000000000000000000000000000000";
/// Every SQLite database file starts with these 16 bytes.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How the snapshot was read from the live database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotMethod {
    /// Pages streamed from the `sqlite_dbpage` virtual table inside one read transaction.
    Dbpage,
    /// The online backup API, one `step(-1)` into a temporary file.
    BackupApi,
    /// `pg_dump -Fc -Z0` (one consistent snapshot of the PostgreSQL database, taken by pg_dump).
    PgDump,
}

/// The database engine a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// A SQLite database image, byte for byte.
    #[default]
    Sqlite,
    /// A `pg_dump` custom-format archive (`pg_restore` reads it).
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// Metadata of SQLite backups stays as older dbtools wrote it (no `engine` key).
    pub(crate) fn is_sqlite(&self) -> bool {
        *self == Engine::Sqlite
    }

    /// The first bytes of the payload of a backup of this engine.
    pub fn payload_magic(self) -> &'static [u8] {
        match self {
            Engine::Sqlite => SQLITE_HEADER,
            Engine::Postgres => PG_ARCHIVE_MAGIC,
        }
    }
}

/// Every `pg_dump` custom-format archive starts with these 5 bytes.
pub const PG_ARCHIVE_MAGIC: &[u8; 5] = b"PGDMP";

/// What a PostgreSQL backup says about the server and the tools (never the password).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgMeta {
    /// The URL dbtool connected with, redacted (`postgres://user@host:port/dbname`).
    pub url: String,
    pub database: String,
    /// `SHOW server_version`.
    pub server_version: String,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
}

/// Everything a backup says about itself. Serialised as JSON in the metadata frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupMeta {
    pub format_version: u32,
    pub dbtool_version: String,
    /// Canonical path of the database the backup was taken from; for PostgreSQL
    /// `postgres://host:port/dbname` (no user, no password: the same database whoever connects).
    pub source_path: String,
    pub host: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub reason: String,
    /// `max(version)` of `refinery_schema_history`, `None` when the table does not exist.
    pub schema_version: Option<i64>,
    pub page_size: u32,
    pub page_count: u64,
    /// Size of the raw database image in bytes (`page_size * page_count`); for PostgreSQL the
    /// size of the `pg_dump` archive (page size and count are 0).
    pub image_size: u64,
    /// SHA-256 of the raw database image, lowercase hex: recorded by format 1 (older dbtools),
    /// checked by `backups verify` when present; not computed any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// XXH3-128 of the raw database image, lowercase hex: the content hash (format 2; absent in
    /// backups of the first format-1 dbtools). As good as a SHA-256 against damage (neither is a
    /// signature: whoever can rewrite the file can rewrite the hash) for a twentieth of the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh3_128: Option<String>,
    pub zstd_level: i32,
    pub snapshot_method: SnapshotMethod,
    /// Absent (SQLite) in the metadata of SQLite backups.
    #[serde(default, skip_serializing_if = "Engine::is_sqlite")]
    pub engine: Engine,
    /// PostgreSQL backups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PgMeta>,
}

impl BackupMeta {
    pub(crate) fn with_placeholder_hash(mut self) -> Self {
        self.sha256 = None;
        self.xxh3_128 = Some(HASH_PLACEHOLDER.to_string());
        self
    }
}

/// Encode the metadata frame, padded to `frame_len` bytes in total (`None`: pick a length with
/// room to spare). Returns the bytes; their length is the frame length.
pub(crate) fn encode_header(meta: &BackupMeta, frame_len: Option<usize>) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    let body_len = META_PREFIX.len() + json.len();
    let total = match frame_len {
        Some(n) => n,
        // 8 bytes of frame header, then round up to 512 with at least 64 bytes of slack.
        None => (8 + body_len + 64).div_ceil(512) * 512,
    };
    if 8 + body_len > total {
        return Err(io::Error::other(
            "backup metadata grew past its reserved frame",
        ));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&((total - 8) as u32).to_le_bytes());
    out.extend_from_slice(META_PREFIX);
    out.extend_from_slice(&json);
    // JSON allows trailing whitespace.
    out.resize(total, b' ');
    Ok(out)
}

/// Read the metadata frame at the start of `reader`, leaving it positioned at the payload frame,
/// whose header is checked (zstd magic, content checksum flag) and consumed into the return value
/// so the caller can feed it back to the decoder.
pub(crate) fn read_header(
    path: &Path,
    reader: &mut impl Read,
) -> Result<(BackupMeta, [u8; 5]), BackupError> {
    let not_backup = |detail: &str| BackupError::NotABackup {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let mut head = [0u8; 8];
    read_exact_or(reader, &mut head, path, || {
        not_backup("the file is too short")
    })?;
    let magic = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    if magic != SKIPPABLE_MAGIC {
        return Err(not_backup(if magic == ZSTD_MAGIC {
            "it is a plain zstd file without dbtool's metadata frame"
        } else {
            "it does not start with dbtool's metadata frame"
        }));
    }
    let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if len > MAX_META_LEN || (len as usize) < META_PREFIX.len() {
        return Err(not_backup("its metadata frame has an impossible length"));
    }
    let mut body = vec![0u8; len as usize];
    read_exact_or(reader, &mut body, path, || BackupError::Corrupt {
        path: path.to_path_buf(),
        detail: "the file ends inside its metadata frame".into(),
        source: None,
    })?;
    if !body.starts_with(META_PREFIX) {
        return Err(not_backup("its first frame is not dbtool metadata"));
    }
    // Read the format version first, so a newer format is reported as such rather than as
    // missing fields.
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let json = &body[META_PREFIX.len()..];
    let version: Version = serde_json::from_slice(json).map_err(|e| BackupError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("its metadata is not readable: {e}"),
        source: None,
    })?;
    if version.format_version > FORMAT_VERSION {
        return Err(BackupError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version.format_version,
            supported: FORMAT_VERSION,
        });
    }
    let meta: BackupMeta = serde_json::from_slice(json).map_err(|e| BackupError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("its metadata is not readable: {e}"),
        source: None,
    })?;
    if meta.xxh3_128.is_none() && (meta.format_version >= 2 || meta.sha256.is_none()) {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: "its metadata records no content hash of the database".into(),
            source: None,
        });
    }

    let mut frame = [0u8; 5];
    read_exact_or(reader, &mut frame, path, || BackupError::Corrupt {
        path: path.to_path_buf(),
        detail: "the file ends after its metadata: the database payload is missing".into(),
        source: None,
    })?;
    if u32::from_le_bytes(frame[0..4].try_into().expect("4 bytes")) != ZSTD_MAGIC {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: "the payload is not a zstd frame".into(),
            source: None,
        });
    }
    // Frame_Header_Descriptor bit 2: Content_Checksum_flag.
    if frame[4] & 0b100 == 0 {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: "the payload frame has no content checksum".into(),
            source: None,
        });
    }
    Ok((meta, frame))
}

fn read_exact_or(
    reader: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    on_eof: impl FnOnce() -> BackupError,
) -> Result<(), BackupError> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(on_eof()),
        Err(e) => Err(BackupError::Read {
            path: PathBuf::from(path),
            doing: "reading the backup header",
            source: e,
        }),
    }
}

/// Hex-encode a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn meta() -> BackupMeta {
        BackupMeta {
            format_version: FORMAT_VERSION,
            dbtool_version: "0.1.0".into(),
            source_path: "/srv/app/content.db".into(),
            host: "web1".into(),
            created_at: datetime!(2025-01-02 03:04:05 UTC),
            reason: "manual".into(),
            schema_version: Some(4),
            page_size: 4096,
            page_count: 10,
            image_size: 40960,
            sha256: None,
            xxh3_128: Some(HASH_PLACEHOLDER.into()),
            zstd_level: 3,
            snapshot_method: SnapshotMethod::Dbpage,
            engine: Engine::Sqlite,
            postgres: None,
        }
    }

    #[test]
    fn header_round_trips_and_is_rewritable_in_place() {
        let first = encode_header(&meta(), None).unwrap();
        assert_eq!(first.len() % 512, 0);
        let mut done = meta();
        done.xxh3_128 = Some("ab".repeat(16));
        let second = encode_header(&done, Some(first.len())).unwrap();
        assert_eq!(first.len(), second.len());

        let mut file = second.clone();
        // A zstd frame header with the checksum flag set follows the metadata.
        file.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
        file.push(0b100);
        let (read, _) = read_header(Path::new("x"), &mut file.as_slice()).unwrap();
        assert_eq!(read, done);
    }

    #[test]
    fn frame_without_checksum_is_refused() {
        let mut file = encode_header(&meta(), None).unwrap();
        file.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
        file.push(0);
        let err = read_header(Path::new("x"), &mut file.as_slice()).unwrap_err();
        assert_eq!(err.code(), "backup-corrupt");
    }

    #[test]
    fn plain_zstd_and_random_files_are_not_backups() {
        let plain = zstd::encode_all(&b"hello"[..], 3).unwrap();
        let err = read_header(Path::new("x"), &mut plain.as_slice()).unwrap_err();
        assert_eq!(err.code(), "not-a-backup");
        assert!(err.to_string().contains("plain zstd"), "{err}");
        let err = read_header(Path::new("x"), &mut &b"SQLite format 3\0"[..]).unwrap_err();
        assert_eq!(err.code(), "not-a-backup");
    }

    #[test]
    fn metadata_without_a_content_hash_is_refused_and_format_1_is_read() {
        let framed = |m: &BackupMeta| {
            let mut file = encode_header(m, None).unwrap();
            file.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
            file.push(0b100);
            file
        };
        let mut none = meta();
        none.xxh3_128 = None;
        let err = read_header(Path::new("x"), &mut framed(&none).as_slice()).unwrap_err();
        assert_eq!(err.code(), "backup-corrupt");
        assert!(err.to_string().contains("no content hash"), "{err}");
        // Format 2 requires the XXH3-128 even beside a SHA-256.
        none.sha256 = Some("ab".repeat(32));
        let err = read_header(Path::new("x"), &mut framed(&none).as_slice()).unwrap_err();
        assert_eq!(err.code(), "backup-corrupt");
        // Format 1 as the first dbtools wrote it: a SHA-256 only.
        none.format_version = 1;
        let (read, _) = read_header(Path::new("x"), &mut framed(&none).as_slice()).unwrap();
        assert_eq!(read, none);
    }

    #[test]
    fn newer_format_is_reported_as_such() {
        let mut m = meta();
        m.format_version = FORMAT_VERSION + 1;
        let file = encode_header(&m, None).unwrap();
        let err = read_header(Path::new("x"), &mut file.as_slice()).unwrap_err();
        assert_eq!(err.code(), "backup-format-unsupported");
    }
}
