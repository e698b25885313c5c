//! TLS 1.3 for ftpsh, with pinned server identities.
//!
//! - [`identity`]: the server's key pair and certificate, and fingerprints.
//! - [`verify`]: the client's certificate check: system CAs first, then a pin.
//! - [`known`]: the known-servers file.
//! - [`stream`]: [`TlsStream`], a TLS connection whose clones read and write
//!   from different threads at once.
//! - [`handshake`]: [`accept`] and [`connect`], with a deadline and a clear
//!   error when the peer does not speak TLS.

pub mod handshake;
pub mod identity;
pub mod known;
pub mod stream;
pub mod verify;

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::net::Stream;

pub use handshake::{
    accept, connect, looks_like_tls_client_hello, looks_like_tls_record, AcceptError, ConnectError,
    DEFAULT_HANDSHAKE_TIMEOUT, PLAINTEXT_REFUSAL,
};
pub use identity::{fingerprint_of_cert, fingerprint_of_spki, parse_fingerprint, Identity};
pub use known::{KnownEntry, KnownServers};
pub use stream::TlsStream;
pub use verify::{ClientTrust, PinningVerifier, Trust};

/// ALPN protocol name both sides offer, so a TLS peer of another protocol is
/// refused during the handshake rather than fed ftpsh frames.
pub const ALPN: &[u8] = b"ftpsh/1";

/// The crypto provider used everywhere: *ring* (builds with a C compiler
/// alone; no cmake, nasm or pkg-config), shared by all configurations.
/// AES-128-GCM is preferred over ring's default AES-256-GCM (fewer rounds; see
/// the README); both sides use this order, so it is what they agree on.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| {
        use rustls::CipherSuite as C;
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites.sort_by_key(|s| match s.suite() {
            C::TLS13_AES_128_GCM_SHA256 => 0,
            C::TLS13_AES_256_GCM_SHA384 => 1,
            _ => 2,
        });
        Arc::new(p)
    })
    .clone()
}

/// The server's side over an accepted connection: TLS within `timeout`, on a
/// TCP stream only. Errors carry an [`AcceptError`] (its `Display` is the log
/// line) where the peer is to blame.
pub fn accept_stream(stream: Stream, identity: &Identity, timeout: Duration) -> io::Result<Stream> {
    match stream {
        Stream::Tcp(tcp) => accept(tcp, &identity.server_config(), timeout).map(Stream::Tls),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("TLS over {} is not supported", other.peer()),
        )),
    }
}

/// The client's side over a connected TCP stream: TLS with `server_name`,
/// verified by `trust` before any application byte is sent.
pub fn connect_stream(
    stream: Stream,
    server_name: &str,
    trust: &ClientTrust,
) -> Result<(Stream, Trust), ConnectError> {
    match stream {
        Stream::Tcp(tcp) => connect(tcp, server_name, trust).map(|(s, t)| (Stream::Tls(s), t)),
        _ => Err(ConnectError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "TLS is only spoken over TCP",
        ))),
    }
}
