//! Verifying a backup while it is written, so the check costs little extra time.
//!
//! The compressed bytes leaving the encoder are copied (a [`Tee`]) to a second thread that
//! decompresses them as they come ([`decode_stream`]): zstd's content checksum proves they
//! decode to exactly the bytes that were fed in, which are the bytes the SHA-256 was computed
//! over. That thread also hashes the compressed bytes. Once the file is written, [`check_file`]
//! reads it back from disk and checks that its metadata and every compressed byte are the ones
//! that were verified, which catches a write that went astray. Together these check what a
//! decompress-after-write pass would, without its serial second decompression.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use sha2::{Digest, Sha256};

use super::format::{self, BackupMeta};
use super::{BackupError, Phase, Progress};

/// A writer that also hands a copy of everything written to the decoding thread. If that thread
/// has stopped (it found a problem, reported when it is joined), copies are no longer sent.
pub(crate) struct Tee<W: Write> {
    pub inner: W,
    pub tx: Option<SyncSender<Vec<u8>>>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(tx) = &self.tx {
            if tx.send(buf[..n].to_vec()).is_err() {
                self.tx = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the chunks a [`Tee`] sends, hashing them on the way.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    sha: Sha256,
    bytes: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.sha.update(&chunk);
                    self.bytes += chunk.len() as u64;
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0), // the writer is done
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What the decoding thread saw: the size and SHA-256 of the compressed stream.
pub(crate) struct StreamDigest {
    pub compressed_bytes: u64,
    pub compressed_sha256: [u8; 32],
}

/// Decompress the zstd frame arriving on `rx`; check it holds `image_size` bytes starting with
/// the SQLite header and has a valid content checksum. `Err` says what failed.
pub(crate) fn decode_stream(
    rx: Receiver<Vec<u8>>,
    image_size: u64,
) -> Result<StreamDigest, String> {
    let mut reader = ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
        sha: Sha256::new(),
        bytes: 0,
    };
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 17, &mut reader))
            .map_err(|e| format!("zstd could not start: {e}"))?
            .single_frame();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("the compressed stream does not decode: {e}")),
        };
        if done < 16 {
            let upto = (16 - done as usize).min(n);
            if buf[..upto] != format::SQLITE_HEADER[done as usize..done as usize + upto] {
                return Err("the decoded stream does not start with the SQLite header".into());
            }
        }
        done += n as u64;
    }
    drop(decoder);
    if done != image_size {
        return Err(format!(
            "the stream decodes to {done} bytes, expected {image_size}"
        ));
    }
    let mut rest = [0u8; 1];
    if reader.read(&mut rest).map_err(|e| e.to_string())? != 0 {
        return Err("there are bytes after the zstd frame".into());
    }
    Ok(StreamDigest {
        compressed_bytes: reader.bytes,
        compressed_sha256: reader.sha.finalize().into(),
    })
}

/// Read the written file back: its metadata must equal `meta` and the bytes after it must be
/// exactly the verified compressed stream.
pub(crate) fn check_file(
    path: &Path,
    meta: &BackupMeta,
    digest: &StreamDigest,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let corrupt = |detail: &str| BackupError::Corrupt {
        path: path.into(),
        detail: detail.into(),
        source: None,
    };
    let read_err = |e| BackupError::Read {
        path: path.into(),
        doing: "reading the backup back",
        source: e,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(read_err)?);
    let (read_meta, frame_start) = format::read_header(path, &mut reader)?;
    if &read_meta != meta {
        return Err(corrupt(
            "the metadata read back differs from what was written",
        ));
    }
    let mut sha = Sha256::new();
    sha.update(frame_start);
    let mut bytes = frame_start.len() as u64;
    let total = digest.compressed_bytes;
    let mut buf = vec![0u8; 1 << 20];
    let mut next_report = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        sha.update(&buf[..n]);
        bytes += n as u64;
        if bytes >= next_report {
            progress(Progress {
                phase: Phase::ReadBack,
                done: bytes.min(total),
                total,
            });
            next_report = bytes + (16 << 20);
        }
    }
    progress(Progress {
        phase: Phase::ReadBack,
        done: bytes.min(total),
        total,
    });
    let sha: [u8; 32] = sha.finalize().into();
    if bytes != digest.compressed_bytes || sha != digest.compressed_sha256 {
        return Err(corrupt(
            "the file on disk differs from the compressed stream that was verified",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut out, 3).unwrap();
        enc.include_checksum(true).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        out
    }

    fn decode(bytes: &[u8], image_size: u64) -> Result<StreamDigest, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let bytes = bytes.to_vec();
        let sender = std::thread::spawn(move || {
            for chunk in bytes.chunks(7) {
                if tx.send(chunk.to_vec()).is_err() {
                    break;
                }
            }
        });
        let result = decode_stream(rx, image_size);
        sender.join().unwrap();
        result
    }

    #[test]
    fn the_stream_check_catches_truncation_damage_and_wrong_size_or_content() {
        let mut image = format::SQLITE_HEADER.to_vec();
        image.extend((0..5000u32).flat_map(|i| i.to_le_bytes()));
        let good = frame(&image);
        let digest = decode(&good, image.len() as u64).unwrap();
        assert_eq!(digest.compressed_bytes, good.len() as u64);
        assert!(decode(&good[..good.len() - 3], image.len() as u64).is_err());
        let mut flipped = good.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1; // inside the content checksum
        assert!(decode(&flipped, image.len() as u64).is_err());
        assert!(decode(&good, image.len() as u64 + 1).is_err());
        assert!(decode(&frame(b"not a database at all"), 21).is_err());
    }
}
