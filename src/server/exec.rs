//! `Exec`: run `sh -c` in the session's directory and stream its output.
//!
//! The command runs in its own process group. Two scoped threads read its stdout
//! and stderr in chunks and send each chunk as a frame as soon as it is read, so
//! output of any size passes through a fixed amount of memory and the client sees
//! it as it is produced; a slow client slows the command down (pipe back-pressure)
//! instead of growing a buffer. The session thread meanwhile watches for `Cancel`,
//! a closed connection, the `--exec-timeout` and the `--exec-max-output`, and
//! kills the whole group.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::session::{Gone, Served, Session};
use crate::protocol::frame::write_frame;
use crate::protocol::message::{STDERR_KIND, STDOUT_KIND};
use crate::protocol::Reply;

/// Size of one output chunk.
const OUTPUT_CHUNK: usize = 64 * 1024;

/// Why the command was stopped early.
enum Stop {
    Cancelled,
    ClientGone,
    TimedOut(Duration),
    TooMuchOutput(u64),
}

/// The `--exec-max-output` allowance, shared by the stdout and stderr pumps.
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

pub fn run(s: &mut Session, command: &str) -> Served {
    if !s.shared.config.allow_exec {
        return s.error("exec is disabled on this server (start ftpsh-server with --allow-exec)");
    }
    let dir = match s.shared.jail.resolve(&s.cwd, ".") {
        Ok(r) => r.real,
        Err(e) => return s.error(e),
    };
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
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let writer = Mutex::new(s.writer.try_clone()?);
    let exec_timeout = s.shared.config.exec_timeout;
    let budget = Budget {
        limit: s.shared.config.exec_max_output,
        used: AtomicU64::new(0),
        exceeded: AtomicBool::new(false),
    };
    let started = Instant::now();

    let (stop, status) = std::thread::scope(|scope| {
        let out = scope.spawn(|| pump(stdout, STDOUT_KIND, &writer, &budget));
        let err = scope.spawn(|| pump(stderr, STDERR_KIND, &writer, &budget));
        let mut stop = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(_) => break None,
            }
            if stop.is_none() {
                // Requests pipelined early are answered after the command.
                stop = match s.cancel_within(Duration::from_millis(20)) {
                    Ok(true) => Some(Stop::Cancelled),
                    Ok(false) => None,
                    Err(Gone) => Some(Stop::ClientGone),
                };
                if stop.is_none() {
                    if let Some(limit) = exec_timeout.filter(|l| started.elapsed() > *l) {
                        stop = Some(Stop::TimedOut(limit));
                    } else if let Some(limit) = budget.exceeded() {
                        stop = Some(Stop::TooMuchOutput(limit));
                    }
                }
                if stop.is_some() {
                    kill_group(&child);
                }
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // Background jobs of the command would hold the pipes open forever.
        kill_group(&child);
        let out_ok = out.join().unwrap_or(false);
        let err_ok = err.join().unwrap_or(false);
        if !(out_ok && err_ok) && stop.is_none() {
            stop = Some(Stop::ClientGone);
        }
        // The command may have died of its cut-off pipe before the check above.
        if let (None, Some(limit)) = (&stop, budget.exceeded()) {
            stop = Some(Stop::TooMuchOutput(limit));
        }
        (stop, status)
    });
    match stop {
        Some(Stop::ClientGone) => {
            s.shared.log(&s.peer, "exec: client gone, command killed");
            Err(Gone)
        }
        Some(Stop::Cancelled) => s.reply(Reply::Cancelled),
        Some(Stop::TimedOut(limit)) => s.error(format!(
            "command killed after the server's exec time limit of {} s",
            limit.as_secs()
        )),
        Some(Stop::TooMuchOutput(limit)) => s.error(format!(
            "command killed: its output reached the server's output limit of {limit} bytes"
        )),
        None => match status {
            Some(st) => match (st.code(), st.signal()) {
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
            None => s.error("cannot wait for the command"),
        },
    }
}

/// Copies one pipe to the client as frames, up to the output budget (then it
/// stops reading and the session kills the command). False if the client write
/// failed.
fn pump(
    mut pipe: impl Read,
    kind: u8,
    writer: &Mutex<crate::net::Stream>,
    budget: &Budget,
) -> bool {
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(n) => n,
        };
        let allowed = budget.take(n);
        if allowed > 0 {
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            if write_frame(&mut *w, kind, &buf[..allowed]).is_err() {
                return false;
            }
        }
        if allowed < n {
            return true;
        }
    }
}

fn kill_group(child: &Child) {
    // SAFETY: kill(2) with a negative pid signals the process group we created
    // with process_group(0); it touches no memory of ours.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
}
