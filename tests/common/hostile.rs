//! A scripted hostile server: it speaks the real ftpsh protocol
//! (`ftpsh_core::protocol`), accepts any token, and answers each request as the
//! test's script says, lies and misbehaviour included. Tests drive the real
//! `ftpsh` binary against it and check what the client let through.
//!
//! ```ignore
//! let server = Hostile::start(|peer, event| match event {
//!     Event::Request(Request::Echo { .. }) => peer.text("hi\x1b[2J"),
//!     Event::Request(_) => peer.error("not scripted"),
//!     Event::Connected => {}
//! });
//! let run = run_client(server.command(home.path()).args(["-c", "echo x"]), EVENT);
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftpsh_core::hashing::Md5;
use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{Entry, EntryKind, FrameReader, Reply, Request, DATA_CHUNK};

use super::bin;

/// What the script is told about.
#[derive(Debug)]
pub enum Event {
    /// The handshake is done (the client's `Ok` is queued, not yet sent: what
    /// the script sends now goes out in the same write).
    Connected,
    /// A request from the client.
    Request(Request),
}

type Script = Box<dyn FnMut(&mut Peer, Event) + Send>;

/// One connection as the script sees it. Replies are buffered and sent when
/// the script returns (or on [`Peer::flush`]), so that what one step sends
/// arrives in one piece.
pub struct Peer {
    stream: TcpStream,
    out: Vec<u8>,
    broken: bool,
}

impl Peer {
    /// Queues a reply; flushes once a good deal is queued.
    pub fn send(&mut self, reply: Reply) {
        let _ = reply.write_to(&mut self.out);
        if self.out.len() >= 1 << 20 {
            self.flush();
        }
    }

    /// Sends what is queued. After a failed write (the client left) nothing
    /// more is sent; see [`Peer::alive`].
    pub fn flush(&mut self) {
        if !self.broken && !self.out.is_empty() && self.stream.write_all(&self.out).is_err() {
            self.broken = true;
        }
        self.out.clear();
    }

    /// False once the client stopped taking what is sent.
    pub fn alive(&self) -> bool {
        !self.broken
    }

    pub fn ok(&mut self) {
        self.send(Reply::Ok);
    }

    pub fn error(&mut self, message: &str) {
        self.send(Reply::Error { message });
    }

    pub fn text(&mut self, text: &str) {
        self.send(Reply::Text { text });
    }

    /// A listing: the entries in frames under the limit, then `Ok`.
    pub fn entries(&mut self, entries: Vec<Entry>) {
        for chunk in entries.chunks(1000) {
            self.send(Reply::Entries(chunk.to_vec()));
        }
        self.ok();
    }

    /// An honest download of `data`: announced, sent, digest.
    pub fn file(&mut self, data: &[u8]) {
        self.send(Reply::FileStart {
            size: data.len() as u64,
            offset: 0,
            mode: 0o644,
            mtime: 0,
        });
        for chunk in data.chunks(DATA_CHUNK) {
            self.send(Reply::Data(chunk));
        }
        self.send(Reply::FileEnd { md5: md5(data) });
    }

    /// Sends what is queued, then closes the connection (a server that
    /// restarts, or drops every client at once).
    pub fn close(&mut self) {
        self.flush();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.broken = true;
    }

    /// Says nothing more: flushes, then waits until the client leaves (at
    /// most two minutes).
    pub fn hang(&mut self) {
        self.flush();
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(120)));
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        self.broken = true;
    }
}

/// The MD5 of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(data);
    h.finalize()
}

/// An entry of kind `kind`.
pub fn entry(name: &str, kind: EntryKind, size: u64) -> Entry {
    Entry {
        name: name.to_string(),
        kind,
        size,
        mtime: 1_700_000_000,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        target: String::new(),
    }
}

pub fn file_entry(name: &str, size: u64) -> Entry {
    entry(name, EntryKind::File, size)
}

pub fn dir_entry(name: &str) -> Entry {
    entry(name, EntryKind::Dir, 4096)
}

/// A symbolic link to `target`.
pub fn link_entry(name: &str, target: &str) -> Entry {
    let mut e = entry(name, EntryKind::Symlink, 0);
    e.target = target.to_string();
    e
}

/// A scripted server on `127.0.0.1:0`, serving every connection until the
/// test process ends.
pub struct Hostile {
    pub addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Hostile {
    pub fn start(script: impl FnMut(&mut Peer, Event) + Send + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hostile server");
        let addr = listener.local_addr().unwrap().to_string();
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let script = Arc::clone(&script);
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = serve(stream, &script, &log);
                });
            }
        });
        Hostile { addr, requests }
    }

    /// Every request received so far, on every connection, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// `ftpsh ADDR --norc` run in `home`, with `HOME` set to it (so that a
    /// planted `~/.ftpshrc` or `~/.ssh` would land there), no color, any token.
    pub fn command(&self, home: &Path) -> Command {
        let mut cmd = Command::new(bin("ftpsh"));
        cmd.arg(&self.addr).arg("--norc").current_dir(home);
        cmd.env("NO_COLOR", "1")
            .env_remove("FTPSH_RC")
            .env_remove("FTPSH_TIMEOUT")
            .env("HOME", home)
            .env("FTPSH_TOKEN", "any-token-will-do");
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// The handshake (any token is accepted), then requests until the client
/// leaves.
fn serve(
    mut stream: TcpStream,
    script: &Mutex<Script>,
    log: &Mutex<Vec<Request>>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    handshake::read_greeting(&mut stream).map_err(io::Error::other)?;
    let mut frames = FrameReader::new();
    let auth = frames.read(&mut stream).map_err(io::Error::other)?;
    match Request::decode(auth.kind, auth.payload) {
        Ok(Request::Auth { .. }) => {}
        other => return Err(io::Error::other(format!("expected Auth, got {other:?}"))),
    }
    let mut peer = Peer {
        stream: stream.try_clone()?,
        out: Vec::new(),
        broken: false,
    };
    peer.out.extend_from_slice(&handshake::greeting());
    peer.send(Reply::Ok);
    (script.lock().unwrap())(&mut peer, Event::Connected);
    peer.flush();
    loop {
        if !peer.alive() {
            return Ok(());
        }
        let frame = match frames.read(&mut stream) {
            Ok(f) => f,
            Err(_) => return Ok(()),
        };
        let request = Request::decode(frame.kind, frame.payload).map_err(io::Error::other)?;
        log.lock().unwrap().push(request.clone());
        (script.lock().unwrap())(&mut peer, Event::Request(request));
        peer.flush();
    }
}

/// How a client run ended.
pub struct Run {
    /// `None` when it had to be killed at the deadline.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    /// The client's peak resident memory, in bytes (`ru_maxrss` of `wait4`).
    pub max_rss: u64,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` to its end, killing it at `deadline`; stdout and stderr go to
/// files, so a client that prints a lot cannot block on a full pipe.
pub fn run_client(cmd: &mut Command, deadline: Duration) -> Run {
    run(cmd, deadline, true)
}

/// [`run_client`] for a command whose stdout the caller has set (a terminal).
pub fn run_client_own_stdout(cmd: &mut Command, deadline: Duration) -> Run {
    run(cmd, deadline, false)
}

// The child is reaped by `wait4` (for its peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(cmd: &mut Command, deadline: Duration, capture_stdout: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    if capture_stdout {
        cmd.stdout(std::fs::File::create(&out_path).unwrap());
    }
    cmd.stderr(std::fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start ftpsh");
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 writes into the two values we own.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        if r == pid {
            break (status, rusage);
        }
        assert!(r == 0, "wait4: {}", io::Error::last_os_error());
        if start.elapsed() > deadline && !killed {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let code = if killed || !libc::WIFEXITED(status) {
        None
    } else {
        Some(libc::WEXITSTATUS(status))
    };
    Run {
        code,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed,
        max_rss: rusage.ru_maxrss.max(0) as u64 * 1024,
    }
}

/// Every path under `dir` (relative, sorted), links not followed.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(items) = std::fs::read_dir(dir) else {
            return;
        };
        for item in items.flatten() {
            let path = item.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            out.push(if is_dir { format!("{rel}/") } else { rel });
            if is_dir {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
