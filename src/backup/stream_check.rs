//! Verifying a backup as it is written, instead of decompressing the finished file again.
//!
//! What a read-back right after writing proves comes from the page cache, not the disk: that the
//! file holds the compressor's output and that this output is a complete zstd frame for the
//! image. Both are checked on the stream as it is produced, for almost no CPU (a decompression
//! costs about a sixth of the compression's CPU, which on two cores is a sixth more wall time):
//! - [`Tee`] takes a fast digest (XXH3-128) of every compressed byte on its way to the file, and
//!   [`FrameCheck`] walks the zstd frame in it: header (content size = the image's size, content
//!   checksum present), every block header and length, the last block, then the checksum, which
//!   must be the XXH64 of the image that was read (computed beside its XXH3-128): so the frame
//!   carries exactly the snapshot's identity, and `zstd -d` or a restore checks it on decoding.
//! - [`check_file`] reads the finished file back: its metadata must be the one written and every
//!   byte after it the stream that was checked (same length, same digest).
//!
//! What this does not re-prove is that libzstd's encoder output decodes to its input; a restore
//! and `dbtool backups verify` decode and check everything (zstd checksum, content hash, SQLite).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use super::format::{self, BackupMeta};
use super::BackupError;

/// A writer that digests what passes through and walks the zstd frame in it.
pub(crate) struct Tee<W: Write> {
    pub inner: W,
    pub digest: Xxh3,
    pub len: u64,
    pub frame: FrameCheck,
    /// Where a copy of the compressed stream goes, to be decoded and checked as it is written
    /// (PostgreSQL backups: see `backup::postgres`). A receiver that has stopped is not an
    /// error here: the decoding side reports why it stopped.
    pub observe: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = &buf[..n];
        self.digest.update(done);
        self.len += n as u64;
        self.frame.feed(done);
        if let Some(tx) = &self.observe {
            if tx.send(done.to_vec()).is_err() {
                self.observe = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where [`FrameCheck`] is in the frame.
#[derive(Debug)]
enum At {
    /// Collecting the frame header (its length is known after its first 5 bytes).
    Header,
    /// Collecting a 3-byte block header.
    BlockHeader,
    /// Skipping block content; `last` when it is the frame's last block.
    Block {
        left: u64,
        last: bool,
    },
    /// Collecting the 4-byte content checksum.
    Checksum,
    Done,
}

/// A streaming walk over one zstd frame (RFC 8878): header, blocks, checksum. Records the first
/// problem; [`FrameCheck::finish`] reports it.
#[derive(Debug)]
pub(crate) struct FrameCheck {
    at: At,
    buf: Vec<u8>,
    content_size: Option<u64>,
    checksum: Option<u32>,
    trailing: bool,
    problem: Option<&'static str>,
}

impl Default for FrameCheck {
    fn default() -> Self {
        Self {
            at: At::Header,
            buf: Vec::with_capacity(32),
            content_size: None,
            checksum: None,
            trailing: false,
            problem: None,
        }
    }
}

impl FrameCheck {
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.problem.is_none() {
            match self.at {
                At::Header => {
                    let need = match self.buf.get(4) {
                        Some(&fhd) => header_len(fhd),
                        None => 5,
                    };
                    data = self.collect(data, need);
                    if self.buf.len() == 5 && header_len(self.buf[4]) > 5 {
                        continue;
                    }
                    if self.buf.len() == need {
                        self.header();
                    }
                }
                At::BlockHeader => {
                    data = self.collect(data, 3);
                    if self.buf.len() == 3 {
                        let h = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], 0]);
                        self.buf.clear();
                        let (last, kind, size) = (h & 1 == 1, (h >> 1) & 3, u64::from(h >> 3));
                        let left = match kind {
                            0 | 2 if size <= 128 << 10 => size, // raw, compressed
                            1 => 1,                             // RLE: one byte repeated
                            _ => {
                                self.problem = Some("a block header is invalid");
                                return;
                            }
                        };
                        self.at = At::Block { left, last };
                        self.end_of_block();
                    }
                }
                At::Block { left, last } => {
                    let take = (left.min(data.len() as u64)) as usize;
                    data = &data[take..];
                    self.at = At::Block {
                        left: left - take as u64,
                        last,
                    };
                    self.end_of_block();
                }
                At::Checksum => {
                    data = self.collect(data, 4);
                    if self.buf.len() == 4 {
                        self.checksum = Some(u32::from_le_bytes(
                            self.buf[..4].try_into().expect("4 bytes"),
                        ));
                        self.at = At::Done;
                    }
                }
                At::Done => {
                    self.trailing = true;
                    return;
                }
            }
        }
    }

    /// Move bytes from `data` into the buffer until it holds `need`; returns the rest.
    fn collect<'a>(&mut self, data: &'a [u8], need: usize) -> &'a [u8] {
        let take = need.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        &data[take..]
    }

    fn header(&mut self) {
        let b = std::mem::take(&mut self.buf);
        if u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) != 0xFD2F_B528 {
            self.problem = Some("the payload is not a zstd frame");
            return;
        }
        let fhd = b[4];
        if fhd & 0b1000 != 0 {
            self.problem = Some("the frame header uses a reserved bit");
            return;
        }
        if fhd & 0b100 == 0 {
            self.problem = Some("the frame has no content checksum");
            return;
        }
        let single = fhd & 0b10_0000 != 0;
        let dict = [0, 1, 2, 4][usize::from(fhd & 3)];
        let fcs = fcs_len(fhd);
        let at = 5 + usize::from(!single) + dict;
        let field = &b[at..at + fcs];
        let mut v = [0u8; 8];
        v[..fcs].copy_from_slice(field);
        let size = u64::from_le_bytes(v);
        self.content_size = match fcs {
            0 => None,
            2 => Some(size + 256),
            _ => Some(size),
        };
        self.at = At::BlockHeader;
    }

    fn end_of_block(&mut self) {
        if let At::Block { left: 0, last } = self.at {
            self.at = if last { At::Checksum } else { At::BlockHeader };
        }
    }

    /// The frame must be complete, declare `image_size` bytes (when `size_declared`: else it
    /// may declare none), and carry the checksum that XXH64 gives for the image (`image_xxh64`).
    pub(crate) fn finish(
        &self,
        image_size: u64,
        size_declared: bool,
        image_xxh64: u64,
        path: &Path,
    ) -> Result<(), BackupError> {
        let corrupt = |detail: &str| BackupError::Corrupt {
            path: path.into(),
            detail: format!("the compressed stream as written: {detail}"),
            source: None,
        };
        if let Some(problem) = self.problem {
            return Err(corrupt(problem));
        }
        if self.trailing {
            return Err(corrupt("there are bytes after the frame"));
        }
        if !matches!(self.at, At::Done) {
            return Err(corrupt("the frame is incomplete"));
        }
        let size_ok = match self.content_size {
            Some(declared) => declared == image_size,
            None => !size_declared,
        };
        if !size_ok {
            return Err(corrupt("the frame does not declare the image's size"));
        }
        if self.checksum != Some(image_xxh64 as u32) {
            return Err(corrupt("the frame's checksum is not the image's"));
        }
        Ok(())
    }
}

/// Bytes of Frame_Content_Size for a Frame_Header_Descriptor.
fn fcs_len(fhd: u8) -> usize {
    match fhd >> 6 {
        0 if fhd & 0b10_0000 != 0 => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    }
}

/// Length of the frame header (magic included) given its descriptor byte.
fn header_len(fhd: u8) -> usize {
    5 + usize::from(fhd & 0b10_0000 == 0) + [0, 1, 2, 4][usize::from(fhd & 3)] + fcs_len(fhd)
}

/// The receiving end of [`Tee::observe`], as a reader (for a zstd decoder).
pub(crate) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    pub(crate) fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                // The writer is done (or gone): end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Read the finished file back: its metadata must be `meta` and the bytes after it exactly the
/// stream that was verified (`len` bytes with XXH3-128 `digest`).
pub(crate) fn check_file(
    path: &Path,
    meta: &BackupMeta,
    len: u64,
    digest: u128,
) -> Result<(), BackupError> {
    let differs = |detail: &str| BackupError::Corrupt {
        path: path.into(),
        detail: format!("the file read back differs from what was written: {detail}"),
        source: None,
    };
    let file = File::open(path).map_err(|e| BackupError::Read {
        path: path.into(),
        doing: "reading the backup back",
        source: e,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let (read, frame_start) = format::read_header(path, &mut reader)?;
    if read != *meta {
        return Err(differs("its metadata"));
    }
    let mut hash = Xxh3::new();
    hash.update(&frame_start);
    let mut total = frame_start.len() as u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(BackupError::Read {
                    path: path.into(),
                    doing: "reading the backup back",
                    source: e,
                })
            }
        };
        hash.update(&buf[..n]);
        total += n as u64;
    }
    if total != len || hash.digest128() != digest {
        return Err(differs("its compressed payload"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], threads: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut out, 3).unwrap();
        enc.include_checksum(true).unwrap();
        enc.include_contentsize(true).unwrap();
        enc.set_pledged_src_size(Some(data.len() as u64)).unwrap();
        if threads > 0 {
            enc.multithread(threads).unwrap();
        }
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        out
    }

    fn check(stream: &[u8], chunk: usize, data: &[u8]) -> Result<(), String> {
        let mut f = FrameCheck::default();
        for c in stream.chunks(chunk) {
            f.feed(c);
        }
        let xxh = xxhash_rust::xxh64::xxh64(data, 0);
        f.finish(data.len() as u64, true, xxh, Path::new("x"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn walks_real_frames_in_any_chunking_and_catches_damage() {
        // Compressible text, incompressible noise (raw blocks) and a run (RLE blocks).
        let mut data = b"lorem ipsum dolor sit amet ".repeat(20_000);
        let mut x = 1u64;
        data.extend((0..300_000).map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (x >> 56) as u8
        }));
        data.extend(std::iter::repeat_n(7u8, 400_000));
        for threads in [0, 2] {
            let z = frame(&data, threads);
            for chunk in [1, 3, 4096, 1 << 20] {
                check(&z, chunk, &data).unwrap();
            }
            let cut = check(&z[..z.len() - 5], 4096, &data).unwrap_err();
            assert!(cut.contains("incomplete"), "{cut}");
            let mut trailing = z.clone();
            trailing.push(0);
            assert!(check(&trailing, 4096, &data)
                .unwrap_err()
                .contains("after the frame"));
            // The frame of other content (same size) has another checksum.
            let mut other = data.clone();
            other[10] ^= 1;
            let err = check(&frame(&other, threads), 4096, &data).unwrap_err();
            assert!(err.contains("checksum"), "{err}");
            // A block header made invalid (reserved block type).
            let mut bad = z.clone();
            let hdr = header_len(bad[4]);
            bad[hdr] |= 0b110;
            assert!(check(&bad, 4096, &data)
                .unwrap_err()
                .contains("block header"));
        }
    }
}
