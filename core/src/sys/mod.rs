//! Every call into the operating system that the standard library does not
//! wrap, behind safe functions. The rest of ftpsh (`commands/`, `src/`) forbids
//! `unsafe`: an unsafe block anywhere but in `ftpsh-core` is a compile error.
//!
//! [`beneath`] (Linux) is the server's jail: every file operation on a path a
//! client named, resolved beneath a handle on the served root.

#[cfg(target_os = "linux")]
pub mod beneath;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Flags and error numbers the other crates pass to std's `OpenOptionsExt` or
/// compare with `raw_os_error`, so that they need no `libc` of their own.
pub use libc::{EINVAL, ENXIO, O_NOFOLLOW, O_NONBLOCK};

/// Takes an exclusive advisory lock (`flock`) on `file` without waiting: the
/// error is `WouldBlock` when another open file description holds it. The lock
/// lasts as long as the file stays open.
pub fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock only takes an advisory lock on a descriptor we borrow.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts writing a range of the file to disk without waiting for it, so that
/// the fsync before a rename finds little left to do. Best effort: a failure is
/// harmless (the fsync that follows still makes the data durable).
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    // SAFETY: sync_file_range only reads its integer arguments.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as i64,
            len as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid only reads the process's credentials.
    unsafe { libc::geteuid() }
}

fn status_flags(fd: impl AsFd) -> io::Result<i32> {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

fn set_status_flags(fd: impl AsFd, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL only changes the descriptor's status flags.
    if unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turns `O_NONBLOCK` on or off for an open file description (a pipe's end,
/// a FIFO opened without waiting for its other side).
pub fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = status_flags(fd)?;
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    set_status_flags(fd, wanted)
}

/// Whether `O_DIRECT` is on for an open file.
pub fn is_direct(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    return status_flags(file).is_ok_and(|f| f & libc::O_DIRECT != 0);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// File systems on which direct writes are known to work and to be fast.
#[cfg(target_os = "linux")]
const DIRECT_FRIENDLY: [i64; 4] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0xF2F5_2010, // f2fs
];

/// Whether the file lives on a file system known to suit direct I/O.
pub fn direct_friendly(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: statfs is plain data, valid when zeroed; fstatfs writes
        // into the struct we own.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
        ok && DIRECT_FRIENDLY.contains(&(st.f_type as i64))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// Turns `O_DIRECT` on or off for an open file. Turning it on is refused
/// unless the file is [`direct_friendly`].
pub fn set_direct(file: &File, on: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if on && !direct_friendly(file) {
            return Err(io::Error::other("file system not known to suit direct I/O"));
        }
        let flags = status_flags(file)?;
        let wanted = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        set_status_flags(file, wanted)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        if on {
            Err(io::Error::other("direct I/O is only used on Linux"))
        } else {
            Ok(())
        }
    }
}

/// Sends SIGKILL to the process group `pgid`. The caller makes sure the id
/// still names its own group (see `server::exec`).
pub fn kill_process_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it touches
    // no memory of ours.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

/// Whether our child `pid` has exited, leaving it a zombie for `wait`
/// (`waitid` with `WNOWAIT`: nothing is reaped).
pub fn exited_unreaped(pid: u32) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data, valid when zeroed.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid(2) writes only into `info`.
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled in (or left zero) the SIGCHLD fields; with WNOHANG a
    // child still running leaves si_pid 0.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Bytes waiting to be read in a pipe (`FIONREAD`); 0 if it cannot be told.
pub fn bytes_buffered(fd: impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// Waits up to `timeout` until one of `fds` is readable (or at its end).
/// `None` entries are skipped. Returns, per entry, whether it is ready.
pub fn poll_readable<const N: usize>(
    fds: [Option<std::os::fd::BorrowedFd<'_>>; N],
    timeout: std::time::Duration,
) -> io::Result<[bool; N]> {
    let mut polled = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; N];
    for (p, fd) in polled.iter_mut().zip(&fds) {
        if let Some(fd) = fd {
            p.fd = fd.as_raw_fd();
        }
    }
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: poll(2) on our array of N pollfd; negative fds are skipped.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, millis) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = [false; N];
    for (o, p) in out.iter_mut().zip(&polled) {
        *o = p.revents != 0;
    }
    Ok(out)
}
