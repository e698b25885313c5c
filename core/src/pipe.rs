//! A byte stream over two pipe ends: the standard input and output of an `ssh`
//! child (the client side of `ssh://`), or our own (`ftpsh-server --stdio`).
//!
//! The server and the client both read on one thread and write on another, and
//! both rely on read and write timeouts (idle and stall limits, Ctrl-C polling)
//! that pipes do not have: so both ends are non-blocking and every wait is a
//! `poll` bounded by the timeout, in short slices so that [`PipeStream::shutdown`]
//! from another thread is noticed. Clones share the two descriptors.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys;

/// How often a wait without a deadline looks whether the stream was shut.
const SLICE: Duration = Duration::from_millis(100);

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct PipeStream {
    read: Arc<File>,
    write: Arc<File>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    shut: Arc<AtomicBool>,
    /// The process at the other end, killed when the last clone goes.
    child: Option<Arc<ChildGuard>>,
    /// What log lines and messages call the other end.
    label: Arc<str>,
}

/// The pipe buffer asked for: 1 MiB, Linux's default `pipe-max-size`.
const PIPE_BYTES: usize = 1 << 20;

impl PipeStream {
    /// A stream reading `read` and writing `write`, both made non-blocking.
    pub fn new(read: File, write: File, label: &str) -> io::Result<PipeStream> {
        sys::set_nonblocking(&read, true)?;
        sys::set_nonblocking(&write, true)?;
        // Best effort: a default pipe holds 64 KiB, four times fewer than a
        // data chunk, so a transfer would wake each side for every piece.
        for end in [&read, &write] {
            let _ = sys::set_pipe_size(end, PIPE_BYTES);
        }
        Ok(PipeStream {
            read: Arc::new(read),
            write: Arc::new(write),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            shut: Arc::new(AtomicBool::new(false)),
            child: None,
            label: label.into(),
        })
    }

    /// This process's standard input and output (`ftpsh-server --stdio`).
    /// Nothing else may use them afterwards: stdout carries the protocol.
    pub fn stdio() -> io::Result<PipeStream> {
        use std::os::fd::AsFd;
        let read = File::from(io::stdin().as_fd().try_clone_to_owned()?);
        let write = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        PipeStream::new(read, write, "stdio")
    }

    /// The standard input and output of `child`, which is killed (and reaped)
    /// when the stream and all its clones are gone or it is shut.
    pub fn child(mut child: Child, label: &str) -> io::Result<PipeStream> {
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other(
                "the child's stdin and stdout must be piped",
            ));
        };
        let read = File::from(std::os::fd::OwnedFd::from(stdout));
        let write = File::from(std::os::fd::OwnedFd::from(stdin));
        let mut stream = PipeStream::new(read, write, label)?;
        stream.child = Some(Arc::new(ChildGuard(Mutex::new(child))));
        Ok(stream)
    }

    /// Like a socket's `SO_RCVTIMEO`, for this handle only (not its clones).
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        self.read_timeout.set(t);
    }

    /// Like a socket's `SO_SNDTIMEO`, for this handle only (not its clones).
    pub fn set_write_timeout(&self, t: Option<Duration>) {
        self.write_timeout.set(t);
    }

    /// Ends the stream for every clone: reads see the end, writes fail, and a
    /// child at the other end is killed.
    pub fn shutdown(&self) {
        self.shut.store(true, Ordering::SeqCst);
        if let Some(child) = &self.child {
            child.kill();
        }
    }

    /// Bytes that arrived and were not read yet.
    pub fn pending(&self) -> usize {
        sys::bytes_buffered(&*self.read)
    }

    /// The other side closed its end (the child exited) and nothing is left.
    pub fn at_end(&self) -> bool {
        sys::at_end(&*self.read)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The error of a read or write that waited `timeout` in vain, as std's
    /// sockets report an expired `SO_RCVTIMEO`.
    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::WouldBlock, "timed out")
    }

    fn closed() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "the connection was shut")
    }
}

/// Waits for `ready` in slices until `deadline`, giving up early when shut.
fn wait(
    shut: &AtomicBool,
    timeout: Option<Duration>,
    mut ready: impl FnMut(Duration) -> io::Result<bool>,
) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if shut.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let slice = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(PipeStream::timed_out());
                }
                left.min(SLICE)
            }
            None => SLICE,
        };
        match ready(slice) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let fd = &*self.read;
            let ready = wait(&self.shut, self.read_timeout.get(), |slice| {
                sys::poll_readable([Some(std::os::fd::AsFd::as_fd(fd))], slice).map(|r| r[0])
            })?;
            if !ready {
                return Ok(0); // shut: the end, as a shut socket reads
            }
            match (&*self.read).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

impl PipeStream {
    /// One write (`op`) once the pipe has room, within the write timeout.
    fn write_when_ready(
        &self,
        mut op: impl FnMut(&File) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let fd = &*self.write;
            let ready = wait(&self.shut, self.write_timeout.get(), |slice| {
                sys::wait_writable(fd, slice)
            })?;
            if !ready {
                return Err(PipeStream::closed());
            }
            match op(&self.write) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

impl Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_when_ready(|mut f| f.write(buf))
    }
    /// `writev`: frame headers and their payloads in one system call, as
    /// over a socket (each 5-byte header written alone would wake ssh).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_when_ready(|mut f| f.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process at the far end of a pipe stream.
#[derive(Debug)]
struct ChildGuard(Mutex<Child>);

impl ChildGuard {
    fn kill(&self) {
        let mut child = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let child = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        // Our end of its stdin is closed by now: ssh ends on its own. Give it
        // a moment (it may be telling the user why it failed), then insist.
        for _ in 0..20 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn cat() -> PipeStream {
        let child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        PipeStream::child(child, "cat").unwrap()
    }

    #[test]
    fn bytes_go_round_a_child_in_both_directions_at_once() {
        let mut s = cat();
        let mut reader = s.clone();
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let t = std::thread::spawn(move || {
            let mut got = vec![0u8; expected.len()];
            reader.read_exact(&mut got).unwrap();
            assert_eq!(got, expected);
        });
        s.write_all(&data).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_read_times_out_and_a_shut_stream_ends() {
        let s = cat();
        s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 8];
        let e = s.clone().read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let mut other = s.clone();
        other.set_read_timeout(None);
        let t = std::thread::spawn(move || other.read(&mut [0u8; 8]).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        s.shutdown();
        assert_eq!(t.join().unwrap(), 0);
        assert!(s.clone().write(b"x").is_err());
    }

    #[test]
    fn a_write_nobody_reads_times_out() {
        let child = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = PipeStream::child(child, "sleep").unwrap();
        s.set_write_timeout(Some(Duration::from_millis(100)));
        let chunk = vec![0u8; 1 << 20];
        let e = (0..100).find_map(|_| s.write(&chunk).err()).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
