//! The messages: [`Request`] (client to server) and [`Reply`] (server to client),
//! each encoded as one frame whose kind byte names the variant.
//!
//! Requests are decoded into owned values (the server queues them); replies borrow
//! the reader's buffer, so a `Data` chunk reaches the client's hasher without a copy.
//!
//! The `Entries` of a listing or a walk may include *problems*: what the server
//! could not list (an unreadable directory, a name that is not UTF-8, a tree too
//! deep), as an `Other` entry whose mode is [`crate::entry::PROBLEM_MODE`] and
//! whose name is the message ([`Entry::problem`]). A client counts them as
//! failures; the rest of the reply is complete.

use super::codec::{Decoder, Encoder};
use super::frame::write_frame;
use super::ProtocolError;
pub use crate::entry::{Entry, EntryKind};

/// Client-to-server messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// First frame after the magic: the token (empty when the server needs none).
    Auth {
        token: String,
    },
    Echo {
        text: String,
    },
    Exec {
        command: String,
    },
    List {
        path: String,
    },
    Stat {
        path: String,
    },
    Cd {
        path: String,
    },
    Pwd,
    Mkdir {
        path: String,
        parents: bool,
    },
    Remove {
        path: String,
        recursive: bool,
    },
    Md5 {
        path: String,
    },
    Glob {
        pattern: String,
    },
    /// Every entry below a directory. With `follow`, links are followed
    /// (`-L`); without, a link is an entry of its own with its target.
    Walk {
        path: String,
        follow: bool,
    },
    Get {
        path: String,
        offset: u64,
    },
    /// Upload `size` bytes to `path`. With `resume` the server continues its
    /// partial copy; with `resume` or `wait` it answers `Ready { offset }` before
    /// the data (so a refusal arrives before the bytes are sent); otherwise the
    /// client streams at once (pipelined batches).
    Put {
        path: String,
        size: u64,
        resume: bool,
        wait: bool,
        /// The source's permission bits and modification time (seconds).
        /// With `keep` (`put -p`) both are applied; without, the file gets
        /// `mode` less the server's umask and the time of its arrival.
        mode: u32,
        mtime: i64,
        keep: bool,
        /// More uploads of the same batch follow (streamed ones only): the
        /// server may hold this upload's reply, and install the batch's
        /// verified files together once the upload without `more` (or any
        /// other request) arrives, made durable with one file-system sync
        /// instead of one fsync per file. The client must not wait for a
        /// reply before it has sent the batch's last upload.
        more: bool,
    },
    /// One chunk of an upload.
    Data(Vec<u8>),
    /// The end of an upload: the MD5 of the whole file.
    PutEnd {
        md5: [u8; 16],
    },
    /// Stop the running `Exec` or `Get`.
    Cancel,
    /// Renames `from` to `to` (both beneath the root); an existing `to` is
    /// refused (`RENAME_NOREPLACE`). Answered `Ok` or `Error`.
    Rename {
        from: String,
        to: String,
    },
    /// Sets the permission bits (at most `0o7777`) of `path`, following a final
    /// link beneath the root. Answered `Ok` or `Error`.
    Chmod {
        path: String,
        mode: u32,
    },
    /// Removes an empty directory. Answered `Ok` or `Error`.
    Rmdir {
        path: String,
    },
    /// Creates the symbolic link `link` holding `target` as given; a target
    /// that would lead outside the root is refused. Answered `Ok` or `Error`.
    Symlink {
        target: String,
        link: String,
    },
    /// What `path` itself is (a final link not followed), with a link's
    /// target. Answered `Details` or `Error`.
    StatDetails {
        path: String,
    },
    /// The sizes of the file system holding `path`. Answered `Space` or `Error`.
    StatFs {
        path: String,
    },
    /// Creates the symbolic link `path` with `target` stored as given (a
    /// link of a tree being copied: data, never followed by the server
    /// outside the root). An existing link or file of that name is replaced.
    Link {
        path: String,
        target: String,
    },
    /// Applies a directory's (or file's) attributes, as `Put` does: with
    /// `keep`, `mode` and `mtime`; without, `mode` less the umask only.
    Attrs {
        path: String,
        mode: u32,
        mtime: i64,
        keep: bool,
    },
}

/// Server-to-client messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    Ok,
    Error {
        message: &'a str,
    },
    Text {
        text: &'a str,
    },
    Entries(Vec<Entry>),
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    /// The remote command ended: an exit code, or a signal number when `signal`.
    Exit {
        code: i32,
        signal: bool,
    },
    /// A download starts: the file's size, the offset data follows from,
    /// its permission bits and modification time (seconds).
    FileStart {
        size: u64,
        offset: u64,
        mode: u32,
        mtime: i64,
    },
    Data(&'a [u8]),
    FileEnd {
        md5: [u8; 16],
    },
    Ready {
        offset: u64,
    },
    Cancelled,
    /// The answer to `StatDetails`: the entry (named by its last component)
    /// and, for a link, its target as stored (escaped if not UTF-8; empty for
    /// anything else).
    Details {
        entry: Entry,
        target: &'a str,
    },
    /// The answer to `StatFs`, in bytes: the file system's size, what is
    /// free, and what is available to unprivileged users.
    Space {
        size: u64,
        free: u64,
        avail: u64,
    },
}

mod kind {
    pub const AUTH: u8 = 0x01;
    pub const ECHO: u8 = 0x02;
    pub const EXEC: u8 = 0x03;
    pub const LIST: u8 = 0x04;
    pub const STAT: u8 = 0x05;
    pub const CD: u8 = 0x06;
    pub const PWD: u8 = 0x07;
    pub const MKDIR: u8 = 0x08;
    pub const REMOVE: u8 = 0x09;
    pub const MD5: u8 = 0x0a;
    pub const GLOB: u8 = 0x0b;
    pub const WALK: u8 = 0x0c;
    pub const GET: u8 = 0x0d;
    pub const PUT: u8 = 0x0e;
    pub const DATA_UP: u8 = 0x0f;
    pub const PUT_END: u8 = 0x10;
    pub const CANCEL: u8 = 0x11;
    // The everyday verbs (rename, chmod, ...): a range of their own.
    pub const RENAME: u8 = 0x30;
    pub const CHMOD: u8 = 0x31;
    pub const RMDIR: u8 = 0x32;
    pub const SYMLINK: u8 = 0x33;
    pub const STAT_DETAILS: u8 = 0x34;
    pub const STAT_FS: u8 = 0x35;
    pub const LINK: u8 = 0x20;
    pub const ATTRS: u8 = 0x21;

    pub const OK: u8 = 0x80;
    pub const ERROR: u8 = 0x81;
    pub const TEXT: u8 = 0x82;
    pub const ENTRIES: u8 = 0x83;
    pub const STDOUT: u8 = 0x84;
    pub const STDERR: u8 = 0x85;
    pub const EXIT: u8 = 0x86;
    pub const FILE_START: u8 = 0x87;
    pub const DATA: u8 = 0x88;
    pub const FILE_END: u8 = 0x89;
    pub const READY: u8 = 0x8a;
    pub const CANCELLED: u8 = 0x8b;
    pub const DETAILS: u8 = 0xb0;
    pub const SPACE: u8 = 0xb1;
}

/// Frame kind of a download `Data` chunk, for writers that send a file buffer
/// directly instead of building a [`Reply`].
pub const DATA_KIND: u8 = kind::DATA;
/// Frame kind of an upload `Data` chunk (see [`DATA_KIND`]).
pub const UPLOAD_DATA_KIND: u8 = kind::DATA_UP;
/// Frame kinds of command output chunks.
pub const STDOUT_KIND: u8 = kind::STDOUT;
pub const STDERR_KIND: u8 = kind::STDERR;

impl Request {
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut e = Encoder::new();
        let k = match self {
            Request::Auth { token } => {
                e.str(token);
                kind::AUTH
            }
            Request::Echo { text } => {
                e.str(text);
                kind::ECHO
            }
            Request::Exec { command } => {
                e.str(command);
                kind::EXEC
            }
            Request::List { path } => {
                e.name(path);
                kind::LIST
            }
            Request::Stat { path } => {
                e.name(path);
                kind::STAT
            }
            Request::Cd { path } => {
                e.name(path);
                kind::CD
            }
            Request::Pwd => kind::PWD,
            Request::Mkdir { path, parents } => {
                e.name(path).bool(*parents);
                kind::MKDIR
            }
            Request::Remove { path, recursive } => {
                e.name(path).bool(*recursive);
                kind::REMOVE
            }
            Request::Md5 { path } => {
                e.name(path);
                kind::MD5
            }
            Request::Glob { pattern } => {
                e.name(pattern);
                kind::GLOB
            }
            Request::Walk { path, follow } => {
                e.name(path).bool(*follow);
                kind::WALK
            }
            Request::Get { path, offset } => {
                e.name(path).u64(*offset);
                kind::GET
            }
            Request::Put {
                path,
                size,
                resume,
                wait,
                mode,
                mtime,
                keep,
                more,
            } => {
                e.name(path)
                    .u64(*size)
                    .bool(*resume)
                    .bool(*wait)
                    .u32(*mode)
                    .i64(*mtime)
                    .bool(*keep)
                    .bool(*more);
                kind::PUT
            }
            Request::Data(bytes) => {
                e.rest(bytes);
                kind::DATA_UP
            }
            Request::PutEnd { md5 } => {
                e.rest(md5);
                kind::PUT_END
            }
            Request::Cancel => kind::CANCEL,
            Request::Rename { from, to } => {
                e.name(from).name(to);
                kind::RENAME
            }
            Request::Chmod { path, mode } => {
                e.name(path).u32(*mode);
                kind::CHMOD
            }
            Request::Rmdir { path } => {
                e.name(path);
                kind::RMDIR
            }
            Request::Symlink { target, link } => {
                e.name(target).name(link);
                kind::SYMLINK
            }
            Request::StatDetails { path } => {
                e.name(path);
                kind::STAT_DETAILS
            }
            Request::StatFs { path } => {
                e.name(path);
                kind::STAT_FS
            }
            Request::Link { path, target } => {
                e.name(path).name(target);
                kind::LINK
            }
            Request::Attrs {
                path,
                mode,
                mtime,
                keep,
            } => {
                e.name(path).u32(*mode).i64(*mtime).bool(*keep);
                kind::ATTRS
            }
        };
        (k, e.finish())
    }

    /// Writes the request as one frame.
    pub fn write_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        let (k, payload) = self.encode();
        write_frame(w, k, &payload)
    }

    pub fn decode(k: u8, payload: &[u8]) -> Result<Request, ProtocolError> {
        let mut d = Decoder::new(payload);
        let s = |d: &mut Decoder, what| d.str(what).map(str::to_owned);
        let r = match k {
            kind::AUTH => Request::Auth {
                token: s(&mut d, "token")?,
            },
            kind::ECHO => Request::Echo {
                text: s(&mut d, "text")?,
            },
            kind::EXEC => Request::Exec {
                command: s(&mut d, "command")?,
            },
            kind::LIST => Request::List {
                path: d.name("path")?,
            },
            kind::STAT => Request::Stat {
                path: d.name("path")?,
            },
            kind::CD => Request::Cd {
                path: d.name("path")?,
            },
            kind::PWD => Request::Pwd,
            kind::MKDIR => Request::Mkdir {
                path: d.name("path")?,
                parents: d.bool("parents")?,
            },
            kind::REMOVE => Request::Remove {
                path: d.name("path")?,
                recursive: d.bool("recursive")?,
            },
            kind::MD5 => Request::Md5 {
                path: d.name("path")?,
            },
            kind::GLOB => Request::Glob {
                pattern: d.name("pattern")?,
            },
            kind::WALK => Request::Walk {
                path: d.name("path")?,
                follow: d.bool("follow")?,
            },
            kind::GET => Request::Get {
                path: d.name("path")?,
                offset: d.u64("offset")?,
            },
            kind::PUT => Request::Put {
                path: d.name("path")?,
                size: d.u64("size")?,
                resume: d.bool("resume")?,
                wait: d.bool("wait")?,
                mode: d.u32("mode")?,
                mtime: d.i64("mtime")?,
                keep: d.bool("keep")?,
                more: d.bool("more")?,
            },
            kind::DATA_UP => Request::Data(d.rest().to_vec()),
            kind::PUT_END => Request::PutEnd {
                md5: d.array("md5")?,
            },
            kind::CANCEL => Request::Cancel,
            kind::RENAME => Request::Rename {
                from: d.name("from")?,
                to: d.name("to")?,
            },
            kind::CHMOD => Request::Chmod {
                path: d.name("path")?,
                mode: d.u32("mode")?,
            },
            kind::RMDIR => Request::Rmdir {
                path: d.name("path")?,
            },
            kind::SYMLINK => Request::Symlink {
                target: d.name("target")?,
                link: d.name("link")?,
            },
            kind::STAT_DETAILS => Request::StatDetails {
                path: d.name("path")?,
            },
            kind::STAT_FS => Request::StatFs {
                path: d.name("path")?,
            },
            kind::LINK => Request::Link {
                path: d.name("path")?,
                target: d.name("target")?,
            },
            kind::ATTRS => Request::Attrs {
                path: d.name("path")?,
                mode: d.u32("mode")?,
                mtime: d.i64("mtime")?,
                keep: d.bool("keep")?,
            },
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        d.end()?;
        Ok(r)
    }
}

fn encode_entry(e: &mut Encoder, entry: &Entry) {
    let k = match entry.kind {
        EntryKind::File => 0,
        EntryKind::Dir => 1,
        EntryKind::Symlink => 2,
        EntryKind::Other => 3,
    };
    e.name(&entry.name)
        .u8(k)
        .u64(entry.size)
        .i64(entry.mtime)
        .u32(entry.mode)
        .name(&entry.target);
}

fn decode_entry(d: &mut Decoder) -> Result<Entry, ProtocolError> {
    let name = d.name("entry name")?;
    let kind = match d.u8("entry kind")? {
        0 => EntryKind::File,
        1 => EntryKind::Dir,
        2 => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Ok(Entry {
        name,
        kind,
        size: d.u64("entry size")?,
        mtime: d.i64("entry mtime")?,
        mode: d.u32("entry mode")?,
        target: d.name("link target")?,
    })
}

/// The encoded size of an entry, so that listings can be cut into frames that
/// stay under the limit.
pub fn entry_len(entry: &Entry) -> usize {
    4 + entry.name.len() + 1 + 8 + 8 + 4 + 4 + entry.target.len()
}

impl<'a> Reply<'a> {
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut e = Encoder::new();
        let k = match self {
            Reply::Ok => kind::OK,
            Reply::Error { message } => {
                e.str(message);
                kind::ERROR
            }
            Reply::Text { text } => {
                e.str(text);
                kind::TEXT
            }
            Reply::Entries(entries) => {
                e.u32(entries.len() as u32);
                for entry in entries {
                    encode_entry(&mut e, entry);
                }
                kind::ENTRIES
            }
            Reply::Stdout(b) => {
                e.rest(b);
                kind::STDOUT
            }
            Reply::Stderr(b) => {
                e.rest(b);
                kind::STDERR
            }
            Reply::Exit { code, signal } => {
                e.u32(*code as u32).bool(*signal);
                kind::EXIT
            }
            Reply::FileStart {
                size,
                offset,
                mode,
                mtime,
            } => {
                e.u64(*size).u64(*offset).u32(*mode).i64(*mtime);
                kind::FILE_START
            }
            Reply::Data(b) => {
                e.rest(b);
                kind::DATA
            }
            Reply::FileEnd { md5 } => {
                e.rest(md5);
                kind::FILE_END
            }
            Reply::Ready { offset } => {
                e.u64(*offset);
                kind::READY
            }
            Reply::Cancelled => kind::CANCELLED,
            Reply::Details { entry, target } => {
                encode_entry(&mut e, entry);
                e.str(target);
                kind::DETAILS
            }
            Reply::Space { size, free, avail } => {
                e.u64(*size).u64(*free).u64(*avail);
                kind::SPACE
            }
        };
        (k, e.finish())
    }

    pub fn write_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        let (k, payload) = self.encode();
        write_frame(w, k, &payload)
    }

    pub fn decode(k: u8, payload: &'a [u8]) -> Result<Reply<'a>, ProtocolError> {
        let mut d = Decoder::new(payload);
        let r = match k {
            kind::OK => Reply::Ok,
            kind::ERROR => Reply::Error {
                message: d.str("message")?,
            },
            kind::TEXT => Reply::Text {
                text: d.str("text")?,
            },
            kind::ENTRIES => {
                let n = d.u32("entry count")? as usize;
                // Each entry takes at least 29 bytes: a count that the payload
                // cannot hold is refused before the vector is sized by it.
                if n > d.remaining() / 29 {
                    return Err(ProtocolError::Truncated("entries"));
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(decode_entry(&mut d)?);
                }
                Reply::Entries(entries)
            }
            kind::STDOUT => Reply::Stdout(d.rest()),
            kind::STDERR => Reply::Stderr(d.rest()),
            kind::EXIT => Reply::Exit {
                code: d.u32("exit code")? as i32,
                signal: d.bool("signal")?,
            },
            kind::FILE_START => Reply::FileStart {
                size: d.u64("size")?,
                offset: d.u64("offset")?,
                mode: d.u32("mode")?,
                mtime: d.i64("mtime")?,
            },
            kind::DATA => Reply::Data(d.rest()),
            kind::FILE_END => Reply::FileEnd {
                md5: d.array("md5")?,
            },
            kind::READY => Reply::Ready {
                offset: d.u64("offset")?,
            },
            kind::CANCELLED => Reply::Cancelled,
            kind::DETAILS => Reply::Details {
                entry: decode_entry(&mut d)?,
                target: d.str("link target")?,
            },
            kind::SPACE => Reply::Space {
                size: d.u64("size")?,
                free: d.u64("free")?,
                avail: d.u64("available")?,
            },
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        d.end()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<Request> {
        let p = || "dir/a b ü.txt".to_string();
        vec![
            Request::Auth {
                token: "s3cret".into(),
            },
            Request::Echo {
                text: "hello world".into(),
            },
            Request::Exec {
                command: "ls | wc -l".into(),
            },
            Request::List { path: p() },
            Request::Stat { path: p() },
            Request::Cd { path: "..".into() },
            Request::Pwd,
            Request::Mkdir {
                path: p(),
                parents: true,
            },
            Request::Remove {
                path: p(),
                recursive: false,
            },
            Request::Md5 { path: p() },
            Request::Glob {
                pattern: "*.log".into(),
            },
            Request::Walk {
                path: p(),
                follow: true,
            },
            Request::Get {
                path: p(),
                offset: 5 << 32,
            },
            Request::Put {
                path: p(),
                size: u64::MAX,
                resume: true,
                wait: true,
                mode: 0o4755,
                mtime: -5,
                keep: true,
                more: false,
            },
            Request::Put {
                path: p(),
                size: 0,
                resume: false,
                wait: false,
                mode: 0o600,
                mtime: 1 << 40,
                keep: false,
                more: true,
            },
            Request::Data(vec![0, 1, 2, 255]),
            Request::Data(vec![]),
            Request::PutEnd { md5: [7; 16] },
            Request::Cancel,
            Request::Rename {
                from: p(),
                to: "b".into(),
            },
            Request::Chmod {
                path: p(),
                mode: 0o4755,
            },
            Request::Rmdir { path: p() },
            Request::Symlink {
                target: "../x".into(),
                link: p(),
            },
            Request::StatDetails { path: p() },
            Request::StatFs { path: p() },
            // Names are bytes: one that is not UTF-8 goes as its bytes.
            Request::Remove {
                path: crate::display::name_from_bytes(b"d/a\xffb").into_owned(),
                recursive: false,
            },
            Request::Link {
                path: p(),
                target: "../zreal".into(),
            },
            Request::Attrs {
                path: p(),
                mode: 0o700,
                mtime: 1_700_000_000,
                keep: true,
            },
        ]
    }

    #[test]
    fn every_request_round_trips() {
        for r in all_requests() {
            let (k, payload) = r.encode();
            assert_eq!(Request::decode(k, &payload).unwrap(), r);
        }
    }

    #[test]
    fn every_reply_round_trips() {
        let entry = Entry {
            name: "x".into(),
            kind: EntryKind::Dir,
            size: 1 << 40,
            mtime: -1,
            mode: 0o755,
            target: String::new(),
        };
        let replies = vec![
            Reply::Ok,
            Reply::Error {
                message: "no such file: /x",
            },
            Reply::Text { text: "/docs" },
            Reply::Entries(vec![
                entry.clone(),
                Entry {
                    kind: EntryKind::Symlink,
                    target: "zreal".into(),
                    ..entry.clone()
                },
            ]),
            Reply::Entries(vec![]),
            Reply::Stdout(b"out"),
            Reply::Stderr(b"err"),
            Reply::Exit {
                code: -3,
                signal: false,
            },
            Reply::Exit {
                code: 9,
                signal: true,
            },
            Reply::FileStart {
                size: 5 << 32,
                offset: 3,
                mode: 0o600,
                mtime: 1_700_000_000,
            },
            Reply::Data(b"\0\0"),
            Reply::FileEnd { md5: [1; 16] },
            Reply::Ready { offset: 42 },
            Reply::Cancelled,
            Reply::Details {
                entry: Entry {
                    kind: EntryKind::Symlink,
                    ..entry.clone()
                },
                target: "../t",
            },
            Reply::Details {
                entry: entry.clone(),
                target: "",
            },
            Reply::Space {
                size: 1 << 40,
                free: 5,
                avail: 3,
            },
        ];
        for r in replies {
            let (k, payload) = r.encode();
            assert_eq!(Reply::decode(k, &payload).unwrap(), r);
        }
    }

    #[test]
    fn every_truncation_of_a_request_is_an_error_not_a_panic() {
        for r in all_requests() {
            let (k, payload) = r.encode();
            for cut in 0..payload.len() {
                let decoded = Request::decode(k, &payload[..cut]);
                // Data and the empty-payload requests are valid at any length.
                if !matches!(r, Request::Data(_)) {
                    assert!(
                        decoded.is_err(),
                        "{r:?} cut at {cut} decoded as {decoded:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn names_travel_as_their_bytes() {
        let (_, payload) = Request::Md5 {
            path: crate::display::name_from_bytes(b"a\xffb").into_owned(),
        }
        .encode();
        assert_eq!(payload, b"\0\0\0\x03a\xffb");
    }

    #[test]
    fn trailing_bytes_and_unknown_kinds_are_refused() {
        let (k, mut payload) = Request::Pwd.encode();
        payload.push(0);
        assert!(Request::decode(k, &payload).is_err());
        assert!(matches!(
            Request::decode(0x7f, &[]),
            Err(ProtocolError::UnknownKind(0x7f))
        ));
        assert!(matches!(
            Reply::decode(0x01, &[]),
            Err(ProtocolError::UnknownKind(0x01))
        ));
    }

    #[test]
    fn an_entry_count_larger_than_the_payload_is_refused_before_allocating() {
        let mut e = Encoder::new();
        e.u32(u32::MAX);
        let payload = e.finish();
        assert!(Reply::decode(kind::ENTRIES, &payload).is_err());
    }
}
