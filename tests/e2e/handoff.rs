//! Who reads a session's socket (`src/server/session.rs`): the session thread
//! itself between requests, its reader thread while a long request runs (a
//! download, a command), handing back at a frame boundary. These tests play a
//! raw peer across those hand-offs and check that every rule still holds on
//! either side of them: the idle timeout, the deadline of a frame that
//! trickles in (also one whose first bytes came with the previous frame),
//! cancellation, and the order of replies to pipelined requests.
//!
//! No timing assertions: a test waits for an event (a closed socket, a log
//! line, a reply) with a generous deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ftpsh_core::protocol::frame::{FrameReader, Header};
use ftpsh_core::protocol::{Reply, Request};

use crate::common::*;

/// A generous deadline for events that should take about a second.
const EVENT: Duration = Duration::from_secs(20);

/// The next reply, summed up: `text:T`, `start`, `data`, `end`, `cancelled`,
/// `ok`, `exit`, `error:M`, or the name of anything else.
fn reply(sock: &mut TcpStream, frames: &mut FrameReader) -> String {
    let (kind, len) = match frames.read_header(sock).expect("a reply") {
        Header::Frame { kind, len } => (kind, len),
        Header::Idle => panic!("no reply within the socket's timeout"),
    };
    let frame = frames.read_payload(sock, kind, len).expect("a reply");
    match Reply::decode(frame.kind, frame.payload).expect("a valid reply") {
        Reply::Text { text } => format!("text:{text}"),
        Reply::FileStart { .. } => "start".into(),
        Reply::Data(_) => "data".into(),
        Reply::FileEnd { .. } => "end".into(),
        Reply::Cancelled => "cancelled".into(),
        Reply::Ok => "ok".into(),
        Reply::Exit { .. } => "exit".into(),
        Reply::Error { message } => format!("error:{message}"),
        other => format!("{other:?}"),
    }
}

/// `n` echoes, each answered before the next is sent.
fn echoes(sock: &mut TcpStream, frames: &mut FrameReader, n: usize) {
    for i in 0..n {
        sock.write_all(&encoded(Request::Echo {
            text: format!("e{i}"),
        }))
        .unwrap();
        assert_eq!(reply(sock, frames), format!("text:e{i}"));
    }
}

/// A whole download: the number of data frames it came in.
fn download(sock: &mut TcpStream, frames: &mut FrameReader, path: &str) -> usize {
    sock.write_all(&encoded(Request::Get {
        path: path.into(),
        offset: 0,
    }))
    .unwrap();
    assert_eq!(reply(sock, frames), "start");
    let mut chunks = 0;
    loop {
        match reply(sock, frames).as_str() {
            "data" => chunks += 1,
            "end" => return chunks,
            other => panic!("unexpected reply {other} during a download"),
        }
    }
}

/// A file of several data chunks: its download runs long enough for the
/// reader thread to take the socket (the server checks for `Cancel` between
/// chunks).
fn several_chunks(root: &std::path::Path) {
    std::fs::write(root.join("f.bin"), random_bytes(1 << 20, 14)).unwrap();
}

#[test]
fn the_idle_timeout_holds_after_a_download_and_echoes() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    several_chunks(root.path());
    let server = ServerBuilder::new(root.path())
        .arg("--idle-timeout")
        .arg("1500ms")
        .start();
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    for _ in 0..3 {
        assert!(download(&mut sock, &mut frames, "f.bin") >= 4);
        echoes(&mut sock, &mut frames, 50);
    }
    // Then silence, with the session thread reading its own socket.
    assert!(
        wait_closed(&mut sock),
        "an idle peer kept its connection after downloads and echoes"
    );
    assert!(
        wait_until(EVENT, || server.log_text().contains("idle")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn the_idle_timeout_holds_when_silence_follows_a_download_at_once() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    several_chunks(root.path());
    let server = ServerBuilder::new(root.path())
        .arg("--idle-timeout")
        .arg("1500ms")
        .start();
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    echoes(&mut sock, &mut frames, 20);
    download(&mut sock, &mut frames, "f.bin");
    // The reader thread still has the socket: it must judge the silence.
    assert!(
        wait_closed(&mut sock),
        "an idle peer kept its connection after a download"
    );
    assert!(
        wait_until(EVENT, || server.log_text().contains("idle")),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

/// Trickles `bytes` one at a time, well within the stall timeout of the
/// last, until the server closes the connection.
fn trickle(sock: &TcpStream, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut writer = sock.try_clone().unwrap();
    std::thread::spawn(move || {
        for b in bytes {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn a_trickling_frame_after_a_long_reply_and_echoes_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    several_chunks(root.path());
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .start();
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    download(&mut sock, &mut frames, "f.bin");
    echoes(&mut sock, &mut frames, 20);
    // An echo of 1000 bytes a byte at a time: it would take 100 s.
    let frame = encoded(Request::Echo {
        text: "x".repeat(996),
    });
    let trickling = trickle(&sock, frame[..200].to_vec());
    assert!(wait_closed(&mut sock), "the trickling peer was not dropped");
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("stalled in the middle of a frame")),
        "log: {}",
        server.log_text()
    );
    trickling.join().unwrap();
    assert_serves(&server, local.path());
}

#[test]
fn a_frame_begun_with_the_previous_one_and_then_trickled_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    several_chunks(root.path());
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("500ms")
        .start();
    for long_reply_first in [false, true] {
        let mut sock = raw_connection(&server, true);
        let mut frames = FrameReader::new();
        if long_reply_first {
            download(&mut sock, &mut frames, "f.bin");
        }
        echoes(&mut sock, &mut frames, 5);
        // A whole echo and the first bytes of the next frame in one write:
        // the server may read them in one go, and the second frame's
        // deadline must run from then, not from its next byte.
        let slow = encoded(Request::Echo {
            text: "y".repeat(996),
        });
        let mut first = encoded(Request::Echo {
            text: "quick".into(),
        });
        first.extend_from_slice(&slow[..10]);
        sock.write_all(&first).unwrap();
        assert_eq!(reply(&mut sock, &mut frames), "text:quick");
        let trickling = trickle(&sock, slow[10..200].to_vec());
        assert!(
            wait_closed(&mut sock),
            "the trickling peer was not dropped (after a long reply: {long_reply_first})"
        );
        trickling.join().unwrap();
    }
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .matches("stalled in the middle of a frame")
            .count()
            == 2),
        "log: {}",
        server.log_text()
    );
    assert_serves(&server, local.path());
}

#[test]
fn cancel_and_pipelined_order_hold_after_many_echoes() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Sparse: a download far longer than the test, and no disk.
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    for round in 0..3 {
        echoes(&mut sock, &mut frames, 300);
        // Pipelined in one write: an echo, a long download, an echo.
        let mut batch = encoded(Request::Echo {
            text: format!("before{round}"),
        });
        batch.extend(encoded(Request::Get {
            path: "big.bin".into(),
            offset: 0,
        }));
        batch.extend(encoded(Request::Echo {
            text: format!("after{round}"),
        }));
        sock.write_all(&batch).unwrap();
        assert_eq!(reply(&mut sock, &mut frames), format!("text:before{round}"));
        assert_eq!(reply(&mut sock, &mut frames), "start");
        for _ in 0..4 {
            assert_eq!(reply(&mut sock, &mut frames), "data");
        }
        sock.write_all(&encoded(Request::Cancel)).unwrap();
        let mut got = reply(&mut sock, &mut frames);
        while got == "data" {
            got = reply(&mut sock, &mut frames);
        }
        assert_eq!(got, "cancelled");
        // The echo queued behind the download is answered after it.
        assert_eq!(reply(&mut sock, &mut frames), format!("text:after{round}"));

        // A command, cancelled as it runs.
        echoes(&mut sock, &mut frames, 300);
        sock.write_all(&encoded(Request::Exec {
            command: "sleep 60".into(),
        }))
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        sock.write_all(&encoded(Request::Cancel)).unwrap();
        assert!(
            wait_until(EVENT, || reply(&mut sock, &mut frames) == "cancelled"),
            "the command was not cancelled"
        );
    }
    echoes(&mut sock, &mut frames, 10);
    drop(sock);
    assert_serves(&server, local.path());
}

#[test]
fn many_pipelined_echoes_are_answered_in_order_across_hand_offs() {
    let root = tempfile::tempdir().unwrap();
    several_chunks(root.path());
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    for round in 0..3 {
        // Twenty echoes, a download and twenty more, in one write.
        let mut batch = Vec::new();
        for i in 0..20 {
            batch.extend(encoded(Request::Echo {
                text: format!("{round}a{i}"),
            }));
        }
        batch.extend(encoded(Request::Get {
            path: "f.bin".into(),
            offset: 0,
        }));
        for i in 0..20 {
            batch.extend(encoded(Request::Echo {
                text: format!("{round}b{i}"),
            }));
        }
        sock.write_all(&batch).unwrap();
        for i in 0..20 {
            assert_eq!(reply(&mut sock, &mut frames), format!("text:{round}a{i}"));
        }
        assert_eq!(reply(&mut sock, &mut frames), "start");
        let mut got = reply(&mut sock, &mut frames);
        while got == "data" {
            got = reply(&mut sock, &mut frames);
        }
        assert_eq!(got, "end");
        for i in 0..20 {
            assert_eq!(reply(&mut sock, &mut frames), format!("text:{round}b{i}"));
        }
    }
}

/// A served session on the Unix socket at `path` (no token).
fn unix_connection(path: &std::path::Path) -> UnixStream {
    let mut s = UnixStream::connect(path).expect("connect");
    let mut hello = ftpsh_core::protocol::handshake::greeting().to_vec();
    hello.extend_from_slice(&[0x01, 0, 0, 0, 4, 0, 0, 0, 0]);
    s.write_all(&hello).unwrap();
    let mut greeting = [0u8; 7];
    s.read_exact(&mut greeting).expect("server greeting");
    let mut header = [0u8; 5];
    s.read_exact(&mut header).expect("handshake reply");
    assert_eq!(header, [0x80, 0, 0, 0, 0], "expected Ok after the token");
    s
}

/// The peer sends a large echo and the next request in one write: it owes
/// nothing. The server's read-ahead takes the second request's first bytes
/// with the end of the first. The peer reads the large reply steadily but
/// slowly (every write of the server progresses well within the stall
/// timeout), so the server takes longer than the stall timeout to answer
/// the first request. The second request's
/// first bytes were read ahead with the first one; its deadline must not run
/// while the server itself is busy writing the first reply, or a peer that
/// did nothing wrong is dropped as "stalled in the middle of a frame".
#[test]
fn a_frame_read_ahead_is_not_timed_while_the_server_writes_a_slow_reply() {
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A Unix socket: its buffers are fixed (no TCP autotuning), so the
    // slow reader below does hold the server's writes back.
    let listen = format!("unix:{}", dir.path().join("s.sock").display());
    let server = ServerBuilder::new(root.path())
        .no_token()
        .listen(&listen)
        .arg("--stall-timeout")
        .arg("1s")
        .start();
    let mut sock = unix_connection(&dir.path().join("s.sock"));
    // A payload whose last piece, in the server's frame reader (which grows
    // its buffer from 16 KiB by doubling), is 1,000 bytes: that piece is read
    // through the 2 KiB read-ahead, which takes the next frame's first bytes.
    let overhead = encoded(Request::Echo {
        text: String::new(),
    })
    .len()
        - 5;
    let big = "a".repeat((512 << 10) + 1000 - overhead);
    let mut all = encoded(Request::Echo { text: big.clone() });
    all.extend_from_slice(&encoded(Request::Echo {
        text: "b".repeat(5000),
    }));
    sock.write_all(&all).unwrap();
    // Read the replies slowly: 16 KiB every 50 ms (about 320 KiB/s).
    struct Slow<'a>(&'a UnixStream);
    impl Read for Slow<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(50));
            let n = buf.len().min(16 << 10);
            (&*self.0).read(&mut buf[..n])
        }
    }
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut slow = Slow(&sock);
    let mut frames = FrameReader::new();
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let Ok(Header::Frame { kind, len }) = frames.read_header(&mut slow) else {
            break;
        };
        let Ok(f) = frames.read_payload(&mut slow, kind, len) else {
            break;
        };
        match Reply::decode(f.kind, f.payload).unwrap() {
            Reply::Text { text } => texts.push(text.len()),
            other => panic!("unexpected {other:?}"),
        }
    }
    if texts.len() < 2 {
        // For the message below: why the server closed the connection.
        wait_until(Duration::from_secs(10), || {
            server.log_text().contains("unix peer: dropped")
        });
    }
    assert_eq!(
        texts,
        vec![big.len(), 5000],
        "both echoes answered; log: {}",
        server.log_text()
    );
}
