//! `ftpsh-server`: a thread per connection, std only.
//!
//! [`Server::bind`] opens the listener (so the caller can print the real address)
//! and [`Server::run`] accepts forever. Each connection gets a session thread
//! that reads requests between them and answers them, and, while a long request
//! runs (a download, a command, an upload's data), a reader thread that reads
//! ahead and watches for `Cancel`; whichever reads applies the idle and stall
//! timeouts. See [`session`]. Nothing a client sends can reach
//! another client's threads, and every failure ends only its own connection.
//!
//! Two limits, because anyone who can connect can open sockets but only a
//! client with the token can start a session: `max_connections` counts
//! authenticated sessions only (a place is taken when the token checks out, and
//! a client over it is told the server is busy), while `max_handshakes` bounds
//! the connections still in their handshake. When that cap is reached the
//! oldest of them is dropped to make room, so peers that never authenticate
//! cannot lock a real client out: they would have to open `max_handshakes`
//! connections in the milliseconds a real handshake takes.

mod digests;
mod exec;
mod files;
mod guard;
/// Wrong tokens from all addresses together that cost nobody a wait.
pub use guard::FREE_FAILURES_ALL;
pub mod jail;
mod ops;
mod session;
mod stdio;
mod transfer;

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ftpsh_core::net::{Address, Listener, Stream};

/// The shortest token accepted where guessing it would matter: off loopback,
/// and wherever `exec` is allowed.
pub const MIN_TOKEN_LEN: usize = 16;

/// How the server behaves; the flags of `ftpsh-server`.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub listen: Address,
    /// Clients must present this token; `None` admits anyone who can connect.
    pub token: Option<String>,
    pub allow_exec: bool,
    /// Most authenticated sessions served at once; more are refused with a message.
    pub max_connections: usize,
    /// Most connections in their handshake at once; a new one beyond it
    /// replaces the oldest.
    pub max_handshakes: usize,
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
    /// Test hook: send a wrong MD5 after every download. Debug builds only, so
    /// that no release build can be made to lie about a digest.
    #[cfg(debug_assertions)]
    pub corrupt_digests: bool,
    /// Users besides the server's own admitted on a Unix socket (checked with
    /// `SO_PEERCRED`). With any, the socket file is made connectable by all
    /// (0666) and this check is what keeps others out.
    pub unix_allow_uids: Vec<u32>,
    /// TLS on every connection, with this identity (TCP listeners only).
    pub tls: Option<Arc<ftpsh_core::tls::Identity>>,
    /// Keep remembered digests in this file too, so that they survive a
    /// restart (`--digest-cache`; see [`digests`]). Must be outside the root.
    pub digest_cache: Option<PathBuf>,
    /// `digest_cache` is a default, not the user's choice (`--stdio`): a file
    /// that cannot be used means memory only, silently, and it may lie under
    /// the root (over ssh the client is the user, who has a shell anyway).
    pub digest_cache_best_effort: bool,
}

impl Config {
    pub fn new(root: &Path, listen: Address) -> Config {
        Config {
            root: root.to_path_buf(),
            listen,
            token: None,
            allow_exec: false,
            max_connections: 256,
            max_handshakes: 64,
            idle_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(30),
            exec_timeout: None,
            exec_max_output: None,
            log: true,
            #[cfg(debug_assertions)]
            corrupt_digests: false,
            unix_allow_uids: Vec::new(),
            tls: None,
            digest_cache: None,
            digest_cache_best_effort: false,
        }
    }

    /// Settings that must not go together; [`Server::bind`] refuses them.
    ///
    /// `exec` is not jailed: it runs any command as the server's user. Without
    /// a token that is a shell for anyone who can connect, so it is allowed
    /// only on a Unix socket that admits no other user than the server's own
    /// (who could run the commands anyway).
    pub fn check(&self) -> Result<(), String> {
        if !self.allow_exec {
            return Ok(());
        }
        if let Some(token) = &self.token {
            let len = token.chars().count();
            if len < MIN_TOKEN_LEN {
                return Err(format!(
                    "refusing --allow-exec with a token of {len} characters: exec is a shell \
                     as this server's user, and a short token can be guessed (from many \
                     addresses, even on loopback); use at least {MIN_TOKEN_LEN}, e.g. \
                     `openssl rand -hex 16`"
                ));
            }
            return Ok(());
        }
        let why = match &self.listen {
            Address::Unix(_) if self.others_admitted() => {
                "it also admits other users (--unix-allow-uid)"
            }
            Address::Unix(_) => return Ok(()),
            Address::Tcp(_) | Address::Ssh(_) => {
                "every local user (or anyone who can reach it) could connect"
            }
        };
        Err(format!(
            "refusing --allow-exec on {} without a token: exec runs any command as this \
             server's user, outside --root, and {why}; set FTPSH_TOKEN (or --token-file \
             FILE), or serve on unix:PATH, which only your user may use",
            self.listen
        ))
    }

    /// Whether a Unix socket admits users other than the server's own.
    fn others_admitted(&self) -> bool {
        let me = ftpsh_core::sys::effective_uid();
        self.unix_allow_uids.iter().any(|&uid| uid != me)
    }

    /// Whether a Unix socket's peer with this uid may use it.
    pub(crate) fn uid_admitted(&self, uid: u32) -> bool {
        uid == ftpsh_core::sys::effective_uid() || self.unix_allow_uids.contains(&uid)
    }
}

/// Descriptors that requests keep open for long, counted across every
/// session: the levels of a walk below its top (each holds its directory
/// while the walk is below it, and a walk waits, holding them, while its peer
/// does not read) and the uploads held in a batch (each holds its partial
/// file and its directory until the batch ends). Each session may hold a few
/// hundred, and there may be hundreds of sessions: together they could use
/// up the process's descriptors, and then no connection is accepted and no
/// file opened, for anyone. They get half of the process's limit between
/// them; what would take more is refused or shortened instead (a walk names
/// the directory it could not go into, a batch ends early).
pub(crate) struct Handles {
    left: AtomicUsize,
}

/// One descriptor of [`Handles`], given back when dropped.
pub(crate) struct Handle<'a>(&'a Handles);

impl Handles {
    pub fn new(count: usize) -> Handles {
        Handles {
            left: AtomicUsize::new(count),
        }
    }

    /// Half of this process's descriptor limit.
    fn for_this_process() -> Handles {
        let limit = ftpsh_core::sys::descriptor_limit().unwrap_or(1024);
        Handles::new(usize::try_from(limit / 2).unwrap_or(usize::MAX))
    }

    /// One descriptor, if the budget has one left.
    pub fn take(&self) -> Option<Handle<'_>> {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| Handle(self))
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        self.0.left.fetch_add(1, Ordering::SeqCst);
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub config: Config,
    pub jail: jail::Jail,
    /// Authenticated sessions being served (see [`Shared::take_slot`]).
    active: AtomicUsize,
    handshakes: Handshakes,
    /// Partial files of uploads in progress: a second upload of the same name
    /// writes elsewhere, so two uploads never interleave in one file.
    pub uploads: Mutex<HashSet<transfer::UploadKey>>,
    pub next_id: AtomicUsize,
    /// Random, per process: part of private partial names, which must not
    /// meet those of another server over the same tree (a restarted
    /// container's server has the same process id as the one before).
    pub partial_tag: String,
    /// Digests of files already read, for repeated downloads.
    pub digests: digests::DigestCache,
    /// Failed tokens and refusals per address: backoff and log limits.
    pub guard: guard::Guard,
    /// Descriptors walks and batches may keep open, together.
    pub handles: Handles,
}

/// The digest cache file `path` that is a default, not the user's choice
/// (`--stdio`'s, under `~/.cache`): `None` when it cannot be used. It may lie
/// under the served root (the home directory), where a client can make links:
/// its directory is then made and opened through the jail, so that no link
/// leads it out of the root (a link to `~/.cache` that a client moved so that
/// its relative target now points outside, for one). Elsewhere no client
/// reaches it.
fn default_digest_cache(
    path: &Path,
    jail: &jail::Jail,
    root: &Path,
) -> Option<digests::DigestCache> {
    use ftpsh_core::sys::beneath::{Mode, OFlags};
    use std::os::unix::fs::DirBuilderExt;
    let name = path.file_name()?;
    let dir = path.parent()?;
    let served = std::fs::canonicalize(root).ok()?;
    // The deepest directory on the way that is the served root: links below
    // it are the client's to make, so the rest goes through the jail.
    let beneath = dir.ancestors().find_map(|a| {
        (std::fs::canonicalize(a).ok()? == served)
            .then(|| dir.strip_prefix(a).ok())
            .flatten()
    });
    let fd = match beneath {
        Some(rel) => {
            let root = jail.root();
            if !rel.as_os_str().is_empty() {
                root.mkdir_all(rel, Mode::from_raw_mode(0o700)).ok()?;
            }
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            };
            root.open(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                .ok()?
        }
        None => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .ok()?;
            std::os::fd::OwnedFd::from(std::fs::File::open(dir).ok()?)
        }
    };
    digests::DigestCache::persistent_at(fd, name, path)
        .ok()
        .map(|(cache, _)| cache)
}

impl Shared {
    fn new(config: Config) -> anyhow::Result<Shared> {
        use anyhow::Context as _;
        let jail = jail::Jail::new(&config.root)
            .with_context(|| format!("cannot serve {}", config.root.display()))?;
        let handshakes = Handshakes::new(config.max_handshakes);
        let digests = match &config.digest_cache {
            None => digests::DigestCache::default(),
            Some(path) if config.digest_cache_best_effort => {
                default_digest_cache(path, &jail, &config.root).unwrap_or_default()
            }
            Some(path) => {
                let inside = |p: &Path| {
                    let root = std::fs::canonicalize(&config.root).ok()?;
                    let dir = std::fs::canonicalize(p.parent()?.join(".")).ok()?;
                    Some(dir.starts_with(root))
                };
                if inside(path) != Some(false) {
                    anyhow::bail!(
                        "--digest-cache {}: must be in an existing directory outside the served root",
                        path.display()
                    );
                }
                let (cache, note) = digests::DigestCache::persistent(path)
                    .with_context(|| format!("--digest-cache {}", path.display()))?;
                if let (Some(note), true) = (note, config.log) {
                    let _ = writeln!(std::io::stderr().lock(), "ftpsh-server: {note}");
                }
                cache
            }
        };
        Ok(Shared {
            config,
            jail,
            active: AtomicUsize::new(0),
            handshakes,
            uploads: Mutex::new(HashSet::new()),
            next_id: AtomicUsize::new(1),
            partial_tag: {
                use std::hash::{BuildHasher, Hasher};
                // std's hasher keys come from the OS's randomness.
                let random = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                format!("{:08x}", random as u32)
            },
            digests,
            guard: Default::default(),
            handles: Handles::for_this_process(),
        })
    }

    pub fn log(&self, peer: &str, msg: impl std::fmt::Display) {
        if self.config.log {
            // Messages quote paths and commands that clients sent.
            let msg = msg.to_string();
            let msg = ftpsh_core::display::escape(&msg);
            // Never `eprintln!`: it panics when stderr is closed (a log piped
            // into `head`), and a log line is not worth a session or the server.
            let _ = writeln!(std::io::stderr().lock(), "ftpsh-server: {peer}: {msg}");
        }
    }

    /// A session's place under `max_connections`, if one is free.
    pub fn take_slot(&self) -> Option<Slot<'_>> {
        let max = self.config.max_connections;
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }
}

pub use stdio::serve_stdio;

/// A bound server, ready to accept.
pub struct Server {
    listener: Listener,
    shared: Arc<Shared>,
}

impl Server {
    /// Checks the configuration and binds the listening socket.
    pub fn bind(config: Config) -> anyhow::Result<Server> {
        use anyhow::Context as _;
        config.check().map_err(anyhow::Error::msg)?;
        let mode = if config.others_admitted() {
            0o666
        } else {
            ftpsh_core::net::OWNER_ONLY
        };
        let shared = Shared::new(config)?;
        let listener = Listener::bind_with_mode(&shared.config.listen, mode)
            .with_context(|| format!("cannot listen on {}", shared.config.listen))?;
        Ok(Server {
            listener,
            shared: Arc::new(shared),
        })
    }

    /// The real address, e.g. `127.0.0.1:40123` or `unix:/run/ftpsh.sock`.
    pub fn local_addr(&self) -> String {
        self.listener.local_addr().unwrap_or_else(|_| "?".into())
    }

    /// The socket file of a Unix listener: removed when the server is
    /// dropped, and by whoever ends the process (see `ftpsh-server`).
    pub fn socket_file(&self) -> Option<ftpsh_core::net::SocketFile> {
        self.listener.socket_file().cloned()
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
        let id = match self.shared.handshakes.enter(&stream) {
            Ok(id) => id,
            Err(why) => {
                self.shared.log(&stream.peer(), format!("refused: {why}"));
                return;
            }
        };
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("ftpsh-conn".into())
            .spawn(move || {
                // Given up even if the session panics: a bug that kills one
                // connection must not eat a place forever.
                let handshake = Handshake {
                    shared: &shared,
                    id,
                };
                let peer = stream.peer();
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    session::serve(&shared, stream, handshake);
                }));
                if served.is_err() {
                    shared.log(
                        &peer,
                        "internal error: the session panicked; connection closed",
                    );
                }
            });
        if let Err(e) = spawned {
            self.shared.handshakes.leave(id);
            self.shared
                .log("accept", format!("cannot start a thread: {e}"));
        }
    }
}

/// An authenticated session's place under `max_connections`.
pub(crate) struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A timeout as the log and the client read it: `30 s`, `1.5 s`, `0.25 s`
/// (the command line takes milliseconds too).
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// How long the acceptor waits for an evicted handshake's thread to end. It
/// only has to notice its shut socket, so this is a bound for a starved
/// machine, not a delay anyone sees.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The connections still in their handshake, oldest first. Each entry keeps a
/// clone of its socket so that the acceptor can shut it to make room.
struct Handshakes {
    max: usize,
    table: Mutex<HandshakeTable>,
    /// Signalled whenever a handshake leaves the table.
    left: Condvar,
}

#[derive(Default)]
struct HandshakeTable {
    next_id: u64,
    /// By arrival; `None` once the acceptor has shut the socket to evict it.
    live: BTreeMap<u64, Option<Stream>>,
}

impl Handshakes {
    fn new(max: usize) -> Handshakes {
        Handshakes {
            max: max.max(1),
            table: Mutex::default(),
            left: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HandshakeTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection's handshake; at the cap, the oldest one is
    /// evicted first. The acceptor waits for the evicted one to leave rather
    /// than start another beside it, so that a flood costs at most the cap in
    /// threads.
    fn enter(&self, stream: &Stream) -> Result<u64, String> {
        let clone = stream
            .try_clone()
            .map_err(|e| format!("cannot clone socket: {e}"))?;
        let mut table = self.lock();
        if table.live.len() >= self.max {
            if let Some(oldest) = table.live.values_mut().find_map(Option::take) {
                oldest.shutdown();
            }
            table = self
                .left
                .wait_timeout_while(table, EVICTION_WAIT, |t| t.live.len() >= self.max)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if table.live.len() >= self.max {
                return Err(format!("{} handshakes already in progress", self.max));
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        table.live.insert(id, Some(clone));
        Ok(id)
    }

    /// Removes a handshake; false if it had been evicted (or already left).
    fn leave(&self, id: u64) -> bool {
        let removed = self.lock().live.remove(&id);
        if removed.is_some() {
            self.left.notify_all();
        }
        matches!(removed, Some(Some(_)))
    }

    fn evicted(&self, id: u64) -> bool {
        matches!(self.lock().live.get(&id), Some(None))
    }
}

/// A connection's place among the handshakes in progress, given up when it
/// becomes a session or ends (even by a panic).
pub(crate) struct Handshake<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Handshake<'_> {
    /// Leaves the handshakes for a session; false if it was evicted meanwhile
    /// (its socket is shut then, so the session could not go on anyway).
    pub fn finish(self) -> bool {
        self.shared.handshakes.leave(self.id)
    }

    /// True if a newer connection took this one's place.
    pub fn evicted(&self) -> bool {
        self.shared.handshakes.evicted(self.id)
    }
}

impl Drop for Handshake<'_> {
    fn drop(&mut self) {
        self.shared.handshakes.leave(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_in_seconds() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
        assert_eq!(seconds(Duration::from_micros(100)), "0 s");
    }
}
