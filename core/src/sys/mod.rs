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

/// Makes the C allocator give every block of `bytes` or more its own
/// mapping, returned to the system when freed (`mallopt(M_MMAP_THRESHOLD)`,
/// glibc only; elsewhere nothing). By default glibc raises that threshold
/// each time such a block is freed, after which blocks of that size are
/// carved from its per-thread arenas and kept there once freed: a server
/// whose sessions each use a few 1 MiB transfer buffers for a while would
/// keep tens of MiB resident after they left. Call before threads start.
pub fn return_large_blocks(bytes: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is documented as
    // callable at any time, and is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, bytes.min(i32::MAX as usize) as i32);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = bytes;
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

/// Makes everything written to the file system holding `file` durable, one
/// `syncfs(2)` for any number of files: the batch downloads' way of making a
/// slice of small partials durable before any is renamed into place.
///
/// `Ok(false)` when this kernel's `syncfs` cannot be trusted to report a
/// failed writeback (Linux before 5.8, or not Linux), or this file system's
/// to reach its storage (`SYNCFS_TRUSTED`): nothing was done and the
/// caller fsyncs each file instead. A writeback error on that file system
/// since `file` was opened, ours or not, is an `Err`: the caller then fsyncs
/// each file to learn which failed.
pub fn sync_file_system(file: &File) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        if !syncfs_reports_errors()
            || !file_system_type(file).is_some_and(|t| SYNCFS_TRUSTED.contains(&t))
        {
            return Ok(false);
        }
        // SAFETY: syncfs only flushes the file system of a descriptor we borrow.
        if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
            Ok(true)
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Ok(false)
    }
}

/// Makes a batch of files durable before any of them is renamed into place:
/// one result per file, in order. Several files take one `syncfs` per file
/// system they are on ([`sync_file_system`]) instead of one `fsync` each,
/// because one fsync per small file waits for one journal commit per file
/// (bench/README.md: the small-file rows). Where `syncfs` cannot be trusted
/// to report a failed writeback, or reports one, each file is fsynced
/// instead, so that a failure is pinned on the file it belongs to.
///
/// The batch downloads of the client and the batched uploads of the server
/// both make their slices durable this way.
pub fn make_durable(files: &[&File]) -> Vec<io::Result<()>> {
    if files.len() > 1 {
        use std::os::unix::fs::MetadataExt;
        let mut devs: Vec<u64> = Vec::new();
        let mut synced = true;
        for file in files {
            match file.metadata().map(|m| m.dev()) {
                Ok(dev) if devs.contains(&dev) => continue,
                Ok(dev) => devs.push(dev),
                Err(_) => {}
            }
            synced &= sync_file_system(file).unwrap_or(false);
        }
        if synced {
            return files.iter().map(|_| Ok(())).collect();
        }
    }
    files.iter().map(|f| f.sync_all()).collect()
}

/// Whether `syncfs` returns writeback errors: Linux 5.8 and later.
#[cfg(target_os = "linux")]
fn syncfs_reports_errors() -> bool {
    static REPORTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REPORTS.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (5, 8)
    })
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid only reads the process's credentials.
    unsafe { libc::geteuid() }
}

/// This process's umask, read without changing it where the kernel says it
/// (`/proc/self/status`, Linux 4.7 and later); elsewhere by setting and
/// restoring it at once.
pub fn umask() -> u32 {
    // Read once: ftpsh never changes its umask, and a batch asks per file.
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(read_umask)
}

fn read_umask() -> u32 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(m) = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        {
            return m;
        }
    }
    // SAFETY: umask only swaps the process's file creation mask; the old
    // value is put back at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    }
}

/// The permission bits a new copy of a file of mode `source` gets: as `cp`
/// without `-p`, the source's bits (no set-id, no sticky) less the umask,
/// never wider than the source. With `keep` (`-p`), the source's bits and
/// the sticky bit, but never set-user-ID or set-group-ID: a copy from a peer
/// must not become a program that runs as whoever owns it here.
pub fn new_mode(source: u32, keep: bool) -> u32 {
    if keep {
        source & 0o1777
    } else {
        source & 0o777 & !umask()
    }
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
    return file_system_type(file).is_some_and(|t| DIRECT_FRIENDLY.contains(&t));
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// The type (`statfs.f_type`) of the file system holding `file`.
#[cfg(target_os = "linux")]
fn file_system_type(file: &File) -> Option<i64> {
    // SAFETY: statfs is plain data, valid when zeroed; fstatfs writes into
    // the struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
    ok.then_some(st.f_type as i64)
}

/// File systems whose `syncfs` writes and flushes everything a per-file
/// fsync would: local disk file systems (and tmpfs, which has nothing to
/// write). Network and FUSE file systems are left out: some answer `syncfs`
/// without telling their backend anything (sshfs, CIFS), where each file's
/// fsync does reach it.
#[cfg(target_os = "linux")]
const SYNCFS_TRUSTED: [i64; 5] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0xF2F5_2010, // f2fs
    0x0102_1994, // tmpfs
];

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

/// Turns on TCP keepalive for a connected TCP socket: after `idle` without
/// traffic the kernel probes the peer every `interval`, and after `count`
/// unanswered probes the connection fails (a read then reports `TimedOut`).
pub fn set_tcp_keepalive(
    fd: impl AsFd,
    idle: std::time::Duration,
    interval: std::time::Duration,
    count: u32,
) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    let secs = |d: std::time::Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            count.clamp(1, i32::MAX as u32) as libc::c_int,
        )?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (idle, interval, count, secs);
    Ok(())
}

/// Whether TCP keepalive is on for a socket, and its idle time in seconds
/// (Linux; elsewhere 0).
pub fn tcp_keepalive(fd: impl AsFd) -> io::Result<(bool, u32)> {
    let fd = fd.as_fd().as_raw_fd();
    let on = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let idle = getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?.max(0) as u32;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let idle = 0;
    Ok((on, idle))
}

fn setsockopt_int(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads one c_int from the pointer we pass, with its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the c_int we own.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bytes waiting to be read in a pipe or a socket (`FIONREAD`); 0 if it
/// cannot be told.
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

/// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`, at most
/// `/proc/sys/fs/pipe-max-size` for an unprivileged process): a larger buffer
/// means fewer wake-ups for every megabyte that goes through ssh. An error
/// (not a pipe, over the limit) leaves the pipe as it was.
pub fn set_pipe_size(fd: impl AsFd, bytes: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: fcntl(F_SETPIPE_SZ) takes an int and changes no memory of ours.
        let r = unsafe {
            libc::fcntl(
                fd.as_fd().as_raw_fd(),
                libc::F_SETPIPE_SZ,
                bytes.min(i32::MAX as usize) as libc::c_int,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, bytes);
        Ok(())
    }
}

/// Whether `fd` (a socket or a pipe) is at its end: readable at once with
/// nothing to read, so the peer has closed it (or it failed). Does not wait.
pub fn at_end(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    matches!(
        poll_readable([Some(fd)], std::time::Duration::ZERO),
        Ok([true])
    ) && bytes_buffered(fd) == 0
}

/// Waits up to `timeout` until `fd` can be written without blocking (or its
/// reader is gone, which the write then reports).
pub fn wait_writable(fd: impl AsFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut polled = [libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    }];
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: poll(2) on our one-element array.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), 1, millis) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(polled[0].revents != 0)
}

/// The user id of the process at the other end of a connected Unix socket, as
/// the kernel recorded it when that process connected (`SO_PEERCRED`;
/// `getpeereid` on the BSDs), so the peer cannot lie about it.
pub fn peer_uid(sock: impl AsFd) -> io::Result<u32> {
    let fd = sock.as_fd().as_raw_fd();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we
        // own, and stores the length it wrote in `len`.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<libc::ucred>() {
            return Err(io::Error::other("SO_PEERCRED returned a short answer"));
        }
        Ok(cred.uid)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: getpeereid writes one uid and one gid into our variables.
        if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(uid)
    }
}

/// The signals that end a server when nobody handles them.
const TERMINATION: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The set of termination signals whose action is not "ignore" (a server
/// started under `nohup`, or in the background by a shell, keeps ignoring
/// what it was told to ignore).
fn termination_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset and sigaddset write into the set we own; sigaction
    // with a null new action only reads the current one into `old`.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in TERMINATION {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// Blocks SIGINT, SIGTERM and SIGHUP (those not ignored) in the calling
/// thread, so that [`wait_termination_signal`] receives them instead of their
/// default action ending the process at once. Call it before any thread
/// starts: threads inherit the mask, and a thread that did not block them
/// would take the default action. Children started with `std::process` get an
/// empty mask again (std resets it before `exec`).
pub fn block_termination_signals() -> io::Result<()> {
    let set = termination_set();
    // SAFETY: pthread_sigmask reads our set; the old mask is not asked for.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Waits until one of the signals blocked by [`block_termination_signals`]
/// arrives, and returns its number.
pub fn wait_termination_signal() -> i32 {
    let set = termination_set();
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads our set and writes one int.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            return sig;
        }
    }
}

/// Ends the process as `sig` would have with its default action, so that
/// whoever waits for it sees the signal rather than an exit status.
pub fn die_by_signal(sig: i32) -> ! {
    // SAFETY: resetting a signal's action, unblocking it in this thread and
    // raising it touch no memory of ours.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// This process's limits on open descriptors (`RLIMIT_NOFILE`).
fn nofile_limits() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// This process's soft limit on open descriptors (`RLIMIT_NOFILE`).
pub fn descriptor_limit() -> io::Result<u64> {
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    Ok(nofile_limits()?.rlim_cur as u64)
}

/// Raises this process's soft limit on open descriptors to its hard limit,
/// and returns the new soft limit. A server holds a few descriptors per
/// connection and per directory level of a walk: the customary soft limit
/// of 1024 would run out long before the memory does.
pub fn raise_descriptor_limit() -> io::Result<u64> {
    let mut lim = nofile_limits()?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    Ok(lim.rlim_cur as u64)
}
