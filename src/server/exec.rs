//! `Exec`: run `sh -c` in the session's directory and stream its output.
//!
//! The command runs in its own process group. A pump thread reads its stdout and
//! stderr in chunks and sends each chunk as a frame as soon as it is read, so
//! output of any size passes through a fixed amount of memory and the client sees
//! it as it is produced; a slow client slows the command down (pipe back-pressure)
//! instead of growing a buffer. The session thread meanwhile watches for `Cancel`,
//! a closed connection, a client that stopped reading (a pump write that failed
//! after `--stall-timeout`), the `--exec-timeout` and the `--exec-max-output`,
//! and kills the whole group. It keeps watching until the reply is sent.
//!
//! The command is over when `sh` exits, not when its pipes close: the rest of its
//! group (background jobs) is killed, the output already in the pipes is sent,
//! then `Exit`. A process that left the group (`setsid`, a daemon) may keep the
//! pipes open for as long as it lives; `ssh` waits for it, we do not, so neither
//! the client nor the session's threads depend on it. It is out of the server's
//! reach: it is not killed, and what it writes after `sh` exited is dropped (its
//! writes fail once the server closes the pipes). The pump reads without blocking
//! for that reason: a pipe that never reaches end-of-file cannot pin it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::jail::Jail;
use super::session::{Gone, Served, Session};
use ftpsh_core::net::Stream;
use ftpsh_core::protocol::frame::{is_timeout, write_frame};
use ftpsh_core::protocol::message::{STDERR_KIND, STDOUT_KIND};
use ftpsh_core::protocol::Reply;
use ftpsh_core::sys;

/// Size of one output chunk.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// How often the session and the pump look at what the other one asked.
const TICK: Duration = Duration::from_millis(20);

/// Why the command was stopped early.
enum Stop {
    Cancelled,
    ClientGone,
    TimedOut(Duration),
    TooMuchOutput(u64),
}

/// The `--exec-max-output` allowance.
struct Budget {
    limit: Option<u64>,
    used: AtomicU64,
    exceeded: AtomicBool,
}

impl Budget {
    /// How many of the next `n` bytes may still be sent; fewer than `n` marks the
    /// budget exceeded.
    fn take(&self, n: usize) -> usize {
        let Some(limit) = self.limit else { return n };
        let before = self.used.fetch_add(n as u64, Ordering::SeqCst);
        let allowed = limit.saturating_sub(before).min(n as u64) as usize;
        if allowed < n {
            self.exceeded.store(true, Ordering::SeqCst);
        }
        allowed
    }

    fn exceeded(&self) -> Option<u64> {
        self.limit.filter(|_| self.exceeded.load(Ordering::SeqCst))
    }
}

/// What the session and the pump tell each other.
#[derive(Default)]
struct Signals {
    /// `sh` is reaped and its group killed: send what the pipes hold, then end.
    drain: AtomicBool,
    /// End now, sending nothing more.
    stop: AtomicBool,
    /// A write to the client failed: the frame stream is broken, the client is
    /// gone or has not read for the stall timeout.
    write_failed: AtomicBool,
}

/// `sh`, the leader of the command's process group.
struct Group {
    child: Child,
    /// Set once `sh` is reaped.
    status: Option<io::Result<ExitStatus>>,
}

impl Group {
    /// Kills the whole group, only while `sh` is unreaped: until then its pid,
    /// which is the group's id, cannot be reused, so the signal cannot reach an
    /// unrelated group even when no other member is left.
    fn kill(&self) {
        if self.status.is_none() {
            // The group we created with process_group(0): its id is sh's pid.
            sys::kill_process_group(self.child.id());
        }
    }

    /// True once `sh` is reaped. When it has exited, the rest of its group is
    /// killed first (background jobs would hold the pipes open and live on),
    /// while the zombie still reserves the group's id.
    fn reap(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        match sys::exited_unreaped(self.child.id()) {
            Ok(false) => return false,
            Ok(true) => {
                self.kill();
                self.status = Some(self.child.wait());
            }
            // Cannot look without reaping: reap, and never signal the group again.
            Err(_) => match self.child.try_wait() {
                Ok(None) => return false,
                Ok(Some(st)) => self.status = Some(Ok(st)),
                Err(e) => self.status = Some(Err(e)),
            },
        }
        true
    }
}

pub fn run(s: &mut Session, command: &str) -> Served {
    if !s.shared.config.allow_exec {
        return s.error("exec is disabled on this server (start ftpsh-server with --allow-exec)");
    }
    let jail = &s.shared.jail;
    let r = match jail.resolve(&s.cwd, ".") {
        Ok(r) => r,
        Err(e) => return s.error(e),
    };
    // Held until the command is spawned: its directory is this handle's.
    let (_dir_handle, dir) = match super::jail::exec_dir(jail, &r) {
        Ok(d) => d,
        Err(e) => return s.error(Jail::error(&r, &e)),
    };
    // Before the spawn: once the command runs, every way out must reap it.
    let out = s.writer.try_clone()?;
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return s.error(format!("cannot start sh: {e}")),
    };
    s.shared.log(&s.peer, format!("exec: {command}"));
    let stdout = Pipe::new(child.stdout.take().expect("piped").into(), STDOUT_KIND);
    let stderr = Pipe::new(child.stderr.take().expect("piped").into(), STDERR_KIND);
    let mut group = Group {
        child,
        status: None,
    };
    let (stdout, stderr) = match (stdout, stderr) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            group.kill();
            let _ = group.child.wait();
            return s.error(format!("cannot read the command's output: {e}"));
        }
    };
    let exec_timeout = s.shared.config.exec_timeout;
    let budget = Budget {
        limit: s.shared.config.exec_max_output,
        used: AtomicU64::new(0),
        exceeded: AtomicBool::new(false),
    };
    let signals = Signals::default();
    let started = Instant::now();

    let (mut stop, pumped) = std::thread::scope(|scope| {
        let pump = scope.spawn(|| pump([stdout, stderr], out, &budget, &signals));
        let mut stop = None;
        loop {
            if group.reap() {
                signals.drain.store(true, Ordering::SeqCst);
                if pump.is_finished() {
                    break;
                }
            }
            let gone = matches!(stop, Some(Stop::ClientGone));
            let event = if gone {
                // The channel may be closed: receiving would not wait.
                std::thread::sleep(TICK);
                None
            } else if signals.write_failed.load(Ordering::SeqCst) {
                Some(Stop::ClientGone)
            } else {
                // Requests pipelined early are answered after the command.
                match s.cancel_within(TICK) {
                    Ok(true) => Some(Stop::Cancelled),
                    Ok(false) => None,
                    Err(Gone) => Some(Stop::ClientGone),
                }
                .or_else(|| budget.exceeded().map(Stop::TooMuchOutput))
                .or_else(|| {
                    exec_timeout
                        .filter(|limit| started.elapsed() > *limit)
                        .map(Stop::TimedOut)
                })
            };
            let Some(event) = event else { continue };
            let client_gone = matches!(event, Stop::ClientGone);
            // Only the client going away overrides an earlier reason: then no
            // reply can be sent at all.
            if stop.is_some() && !client_gone {
                continue;
            }
            group.kill();
            signals.stop.store(true, Ordering::SeqCst);
            if client_gone {
                // A pump write still waiting on the dead peer fails at once.
                s.writer.shutdown();
            }
            stop = Some(event);
        }
        (stop, pump.join())
    });
    // The pump may have finished (a failed write, or its cut-off output ending
    // the command) after the session's last look.
    if signals.write_failed.load(Ordering::SeqCst) || pumped.is_err() {
        stop = Some(Stop::ClientGone);
    } else if let (None, Some(limit)) = (&stop, budget.exceeded()) {
        stop = Some(Stop::TooMuchOutput(limit));
    }
    match stop {
        Some(Stop::ClientGone) => {
            let stalled = matches!(&pumped, Ok(Err(e)) if is_timeout(e));
            let why = if stalled {
                format!(
                    "client read nothing for {}",
                    super::seconds(s.shared.config.stall_timeout)
                )
            } else {
                "client gone".to_string()
            };
            s.shared
                .log(&s.peer, format!("exec: {why}, command killed"));
            Err(Gone)
        }
        Some(Stop::Cancelled) => s.reply(Reply::Cancelled),
        Some(Stop::TimedOut(limit)) => s.error(format!(
            "command killed after the server's exec time limit of {}",
            super::seconds(limit)
        )),
        Some(Stop::TooMuchOutput(limit)) => s.error(format!(
            "command killed: its output reached the server's output limit of {limit} bytes"
        )),
        None => match group.status {
            Some(Ok(st)) => match (st.code(), st.signal()) {
                (Some(code), _) => s.reply(Reply::Exit {
                    code,
                    signal: false,
                }),
                (None, Some(sig)) => s.reply(Reply::Exit {
                    code: sig,
                    signal: true,
                }),
                (None, None) => s.error("command ended in an unknown way"),
            },
            _ => s.error("cannot wait for the command"),
        },
    }
}

/// One of the command's output pipes, read without blocking so that a pipe
/// another process keeps open cannot hold the pump.
struct Pipe {
    file: Option<File>,
    kind: u8,
    /// Once `sh` is gone: the bytes still to send, counted when draining began,
    /// so a process outside the group that keeps writing cannot prolong it.
    left: Option<usize>,
}

impl Pipe {
    fn new(fd: OwnedFd, kind: u8) -> io::Result<Pipe> {
        // Only our end: the command's end is its own open file description.
        sys::set_nonblocking(&fd, true)?;
        Ok(Pipe {
            file: Some(File::from(fd)),
            kind,
            left: None,
        })
    }
}

/// Copies the pipes to the client as frames, up to the output budget (then it
/// stops reading and the session kills the command), until both are at their
/// end, drained, or the session says stop. A failed write is returned and
/// flagged at once: the session must not wait for the command to learn that the
/// client is gone.
fn pump(
    mut pipes: [Pipe; 2],
    mut out: Stream,
    budget: &Budget,
    signals: &Signals,
) -> io::Result<()> {
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    loop {
        if signals.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Looked at before the pipes are measured: it is set once `sh` and its
        // group are gone, so the measure covers everything they wrote.
        let draining = signals.drain.load(Ordering::SeqCst);
        for p in pipes.iter_mut() {
            let Some(file) = &p.file else { continue };
            if draining && p.left.is_none() {
                p.left = Some(sys::bytes_buffered(file));
            }
            if p.left == Some(0) {
                p.file = None;
            }
        }
        if pipes.iter().all(|p| p.file.is_none()) {
            return Ok(());
        }
        let fds = [0, 1].map(|i| pipes[i].file.as_ref().map(|f| f.as_fd()));
        let Ok(ready) = sys::poll_readable(fds, TICK) else {
            std::thread::sleep(TICK);
            continue;
        };
        for (p, ready) in pipes.iter_mut().zip(ready) {
            let Some(file) = &mut p.file else { continue };
            if !ready {
                continue;
            }
            let want = p.left.map_or(OUTPUT_CHUNK, |l| l.min(OUTPUT_CHUNK));
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    p.file = None;
                    continue;
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    p.file = None;
                    continue;
                }
            };
            if let Some(left) = &mut p.left {
                *left = left.saturating_sub(n);
            }
            let allowed = budget.take(n);
            if allowed > 0 {
                if let Err(e) = write_frame(&mut out, p.kind, &buf[..allowed]) {
                    signals.write_failed.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
            if allowed < n {
                return Ok(());
            }
        }
    }
}
