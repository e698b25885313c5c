//! Review of the session reading its own socket: a frame's deadline must
//! count the peer's time, not the server's.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ftpsh_core::protocol::frame::{FrameReader, Header};
use ftpsh_core::protocol::{Reply, Request};

use crate::common::*;

fn encoded(request: Request) -> Vec<u8> {
    let mut out = Vec::new();
    request.write_to(&mut out).unwrap();
    out
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
