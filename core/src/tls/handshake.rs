//! The TLS handshake on either side, within a deadline, with one-line errors
//! for a peer that does not speak TLS.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{AlertDescription, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::stream::{set_nonblocking, FdIo, HsError, State, TlsStream};
use super::verify::{ClientTrust, Trust};

/// Used by callers that have no better idea; the server should use its
/// handshake (stall) limit.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a TLS server sends a plaintext client before closing: a TLS fatal
/// alert record (protocol_version). Its 7 bytes are exactly an ftpsh greeting's
/// length, so a plaintext client reading the greeting gets all of it and can
/// recognise it with [`looks_like_tls_record`].
pub const PLAINTEXT_REFUSAL: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];

/// Whether a connection's first byte can start a TLS ClientHello (a
/// handshake record, 0x16). The ftpsh plaintext greeting starts with `F`.
pub fn looks_like_tls_client_hello(first_byte: u8) -> bool {
    first_byte == 0x16
}

/// Whether bytes (a plaintext client's "greeting" from the server) start a
/// TLS record: content type 20..=23 and major version 3.
pub fn looks_like_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x17, 0x03, ..])
}

/// Why `accept` failed. Reaches the caller inside the `io::Error` (see
/// [`AcceptError::of`]); its `Display` is the log line.
#[derive(Debug)]
pub enum AcceptError {
    /// The client sent something that is not TLS (an ftpsh plaintext greeting,
    /// most likely). It was sent [`PLAINTEXT_REFUSAL`].
    PlaintextClient,
    Timeout,
    /// The client closed during the handshake.
    Closed,
    /// A TLS failure, including the client's alert when it does not trust us.
    Tls(rustls::Error),
}

impl AcceptError {
    /// The `AcceptError` inside an error from [`accept`], if there is one.
    pub fn of(e: &io::Error) -> Option<&AcceptError> {
        e.get_ref().and_then(|i| i.downcast_ref::<AcceptError>())
    }
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::PlaintextClient => {
                f.write_str("dropped: a client without TLS reached this TLS port")
            }
            AcceptError::Timeout => f.write_str("dropped: TLS handshake not finished in time"),
            AcceptError::Closed => f.write_str("dropped: client left during the TLS handshake"),
            AcceptError::Tls(rustls::Error::AlertReceived(a))
                if matches!(
                    a,
                    AlertDescription::BadCertificate
                        | AlertDescription::UnknownCA
                        | AlertDescription::CertificateUnknown
                        | AlertDescription::AccessDenied
                ) =>
            {
                write!(
                    f,
                    "dropped: the client does not trust this server's identity ({a:?})"
                )
            }
            AcceptError::Tls(e) => write!(f, "dropped: TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for AcceptError {}

impl From<AcceptError> for io::Error {
    fn from(e: AcceptError) -> io::Error {
        let kind = match e {
            AcceptError::Timeout => io::ErrorKind::TimedOut,
            AcceptError::Closed => io::ErrorKind::UnexpectedEof,
            AcceptError::PlaintextClient | AcceptError::Tls(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// The server's side of the handshake, finished within `timeout`.
///
/// A client whose first byte is not a TLS handshake record gets
/// [`PLAINTEXT_REFUSAL`] and is dropped (`AcceptError::PlaintextClient`).
pub fn accept<S: AsFd>(
    stream: S,
    config: &Arc<ServerConfig>,
    timeout: Duration,
) -> io::Result<TlsStream<S>> {
    let deadline = Instant::now() + timeout;
    let fd = stream.as_fd();
    set_nonblocking(fd)?;
    let conn = ServerConnection::new(Arc::clone(config))
        .map_err(|e| io::Error::other(format!("TLS setup: {e}")))?;
    let mut state = State::new(Connection::Server(conn), fd);
    match state.handshake(fd, deadline, looks_like_tls_client_hello) {
        Ok(()) => {}
        Err(HsError::NotTls) => {
            use std::io::Write as _;
            let _ = FdIo {
                fd,
                socket: super::stream::is_socket(fd),
            }
            .write(&PLAINTEXT_REFUSAL);
            // Half close, then read what the client still sends (its token)
            // for a moment: closing with unread bytes would reset the
            // connection, and a reset can discard the refusal before the
            // client reads it.
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Write);
            drain(fd, Instant::now() + Duration::from_millis(500).min(timeout));
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
            return Err(AcceptError::PlaintextClient.into());
        }
        Err(HsError::Timeout) => return Err(AcceptError::Timeout.into()),
        Err(HsError::Closed | HsError::ClosedBeforeAnyByte) => {
            return Err(AcceptError::Closed.into())
        }
        Err(HsError::Tls(e)) => return Err(AcceptError::Tls(e).into()),
        Err(HsError::Io(e)) => return Err(e),
    }
    Ok(TlsStream::from_parts(stream, state))
}

/// Reads and discards until end of file, 64 KiB, or `until`.
fn drain(fd: std::os::fd::BorrowedFd<'_>, until: Instant) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < 64 * 1024 {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e == rustix::io::Errno::AGAIN => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::event::Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                };
                if rustix::event::poll(&mut fds, Some(&ts)).is_err() {
                    return;
                }
            }
            Err(e) if e == rustix::io::Errno::INTR => {}
            Err(_) => return,
        }
    }
}

/// Why `connect` failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The certificate is neither CA-valid nor pinned: `trust` is
    /// `Trust::Unknown` (ask the user) or `Trust::Mismatch` (refuse loudly).
    /// `ca_error` says why CA validation failed, when it was tried.
    Untrusted {
        trust: Trust,
        ca_error: Option<String>,
    },
    /// The server answered with something that is not TLS.
    NotTls,
    /// The server closed (or reset) the connection without sending a byte:
    /// the reaction of a plaintext ftpsh server to a ClientHello.
    NoAnswer,
    Timeout,
    /// The server name cannot be used for TLS.
    BadName(String),
    Tls(rustls::Error),
    Io(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Untrusted { trust, .. } => trust.fmt(f),
            ConnectError::NotTls => {
                f.write_str("the server does not speak TLS on this port (try without --tls)")
            }
            ConnectError::NoAnswer => f.write_str(
                "the server closed the connection without answering TLS: \
                 it does not speak TLS on this port (try without --tls)",
            ),
            ConnectError::Timeout => f.write_str("TLS handshake not finished in time"),
            ConnectError::BadName(n) => write!(f, "{n:?} is not a valid server name for TLS"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::Io(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> io::Error {
        let kind = match &e {
            ConnectError::Io(i) => i.kind(),
            ConnectError::Timeout => io::ErrorKind::TimedOut,
            ConnectError::NoAnswer => io::ErrorKind::ConnectionAborted,
            ConnectError::BadName(_) => io::ErrorKind::InvalidInput,
            ConnectError::Untrusted { .. } => io::ErrorKind::PermissionDenied,
            ConnectError::NotTls | ConnectError::Tls(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// The client's side of the handshake with `server_name` (a DNS name or an
/// IP address, IPv6 with or without brackets), within
/// `trust.handshake_timeout`. On success, how the server was trusted
/// (`Trust::CaValid` or `Trust::Pinned`). On `Untrusted` no application byte
/// was sent: the handshake ended with an alert.
pub fn connect<S: AsFd>(
    stream: S,
    server_name: &str,
    trust: &ClientTrust,
) -> Result<(TlsStream<S>, Trust), ConnectError> {
    let deadline = Instant::now() + trust.handshake_timeout;
    let name = server_name.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(name.to_string())
        .map_err(|_| ConnectError::BadName(server_name.to_string()))?;
    let verifier = trust.verifier();
    let config = trust.client_config(Arc::clone(&verifier));
    let fd = stream.as_fd();
    set_nonblocking(fd).map_err(ConnectError::Io)?;
    let conn = ClientConnection::new(config, name).map_err(ConnectError::Tls)?;
    let mut state = State::new(Connection::Client(conn), fd);
    let outcome = state.handshake(fd, deadline, |b| looks_like_tls_record(&[b, 3]));
    let seen = verifier.seen();
    match (outcome, seen.trust) {
        (Ok(()), Some(t)) if t.is_trusted() => Ok((TlsStream::from_parts(stream, state), t)),
        // A verifier that was never asked cannot have approved: refuse.
        (Ok(()), _) => Err(ConnectError::Tls(rustls::Error::General(
            "server certificate was not verified".into(),
        ))),
        (Err(_), Some(t)) if !t.is_trusted() => Err(ConnectError::Untrusted {
            trust: t,
            ca_error: seen.ca_error,
        }),
        (Err(HsError::NotTls), _) => Err(ConnectError::NotTls),
        (Err(HsError::ClosedBeforeAnyByte), _) => Err(ConnectError::NoAnswer),
        (Err(HsError::Closed), _) => Err(ConnectError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection during the TLS handshake",
        ))),
        (Err(HsError::Timeout), _) => Err(ConnectError::Timeout),
        (Err(HsError::Tls(e)), _) => Err(ConnectError::Tls(e)),
        (Err(HsError::Io(e)), _) => Err(ConnectError::Io(e)),
    }
}
