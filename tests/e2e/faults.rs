//! Faults, end to end with real processes: clients killed mid-transfer, peers that
//! stall or idle, too many connections, unwritable destinations, runaway remote
//! commands. Each fault must cost only the connection that caused it, leave no
//! half-written file behind, and be reported clearly.
//!
//! No timing assertions: a test that waits for a timeout waits for the event
//! (a closed socket, a log line, a process gone) with a generous deadline.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

/// A generous deadline for events that should take about a second.
const EVENT: Duration = Duration::from_secs(20);

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An `exec` whose process group holds three processes that never end: `sh`
/// itself, a foreground child it waits for and a background job, each writing
/// its PID to a file named in [`GROUP_PIDS`].
const GROUP_EXEC: &str = r#"exec "echo $$ > sh.pid; sleep 30 & echo $! > bg.pid; sh -c 'echo $$ > fg.pid; exec sleep 30'; wait""#;
const GROUP_PIDS: [&str; 3] = ["sh.pid", "bg.pid", "fg.pid"];

/// The PIDs of a running [`GROUP_EXEC`], once all are written.
fn wait_for_group(root: &Path) -> Vec<u32> {
    let pids: Vec<u32> = GROUP_PIDS
        .iter()
        .map(|f| wait_for_pid(&root.join(f)))
        .collect();
    for pid in &pids {
        assert!(process_alive(*pid), "the remote process {pid} is running");
    }
    pids
}

/// Asserts that every process of a [`GROUP_EXEC`] ends.
fn assert_group_killed(pids: &[u32], after: &str) {
    for (pid, file) in pids.iter().zip(GROUP_PIDS) {
        assert!(
            wait_until(EVENT, || !process_alive(*pid)),
            "remote process {pid} ({file}) survived {after}"
        );
    }
}

#[test]
fn client_killed_mid_upload_leaves_the_destination_absent_and_only_a_resumable_partial() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Sparse: a gigabyte to send that costs no disk on this side, so the upload
    // is surely still running when the client is killed.
    let big = std::fs::File::create(local.path().join("big.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    // An older copy on the server must survive untouched.
    std::fs::write(root.path().join("keep.bin"), b"old content").unwrap();

    let server = Server::start(root.path());
    let mut client = client_process(&server, local.path())
        .args(["-c", "put big.bin; put big.bin keep.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = root.path().join("big.bin.ftpsh-part");
    let started = wait_until(EVENT, || {
        std::fs::metadata(&partial)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });
    assert!(started, "the upload never started writing its partial file");
    client.kill().unwrap();
    client.wait().unwrap();

    assert!(
        wait_until(EVENT, || {
            let log = server.log_text();
            // Between frames or inside one, depending on where the kill struck.
            log.contains("disconnected") || log.contains("closed inside a frame")
        }),
        "the server did not notice the client going: {}",
        server.log_text()
    );
    assert_eq!(
        names_in(root.path()),
        ["big.bin.ftpsh-part", "keep.bin"],
        "only the resumable partial may be left beside the untouched files"
    );
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < 1 << 30, "partial holds {kept} bytes");
    assert_eq!(
        std::fs::read(root.path().join("keep.bin")).unwrap(),
        b"old content"
    );

    // The server goes on serving, and a new upload of another file works.
    assert_serves(&server, local.path());
    let data = random_bytes(300_000, 11);
    std::fs::write(local.path().join("small.bin"), &data).unwrap();
    server
        .client(local.path())
        .args(["-c", "put small.bin"])
        .assert()
        .success();
    assert_eq!(md5_file(&root.path().join("small.bin")), md5_hex(&data));
}

#[test]
fn a_peer_stalling_mid_frame_is_dropped_while_others_are_served() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .start();

    // An authenticated peer sends half an Echo frame, then nothing.
    let mut stalled = raw_connection(&server, true);
    let mut half = vec![0x02, 0, 0, 0, 100];
    half.extend_from_slice(&[0u8; 10]);
    stalled.write_all(&half).unwrap();
    // Another stops in the middle of the greeting.
    let mut mute = std::net::TcpStream::connect(&server.addr).unwrap();
    mute.write_all(b"FTP").unwrap();

    // Meanwhile everyone else is served.
    assert_serves(&server, local.path());

    assert!(
        wait_closed(&mut stalled),
        "the stalled peer's connection was not closed"
    );
    assert!(
        wait_closed(&mut mute),
        "the peer stalled in the greeting was not dropped"
    );
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("stalled in the middle of a frame")),
        "log: {}",
        server.log_text()
    );
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("dropped during handshake")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn an_idle_peer_is_closed_after_the_idle_timeout() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--idle-timeout")
        .arg("500ms")
        .start();
    let mut idle = raw_connection(&server, true);
    assert!(wait_closed(&mut idle), "the idle peer was not closed");
    assert!(
        wait_until(EVENT, || server.log_text().contains("idle")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn a_connection_closed_between_commands_is_replaced_before_the_next_one() {
    // The server drops the idle client; the next command must not fail for
    // it (the request was never sent), and the remote directory comes back.
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--idle-timeout")
        .arg("300ms")
        .start();
    let mut client = client_process(&server, local.path());
    let out = client
        .args(["-c", "mkdir d; cd d; ! sleep 2; echo after; pwd"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout_of(&out), "after\n/d\n", "{err}");
    assert!(!err.contains("connection lost"), "{err}");
    // It was dropped for idleness, not kept open.
    assert!(server.log_text().contains("idle"), "{}", server.log_text());
}

#[test]
fn garbage_and_huge_frames_cost_only_their_own_connection() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());

    // A frame announcing 4 GiB - 1 after a good handshake.
    let mut huge = raw_connection(&server, true);
    huge.write_all(&[0x02, 0xff, 0xff, 0xff, 0xff]).unwrap();
    // Bytes that are not the protocol at all.
    let mut http = std::net::TcpStream::connect(&server.addr).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // A frame of an unknown kind.
    let mut unknown = raw_connection(&server, true);
    unknown.write_all(&[0x7e, 0, 0, 0, 0]).unwrap();

    for (name, sock) in [
        ("huge", &mut huge),
        ("http", &mut http),
        ("unknown", &mut unknown),
    ] {
        assert!(wait_closed(sock), "{name}: connection left open");
    }
    // The socket may close a moment before the session logs why.
    for reason in ["more than the limit", "bad magic", "unknown message kind"] {
        assert!(
            wait_until(EVENT, || server.log_text().contains(reason)),
            "{reason:?} not logged: {}",
            server.log_text()
        );
    }
    assert_serves(&server, local.path());
}

#[test]
fn a_hundred_idle_connections_do_not_keep_a_client_out() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut idle = Vec::new();
    for i in 0..100 {
        let sock = match i % 3 {
            0 => std::net::TcpStream::connect(&server.addr).unwrap(),
            1 => raw_connection(&server, true),
            _ => {
                let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
                s.write_all(b"FTPSH").unwrap();
                s
            }
        };
        idle.push(sock);
    }
    let data = random_bytes(2_000_000, 5);
    std::fs::write(local.path().join("up.bin"), &data).unwrap();
    std::fs::write(root.path().join("down.bin"), &data).unwrap();
    let out = server
        .client(local.path())
        .args(["-c", "echo hi; put up.bin; get down.bin; md5 up.bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).starts_with("hi\n"));
    assert!(stdout_of(&out).contains(&md5_hex(&data)));
    assert_eq!(md5_file(&root.path().join("up.bin")), md5_hex(&data));
    assert_eq!(md5_file(&local.path().join("down.bin")), md5_hex(&data));
    // The idle sessions are still there: none was dropped to make room.
    let mut probe = idle.swap_remove(1);
    probe.write_all(&[0x07, 0, 0, 0, 0]).unwrap(); // Pwd
    let mut header = [0u8; 5];
    probe.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x82, "an idle session answers Pwd with Text");
}

#[test]
fn an_unwritable_local_destination_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), b"remote data").unwrap();
    // A path whose parent is a regular file cannot be created, even by root.
    std::fs::write(local.path().join("blocker"), b"a file, not a directory").unwrap();
    let server = Server::start(root.path());
    let out = server
        .client(local.path())
        .args(["-c", "get a.txt blocker/a.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.starts_with("ftpsh: get: "), "{err}");
    assert!(err.contains("blocker"), "the message names the path: {err}");
    assert!(
        err.to_lowercase().contains("not a directory"),
        "the message says why: {err}"
    );
    assert_eq!(names_in(local.path()), ["blocker"], "nothing stray is left");

    // Where permissions bite (not as root), a read-only directory too.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let ro = local.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = server
            .client(local.path())
            .args(["-c", "get a.txt ro/a.txt"])
            .output()
            .unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).to_lowercase().contains("permission denied"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(names_in(&ro), Vec::<String>::new());
    }
    // The connection and server are fine afterwards.
    server
        .client(local.path())
        .args(["-c", "get a.txt"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(local.path().join("a.txt")).unwrap(),
        b"remote data"
    );
}

#[test]
fn get_of_a_remote_directory_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("docs")).unwrap();
    std::fs::write(root.path().join("docs/x.txt"), b"x").unwrap();
    let server = Server::start(root.path());
    for cmd in ["get docs", "get docs copy"] {
        let out = server
            .client(local.path())
            .args(["-c", cmd])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.starts_with("ftpsh: get: "), "{cmd}: {err}");
        assert!(err.contains("is a directory"), "{cmd}: {err}");
        assert_eq!(names_in(local.path()), Vec::<String>::new(), "{cmd}");
    }
}

#[test]
fn the_connection_limit_refuses_the_extra_client_with_a_busy_message() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--max-connections")
        .arg("2")
        .start();
    let first = raw_connection(&server, true);
    let _second = raw_connection(&server, true);

    let out = server
        .client(local.path())
        .args(["-c", "echo hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("busy"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        server.log_text().contains("refused: already serving 2"),
        "log: {}",
        server.log_text()
    );

    // A place frees up: the next client gets in.
    drop(first);
    assert!(
        wait_admitted(&server, local.path()),
        "no client got the freed place"
    );
}

#[test]
fn the_exec_timeout_kills_the_command_and_its_process_group() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .allow_exec()
        .arg("--exec-timeout")
        .arg("500ms")
        .start();
    // The shell becomes `sleep` (its PID is the one written), and a background
    // job of another command shares its process group.
    for (script, pidfile) in [
        ("exec 'echo $$ > fg.pid; exec sleep 30'", "fg.pid"),
        ("exec 'sleep 30 & echo $! > bg.pid; wait'", "bg.pid"),
    ] {
        let out = server
            .client(local.path())
            .args(["-c", script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{script}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.starts_with("ftpsh: exec: "), "{err}");
        assert!(err.contains("time limit of 0.5 s"), "{err}");
        let pid = wait_for_pid(&root.path().join(pidfile));
        assert!(
            wait_until(EVENT, || !process_alive(pid)),
            "{script}: remote process {pid} survived the time limit"
        );
    }
    assert_serves(&server, local.path());
}

#[test]
fn a_client_that_disconnects_during_exec_gets_its_remote_process_killed() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    let mut client = client_process(&server, local.path())
        .args(["-c", GROUP_EXEC])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pids = wait_for_group(root.path());
    client.kill().unwrap();
    client.wait().unwrap();
    assert_group_killed(&pids, "its client");
    assert!(
        wait_until(EVENT, || server.log_text().contains("client gone")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn ctrl_c_during_exec_stops_the_remote_process() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    let mut client = client_process(&server, local.path())
        .args(["-c", GROUP_EXEC])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_group(root.path());
    // SAFETY: kill(2) on the child we spawned; no memory is involved.
    unsafe {
        libc::kill(client.id() as i32, libc::SIGINT);
    }
    let status = client.wait().unwrap();
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted script: {err}");
    assert!(err.contains("ftpsh: exec: interrupted"), "{err}");
    assert_group_killed(&pids, "Ctrl-C");
    assert_serves(&server, local.path());
}

#[test]
fn exec_output_over_the_limit_is_cut_and_the_command_killed() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .allow_exec()
        .arg("--exec-max-output")
        .arg("100000")
        .start();
    // Output past the limit, then a command that writes nothing more for longer
    // than the deadline below: only the server can end it in time (a SIGPIPE
    // stops the writer, not the `sleep`).
    let out_path = local.path().join("out");
    let err_path = local.path().join("err");
    let mut client = client_process(&server, local.path())
        .args([
            "-c",
            "exec 'echo $$ > cmd.pid; yes ftpsh | head -c 200000; exec sleep 60'",
        ])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = wait_for_pid(&root.path().join("cmd.pid"));
    let killed = wait_until(EVENT, || !process_alive(pid));
    if !killed {
        let _ = client.kill();
    }
    let status = client.wait().unwrap();
    assert!(killed, "remote process {pid} survived the output limit");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let out = std::fs::read(&out_path).unwrap();
    assert_eq!(out.len(), 100_000, "the output is cut exactly at the limit");
    assert!(out.starts_with(b"ftpsh\nftpsh\n"));
    assert!(err.starts_with("ftpsh: exec: "), "{err}");
    assert!(err.contains("output limit of 100000 bytes"), "{err}");
    // Within the limit, output is complete and the command succeeds.
    let out = server
        .client(local.path())
        .args(["-c", "exec 'seq 1 1000'"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let expected: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(stdout_of(&out), expected);
}

/// The bytes of a full handshake (greeting and `Auth`) for `server`.
fn handshake_bytes(server: &Server) -> Vec<u8> {
    let mut bytes = ftpsh_core::protocol::handshake::greeting().to_vec();
    let auth = ftpsh_core::protocol::Request::Auth {
        token: server.token.clone().unwrap_or_default(),
    };
    auth.write_to(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_handshake_trickled_byte_by_byte_is_cut_off_at_one_deadline() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("1s")
        .start();
    // A valid handshake, one byte every 150 ms: each read arrives well within
    // the stall limit, but the whole would take far longer than it.
    let bytes = handshake_bytes(&server);
    assert!(
        bytes.len() * 150 > 3_000,
        "the trickle must outlast the limit"
    );
    let mut sock = std::net::TcpStream::connect(&server.addr).unwrap();
    let mut writer = sock.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for b in bytes {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    // Without one deadline the handshake would complete and the (default
    // 600 s) idle timeout would keep the connection open past EVENT.
    let mut greeting = [0u8; 7];
    sock.read_exact(&mut greeting).unwrap();
    assert!(wait_closed(&mut sock), "the trickling peer was not dropped");
    assert!(
        wait_until(EVENT, || server.log_text().contains("not finished in time")),
        "log: {}",
        server.log_text()
    );
    trickle.join().unwrap();
    assert_serves(&server, local.path());
}

#[test]
fn an_oversized_authentication_frame_is_refused_from_its_header() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut sock = std::net::TcpStream::connect(&server.addr).unwrap();
    // Greeting, then an Auth header announcing 512 KiB that never comes: the
    // server must not wait for (or allocate) it.
    let mut bytes = ftpsh_core::protocol::handshake::greeting().to_vec();
    bytes.push(0x01);
    bytes.extend_from_slice(&(512u32 << 10).to_be_bytes());
    sock.write_all(&bytes).unwrap();
    assert!(wait_closed(&mut sock), "the connection was left open");
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("524288-byte authentication frame")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn an_uploader_that_stops_sending_is_dropped_after_the_stall_timeout() {
    use ftpsh_core::protocol::Request;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Idle peers are allowed a long time; a peer owing upload data is not.
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .arg("--idle-timeout")
        .arg("600")
        .start();
    let mut sock = raw_connection(&server, true);
    let mut frames = Vec::new();
    Request::Put {
        path: "upload.bin".into(),
        size: 1000,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more: false,
    }
    .write_to(&mut frames)
    .unwrap();
    Request::Data(vec![7u8; 100]).write_to(&mut frames).unwrap();
    sock.write_all(&frames).unwrap();
    assert!(
        wait_closed(&mut sock),
        "a stalled uploader kept its connection"
    );
    assert!(
        wait_until(EVENT, || server.log_text().contains("no upload data")),
        "log: {}",
        server.log_text()
    );
    assert!(!root.path().join("upload.bin").exists());
    assert_serves(&server, local.path());
}

#[test]
fn a_peer_queueing_requests_behind_a_download_is_dropped() {
    use ftpsh_core::protocol::Request;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(64 << 20).unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    // Read everything the server sends, so that only the queue can stop it.
    let mut reader = sock.try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut frames = Vec::new();
    Request::Get {
        path: "big.bin".into(),
        offset: 0,
    }
    .write_to(&mut frames)
    .unwrap();
    // 200 echoes of 60 KiB: far more than any client pipelines.
    let text = "x".repeat(60 << 10);
    for _ in 0..200 {
        Request::Echo { text: text.clone() }
            .write_to(&mut frames)
            .unwrap();
    }
    let _ = sock.write_all(&frames);
    let received = drain.join().unwrap();
    assert!(
        received < 64 << 20,
        "the whole download was sent ({received} bytes): the queue was not bounded"
    );
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("queued behind a reply")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

/// A stdout whose reader is already gone: every write to it fails with EPIPE,
/// as in `ftpsh ... | head -1` once `head` has exited.
fn closed_pipe() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills `fds` with two new descriptors, which we then own.
    let (read, write) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(read);
    Stdio::from(write)
}

#[test]
fn a_closed_stdout_stops_the_script_quietly() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    std::fs::write(local.path().join("sourced"), "echo a\nmkdir after\n").unwrap();
    std::fs::write(local.path().join("failing"), "rm nope\necho a\n").unwrap();
    std::fs::write(root.path().join("listed"), "x").unwrap();
    // Neither --keep-going nor a leading `-` goes on: nobody reads the output.
    // Status 0, unless a command had failed before the pipe closed.
    for (args, script, code, err) in [
        (&[][..], "echo a; echo b\nmkdir after", 0, ""),
        (&["--keep-going"], "echo a\nmkdir after", 0, ""),
        (&["--keep-going"], "-echo a\n-mkdir after", 0, ""),
        (&["--keep-going"], "ls\nmkdir after", 0, ""),
        (&["--keep-going"], "source sourced\nmkdir after", 0, ""),
        (
            &["--keep-going"],
            "rm nope\necho a\nmkdir after",
            1,
            "ftpsh: rm: /nope: no such file or directory\n",
        ),
        (
            &["--keep-going"],
            "source failing\nmkdir after",
            1,
            "ftpsh: failing:1: rm: /nope: no such file or directory\n",
        ),
    ] {
        let out = client_process(&server, local.path())
            .args(args)
            .args(["-c", script])
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let what = format!("{args:?} {script:?}");
        assert_eq!(stderr_of(&out), err, "{what}");
        assert_eq!(out.status.code(), Some(code), "{what}");
        assert!(!root.path().join("after").exists(), "{what}: ran on");
    }
    assert_serves(&server, local.path());
}

#[test]
fn a_reader_that_goes_away_stops_exec_and_the_script_quietly() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    // `ftpsh -c "exec yes" | head -1`: read one line, then close the pipe.
    let mut client = client_process(&server, local.path())
        .args(["--keep-going", "-c"])
        .arg("exec 'echo $$ > exec.pid; exec yes'\nmkdir after")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "y\n");
    drop(stdout);
    let pid = wait_for_pid(&root.path().join("exec.pid"));
    let mut status = None;
    assert!(
        wait_until(EVENT, || {
            status = client.try_wait().unwrap();
            status.is_some()
        }),
        "ftpsh kept running with nobody reading its output"
    );
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "", "nothing on stderr");
    assert_eq!(status.unwrap().code(), Some(0));
    assert!(!root.path().join("after").exists(), "the script ran on");
    assert!(
        wait_until(EVENT, || !process_alive(pid)),
        "remote process {pid} survived its reader"
    );
    assert_serves(&server, local.path());
}

/// Starts `ftpsh ARGS -f SCRIPT` whose first line is a remote `sleep`, sends
/// SIGINT once the sleep runs, and returns the exit status and stderr.
fn interrupt_script(server: &Server, local: &Path, args: &[&str]) -> (Option<i32>, String) {
    let pidfile = server.root.join("exec.pid");
    let _ = std::fs::remove_file(&pidfile);
    let script = local.join("script");
    std::fs::write(
        &script,
        "exec 'echo $$ > exec.pid; exec sleep 30'\nmkdir after\n-mkdir after-dash\n",
    )
    .unwrap();
    let mut client = client_process(server, local)
        .args(args)
        .arg("-f")
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_pid(&pidfile);
    // SAFETY: kill(2) on the child we spawned; no memory is involved.
    unsafe {
        libc::kill(client.id() as i32, libc::SIGINT);
    }
    let status = client.wait().unwrap();
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        wait_until(EVENT, || !process_alive(pid)),
        "remote process {pid} survived Ctrl-C"
    );
    (status.code(), err)
}

#[test]
fn ctrl_c_stops_the_whole_script_with_status_130_even_with_keep_going() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    for args in [&[][..], &["--keep-going"]] {
        let (code, err) = interrupt_script(&server, local.path(), args);
        assert_eq!(code, Some(130), "{args:?}: {err}");
        let script = local.path().join("script");
        let expected = format!("ftpsh: {}:1: exec: interrupted\n", script.display());
        assert_eq!(err, expected, "{args:?}");
        assert_eq!(names_in(root.path()), ["exec.pid"], "{args:?}: ran on");
    }
    assert_serves(&server, local.path());
}

#[test]
fn ctrl_c_during_the_rc_file_stops_a_script_before_it_starts() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    let rc = local.path().join("start.rc");
    std::fs::write(
        &rc,
        "exec 'echo $$ > exec.pid; exec sleep 30'\nmkdir after-rc\n",
    )
    .unwrap();
    let mut client = std::process::Command::new(bin("ftpsh"));
    client
        .arg(&server.addr)
        .args(["--keep-going", "-c", "mkdir from-script"])
        .current_dir(local.path())
        .env("NO_COLOR", "1")
        .env("HOME", local.path())
        .env("FTPSH_RC", &rc)
        .env("FTPSH_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut client = client.spawn().unwrap();
    let pid = wait_for_pid(&root.path().join("exec.pid"));
    // SAFETY: kill(2) on the child we spawned; no memory is involved.
    unsafe {
        libc::kill(client.id() as i32, libc::SIGINT);
    }
    let status = client.wait().unwrap();
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert_eq!(names_in(root.path()), ["exec.pid"], "ran on: {err}");
    assert!(
        wait_until(EVENT, || !process_alive(pid)),
        "remote process {pid} survived Ctrl-C"
    );
    assert_serves(&server, local.path());
}

#[test]
fn a_server_whose_log_reader_went_away_keeps_serving() {
    use std::io::BufRead;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // The log goes to a pipe nobody reads any more (`ftpsh-server 2>&1 | head`).
    let mut child = std::process::Command::new(bin("ftpsh-server"))
        .args(["--listen", "127.0.0.1:0", "--token", TOKEN, "--root"])
        .arg(root.path())
        .env_remove("FTPSH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    for i in 0..3 {
        let out = assert_cmd::Command::new(bin("ftpsh"))
            .args([addr.as_str(), "--norc", "-c", &format!("echo round {i}")])
            .env("FTPSH_TOKEN", TOKEN)
            .env("HOME", local.path())
            .current_dir(local.path())
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(
            stdout_of(&out),
            format!("round {i}\n"),
            "{}",
            stderr_of(&out)
        );
    }
    assert!(matches!(child.try_wait(), Ok(None)), "the server died");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn ctrl_c_during_md5_of_a_huge_file_stops_the_server_hashing() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // 64 GiB of holes: minutes of hashing, no disk space.
    let huge = std::fs::File::create(root.path().join("huge.bin")).unwrap();
    huge.set_len(64 << 30).unwrap();
    let server = Server::start(root.path());
    let server_pid = server.child.id();
    let idle_cpu = cpu_seconds(server_pid);
    let mut client = client_process(&server, local.path())
        .args(["-c", "md5 huge.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server is hashing once it has burnt some CPU on it.
    assert!(
        wait_until(EVENT, || cpu_seconds(server_pid) > idle_cpu + 0.5),
        "the server never started hashing"
    );
    // SAFETY: kill(2) on the child we spawned; no memory is involved.
    unsafe {
        libc::kill(client.id() as i32, libc::SIGINT);
    }
    let status = client.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The session notices the client is gone and ends, instead of hashing the
    // remaining gigabytes for nobody.
    assert!(
        wait_until(EVENT, || server.log_text().contains("disconnected")),
        "the server kept hashing after the client left: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}
