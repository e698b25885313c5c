//! A download's receiving end: the partial file, hashed as it is written.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ftpsh_core::direct::{OutputFile, ALIGN};
use ftpsh_core::hashing::Md5Sink;
use ftpsh_core::sys;

use super::partial::{kept_bytes, open_locked_partial};
use super::stop::hash_prefix;
use crate::session::{Digest, Progress, Receiver};

/// How much written data is handed to the kernel's writeback at a time.
const WRITEBACK_STEP: u64 = 16 << 20;
/// The receiver's own buffers ([`Receiver::room`]): the connection's data
/// is read straight into one, which is then written out (directly, from
/// that memory, for a large file) and handed whole to the hash thread.
const CHUNK: usize = 1 << 20;
/// Buffers in flight to the hash thread: with the one being filled, the
/// receiver holds at most `HASH_POOL + 1` chunks (4 MiB), whatever the size.
const HASH_POOL: usize = 3;

/// Receives a download into a partial file, hashing as it writes. The partial
/// is only created once the server has announced the file, so a refused request
/// leaves nothing behind; it is locked while it is written ([`lock_partial`]).
/// A destination that is not a regular file (a device, a named pipe) is written
/// through instead ([`FileReceiver::write_through`]).
///
/// Data read into its own buffers ([`Receiver::room`]) costs the receiving
/// thread no copy: each chunk of [`CHUNK`] bytes is read off the socket into
/// an aligned buffer, written from it, and handed to the hash thread whole,
/// which hands back a buffer it is done with. Chunks received with
/// [`Receiver::data`] are copied (into the hash pool and the direct-I/O
/// staging buffer) as before, after whatever a buffer still held.
pub struct FileReceiver<'p> {
    pub partial: PathBuf,
    resume: bool,
    /// The open destination of a write-through download, until `start`.
    through: Option<File>,
    file: Option<OutputFile>,
    hasher: Option<Md5Sink>,
    /// The buffer being filled by [`Receiver::room`] (empty until then), and
    /// how many bytes of its aligned window hold data not yet written.
    chunk: Vec<u8>,
    fill: usize,
    pub size: u64,
    pub received: u64,
    /// The part of a resumed file that was here already (not moved this time).
    pub kept: u64,
    /// Where data not yet handed to writeback starts (see [`sys::start_writeback`]).
    flushed: u64,
    make_progress: Box<dyn FnMut(u64) -> Box<dyn Progress> + 'p>,
    progress: Option<Box<dyn Progress>>,
    /// Ctrl-C, looked at while the kept part of a resumed file is hashed.
    stop: Arc<AtomicBool>,
    /// The permission bits and modification time the server announced.
    pub attrs: Option<(u32, i64)>,
}

impl<'p> FileReceiver<'p> {
    /// `resume`: continue the partial file if there is one.
    pub fn new(
        partial: PathBuf,
        resume: bool,
        make_progress: Box<dyn FnMut(u64) -> Box<dyn Progress> + 'p>,
    ) -> Self {
        Self {
            partial,
            resume,
            through: None,
            file: None,
            hasher: None,
            chunk: Vec::new(),
            fill: 0,
            size: 0,
            received: 0,
            kept: 0,
            flushed: 0,
            make_progress,
            progress: None,
            stop: Arc::new(AtomicBool::new(false)),
            attrs: None,
        }
    }

    /// Writes the data straight into `file`, the open destination `dest` (a
    /// device or a named pipe: there is nothing to rename, nor to resume).
    pub fn write_through(
        dest: PathBuf,
        file: File,
        make_progress: Box<dyn FnMut(u64) -> Box<dyn Progress> + 'p>,
    ) -> Self {
        let mut r = Self::new(dest, false, make_progress);
        r.through = Some(file);
        r
    }

    /// Stops hashing a resumed file's kept part when `flag` rises (Ctrl-C).
    pub fn interruptible(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = flag;
        self
    }

    /// How many bytes of the partial file can be kept (0 unless resuming). A
    /// link is not looked through: its target's size is no partial's.
    pub fn resume_offset(&self) -> u64 {
        if self.resume {
            kept_bytes(&self.partial)
        } else {
            0
        }
    }

    /// The digest of everything received (prefix included).
    pub fn digest(&mut self) -> Digest {
        // Whole downloads have nothing left in a buffer (the last byte
        // flushed it); a short one is reported as such by the caller.
        let _ = self.flush_chunk();
        self.hasher
            .take()
            .unwrap_or_else(Md5Sink::inline)
            .finalize()
    }

    /// Ends the writing (direct I/O's tail) and starts the writeback of what
    /// is not on its way to disk yet, without waiting: a batch makes its files
    /// durable together afterwards ([`FileReceiver::sync`] or a file system
    /// sync), before any of them is renamed into place.
    pub fn finish_writing(&mut self) -> io::Result<()> {
        self.flush_chunk()?;
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        f.finish()?;
        if self.received > self.flushed {
            sys::start_writeback(f.file(), self.flushed, self.received - self.flushed);
            self.flushed = self.received;
        }
        Ok(())
    }

    /// The open partial, once the file was announced.
    pub fn open_file(&self) -> Option<&File> {
        self.file.as_ref().map(OutputFile::file)
    }

    /// Flushes the partial to disk. Called before it is renamed into place.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush_chunk()?;
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        f.finish()?;
        match f.file().sync_all() {
            // A pipe or a character device written through has nothing to
            // make durable.
            Err(e)
                if e.raw_os_error() == Some(sys::EINVAL)
                    && !f.file().metadata().is_ok_and(|m| m.is_file()) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Writes what the current buffer holds and hands the buffer to the
    /// hasher (in that order: a buffer handed over is not ours any more),
    /// taking back one it is done with.
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let start = self.chunk.as_ptr().align_offset(ALIGN as usize);
        let window = start..start + std::mem::take(&mut self.fill);
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("data before the file was announced"))?;
        file.write_from(&self.chunk[window.clone()])?;
        let written = std::mem::take(&mut self.chunk);
        self.chunk = match self.hasher.as_mut() {
            Some(h) => h.update_owned_range(written, window),
            None => written,
        };
        self.start_writeback_if_due();
        Ok(())
    }

    /// Hands buffered writes to the kernel's writeback every
    /// [`WRITEBACK_STEP`] bytes (direct writes are on the disk already).
    fn start_writeback_if_due(&mut self) {
        let written = self.received - self.fill as u64;
        if let Some(file) = &self.file {
            if written - self.flushed >= WRITEBACK_STEP && !file.is_direct() {
                sys::start_writeback(file.file(), self.flushed, written - self.flushed);
                self.flushed = written;
            }
        }
    }

    /// The first half of [`Receiver::room`]: whether the next `len` bytes
    /// can go into a buffer of ours, writing out the current one first if
    /// they do not fit in it. Anything unusual (no file yet, more than
    /// announced, a chunk over the buffer) is `false`: it goes the `data`
    /// way, which reports it.
    pub fn make_room(&mut self, len: usize) -> io::Result<bool> {
        if self.file.is_none()
            || len > CHUNK
            || self.received.saturating_add(len as u64) > self.size
        {
            return Ok(false);
        }
        if self.fill + len > CHUNK {
            self.flush_chunk()?;
        }
        if self.chunk.len() < CHUNK + ALIGN as usize {
            // The first buffers, and any the hash pool held only copies in.
            self.chunk = vec![0; CHUNK + ALIGN as usize];
        }
        Ok(true)
    }

    /// The second half of [`Receiver::room`], after [`make_room`](Self::make_room)
    /// said yes: the `len` bytes of the current buffer to fill.
    pub fn room_slice(&mut self, len: usize) -> &mut [u8] {
        let start = self.chunk.as_ptr().align_offset(ALIGN as usize) + self.fill;
        &mut self.chunk[start..start + len]
    }

    pub fn finish_progress(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}

impl Receiver for FileReceiver<'_> {
    fn attrs(&mut self, mode: u32, mtime: i64) {
        self.attrs = Some((mode, mtime));
    }
    fn start(&mut self, size: u64, offset: u64) -> io::Result<()> {
        // The bar comes first: hashing a long kept part shows as progress.
        let progress = self.progress.insert((self.make_progress)(size));
        let hasher = self.hasher.insert(Md5Sink::with_pool(size, HASH_POOL));
        let through = self.through.is_some();
        let file = match self.through.take() {
            Some(_) if offset > 0 => {
                return Err(io::Error::other("only a regular file can be resumed"))
            }
            Some(f) => f,
            None => {
                let mut f = open_locked_partial(&self.partial, offset == 0)?;
                if offset > 0 {
                    let stop = &self.stop;
                    let hash = |b: &[u8]| {
                        hasher.update(b);
                        progress.inc(b.len() as u64);
                    };
                    hash_prefix(&mut f, offset, hash, &|| stop.load(Ordering::SeqCst))?;
                }
                f.set_len(offset)?;
                f.seek(SeekFrom::Start(offset))?;
                f
            }
        };
        // Never direct I/O through a descriptor we were handed: it may share
        // its flags with our stdout.
        let direct_worthy = if through {
            0
        } else {
            size.saturating_sub(offset)
        };
        self.file = Some(OutputFile::new(file, offset, direct_worthy));
        self.fill = 0;
        self.size = size;
        self.received = offset;
        self.kept = offset;
        self.flushed = offset;
        progress.set_position(offset);
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Err(io::Error::other("data before the file was announced"));
        }
        if self.received.saturating_add(chunk.len() as u64) > self.size {
            return Err(io::Error::other("more data than the server announced"));
        }
        // What a buffer holds comes first.
        self.flush_chunk()?;
        let file = self.file.as_mut().expect("checked above");
        if let Some(h) = self.hasher.as_mut() {
            h.update(chunk);
        }
        file.write_all(chunk)?;
        self.received += chunk.len() as u64;
        self.start_writeback_if_due();
        if let Some(p) = &self.progress {
            p.inc(chunk.len() as u64);
        }
        Ok(())
    }

    fn room(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        Ok(if self.make_room(len)? {
            Some(self.room_slice(len))
        } else {
            None
        })
    }

    fn filled(&mut self, len: usize) -> io::Result<()> {
        self.fill += len;
        self.received += len as u64;
        if let Some(p) = &self.progress {
            p.inc(len as u64);
        }
        // The last byte writes the buffer out: the file is complete when the
        // transfer is.
        if self.fill == CHUNK || self.received == self.size {
            self.flush_chunk()?;
        }
        Ok(())
    }
}

impl Drop for FileReceiver<'_> {
    fn drop(&mut self) {
        // Keep what was received: the partial is what `get -c` resumes.
        let _ = self.flush_chunk();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::NoProgress;
    use std::fs;

    #[test]
    fn a_resumed_receiver_hashes_the_kept_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        fs::write(&partial, b"hello ").unwrap();
        let mut r = FileReceiver::new(partial.clone(), true, Box::new(|_| Box::new(NoProgress)));
        assert_eq!(r.resume_offset(), 6);
        r.start(11, 6).unwrap();
        r.data(b"world").unwrap();
        let expected: Digest = <md5::Md5 as md5::Digest>::digest(b"hello world").into();
        assert_eq!(r.digest(), expected);
        assert_eq!(fs::read(&partial).unwrap(), b"hello world");
    }

    /// Feeds `data` as the engine does: through `room`/`filled` where the
    /// receiver offers room, else `data`, in frames of `frame` bytes, every
    /// `copied`-th one through `data` regardless.
    fn feed(r: &mut FileReceiver, data: &[u8], frame: usize, copied: usize) {
        for (i, chunk) in data.chunks(frame).enumerate() {
            if i % copied == copied - 1 {
                r.data(chunk).unwrap();
                continue;
            }
            match r.room(chunk.len()).unwrap() {
                Some(dest) => {
                    dest.copy_from_slice(chunk);
                    r.filled(chunk.len()).unwrap();
                }
                None => r.data(chunk).unwrap(),
            }
        }
    }

    /// A large file (direct I/O, a hash thread) whose size is no multiple
    /// of the buffer or of a frame, received mostly into the receiver's own
    /// buffers with some chunks copied in between: the same bytes, in
    /// order, and their digest.
    #[test]
    fn own_buffers_and_copied_chunks_land_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        let data: Vec<u8> = (0..(11 << 20) + 4097u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        let mut r = FileReceiver::new(partial.clone(), false, Box::new(|_| Box::new(NoProgress)));
        r.start(data.len() as u64, 0).unwrap();
        feed(&mut r, &data, 256 << 10, 7);
        assert_eq!(r.received, data.len() as u64);
        let expected = ftpsh_core::hashing::Md5::digest(&data);
        assert_eq!(r.digest(), expected);
        r.sync().unwrap();
        assert!(fs::read(&partial).unwrap() == data, "the file differs");
    }

    /// An interrupted download keeps every byte it received, also those
    /// still in a buffer (what `get -c` resumes from).
    #[test]
    fn a_dropped_receiver_keeps_what_its_buffer_held() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        let data: Vec<u8> = (0..(3 << 20) + 1000u32).map(|i| (i % 251) as u8).collect();
        let mut r = FileReceiver::new(partial.clone(), false, Box::new(|_| Box::new(NoProgress)));
        r.start(64 << 20, 0).unwrap();
        feed(&mut r, &data, 100_000, usize::MAX);
        drop(r);
        assert!(fs::read(&partial).unwrap() == data, "the partial differs");
    }

    #[test]
    fn no_byte_past_the_announced_size_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        let mut r = FileReceiver::new(partial.clone(), false, Box::new(|_| Box::new(NoProgress)));
        r.start(5, 0).unwrap();
        r.data(b"hel").unwrap();
        assert!(r.data(b"lo world").is_err());
        r.data(b"lo").unwrap();
        r.sync().unwrap();
        assert_eq!(fs::read(&partial).unwrap(), b"hello");
    }
}
