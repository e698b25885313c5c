//! File data: downloads (`Get`), uploads (`Put`) and `Md5`, each reading or
//! writing the file once while hashing it.
//!
//! Uploads land in `NAME.ftpsh-part` beside the destination and are renamed into
//! place only after the digest matches, with the data fsynced first. Partial
//! names come from `ftpsh_core::partial` (`partial_name`, `decorated_name`), so
//! the client finds what `put -c` resumes even when a long name had to be
//! shortened. The partial name is claimed in [`Shared::uploads`] for the
//! duration of an upload, and locked with `flock` for other server processes
//! serving the same tree; a second, concurrent upload of the same name writes
//! to a private temporary file instead, so each file ends as exactly one
//! complete upload, through one server or several.
//!
//! Every file is opened beneath the root's handle (see [`super::jail`]). An
//! upload resolves its destination's directory once, to a handle held for the
//! whole upload: the partial is created, checked, renamed and removed by name
//! in that directory (`openat`, `renameat`, `unlinkat` with `O_NOFOLLOW`), so
//! a directory above it swapped for a link meanwhile cannot send any of it
//! elsewhere.
//!
//! [`Shared::uploads`]: super::Shared::uploads

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::digests::FileKey;
use super::files::id_of;
use super::jail::{describe, is_escape, Jail};
use super::session::{Activity, Gone, Served, Session};
use ftpsh_core::net::Stream;
use ftpsh_core::protocol::frame::{write_frames, write_header};
use ftpsh_core::protocol::message::DATA_KIND;
use ftpsh_core::protocol::{Reply, Request, DATA_CHUNK};
use ftpsh_core::sys::beneath::{self, Meta, Mode, OFlags};

use ftpsh_core::direct::OutputFile;
use ftpsh_core::hashing::{Md5, Md5Sink};
use ftpsh_core::partial::{decorated_name, partial_name, PARTIAL_SUFFIX};

/// Opens a regular file to read. `dir_hint` follows the refusal of a directory
/// (`get` suggests `-r`; `md5` has nothing to suggest).
fn open_for_reading(
    s: &Session,
    path: &str,
    dir_hint: &str,
) -> Result<(File, u64, String), String> {
    let jail = &s.shared.jail;
    let r = jail.resolve(&s.cwd, path).map_err(|e| e.to_string())?;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
    // and hang the session; it has no effect on regular files.
    let file = jail
        .root()
        .open_file(
            &r.virt,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| Jail::error(&r, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {}", r.virt, describe(&e)))?;
    if meta.is_dir() {
        return Err(format!("{}: is a directory{dir_hint}", r.virt));
    }
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", r.virt));
    }
    Ok((file, meta.len(), r.virt))
}

/// Reads up to `buf.len()` bytes, retrying on interruption.
fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `Md5`: the digest of a whole file, or `Cancelled`. Hashing a large file
/// takes seconds per GiB, so the session looks for a `Cancel` or a closed
/// connection between chunks instead of hashing on for a client that left.
pub fn md5(s: &mut Session, path: &str) -> Served {
    match digest_of(s, path)? {
        Sent::Done(md5) => s.reply(Reply::FileEnd { md5 }),
        Sent::Cancelled => s.reply(Reply::Cancelled),
        Sent::Failed(m) => s.error(m),
    }
}

fn digest_of(s: &mut Session, path: &str) -> Result<Sent, Gone> {
    let (mut file, _, virt) = match open_for_reading(s, path, "") {
        Ok(f) => f,
        Err(m) => return Ok(Sent::Failed(m)),
    };
    let key = file.metadata().map(|m| FileKey::of(&m)).ok();
    if let Some(known) = key.and_then(|k| s.shared.digests.get(&k)) {
        return Ok(Sent::Done(known));
    }
    let mut hasher = Md5::new();
    loop {
        let n = match read_some(&mut file, &mut s.buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Ok(Sent::Failed(format!("{virt}: {}", describe(&e)))),
        };
        hasher.update(&s.buf[..n]);
        if s.cancel_requested()? {
            return Ok(Sent::Cancelled);
        }
    }
    let digest = hasher.finalize();
    let after = file.metadata().map(|m| FileKey::of(&m)).ok();
    if let (Some(k), Some(a)) = (key, after) {
        if k == a {
            s.shared.digests.insert(k, digest);
        }
    }
    Ok(Sent::Done(digest))
}

/// `Get`: announce, stream, send the digest of the whole file. A digest the
/// server remembers for this exact file lets the bytes go out with `sendfile`
/// and no hashing; otherwise the file is hashed as it is read and sent.
pub fn send_file(s: &mut Session, path: &str, offset: u64) -> Served {
    let (file, size, virt) = match open_for_reading(s, path, " (use get -r)") {
        Ok(f) => f,
        Err(m) => return s.error(m),
    };
    if offset > size {
        return s.error(format!(
            "{virt}: the partial copy ({offset} bytes) is longer than the file ({size} bytes); \
             remove it or download without -c"
        ));
    }
    let meta = file.metadata().ok();
    let key = meta.as_ref().map(FileKey::of);
    let cached = key.and_then(|k| s.shared.digests.get(&k));
    let (mode, mtime) = meta.as_ref().map_or((0o644, 0), |m| {
        use std::os::unix::fs::MetadataExt;
        (m.mode() & 0o7777, m.mtime())
    });
    s.reply(Reply::FileStart {
        size,
        offset,
        mode,
        mtime,
    })?;
    let sent = match cached {
        Some(digest) => send_remembered(s, file, offset, size, &virt, digest),
        None => send_hashing(s, file, offset, size, &virt),
    };
    let md5 = match sent? {
        Sent::Done(md5) => md5,
        Sent::Cancelled => return s.reply(Reply::Cancelled),
        Sent::Failed(m) => return s.error(m),
    };
    // Remember the digest only if the file did not change while it was read.
    let after = open_for_reading(s, path, "")
        .ok()
        .and_then(|(f, ..)| f.metadata().ok())
        .map(|m| FileKey::of(&m));
    match (key, after) {
        (Some(k), Some(a)) if k == a => s.shared.digests.insert(k, md5),
        _ => return s.error(format!("{virt}: the file changed while being sent")),
    }
    #[cfg(debug_assertions)]
    let md5 = if s.shared.config.corrupt_digests {
        let mut lie = md5;
        lie[0] ^= 0xff;
        lie
    } else {
        md5
    };
    s.reply(Reply::FileEnd { md5 })
}

/// How reading a file's data (to send it, or only to hash it) ended.
enum Sent {
    Done([u8; 16]),
    Cancelled,
    Failed(String),
}

/// The read size of a large first download (four data chunks).
const SEND_BUFFER: usize = 4 * DATA_CHUNK;
/// Buffers in flight to the hash thread while sending: with the one being
/// read, at most 4 MiB whatever the file size.
const SEND_POOL: usize = 3;

/// Reads, hashes and sends; the bytes before `offset` are hashed, not sent.
/// Large files are hashed on a second thread ([`Md5Sink`]) so that the client,
/// which hashes too, is not left waiting for this side's MD5. Each buffer is
/// sent first and then handed to that thread whole (no copy), which hands
/// back one it is done with for the next read. A large file is read
/// [`SEND_BUFFER`] bytes at a time and each buffer sent as data chunks with
/// one vectored write: a quarter of the reads, writes and hand-offs (and of
/// the wake-ups they cause) of one per chunk.
fn send_hashing(
    s: &mut Session,
    mut file: File,
    offset: u64,
    size: u64,
    virt: &str,
) -> Result<Sent, Gone> {
    let mut hasher = Md5Sink::with_pool(size, SEND_POOL);
    // Small files (hashed inline) keep the session's one buffer.
    let step = if matches!(hasher, Md5Sink::Threaded { .. }) {
        SEND_BUFFER
    } else {
        DATA_CHUNK
    };
    let mut pos = 0u64;
    let mut spare = std::mem::take(&mut s.buf);
    let result = (|| {
        let buf = &mut spare;
        while pos < size {
            if buf.len() < step {
                // A spent buffer of the hash pool: empty at first.
                buf.resize(step, 0);
            }
            let want = step.min((size - pos) as usize);
            let n = match read_some(&mut file, &mut buf[..want]) {
                Ok(0) => {
                    return Ok(Sent::Failed(format!(
                        "{virt}: the file shrank while being sent"
                    )))
                }
                Ok(n) => n,
                Err(e) => return Ok(Sent::Failed(format!("{virt}: {}", describe(&e)))),
            };
            let end = pos + n as u64;
            if end > offset {
                let skip = offset.saturating_sub(pos) as usize;
                write_frames(&mut s.writer, DATA_KIND, &buf[skip..n], DATA_CHUNK)?;
            }
            let sent = std::mem::take(buf);
            *buf = hasher.update_owned_range(sent, 0..n);
            // Also while only hashing the part a resumed download already
            // has: it can be gigabytes, and the client may have left.
            if s.cancel_requested()? {
                return Ok(Sent::Cancelled);
            }
            pos = end;
        }
        Ok(Sent::Done(hasher.finalize()))
    })();
    spare.truncate(DATA_CHUNK);
    spare.shrink_to(DATA_CHUNK);
    spare.resize(DATA_CHUNK, 0);
    s.buf = spare;
    result
}

/// Sends `offset..size` with the kernel's zero-copy path (std's `io::copy`
/// uses `sendfile`/`splice` between a file and a socket). A file that shrinks
/// under us leaves a frame short, so the connection is dropped.
fn send_remembered(
    s: &mut Session,
    file: File,
    offset: u64,
    size: u64,
    virt: &str,
    digest: [u8; 16],
) -> Result<Sent, Gone> {
    let mut file = file;
    if let Err(e) = file.seek(SeekFrom::Start(offset)) {
        return Ok(Sent::Failed(format!("{virt}: {}", describe(&e))));
    }
    let mut pos = offset;
    while pos < size {
        let n = (ftpsh_core::protocol::DATA_CHUNK as u64).min(size - pos);
        write_header(&mut s.writer, DATA_KIND, n as usize)?;
        let mut chunk = (&file).take(n);
        let copied = match &mut s.writer {
            Stream::Tcp(t) => io::copy(&mut chunk, t),
            Stream::Unix(u) => io::copy(&mut chunk, u),
            // Whole chunks, so that TLS records are full and an ssh pipe is
            // written in large pieces (io::copy's buffer is 8 KiB, and
            // sendfile does not apply to our non-blocking pipe stream).
            Stream::Pipe(p) => copy_chunk(&mut chunk, p, &mut s.buf),
            Stream::Tls(t) => copy_chunk(&mut chunk, t, &mut s.buf),
        };
        match copied {
            Ok(c) if c == n => {}
            Ok(_) => {
                s.shared.log(
                    &s.peer,
                    format!("{virt}: the file shrank while being sent; dropping the connection"),
                );
                return Err(Gone);
            }
            Err(_) => return Err(Gone),
        }
        pos += n;
        if s.cancel_requested()? {
            return Ok(Sent::Cancelled);
        }
    }
    Ok(Sent::Done(digest))
}

/// `io::copy` through `buf`.
fn copy_chunk(from: &mut impl Read, to: &mut impl io::Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        copied += n as u64;
    }
}

/// Whether the entry `name` of `dir` (not followed, if a link) is the open `file`.
fn names_file(dir: BorrowedFd<'_>, name: &OsStr, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (beneath::lstat_at(dir, name), file.metadata()) {
        (Ok(a), Ok(b)) => {
            let a = Meta::from(&a);
            a.dev == b.dev() && a.ino == b.ino()
        }
        _ => false,
    }
}

/// What names an upload's partial file in [`Shared::uploads`](super::Shared):
/// its directory (device, inode) and its name there.
pub type UploadKey = (u64, u64, OsString);

/// Releases a claimed partial name when an upload ends, however it ends.
struct Claim<'a> {
    s: &'a super::Shared,
    path: Option<UploadKey>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            self.s
                .uploads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p);
        }
    }
}

/// What an upload says of its source: permission bits and modification
/// time, applied as they are with `keep` (`put -p`); without, the file gets
/// the bits less the server's umask (see [`ftpsh_core::sys::new_mode`]).
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    pub mode: u32,
    pub mtime: i64,
    pub keep: bool,
}

impl Attrs {
    /// Applied on the verified file's handle, before it is renamed into place:
    /// it appears with its final mode and time.
    fn apply(&self, file: &File) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if self.keep {
            let when = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_secs(self.mtime.max(0) as u64))
                .ok_or_else(|| io::Error::other("time out of range"))?;
            file.set_times(std::fs::FileTimes::new().set_modified(when))?;
        }
        let bits = ftpsh_core::sys::new_mode(self.mode, self.keep);
        file.set_permissions(std::fs::Permissions::from_mode(bits))
    }
}

/// `Put`: receive into a partial file while hashing, verify, install.
pub fn receive_file(
    s: &mut Session,
    path: &str,
    size: u64,
    (resume, wait, more): (bool, bool, bool),
    attrs: Attrs,
) -> Served {
    let ack = resume || wait;
    // One of a batch: its reply waits for the batch's end (see [`Batch`]).
    let deferred = !ack && (more || !s.batch.is_empty());
    let shared = s.shared;
    let target = match shared.jail.resolve(&s.cwd, path) {
        Ok(r) => r,
        Err(e) => return refuse_upload(s, ack, (deferred, more), e.to_string()),
    };
    if target.virt == "/" {
        return refuse_upload(
            s,
            ack,
            (deferred, more),
            format!("{}: is a directory", target.virt),
        );
    }
    let root = shared.jail.root();
    // The destination's directory, once: every step below acts in it by name.
    let (dir, name) = match root.parent(&target.virt) {
        Ok(p) => p,
        Err(e) => return refuse_upload(s, ack, (deferred, more), Jail::error(&target, &e)),
    };
    let dir = dir.as_fd();
    match beneath::lstat_at(dir, &name).map(|st| Meta::from(&st)) {
        Ok(m) if m.is_dir() => {
            return refuse_upload(
                s,
                ack,
                (deferred, more),
                format!("{}: is a directory", target.virt),
            )
        }
        // Uploading over a link replaces the link itself, but say plainly why
        // a path that leads out of the root is not a place to upload to, and
        // that a link to a directory is a directory.
        Ok(m) if m.is_symlink() => match root.stat(&target.virt, true) {
            Err(e) if is_escape(&e) => {
                return refuse_upload(s, ack, (deferred, more), Jail::error(&target, &e))
            }
            Ok(t) if Meta::from(&t).is_dir() => {
                return refuse_upload(
                    s,
                    ack,
                    (deferred, more),
                    format!("{}: is a directory", target.virt),
                )
            }
            _ => {}
        },
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return refuse_upload(s, ack, (deferred, more), Jail::error(&target, &e)),
    }
    if target.virt.ends_with(PARTIAL_SUFFIX) {
        // Writing there would replace another upload's partial under it.
        return refuse_upload(
            s,
            ack,
            (deferred, more),
            format!(
                "{}: names ending in {PARTIAL_SUFFIX} are kept for partial uploads",
                target.virt
            ),
        );
    }
    let dir_id = match id_of(dir) {
        Ok(id) => id,
        Err(e) => return refuse_upload(s, ack, (deferred, more), Jail::error(&target, &e)),
    };
    // Claim the resumable partial name, or fall back to a private temporary one.
    let stable = partial_name(&name);
    let key: UploadKey = (dir_id.0, dir_id.1, stable.clone());
    let claimed = shared
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone());
    let (partial, resumable) = if claimed {
        (stable, true)
    } else if resume {
        return refuse_upload(
            s,
            ack,
            (deferred, more),
            format!(
                "{}: another upload of this file is in progress",
                target.virt
            ),
        );
    } else {
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let private = decorated_name(
            ".",
            &name,
            &format!(".{}.{id}{PARTIAL_SUFFIX}", shared.partial_tag),
        );
        (private, false)
    };
    // Released before the final reply (explicit drops below), so that a client
    // told the upload failed may resume it at once on another connection.
    let claim = Claim {
        s: shared,
        path: claimed.then_some(key),
    };
    // Large uploads are hashed on a second thread and written around the page
    // cache, as the client does with downloads (see ftpsh_core::direct).
    let mut hasher = Md5Sink::for_size(size);
    let mut opened = open_partial(
        dir,
        &partial,
        resumable,
        resume,
        size,
        &mut hasher,
        &mut s.buf,
    );
    let (partial, resumable, claim) = match &opened {
        // Another server process serving this tree holds the resumable
        // partial: this upload is the second of its name, as above. Or a
        // directory stands at the partial's name (anyone may make one): the
        // upload goes through a private partial, only not resumable.
        Err(e)
            if resumable
                && matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::IsADirectory
                ) =>
        {
            drop(claim);
            if resume {
                let why = if e.kind() == io::ErrorKind::WouldBlock {
                    "another upload of this file is in progress (through another server)"
                        .to_string()
                } else {
                    format!(
                        "cannot resume: its partial copy's name ({}) is a directory; \
                         remove it, or upload without -c",
                        ftpsh_core::display::name_of_path(std::path::Path::new(&partial))
                    )
                };
                return refuse_upload(s, ack, (deferred, more), format!("{}: {why}", target.virt));
            }
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            let private = decorated_name(
                ".",
                &name,
                &format!(".{}.{id}{PARTIAL_SUFFIX}", shared.partial_tag),
            );
            hasher = Md5Sink::for_size(size);
            opened = open_partial(dir, &private, false, false, size, &mut hasher, &mut s.buf);
            (private, false, None)
        }
        _ => (partial, resumable, Some(claim)),
    };
    let remove_partial = || {
        let _ = beneath::unlink_at(dir, &partial);
    };
    let (mut file, offset, mut failure) = match opened {
        Ok((f, off)) => (
            Some(OutputFile::new(f, off, size.saturating_sub(off))),
            off,
            None,
        ),
        Err(e) => (None, 0, Some(format!("{}: {}", target.virt, describe(&e)))),
    };
    if ack {
        if let Some(m) = failure {
            return s.error(m);
        }
        s.reply(Reply::Ready { offset })?;
    }
    let mut received = offset;
    // From here the peer owes us data: silence is a stall, not idleness.
    s.set_activity(Activity::Receiving);
    let digest = loop {
        match s.next_request() {
            Some(Request::Data(bytes)) => {
                received += bytes.len() as u64;
                if failure.is_some() {
                    continue;
                }
                if received > size {
                    failure = Some(format!(
                        "{}: more data than the announced {size} bytes",
                        target.virt
                    ));
                    continue;
                }
                if let Err(e) = file.as_mut().map_or(Ok(()), |f| f.write_all(&bytes)) {
                    failure = Some(format!("{}: {}", target.virt, describe(&e)));
                }
                // The buffer itself goes to the hash thread, which hands back
                // a spent one for the reader: no copy of the data.
                let spent = hasher.update_owned(bytes);
                s.recycle(spent);
            }
            Some(Request::PutEnd { md5 }) => {
                s.set_activity(Activity::Working);
                break md5;
            }
            Some(Request::Cancel) => {
                drop(file);
                if !resumable || received == 0 {
                    remove_partial();
                }
                drop(claim);
                return s.reply(Reply::Cancelled);
            }
            Some(_) => {
                shared.log(&s.peer, "dropped: request in the middle of an upload");
                let _ = s.error("protocol error: request in the middle of an upload");
                if !resumable {
                    remove_partial();
                }
                return Err(Gone);
            }
            None => {
                // The client went away: keep a resumable partial, drop a private
                // one, and an empty one, which has nothing to resume.
                if !resumable || received == 0 {
                    remove_partial();
                }
                return Err(Gone);
            }
        }
    };
    let verified = (|| {
        if let Some(m) = failure.take() {
            return Err(m);
        }
        if received != size {
            return Err(format!(
                "{}: received {received} of {size} bytes",
                target.virt
            ));
        }
        let ours = hasher.finalize();
        if ours != digest {
            remove_partial();
            return Err(format!(
                "{}: MD5 mismatch (client {}, server {}); the upload was discarded",
                target.virt,
                ftpsh_core::hex(&digest),
                ftpsh_core::hex(&ours)
            ));
        }
        let out = file.as_mut().expect("file is open when nothing failed");
        out.finish()
            .and_then(|()| attrs.apply(out.file()))
            .map_err(|e| format!("{}: {}", target.virt, describe(&e)))?;
        Ok(ours)
    })();
    let digest = match verified {
        Ok(d) => d,
        Err(m) => {
            if !resumable {
                remove_partial();
            }
            // The partial's lock goes with its file: both are let go before
            // the reply, so that a client told the upload failed may resume
            // it at once.
            drop(file);
            drop(claim);
            return if deferred {
                hold(s, Held::Refused(m), more)
            } else {
                s.error(m)
            };
        }
    };
    let dir_id_copy = dir_id;
    // Held uploads into one directory share one handle on it: a slice of 64
    // files then holds 65 descriptors, not 128.
    let shared_dir = if deferred {
        s.batch.dirs.get(&dir_id).cloned()
    } else {
        None
    };
    let upload = Verified {
        file: file.take().expect("file is open when nothing failed"),
        dir: match shared_dir.map_or_else(|| dir.try_clone_to_owned().map(Arc::new), Ok) {
            Ok(d) => d,
            Err(e) => {
                if !resumable {
                    remove_partial();
                }
                return s.error(format!("{}: {}", target.virt, describe(&e)));
            }
        },
        dir_id: dir_id_copy,
        partial: partial.clone(),
        name,
        virt: target.virt.clone(),
        digest,
        resumable,
        _claim: claim,
        seen: None,
        _held: Vec::new(),
    };
    if deferred {
        let mut upload = upload;
        upload.seen = Some(entry_at(upload.dir.as_fd(), &upload.name));
        // Held, it keeps its partial and its directory open until the batch
        // ends: two descriptors of the server's budget, or the batch ends
        // with it.
        upload._held.extend(shared.handles.take());
        upload._held.extend(shared.handles.take());
        let more = more && upload._held.len() == 2;
        s.batch
            .dirs
            .entry(upload.dir_id)
            .or_insert_with(|| Arc::clone(&upload.dir));
        ftpsh_core::sys::start_writeback(upload.file.file(), 0, size);
        return hold(s, Held::Install(Box::new(upload)), more);
    }
    // A single upload: durable before it is renamed, and its directory before
    // the reply.
    let virt = upload.virt.clone();
    let outcome = match upload.file.file().sync_all() {
        Ok(()) => install(s, upload),
        Err(e) => Err(upload.discard(&e)),
    }
    .and_then(|()| match s.sync_dirty_dirs().first() {
        Some((_, e)) => Err(entry_not_durable(&virt, e)),
        None => Ok(()),
    });
    match outcome {
        Ok(()) => s.reply(Reply::Ok),
        Err(m) => s.error(m),
    }
}

/// An upload renamed into place whose directory could not be fsynced: its
/// name may not survive a crash, so it is not answered `Ok`.
fn entry_not_durable(virt: &str, e: &io::Error) -> String {
    format!(
        "{virt}: installed, but its directory could not be written to disk ({}); \
         it may be lost in a crash",
        describe(e)
    )
}

/// An upload received whole and verified, not yet under its name.
pub struct Verified<'a> {
    file: OutputFile,
    /// The destination's directory, as resolved once for the whole upload
    /// (or, in a batch, by the first upload into it).
    dir: Arc<std::os::fd::OwnedFd>,
    dir_id: (u64, u64),
    partial: OsString,
    name: OsString,
    /// The destination as the client named it, for messages.
    virt: String,
    digest: ftpsh_core::Digest,
    resumable: bool,
    /// The claim on the resumable partial name: kept (never read) until the
    /// upload is installed or discarded, so no other upload takes the name.
    _claim: Option<Claim<'a>>,
    /// For an upload held in a batch: its descriptors' places in the
    /// server's budget ([`super::Handles`]).
    _held: Vec<super::Handle<'a>>,
    /// For an upload held in a batch: what the destination name was when
    /// this upload was verified. Another upload installed under the name
    /// since then is the newer one, and this one gives way to it.
    seen: Option<Option<(u64, u64)>>,
}

/// What `name` in `dir` is now: its (device, inode), or `None` if nothing.
fn entry_at(dir: BorrowedFd<'_>, name: &OsStr) -> Option<(u64, u64)> {
    beneath::lstat_at(dir, name).ok().map(|st| {
        let m = Meta::from(&st);
        (m.dev, m.ino)
    })
}

impl Verified<'_> {
    /// Nothing is installed: a private partial goes, a resumable one stays
    /// for `put -c`.
    fn drop_private_partial(&self) {
        if !self.resumable {
            let _ = beneath::unlink_at(self.dir.as_fd(), &self.partial);
        }
    }

    /// The data could not be made durable: nothing is installed, and a
    /// private partial is removed (a resumable one stays for `put -c`).
    fn discard(self, e: &io::Error) -> String {
        self.drop_private_partial();
        format!(
            "{}: cannot write the upload to disk: {}; nothing was installed",
            self.virt,
            describe(e)
        )
    }
}

/// Renames a verified, durable upload into place and notes its directory for
/// the fsync that makes the rename durable ([`Session::sync_dirty_dirs`]).
fn install(s: &mut Session, upload: Verified) -> Result<(), String> {
    let dir = upload.dir.as_fd();
    if let Some(seen) = upload.seen {
        if entry_at(dir, &upload.name) != seen {
            // Held since it was verified, while another upload (through
            // another connection or server) installed this name: that one is
            // newer, and was answered Ok. Its stale partial goes too.
            let _ = beneath::unlink_at(dir, &upload.partial);
            return Err(format!(
                "{}: another upload replaced it while this one waited for the end of its batch; \
                 this one was not installed",
                upload.virt
            ));
        }
    }
    // The name is renamed, not the file: make sure it is still the file that
    // was hashed (a local process may have replaced it).
    if !names_file(dir, &upload.partial, upload.file.file()) {
        upload.drop_private_partial();
        return Err(format!(
            "{}: its partial file was replaced during the upload; nothing was installed",
            upload.virt
        ));
    }
    if let Err(e) = beneath::rename_at(dir, &upload.partial, dir, &upload.name) {
        upload.drop_private_partial();
        return Err(format!("{}: {}", upload.virt, describe(&e)));
    }
    // Stat our own inode (the name may already belong to a newer upload):
    // the digest just verified is this file's.
    if let Ok(m) = upload.file.file().metadata() {
        s.shared.digests.insert(FileKey::of(&m), upload.digest);
    }
    // A handle that can be fsynced (the one held is O_PATH); without read
    // permission on the directory there is none, and no fsync, as before.
    if let std::collections::btree_map::Entry::Vacant(slot) = s.dirty_dirs.entry(upload.dir_id) {
        if let Ok(readable) = beneath::reopen_dir(dir) {
            slot.insert(readable);
        }
    }
    Ok(())
}

/// What a batch upload leaves for the end of its batch.
pub enum Held<'a> {
    /// Verified; installed when the batch is made durable (boxed: a held
    /// refusal is only its message).
    Install(Box<Verified<'a>>),
    /// Refused or failed: the message, replied in its turn.
    Refused(String),
}

/// The uploads of a batch (`Put { more }`) whose replies are held until the
/// batch ends: the client streams a whole slice of small files, and the server
/// makes their data durable with one `syncfs` (per file system) instead of
/// one fsync each (for [`SYNCFS_MIN`] files or more), renames them, fsyncs their directories, and only then
/// answers each in order, so that every `Ok` still means "installed and on
/// disk". One fsync per file waits for one journal commit per file, which is
/// what made `put -r` of small files slower than `sftp -r` (bench/README.md).
///
/// The batch ends with its upload without `more`, with any other request
/// (it is installed before that request is served), with the session, or
/// when [`MAX_HELD`] uploads wait (each holds its partial open and claimed),
/// or when the server's budget of held descriptors ([`super::Handles`],
/// shared by every session) has none left for one more.
#[derive(Default)]
pub struct Batch<'a> {
    held: Vec<Held<'a>>,
    /// A handle on each directory the held uploads go to, by (device, inode).
    dirs: std::collections::HashMap<(u64, u64), Arc<std::os::fd::OwnedFd>>,
}

/// The most uploads a batch holds: the client's slice (`SLICE`, 64). A peer
/// that streams more without an end gets its replies in batches of this many.
const MAX_HELD: usize = 64;

/// The fewest verified uploads a batch makes durable with one `syncfs`;
/// fewer are fsynced one by one, as single uploads are. `syncfs` writes back
/// and waits for every dirty page of the file system, other processes' too:
/// measured on ext4 while another process kept about 64 MiB dirty, it took
/// 17–21 ms (median) whatever the batch, where fsyncing each 4 KiB file took
/// 0.35 ms for 2 files, 1.4 ms for 8, 3.1 ms for 16 and 8.2 ms for 32
/// (bench/README.md, "Batches: syncfs only for 32 files or more"). Below
/// this a batch gains little from `syncfs`, and a peer streaming batches of
/// two files could otherwise make the server flush the whole file system
/// for every two tiny uploads.
const SYNCFS_MIN: usize = 32;

impl<'a> Batch<'a> {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn is_full(&self) -> bool {
        self.held.len() >= MAX_HELD
    }

    fn hold(&mut self, held: Held<'a>) {
        self.held.push(held);
    }
}

/// Holds one upload's outcome (installed or refused) for the end of its
/// batch, and ends the batch when this was its last upload (`more: false`)
/// or the batch is full: a refused last upload ends it too (the client waits
/// for the replies and sends nothing more), and refusals count towards
/// [`MAX_HELD`] like verified uploads (each holds a message).
fn hold<'a>(s: &mut Session<'a>, held: Held<'a>, more: bool) -> Served {
    s.batch.hold(held);
    if !more || s.batch.is_full() {
        return flush_batch(s);
    }
    Ok(())
}

/// Ends the batch: its verified uploads are made durable together, renamed
/// into place and their directories fsynced; then every held reply is sent,
/// in order. When the peer is gone, the verified uploads are installed all
/// the same, as a single upload is whose reply is lost.
pub fn flush_batch(s: &mut Session) -> Served {
    if s.batch.is_empty() {
        return Ok(());
    }
    let held = std::mem::take(&mut s.batch.held);
    s.batch.dirs.clear();
    let files: Vec<&File> = held
        .iter()
        .filter_map(|h| match h {
            Held::Install(v) => Some(v.file.file()),
            Held::Refused(_) => None,
        })
        .collect();
    let mut durable = if files.len() >= SYNCFS_MIN {
        ftpsh_core::sys::make_durable(&files)
    } else {
        files.iter().map(|f| f.sync_all()).collect()
    }
    .into_iter();
    drop(files);
    // Each outcome with the directory and name an installed upload went to.
    type Placed = Option<((u64, u64), String)>;
    let outcomes: Vec<(Placed, Result<(), String>)> = held
        .into_iter()
        .map(|h| match h {
            Held::Install(v) => {
                let placed = Some((v.dir_id, v.virt.clone()));
                match durable.next().unwrap_or(Ok(())) {
                    Ok(()) => (placed, install(s, *v)),
                    Err(e) => (None, Err(v.discard(&e))),
                }
            }
            Held::Refused(m) => (None, Err(m)),
        })
        .collect();
    let failed = s.sync_dirty_dirs();
    for (placed, outcome) in outcomes {
        let outcome = match (outcome, placed) {
            (Ok(()), Some((dir, virt))) => match failed.iter().find(|(id, _)| *id == dir) {
                Some((_, e)) => Err(entry_not_durable(&virt, e)),
                None => Ok(()),
            },
            (outcome, _) => outcome,
        };
        match outcome {
            Ok(()) => Reply::Ok.write_to(&mut s.writer)?,
            Err(m) => Reply::Error { message: &m }.write_to(&mut s.writer)?,
        }
    }
    Ok(())
}

/// Opens the partial file `partial` in `dir`: continued (its bytes hashed)
/// when resuming, new otherwise. Never through a link (`O_NOFOLLOW`), never
/// waiting on a FIFO (`O_NONBLOCK`, which regular files ignore).
///
/// The resumable name (`shared`) is the same for every server process
/// serving this tree (several servers over one shared file system): it is
/// locked (`flock`) for as long as the upload holds it open, so an upload of
/// the same name through another server finds it taken (`WouldBlock`) instead
/// of writing into it. Nothing is truncated before the lock is ours, and the
/// lock only counts while the name still leads to the locked file (another
/// server may have renamed it into place between our open and our lock).
fn open_partial(
    dir: BorrowedFd<'_>,
    partial: &OsStr,
    shared: bool,
    resume: bool,
    size: u64,
    hasher: &mut Md5Sink,
    buf: &mut [u8],
) -> io::Result<(File, u64)> {
    let plain_file = || {
        beneath::lstat_at(dir, partial)
            .map(|st| Meta::from(&st))
            .ok()
    };
    // Anything but a plain file at the partial's name (a link, a FIFO planted
    // there) is removed, never followed or opened.
    if plain_file().is_some_and(|m| !m.is_file() && !m.is_dir()) {
        beneath::unlink_at(dir, partial)?;
    }
    if !shared {
        // A private name is this upload's alone: one already there (another
        // server's, however unlikely) is never truncated or written into.
        let fd = beneath::open_at(
            dir,
            partial,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NONBLOCK,
            Mode::from_raw_mode(0o666),
        )?;
        return Ok((File::from(fd), 0));
    }
    let mut f = lock_shared_partial(dir, partial)?;
    let meta = f.metadata()?;
    let len = meta.len();
    if resume && meta.is_file() && len <= size {
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = read_some(&mut f, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        let kept = len - left;
        f.set_len(kept)?;
        f.seek(SeekFrom::Start(kept))?;
        return Ok((f, kept));
    }
    f.set_len(0)?;
    Ok((f, 0))
}

/// Opens (creating it if need be) and locks the resumable partial; see
/// [`open_partial`]. `WouldBlock` when another process's upload holds it.
fn lock_shared_partial(dir: BorrowedFd<'_>, partial: &OsStr) -> io::Result<File> {
    for _ in 0..8 {
        let fd = beneath::open_at(
            dir,
            partial,
            OFlags::RDWR | OFlags::CREATE | OFlags::NONBLOCK,
            Mode::from_raw_mode(0o666),
        )?;
        let f = File::from(fd);
        ftpsh_core::sys::try_lock_exclusive(&f)?;
        let (ours, links) = {
            use std::os::unix::fs::MetadataExt;
            let m = f.metadata()?;
            ((m.dev(), m.ino()), m.nlink())
        };
        if links > 1 {
            // A hard link to some other file (made by a local user): writing
            // here would change that file. Our name goes; a new file is made.
            drop(f);
            beneath::unlink_at(dir, partial)?;
            continue;
        }
        match beneath::lstat_at(dir, partial).map(|st| Meta::from(&st)) {
            Ok(now) if (now.dev, now.ino) == ours => return Ok(f),
            // Renamed into place or removed by its last holder: try again.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        "the partial file keeps changing hands",
    ))
}

/// Refuses an upload before any data was accepted. In streaming mode the client
/// sends its data without waiting, so it is read and dropped up to `PutEnd` to
/// keep the connection in step.
fn refuse_upload(
    s: &mut Session,
    ack: bool,
    (deferred, more): (bool, bool),
    message: String,
) -> Served {
    if !ack {
        // The peer owes the data it announced, refused or not: silence here
        // is a stall, as in an accepted upload.
        s.set_activity(Activity::Receiving);
        loop {
            match s.next_request() {
                Some(Request::Data(_)) => continue,
                Some(Request::PutEnd { .. }) => break,
                Some(Request::Cancel) => return s.reply(Reply::Cancelled),
                _ => return Err(Gone),
            }
        }
        s.set_activity(Activity::Working);
    }
    if deferred {
        return hold(s, Held::Refused(message), more);
    }
    s.error(message)
}
