//! [`TlsStream`]: one TLS connection that a reader thread and a writer thread
//! use at once, as ftpsh uses a socket and its `try_clone`.
//!
//! A rustls connection holds the state of both directions, so it lives behind
//! one mutex. The socket is non-blocking, and nobody waits while holding the
//! lock:
//!
//! - A reader takes the lock, hands buffered plaintext over, or reads what
//!   the socket has (one large `read`), decrypts it and hands it over. With
//!   nothing to read it lets the lock go and waits in `poll(2)`.
//! - A writer takes the lock, gives the plaintext to rustls (which encrypts
//!   it), writes the records until the socket would block, then lets the lock
//!   go and waits in `poll(2)` for room. `write` returns once its bytes are in
//!   the kernel, as a blocking socket's does.
//!
//! So two peers that each write faster than the other reads cannot deadlock
//! as long as each has a reader running: the waiting writer holds no lock.
//! TLS bytes that reading produces (a KeyUpdate answer, an alert) are sent by
//! the reader itself, which also waits for room when it has such bytes.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustls::Connection;

/// Bytes read from the socket per `read(2)`. rustls takes at most 4 KiB per
/// `read_tls`, so reading through our own buffer saves most system calls.
const READ_BUF: usize = 64 * 1024;

/// rustls's limit on encrypted bytes waiting to be written (its default is
/// 64 KiB): one `write` encrypts at most this much before it flushes.
const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// The connection state, behind the lock.
pub(crate) struct State {
    pub(crate) conn: Connection,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    /// The socket's end of file was seen (and given to rustls).
    eof: bool,
    read_shut: bool,
    write_shut: bool,
    /// A TLS error ends the connection for both directions.
    error: Option<(io::ErrorKind, String)>,
    /// Write with `send(MSG_NOSIGNAL)` rather than `write`.
    socket: bool,
}

struct Shared<S: AsFd> {
    state: Mutex<State>,
    /// Nanoseconds; 0 means none. Shared by all clones, like a socket's.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    sock: S,
}

/// A TLS 1.3 connection over a socket (`TcpStream` by default, or anything
/// with a file descriptor that `poll(2)` understands).
///
/// Clones share the connection: one clone may read while another writes, from
/// two threads. Two threads reading at once (or writing at once) is allowed
/// but, as with a socket, their bytes interleave at call granularity.
///
/// The socket is switched to non-blocking mode; after the handshake nothing
/// else should use its descriptor.
pub struct TlsStream<S: AsFd = TcpStream> {
    shared: Arc<Shared<S>>,
}

impl<S: AsFd> Clone for TlsStream<S> {
    fn clone(&self) -> Self {
        TlsStream {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: AsFd> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("fd", &self.shared.sock.as_fd())
            .finish_non_exhaustive()
    }
}

impl<S: AsFd> TlsStream<S> {
    pub(crate) fn from_parts(sock: S, state: State) -> TlsStream<S> {
        TlsStream {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
                sock,
            }),
        }
    }

    /// Another handle on the same connection (never fails; for parity with
    /// `TcpStream::try_clone`).
    pub fn try_clone(&self) -> io::Result<TlsStream<S>> {
        Ok(self.clone())
    }

    /// The underlying socket (for `peer_addr`, `set_nodelay`, ...). Do not
    /// read or write it.
    pub fn get_ref(&self) -> &S {
        &self.shared.sock
    }

    /// Like `TcpStream::set_read_timeout`, for every clone: a read that waits
    /// longer fails with `WouldBlock`. `Some(0)` is refused.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.shared.read_timeout, t)
    }

    /// Like `TcpStream::set_write_timeout`: a write whose bytes cannot all be
    /// handed to the kernel within it fails with `WouldBlock`. After that the
    /// peer may have received part of them: treat the stream as broken.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.shared.write_timeout, t)
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        load_timeout(&self.shared.read_timeout)
    }

    pub fn write_timeout(&self) -> Option<Duration> {
        load_timeout(&self.shared.write_timeout)
    }

    /// Looks at the rustls connection (cipher suite, ALPN, peer certificates).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.lock().conn)
    }

    /// Sends a TLS 1.3 KeyUpdate asking the peer to update too (rustls also
    /// does this by itself near the cipher's limits). The peer's answer is
    /// handled by whichever handle reads next.
    pub fn refresh_traffic_keys(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.check_error()?;
        st.conn
            .refresh_traffic_keys()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        drop(st);
        self.flush_impl()
    }

    /// Ends the connection in one or both directions, waking a thread that
    /// waits in `read` on another clone (it then reads end of file).
    ///
    /// `Write` sends TLS close_notify (waiting for room at most the write
    /// timeout), then shuts the socket for writing, so the peer reads a clean
    /// end of file. `Both` sends close_notify only if there is room at once,
    /// never blocking, which suits cleanup paths. For descriptors that are
    /// not sockets only the TLS part happens.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let fd = self.shared.sock.as_fd();
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.lock().close_notify(fd);
            if how == Shutdown::Write {
                while let Err(e) = self.flush_impl() {
                    if e.kind() != io::ErrorKind::Interrupted {
                        break;
                    }
                }
            }
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.lock().read_shut = true;
        }
        let how = match how {
            Shutdown::Read => rustix::net::Shutdown::Read,
            Shutdown::Write => rustix::net::Shutdown::Write,
            Shutdown::Both => rustix::net::Shutdown::Both,
        };
        match rustix::net::shutdown(fd, how) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::NOTSOCK || e == rustix::io::Errno::NOTCONN => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Plaintext that arrived and was not read yet: decrypted and buffered,
    /// or decryptable from what the socket holds now. Never waits. TLS
    /// records without data (a close_notify, a KeyUpdate) count for nothing.
    pub fn pending(&self) -> usize {
        let fd = self.shared.sock.as_fd();
        self.lock().pending(fd)
    }

    /// The peer ended the connection (close_notify or the socket's end, or
    /// a TLS error) and no plaintext is left to read. Does not wait.
    pub fn closed_by_peer(&self) -> bool {
        let fd = self.shared.sock.as_fd();
        let mut st = self.lock();
        if st.pending(fd) > 0 {
            return false;
        }
        st.error.is_some()
            || st.eof
            || st
                .conn
                .process_new_packets()
                .is_ok_and(|io| io.peer_has_closed())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves rustls state as consistent as
        // any error does; the next call sees the stored error or proceeds.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = load_timeout(&self.shared.read_timeout).map(|t| Instant::now() + t);
        let fd = self.shared.sock.as_fd();
        loop {
            let want_out = {
                let mut st = self.lock();
                if st.read_shut {
                    return Ok(0);
                }
                if let Some(n) = st.pump_read(fd, buf)? {
                    return Ok(n);
                }
                // Bytes that reading produced (KeyUpdate answer...) go out
                // from here too; a failing write is the writer's to report.
                st.flush_nb(fd).unwrap_or(false)
            };
            match wait(fd, true, want_out, deadline)? {
                Wait::Ready => {}
                Wait::TimedOut => return Err(timed_out("read")),
                Wait::Interrupted => return Err(io::ErrorKind::Interrupted.into()),
            }
        }
    }

    fn write_impl(
        &self,
        len: usize,
        mut put: impl FnMut(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        let deadline = load_timeout(&self.shared.write_timeout).map(|t| Instant::now() + t);
        let fd = self.shared.sock.as_fd();
        let mut taken = 0;
        loop {
            {
                let mut st = self.lock();
                st.check_error()?;
                if st.write_shut {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "TLS stream shut down for writing",
                    ));
                }
                let mut pending = st.flush_nb(fd)?;
                if taken == 0 {
                    // Encrypts as much as rustls's buffer limit lets in.
                    taken = put(&mut st.conn.writer())?;
                    if taken > 0 {
                        pending = st.flush_nb(fd)?;
                    }
                }
                if taken > 0 && !pending {
                    return Ok(taken);
                }
            }
            match wait(fd, false, true, deadline)? {
                Wait::Ready => {}
                Wait::TimedOut => return Err(timed_out("write")),
                // Once rustls has taken bytes, an error would make a retry
                // send them twice: only an untouched write reports EINTR.
                Wait::Interrupted if taken == 0 => return Err(io::ErrorKind::Interrupted.into()),
                Wait::Interrupted => {}
            }
        }
    }

    fn flush_impl(&self) -> io::Result<()> {
        let deadline = load_timeout(&self.shared.write_timeout).map(|t| Instant::now() + t);
        let fd = self.shared.sock.as_fd();
        loop {
            if !self.lock().flush_nb(fd)? {
                return Ok(());
            }
            match wait(fd, false, true, deadline)? {
                Wait::Ready => {}
                Wait::TimedOut => return Err(timed_out("write")),
                Wait::Interrupted => return Err(io::ErrorKind::Interrupted.into()),
            }
        }
    }
}

impl TlsStream<TcpStream> {
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.shared.sock.peer_addr()
    }
}

impl<S: AsFd> Read for &TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl<S: AsFd> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl<S: AsFd> Write for &TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf.len(), |w| w.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.write_impl(len, |w| w.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_impl()
    }
}

impl<S: AsFd> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl<S: AsFd> Drop for Shared<S> {
    fn drop(&mut self) {
        // The last handle: a clean close_notify if it fits without waiting.
        let fd = self.sock.as_fd();
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        st.close_notify(fd);
    }
}

/// How the handshake went wrong, before the caller's mapping.
#[derive(Debug)]
pub(crate) enum HsError {
    Io(io::Error),
    Tls(rustls::Error),
    Timeout,
    /// The peer's first byte cannot start what we expected.
    NotTls,
    /// End of file (or reset) before the peer sent a byte.
    ClosedBeforeAnyByte,
    /// End of file in the middle.
    Closed,
}

impl State {
    pub(crate) fn new(mut conn: Connection, fd: BorrowedFd<'_>) -> State {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        State {
            conn,
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            rpos: 0,
            rend: 0,
            eof: false,
            read_shut: false,
            write_shut: false,
            error: None,
            socket: is_socket(fd),
        }
    }

    /// Drives the handshake to its end (our last flight written) by
    /// `deadline`. `first_byte_ok` judges the peer's first byte.
    pub(crate) fn handshake(
        &mut self,
        fd: BorrowedFd<'_>,
        deadline: Instant,
        first_byte_ok: fn(u8) -> bool,
    ) -> Result<(), HsError> {
        let mut got_any = false;
        loop {
            let want_out = self.flush_nb(fd).map_err(HsError::Io)?;
            let handshaking = self.conn.is_handshaking();
            if !handshaking && !want_out {
                return Ok(());
            }
            let mut want_in = false;
            if handshaking {
                if self.rpos == self.rend {
                    match rustix::io::read(fd, &mut self.rbuf[..]) {
                        Ok(0) if got_any => return Err(HsError::Closed),
                        Ok(0) => return Err(HsError::ClosedBeforeAnyByte),
                        Ok(n) => {
                            if !got_any && !first_byte_ok(self.rbuf[0]) {
                                return Err(HsError::NotTls);
                            }
                            got_any = true;
                            (self.rpos, self.rend) = (0, n);
                        }
                        Err(e) if e == rustix::io::Errno::AGAIN => want_in = true,
                        Err(e) if e == rustix::io::Errno::INTR => continue,
                        Err(e) if e == rustix::io::Errno::CONNRESET && !got_any => {
                            return Err(HsError::ClosedBeforeAnyByte)
                        }
                        Err(e) => return Err(HsError::Io(e.into())),
                    }
                }
                if self.rpos < self.rend {
                    let mut slice = &self.rbuf[self.rpos..self.rend];
                    self.rpos += self.conn.read_tls(&mut slice).map_err(HsError::Io)?;
                    if let Err(e) = self.conn.process_new_packets() {
                        // Tells the peer why (an alert), if it fits now.
                        let _ = self.flush_nb(fd);
                        return Err(HsError::Tls(e));
                    }
                    continue;
                }
            }
            match wait(fd, want_in, want_out, Some(deadline)).map_err(HsError::Io)? {
                Wait::Ready | Wait::Interrupted => {}
                Wait::TimedOut => return Err(HsError::Timeout),
            }
        }
    }

    fn check_error(&self) -> io::Result<()> {
        match &self.error {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }

    /// Delivers plaintext (`Some(n)`, `Some(0)` at a clean end), or `None`
    /// when the socket has nothing now. Fills `buf` from everything already
    /// read from the socket before it returns.
    fn pump_read(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.check_error()?;
        let mut got = 0;
        loop {
            match self.conn.reader().read(&mut buf[got..]) {
                Ok(0) => return Ok(Some(got)),
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        return Ok(Some(got));
                    }
                    // rustls's plaintext buffer is empty now: more may be
                    // decrypted from what we already read.
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if got > 0 => {
                    let _ = e; // seen again on the next call
                    return Ok(Some(got));
                }
                // rustls's message names its documentation's web page: the
                // peer went away mid-stream, which is all a person needs.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection was closed without the TLS goodbye",
                    ))
                }
                Err(e) => return Err(e),
            }
            if self.rpos < self.rend {
                let mut slice = &self.rbuf[self.rpos..self.rend];
                self.rpos += self.conn.read_tls(&mut slice)?;
                if let Err(e) = self.process(fd) {
                    return if got > 0 { Ok(Some(got)) } else { Err(e) };
                }
                continue;
            }
            if got > 0 {
                return Ok(Some(got));
            }
            if self.eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            match rustix::io::read(fd, &mut self.rbuf[..]) {
                Ok(0) => {
                    self.eof = true;
                    self.conn.read_tls(&mut &[][..])?;
                    self.process(fd)?;
                }
                Ok(n) => (self.rpos, self.rend) = (0, n),
                Err(e) if e == rustix::io::Errno::AGAIN => return Ok(None),
                Err(e) if e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// See [`TlsStream::pending`]. An error is left for the next read.
    fn pending(&mut self, fd: BorrowedFd<'_>) -> usize {
        if self.error.is_some() {
            return 0;
        }
        loop {
            while self.rpos < self.rend {
                let mut slice = &self.rbuf[self.rpos..self.rend];
                match self.conn.read_tls(&mut slice) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.rpos += n,
                }
                if self.process(fd).is_err() {
                    return 0;
                }
            }
            let avail = match self.conn.process_new_packets() {
                Ok(io) => io.plaintext_bytes_to_read(),
                Err(_) => 0,
            };
            if avail > 0 || self.eof || self.rpos < self.rend {
                return avail;
            }
            match rustix::io::read(fd, &mut self.rbuf[..]) {
                Ok(0) => {
                    self.eof = true;
                    let _ = self.conn.read_tls(&mut &[][..]);
                    let _ = self.process(fd);
                    return 0;
                }
                Ok(n) => (self.rpos, self.rend) = (0, n),
                Err(e) if e == rustix::io::Errno::INTR => {}
                Err(_) => return 0,
            }
        }
    }

    fn process(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.flush_nb(fd);
            let kind = io::ErrorKind::InvalidData;
            self.error = Some((kind, format!("TLS error: {e}")));
            return Err(io::Error::new(kind, format!("TLS error: {e}")));
        }
        Ok(())
    }

    /// Writes pending TLS records until done (`false`) or the socket is full
    /// (`true`).
    fn flush_nb(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while self.conn.wants_write() {
            let mut io = FdIo {
                fd,
                socket: self.socket,
            };
            match self.conn.write_tls(&mut io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Queues close_notify once and sends it if the socket has room now.
    fn close_notify(&mut self, fd: BorrowedFd<'_>) {
        if !self.write_shut {
            self.write_shut = true;
            if self.error.is_none() {
                self.conn.send_close_notify();
            }
        }
        let _ = self.flush_nb(fd);
    }
}

/// `Read`/`Write` straight on a descriptor, for rustls's `write_tls`.
/// Sockets are written with `MSG_NOSIGNAL`, as std's `TcpStream` does, so a
/// vanished peer is an `EPIPE` error even where SIGPIPE is not ignored.
pub(crate) struct FdIo<'a> {
    pub(crate) fd: BorrowedFd<'a>,
    pub(crate) socket: bool,
}

impl Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(self.fd, buf)?)
    }
}

impl Write for FdIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(if self.socket {
            rustix::net::send(self.fd, buf, rustix::net::SendFlags::NOSIGNAL)?
        } else {
            rustix::io::write(self.fd, buf)?
        })
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(if self.socket {
            rustix::net::sendmsg(
                self.fd,
                bufs,
                &mut rustix::net::SendAncillaryBuffer::default(),
                rustix::net::SendFlags::NOSIGNAL,
            )?
        } else {
            rustix::io::writev(self.fd, bufs)?
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn is_socket(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket)
        .unwrap_or(false)
}

pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let fl = rustix::fs::fcntl_getfl(fd)?;
    if !fl.contains(rustix::fs::OFlags::NONBLOCK) {
        rustix::fs::fcntl_setfl(fd, fl | rustix::fs::OFlags::NONBLOCK)?;
    }
    Ok(())
}

/// What [`wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Ready,
    TimedOut,
    /// A signal arrived (EINTR): reads surface it as `Interrupted`, as a
    /// socket with a timeout does, so that a Ctrl-C flag is seen at once.
    Interrupted,
}

/// Waits until the descriptor is readable (`read`) or writable (`write`), or
/// has an error or hang-up, or `deadline` passes.
pub(crate) fn wait(
    fd: BorrowedFd<'_>,
    read: bool,
    write: bool,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    let mut events = PollFlags::empty();
    if read {
        events |= PollFlags::IN;
    }
    if write {
        events |= PollFlags::OUT;
    }
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Wait::TimedOut);
                }
                Some(Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                }))
            }
        };
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => continue,
            Ok(_) => return Ok(Wait::Ready),
            Err(e) if e == rustix::io::Errno::INTR => return Ok(Wait::Interrupted),
            Err(e) => return Err(e.into()),
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, format!("TLS {what} timed out"))
}

fn store_timeout(slot: &AtomicU64, t: Option<Duration>) -> io::Result<()> {
    let nanos = match t {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ))
        }
        Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
    };
    slot.store(nanos, Ordering::Relaxed);
    Ok(())
}

fn load_timeout(slot: &AtomicU64) -> Option<Duration> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Duration::from_nanos(n)),
    }
}
