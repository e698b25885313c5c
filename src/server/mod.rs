//! `ftpsh-server`: a thread per connection, std only.
//!
//! [`Server::bind`] opens the listener (so the caller can print the real address)
//! and [`Server::run`] accepts forever. Each connection gets a reader thread that
//! turns bytes into requests (and owns the idle and stall timeouts) and a session
//! thread that answers them; see [`session`]. Nothing a client sends can reach
//! another client's threads, and every failure ends only its own connection.

mod digests;
mod exec;
mod files;
pub mod jail;
mod session;
mod transfer;

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::net::{Address, Listener, Stream};
use crate::protocol::{handshake, Reply};

/// How the server behaves; the flags of `ftpsh-server`.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub listen: Address,
    /// Clients must present this token; `None` admits anyone who can connect.
    pub token: Option<String>,
    pub allow_exec: bool,
    /// Most connections served at once; more are refused with a message.
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A peer that owes upload data or stops reading for this long is dropped, as
    /// is one that takes longer than this to send a frame it began or to finish
    /// its handshake.
    pub stall_timeout: Duration,
    /// `exec` commands running longer are killed (`None`: no limit).
    pub exec_timeout: Option<Duration>,
    /// `exec` output (stdout and stderr together) past this many bytes is cut
    /// off and the command killed (`None`: no limit).
    pub exec_max_output: Option<u64>,
    /// Log connections and errors to stderr.
    pub log: bool,
    /// Test hook: send a wrong MD5 after every download.
    pub corrupt_digests: bool,
}

impl Config {
    pub fn new(root: &Path, listen: Address) -> Config {
        Config {
            root: root.to_path_buf(),
            listen,
            token: None,
            allow_exec: false,
            max_connections: 256,
            idle_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(30),
            exec_timeout: None,
            exec_max_output: None,
            log: true,
            corrupt_digests: false,
        }
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub config: Config,
    pub jail: jail::Jail,
    pub active: AtomicUsize,
    /// Partial files of uploads in progress: a second upload of the same name
    /// writes elsewhere, so two uploads never interleave in one file.
    pub uploads: Mutex<HashSet<PathBuf>>,
    pub next_id: AtomicUsize,
    /// Digests of files already read, for repeated downloads.
    pub digests: digests::DigestCache,
}

impl Shared {
    pub fn log(&self, peer: &str, msg: impl std::fmt::Display) {
        if self.config.log {
            // Messages quote paths and commands that clients sent.
            let msg = msg.to_string();
            let msg = ftpsh_commands::display::escape(&msg);
            // Never `eprintln!`: it panics when stderr is closed (a log piped
            // into `head`), and a log line is not worth a session or the server.
            let _ = writeln!(std::io::stderr().lock(), "ftpsh-server: {peer}: {msg}");
        }
    }
}

/// A bound server, ready to accept.
pub struct Server {
    listener: Listener,
    shared: Arc<Shared>,
}

impl Server {
    /// Checks the configuration and binds the listening socket.
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        use anyhow::Context as _;
        let jail = jail::Jail::new(&config.root)
            .with_context(|| format!("cannot serve {}", config.root.display()))?;
        let listener = Listener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                jail,
                active: AtomicUsize::new(0),
                uploads: Mutex::new(HashSet::new()),
                next_id: AtomicUsize::new(1),
                digests: Default::default(),
            }),
        })
    }

    /// The real address, e.g. `127.0.0.1:40123` or `unix:/run/ftpsh.sock`.
    pub fn local_addr(&self) -> String {
        self.listener.local_addr().unwrap_or_else(|_| "?".into())
    }

    /// Accepts connections until the process ends.
    pub fn run(self) {
        loop {
            match self.listener.accept() {
                Ok(stream) => self.admit(stream),
                Err(e) => {
                    self.shared.log("accept", format!("failed: {e}"));
                    // Out of descriptors and similar: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn admit(&self, stream: Stream) {
        let shared = Arc::clone(&self.shared);
        let active = shared.active.fetch_add(1, Ordering::SeqCst) + 1;
        let spawned = std::thread::Builder::new()
            .name("ftpsh-conn".into())
            .spawn(move || {
                // Counted out even if the session panics: a bug that kills one
                // connection must not eat a slot of the limit forever.
                let _slot = Slot(&shared);
                let peer = stream.peer();
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if active > shared.config.max_connections {
                        refuse_busy(&shared, stream);
                    } else {
                        session::serve(&shared, stream);
                    }
                }));
                if served.is_err() {
                    shared.log(
                        &peer,
                        "internal error: the session panicked; connection closed",
                    );
                }
            });
        if let Err(e) = spawned {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            self.shared
                .log("accept", format!("cannot start a thread: {e}"));
        }
    }
}

/// One connection's place in the count of active connections.
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tells an extra client why it is turned away, in the protocol it speaks.
fn refuse_busy(shared: &Shared, mut stream: Stream) {
    let max = shared.config.max_connections;
    shared.log(
        &stream.peer(),
        format!("refused: already serving {max} connections"),
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = handshake::send_greeting(&mut stream);
    let msg =
        format!("server busy: it already serves {max} connections (the maximum); try again later");
    let _ = Reply::Error { message: &msg }.write_to(&mut stream);
    // Let the client read the refusal before the close resets the connection.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    let _ = std::io::Read::read(&mut stream, &mut sink);
    stream.shutdown();
}
