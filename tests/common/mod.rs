//! Shared by the end-to-end tests: start the real `ftpsh-server` on a loopback
//! port, drive the real `ftpsh` binary, make test data.
// Not every test module uses every helper.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

pub mod hostile;

pub const TOKEN: &str = "test-token-0123456789";

/// Path of one of this package's binaries.
pub fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// A running `ftpsh-server`, killed on drop.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT` as printed on the `listening on` line.
    pub addr: String,
    pub root: PathBuf,
    pub token: Option<String>,
    /// The server's stderr (its log), for tests that look at it.
    pub log: PathBuf,
    _logdir: tempfile::TempDir,
}

/// Options for [`Server`].
pub struct ServerBuilder {
    root: PathBuf,
    token: Option<String>,
    args: Vec<String>,
    listen: String,
    /// A command the server runs under (`unshare -U`), if any.
    wrapper: Vec<String>,
}

impl ServerBuilder {
    pub fn new(root: &Path) -> Self {
        ServerBuilder {
            root: root.to_path_buf(),
            token: Some(TOKEN.to_string()),
            args: Vec::new(),
            listen: "127.0.0.1:0".into(),
            wrapper: Vec::new(),
        }
    }
    /// Runs the server under `argv` (`["unshare", "-U"]`, for example).
    pub fn wrapped(mut self, argv: &[&str]) -> Self {
        self.wrapper = argv.iter().map(|a| a.to_string()).collect();
        self
    }
    pub fn no_token(mut self) -> Self {
        self.token = None;
        self
    }
    pub fn token(mut self, t: &str) -> Self {
        self.token = Some(t.to_string());
        self
    }
    pub fn allow_exec(self) -> Self {
        self.arg("--allow-exec")
    }
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_string();
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn start(self) -> Server {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("server.log");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("ftpsh-server"));
                c
            }
            None => Command::new(bin("ftpsh-server")),
        };
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--listen")
            .arg(&self.listen)
            .args(&self.args);
        // In the environment, as the README advises: `--token` draws a warning.
        match &self.token {
            Some(t) => cmd.env("FTPSH_TOKEN", t),
            None => cmd.env_remove("FTPSH_TOKEN"),
        };
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("start ftpsh-server");
        let addr = read_listening_line(&mut child);
        Server {
            child,
            addr,
            root: self.root,
            token: self.token,
            log,
            _logdir: logdir,
        }
    }
}

/// Reads the `listening on ADDR` line (with a generous deadline).
fn read_listening_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the server never blocks on a full pipe.
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server printed its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    addr.to_string()
}

impl Server {
    /// A server with a token, serving `root`.
    pub fn start(root: &Path) -> Server {
        ServerBuilder::new(root).start()
    }

    /// `ftpsh ADDR --norc` with the token in the environment, no color, run in
    /// `local` (the client's working directory).
    pub fn client(&self, local: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin("ftpsh"));
        cmd.arg(&self.addr).arg("--norc").current_dir(local);
        cmd.env("NO_COLOR", "1")
            .env_remove("FTPSH_RC")
            .env("HOME", local);
        match &self.token {
            Some(t) => cmd.env("FTPSH_TOKEN", t),
            None => cmd.env_remove("FTPSH_TOKEN"),
        };
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// The port number.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the server process is alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn md5_file(path: &Path) -> String {
    md5_hex(&std::fs::read(path).unwrap())
}

/// Waits until `cond` holds or the deadline passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Output of a finished command as text.
pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Like [`Server::client`], but a plain `std::process::Command`, for tests that
/// must signal or kill the client while it runs.
pub fn client_process(server: &Server, local: &Path) -> Command {
    let mut cmd = Command::new(bin("ftpsh"));
    cmd.arg(&server.addr).arg("--norc").current_dir(local);
    cmd.env("NO_COLOR", "1")
        .env_remove("FTPSH_RC")
        .env("HOME", local);
    match &server.token {
        Some(t) => cmd.env("FTPSH_TOKEN", t),
        None => cmd.env_remove("FTPSH_TOKEN"),
    };
    cmd.stdin(Stdio::null());
    cmd
}

/// The bytes of one encoded request, for a raw peer to write as it likes.
pub fn encoded(request: ftpsh_core::protocol::Request) -> Vec<u8> {
    let mut out = Vec::new();
    request.write_to(&mut out).unwrap();
    out
}

/// A raw TCP connection to `server`. With `handshake`, the greeting and token are
/// exchanged and the server's `Ok` read, so the connection is a served session.
pub fn raw_connection(server: &Server, handshake: bool) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    if handshake {
        let mut hello = ftpsh_core::protocol::handshake::greeting().to_vec();
        let token = server.token.clone().unwrap_or_default();
        // Auth frame: kind 0x01, u32 length, then the token as a u32-prefixed string.
        let mut payload = (token.len() as u32).to_be_bytes().to_vec();
        payload.extend_from_slice(token.as_bytes());
        hello.push(0x01);
        hello.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        hello.extend_from_slice(&payload);
        s.write_all(&hello).unwrap();
        let mut greeting = [0u8; 7];
        s.read_exact(&mut greeting).expect("server greeting");
        assert_eq!(&greeting[..5], b"FTPSH");
        let mut header = [0u8; 5];
        s.read_exact(&mut header).expect("handshake reply");
        assert_eq!(header, [0x80, 0, 0, 0, 0], "expected Ok after the token");
    }
    s
}

/// True while process `pid` exists and is not a zombie (a zombie has stopped
/// running; in a container nobody may reap it).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .chars()
                .next();
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// How long the helpers below wait for something that should take a second.
const DEADLINE: Duration = Duration::from_secs(20);

/// Reads until the peer closes the socket (EOF or reset); false if it is still
/// open at the deadline.
pub fn wait_closed(sock: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// CPU seconds (user + system) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// `echo` through a fresh client: proof that the server still serves.
pub fn assert_serves(server: &Server, local: &Path) {
    let out = server
        .client(local)
        .args(["-c", "echo still serving"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "still serving\n", "{}", stderr_of(&out));
    assert!(out.status.success());
}

/// Waits for the PID a remote command wrote into `file`.
pub fn wait_for_pid(file: &Path) -> u32 {
    let mut pid = None;
    let found = wait_until(DEADLINE, || {
        pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    assert!(found, "the remote command never wrote {}", file.display());
    pid.unwrap()
}

/// A named pipe at `path`.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Retries `echo hi` until the server admits a client (a place freed up); any
/// refusal meanwhile must be the busy message, with exit status 3.
pub fn wait_admitted(server: &Server, local: &Path) -> bool {
    for _ in 0..100 {
        let out = server
            .client(local)
            .args(["-c", "echo hi"])
            .output()
            .unwrap();
        if out.status.success() {
            assert_eq!(stdout_of(&out), "hi\n");
            return true;
        }
        assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("busy"), "{}", stderr_of(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Streams one upload of a batch on a raw connection: `Put` without waiting,
/// its data, `PutEnd` with `md5` (the data's [`digest`] unless a test wants a
/// mismatch).
pub fn stream_put(
    sock: &mut std::net::TcpStream,
    path: &str,
    data: &[u8],
    md5: [u8; 16],
    more: bool,
) {
    use ftpsh_core::protocol::Request;
    Request::Put {
        path: path.into(),
        size: data.len() as u64,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more,
    }
    .write_to(sock)
    .unwrap();
    if !data.is_empty() {
        Request::Data(data.to_vec()).write_to(sock).unwrap();
    }
    Request::PutEnd { md5 }.write_to(sock).unwrap();
}

/// The MD5 of `data`, as bytes.
pub fn digest(data: &[u8]) -> [u8; 16] {
    let hex = md5_hex(data);
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}
