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

/// Supplies an upload from a local file, hashing as it reads.
pub struct FileSource {
    file: File,
    size: u64,
    /// On its own thread for large files, so that hashing overlaps sending.
    hasher: Md5Sink,
    progress: Box<dyn Progress>,
    /// Ctrl-C, looked at while the part the server kept is hashed.
    stop: Arc<AtomicBool>,
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
        Ok(Self {
            size: meta.len(),
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
        self.progress.set_position(offset);
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.inc(n as u64);
        Ok(n)
    }
    fn digest(&mut self) -> Digest {
        std::mem::replace(&mut self.hasher, Md5Sink::inline()).finalize()
    }
}
