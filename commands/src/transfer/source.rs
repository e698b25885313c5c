//! An upload's sending end: the local file, hashed as it is read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ftpsh_core::hashing::Md5Sink;
use ftpsh_core::sys;

use super::stop::hash_prefix;
use crate::session::{Digest, Progress, Source};

/// Supplies an upload from a local file, hashing as it reads. Exactly the
/// announced size is read, and the file's status is compared before and after:
/// a file that changed while it was read would upload a mixture of two
/// versions whose digest still matched what was sent, so it fails instead
/// ([`Changed`]) and nothing is installed.
pub struct FileSource {
    file: File,
    size: u64,
    /// Bytes read so far, the kept prefix included.
    position: u64,
    /// The part the server kept from an earlier upload (`put -c`).
    kept: u64,
    /// The status when opened, to compare with at the end.
    opened: Status,
    /// On its own thread for large files, so that hashing overlaps sending.
    hasher: Md5Sink,
    progress: Box<dyn Progress>,
    /// Ctrl-C, looked at while the part the server kept is hashed.
    stop: Arc<AtomicBool>,
    /// Permission bits and modification time, for the server; and whether
    /// it keeps them as they are (`-p`).
    mode: u32,
    mtime: i64,
    preserve: bool,
}

impl FileSource {
    /// Opens a regular file. Anything else is refused before the server hears
    /// of it: a device or a pipe has no size to announce (`/dev/zero` would
    /// stream forever) and cannot be read again to resume.
    pub fn open(path: &Path, progress: Box<dyn Progress>) -> io::Result<Self> {
        // O_NONBLOCK: opening a named pipe would otherwise wait for a writer.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(sys::O_NONBLOCK)
            .open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        use std::os::unix::fs::MetadataExt;
        Ok(Self {
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            preserve: false,
            size: meta.len(),
            position: 0,
            kept: 0,
            opened: Status::of(&meta),
            file,
            hasher: Md5Sink::inline(),
            progress,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Stops hashing the part the server kept when `flag` rises (Ctrl-C).
    pub fn interruptible(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }
    /// Asks the server to keep the file's mode and time as they are (`-p`).
    pub fn preserving(mut self, preserve: bool) -> Self {
        self.preserve = preserve;
        self
    }
    /// The part of the file the server already had (resumed after it).
    pub fn kept(&self) -> u64 {
        self.kept
    }
    pub fn finish_progress(&self) {
        self.progress.finish();
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn start(&mut self, offset: u64) -> io::Result<()> {
        if offset > self.size {
            return Err(io::Error::other(format!(
                "the server's partial copy ({offset} bytes) is larger than the local file ({} bytes)",
                self.size
            )));
        }
        self.hasher = Md5Sink::for_size(self.size);
        let hasher = &mut self.hasher;
        let stop = &self.stop;
        hash_prefix(&mut self.file, offset, |b| hasher.update(b), &|| {
            stop.load(Ordering::SeqCst)
        })?;
        self.position = offset;
        self.kept = offset;
        self.progress.set_position(offset);
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_unhashed(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn read_owned(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_unhashed(buf)
    }
    fn sent(&mut self, buf: &mut Vec<u8>, n: usize) {
        let len = buf.len();
        let chunk = std::mem::take(buf);
        // The hash thread takes the buffer; a spent one comes back (empty at
        // first, or another chunk's).
        *buf = self.hasher.update_owned_range(chunk, 0..n);
        buf.resize(len, 0);
    }
    fn digest(&mut self) -> Digest {
        std::mem::replace(&mut self.hasher, Md5Sink::inline()).finalize()
    }
    fn attrs(&self) -> (u32, i64, bool) {
        (self.mode, self.mtime, self.preserve)
    }
}

impl FileSource {
    /// The next bytes, counted and shown, not hashed yet.
    fn read_unhashed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.position;
        if left == 0 {
            // The whole announced size is read: was it one version of the file?
            if Status::of(&self.file.metadata()?) != self.opened {
                return Err(io::Error::other(Changed));
            }
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other(Changed));
        }
        self.position += n as u64;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// What says a file was written to: its identity, size and times. The change
/// time cannot be set back by the writer, so even a write that restores the
/// modification time shows.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Status {
    fn of(meta: &std::fs::Metadata) -> Status {
        use std::os::unix::fs::MetadataExt;
        Status {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The local file changed while it was being uploaded.
#[derive(Debug)]
pub struct Changed;

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the file changed while it was being read, so what was sent mixes two \
             versions; nothing was installed: upload it again once it is complete",
        )
    }
}

impl std::error::Error for Changed {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::NoProgress;
    use std::io::Write;

    fn drain(source: &mut FileSource) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            match source.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Reads handed to the hash thread whole ([`Source::sent`]) and reads
    /// hashed as copies, mixed, on a file hashed on a thread whose size is
    /// not a multiple of the buffer: the same bytes and the file's digest.
    #[test]
    fn owned_and_copied_reads_give_the_file_and_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(9 << 20) + 12_345u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut s = FileSource::open(&path, Box::new(NoProgress)).unwrap();
        s.start(0).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        for i in 0.. {
            let n = if i % 3 == 2 {
                s.read(&mut buf).unwrap()
            } else {
                let n = s.read_owned(&mut buf).unwrap();
                out.extend_from_slice(&buf[..n]);
                s.sent(&mut buf, n);
                assert_eq!(buf.len(), 256 << 10);
                if n == 0 {
                    break;
                }
                continue;
            };
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == data, "the bytes read differ from the file");
        assert_eq!(s.digest(), ftpsh_core::hashing::Md5::digest(&data));
    }

    #[test]
    fn an_unchanged_file_is_read_to_its_announced_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let mut s = FileSource::open(&path, Box::new(NoProgress)).unwrap();
        s.start(0).unwrap();
        assert_eq!(drain(&mut s).unwrap(), b"hello world");
    }

    #[test]
    fn a_file_written_to_while_read_fails_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789abcdef").unwrap();
        // Same size, new content in the part not read yet.
        let mut s = FileSource::open(&path, Box::new(NoProgress)).unwrap();
        s.start(0).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut buf).unwrap(), 4);
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all(b"XXXXXXXXXXXXXXXX").unwrap();
        drop(w);
        let e = drain(&mut s).unwrap_err();
        assert!(e.get_ref().is_some_and(|i| i.is::<Changed>()), "{e}");
        // Grown: only the announced size is read, then the change shows.
        let mut s = FileSource::open(&path, Box::new(NoProgress)).unwrap();
        s.start(0).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        assert!(drain(&mut s).is_err());
        // Shrunk: the end comes early.
        let mut s = FileSource::open(&path, Box::new(NoProgress)).unwrap();
        s.start(0).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(3)
            .unwrap();
        assert!(drain(&mut s).is_err());
    }
}
