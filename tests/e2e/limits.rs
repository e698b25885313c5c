//! What a peer can make the server spend, end to end with the real server:
//! places under `--max-connections`, threads, time and memory. Each test plays
//! a peer that tries to hold more than its share, and checks that it cannot
//! while a real client is still served.
//!
//! No timing assertions: a test waits for an event (a closed socket, a log
//! line) with a generous deadline, and resource figures are read from the
//! server's `/proc` entry once the server has provably done what it would do.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;
use ftpsh_core::protocol::{Request, MAX_PAYLOAD};

/// A generous deadline for events that should take about a second.
const EVENT: Duration = Duration::from_secs(20);

/// True if the server has not closed `sock` (nothing to read, no EOF).
fn still_open(sock: &TcpStream) -> bool {
    sock.set_nonblocking(true).unwrap();
    let open = matches!(sock.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    sock.set_nonblocking(false).unwrap();
    open
}

/// Connections that connect and then send nothing at all.
fn silent_peers(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect()
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn peers_that_never_authenticate_cannot_lock_a_real_client_out() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // A long handshake deadline, so that only the limits decide who gets in.
    let server = ServerBuilder::new(root.path())
        .arg("--max-connections")
        .arg("2")
        .arg("--stall-timeout")
        .arg("120")
        .start();
    let mut held = Vec::new();
    // More silent peers than either limit (the handshake cap is 64 by
    // default), and again after a client got in, as a flood that reconnects.
    for round in 0..2 {
        held.extend(silent_peers(&server, 70));
        let out = server
            .client(local.path())
            .args(["-c", "echo hi"])
            .output()
            .unwrap();
        assert_eq!(
            stdout_of(&out),
            "hi\n",
            "round {round}: {}",
            stderr_of(&out)
        );
        assert!(out.status.success(), "round {round}");
    }
    assert!(
        server.log_text().contains("handshake unfinished"),
        "log: {}",
        server.log_text()
    );
}

#[test]
fn the_oldest_unauthenticated_connection_gives_way_to_a_new_one() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--max-handshakes")
        .arg("3")
        .arg("--stall-timeout")
        .arg("120")
        .start();
    let mut peers = silent_peers(&server, 4);
    assert!(
        wait_closed(&mut peers[0]),
        "the oldest handshake was not dropped for the fourth"
    );
    assert!(
        peers[1..].iter().all(still_open),
        "a newer handshake was dropped"
    );
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("handshake unfinished when 3 were in progress")),
        "log: {}",
        server.log_text()
    );
    // A real client takes the next oldest place, and is served.
    assert_serves(&server, local.path());
    assert!(wait_closed(&mut peers[1]), "the next oldest was kept");
    assert!(peers[2..].iter().all(still_open));
}

#[test]
fn busy_refusals_hold_no_thread_each_and_end_when_a_place_frees() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let mut server = ServerBuilder::new(root.path())
        .arg("--max-connections")
        .arg("1")
        .arg("--stall-timeout")
        .arg("120")
        .start();
    let pid = server.child.id();
    let session = raw_connection(&server, true);

    // A flood over the limit: every connection past the one session. The
    // threads are counted while it arrives and for a while after, when a
    // thread per refusal would still linger.
    let flood = 300;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while !done.load(SeqCst) {
                peak.fetch_max(threads_of(pid), SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let silent = silent_peers(&server, flood);
    std::thread::sleep(Duration::from_secs(1));
    // A real client over the limit is still told why, in one line.
    let out = server
        .client(local.path())
        .args(["-c", "echo hi"])
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("server busy"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // The acceptor, the session's two threads, the 64 handshakes of the
    // default cap, and a few evicted ones on their way out.
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        peak <= 3 + 64 + 16,
        "{peak} server threads for {flood} connections over the limit"
    );
    assert!(server.alive());

    // The session ends: the next client gets its place at once, whatever
    // was refused before.
    drop(session);
    assert!(
        wait_admitted(&server, local.path()),
        "no client got the freed place"
    );
    drop(silent);
}

#[test]
fn a_refused_streaming_upload_followed_by_silence_is_dropped_as_a_stall() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Idle peers may stay long; a peer that owes upload data may not, even
    // when the upload was refused (here: the target is a directory).
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .arg("--idle-timeout")
        .arg("600")
        .start();
    let mut sock = raw_connection(&server, true);
    sock.write_all(&encoded(Request::Put {
        path: "/".into(),
        size: 1000,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more: false,
    }))
    .unwrap();
    assert!(
        wait_closed(&mut sock),
        "a peer owing the data of a refused upload kept its connection"
    );
    assert!(
        wait_until(EVENT, || server.log_text().contains("no upload data")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn a_peer_trickling_one_frame_is_dropped_after_the_stall_timeout() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .start();
    let mut sock = raw_connection(&server, true);
    // An Echo of 1000 bytes, sent a byte at a time, each well within the
    // stall timeout of the last: the bytes sent would take 20 s.
    let frame = encoded(Request::Echo {
        text: "x".repeat(996),
    });
    let mut writer = sock.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for b in &frame[..200] {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(wait_closed(&mut sock), "the trickling peer was not dropped");
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("stalled in the middle of a frame")),
        "log: {}",
        server.log_text()
    );
    trickle.join().unwrap();
    assert_serves(&server, local.path());
}

#[test]
fn frame_headers_alone_do_not_make_the_server_allocate_their_payloads() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .start();
    let pid = server.child.id();
    let peers = 40;
    let mut socks: Vec<TcpStream> = (0..peers).map(|_| raw_connection(&server, true)).collect();
    let before = status_kb(pid, "VmHWM");
    // Each announces the largest frame and sends a few bytes of it.
    let frame = encoded(Request::Echo {
        text: "x".repeat(MAX_PAYLOAD - 4),
    });
    for s in &mut socks {
        s.write_all(&frame[..5 + 16]).unwrap();
    }
    // Each reader has read its header and waited for the rest when it drops
    // its peer; the high-water mark then holds whatever they allocated.
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .matches("stalled in the middle of a frame")
            .count()
            >= peers),
        "log: {}",
        server.log_text()
    );
    let grown_kb = status_kb(pid, "VmHWM").saturating_sub(before);
    assert!(
        grown_kb < 10 << 10,
        "{peers} frame headers grew the server's peak memory by {grown_kb} kB"
    );
    assert_serves(&server, local.path());
}

#[test]
fn a_peer_that_stops_reading_cannot_park_megabytes_of_requests() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Sparse: plenty to send, no disk.
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(256 << 20).unwrap();
    drop(big);
    // A long stall timeout: the sessions stay blocked writing while we look.
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("120")
        .start();
    let pid = server.child.id();
    let peers = 6;
    let mut socks: Vec<TcpStream> = (0..peers).map(|_| raw_connection(&server, true)).collect();
    for s in &mut socks {
        s.write_all(&encoded(Request::Get {
            path: "big.bin".into(),
            offset: 0,
        }))
        .unwrap();
    }
    // Time for each session to fill the socket buffers of a peer that never
    // reads and block in its write (it would otherwise see the requests below
    // between chunks, and drop the peer for queueing them).
    std::thread::sleep(Duration::from_secs(1));
    let before = status_kb(pid, "VmRSS");
    // Then megabyte requests, until the server stops taking them: a write that
    // waits a second means its reader has stopped reading.
    let echo = encoded(Request::Echo {
        text: "x".repeat(MAX_PAYLOAD - 4),
    });
    let writers: Vec<_> = socks
        .iter()
        .map(|s| {
            let mut w = s.try_clone().unwrap();
            let echo = echo.clone();
            std::thread::spawn(move || {
                w.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut sent = 0;
                while sent < 64 && w.write_all(&echo).is_ok() {
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let sent: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        sent.iter().all(|&n| n < 64),
        "the server took every request: {sent:?}"
    );
    let grown_mib = status_kb(pid, "VmRSS").saturating_sub(before) >> 10;
    assert!(
        grown_mib < 8 * peers as u64,
        "{peers} peers that stopped reading made the server hold {grown_mib} MiB more \
         (requests sent: {sent:?})"
    );
    assert_serves(&server, local.path());
}
