//! Bounded work per request (issue 11, item 8): one authenticated request
//! cannot make the server burn minutes of CPU. A megabyte glob of `*/..` and a
//! path of 300,000 components are each answered with a clear error within
//! seconds, and the server serves another client meanwhile.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use ftpsh_core::protocol::frame::{FrameReader, Header};
use ftpsh_core::protocol::{Reply, Request};

use crate::common::*;

/// A generous bound: these requests are refused in milliseconds.
const ANSWERED_WITHIN: Duration = Duration::from_secs(10);

/// Sends `request` on a served raw session and reads replies up to the one
/// that ends it: `Ok(entries)` or `Err(message)`, and how long it took.
fn ask(sock: &mut TcpStream, request: Request) -> (Result<usize, String>, Duration) {
    let started = Instant::now();
    request.write_to(sock).unwrap();
    let mut frames = FrameReader::new();
    let mut entries = 0;
    loop {
        let (kind, len) = match frames.read_header(sock).expect("a reply") {
            Header::Frame { kind, len } => (kind, len),
            Header::Idle => panic!("no reply within the socket's timeout"),
        };
        let frame = frames.read_payload(sock, kind, len).expect("a reply");
        match Reply::decode(frame.kind, frame.payload).expect("a valid reply") {
            Reply::Entries(e) => entries += e.len(),
            Reply::Ok | Reply::FileEnd { .. } => return (Ok(entries), started.elapsed()),
            Reply::Error { message } => return (Err(message.to_string()), started.elapsed()),
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

#[test]
fn a_megabyte_glob_and_a_300k_component_path_are_refused_quickly() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Enough directories for `*/..` to cost something at every step.
    for i in 0..20 {
        std::fs::create_dir_all(root.path().join(format!("d{i}/e"))).unwrap();
    }
    std::fs::write(root.path().join("d0/f"), b"f").unwrap();
    let server = Server::start(root.path());

    let glob = "*/..".repeat(250_000); // 1 MB
    let deep = "d0/".repeat(300_000); // 300,000 components, 900 KB
    let deep_file = format!("{}f", "d0/..//".repeat(140_000));
    let heavy: Vec<(&str, Request)> = vec![
        ("glob", Request::Glob { pattern: glob }),
        (
            "get",
            Request::Get {
                path: deep_file,
                offset: 0,
            },
        ),
        ("list", Request::List { path: deep.clone() }),
        (
            "walk",
            Request::Walk {
                path: deep.clone(),
                follow: true,
            },
        ),
        ("md5", Request::Md5 { path: deep.clone() }),
        (
            "glob of a path",
            Request::Glob {
                pattern: format!("{deep}*"),
            },
        ),
        // A long literal part would be copied into every match kept.
        (
            "glob with a long literal",
            Request::Glob {
                pattern: format!("*/{}", "x".repeat(1_000_000)),
            },
        ),
    ];
    let asking = std::thread::scope(|scope| {
        let askers: Vec<_> = heavy
            .into_iter()
            .map(|(what, request)| {
                let mut sock = raw_connection(&server, true);
                scope.spawn(move || (what, ask(&mut sock, request)))
            })
            .collect();
        // Meanwhile another client is served.
        assert_serves(&server, local.path());
        askers
            .into_iter()
            .map(|a| a.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (what, (answer, took)) in asking {
        assert!(took < ANSWERED_WITHIN, "{what}: answered after {took:?}");
        let message = answer.expect_err(what);
        assert!(
            message.contains("pattern too expensive")
                || message.contains("too many path components"),
            "{what}: {message}"
        );
        // The message quotes the request's path, cut short.
        assert!(
            message.len() < 400,
            "{what}: a {}-byte message",
            message.len()
        );
    }
    assert_serves(&server, local.path());

    // What stays under the limits still works.
    let mut sock = raw_connection(&server, true);
    let (found, _) = ask(
        &mut sock,
        Request::Glob {
            pattern: "*/../*/e".into(),
        },
    );
    assert_eq!(found, Ok(20));
    let (got, _) = ask(
        &mut sock,
        Request::Md5 {
            path: format!("{}d0/f", "d0/e/../../".repeat(1000)),
        },
    );
    assert!(got.is_ok(), "{got:?}");
}

/// Each level of a walk holds a directory handle, and descriptors are shared
/// by every session: a tree deeper than the walk goes is named, not copied
/// blindly, and the rest of it still arrives.
#[test]
fn a_walk_stops_at_its_depth_and_names_what_it_skipped() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let mut deep = root.path().join("t");
    for _ in 0..300 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), b"far down").unwrap();
    std::fs::write(root.path().join("t/top.txt"), b"up here").unwrap();
    let server = Server::start(root.path());
    let out = server
        .client(local.path())
        .args(["-c", "get -r t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr_of(&out);
    assert!(err.contains("directories deep"), "{err}");
    assert_eq!(
        std::fs::read(local.path().join("t/top.txt")).unwrap(),
        b"up here"
    );
}
