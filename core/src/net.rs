//! Sockets of either family behind one type: TCP (IPv4, IPv6) or a Unix domain
//! socket, so the server and the client are written once.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pipe::PipeStream;
pub use crate::ssh::SshTarget;
use crate::tls::TlsStream;

/// The default port, as in the spec: `host` alone means `host:6969`.
pub const DEFAULT_PORT: u16 = 6969;

/// Where to listen or connect: `host:port`, `[v6]:port`, or `unix:PATH`; a
/// client may also connect to `ssh://[USER@]HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(String),
    Unix(PathBuf),
    Ssh(SshTarget),
}

impl Address {
    /// Parses an address as typed; a TCP address without a port gets 6969.
    pub fn parse(s: &str) -> Result<Address, String> {
        if let Some(rest) = s.strip_prefix("ssh://") {
            return SshTarget::parse(rest).map(Address::Ssh);
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path (unix:/run/ftpsh.sock)".into());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if s.is_empty() {
            return Err("empty address".into());
        }
        let has_port = if let Some(rest) = s.strip_prefix('[') {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("{s}: missing ']' after an IPv6 address"))?;
            rest[close + 1..].starts_with(':')
        } else if s.matches(':').count() > 1 {
            return Err(format!(
                "{s}: write IPv6 addresses in brackets, as [::1]:6969"
            ));
        } else {
            s.contains(':')
        };
        let full = if has_port {
            s.to_string()
        } else {
            format!("{s}:{DEFAULT_PORT}")
        };
        let (host, port) = full.rsplit_once(':').unwrap_or(("", ""));
        if host.is_empty() || host == "[]" {
            return Err(format!("{s}: missing host (as in 127.0.0.1:6969)"));
        }
        port.parse::<u16>()
            .map_err(|_| format!("{s}: invalid port '{port}'"))?;
        Ok(Address::Tcp(full))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Ssh(t) => t.fmt(f),
        }
    }
}

/// A connected socket, a TLS connection over TCP, or the pipes of an `ssh`
/// child or of `--stdio`.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Pipe(PipeStream),
    Tls(TlsStream),
}

impl Stream {
    /// Connects, trying every address a name resolves to.
    pub fn connect(addr: &Address, timeout: Duration) -> io::Result<Stream> {
        match addr {
            Address::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            Address::Ssh(t) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{t}: started with SshTarget::spawn, not connected to"),
            )),
            Address::Tcp(a) => {
                let mut last =
                    io::Error::new(io::ErrorKind::NotFound, format!("{a}: no address found"));
                for sa in a.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, timeout) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Pipe(s) => Stream::Pipe(s.clone()),
            Stream::Tls(s) => Stream::Tls(s.try_clone()?),
        })
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Pipe(s) => {
                s.set_read_timeout(t);
                Ok(())
            }
            Stream::Tls(s) => s.set_read_timeout(t),
        }
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Pipe(s) => {
                s.set_write_timeout(t);
                Ok(())
            }
            Stream::Tls(s) => s.set_write_timeout(t),
        }
    }
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Pipe(s) => {
                s.shutdown();
                Ok(())
            }
            Stream::Tls(s) => s.shutdown(Shutdown::Both),
        };
    }
    /// Turns on TCP keepalive (see [`crate::sys::set_tcp_keepalive`]), so
    /// that a peer that vanished without closing (a host switched off, a
    /// network gone) is noticed even while nothing is expected from it. A
    /// Unix socket has no need of it: its peer is on this machine.
    pub fn set_keepalive(&self, idle: Duration, interval: Duration, count: u32) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => crate::sys::set_tcp_keepalive(s, idle, interval, count),
            Stream::Tls(s) => crate::sys::set_tcp_keepalive(s.get_ref(), idle, interval, count),
            // A child's pipes: ssh keeps its own connection alive.
            Stream::Unix(_) | Stream::Pipe(_) => Ok(()),
        }
    }
    /// Bytes that arrived and were not read yet. The client asks before a
    /// request when no reply is due: anything there is a reply to nothing.
    /// Over TLS: plaintext, decrypted and buffered or decryptable from what
    /// the socket holds now (not TLS records without data, such as a
    /// close_notify).
    pub fn pending(&self) -> usize {
        match self {
            Stream::Tcp(s) => crate::sys::bytes_buffered(s),
            Stream::Unix(s) => crate::sys::bytes_buffered(s),
            Stream::Pipe(s) => s.pending(),
            Stream::Tls(s) => s.pending(),
        }
    }
    /// Whether the peer has closed the connection while nothing was asked of
    /// it (a server's idle timeout, a restart): at its end, nothing left to
    /// read. Looked at without waiting, before a request, so that a client
    /// reconnects instead of sending into a closed connection and failing a
    /// command the server never saw.
    pub fn closed_by_peer(&self) -> bool {
        match self {
            Stream::Tcp(s) => crate::sys::at_end(s),
            Stream::Unix(s) => crate::sys::at_end(s),
            Stream::Pipe(s) => s.at_end(),
            Stream::Tls(s) => s.closed_by_peer(),
        }
    }
    /// The peer, for log lines.
    pub fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Stream::Unix(_) => "unix peer".into(),
            Stream::Pipe(s) => s.label().into(),
            Stream::Tls(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
        }
    }
    /// The peer's IP address (TCP only).
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip().to_canonical()),
            Stream::Tls(s) => s.peer_addr().ok().map(|a| a.ip().to_canonical()),
            Stream::Unix(_) | Stream::Pipe(_) => None,
        }
    }
    /// The peer's user id, as the kernel knows it (Unix sockets only).
    pub fn peer_uid(&self) -> Option<io::Result<u32>> {
        match self {
            Stream::Tcp(_) | Stream::Pipe(_) | Stream::Tls(_) => None,
            Stream::Unix(s) => Some(crate::sys::peer_uid(s)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Pipe(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Pipe(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Pipe(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, SocketFile),
}

/// The socket file a Unix listener created, removed when the listener is
/// dropped (or by [`SocketFile::remove`]), and only while its path still leads
/// to that same file: a later server's socket is left alone.
#[derive(Debug, Clone)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still ours; true if it was removed.
    pub fn remove(&self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                std::fs::remove_file(&self.path).is_ok()
            }
            _ => false,
        }
    }
}

/// The mode of a Unix socket only its owner may use.
pub const OWNER_ONLY: u32 = 0o600;

impl Listener {
    /// Binds. A Unix socket is made owner-only (0600) before anyone can reach
    /// it; see [`Listener::bind_with_mode`].
    pub fn bind(addr: &Address) -> io::Result<Listener> {
        Listener::bind_with_mode(addr, OWNER_ONLY)
    }

    /// Binds; a Unix socket gets `unix_mode` before it appears at its path.
    ///
    /// The socket is bound inside a fresh directory of mode 0700 next to the
    /// path, given its mode there, and renamed into place, so nobody else can
    /// connect between `bind` and `chmod` (the umask is process-wide, and
    /// changing it would race with other threads). Whatever is at the path
    /// already: nothing is fine; a socket that accepts a connection belongs to
    /// a live server and is an error ("already serving"); a socket that
    /// refuses connections is stale and replaced; anything else is an error
    /// and left alone. Servers starting at once in one directory take turns
    /// (an advisory lock on the directory), so two cannot both take the same
    /// stale socket for theirs.
    pub fn bind_with_mode(addr: &Address, unix_mode: u32) -> io::Result<Listener> {
        match addr {
            Address::Ssh(t) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{t}: a server listens on TCP or unix:, and serves ssh with --stdio"),
            )),
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a.as_str())?)),
            Address::Unix(p) => {
                let (listener, file) = bind_unix(p, unix_mode)?;
                Ok(Listener::Unix(listener, file))
            }
        }
    }

    /// The real bound address, as printed on the `listening on` line.
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(_, f) => Ok(format!("unix:{}", f.path.display())),
        }
    }
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
    /// The socket file of a Unix listener, to remove on the way out.
    pub fn socket_file(&self) -> Option<&SocketFile> {
        match self {
            Listener::Tcp(_) => None,
            Listener::Unix(_, f) => Some(f),
        }
    }
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, f) = self {
            f.remove();
        }
    }
}

/// See [`Listener::bind_with_mode`].
fn bind_unix(path: &Path, mode: u32) -> io::Result<(UnixListener, SocketFile)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no socket file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let _turn = DirTurn::take(dir)?;
    check_vacant(path)?;
    let private = PrivateDir::create(dir)?;
    let inner = private.path.join(name);
    // A path too long for a socket address (108 bytes on Linux) may still
    // fit through the directory's descriptor.
    let listener = match UnixListener::bind(&inner) {
        Err(e) if inner.as_os_str().len() >= 100 => {
            let short =
                PathBuf::from(format!("/proc/self/fd/{}", private.handle.as_raw_fd())).join(name);
            UnixListener::bind(&short).map_err(|_| e)?
        }
        other => other?,
    };
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&inner, path)?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

/// Whether a new socket may take `path`: nothing there, or a stale socket.
fn check_vacant(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(probe) => {
            let _ = probe.shutdown(Shutdown::Both);
            Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "already serving on unix:{} (a server there accepts connections); \
                     stop it first, or choose another path",
                    path.display()
                ),
            ))
        }
        // Nobody listens: a socket left behind by a server that was killed.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "{}: cannot tell whether a server still listens there: {e}",
                path.display()
            ),
        )),
    }
}

/// An advisory lock on a directory while a socket is bound in it. Best
/// effort where the directory cannot be opened for reading.
struct DirTurn(#[allow(dead_code)] Option<std::fs::File>);

impl DirTurn {
    fn take(dir: &Path) -> io::Result<DirTurn> {
        let Ok(handle) = std::fs::File::open(dir) else {
            return Ok(DirTurn(None));
        };
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match crate::sys::try_lock_exclusive(&handle) {
                Ok(()) => return Ok(DirTurn(Some(handle))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > give_up {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            format!(
                                "{}: another process holds a lock on the directory",
                                dir.display()
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                // A file system without flock: go on unlocked.
                Err(_) => return Ok(DirTurn(None)),
            }
        }
    }
}

/// A fresh directory only this user can enter, removed with what is left in it.
struct PrivateDir {
    path: PathBuf,
    handle: std::fs::File,
}

impl PrivateDir {
    fn create(parent: &Path) -> io::Result<PrivateDir> {
        use std::hash::{BuildHasher, Hasher};
        use std::os::unix::fs::DirBuilderExt;
        let mut last = None;
        for _ in 0..16 {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let path = parent.join(format!(".ftpsh-{:08x}", random as u32));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let handle = match std::fs::File::open(&path) {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = std::fs::remove_dir(&path);
                            return Err(e);
                        }
                    };
                    let dir = PrivateDir { handle, path };
                    // A umask may have taken the owner's bits too.
                    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_set_and_pending_bytes_are_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Address::Tcp(listener.local_addr().unwrap().to_string());
        let stream = Stream::connect(&addr, Duration::from_secs(5)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        stream
            .set_keepalive(Duration::from_secs(45), Duration::from_secs(5), 4)
            .unwrap();
        let Stream::Tcp(tcp) = &stream else {
            unreachable!()
        };
        let (on, idle) = crate::sys::tcp_keepalive(tcp).unwrap();
        assert!(on);
        if cfg!(target_os = "linux") {
            assert_eq!(idle, 45);
        }
        assert_eq!(stream.pending(), 0);
        peer.write_all(b"hello").unwrap();
        let start = std::time::Instant::now();
        while stream.pending() < 5 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stream.pending(), 5);
    }

    #[test]
    fn addresses_parse_with_default_port() {
        assert_eq!(
            Address::parse("localhost").unwrap(),
            Address::Tcp("localhost:6969".into())
        );
        assert_eq!(
            Address::parse("127.0.0.1:80").unwrap(),
            Address::Tcp("127.0.0.1:80".into())
        );
        assert_eq!(
            Address::parse("[::1]").unwrap(),
            Address::Tcp("[::1]:6969".into())
        );
        assert_eq!(
            Address::parse("[::1]:7").unwrap(),
            Address::Tcp("[::1]:7".into())
        );
        assert_eq!(
            Address::parse("unix:/tmp/s").unwrap(),
            Address::Unix("/tmp/s".into())
        );
        assert!(Address::parse("::1").is_err());
        assert!(Address::parse("host:99999").is_err());
        assert!(Address::parse("host:x").is_err());
        assert!(Address::parse(":80").is_err());
        assert!(Address::parse("[]:80").is_err());
        assert!(Address::parse("unix:").is_err());
    }
}
