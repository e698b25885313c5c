//! One connection: handshake, then requests answered in order.
//!
//! The handshake (greetings and token) must be over within `stall_timeout`,
//! however slowly its bytes trickle in; only then does the connection take a
//! session's place under `max_connections` (see the [`super`] module).
//!
//! After it, the session thread answers requests, and the read side of the
//! connection (the [`Wire`]: socket, per-frame deadline, bytes read ahead,
//! decoder) is held by exactly one thread at a time, and changes hands only
//! between two frames:
//!
//! - Between requests the session thread reads the socket itself
//!   ([`Session::next_request`]): a small request such as `echo` costs one
//!   wake-up of one thread and one `read`, as in a single-threaded server.
//!   Before this, every request crossed from a reader thread to the session
//!   thread, two wake-ups per round trip, and an echo on a shared CPU ran at
//!   half the rate of a C ping-pong.
//! - A request that must notice a `Cancel` or a closed connection while it
//!   works (a download, a command, a listing, a glob, `rm -r`, an MD5), or an
//!   upload's data, which is read ahead of the disk, hands the wire to the
//!   session's reader thread ([`Session::delegate`]; started the first time,
//!   so a session that never needs one has one thread). While it streams a
//!   download or runs a command the session polls the channel, so a `Cancel`
//!   or a closed connection stops the work, and any other request that
//!   arrives early (pipelining) is queued in `pending`, up to a bound.
//! - The reader hands the wire back when it passes on a request that the
//!   session, waiting, answers next: it parks the wire ([`Parked`]) with the
//!   count of requests sent before it, so that the session reads the socket
//!   only once it has received them all (replies stay in order), and parks it
//!   before sending that request, so that a session blocked on the channel is
//!   always woken.
//!
//! Whoever holds the wire applies the timeouts, which depend on what the
//! session is doing ([`Activity`]): a peer idle between requests for
//! `idle_timeout`, or one that stops sending an upload's data for
//! `stall_timeout`, is dropped; so is one that takes longer than
//! `stall_timeout` to send a frame it has begun, however it trickles the
//! bytes.
//!
//! Decoded requests in the channel and in `pending` count against one byte
//! budget ([`InFlight`]); the reader reads no further frame while it is spent,
//! so a peer that sends faster than its session answers is held back by TCP
//! rather than buffered. A request the session reads itself waits nowhere.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::guard::{Admission, PeerKey};
use super::{exec, files, ops, transfer, Handshake, Shared};
use ftpsh_core::net::Stream;
use ftpsh_core::protocol::frame::{read_payload_into, Header, ReadAhead, ReadError};
use ftpsh_core::protocol::handshake::{self, tokens_match, HandshakeError};
use ftpsh_core::protocol::message::UPLOAD_DATA_KIND;
use ftpsh_core::protocol::{FrameReader, Reply, Request};

/// Requests queued behind a long reply. A client pipelines at most its batch
/// window (32) of small requests, so these bounds only stop a peer that would
/// grow the server's memory without end.
const MAX_PENDING: usize = 64;
/// The budget of decoded request bytes between the reader and the session
/// ([`InFlight`]), and also the most that may queue behind a reply. The reader
/// may pass it by one frame, so a peer that pipelines more than the budget
/// behind a reply is noticed and dropped, not merely slowed down. Eight upload
/// chunks: enough read-ahead that the reader never waits on a session that
/// keeps up with the disk.
const IN_FLIGHT_BYTES: usize = 2 << 20;
/// An authentication frame carries a token, never more.
const MAX_AUTH_LEN: usize = 4096;

/// What the session thread is doing, which decides what a silent peer means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Activity {
    /// Between requests: silence is idleness (`idle_timeout`).
    Waiting = 0,
    /// Answering (a download, a command, a listing): the peer owes nothing.
    Working = 1,
    /// Inside an upload: the peer owes data, so silence is a stall (`stall_timeout`).
    Receiving = 2,
}

impl Activity {
    fn load(cell: &AtomicU8) -> Self {
        match cell.load(Ordering::SeqCst) {
            1 => Activity::Working,
            2 => Activity::Receiving,
            _ => Activity::Waiting,
        }
    }
}

/// What the reader thread hands the session.
pub(crate) enum Incoming {
    /// A request and the size of its frame's payload.
    Request(Request, usize),
    /// The peer closed the connection between frames.
    Closed,
    /// The peer broke the protocol, stalled, or went idle for too long.
    Failed(String),
}

/// The connection is gone (the peer closed it, or a write failed): stop serving.
#[derive(Debug)]
pub(crate) struct Gone;

impl From<io::Error> for Gone {
    fn from(_: io::Error) -> Self {
        Gone
    }
}

pub(crate) type Served = Result<(), Gone>;

/// The bytes of requests the reader has decoded and the session not yet taken
/// up: without this bound a peer that stops reading its replies could park a
/// channel's worth of megabyte requests in the server for every connection.
struct InFlight {
    state: Mutex<Budget>,
    /// Signalled when bytes are released or the session ends.
    room: Condvar,
    /// Upload data buffers the session is done with, for the reader to read
    /// the next chunks into: a fresh 256 KiB allocation per frame costs page
    /// faults and zeroing (glibc gives such sizes fresh pages), about as much
    /// as the copy itself. At most [`SPARE_BUFFERS`], and none kept between
    /// requests.
    spare: Mutex<Vec<Vec<u8>>>,
    /// The wire, left here by the reader thread with a request that the
    /// session, waiting, will answer next: from then on the session reads
    /// the socket itself (see [`Session::next_request`]).
    parked: Mutex<Option<Parked>>,
}

/// Upload buffers kept for reuse: as many as can be in flight at once.
const SPARE_BUFFERS: usize = IN_FLIGHT_BYTES / ftpsh_core::protocol::DATA_CHUNK + 2;

struct Budget {
    bytes: usize,
    /// The session is over: the reader must stop waiting.
    closed: bool,
    /// The reader waits for room: only then is a release worth a wake-up.
    waiting: bool,
}

impl InFlight {
    fn new() -> InFlight {
        InFlight {
            state: Mutex::new(Budget {
                bytes: 0,
                closed: false,
                waiting: false,
            }),
            room: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            parked: Mutex::new(None),
        }
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, Option<Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the budget is not yet spent: `Some(true)` if that took a
    /// wait, `None` once the session has ended.
    fn wait_for_room(&self) -> Option<bool> {
        let mut budget = self.lock();
        let mut waited = false;
        while !budget.closed && budget.bytes > IN_FLIGHT_BYTES {
            waited = true;
            budget.waiting = true;
            budget = self.room.wait(budget).unwrap_or_else(|e| e.into_inner());
        }
        budget.waiting = false;
        (!budget.closed).then_some(waited)
    }

    fn add(&self, bytes: usize) {
        self.lock().bytes += bytes;
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            let mut budget = self.lock();
            budget.bytes = budget.bytes.saturating_sub(bytes);
            if budget.waiting {
                self.room.notify_one();
            }
        }
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer to read upload data into: a spent one if there is one.
    fn take_spare(&self) -> Vec<u8> {
        self.spares().pop().unwrap_or_default()
    }

    fn give_spare(&self, buf: Vec<u8>) {
        let mut spares = self.spares();
        if spares.len() < SPARE_BUFFERS && buf.capacity() > 0 {
            spares.push(buf);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.room.notify_one();
    }
}

pub(crate) struct Session<'a> {
    pub shared: &'a Shared,
    pub peer: String,
    pub writer: Stream,
    rx: Inbox,
    /// Bytes in `rx` and `pending`, which the reader waits on.
    in_flight: Arc<InFlight>,
    /// Requests that arrived while another was served, with their payload sizes.
    pending: VecDeque<(Request, usize)>,
    /// The sum of the payload sizes in `pending`.
    pending_bytes: usize,
    /// The remote working directory, root-relative.
    pub cwd: String,
    activity: Arc<AtomicU8>,
    /// Reused for every chunk of file data.
    pub buf: Vec<u8>,
    /// Directories whose new entries are not fsynced yet, by (device, inode),
    /// each with a handle on it: filled while an upload or a batch is
    /// installed, and synced before its replies go out (empty between requests).
    pub dirty_dirs: std::collections::BTreeMap<(u64, u64), std::os::fd::OwnedFd>,
    /// Batch uploads whose replies wait for the end of their batch.
    pub batch: transfer::Batch<'a>,
    /// The read side of the connection while this thread reads it itself
    /// (between requests); `None` while the reader thread has it, or while it
    /// waits in [`InFlight::parked`] for this thread to take it back.
    wire: Option<Box<Wire>>,
    /// How many requests the reader thread sent before it parked `wire`:
    /// the socket may be read once all of them have been received.
    wire_after: u64,
    /// The reader thread, started the first time a request needs it.
    reader: Reader,
}

/// The session's reader thread, if it has one.
enum Reader {
    /// Not needed yet: the sender it will be given.
    NotStarted(SyncSender<Incoming>),
    /// Running or parked: the wire is handed to it through `handoff`.
    Started {
        handoff: mpsc::Sender<Box<Wire>>,
        thread: std::thread::JoinHandle<()>,
    },
    /// It could not be started, or the session is over.
    Failed,
}

/// The session's end of the channel from the reader thread, counting the
/// requests received, so that a wire found parked is used only after the
/// requests the reader sent before parking it ([`Parked::after`]).
struct Inbox {
    rx: Receiver<Incoming>,
    received: u64,
}

impl Inbox {
    fn count<E>(&mut self, got: &Result<Incoming, E>) {
        if let Ok(Incoming::Request(..)) = got {
            self.received += 1;
        }
    }

    fn try_recv(&mut self) -> Result<Incoming, TryRecvError> {
        let got = self.rx.try_recv();
        self.count(&got);
        got
    }

    fn recv(&mut self) -> Result<Incoming, mpsc::RecvError> {
        let got = self.rx.recv();
        self.count(&got);
        got
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Incoming, mpsc::RecvTimeoutError> {
        let got = self.rx.recv_timeout(timeout);
        self.count(&got);
        got
    }
}

/// The wire, left by the reader thread for the session to read the socket
/// itself again.
struct Parked {
    wire: Box<Wire>,
    /// The requests the reader had sent by then, counting the one it sends
    /// right after parking: the session takes the wire up only once it has
    /// received them all, and may meanwhile wait on the channel for them,
    /// since they are on their way.
    after: u64,
}

/// Serves one connection to its end.
pub(crate) fn serve(shared: &Shared, mut stream: Stream, handshake: Handshake<'_>) {
    let peer = stream.peer();
    // Reads wake at the shorter timeout: an idle limit below the stall limit
    // must be noticed on time, not at the next stall-length wake-up.
    let wake = shared.config.stall_timeout.min(shared.config.idle_timeout);
    let _ = stream.set_read_timeout(Some(wake));
    let _ = stream.set_write_timeout(Some(shared.config.stall_timeout));
    // The whole handshake (TLS, greetings, token) within one deadline, on
    // this connection's thread, counted among the handshakes in progress.
    let until = Instant::now() + shared.config.stall_timeout;
    if let Some(identity) = &shared.config.tls {
        let left = until.saturating_duration_since(Instant::now());
        stream = match ftpsh_core::tls::accept_stream(stream, identity, left) {
            Ok(s) => s,
            Err(e) => {
                if handshake.evicted() {
                    shared.log(&peer, evicted(shared));
                } else {
                    match ftpsh_core::tls::AcceptError::of(&e) {
                        Some(why) => shared.log(&peer, why),
                        None => shared.log(&peer, format!("dropped during TLS handshake: {e}")),
                    }
                }
                return;
            }
        };
        let _ = stream.set_read_timeout(Some(wake));
        let _ = stream.set_write_timeout(Some(shared.config.stall_timeout));
    }
    let greeted = greet(&mut stream, until)
        .map_err(Some)
        .and_then(|token| authenticate(shared, &mut stream, &token, &handshake));
    let _ = stream.set_read_timeout(Some(wake));
    if let Err(msg) = greeted {
        if handshake.evicted() {
            shared.log(&peer, evicted(shared));
        } else if let Some(msg) = msg {
            shared.log(&peer, msg);
        }
        stream.shutdown();
        return;
    }
    let Some(_slot) = shared.take_slot() else {
        refuse_busy(shared, &mut stream);
        return;
    };
    if !handshake.finish() {
        shared.log(&peer, evicted(shared));
        return;
    }
    if let Err(e) = Reply::Ok.write_to(&mut stream) {
        shared.log(&peer, format!("dropped during handshake: {e}"));
        return;
    }
    let reader = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => {
            shared.log(&peer, format!("cannot clone socket: {e}"));
            return;
        }
    };
    let config = &shared.config;
    let wire = Wire::new(reader, config.idle_timeout, config.stall_timeout);
    let (tx, rx) = mpsc::sync_channel(16);
    shared.log(&peer, "connected");
    let mut session = Session {
        shared,
        peer,
        writer: stream,
        rx: Inbox { rx, received: 0 },
        in_flight: Arc::new(InFlight::new()),
        pending: VecDeque::new(),
        pending_bytes: 0,
        cwd: "/".into(),
        activity: Arc::new(AtomicU8::new(Activity::Waiting as u8)),
        buf: vec![0u8; ftpsh_core::protocol::DATA_CHUNK],
        dirty_dirs: Default::default(),
        batch: Default::default(),
        wire: Some(wire),
        wire_after: 0,
        reader: Reader::NotStarted(tx),
    };
    session.run();
    let reader = std::mem::replace(&mut session.reader, Reader::Failed);
    // Shuts the socket down, closes the budget and drops the hand-off
    // channel, which ends the reader thread wherever it is (also when a
    // panic unwinds past this point: see `Drop for Session`).
    drop(session);
    if let Reader::Started { handoff, thread } = reader {
        drop(handoff);
        let _ = thread.join();
    }
}

fn evicted(shared: &Shared) -> String {
    let max = shared.config.max_handshakes;
    format!("dropped: handshake unfinished when {max} were in progress (the oldest gives way)")
}

/// Tells an authenticated client over `max_connections` why it is turned away.
/// Its greeting and token have been read, so closing now sends it the message
/// and a clean end, not a reset that could discard the message: nothing has to
/// linger.
fn refuse_busy(shared: &Shared, stream: &mut Stream) {
    let max = shared.config.max_connections;
    shared.log(
        &stream.peer(),
        format!("refused: already serving {max} connections"),
    );
    let msg =
        format!("server busy: it already serves {max} connections (the maximum); try again later");
    let _ = Reply::Error { message: &msg }.write_to(stream);
    stream.shutdown();
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.writer.shutdown();
        self.in_flight.close();
        self.set_activity(Activity::Waiting);
    }
}

/// Reads that fail once a deadline has passed, however the bytes trickle in.
struct Deadline<'s> {
    stream: &'s mut Stream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake not finished in time",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Greeting both ways and the authentication frame, within one deadline:
/// the token it carries. The `Ok` that admits the client is the caller's: it
/// first needs a free place.
fn greet(stream: &mut Stream, until: Instant) -> Result<String, String> {
    let version = match handshake::read_greeting(&mut Deadline { stream, until }) {
        Ok(v) => v,
        Err(HandshakeError::Protocol(e)) => return Err(format!("dropped: {e}")),
        Err(HandshakeError::Io(e)) => return Err(format!("dropped during handshake: {e}")),
    };
    handshake::send_greeting(stream).map_err(|e| format!("dropped during handshake: {e}"))?;
    if version != handshake::VERSION {
        let message = handshake::client_mismatch(version);
        let _ = Reply::Error { message: &message }.write_to(stream);
        return Err(format!("dropped: {message}"));
    }
    let mut frames = FrameReader::new();
    let mut limited = Deadline { stream, until };
    let dropped = |e: ReadError| format!("dropped during handshake: {e}");
    let (kind, len) = match frames.read_header(&mut limited).map_err(dropped)? {
        Header::Frame { kind, len } => (kind, len),
        Header::Idle => return Err("dropped: handshake not finished in time".into()),
    };
    if len > MAX_AUTH_LEN {
        return Err(format!(
            "dropped: a {len}-byte authentication frame (at most {MAX_AUTH_LEN})"
        ));
    }
    let frame = frames
        .read_payload(&mut limited, kind, len)
        .map_err(dropped)?;
    match Request::decode(frame.kind, frame.payload) {
        Ok(Request::Auth { token }) => Ok(token),
        Ok(_) => Err("dropped: expected authentication first".into()),
        Err(e) => Err(format!("dropped: {e}")),
    }
}

/// Whether the peer may have a session: a Unix socket's peer must be a user
/// it admits, and the token must match. An address with recent failures
/// waits first (see [`guard`](super::guard)), whatever token it sent. Refusals
/// are told to the peer and logged, the log rate-limited; `Err(None)` when
/// there is nothing (more) to log.
fn authenticate(
    shared: &Shared,
    stream: &mut Stream,
    token: &str,
    handshake: &Handshake<'_>,
) -> Result<(), Option<String>> {
    let key = PeerKey::of(stream);
    if let Some(uid) = stream.peer_uid() {
        let why = match uid {
            Ok(uid) if shared.config.uid_admitted(uid) => None,
            Ok(uid) => Some(format!(
                "uid {uid} may not use this socket (it admits the server's user, uid {}, \
                 and those named with --unix-allow-uid)",
                ftpsh_core::sys::effective_uid()
            )),
            Err(e) => Some(format!("cannot tell which user connected: {e}")),
        };
        if let Some(why) = why {
            let _ = Reply::Error { message: &why }.write_to(stream);
            return Err(shared
                .guard
                .refused(&key, Instant::now())
                .map(|unlogged| with_unlogged(format!("refused: {why}"), unlogged)));
        }
    }
    let Some(expected) = &shared.config.token else {
        return Ok(());
    };
    match shared.guard.admit(&key, Instant::now()) {
        Admission::Now => {}
        Admission::After(wait) => {
            if !pause(wait, handshake) {
                return Err(None);
            }
        }
        Admission::Refuse(busy) => {
            let msg = format!(
                "authentication refused: too many failed attempts from {key}; \
                 try again in {} s",
                busy.as_secs() + 1
            );
            let _ = Reply::Error { message: &msg }.write_to(stream);
            return Err(shared
                .guard
                .refused(&key, Instant::now())
                .map(|unlogged| with_unlogged(format!("refused unheard: {msg}"), unlogged)));
        }
    }
    if tokens_match(expected.as_bytes(), token.as_bytes()) {
        return Ok(());
    }
    let what = if token.is_empty() {
        "no token given"
    } else {
        "wrong token"
    };
    let msg = format!("authentication failed: {what}");
    let note = shared.guard.failed(&key, Instant::now());
    let _ = Reply::Error { message: &msg }.write_to(stream);
    Err(note.map(|note| format!("refused: {what} ({note} from {key})")))
}

fn with_unlogged(msg: String, unlogged: u64) -> String {
    if unlogged == 0 {
        msg
    } else {
        format!("{msg} ({unlogged} more from this peer not logged)")
    }
}

/// Waits before answering an attempt; false if the connection was evicted
/// meanwhile (its socket is shut: nobody is left to answer).
fn pause(wait: Duration, handshake: &Handshake<'_>) -> bool {
    let until = Instant::now() + wait;
    loop {
        if handshake.evicted() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// What the server reads ahead of a request: requests other than upload data
/// are a path or two, and a thousand idle sessions hold this much each.
const SERVER_READ_AHEAD: usize = 2048;

/// Deadlines within a frame are kept to this precision, so that a frame that
/// arrives in one go costs no system call to shorten the socket's timeout.
const DEADLINE_GRAIN: Duration = Duration::from_millis(100);

/// The reader's side of the socket, with one deadline per frame: once a
/// frame's first byte is in, the rest must follow within `stall`. A timeout per
/// read would let a peer that sends a byte now and then hold its connection and
/// its threads forever.
struct FrameClock {
    stream: Stream,
    /// The read timeout between frames, where idleness is judged.
    wake: Duration,
    stall: Duration,
    /// When the frame in progress must be complete; `None` between frames.
    /// Set by the first byte read from the socket, or by [`Wire::next`] when
    /// it starts on a frame whose first bytes were read ahead with the last.
    until: Option<Instant>,
    /// The socket's read timeout as last set.
    timeout: Duration,
}

impl FrameClock {
    fn new(stream: Stream, wake: Duration, stall: Duration) -> FrameClock {
        FrameClock {
            stream,
            wake,
            stall,
            until: None,
            timeout: wake,
        }
    }
}

impl Read for FrameClock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.until {
            None => self.wake,
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "frame not complete in time",
                    ));
                }
                left
            }
        };
        if timeout.abs_diff(self.timeout) > DEADLINE_GRAIN {
            self.stream.set_read_timeout(Some(timeout))?;
            self.timeout = timeout;
        }
        let n = self.stream.read(buf)?;
        if n > 0 && self.until.is_none() {
            self.until = Some(Instant::now() + self.stall);
        }
        Ok(n)
    }
}

/// The read side of a connection after the handshake: the socket with its
/// per-frame deadline, the bytes read ahead of the next frame, and the frame
/// decoder. Exactly one thread holds it at a time, and it changes hands only
/// between two frames: the session thread between requests, the reader
/// thread during a long request ([`Session::delegate`]), the reader handing
/// it back through [`InFlight::parked`].
struct Wire {
    clock: FrameClock,
    ahead: ReadAhead,
    frames: FrameReader,
    /// Since when the peer owes a frame: silence from then on is idleness
    /// (or, in an upload, a stall).
    idle_since: Instant,
    idle: Duration,
    stall: Duration,
}

impl Wire {
    fn new(stream: Stream, idle: Duration, stall: Duration) -> Box<Wire> {
        // Reads wake at the shorter timeout: an idle limit below the stall
        // limit must be noticed on time, not at the next stall-length wake-up.
        Box::new(Wire {
            clock: FrameClock::new(stream, stall.min(idle), stall),
            ahead: ReadAhead::with_capacity(SERVER_READ_AHEAD),
            frames: FrameReader::new(),
            idle_since: Instant::now(),
            idle,
            stall,
        })
    }

    /// The next frame as a request, waiting as long as `activity` allows a
    /// silent peer; the budget is the caller's.
    fn next(&mut self, activity: &AtomicU8, in_flight: &InFlight) -> Incoming {
        let (idle, stall) = (self.idle, self.stall);
        // A frame whose first bytes were read ahead with the last one has
        // begun: its deadline runs from now, when this side starts on it,
        // not from when the last frame ended. Time the server spent since
        // (answering the last request, waiting for budget, a parked wire)
        // is not the peer's: it sent those bytes and may have sent the rest.
        self.clock.until = (self.ahead.buffered() > 0).then(|| Instant::now() + stall);
        loop {
            let header = self.frames.read_header(&mut self.ahead.on(&mut self.clock));
            let incoming = match header {
                Ok(Header::Idle) => match Activity::load(activity) {
                    Activity::Working => {
                        self.idle_since = Instant::now();
                        continue;
                    }
                    Activity::Waiting if self.idle_since.elapsed() < idle => continue,
                    Activity::Receiving if self.idle_since.elapsed() < stall => continue,
                    Activity::Waiting => {
                        Incoming::Failed(format!("closed after {} idle", super::seconds(idle)))
                    }
                    Activity::Receiving => Incoming::Failed(format!(
                        "dropped: no upload data for {}",
                        super::seconds(stall)
                    )),
                },
                Ok(Header::Frame { kind, len }) if kind == UPLOAD_DATA_KIND => {
                    // Upload data is read into a buffer of its own that travels
                    // on to the file and the hash thread, and comes back spent.
                    let mut buf = in_flight.take_spare();
                    let read =
                        read_payload_into(&mut self.ahead.on(&mut self.clock), len, &mut buf);
                    self.frame_done();
                    match read {
                        Ok(()) => Incoming::Request(Request::Data(buf), len),
                        Err(e) => Incoming::Failed(read_failure(&e, stall)),
                    }
                }
                Ok(Header::Frame { kind, len }) => {
                    let read =
                        self.frames
                            .read_payload(&mut self.ahead.on(&mut self.clock), kind, len);
                    let incoming = match read {
                        Ok(frame) => match Request::decode(frame.kind, frame.payload) {
                            Ok(request) => Incoming::Request(request, len),
                            Err(e) => Incoming::Failed(format!("dropped: {e}")),
                        },
                        Err(e) => Incoming::Failed(read_failure(&e, stall)),
                    };
                    self.frame_done();
                    incoming
                }
                Err(ReadError::Closed) => Incoming::Closed,
                Err(e) => Incoming::Failed(read_failure(&e, stall)),
            };
            if matches!(incoming, Incoming::Request(..)) {
                self.idle_since = Instant::now();
            }
            return incoming;
        }
    }

    /// A frame is complete: the next one's deadline starts when it is read
    /// ([`Wire::next`]), from its first byte read ahead or off the socket.
    fn frame_done(&mut self) {
        self.clock.until = None;
    }
}

/// The reader thread, started by the session the first time it needs one:
/// each time the session hands it the wire, frames in, requests out, until
/// it passes on a request the waiting session will answer next (it then
/// parks the wire for the session and waits for the next hand-off) or the
/// peer goes away.
fn read_requests(
    handoff: mpsc::Receiver<Box<Wire>>,
    tx: SyncSender<Incoming>,
    activity: Arc<AtomicU8>,
    in_flight: Arc<InFlight>,
) {
    // Requests sent so far (see `Parked::after`).
    let mut sent = 0u64;
    while let Ok(mut wire) = handoff.recv() {
        // The session was busy until it handed the socket over.
        wire.idle_since = Instant::now();
        loop {
            match in_flight.wait_for_room() {
                None => return,
                // The session was busy with requests already sent: the peer owed
                // nothing meanwhile, so that time is not idleness.
                Some(true) => wire.idle_since = Instant::now(),
                Some(false) => {}
            }
            match wire.next(&activity, &in_flight) {
                Incoming::Request(request, len) => {
                    // Counted before it is sent: the session may release it as
                    // soon as it is in the channel.
                    in_flight.add(len);
                    sent += 1;
                    // The session waits for a request, and nothing long is
                    // running: after this one it reads the socket itself,
                    // without the wake-up of a hand-off through the channel.
                    // Parked before the send, so that a session blocked on the
                    // channel is woken by this request and finds the wire.
                    if Activity::load(&activity) == Activity::Waiting {
                        *in_flight.parked() = Some(Parked { wire, after: sent });
                        // Should the session be gone, so is the hand-off
                        // channel: the wait for the next hand-off ends.
                        let _ = tx.send(Incoming::Request(request, len));
                        break;
                    }
                    if tx.send(Incoming::Request(request, len)).is_err() {
                        return;
                    }
                }
                incoming => {
                    let _ = tx.send(incoming);
                    // Unblock the session if it is writing to a peer that will
                    // never read.
                    wire.clock.stream.shutdown();
                    return;
                }
            }
        }
    }
}

fn read_failure(e: &ReadError, stall: Duration) -> String {
    match e {
        ReadError::Io(io) if ftpsh_core::protocol::frame::is_timeout(io) => format!(
            "dropped: stalled in the middle of a frame (not whole within {})",
            super::seconds(stall)
        ),
        other => format!("dropped: {other}"),
    }
}

impl Session<'_> {
    fn run(&mut self) {
        while let Some(request) = self.next_request() {
            self.set_activity(Activity::Working);
            let served = self.handle(request);
            // A held batch (`Put { more }`) is owed its next upload: silence
            // is then a stall, so a vanished client's batch does not keep its
            // files' names claimed for the whole idle timeout.
            self.set_activity(if self.batch.is_empty() {
                Activity::Waiting
            } else {
                Activity::Receiving
            });
            // An idle session keeps no upload buffers (a thousand may be idle).
            self.in_flight.spares().clear();
            if served.is_err() {
                break;
            }
        }
        // The peer is gone: a batch's verified uploads are installed all the
        // same, as a single upload is whose reply is lost.
        let _ = transfer::flush_batch(self);
    }

    /// Fsyncs the directories that received files since the last call.
    /// Those that failed, by (device, inode), with the error: an upload
    /// answered `Ok` must be on disk, entry included.
    pub fn sync_dirty_dirs(&mut self) -> Vec<((u64, u64), std::io::Error)> {
        let mut failed = Vec::new();
        for (id, dir) in std::mem::take(&mut self.dirty_dirs) {
            if let Err(e) = std::fs::File::from(dir).sync_all() {
                failed.push((id, e));
            }
        }
        failed
    }

    /// Gives a spent upload data buffer back to the reader, to read into again.
    pub fn recycle(&self, buf: Vec<u8>) {
        self.in_flight.give_spare(buf);
    }

    /// Tells whoever reads the socket what a silent peer means from now on.
    pub fn set_activity(&self, activity: Activity) {
        self.activity.store(activity as u8, Ordering::SeqCst);
    }

    /// The next request: one queued during streaming, one the reader thread
    /// passed on, or the next from the peer, in that order (the order they
    /// came in). Between requests (`Waiting`) this thread reads the socket
    /// itself, once the reader thread has parked the wire: an answer then
    /// costs the peer one wake-up of one thread, as in a single-threaded
    /// server. Inside a request (an upload's data) the reader thread reads,
    /// ahead of the session.
    pub fn next_request(&mut self) -> Option<Request> {
        if let Some((r, len)) = self.pending.pop_front() {
            self.pending_bytes -= len;
            self.in_flight.release(len);
            return Some(r);
        }
        if self.wire.is_none() {
            if let Some(parked) = self.in_flight.parked().take() {
                self.wire = Some(parked.wire);
                self.wire_after = parked.after;
            }
        }
        let incoming = match self.wire.as_mut() {
            // Until then the next request is in the channel, or on its way.
            Some(_) if self.rx.received < self.wire_after => self.rx.recv().ok(),
            Some(wire) if Activity::load(&self.activity) == Activity::Waiting => {
                // The budget bounds what waits in the channel and in
                // `pending`: a request read here waits nowhere.
                wire.idle_since = Instant::now();
                match wire.next(&self.activity, &self.in_flight) {
                    Incoming::Request(r, _) => return Some(r),
                    other => Some(other),
                }
            }
            Some(_) => {
                if self.delegate().is_err() {
                    return None;
                }
                self.rx.recv().ok()
            }
            // The reader thread has the wire, or parks it with the request
            // it sends next: either way a request (or the end) is coming.
            None => self.rx.recv().ok(),
        };
        let (r, len) = self.take(incoming)?;
        self.in_flight.release(len);
        Some(r)
    }

    /// Hands the wire to the reader thread (started the first time), so that
    /// the socket is read while this thread works: a long request must see a
    /// `Cancel` or a closed connection, and requests pipelined behind it are
    /// read ahead under the budget. A no-op while the reader has the wire.
    fn delegate(&mut self) -> Result<(), Gone> {
        // Parked, the wire goes back to the reader, which reads on after
        // the requests it sent (whatever of them is still in the channel is
        // received before what it reads next).
        let parked = || self.in_flight.parked().take().map(|p| p.wire);
        let Some(wire) = self.wire.take().or_else(parked) else {
            return Ok(());
        };
        if let Reader::NotStarted(_) = self.reader {
            let Reader::NotStarted(tx) = std::mem::replace(&mut self.reader, Reader::Failed) else {
                unreachable!()
            };
            let (handoff, wires) = mpsc::channel();
            let activity = Arc::clone(&self.activity);
            let in_flight = Arc::clone(&self.in_flight);
            let thread = std::thread::Builder::new()
                .name("ftpsh-reader".into())
                .spawn(move || read_requests(wires, tx, activity, in_flight));
            match thread {
                Ok(thread) => self.reader = Reader::Started { handoff, thread },
                Err(e) => {
                    self.shared
                        .log(&self.peer, format!("cannot start a reader thread: {e}"));
                    return Err(Gone);
                }
            }
        }
        match &self.reader {
            Reader::Started { handoff, .. } => handoff.send(wire).map_err(|_| Gone),
            _ => Err(Gone),
        }
    }

    /// Waits up to `timeout` for a `Cancel` while a command runs; other requests
    /// are queued for after it.
    pub fn cancel_within(&mut self, timeout: Duration) -> Result<bool, Gone> {
        self.delegate()?;
        match self.rx.recv_timeout(timeout) {
            Ok(Incoming::Request(Request::Cancel, len)) => {
                self.in_flight.release(len);
                Ok(true)
            }
            Ok(Incoming::Request(r, len)) => self.queue(r, len).map(|()| false),
            Ok(other) => {
                self.take(Some(other));
                Err(Gone)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(false),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Gone),
        }
    }

    fn take(&mut self, incoming: Option<Incoming>) -> Option<(Request, usize)> {
        match incoming? {
            Incoming::Request(r, len) => Some((r, len)),
            Incoming::Closed => {
                self.shared.log(&self.peer, "disconnected");
                None
            }
            Incoming::Failed(msg) => {
                self.shared.log(&self.peer, msg);
                None
            }
        }
    }

    /// Between chunks of a long reply: true if the peer asked to cancel. Other
    /// requests that arrived early are kept for later.
    pub fn cancel_requested(&mut self) -> Result<bool, Gone> {
        self.delegate()?;
        loop {
            match self.rx.try_recv() {
                Ok(Incoming::Request(Request::Cancel, len)) => {
                    self.in_flight.release(len);
                    return Ok(true);
                }
                Ok(Incoming::Request(r, len)) => self.queue(r, len)?,
                Ok(other) => {
                    self.take(Some(other));
                    return Err(Gone);
                }
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(Gone),
            }
        }
    }

    /// Keeps a request that arrived while another was being served (still
    /// counted in flight), or drops a peer that queues more than a client ever
    /// pipelines.
    fn queue(&mut self, request: Request, len: usize) -> Result<(), Gone> {
        if self.pending.len() >= MAX_PENDING || self.pending_bytes + len > IN_FLIGHT_BYTES {
            self.shared.log(
                &self.peer,
                format!(
                    "dropped: more than {MAX_PENDING} requests or {} MiB queued behind a reply",
                    IN_FLIGHT_BYTES >> 20
                ),
            );
            return Err(Gone);
        }
        self.pending_bytes += len;
        self.pending.push_back((request, len));
        Ok(())
    }

    pub fn reply(&mut self, reply: Reply) -> Served {
        // Replies go in request order: a batch's held ones first.
        transfer::flush_batch(self)?;
        reply.write_to(&mut self.writer)?;
        Ok(())
    }

    pub fn error(&mut self, message: impl std::fmt::Display) -> Served {
        self.reply(Reply::Error {
            message: &message.to_string(),
        })
    }

    /// Sends `Ok`, or the error message.
    fn done(&mut self, result: Result<(), String>) -> Served {
        match result {
            Ok(()) => self.reply(Reply::Ok),
            Err(m) => self.error(m),
        }
    }

    fn handle(&mut self, request: Request) -> Served {
        if !matches!(request, Request::Put { .. }) {
            // A batch of uploads ends before anything else is served.
            transfer::flush_batch(self)?;
        }
        let jail = &self.shared.jail;
        match request {
            Request::Echo { text } => self.reply(Reply::Text { text: &text }),
            Request::Pwd => {
                let cwd = self.cwd.clone();
                self.reply(Reply::Text { text: &cwd })
            }
            Request::Cd { path } => match files::change_dir(jail, &self.cwd, &path) {
                Ok(dir) => {
                    self.cwd = dir;
                    let cwd = self.cwd.clone();
                    self.reply(Reply::Text { text: &cwd })
                }
                Err(m) => self.error(m),
            },
            Request::List { path } => {
                let cwd = self.cwd.clone();
                let mut stream = EntryStream::new(self);
                let listed = files::list(jail, &cwd, &path, &mut stream);
                let listed = stream.end(listed);
                self.finish(listed.map(|()| Reply::Ok))
            }
            Request::Stat { path } => match files::stat(jail, &self.cwd, &path) {
                Ok(e) => self.reply(Reply::Entries(vec![e])),
                Err(m) => self.error(m),
            },
            Request::Mkdir { path, parents } => {
                let r = files::mkdir(jail, &self.cwd, &path, parents);
                self.done(r)
            }
            Request::Remove { path, recursive } => {
                let cwd = self.cwd.clone();
                let r = files::remove(jail, &cwd, &path, recursive, &mut || self.check());
                self.finish(r.map(|()| Reply::Ok))
            }
            Request::Md5 { path } => transfer::md5(self, &path),
            Request::Glob { pattern } => {
                let cwd = self.cwd.clone();
                let found = files::glob(jail, &cwd, &pattern, &mut || self.check());
                self.send_found(found)
            }
            Request::Walk { path, follow } => {
                let cwd = self.cwd.clone();
                let handles = &self.shared.handles;
                let mut stream = EntryStream::new(self);
                let walked = files::walk(jail, handles, &cwd, &path, follow, &mut stream);
                let walked = stream.end(walked);
                self.finish(walked.map(|()| Reply::Ok))
            }
            Request::Get { path, offset } => transfer::send_file(self, &path, offset),
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
                let attrs = transfer::Attrs { mode, mtime, keep };
                transfer::receive_file(self, &path, size, (resume, wait, more), attrs)
            }
            Request::Exec { command } => exec::run(self, &command),
            Request::Cancel => Ok(()), // nothing running: the cancel crossed its reply
            Request::Link { path, target } => {
                let r = files::link(jail, &self.cwd, &path, &target);
                self.done(r)
            }
            Request::Attrs {
                path,
                mode,
                mtime,
                keep,
            } => {
                let r = files::set_attrs(jail, &self.cwd, &path, mode, mtime, keep);
                self.done(r)
            }
            Request::Auth { .. } | Request::Data(_) | Request::PutEnd { .. } => {
                self.shared.log(&self.peer, "dropped: message out of place");
                let _ = self.error("protocol error: message out of place");
                Err(Gone)
            }
            Request::Rename { from, to } => {
                let r = ops::rename(jail, &self.shared.handles, &self.cwd, &from, &to);
                self.done(r)
            }
            Request::Chmod { path, mode } => {
                let r = ops::chmod(jail, &self.cwd, &path, mode);
                self.done(r)
            }
            Request::Rmdir { path } => {
                let r = ops::rmdir(jail, &self.cwd, &path);
                self.done(r)
            }
            Request::Symlink { target, link } => {
                let r = ops::symlink(jail, &self.cwd, &target, &link);
                self.done(r)
            }
            Request::StatDetails { path } => match ops::details(jail, &self.cwd, &path) {
                Ok((entry, target)) => self.reply(Reply::Details {
                    entry,
                    target: &target,
                }),
                Err(m) => self.error(m),
            },
            Request::StatFs { path } => match ops::space(jail, &self.cwd, &path) {
                Ok((size, free, avail)) => self.reply(Reply::Space { size, free, avail }),
                Err(m) => self.error(m),
            },
        }
    }

    /// For long requests (globs, walks, `rm -r`): stops them when the peer
    /// asked to cancel or is gone (see [`files::Check`]).
    fn check(&mut self) -> Result<(), files::Stop> {
        match self.cancel_requested() {
            Ok(false) => Ok(()),
            Ok(true) => Err(files::Stop::Cancelled),
            Err(Gone) => Err(files::Stop::Gone),
        }
    }

    /// Replies to a long request however it ended.
    fn finish(&mut self, result: Result<Reply<'_>, files::Stop>) -> Served {
        match result {
            Ok(reply) => self.reply(reply),
            Err(files::Stop::Cancelled) => self.reply(Reply::Cancelled),
            Err(files::Stop::Gone) => Err(Gone),
            Err(files::Stop::Failed(m)) => self.error(m),
        }
    }

    /// [`Session::send_entries`] for a long request.
    fn send_found(
        &mut self,
        found: Result<Vec<ftpsh_core::protocol::Entry>, files::Stop>,
    ) -> Served {
        match found {
            Ok(entries) => self.send_entries(entries),
            Err(stop) => self.finish(Err(stop)),
        }
    }

    /// Sends a listing in frames that stay under the frame limit, then `Ok`.
    fn send_entries(&mut self, entries: Vec<ftpsh_core::protocol::Entry>) -> Served {
        let budget = ftpsh_core::protocol::MAX_PAYLOAD - 64;
        let mut batch = Vec::new();
        let mut size = 4;
        for e in entries {
            let len = ftpsh_core::protocol::message::entry_len(&e);
            if size + len > budget && !batch.is_empty() {
                self.reply(Reply::Entries(std::mem::take(&mut batch)))?;
                size = 4;
            }
            size += len;
            batch.push(e);
        }
        if !batch.is_empty() {
            self.reply(Reply::Entries(batch))?;
        }
        self.reply(Reply::Ok)
    }
}

/// Payload bytes of entries gathered before they go out as one `Entries`
/// frame, in a streamed listing: small enough that a listing costs the server
/// a few tens of KiB whatever its length, large enough that frames stay few.
const STREAM_BATCH_BYTES: usize = 64 * 1024;

/// A listing sent as it is made ([`files::Listing`]): entries gather into a
/// frame of at most [`STREAM_BATCH_BYTES`], which goes out when full; the
/// socket's back-pressure paces the reading of the directory.
struct EntryStream<'s, 'a> {
    session: &'s mut Session<'a>,
    batch: Vec<ftpsh_core::protocol::Entry>,
    size: usize,
}

impl<'s, 'a> EntryStream<'s, 'a> {
    fn new(session: &'s mut Session<'a>) -> Self {
        EntryStream {
            session,
            batch: Vec::new(),
            size: 4,
        }
    }

    fn flush(&mut self) -> Result<(), files::Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.size = 4;
        self.session
            .reply(Reply::Entries(batch))
            .map_err(|Gone| files::Stop::Gone)
    }

    /// Sends what is gathered if the listing ended well; the caller then
    /// sends `Ok` (or, for a listing that stopped, `Error` or `Cancelled`
    /// after the entries already sent: the client drops the partial listing).
    fn end(mut self, result: Result<(), files::Stop>) -> Result<(), files::Stop> {
        result?;
        self.flush()
    }
}

impl files::Listing for EntryStream<'_, '_> {
    fn check(&mut self) -> Result<(), files::Stop> {
        self.session.check()
    }

    fn entry(&mut self, entry: ftpsh_core::protocol::Entry) -> Result<(), files::Stop> {
        let len = ftpsh_core::protocol::message::entry_len(&entry);
        if self.size + len > STREAM_BATCH_BYTES && !self.batch.is_empty() {
            self.flush()?;
        }
        self.size += len;
        self.batch.push(entry);
        Ok(())
    }
}
