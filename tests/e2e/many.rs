//! A thousand sessions at once: the server keeps serving, turns away the one
//! past `--max-connections` with "server busy", and gives back every thread
//! and descriptor when they leave.

use std::io::{Read, Write};
use std::time::Duration;

use ftpsh_core::protocol::{FrameReader, Reply, Request};

use crate::common::*;

const SESSIONS: usize = 1000;

fn count(dir: String) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The server's open descriptors and threads.
fn resources(pid: u32) -> (usize, usize) {
    (
        count(format!("/proc/{pid}/fd")),
        count(format!("/proc/{pid}/task")),
    )
}

/// [`resources`] once they hold still: the last client's session thread may
/// still be on its way out, and counting it would raise the baseline.
fn settled(pid: u32) -> (usize, usize) {
    let mut last = resources(pid);
    let mut still = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while still < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = resources(pid);
        if now == last {
            still += 1;
        } else {
            (last, still) = (now, 0);
        }
    }
    last
}

/// An `echo` on an authenticated raw connection.
fn echo(sock: &mut std::net::TcpStream, text: &str) -> String {
    Request::Echo {
        text: text.to_string(),
    }
    .write_to(sock)
    .unwrap();
    let mut frames = FrameReader::new();
    let frame = frames.read(sock).unwrap();
    match Reply::decode(frame.kind, frame.payload).unwrap() {
        Reply::Text { text } => text.to_string(),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn a_thousand_sessions_are_served_the_next_is_busy_and_all_is_freed_after() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--max-connections")
        .arg(&SESSIONS.to_string())
        .arg("--quiet")
        .start();
    let pid = server.child.id();
    // One session first, so that whatever a first connection sets up once
    // (a thread pool, a cache) is in the baseline.
    assert_serves(&server, local.path());
    let before = settled(pid);

    let mut open: Vec<_> = (0..SESSIONS)
        .map(|_| raw_connection(&server, true))
        .collect();
    let (fds, threads) = resources(pid);
    assert!(
        fds >= before.0 + SESSIONS && threads >= before.1 + SESSIONS,
        "{SESSIONS} sessions hold at least a descriptor and a thread each: {before:?} -> {:?}",
        (fds, threads)
    );
    // Every one of them is served, the first and the last alike.
    assert_eq!(echo(&mut open[0], "first"), "first");
    assert_eq!(echo(&mut open[SESSIONS - 1], "last"), "last");

    // One more, with the right token: turned away with a reason.
    let out = server
        .client(local.path())
        .args(["-c", "echo hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("server busy"),
        "{}",
        stderr_of(&out)
    );

    // A place freed is a place taken.
    drop(open.pop());
    assert!(
        wait_until(Duration::from_secs(30), || {
            server
                .client(local.path())
                .args(["-c", "echo again"])
                .output()
                .is_ok_and(|o| o.status.success())
        }),
        "a freed place is not given to the next client"
    );

    // Everyone leaves: every thread and descriptor comes back.
    for mut s in open.drain(..) {
        let _ = s.write_all(&[]);
        let _ = s.shutdown(std::net::Shutdown::Both);
        let _ = s.read(&mut [0u8; 1]);
    }
    let mut now = (0, 0);
    let freed = wait_until(Duration::from_secs(60), || {
        now = resources(pid);
        now.0 <= before.0 && now.1 <= before.1
    });
    assert!(
        freed,
        "descriptors and threads before: {before:?}, after everyone left: {now:?}"
    );
    assert_serves(&server, local.path());
}
