//! What the ftpsh client and server share, and nothing else.
//!
//! The wire [`protocol`], the [`net`] addresses and streams it runs over, the
//! one [`hashing::Md5`] both ends verify with, partial-file names
//! ([`partial`]), glob syntax ([`glob`]), names as people see them
//! ([`display`]), I/O errors as people read them ([`errors`]), large writes
//! that skip the page cache ([`direct`]), and every call into the operating
//! system that std does not wrap ([`sys`]).
//!
//! This crate depends on no other ftpsh crate: `ftpsh-commands` (the verbs)
//! and `ftpsh` (server, client, shell) depend on it, and the server uses it
//! alone. It is also the only ftpsh crate allowed `unsafe` code, and only in
//! [`sys`] and [`hashing`].

pub mod direct;
pub mod display;
pub mod entry;
pub mod errors;
pub mod glob;
pub mod hashing;
pub mod net;
pub mod partial;
pub mod pipe;
pub mod protocol;
pub mod ssh;
pub mod sys;
pub mod tls;

pub use entry::{hex, Digest, Entry, EntryKind};
