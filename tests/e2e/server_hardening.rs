//! The server against local and remote abuse (issue 11, items 6, 7 and 9):
//! `exec` needs a token on TCP, the Unix socket is owner-only from the moment
//! it appears, is never taken from a live server, is removed on the way out
//! and checks who connects; failed tokens slow down their own address only,
//! and are logged sparingly; weak ways of giving a token are refused or
//! warned about.
//!
//! Nothing here listens beyond loopback: the one test that names 0.0.0.0
//! checks a refusal that happens before the server binds. Timing is compared
//! between attempts of the same run, with wide margins, never against a clock.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{FrameReader, Reply, Request};

/// A generous deadline for events that should take well under a second.
const EVENT: Duration = Duration::from_secs(20);

/// `ftpsh-server ARGS` expected to refuse to start: its output, once it exited.
fn refused_start(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = assert_cmd::Command::new(bin("ftpsh-server"));
    cmd.args(args).env_remove("FTPSH_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.timeout(EVENT);
    let out = cmd.output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "it started (or was killed): {out:?}"
    );
    assert_eq!(stdout_of(&out), "", "it must not listen: {out:?}");
    out
}

/// The one line a refused start printed.
fn one_line(out: &Output) -> String {
    let err = stderr_of(out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    lines[0].to_string()
}

fn unix_listen(dir: &Path) -> (std::path::PathBuf, String) {
    let sock = dir.join("ftpsh.sock");
    let listen = format!("unix:{}", sock.display());
    (sock, listen)
}

// ---------------------------------------------------------------- item 6: exec

#[test]
fn exec_without_a_token_is_refused_at_start_on_tcp_and_allowed_on_an_owner_only_socket() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for listen in ["127.0.0.1:0", "[::1]:0", "localhost:0"] {
        let out = refused_start(&["--root", r, "--listen", listen, "--allow-exec"], &[]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let line = one_line(&out);
        assert!(
            line.starts_with("ftpsh-server: refusing --allow-exec on")
                && line.contains("without a token")
                && line.contains("FTPSH_TOKEN"),
            "{line}"
        );
    }

    // A Unix socket only the server's own user may use needs no token...
    let dir = tempfile::tempdir().unwrap();
    let (_, listen) = unix_listen(dir.path());
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .no_token()
        .listen(&listen)
        .allow_exec()
        .start();
    let out = server
        .client(local.path())
        .args(["-c", "exec 'echo ran'"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "ran\n", "{out:?}");
    drop(server);

    // ... unless it admits other users too.
    let out = refused_start(
        &[
            "--root",
            r,
            "--listen",
            &listen,
            "--allow-exec",
            "--unix-allow-uid",
            "65534",
        ],
        &[],
    );
    assert!(
        one_line(&out).contains("--unix-allow-uid"),
        "{}",
        stderr_of(&out)
    );
    // With a token, exec on TCP is fine.
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    let out = server
        .client(local.path())
        .args(["-c", "exec 'echo ran'"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "ran\n", "{out:?}");
}

// ---------------------------------------------------------------- item 7: the socket

/// Starts the server and watches the socket path as fast as it can: the mode
/// the file has the first time it is seen.
fn first_sight_of_the_socket(root: &Path, dir: &Path) -> u32 {
    let (sock, listen) = unix_listen(dir);
    let mut child = Command::new(bin("ftpsh-server"))
        .args(["--root", root.to_str().unwrap(), "--listen", &listen])
        .env_remove("FTPSH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mode = loop {
        if let Ok(meta) = std::fs::symlink_metadata(&sock) {
            break meta.permissions().mode() & 0o7777;
        }
        assert!(start.elapsed() < EVENT, "the socket never appeared");
        std::hint::spin_loop();
    };
    // Once it says it listens, its private directory is gone.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&sock);
    mode
}

#[test]
fn the_unix_socket_is_owner_only_the_moment_it_appears() {
    let root = tempfile::tempdir().unwrap();
    // The window of a bind-then-chmod server is a few microseconds: look
    // many times. The server binds in a private directory and renames the
    // socket into place, so there is no window at all.
    for attempt in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let mode = first_sight_of_the_socket(root.path(), dir.path());
        assert_eq!(mode, 0o600, "start {attempt}: first seen as {mode:o}");
        // The private directory it was bound in is gone.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn a_live_socket_is_never_taken_over_and_a_stale_one_is_replaced() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sock, listen) = unix_listen(dir.path());

    // A stale socket: bound by a process that went away without removing it.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    let mut first = ServerBuilder::new(root.path()).listen(&listen).start();
    assert_eq!(first.addr, listen);

    // A second server on the live socket is refused, and unlinks nothing.
    let out = refused_start(
        &["--root", root.path().to_str().unwrap(), "--listen", &listen],
        &[],
    );
    let line = one_line(&out);
    assert!(
        line.contains(&format!("already serving on {listen}")),
        "{line}"
    );
    assert!(first.alive());
    let out = first
        .client(local.path())
        .args(["-c", "echo still here"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "still here\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn the_socket_file_is_removed_when_the_server_is_stopped_by_a_signal() {
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sock, listen) = unix_listen(dir.path());
    for (name, sig) in [("SIGTERM", libc::SIGTERM), ("SIGINT", libc::SIGINT)] {
        let mut cmd = Command::new(bin("ftpsh-server"));
        cmd.args(["--root", root.path().to_str().unwrap(), "--listen", &listen])
            .env_remove("FTPSH_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: signal(2) only, between fork and exec: whoever started the
        // tests may have left SIGINT ignored, and an ignored signal is kept so.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(sig, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        assert!(wait_until(EVENT, || sock.exists()), "{name}: no socket");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig), "{name}: {status:?}");
        assert!(!sock.exists(), "{name} left the socket file");
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 0, "{name}: files left in the socket's directory");
    }
}

/// A copy of one of our binaries that any user may run: the build's own
/// directory may sit below one only its owner can enter (a checkout under a
/// private temporary directory).
fn runnable_by_anyone(name: &str) -> PathBuf {
    use std::sync::OnceLock;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    });
    let copy = dir.path().join(name);
    if !copy.exists() {
        let tmp = dir.path().join(format!("{name}.{}", std::process::id()));
        std::fs::copy(bin(name), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::rename(&tmp, &copy);
    }
    copy
}

/// `ftpsh ADDR -c "echo hi"` as user `uid` (the caller is root).
fn client_as(uid: u32, addr: &str, local: &Path) -> Output {
    Command::new(runnable_by_anyone("ftpsh"))
        .args([addr, "--norc", "-c", "echo hi"])
        .current_dir(local)
        .env("HOME", local)
        .env("NO_COLOR", "1")
        .env_remove("FTPSH_RC")
        .env_remove("FTPSH_TOKEN")
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_unix_socket_refuses_other_users_unless_they_are_named() {
    // SAFETY: geteuid only reads our credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can run a client as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for d in [local.path(), dir.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let (sock, listen) = unix_listen(dir.path());

    // Another user is named, so the socket file is open to all: what keeps
    // `nobody` out is the server's check of the peer's credentials.
    let mut server = ServerBuilder::new(root.path())
        .no_token()
        .listen(&listen)
        .arg("--unix-allow-uid")
        .arg("12345")
        .start();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    for _ in 0..3 {
        let out = client_as(NOBODY, &listen, local.path());
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert_eq!(stdout_of(&out), "");
        let err = stderr_of(&out);
        assert!(
            err.contains("uid 65534 may not use this socket"),
            "unclear refusal: {err}"
        );
    }
    // The server's own user is admitted.
    let out = client_as(0, &listen, local.path());
    assert_eq!(stdout_of(&out), "hi\n", "{out:?}");
    // Each refusal is logged, but not every one of them.
    assert!(
        wait_until(EVENT, || server.log_text().contains("refused: uid 65534")),
        "{}",
        server.log_text()
    );
    let refusals = server.log_text().matches("refused: uid 65534").count();
    assert_eq!(refusals, 1, "{}", server.log_text());
    server.kill();

    // Named, it is admitted.
    let server = ServerBuilder::new(root.path())
        .no_token()
        .listen(&listen)
        .arg("--unix-allow-uid")
        .arg(&NOBODY.to_string())
        .start();
    let out = client_as(NOBODY, &listen, local.path());
    assert_eq!(stdout_of(&out), "hi\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    drop(server);

    // Without --unix-allow-uid the socket is 0600: others cannot even connect.
    let server = ServerBuilder::new(root.path())
        .no_token()
        .listen(&listen)
        .start();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = client_as(NOBODY, &listen, local.path());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    drop(server);
}

// ---------------------------------------------------------------- item 9: tokens

/// A TCP connection to `to` from the loopback address `from` (all of 127/8
/// is this machine's on Linux).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 expected: {to}")
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket we own, bound and connected with addresses that
    // live on our stack; on success it is handed to a TcpStream that closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let src = sockaddr(from, 0);
        let r = libc::bind(fd, (&src as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let dst = sockaddr(*to.ip(), to.port());
        let r = libc::connect(fd, (&dst as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// One authentication attempt from `from`: how long the server took to
/// answer the token, and whether it let the client in.
fn attempt(server: &Server, from: Ipv4Addr, token: &str) -> (Duration, bool) {
    let mut s = connect_from(from, server.addr.parse().unwrap());
    s.set_read_timeout(Some(EVENT)).unwrap();
    handshake::send_greeting(&mut s).unwrap();
    handshake::read_greeting(&mut s).expect("the server's greeting");
    let start = Instant::now();
    Request::Auth {
        token: token.to_string(),
    }
    .write_to(&mut s)
    .unwrap();
    s.flush().unwrap();
    let mut frames = FrameReader::new();
    let frame = frames.read(&mut s).expect("an answer");
    let took = start.elapsed();
    let admitted = match Reply::decode(frame.kind, frame.payload).unwrap() {
        Reply::Ok => true,
        Reply::Error { message } => {
            assert!(message.contains("authentication"), "{message}");
            false
        }
        other => panic!("unexpected reply {other:?}"),
    };
    (took, admitted)
}

#[test]
fn failed_tokens_slow_down_their_own_address_only() {
    let root = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).start();
    let (a, b) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
    let times: Vec<Duration> = (0..7)
        .map(|_| {
            let (took, admitted) = attempt(&server, a, "wrong-token-wrong-token");
            assert!(!admitted);
            took
        })
        .collect();
    let (other, admitted) = attempt(&server, b, "wrong-token-wrong-token");
    assert!(!admitted);
    let seventh = times[6];
    assert!(
        seventh > times[0].max(times[1]) * 4,
        "the 7th failure from {a} was not slowed down: {times:?}"
    );
    assert!(
        other * 4 < seventh,
        "{b} was slowed down by {a}'s failures: {other:?} vs {times:?}"
    );
    // The right token from the other address is let in without a wait; from
    // the guessing address it waits its turn too (an answer that came at once
    // would tell a guesser it had found it), then is let in.
    let (took, admitted) = attempt(&server, b, TOKEN);
    assert!(admitted);
    assert!(took * 4 < seventh, "{took:?} vs {times:?}");
    let (took, admitted) = attempt(&server, a, TOKEN);
    assert!(admitted);
    assert!(took * 2 > seventh, "{took:?} vs {times:?}");

    // A line for each address, not one per failure.
    let log = server.log_text();
    let failures = |ip: &str| {
        log.lines()
            .filter(|l| l.contains(ip) && l.contains("refused: wrong token"))
            .count()
    };
    assert_eq!(failures("127.0.0.1:"), 1, "{log}");
    assert_eq!(failures("127.0.0.2:"), 1, "{log}");
}

#[test]
fn a_short_token_is_refused_off_loopback_before_listening() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    // Refused before the server binds: no traffic ever leaves loopback.
    let out = refused_start(
        &["--root", r, "--listen", "0.0.0.0:0"],
        &[("FTPSH_TOKEN", "fifteen-chars!!")],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_line(&out);
    assert!(
        line.starts_with("ftpsh-server: refusing to listen on 0.0.0.0:0")
            && line.contains("at least 16"),
        "{line}"
    );
    let file = root.path().join("token");
    std::fs::write(&file, "short\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = refused_start(
        &[
            "--root",
            r,
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(one_line(&out).contains("at least 16"), "{out:?}");
    // On loopback a short token is the operator's business.
    let server = ServerBuilder::new(root.path()).token("short").start();
    let local = tempfile::tempdir().unwrap();
    let out = server
        .client(local.path())
        .args(["-c", "echo in"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "in\n", "{out:?}");
}

#[test]
fn a_token_on_the_command_line_draws_a_warning_and_token_files_are_checked() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let warning = "warning: --token on the command line can be read by every local user";

    let server = ServerBuilder::new(root.path())
        .no_token()
        .arg("--token")
        .arg(TOKEN)
        .start();
    assert!(server.log_text().contains(warning), "{}", server.log_text());
    drop(server);

    // From the environment: no warning.
    let server = ServerBuilder::new(root.path()).start();
    assert!(
        !server.log_text().contains("warning"),
        "{}",
        server.log_text()
    );
    drop(server);

    // From a file: the first line is the token; a file every user can read
    // draws a warning, an owner-only one none.
    let file = local.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut server = ServerBuilder::new(root.path())
            .no_token()
            .arg("--token-file")
            .arg(file.to_str().unwrap())
            .start();
        let log = server.log_text();
        assert_eq!(
            log.contains("is readable by every user"),
            warned,
            "mode {mode:o}: {log}"
        );
        assert!(!log.contains(warning), "{log}");
        server.token = Some(TOKEN.into());
        let out = server
            .client(local.path())
            .args(["-c", "echo in"])
            .output()
            .unwrap();
        assert_eq!(stdout_of(&out), "in\n", "{out:?}");
        server.token = Some("not-the-token".into());
        let out = server
            .client(local.path())
            .args(["-c", "echo in"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
    }
}

#[test]
fn guesses_spread_over_many_loopback_addresses_are_slowed_down_too() {
    let root = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).start();
    // One wrong guess from each of many addresses (all of 127.0.0.0/8 is this
    // machine): no address alone has failed twice.
    let guesses = (ftpsh::server::FREE_FAILURES_ALL + 4) as usize;
    let times: Vec<Duration> = (0..guesses)
        .map(|n| {
            let from = Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250) as u8 + 1);
            let (took, admitted) = attempt(&server, from, "wrong-token-wrong-token");
            assert!(!admitted);
            took
        })
        .collect();
    let early = times[..8].iter().max().unwrap();
    let late = times[guesses - 1];
    assert!(
        late > *early * 4 && late >= Duration::from_millis(300),
        "guesses from fresh addresses were not slowed down: first {:?}, last {late:?}",
        &times[..8]
    );
}

#[test]
fn allow_exec_needs_a_token_of_sixteen_characters_even_on_loopback() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let out = refused_start(
        &["--root", r, "--listen", "127.0.0.1:0", "--allow-exec"],
        &[("FTPSH_TOKEN", "fifteen-chars!!")],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_line(&out);
    assert!(
        line.contains("--allow-exec") && line.contains("at least 16"),
        "{line}"
    );
}

#[test]
fn the_client_sends_no_token_to_a_unix_socket_another_user_serves() {
    // SAFETY: geteuid only reads our credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can run a server as another user");
        return;
    }
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    for d in [root.path(), dir.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let (sock, listen) = unix_listen(dir.path());
    // Someone else got to the path first, and lets everyone connect.
    let log = dir.path().join("squatter.log");
    let mut squatter = std::process::Command::new(runnable_by_anyone("ftpsh-server"))
        .args(["--root", root.path().to_str().unwrap(), "--listen", &listen])
        .args(["--unix-allow-uid", "0"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_until(EVENT, || sock.exists()),
        "the squatter never bound"
    );
    let out = assert_cmd::Command::new(bin("ftpsh"))
        .arg(&listen)
        .args(["--norc", "-c", "echo hi"])
        .current_dir(local.path())
        .env("HOME", local.path())
        .env("FTPSH_TOKEN", "the-real-servers-token")
        .timeout(EVENT)
        .output()
        .unwrap();
    let _ = squatter.kill();
    let _ = squatter.wait();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = stderr_of(&out);
    assert!(err.contains("served by uid 65534"), "{err}");
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains("connected"),
        "the squatter got a session: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}
