//! Stopping midway: Ctrl-C during local work, and which failures leave a
//! partial file worth resuming.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::session::RemoteError;

/// Hashes everything read from a file from its start up to `len`. The kept
/// part of a resumed file can be gigabytes: `stop` is asked between chunks so
/// that Ctrl-C does not wait for the end of it ([`Stopped`]).
pub(super) fn hash_prefix(
    file: &mut File,
    len: u64,
    mut hasher: impl FnMut(&[u8]),
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        if stop() {
            return Err(io::Error::other(Stopped));
        }
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        hasher(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Local work stopped because the user pressed Ctrl-C.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Stopped {}

/// Whether a local failure is [`Stopped`].
pub fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

/// Ctrl-C or a lost connection, also Ctrl-C while the kept part of a resumed
/// file was hashed here ([`Stopped`]): what was received is worth resuming.
pub fn stopped_midway(e: &RemoteError) -> bool {
    match e {
        RemoteError::Interrupted | RemoteError::ConnectionLost(_) => true,
        RemoteError::Local(l) => is_stopped(l),
        RemoteError::Refused(_) => false,
    }
}

/// A transfer stopped midway ([`stopped_midway`]), with what the user is
/// told (what is kept, how to resume). Typed, so that a verb that goes on
/// past a failing file (`mirror`) knows to stop instead.
#[derive(Debug)]
pub struct StoppedMidway(pub String);

impl std::fmt::Display for StoppedMidway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoppedMidway {}
