//! Writing large downloads around the page cache.
//!
//! A verified download is fsynced before it is renamed into place, so every byte
//! has to reach the disk before the verb ends anyway; going through the page cache
//! only adds a copy into freshly allocated kernel pages. On the reference machine
//! (2 vCPUs, ext4 on virtio) that copy cost between 0.2 and 2.4 s of kernel time
//! per GiB depending on where the kernel found its pages: as much as hashing the
//! file. With `O_DIRECT` the disk reads our own reused buffer instead (about 0.1 s
//! of CPU per GiB), so large downloads are staged in an aligned buffer and written
//! directly.
//!
//! Direct I/O is only used where it is known to behave: Linux, a local file
//! system that supports it (ext4, xfs, btrfs, f2fs), a write starting on an
//! aligned offset, and enough data to be worth it. Anything else, the unaligned
//! tail of a file, and any direct write the kernel refuses fall back to ordinary
//! buffered writes, so the bytes on disk are the same either way.

use std::fs::File;
use std::io::{self, Write};

use crate::sys;

/// Offsets, lengths and buffer addresses of direct writes are multiples of this
/// (the largest logical block size in common use).
pub const ALIGN: u64 = 4096;
/// Bytes gathered before one direct write.
const STAGE: usize = 1 << 20;
/// Smaller writes are not worth staging: they go through the page cache.
pub const DIRECT_THRESHOLD: u64 = 8 << 20;

/// The destination of a download: a file written directly when that is possible
/// and buffered otherwise. Whatever was accepted by [`OutputFile::write_all`] is
/// in the file after [`OutputFile::finish`] or after the value is dropped, so an
/// interrupted download keeps everything it received for `get -c`.
pub struct OutputFile {
    file: File,
    /// `Some` while writing directly: staging memory over-allocated by `ALIGN`
    /// so that an aligned window of `STAGE` bytes fits inside it.
    stage: Option<Vec<u8>>,
    filled: usize,
    /// Bytes still to write through the page cache before the write position
    /// is aligned (a resumed download continues at any offset).
    head: u64,
    /// Direct writes start once `head` is written.
    direct_after_head: bool,
}

impl OutputFile {
    /// Wraps `file`, whose write position is `offset`, for `remaining` more bytes.
    pub fn new(file: File, offset: u64, remaining: u64) -> Self {
        let head = (ALIGN - offset % ALIGN) % ALIGN;
        let mut out = Self {
            file,
            stage: None,
            filled: 0,
            head,
            direct_after_head: remaining >= DIRECT_THRESHOLD && direct_io_enabled(),
        };
        if head == 0 {
            out.start_direct();
        }
        out
    }

    fn start_direct(&mut self) {
        if std::mem::take(&mut self.direct_after_head) && sys::set_direct(&self.file, true).is_ok()
        {
            self.stage = Some(vec![0u8; STAGE + ALIGN as usize]);
        }
    }

    /// Whether writes currently bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.stage.is_some()
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.head > 0 {
                let n = self.head.min(data.len() as u64) as usize;
                self.file.write_all(&data[..n])?;
                self.head -= n as u64;
                data = &data[n..];
                if self.head == 0 {
                    self.start_direct();
                }
                continue;
            }
            let Some(stage) = self.stage.as_mut() else {
                return self.file.write_all(data);
            };
            let window = aligned_window(stage);
            let n = (STAGE - self.filled).min(data.len());
            window[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == STAGE {
                self.flush_stage()?;
            }
        }
        Ok(())
    }

    /// Writes `data` like [`write_all`](Self::write_all), but straight from
    /// the caller's memory when a direct write allows it: nothing staged
    /// before it, `data` starting on an `ALIGN`ed address and a multiple of
    /// `ALIGN` long (a receiver that reads the socket into aligned buffers of
    /// its own saves the copy into the staging buffer). Anything else is
    /// staged as usual, so the bytes on disk are the same either way.
    pub fn write_from(&mut self, data: &[u8]) -> io::Result<()> {
        let unstaged = self.head == 0 && self.filled == 0 && self.stage.is_some();
        if !unstaged
            || data.is_empty()
            || data.as_ptr().align_offset(ALIGN as usize) != 0
            || !data.len().is_multiple_of(ALIGN as usize)
        {
            return self.write_all(data);
        }
        let result = self.write_direct(data);
        // A refused direct write switched the file to buffered writing.
        if !sys::is_direct(&self.file) {
            self.stage = None;
        }
        result
    }

    /// Writes out everything staged and returns to buffered writing. Call before
    /// syncing the file.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.stage.is_none() {
            return Ok(());
        }
        let aligned = self.filled - self.filled % ALIGN as usize;
        let mut stage = self.stage.take().expect("checked above");
        let window = aligned_window(&mut stage);
        let result = self.write_direct(&window[..aligned]).and_then(|()| {
            sys::set_direct(&self.file, false)?;
            self.file.write_all(&window[aligned..self.filled])
        });
        self.filled = 0;
        result
    }

    fn flush_stage(&mut self) -> io::Result<()> {
        let mut stage = self.stage.take().expect("only called while direct");
        let filled = std::mem::take(&mut self.filled);
        let result = self.write_direct(&aligned_window(&mut stage)[..filled]);
        if self.stage.is_none() && result.is_ok() && sys::is_direct(&self.file) {
            self.stage = Some(stage);
        }
        result
    }

    /// One direct write of aligned data. A refusal (`EINVAL`: the file system
    /// wants a larger alignment than ours) switches the file to buffered writing
    /// for the rest of the download instead of failing it.
    fn write_direct(&mut self, data: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < data.len() {
            match self.file.write(&data[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if (written + n) % ALIGN as usize == 0 || written + n == data.len() => {
                    written += n
                }
                Ok(n) => {
                    // A short, unaligned direct write: finish this buffer and the
                    // rest of the file through the page cache.
                    written += n;
                    sys::set_direct(&self.file, false)?;
                    return self.file.write_all(&data[written..]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(sys::EINVAL) => {
                    sys::set_direct(&self.file, false)?;
                    return self.file.write_all(&data[written..]);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // Keep what was received: the partial is what `get -c` resumes.
        let _ = self.finish();
    }
}

/// The `STAGE`-byte window of `stage` that starts on an `ALIGN` boundary.
fn aligned_window(stage: &mut [u8]) -> &mut [u8] {
    let start = stage.as_ptr().align_offset(ALIGN as usize);
    &mut stage[start..start + STAGE]
}

/// `FTPSH_DIRECT_IO=0` turns direct writes off (for comparing in the benchmark,
/// or on a system where they misbehave).
fn direct_io_enabled() -> bool {
    std::env::var_os("FTPSH_DIRECT_IO").is_none_or(|v| v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn roundtrip(dir: &std::path::Path, sizes: &[usize]) -> (Vec<u8>, bool) {
        let path = dir.join("out");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let total: usize = sizes.iter().sum();
        let friendly = sys::direct_friendly(&file);
        let mut out = OutputFile::new(file, 0, total as u64);
        let direct = out.is_direct();
        assert_eq!(direct, friendly && total as u64 >= DIRECT_THRESHOLD);
        let mut expected = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let chunk: Vec<u8> = (0..n).map(|j| (i * 7 + j * 13) as u8).collect();
            out.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        out.finish().unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        (expected, direct)
    }

    #[test]
    fn odd_chunk_sizes_land_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [1, 4095, 262_144, 1 << 20, 3, (8 << 20) + 17, 100_000];
        roundtrip(dir.path(), &sizes);
    }

    #[test]
    fn a_resumed_file_goes_direct_after_an_unaligned_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, b"kept prefix").unwrap();
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap();
        let mut out = OutputFile::new(file, 11, 16 << 20);
        assert!(!out.is_direct());
        let data: Vec<u8> = (0..(16 << 20)).map(|i: u32| (i % 251) as u8).collect();
        out.write_all(&data[..5000]).unwrap();
        assert_eq!(out.is_direct(), sys::direct_friendly(out.file()));
        out.write_all(&data[5000..]).unwrap();
        out.finish().unwrap();
        let mut expected = b"kept prefix".to_vec();
        expected.extend_from_slice(&data);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    /// Aligned writes from the caller's memory, staged writes and an
    /// unaligned tail, mixed: byte for byte what was written.
    #[test]
    fn writes_from_aligned_memory_mix_with_staged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = File::create(&path).unwrap();
        let total = 12 << 20;
        let mut out = OutputFile::new(file, 0, total as u64);
        let data: Vec<u8> = (0..total).map(|i| (i * 7 % 253) as u8).collect();
        let mut buf = vec![0u8; (1 << 20) + ALIGN as usize];
        let start = buf.as_ptr().align_offset(ALIGN as usize);
        let mut pos = 0;
        // Aligned, aligned, then 1000 staged bytes (the next aligned ones
        // are staged too, behind them), then the rest at odd sizes.
        for len in [1 << 20, 1 << 20, 1000, 1 << 20, 4096, 333_333] {
            buf[start..start + len].copy_from_slice(&data[pos..pos + len]);
            out.write_from(&buf[start..start + len]).unwrap();
            pos += len;
        }
        out.write_all(&data[pos..]).unwrap();
        out.finish().unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn small_files_are_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let (_, direct) = roundtrip(dir.path(), &[1000]);
        assert!(!direct);
    }

    #[test]
    fn a_dropped_writer_keeps_what_it_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = File::create(&path).unwrap();
        let mut out = OutputFile::new(file, 0, 64 << 20);
        let data = vec![7u8; (1 << 20) + 5000];
        out.write_all(&data).unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
