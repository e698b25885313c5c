//! What `get` and `put` share: partial files, hashing while copying, installing
//! atomically, and the summary line.
//!
//! A download is written to `NAME.ftpsh-part` beside its destination while it is
//! hashed; only when the digest matches the server's is the partial fsynced and
//! renamed over the destination. Until then the destination, if it existed, keeps
//! its exact content. A partial that survives an interruption is what `get -c`
//! resumes. Partial names are made here for both sides ([`partial_name`]): near
//! NAME_MAX a name is shortened, deterministically, so the partial can exist at
//! all and `-c` still finds it. A partial is never opened through a symbolic
//! link ([`PartialIsLink`]).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::direct::OutputFile;
use crate::hashing::{Md5, Md5Sink};
use crate::session::{hex, Digest, Progress, Receiver, RemoteError, Source};

/// The suffix of a partial download or upload.
pub const PARTIAL_SUFFIX: &str = ".ftpsh-part";

/// The longest file name Linux file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// Where the partial copy of `dest` lives while it downloads.
pub fn partial_path(dest: &Path) -> PathBuf {
    dest.with_file_name(partial_name(dest.file_name().unwrap_or_default()))
}

/// The partial file's name for a file named `name` (`NAME.ftpsh-part`, shortened
/// when that would be too long; see [`decorated_name`]). Both sides use it, so
/// `get -c` and `put -c` find what an interrupted transfer left.
pub fn partial_name(name: &OsStr) -> OsString {
    decorated_name("", name, PARTIAL_SUFFIX)
}

/// `prefix` + `name` + `suffix`, always a valid file name: a name that would
/// otherwise pass NAME_MAX keeps as much of its start as fits (whole characters
/// if it is UTF-8, so the result stays printable), followed by `~` and a digest
/// of the whole name, so that long names sharing a start still get different
/// partials and the same name always gets the same one.
pub fn decorated_name(prefix: &str, name: &OsStr, suffix: &str) -> OsString {
    let bytes = name.as_bytes();
    let mut out = OsString::from(prefix);
    if prefix.len() + bytes.len() + suffix.len() <= NAME_MAX {
        out.push(name);
    } else {
        let tag = format!("~{}", &hex(&Md5::digest(bytes))[..16]);
        let room = NAME_MAX.saturating_sub(prefix.len() + tag.len() + suffix.len());
        let mut keep = room.min(bytes.len());
        if let Ok(text) = std::str::from_utf8(bytes) {
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
        }
        out.push(OsStr::from_bytes(&bytes[..keep]));
        out.push(tag);
    }
    out.push(suffix);
    out
}

/// Where the server keeps its partial copy of the remote file `path`.
pub fn remote_partial_path(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    let partial = partial_name(OsStr::new(name));
    let partial = partial.to_string_lossy();
    match dir {
        Some(dir) => format!("{dir}/{partial}"),
        None => partial.into_owned(),
    }
}

/// The last component of a remote path (`docs/a.txt` → `a.txt`).
pub fn remote_basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// How much written data is handed to the kernel's writeback at a time.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Starts writing a range of the file to disk without waiting for it, so that the
/// fsync before the rename finds little left to do instead of the whole file.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; a failure is
    // harmless (the fsync that follows still makes the data durable).
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as i64,
            len as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Hashes everything read from a file from its start up to `len`. The kept
/// part of a resumed file can be gigabytes: `stop` is asked between chunks so
/// that Ctrl-C does not wait for the end of it ([`Stopped`]).
fn hash_prefix(
    file: &mut File,
    len: u64,
    mut hasher: impl FnMut(&[u8]),
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        if stop() {
            return Err(io::Error::other(Stopped));
        }
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        hasher(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Local work stopped because the user pressed Ctrl-C.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Stopped {}

/// Whether a local failure is [`Stopped`].
pub fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

/// A partial file that another download is writing (it holds the lock).
#[derive(Debug)]
pub struct PartialInUse(pub PathBuf);

impl std::fmt::Display for PartialInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is being written by another download to the same file; \
             wait for it to finish (or stop it) and try again",
            crate::display::escape_path(&self.0)
        )
    }
}

impl std::error::Error for PartialInUse {}

/// Opens the partial (creating it if `create`) and takes its lock, not
/// truncating anything before the lock is ours: the partial may be another
/// download's. Between our open and our lock, that other download may have
/// renamed it into place (its file is then the destination, which we must not
/// touch) or removed it: the lock is only good while the name still leads to
/// the locked file, so the open is retried until it does.
fn open_locked_partial(partial: &Path, create: bool) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..8 {
        let f = open_partial(
            OpenOptions::new().read(true).write(true).create(create),
            partial,
        )?;
        lock_partial(&f, partial)?;
        let ours = f.metadata()?;
        match fs::symlink_metadata(partial) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => return Ok(f),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        PartialInUse(partial.to_path_buf()),
    ))
}

/// Takes the partial's lock for as long as `file` stays open. Two downloads to
/// one destination would otherwise write the same partial at once, and the one
/// that finishes first could install a mixture of both while its own digest,
/// taken over the bytes it received, still matched.
fn lock_partial(file: &File, partial: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only takes an advisory lock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            PartialInUse(partial.to_path_buf()),
        ))
    } else {
        Err(e)
    }
}

/// A partial file that turned out to be a symbolic link. Refused, not followed:
/// in a shared directory someone else may have planted it to make a download
/// overwrite (or create) the file it points to.
#[derive(Debug)]
pub struct PartialIsLink(pub PathBuf);

impl std::fmt::Display for PartialIsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a symbolic link; ftpsh does not write a download through a link: remove it and try again",
            crate::display::escape_path(&self.0)
        )
    }
}

impl std::error::Error for PartialIsLink {}

/// Whether a local failure is a [`PartialIsLink`] or a [`PartialInUse`], whose
/// message already names the partial and says what to do.
pub fn is_partial_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<PartialIsLink>() || inner.is::<PartialInUse>())
}

/// Opens a partial with `O_NOFOLLOW`, so that a link at its name fails the open
/// before anything (truncation, creation, a write) reaches the link's target.
fn open_partial(options: &mut OpenOptions, partial: &Path) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(partial)
        .map_err(|e| {
            if fs::symlink_metadata(partial).is_ok_and(|m| m.file_type().is_symlink()) {
                io::Error::new(e.kind(), PartialIsLink(partial.to_path_buf()))
            } else {
                e
            }
        })
}

/// The size of a partial file; 0 when there is none, or something else (a link,
/// a directory) is at its name.
pub fn kept_bytes(partial: &Path) -> u64 {
    fs::symlink_metadata(partial)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len())
}

/// Receives a download into a partial file, hashing as it writes. The partial
/// is only created once the server has announced the file, so a refused request
/// leaves nothing behind; it is locked while it is written ([`lock_partial`]).
/// A destination that is not a regular file (a device, a named pipe) is written
/// through instead ([`FileReceiver::write_through`]).
pub struct FileReceiver<'p> {
    pub partial: PathBuf,
    resume: bool,
    /// The open destination of a write-through download, until `start`.
    through: Option<File>,
    file: Option<OutputFile>,
    hasher: Option<Md5Sink>,
    pub size: u64,
    pub received: u64,
    /// Where data not yet handed to writeback starts (see [`start_writeback`]).
    flushed: u64,
    make_progress: Box<dyn FnMut(u64) -> Box<dyn Progress> + 'p>,
    progress: Option<Box<dyn Progress>>,
    /// Ctrl-C, looked at while the kept part of a resumed file is hashed.
    stop: Arc<AtomicBool>,
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
            size: 0,
            received: 0,
            flushed: 0,
            make_progress,
            progress: None,
            stop: Arc::new(AtomicBool::new(false)),
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
        self.hasher
            .take()
            .unwrap_or_else(Md5Sink::inline)
            .finalize()
    }

    /// Flushes the partial to disk. Called before it is renamed into place.
    pub fn sync(&mut self) -> io::Result<()> {
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        f.finish()?;
        match f.file().sync_all() {
            // A pipe or a character device written through has nothing to
            // make durable.
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    && !f.file().metadata().is_ok_and(|m| m.is_file()) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    pub fn finish_progress(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}

impl Receiver for FileReceiver<'_> {
    fn start(&mut self, size: u64, offset: u64) -> io::Result<()> {
        // The bar comes first: hashing a long kept part shows as progress.
        let progress = self.progress.insert((self.make_progress)(size));
        let hasher = self.hasher.insert(Md5Sink::for_size(size));
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
        self.size = size;
        self.received = offset;
        self.flushed = offset;
        progress.set_position(offset);
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("data before the file was announced"))?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(chunk);
        }
        file.write_all(chunk)?;
        self.received += chunk.len() as u64;
        if self.received - self.flushed >= WRITEBACK_STEP && !file.is_direct() {
            start_writeback(file.file(), self.flushed, self.received - self.flushed);
            self.flushed = self.received;
        }
        if let Some(p) = &self.progress {
            p.inc(chunk.len() as u64);
        }
        Ok(())
    }
}

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
            .custom_flags(libc::O_NONBLOCK)
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

/// Ctrl-C or a lost connection, also Ctrl-C while the kept part of a resumed
/// file was hashed here ([`Stopped`]): what was received is worth resuming.
pub fn stopped_midway(e: &RemoteError) -> bool {
    match e {
        RemoteError::Interrupted | RemoteError::ConnectionLost(_) => true,
        RemoteError::Local(l) => is_stopped(l),
        RemoteError::Refused(_) => false,
    }
}

/// Where a link at `path` leads, through any number of links (up to the
/// kernel's own limit of 40), even if the last one dangles; `path` itself when
/// it is no link. Links are followed here, not by the kernel, so the kernel's
/// `fs.protected_symlinks` rule is applied here too ([`refuse_foreign_link`]).
pub fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(meta) if meta.file_type().is_symlink() => {
                refuse_foreign_link(&p, &meta)?;
                // A relative target is relative to the link's directory.
                p = p.parent().unwrap_or(Path::new("")).join(fs::read_link(&p)?);
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// In a sticky, world-writable directory such as `/tmp`, a link is followed
/// only if it belongs to us or to the directory's owner, as the kernel does
/// with `fs.protected_symlinks`: otherwise another user could plant
/// `/tmp/x -> ~/.bashrc` and have `get file /tmp/x` replace our file.
fn refuse_foreign_link(link: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = link
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = fs::metadata(dir)?;
    let shared = dir.mode() & 0o1002 == 0o1002;
    // SAFETY: geteuid only reads the process's credentials.
    let me = unsafe { libc::geteuid() };
    if shared && meta.uid() != me && meta.uid() != dir.uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a link another user made in a shared directory; ftpsh does not follow it",
        ));
    }
    Ok(())
}

/// Opens a device or a named pipe to write a download straight into it. A pipe
/// nobody reads fails at once (`ENXIO`) instead of hanging the shell; once open,
/// writes block as usual.
pub fn open_through(dest: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dest)?;
    // SAFETY: F_GETFL/F_SETFL only read and change the descriptor's flags.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// Renames a verified partial over its destination and makes the rename durable.
pub fn install(partial: &Path, dest: &Path) -> io::Result<()> {
    replace(partial, dest)?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Renames a verified partial over its destination (the caller makes the
/// rename durable). A file it replaces keeps its permission bits, as with `cp`
/// onto an existing file: a private file must not turn world-readable because
/// it was updated.
pub fn replace(partial: &Path, dest: &Path) -> io::Result<()> {
    if let Ok(old) = fs::metadata(dest) {
        if old.is_file() {
            use std::os::unix::fs::PermissionsExt;
            // Set-id and sticky bits are not carried over onto new content.
            let mode = old.permissions().mode() & 0o777;
            open_partial(OpenOptions::new().read(true), partial)?
                .set_permissions(fs::Permissions::from_mode(mode))?;
        }
    }
    fs::rename(partial, dest)
}

/// Compares the digest the server sent with the one computed here.
pub fn check_digest(expected: &Digest, actual: &Digest) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "MD5 mismatch: the server's digest is {} but the data received hashes to {}",
            hex(expected),
            hex(actual)
        ))
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The line printed after a transfer: name, size, time, rate, verification.
pub fn summary(name: &str, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!(
        "{name}: {} in {:.2} s ({}/s), md5 ok",
        human_bytes(bytes),
        secs,
        human_bytes((bytes as f64 / secs) as u64)
    )
}

/// A clock for the summary line.
pub struct Timer(Instant);
impl Timer {
    pub fn start() -> Self {
        Self(Instant::now())
    }
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::NoProgress;

    #[test]
    fn partial_sits_beside_its_destination() {
        assert_eq!(
            partial_path(Path::new("dir/a b.txt")),
            PathBuf::from("dir/a b.txt.ftpsh-part")
        );
        assert_eq!(remote_basename("/docs/x.bin"), "x.bin");
        assert_eq!(remote_basename("x.bin"), "x.bin");
        assert_eq!(remote_basename("docs/"), "docs");
    }

    #[test]
    fn partial_names_always_fit_name_max() {
        use std::os::unix::ffi::OsStringExt;
        let name = |n: &OsStr| partial_name(n).into_vec();
        // Up to 244 bytes the suffix is simply appended.
        let fits = "x".repeat(244);
        assert_eq!(
            name(OsStr::new(&fits)),
            format!("{fits}.ftpsh-part").into_bytes()
        );
        // Beyond, the name is cut between characters and tagged with a digest
        // of the whole name: deterministic, distinct for a shared start.
        let stem = "é".repeat(120);
        let (a, b) = (format!("{stem}a"), format!("{stem}b"));
        let pa = name(OsStr::new(&a));
        assert!(pa.len() <= 255, "{}", pa.len());
        let pa = String::from_utf8(pa).expect("still UTF-8");
        assert!(pa.starts_with(&"é".repeat(100)) && pa.ends_with(PARTIAL_SUFFIX));
        assert_eq!(name(OsStr::new(&a)), pa.as_bytes());
        assert_ne!(name(OsStr::new(&b)), pa.as_bytes());
        assert_eq!(name(OsStr::new(&"x".repeat(245))).len(), 255);
        // Bytes that are not UTF-8 are cut anywhere.
        let raw = OsString::from_vec(vec![0xff; 300]);
        let p = name(&raw);
        assert!(p.len() <= 255 && p.starts_with(&[0xff; 200]) && p.ends_with(b".ftpsh-part"));
        // The server's private decoration fits too.
        let private = decorated_name(
            ".",
            OsStr::new(&a),
            ".4294967295.18446744073709551615.ftpsh-part",
        );
        assert!(private.len() <= 255 && private.to_str().unwrap().starts_with(".é"));
        assert_eq!(remote_partial_path("d/e/x.bin"), "d/e/x.bin.ftpsh-part");
        assert_eq!(remote_partial_path(&format!("d/{a}")), format!("d/{pa}"));
    }

    #[test]
    fn a_link_at_the_partial_name_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        std::os::unix::fs::symlink(&target, &partial).unwrap();
        for (resume, offset) in [(false, 0), (true, 2)] {
            let mut r =
                FileReceiver::new(partial.clone(), resume, Box::new(|_| Box::new(NoProgress)));
            assert_eq!(r.resume_offset(), 0, "a link's target is no partial");
            let e = r.start(10, offset).unwrap_err();
            assert!(is_partial_refusal(&e), "{e}");
            assert!(e.to_string().contains("remove it"), "{e}");
        }
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

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

    #[test]
    fn mismatch_message_names_both_digests() {
        let err = check_digest(&[0; 16], &[1; 16]).unwrap_err();
        assert!(err.contains("00000000000000000000000000000000"));
        assert!(err.contains("01010101010101010101010101010101"));
    }
}
