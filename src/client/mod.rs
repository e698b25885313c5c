//! [`Connection`]: the `Remote` interface of the verbs, implemented over a socket.
//!
//! One request at a time, except the batch methods, which keep a window of
//! requests in flight so that small files do not each pay a round trip.
//!
//! Ctrl-C: the socket has a short read timeout, and whenever a read times out the
//! interrupt flag is checked. A running `exec` is cancelled in-band (the server
//! kills the process and answers `Cancelled`); any other request is abandoned by
//! closing the connection, which the server notices at once (a download stops, an
//! upload keeps its resumable partial). The next command reconnects and restores
//! the remote directory, so the shell carries on as if nothing happened. The same
//! reconnection serves after the server restarts or drops an idle connection:
//! a connection found closed before a request is sent is replaced first, so no
//! command fails for it.
//!
//! The server is not trusted (it may be hostile, or someone else answering in
//! its place). Whatever it sends:
//! - every reply answers a request: the requests awaiting their last reply are
//!   counted, and bytes that arrive while none is awaited (a file sent before
//!   `get` asked for it) are a protocol error that ends the connection; a reply
//!   of the wrong kind for its request is one too;
//! - a download never takes more bytes than announced, from the offset asked
//!   for: one more is a protocol error, before it reaches the receiver;
//! - one listing, walk or glob answer holds at most [`MAX_ENTRIES`] entries and
//!   [`MAX_ENTRY_BYTES`] of names and link targets;
//! - each wait for the server's next message has a deadline (`--timeout`,
//!   [`Options::reply_timeout`]), except while `exec` runs (a command may be
//!   silent as long as it likes); TCP keepalive notices a vanished host; the
//!   handshake has one deadline as a whole, and a listing for tab completion
//!   one of its own ([`Connection::list_promptly`]);
//! - Ctrl-C ends any wait, a blocked write of an upload too ([`WriteWatch`]);
//! - its text is escaped before a message quotes it, and cut to a readable
//!   length ([`refusal`]); the verbs escape names in results.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftpsh_commands::session::{
    BatchGet, BatchPut, Details, Digest, Entry, ExitStatus, Receiver, Remote, RemoteError,
    RemoteResult, Source, Space,
};
use ftpsh_core::display::escape;

use ftpsh_core::net::{Address, Stream};
use ftpsh_core::protocol::frame::{read_payload_to, ReadAhead};
use ftpsh_core::protocol::frame::{write_frame, Header, ReadError};
use ftpsh_core::protocol::handshake::{self, HandshakeError};
use ftpsh_core::protocol::message::{DATA_KIND, UPLOAD_DATA_KIND};
use ftpsh_core::protocol::{FrameReader, Reply, Request, DATA_CHUNK};

mod tls;

/// How often a waiting read wakes up to look at the interrupt flag.
const POLL: Duration = Duration::from_millis(200);
/// How long to wait for connect and handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Downloads kept in flight by `download_batch` (uploads go a slice at a time).
const WINDOW: usize = 32;
/// The default of `--timeout`: how long the server may leave the client
/// waiting for its next message.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP keepalive: probes after this long without traffic...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// ...then every this long, and the connection fails after this many
/// unanswered probes (about a minute and a half after the host vanished).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 6;
/// The most entries one listing, walk or glob answer may hold. Enough for a
/// tree of a million files; a server that sends more (the audit saw 36
/// million, 2.7 GB of client memory) is cut off.
pub const MAX_ENTRIES: usize = 1_000_000;
/// The most bytes of names and link targets one such answer may hold (long
/// paths, or long targets, reach the limit before the count does).
pub const MAX_ENTRY_BYTES: usize = 128 << 20;

/// How a connection behaves, beyond where it goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the server's next message (the first reply to a
    /// request, or the next frame of a reply in progress); `None` waits
    /// forever. `exec` output is exempt.
    pub reply_timeout: Option<Duration>,
    /// How an `ssh://` address is reached.
    pub ssh: SshOptions,
    /// How a TCP address is secured.
    pub tls: TlsOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reply_timeout: Some(DEFAULT_REPLY_TIMEOUT),
            ssh: SshOptions::default(),
            tls: TlsOptions::default(),
        }
    }
}

/// TLS for TCP addresses: always off loopback, on loopback with `force`.
/// The server's identity is verified before the token is sent.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `--tls`: TLS on a loopback address too.
    pub force: bool,
    /// `--fingerprint` / `FTPSH_FINGERPRINT`: the identity expected (and
    /// recorded in the known-servers file once it matched).
    pub fingerprint: Option<String>,
    /// Someone at a terminal may be asked whether to trust an unknown server.
    pub ask: bool,
}

/// How `ssh://` runs: `COMMAND... -T [USER@]HOST REMOTE --stdio [--root PATH]`.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// The ssh command and its own options (`$FTPSH_SSH`, split into words).
    pub command: Vec<String>,
    /// What runs on the other side (`--remote-command`).
    pub remote: String,
    /// No one can answer a password prompt (a script): ssh must not ask.
    pub batch: bool,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            command: vec!["ssh".into()],
            remote: "ftpsh-server".into(),
            batch: false,
        }
    }
}

/// How long `ssh` may take to log in before the server answers: it may be
/// asking the user for a password or a passphrase.
const SSH_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How much a remote shell may print before `ftpsh-server` speaks (a message
/// of the day, a login script's chatter) before the stream is given up.
const SSH_NOISE_MAX: usize = 64 << 10;

/// Why a connection could not be opened; the shell exits with status 3.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("{addr} refused the connection: {reason}")]
    Refused { addr: String, reason: String },
    /// The server's identity could not be verified: the token was not sent.
    #[error("{0}")]
    Untrusted(String),
}

/// A session with a server.
pub struct Connection {
    addr: Address,
    token: String,
    options: Options,
    /// The TLS identity verified at the first connection: reconnections
    /// expect exactly it.
    pin: Option<String>,
    stream: Option<Stream>,
    /// Requests sent whose last reply has not arrived yet. While it is 0 the
    /// server has nothing to say: see [`Connection::send`].
    awaiting: usize,
    frames: FrameReader,
    /// Bytes of `stream` read ahead of the reply being decoded: a small
    /// reply costs one read. Emptied with the stream.
    ahead: ReadAhead,
    cwd: String,
    /// The remote directory before the last `cd` that changed it (`cd -`).
    previous: Option<String>,
    interrupt: Arc<AtomicBool>,
    /// When `Cancel` was sent for the running `exec`, if it was.
    cancel_sent: Option<Instant>,
    /// The running `exec`'s output could not be written: cancel it as Ctrl-C
    /// would, without raising the Ctrl-C flag, which would make the shell take
    /// it for the user asking to stop.
    cancel_exec: bool,
    /// A new connection is restoring the remote directory: losing it now
    /// ends the request with an error instead of reconnecting again.
    restoring: bool,
    /// When the answer being read must have arrived whole
    /// ([`Connection::list_promptly`]); past it, the connection is dropped.
    give_up: Option<Instant>,
    buf: Vec<u8>,
}

fn lost(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::ConnectionLost(e.to_string())
}

impl Connection {
    /// Connects and authenticates. `interrupt` is the flag the Ctrl-C handler sets.
    pub fn connect(
        addr: Address,
        token: String,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Connection, ConnectError> {
        Self::connect_with(addr, token, interrupt, Options::default())
    }

    /// [`Connection::connect`] with [`Options`].
    pub fn connect_with(
        addr: Address,
        token: String,
        interrupt: Arc<AtomicBool>,
        options: Options,
    ) -> Result<Connection, ConnectError> {
        let (stream, pin) = open(&addr, &token, &options, None, &interrupt)?;
        Ok(Connection {
            addr,
            token,
            options,
            pin,
            stream: Some(stream),
            awaiting: 0,
            frames: FrameReader::new(),
            ahead: ReadAhead::new(),
            cwd: "/".into(),
            previous: None,
            interrupt,
            cancel_sent: None,
            cancel_exec: false,
            restoring: false,
            give_up: None,
            buf: vec![0u8; DATA_CHUNK],
        })
    }

    /// Drops the socket; the next request reconnects.
    fn disconnect(&mut self) {
        drop_stream(&mut self.stream, &mut self.awaiting, &mut self.ahead);
    }

    /// The last reply to the oldest request awaiting one has arrived.
    fn answered(&mut self) {
        debug_assert!(self.awaiting > 0, "a reply counted twice");
        self.awaiting = self.awaiting.saturating_sub(1);
    }

    /// A protocol error: the connection is out of step, so it is closed.
    fn violation(&mut self, what: impl std::fmt::Display) -> RemoteError {
        self.disconnect();
        lost(format!("protocol error: {what}; the connection was closed"))
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// The socket, reconnecting (and restoring the remote directory) if needed.
    fn stream(&mut self) -> RemoteResult<&mut Stream> {
        if self.stream.is_none() {
            if self.restoring {
                // The connection just made was lost again: one reconnection
                // per request, never one inside another.
                return Err(lost("the server closed the new connection at once"));
            }
            let opened = open(
                &self.addr,
                &self.token,
                &self.options,
                self.pin.as_deref(),
                &self.interrupt,
            );
            let (stream, _) = match opened {
                Ok(pair) => pair,
                Err(_) if self.interrupted() => return Err(RemoteError::Interrupted),
                Err(e) => return Err(lost(format!("reconnecting failed: {e}"))),
            };
            self.stream = Some(stream);
            if self.cwd != "/" {
                let cwd = self.cwd.clone();
                self.restoring = true;
                let restored = self.cd(&cwd);
                self.restoring = false;
                match restored {
                    Ok(_) => {}
                    // The directory is gone: start over at the root.
                    Err(RemoteError::Refused(_)) => self.cwd = "/".into(),
                    Err(e) => return Err(e),
                }
            }
        }
        self.stream
            .as_mut()
            .ok_or_else(|| lost("the server closed the new connection at once"))
    }

    /// Sends a request. When no reply is awaited, nothing may have arrived
    /// either: bytes waiting then answer no request (a file sent before `get`
    /// asked for it would otherwise be taken for its answer).
    fn send(&mut self, request: &Request) -> RemoteResult<()> {
        let quiet = self.awaiting == 0;
        // Bytes read ahead are bytes that arrived, like those the socket holds.
        let read_ahead = self.ahead.buffered();
        if quiet && read_ahead == 0 && self.stream.as_ref().is_some_and(Stream::closed_by_peer) {
            // Closed between commands (an idle timeout, a restart): this
            // request has not been sent, so reconnecting loses nothing.
            self.disconnect();
        }
        let stream = self.stream()?;
        let unsolicited = if quiet {
            stream.pending() + read_ahead
        } else {
            0
        };
        if unsolicited > 0 {
            return Err(self.violation(format_args!(
                "the server sent {unsolicited} bytes nobody asked for"
            )));
        }
        if let Err(e) = request.write_to(stream) {
            return Err(self.write_failed(e));
        }
        if !matches!(
            request,
            Request::Data(_) | Request::PutEnd { .. } | Request::Cancel | Request::Auth { .. }
        ) {
            self.awaiting += 1;
        }
        Ok(())
    }

    /// Waits for the next reply. On Ctrl-C: with `cancel`, sends `Cancel` once and
    /// keeps reading (the caller sees `Cancelled`); otherwise drops the connection.
    ///
    /// Each wait has the reply deadline ([`Options::reply_timeout`]), except
    /// `exec`'s (`cancel`): a remote command may be silent as long as it likes.
    fn recv(&mut self, cancel: bool) -> RemoteResult<Reply<'_>> {
        let (kind, len) = self.recv_header(cancel)?;
        self.recv_payload(kind, len)
    }

    /// The first half of [`recv`](Self::recv): waits for the next frame's
    /// header (Ctrl-C, the reply timeout and a close as `recv` says) and
    /// returns its kind and length, the payload still to be read.
    fn recv_header(&mut self, cancel: bool) -> RemoteResult<(u8, usize)> {
        let timeout = self.options.reply_timeout;
        let deadline = if cancel { None } else { timeout };
        let waiting = Instant::now();
        let (kind, len) = loop {
            // Checked before every frame, not only when the socket is quiet: a
            // command or a download that never pauses must still stop on Ctrl-C.
            if self.interrupted() || self.cancel_exec {
                match self.cancel_sent {
                    None if cancel => {
                        self.cancel_sent = Some(Instant::now());
                        let sent = match self.stream.as_mut() {
                            Some(stream) => Request::Cancel.write_to(stream).is_ok(),
                            None => false,
                        };
                        if !sent {
                            self.disconnect();
                            return Err(RemoteError::Interrupted);
                        }
                    }
                    Some(at) if cancel && at.elapsed() < Duration::from_secs(3) => {}
                    _ => {
                        self.disconnect();
                        return Err(RemoteError::Interrupted);
                    }
                }
            }
            if self.give_up.is_some_and(|at| Instant::now() >= at) {
                self.disconnect();
                return Err(lost(TOO_SLOW));
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(lost("not connected"));
            };
            match self
                .frames
                .read_header(&mut self.ahead.on(&mut Patient::header(
                    stream,
                    timeout,
                    self.give_up,
                    &self.interrupt,
                ))) {
                Ok(Header::Frame { kind, len }) => break (kind, len),
                Ok(Header::Idle) => {
                    if let Some(limit) = deadline {
                        if waiting.elapsed() >= limit {
                            self.disconnect();
                            return Err(lost(silent(limit)));
                        }
                    }
                }
                Err(ReadError::Closed) => {
                    self.disconnect();
                    return Err(lost("the server closed the connection"));
                }
                Err(e) => {
                    self.disconnect();
                    return Err(lost(e));
                }
            }
        };
        if self.awaiting == 0 {
            return Err(self.violation("the server sent a message nobody asked for"));
        }
        Ok((kind, len))
    }

    /// The second half of [`recv`](Self::recv): the payload of the frame
    /// whose header [`recv_header`](Self::recv_header) returned, decoded.
    fn recv_payload(&mut self, kind: u8, len: usize) -> RemoteResult<Reply<'_>> {
        let timeout = self.options.reply_timeout;
        // The errors below drop the connection field by field: `frame`
        // borrows the reader's buffer, which the reply returned borrows too.
        let stream = self.stream.as_mut().expect("checked above");
        let frame = match self.frames.read_payload(
            &mut self.ahead.on(&mut Patient::payload(
                stream,
                timeout,
                self.give_up,
                &self.interrupt,
            )),
            kind,
            len,
        ) {
            Ok(f) => f,
            Err(e) => {
                drop_stream(&mut self.stream, &mut self.awaiting, &mut self.ahead);
                return Err(lost(e));
            }
        };
        match Reply::decode(frame.kind, frame.payload) {
            Ok(r) => Ok(r),
            Err(e) => {
                drop_stream(&mut self.stream, &mut self.awaiting, &mut self.ahead);
                Err(lost(format!("protocol error: {e}")))
            }
        }
    }

    /// A request whose answer is `Ok` or `Error`.
    fn simple(&mut self, request: Request) -> RemoteResult<()> {
        self.send(&request)?;
        match self.recv(false)? {
            Reply::Ok => {
                self.answered();
                Ok(())
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    /// A request whose answer is `Text` or `Error`.
    fn text(&mut self, request: Request) -> RemoteResult<String> {
        self.send(&request)?;
        match self.recv(false)? {
            Reply::Text { text } => {
                let text = text.to_string();
                self.answered();
                Ok(text)
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    /// A request whose answer is `Entries`* then `Ok`, or `Error`; at most
    /// [`MAX_ENTRIES`] entries and [`MAX_ENTRY_BYTES`] of names and link
    /// targets (beyond, the rest is not read: the connection is closed).
    fn entries(&mut self, request: Request) -> RemoteResult<Vec<Entry>> {
        self.send(&request)?;
        let mut all = Vec::new();
        let mut bytes = 0usize;
        loop {
            match self.recv(false)? {
                Reply::Entries(mut e) => {
                    // Link targets are held as names are: both count.
                    bytes = e.iter().fold(bytes, |n, e| {
                        n.saturating_add(e.name.len())
                            .saturating_add(e.target.len())
                    });
                    if all.len() + e.len() > MAX_ENTRIES || bytes > MAX_ENTRY_BYTES {
                        drop(e);
                        drop(all);
                        self.disconnect();
                        return Err(RemoteError::Refused(format!(
                            "the server's answer holds more than {MAX_ENTRIES} entries or {} MiB \
                             of names and link targets, over the client's limit; the connection \
                             was closed",
                            MAX_ENTRY_BYTES >> 20
                        )));
                    }
                    all.append(&mut e);
                }
                Reply::Ok => {
                    self.answered();
                    return Ok(all);
                }
                other => {
                    let e = to_error(other);
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// After a reply that ends a request badly ([`to_error`]): a refusal
    /// answers its request; anything else out of place means the connection
    /// is out of step, and it is dropped.
    fn fail(&mut self, e: RemoteError) -> RemoteError {
        match e {
            RemoteError::Refused(_) => self.answered(),
            RemoteError::ConnectionLost(_) => self.disconnect(),
            _ => {}
        }
        e
    }

    /// Reads one download's replies into its receiver: the file must start
    /// at the offset asked for, and not one byte past its announced size
    /// reaches the receiver.
    fn receive_file(&mut self, asked: u64, receiver: &mut dyn Receiver) -> RemoteResult<Digest> {
        let (size, offset) = match self.recv(false)? {
            Reply::FileStart {
                size,
                offset,
                mode,
                mtime,
            } => {
                receiver.attrs(mode, mtime);
                (size, offset)
            }
            other => {
                let e = to_error(other);
                return Err(self.fail(e));
            }
        };
        if offset != asked || offset > size {
            return Err(self.violation(format_args!(
                "the server announced {size} bytes from offset {offset} for a download \
                 asked from offset {asked}"
            )));
        }
        receiver
            .start(size, offset)
            .map_err(|e| self.local_failure(e))?;
        let mut left = size - offset;
        loop {
            let (kind, len) = self.recv_header(false)?;
            // Data straight into the receiver's own buffer, when it has one:
            // no copy out of the frame reader's.
            if kind == DATA_KIND {
                let Some(rest) = left.checked_sub(len as u64) else {
                    return Err(self.violation(format_args!(
                        "the server sent more than the {size} bytes it announced"
                    )));
                };
                match receiver.room(len) {
                    Err(e) => return Err(self.local_failure(e)),
                    Ok(None) => {}
                    Ok(Some(dest)) => {
                        let timeout = self.options.reply_timeout;
                        let stream = self.stream.as_mut().expect("a header came from it");
                        let mut from =
                            Patient::payload(stream, timeout, self.give_up, &self.interrupt);
                        // Through the read-ahead, which may hold the payload's
                        // first bytes (a large read with nothing buffered goes
                        // straight into `dest`).
                        if let Err(e) = read_payload_to(&mut self.ahead.on(&mut from), dest) {
                            drop_stream(&mut self.stream, &mut self.awaiting, &mut self.ahead);
                            return Err(lost(e));
                        }
                        left = rest;
                        if let Err(e) = receiver.filled(len) {
                            return Err(self.local_failure(e));
                        }
                        continue;
                    }
                }
            }
            match self.recv_payload(kind, len)? {
                Reply::Data(chunk) => {
                    let Some(rest) = left.checked_sub(chunk.len() as u64) else {
                        return Err(self.violation(format_args!(
                            "the server sent more than the {size} bytes it announced"
                        )));
                    };
                    left = rest;
                    if let Err(e) = receiver.data(chunk) {
                        return Err(self.local_failure(e));
                    }
                }
                Reply::FileEnd { md5 } => {
                    self.answered();
                    return Ok(md5);
                }
                other => {
                    let e = to_error(other);
                    return Err(self.fail(e));
                }
            }
        }
    }

    /// A write to the server failed: the connection is dropped. When Ctrl-C
    /// ended it ([`WriteWatch`]), that is what the caller hears.
    fn write_failed(&mut self, e: io::Error) -> RemoteError {
        self.disconnect();
        if self.interrupted() {
            RemoteError::Interrupted
        } else {
            lost(e)
        }
    }

    /// Watches for Ctrl-C while a request's data is written (see
    /// [`WriteWatch`]) until the guard is dropped.
    fn watch_writes(&self) -> Option<WriteWatch> {
        WriteWatch::start(self.stream.as_ref()?, &self.interrupt)
    }

    /// The local side of a transfer failed mid-stream: the connection is out of
    /// step with the server, so drop it (the next request reconnects).
    fn local_failure(&mut self, e: io::Error) -> RemoteError {
        self.disconnect();
        RemoteError::Local(e)
    }

    /// Streams an upload's data and digest (after `Put`, and `Ready` if asked).
    fn send_file_data(&mut self, source: &mut dyn Source) -> RemoteResult<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            loop {
                if self.interrupted() {
                    self.disconnect();
                    return Err(RemoteError::Interrupted);
                }
                let n = match source.read_owned(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return Err(self.local_failure(e)),
                };
                let stream = self.stream()?;
                if let Err(e) = write_frame(stream, UPLOAD_DATA_KIND, &buf[..n]) {
                    return Err(self.write_failed(e));
                }
                // Sent: the source's hash thread may take the buffer itself.
                source.sent(&mut buf, n);
            }
            self.send(&Request::PutEnd {
                md5: source.digest(),
            })
        })();
        self.buf = buf;
        result
    }

    /// `exec`'s replies up to its end. A failed write is kept in `write_error`
    /// and stops the remote command (`exec yes | head -1` must not run forever);
    /// output arriving after it is dropped.
    fn exec_replies(
        &mut self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        write_error: &mut Option<io::Error>,
    ) -> RemoteResult<ExitStatus> {
        loop {
            let (stream, bytes): (&mut dyn Write, &[u8]) = match self.recv(true)? {
                Reply::Stdout(b) => (&mut *out, b),
                Reply::Stderr(b) => (&mut *err, b),
                Reply::Exit { code, signal } => {
                    self.answered();
                    return Ok(if signal {
                        ExitStatus::Signal(code)
                    } else {
                        ExitStatus::Code(code)
                    });
                }
                Reply::Cancelled => {
                    self.answered();
                    return Err(RemoteError::Interrupted);
                }
                other => {
                    let e = to_error(other);
                    return Err(self.fail(e));
                }
            };
            if write_error.is_some() {
                continue;
            }
            if let Err(e) = stream.write_all(bytes).and_then(|_| stream.flush()) {
                *write_error = Some(e);
                self.cancel_exec = true;
            }
        }
    }
}

/// Ctrl-C during a write. Reads wake up to look at the flag ([`Patient`]),
/// but a write that the server does not take blocks in the kernel, which
/// looks at no flag: a server that stops reading an upload (and `--timeout
/// 0`, or the write deadline's two minutes) would keep the user's Ctrl-C
/// waiting. While an upload streams, this thread watches the flag and, once
/// it is raised, shuts the connection down, which ends the write at once;
/// the connection was to be dropped anyway ([`Connection::write_failed`]).
struct WriteWatch {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteWatch {
    fn start(stream: &Stream, interrupt: &Arc<AtomicBool>) -> Option<WriteWatch> {
        let handle = stream.try_clone().ok()?;
        let done = Arc::new(AtomicBool::new(false));
        let (finished, flag) = (Arc::clone(&done), Arc::clone(interrupt));
        let thread = std::thread::Builder::new()
            .name("ftpsh-ctrl-c".into())
            .spawn(move || {
                while !finished.load(Ordering::SeqCst) {
                    if flag.load(Ordering::SeqCst) {
                        handle.shutdown();
                        return;
                    }
                    std::thread::park_timeout(POLL);
                }
            })
            .ok()?;
        Some(WriteWatch {
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for WriteWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// [`Connection::disconnect`], for where only these fields may be borrowed.
fn drop_stream(stream: &mut Option<Stream>, awaiting: &mut usize, ahead: &mut ReadAhead) {
    *awaiting = 0;
    ahead.clear();
    if let Some(s) = stream.take() {
        s.shutdown();
    }
}

/// An `Error` reply becomes `Refused`; anything else out of place is a protocol
/// error, after which the connection must be dropped (see `Connection::fail`).
fn to_error(reply: Reply) -> RemoteError {
    match reply {
        Reply::Error { message } => refusal(message),
        other => lost(format!(
            "protocol error: {} where it answers nothing; the connection was closed",
            reply_name(&other)
        )),
    }
}

/// What a reply is, for messages: its kind, never its content (a frame of
/// data or entries would be a megabyte of message).
fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Ok => "an Ok reply",
        Reply::Error { .. } => "an error reply",
        Reply::Text { .. } => "a text reply",
        Reply::Entries(_) => "a listing",
        Reply::Stdout(_) | Reply::Stderr(_) => "command output",
        Reply::Exit { .. } => "an exit status",
        Reply::FileStart { .. } => "the start of a file",
        Reply::Data(_) => "file data",
        Reply::FileEnd { .. } => "a digest",
        Reply::Ready { .. } => "a Ready reply",
        Reply::Cancelled => "a Cancelled reply",
        Reply::Details { .. } => "file details",
        Reply::Space { .. } => "file system sizes",
    }
}

/// Why an answer with a deadline of its own ([`Connection::list_promptly`])
/// was given up.
const TOO_SLOW: &str = "the server's answer took too long; the connection was closed";

/// The message for a server that left the client waiting past the deadline.
fn silent(limit: Duration) -> String {
    format!(
        "no answer from the server for {} s (see --timeout); the connection was closed",
        limit.as_secs_f64()
    )
}

/// The server's "no": its text names files (and a hostile server could send
/// anything), so it is escaped once, here, before any message quotes it, and
/// cut to [`MAX_REFUSAL`].
fn refusal(message: &str) -> RemoteError {
    RemoteError::Refused(server_text(message))
}

/// The most bytes of a server's refusal kept (escaped). It names a file or
/// two; a batch keeps one per failed file, and a server answering each with
/// a megabyte of text (its frame's limit) would grow the client, and its
/// error report, by a megabyte a file.
const MAX_REFUSAL: usize = 2048;

/// A server's text for a message: escaped, and cut after [`MAX_REFUSAL`]
/// bytes with a note saying so, between two characters of the server's text
/// (never inside the escape of one). Only what is kept is escaped and copied.
fn server_text(message: &str) -> String {
    let escaped = escape(message);
    if escaped.len() <= MAX_REFUSAL {
        return escaped.into_owned();
    }
    drop(escaped);
    let mut text = String::new();
    for c in message.chars() {
        let mut one = [0u8; 4];
        let shown = escape(c.encode_utf8(&mut one));
        if text.len() + shown.len() > MAX_REFUSAL {
            break;
        }
        text.push_str(&shown);
    }
    text.push_str(&format!(
        "... (cut: the server's message held {} bytes)",
        message.len()
    ));
    text
}

/// Connects and performs the handshake: the stream, and the TLS identity
/// verified (over TLS). `pin`: the identity a reconnection expects.
///
/// The handshake has one deadline as a whole (a server that trickles its
/// answer a byte at a time cannot hold the client for longer), and Ctrl-C
/// (`interrupt`) ends it.
fn open(
    addr: &Address,
    token: &str,
    options: &Options,
    pin: Option<&str>,
    interrupt: &AtomicBool,
) -> Result<(Stream, Option<String>), ConnectError> {
    let unreachable = |reason: String| ConnectError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let refused = |reason: String| ConnectError::Refused {
        addr: addr.to_string(),
        reason,
    };
    let over_ssh = matches!(addr, Address::Ssh(_));
    let mut verified = None;
    let mut stream = match addr {
        Address::Ssh(target) => target
            .spawn(&options.ssh.command, &options.ssh.remote, options.ssh.batch)
            .map(Stream::Pipe)
            .map_err(|e| unreachable(e.to_string()))?,
        Address::Tcp(a) if options.tls.force || !loopback(a) => {
            let (stream, fingerprint) = tls::open(addr, a, &options.tls, pin)?;
            verified = Some(fingerprint);
            stream
        }
        _ => {
            Stream::connect(addr, CONNECT_TIMEOUT).map_err(|e| unreachable(describe_connect(&e)))?
        }
    };
    // A Unix socket in a shared directory may have been bound by someone else
    // first (the real server then refuses to start): the token goes only to a
    // server run by us or by root.
    if let Some(Ok(uid)) = stream.peer_uid() {
        let me = ftpsh_core::sys::effective_uid();
        if uid != me && uid != 0 {
            return Err(refused(format!(
                "the socket is served by uid {uid}, not by you (uid {me}) or root; \
                 the token was not sent (is another user's process squatting the path?)"
            )));
        }
    }
    let tls = verified.is_some();
    let login = if over_ssh {
        SSH_LOGIN_TIMEOUT
    } else {
        CONNECT_TIMEOUT
    };
    // Reads wake up every `POLL` to look at the deadline and Ctrl-C.
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(login));
    let deadline = Instant::now() + login;
    let _ = stream.set_keepalive(KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES);
    // ssh that ends (it could not log in, or the remote command is missing)
    // has said why on our stderr already.
    let ssh_ended = || {
        unreachable(
            "ssh ended before ftpsh-server answered (see its messages above; is \
             ftpsh-server installed there? --remote-command names another)"
                .into(),
        )
    };
    let sent = |e: io::Error| match e.kind() {
        io::ErrorKind::BrokenPipe if over_ssh => ssh_ended(),
        _ => unreachable(ftpsh_core::errors::describe(&e)),
    };
    let handshake = (|| -> Result<(), ConnectError> {
        handshake::send_greeting(&mut stream).map_err(sent)?;
        Request::Auth {
            token: token.to_string(),
        }
        .write_to(&mut stream)
        .map_err(sent)?;
        let mut stream = Within {
            stream: &mut stream,
            deadline,
            limit: login,
            interrupt,
        };
        let greeting = if over_ssh {
            Ok(skip_shell_noise(&mut stream).map_err(|e| match e {
                HandshakeError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => ssh_ended(),
                other => refused(other.to_string()),
            })?)
        } else {
            // A TLS server answers a plaintext client with a TLS alert of
            // the greeting's length.
            let mut first = [0u8; handshake::GREETING_LEN];
            match stream.read_exact(&mut first) {
                Ok(()) if !tls && ftpsh_core::tls::looks_like_tls_record(&first) => {
                    return Err(refused(
                        "the server requires TLS on this port (use --tls)".into(),
                    ))
                }
                Ok(()) => handshake::read_greeting(&mut &first[..]),
                Err(e) => Err(HandshakeError::Io(e)),
            }
        };
        match greeting {
            Ok(v) if v < handshake::VERSION => {
                return Err(refused(handshake::server_too_old(v)));
            }
            Ok(_) => {}
            Err(HandshakeError::Protocol(e)) => {
                return Err(refused(format!("not an ftpsh server ({e})")))
            }
            Err(HandshakeError::Io(e)) if !tls && !over_ssh => {
                return Err(unreachable(format!(
                    "no answer to the handshake ({e}); if the server speaks TLS on this \
                     port, use --tls"
                )))
            }
            Err(HandshakeError::Io(e)) => {
                return Err(unreachable(format!("no answer to the handshake ({e})")))
            }
        }
        let mut frames = FrameReader::new();
        let frame = frames
            .read(&mut stream)
            .map_err(|e| unreachable(format!("handshake failed: {e}")))?;
        match Reply::decode(frame.kind, frame.payload) {
            Ok(Reply::Ok) => Ok(()),
            Ok(Reply::Error { message }) => Err(refused(server_text(message))),
            Ok(other) => Err(refused(format!(
                "unexpected handshake reply ({})",
                reply_name(&other)
            ))),
            Err(e) => Err(refused(format!("handshake failed: {e}"))),
        }
    })();
    handshake?;
    let _ = stream.set_read_timeout(Some(POLL));
    // A server that stops reading holds a write up as long as it would hold
    // a reply.
    let _ = stream.set_write_timeout(options.reply_timeout);
    Ok((stream, verified))
}

/// Whether `host:port` names this machine: a loopback address, or `localhost`.
fn loopback(addr: &str) -> bool {
    // Decided from the text, never by resolving: a name that resolves to
    // loopback now could resolve elsewhere for the connection itself (DNS
    // rebinding), and the token would go in clear.
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The handshake's reads: each wakes up every [`POLL`] (the stream's read
/// timeout) until something arrives, the handshake's one deadline passes, or
/// Ctrl-C. A per-read timeout alone would let a server that sends a byte now
/// and then keep the client waiting for ever.
struct Within<'a> {
    stream: &'a mut Stream,
    deadline: Instant,
    limit: Duration,
    interrupt: &'a AtomicBool,
}

impl Read for Within<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(io::Error::other("interrupted"));
            }
            if Instant::now() >= self.deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {} s", self.limit.as_secs()),
                ));
            }
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }
}

/// Reads up to the greeting's magic: whatever a remote shell printed before
/// `ftpsh-server` started (a message of the day, a login script) is skipped,
/// within [`SSH_NOISE_MAX`]; more than that, or the end first, is an error
/// that shows what arrived instead.
fn skip_shell_noise(stream: &mut impl Read) -> Result<u16, HandshakeError> {
    let magic = handshake::MAGIC;
    let mut seen: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "ssh ended").into());
        }
        seen.push(byte[0]);
        // The magic and a version (`0x00 0x01`..): a banner that merely
        // holds the word FTPSH is noise too.
        let n = seen.len();
        if n >= magic.len() + 2
            && &seen[n - magic.len() - 2..n - 2] == magic
            && seen[n - 2] == 0
            && (1..=0x0f).contains(&seen[n - 1])
        {
            return Ok(u16::from_be_bytes([seen[n - 2], seen[n - 1]]));
        }
        if seen.len() > SSH_NOISE_MAX {
            let text = String::from_utf8_lossy(&seen[..200.min(seen.len())]).into_owned();
            return Err(io::Error::other(format!(
                "not an ftpsh server on the other side of ssh; it printed: {}",
                escape(&text)
            ))
            .into());
        }
    }
}

pub(crate) fn describe_connect(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (is ftpsh-server running there?)".into()
        }
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::NotFound => "no such socket or host".into(),
        _ => ftpsh_core::errors::describe(e),
    }
}

/// Reads a frame, tolerating the read timeouts that exist only to poll for
/// Ctrl-C: the first read of a header may time out (the caller sees "idle" and
/// checks the flag and the reply deadline); once a frame has started, timeouts
/// are retried until nothing has arrived for the reply deadline, or Ctrl-C.
/// A connection that TCP keepalive found dead is reported as such, not taken
/// for a poll.
struct Patient<'a> {
    stream: &'a mut Stream,
    first: bool,
    timeout: Option<Duration>,
    /// [`Connection::give_up`]: the whole answer's deadline, if it has one.
    give_up: Option<Instant>,
    interrupt: &'a AtomicBool,
}

impl<'a> Patient<'a> {
    fn header(
        stream: &'a mut Stream,
        timeout: Option<Duration>,
        give_up: Option<Instant>,
        interrupt: &'a AtomicBool,
    ) -> Self {
        Patient {
            stream,
            first: true,
            timeout,
            give_up,
            interrupt,
        }
    }
    fn payload(
        stream: &'a mut Stream,
        timeout: Option<Duration>,
        give_up: Option<Instant>,
        interrupt: &'a AtomicBool,
    ) -> Self {
        Patient {
            stream,
            first: false,
            timeout,
            give_up,
            interrupt,
        }
    }

    fn read_once(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(buf) {
            // The poll timeout is EAGAIN (`WouldBlock`); ETIMEDOUT is the
            // kernel giving up on a peer that answers no keepalive probe.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server stopped answering (no reply to TCP keepalive)",
            )),
            other => other,
        }
    }
}

impl io::Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.first {
            let r = self.read_once(buf);
            // Ctrl-C interrupts the read (EINTR) and the caller retries: that retry
            // is still the header's first read, whose timeout lets it see the flag.
            if !matches!(&r, Err(e) if e.kind() == io::ErrorKind::Interrupted) {
                self.first = false;
            }
            return r;
        }
        let started = Instant::now();
        loop {
            if self.give_up.is_some_and(|at| Instant::now() >= at) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, TOO_SLOW));
            }
            match self.read_once(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.interrupt.load(Ordering::SeqCst) {
                        return Err(io::Error::other("interrupted"));
                    }
                    if let Some(limit) = self.timeout {
                        if started.elapsed() >= limit {
                            return Err(io::Error::new(io::ErrorKind::TimedOut, silent(limit)));
                        }
                    }
                }
                other => return other,
            }
        }
    }
}

impl Remote for Connection {
    fn address(&self) -> String {
        self.addr.to_string()
    }

    fn cwd(&self) -> String {
        self.cwd.clone()
    }

    fn echo(&mut self, text: &str) -> RemoteResult<String> {
        self.text(Request::Echo {
            text: text.to_string(),
        })
    }

    fn exec(
        &mut self,
        command: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> RemoteResult<ExitStatus> {
        self.cancel_sent = None;
        self.send(&Request::Exec {
            command: command.to_string(),
        })?;
        let mut write_error = None;
        let result = self.exec_replies(out, err, &mut write_error);
        self.cancel_exec = false;
        // The output is lost however the command ended; say why (for stdout the
        // shell's `Ui` also knows it as a closed pipe and stops quietly).
        match write_error {
            Some(e) => Err(RemoteError::Local(e)),
            None => result,
        }
    }

    /// The server streams a directory as it reads it, sorted only within
    /// batches: sorted here, by name (unstable: names in a directory are
    /// unique, and it needs no buffer the size of the listing).
    fn list(&mut self, path: &str) -> RemoteResult<Vec<Entry>> {
        let mut entries = self.entries(Request::List {
            path: path.to_string(),
        })?;
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn stat(&mut self, path: &str) -> RemoteResult<Entry> {
        self.send(&Request::Stat {
            path: path.to_string(),
        })?;
        match self.recv(false)? {
            Reply::Entries(mut e) if e.len() == 1 => {
                let entry = e.remove(0);
                self.answered();
                Ok(entry)
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    fn cd(&mut self, path: &str) -> RemoteResult<String> {
        let dir = self.text(Request::Cd {
            path: path.to_string(),
        })?;
        self.previous = Some(std::mem::replace(&mut self.cwd, dir.clone()));
        Ok(dir)
    }

    fn pwd(&mut self) -> RemoteResult<String> {
        let dir = self.text(Request::Pwd)?;
        self.cwd = dir.clone();
        Ok(dir)
    }

    fn mkdir(&mut self, path: &str, parents: bool) -> RemoteResult<()> {
        self.simple(Request::Mkdir {
            path: path.to_string(),
            parents,
        })
    }

    fn remove(&mut self, path: &str, recursive: bool) -> RemoteResult<()> {
        self.simple(Request::Remove {
            path: path.to_string(),
            recursive,
        })
    }

    fn md5(&mut self, path: &str) -> RemoteResult<Digest> {
        self.send(&Request::Md5 {
            path: path.to_string(),
        })?;
        match self.recv(false)? {
            Reply::FileEnd { md5 } => {
                self.answered();
                Ok(md5)
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    fn glob(&mut self, pattern: &str) -> RemoteResult<Vec<String>> {
        Ok(self
            .entries(Request::Glob {
                pattern: pattern.to_string(),
            })?
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    fn glob_entries(&mut self, pattern: &str) -> RemoteResult<Vec<Entry>> {
        self.entries(Request::Glob {
            pattern: pattern.to_string(),
        })
    }

    /// The server streams a walk parents first, each directory sorted only
    /// within batches: sorted here component by component (a parent still
    /// comes before what it holds, siblings by name), problems last.
    fn walk(&mut self, path: &str) -> RemoteResult<Vec<Entry>> {
        self.walk_links(path, false)
    }

    fn walk_links(&mut self, path: &str, follow: bool) -> RemoteResult<Vec<Entry>> {
        let mut entries = self.entries(Request::Walk {
            path: path.to_string(),
            follow,
        })?;
        entries.sort_unstable_by(|a, b| {
            a.is_problem()
                .cmp(&b.is_problem())
                .then_with(|| a.name.split('/').cmp(b.name.split('/')))
        });
        Ok(entries)
    }

    fn make_link(&mut self, path: &str, target: &str) -> RemoteResult<()> {
        self.simple(Request::Link {
            path: path.to_string(),
            target: target.to_string(),
        })
    }

    fn set_attrs(&mut self, path: &str, mode: u32, mtime: i64, keep: bool) -> RemoteResult<()> {
        self.simple(Request::Attrs {
            path: path.to_string(),
            mode,
            mtime,
            keep,
        })
    }

    fn download(
        &mut self,
        path: &str,
        offset: u64,
        receiver: &mut dyn Receiver,
    ) -> RemoteResult<Digest> {
        self.send(&Request::Get {
            path: path.to_string(),
            offset,
        })?;
        self.receive_file(offset, receiver)
    }

    fn upload(&mut self, path: &str, resume: bool, source: &mut dyn Source) -> RemoteResult<()> {
        let (mode, mtime, keep) = source.attrs();
        self.send(&Request::Put {
            path: path.to_string(),
            size: source.size(),
            resume,
            wait: true,
            mode,
            mtime,
            keep,
            more: false,
        })?;
        let offset = match self.recv(false)? {
            Reply::Ready { offset } => offset,
            other => {
                let e = to_error(other);
                return Err(self.fail(e));
            }
        };
        source.start(offset).map_err(|e| self.local_failure(e))?;
        {
            let _watch = self.watch_writes();
            self.send_file_data(source)?;
        }
        match self.recv(false)? {
            Reply::Ok => {
                self.answered();
                Ok(())
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    fn download_batch(
        &mut self,
        items: &mut [BatchGet<'_>],
    ) -> RemoteResult<Vec<RemoteResult<Digest>>> {
        let mut results = Vec::with_capacity(items.len());
        let mut sent = 0;
        for i in 0..items.len() {
            while sent < items.len() && sent < i + WINDOW {
                let request = Request::Get {
                    path: items[sent].remote.clone(),
                    offset: items[sent].offset,
                };
                self.send(&request)?;
                sent += 1;
            }
            match self.receive_file(items[i].offset, items[i].receiver) {
                Ok(d) => results.push(Ok(d)),
                Err(RemoteError::Refused(m)) => results.push(Err(RemoteError::Refused(m))),
                // A local failure drops the connection: what is in flight is lost.
                Err(e) => return Err(e),
            }
        }
        Ok(results)
    }

    /// Streams the whole slice before reading any reply: every upload but the
    /// last says `more`, so the server may hold the replies and install the
    /// slice's files together, made durable with one file-system sync
    /// (protocol `Put { more }`). Waiting for a reply mid-slice could wait on
    /// a reply held for the rest of the slice. The replies are small and the
    /// slice is bounded (`SLICE` files under `BIG`), so neither side's socket
    /// buffers fill with replies nobody reads.
    fn upload_batch(&mut self, items: &mut [BatchPut<'_>]) -> RemoteResult<Vec<RemoteResult<()>>> {
        let last = items.len().saturating_sub(1);
        let watch = self.watch_writes();
        for (i, item) in items.iter_mut().enumerate() {
            let source = &mut *item.source;
            let (mode, mtime, keep) = source.attrs();
            let request = Request::Put {
                path: item.remote.clone(),
                size: source.size(),
                resume: false,
                wait: false,
                mode,
                mtime,
                keep,
                more: i < last,
            };
            self.send(&request)?;
            source.start(0).map_err(|e| self.local_failure(e))?;
            self.send_file_data(source)?;
        }
        drop(watch);
        let mut results = Vec::with_capacity(items.len());
        while results.len() < items.len() {
            results.push(self.upload_reply()?);
        }
        Ok(results)
    }

    fn previous_dir(&self) -> Option<String> {
        self.previous.clone()
    }

    fn rename(&mut self, from: &str, to: &str) -> RemoteResult<()> {
        self.simple(Request::Rename {
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    fn chmod(&mut self, path: &str, mode: u32) -> RemoteResult<()> {
        self.simple(Request::Chmod {
            path: path.to_string(),
            mode,
        })
    }

    fn rmdir(&mut self, path: &str) -> RemoteResult<()> {
        self.simple(Request::Rmdir {
            path: path.to_string(),
        })
    }

    fn symlink(&mut self, target: &str, link: &str) -> RemoteResult<()> {
        self.simple(Request::Symlink {
            target: target.to_string(),
            link: link.to_string(),
        })
    }

    fn stat_details(&mut self, path: &str) -> RemoteResult<Details> {
        self.send(&Request::StatDetails {
            path: path.to_string(),
        })?;
        match self.recv(false)? {
            Reply::Details { entry, target } => {
                let target = (!target.is_empty()).then(|| target.to_string());
                self.answered();
                Ok(Details { entry, target })
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }

    fn space(&mut self, path: &str) -> RemoteResult<Space> {
        self.send(&Request::StatFs {
            path: path.to_string(),
        })?;
        match self.recv(false)? {
            Reply::Space { size, free, avail } => {
                self.answered();
                Ok(Space { size, free, avail })
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }
}

impl Connection {
    /// [`Remote::list`] that must be answered whole `within` this long, or
    /// not at all (the connection is then dropped; the next request
    /// reconnects). For tab completion: the line editor holds the terminal
    /// in raw mode meanwhile, so Ctrl-C is a key it has not read yet, not a
    /// signal, and a server that answers slowly (a frame now and then, each
    /// within the reply timeout) would freeze the prompt for as long as it
    /// liked.
    pub fn list_promptly(&mut self, path: &str, within: Duration) -> RemoteResult<Vec<Entry>> {
        self.give_up = Some(Instant::now() + within);
        let listed = self.list(path);
        self.give_up = None;
        listed
    }

    fn upload_reply(&mut self) -> RemoteResult<RemoteResult<()>> {
        match self.recv(false)? {
            Reply::Ok => {
                self.answered();
                Ok(Ok(()))
            }
            Reply::Error { message } => {
                let e = refusal(message);
                self.answered();
                Ok(Err(e))
            }
            other => {
                let e = to_error(other);
                Err(self.fail(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_server_message_is_cut_between_escapes() {
        // One plain byte first, so that the escapes do not end at the limit.
        let message = format!("a{}", "\u{1}".repeat(3 * MAX_REFUSAL));
        let text = server_text(&message);
        let (kept, note) = text.split_once("...").unwrap();
        assert!(kept.len() <= MAX_REFUSAL && kept.len() > MAX_REFUSAL - 8);
        let one = escape("\u{1}").into_owned();
        assert!(one.len() > 1, "a control character is escaped");
        let whole = format!("a{}", one.repeat((kept.len() - 1) / one.len()));
        assert_eq!(kept, whole, "cut inside an escape");
        assert!(
            note.contains(&format!("held {} bytes", message.len())),
            "{note}"
        );
        assert_eq!(server_text("short"), "short");
    }
}
