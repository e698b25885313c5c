//! The ftpsh wire protocol, version 3.
//!
//! Everything that crosses the socket is defined here, so that the server and the
//! client can only disagree by failing a test in this module.
//!
//! # Connection set-up
//!
//! ```text
//! client -> server   "FTPSH" u16:version              (7 bytes, see [`handshake`])
//! server -> client   "FTPSH" u16:version
//! client -> server   frame Auth { token }
//! server -> client   frame Ok | Error { message }     (an Error closes the connection)
//! ```
//!
//! A server that does not speak the client's version still answers with its own
//! magic and version and then an `Error` frame, so the user is told which versions
//! meet instead of seeing a dropped connection: a version-1 client shows
//! "this client speaks protocol 2; ftpsh-server speaks protocol 3: upgrade ftpsh
//! to ..." ([`handshake::client_mismatch`]). A client that reads an older
//! server's greeting stops there with "the server speaks protocol 1; upgrade
//! ftpsh-server to ..." ([`handshake::server_too_old`]).
//!
//! # Versions 2 and 3: faithful copies, batched uploads
//!
//! Version 2 carries what a faithful copy of a tree needs, and version 3 adds
//! `more` to `Put` (a batch of uploads installed together; see the table
//! below). The payloads, in order; `str` is a u32 length and the bytes:
//!
//! ```text
//! entry      str:name u8:kind u64:size i64:mtime u32:mode str:link_target   (target empty unless kind = link)
//! Walk       str:path bool:follow            (follow = -L: links followed, else listed as links)
//! Put        str:path u64:size bool:resume bool:wait u32:mode i64:mtime bool:keep bool:more
//! FileStart  u64:size u64:offset u32:mode i64:mtime
//! Link       str:path str:target     (0x20; Ok or Error; replaces a link or file of that name)
//! Attrs      str:path u32:mode i64:mtime bool:keep   (0x21; Ok or Error)
//! ```
//!
//! `mode` is the permission bits (`st_mode & 0o7777`), `mtime` seconds since
//! the epoch. With `keep` (`-p`) the receiver applies both; without, it applies
//! `mode & 0o777` less its umask (never wider than the source) and leaves the
//! time of arrival. The server applies them on the handles it holds (the
//! verified upload's file before it is renamed into place; a directory opened
//! beneath the root for `Attrs`), never by a path string.
//!
//! A link inside a tree travels as a link: its target is only data. The server
//! stores it as given (`Link`) and never follows it out of the root (every
//! open is beneath the root); the client creates it as given, after the
//! tree's files, and never writes through it.
//!
//! # Frames
//!
//! After the handshake every message is one frame:
//!
//! ```text
//! u8:kind  u32:length (big endian)  length bytes of payload
//! ```
//!
//! The length is checked against [`frame::MAX_PAYLOAD`] *before* any buffer is
//! grown, so a peer that announces 2^32-1 bytes costs nothing but its connection.
//! Integers inside payloads are big endian; strings are a u32 length and UTF-8
//! bytes (see [`codec`]). File names and paths (request paths and patterns,
//! entry names, link targets) are a u32 length and *any* bytes but NUL: names
//! are bytes. Each side holds them as text with one private-use character per
//! byte that is not UTF-8 ([`crate::display::name_from_bytes`]), exact both
//! ways, and shows them escaped (`\xHH`).
//!
//! # Requests and replies
//!
//! Requests ([`message::Request`]) go from client to server; the server answers each
//! one, in order, with one or more replies ([`message::Reply`]). A client may send
//! the next request before the previous one is answered (pipelining): batches of
//! small files use this to avoid a round trip per file.
//!
//! | request | replies |
//! | --- | --- |
//! | `Echo`, `Pwd`, `Cd` | `Text` or `Error` |
//! | `Md5` | `FileEnd { md5 }` or `Error` |
//! | `Mkdir`, `Remove`, `Link`, `Attrs` | `Ok` or `Error` |
//! | `Stat` | `Entries` (one entry) or `Error` |
//! | `List`, `Glob`, `Walk` | zero or more `Entries`, then `Ok`; or `Error` |
//! | `Exec` | `Stdout`/`Stderr` chunks as produced, then `Exit`; or `Error` |
//! | `Get { offset }` | `FileStart { size, offset, mode, mtime }`, `Data` chunks, `FileEnd { md5 }`; or `Error` at any point |
//! | `Put { resume: false, wait: false }` | the client streams `Data` chunks and `PutEnd { md5 }` without waiting; then `Ok` or `Error` |
//! | `Put { more: true }` (streamed) | as above, but the reply may be held: the batch's replies come, in order, once its last upload (`more: false`) or any other request has arrived and the batch's files are installed and durable |
//! | `Put { resume or wait }` | `Ready { offset }` (0 unless resuming) or `Error`; the client streams from `offset`, `PutEnd`; then `Ok` or `Error` |
//! | `Cancel` (during `Exec`, `Get` or `Put`) | the running reply stream ends with `Cancelled` |
//! | `Rename`, `Chmod`, `Rmdir`, `Symlink` | `Ok` or `Error` |
//! | `StatDetails` | `Details { entry, target }` or `Error` |
//! | `StatFs` | `Space { size, free, avail }` or `Error` |
//!
//! # Listings stream
//!
//! `List` and `Walk` answers are streamed: the server reads the directory (a
//! walk, each directory of the tree, parents before what they hold) a batch
//! of entries at a time and sends each `Entries` frame (of at most 64 KiB)
//! as it fills, so it never holds a whole listing. The wire format is the
//! one above (`Entries`*, then `Ok`); what this adds to it:
//! - Order: entries come in the order the directory gives them, sorted by
//!   name only within each batch of 1,024 read from one directory. A client
//!   that shows or compares listings sorts them (`ftpsh` sorts `list` by
//!   name and `walk` component by component, which keeps parents first).
//! - Failure midway: an `Error` (or `Cancelled`) may follow some `Entries`;
//!   the listing is then incomplete and the client drops what it received.
//! - The client bounds what it accepts (`MAX_ENTRIES`, `MAX_ENTRY_BYTES` in
//!   the client) and closes the connection past that.
//!
//! # File data
//!
//! A download announces the file's size, then sends the bytes in `Data` chunks of at
//! most [`frame::DATA_CHUNK`] bytes, then the MD5 of the *whole* file. The server
//! hashes while it reads, so the file is read once; for a resumed download
//! (`offset > 0`) it hashes the first `offset` bytes without sending them and the
//! client hashes its partial copy of them, so the digest still covers every byte.
//! No acknowledgement round trip is needed between the announcement and the data:
//! framing, not timing, separates messages. Sizes and offsets are u64.

pub mod codec;
pub mod frame;
pub mod handshake;
pub mod message;

pub use frame::{FrameReader, DATA_CHUNK, MAX_PAYLOAD};
pub use message::{Entry, EntryKind, Reply, Request};

/// Why bytes from the peer could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame announces {0} bytes, more than the limit of {max}", max = MAX_PAYLOAD)]
    Oversize(u64),
    #[error("truncated message: {0}")]
    Truncated(&'static str),
    #[error("unknown message kind 0x{0:02x}")]
    UnknownKind(u8),
    #[error("invalid text in message (not UTF-8)")]
    BadUtf8,
    #[error("not an ftpsh peer (bad magic bytes)")]
    BadMagic,
    #[error("protocol version {theirs} is not supported (this side speaks {ours})")]
    Version { ours: u16, theirs: u16 },
    #[error("unexpected message: {0}")]
    Unexpected(String),
}
