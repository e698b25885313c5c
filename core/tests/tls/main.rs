//! TLS (src/tls) over loopback sockets: identities and fingerprints, CA and
//! pinned verification, the known-servers file, plaintext peers, and the
//! stream read and written from two threads at once. One binary, so the
//! suite links once.

#[allow(dead_code)]
mod common;

mod ca;
mod identity;
mod plaintext;
mod stream;
mod tofu;
