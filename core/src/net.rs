//! Sockets of either family behind one type: TCP (IPv4, IPv6) or a Unix domain
//! socket, so the server and the client are written once.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// The default port, as in the spec: `host` alone means `host:6969`.
pub const DEFAULT_PORT: u16 = 6969;

/// Where to listen or connect: `host:port`, `[v6]:port`, or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    /// Parses an address as typed; a TCP address without a port gets 6969.
    pub fn parse(s: &str) -> Result<Address, String> {
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
        }
    }
}

/// A connected socket.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects, trying every address a name resolves to.
    pub fn connect(addr: &Address, timeout: Duration) -> io::Result<Stream> {
        match addr {
            Address::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
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
        })
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
    /// Turns on TCP keepalive (see [`crate::sys::set_tcp_keepalive`]), so
    /// that a peer that vanished without closing (a host switched off, a
    /// network gone) is noticed even while nothing is expected from it. A
    /// Unix socket has no need of it: its peer is on this machine.
    pub fn set_keepalive(&self, idle: Duration, interval: Duration, count: u32) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => crate::sys::set_tcp_keepalive(s, idle, interval, count),
            Stream::Unix(_) => Ok(()),
        }
    }
    /// Bytes that arrived and were not read yet. The client asks before a
    /// request when no reply is due: anything there is a reply to nothing.
    pub fn pending(&self) -> usize {
        match self {
            Stream::Tcp(s) => crate::sys::bytes_buffered(s),
            Stream::Unix(s) => crate::sys::bytes_buffered(s),
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
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds. A Unix socket is made owner-only (0600); an old socket file at the
    /// path is replaced, anything else there is an error.
    pub fn bind(addr: &Address) -> io::Result<Listener> {
        match addr {
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a.as_str())?)),
            Address::Unix(p) => {
                match std::fs::symlink_metadata(p) {
                    Ok(m) if m.file_type().is_socket() => std::fs::remove_file(p)?,
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{} exists and is not a socket", p.display()),
                        ))
                    }
                    Err(_) => {}
                }
                let l = UnixListener::bind(p)?;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
                Ok(Listener::Unix(l, p.clone()))
            }
        }
    }
    /// The real bound address, as printed on the `listening on` line.
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(_, p) => Ok(format!("unix:{}", p.display())),
        }
    }
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
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
