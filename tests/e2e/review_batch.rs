//! Review findings on batched uploads (`Put { more }`): each test here failed
//! against 3b0756a when it was written.

use std::fs;
use std::time::{Duration, Instant};

use crate::common::*;
use ftpsh_core::protocol::{FrameReader, Reply, Request};

fn stream_put(sock: &mut std::net::TcpStream, path: &str, data: &[u8], md5: [u8; 16], more: bool) {
    Request::Put {
        path: path.into(),
        size: data.len() as u64,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more,
    }
    .write_to(sock)
    .unwrap();
    if !data.is_empty() {
        Request::Data(data.to_vec()).write_to(sock).unwrap();
    }
    Request::PutEnd { md5 }.write_to(sock).unwrap();
}

fn digest(data: &[u8]) -> [u8; 16] {
    let hex = md5_hex(data);
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}

fn next_reply(frames: &mut FrameReader, sock: &mut std::net::TcpStream) -> Result<String, String> {
    let frame = frames.read(sock).map_err(|e| e.to_string())?;
    Ok(format!(
        "{:?}",
        Reply::decode(frame.kind, frame.payload).expect("a valid reply")
    ))
}

/// The last upload of a batch (`more: false`) is refused before its data (its
/// name is a directory) or fails its verification: the batch has ended all
/// the same, and every held reply must come now. The real client waits for
/// them without sending anything else, so a server that keeps holding them
/// leaves `put -r` hanging until its reply timeout (120 s), then failing the
/// whole slice with a lost connection.
#[test]
fn a_batch_whose_last_upload_is_refused_is_answered_at_once() {
    for last in ["a directory", "a wrong digest"] {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("taken")).unwrap();
        let server = Server::start(root.path());
        let mut sock = raw_connection(&server, true);
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut frames = FrameReader::new();
        let a = random_bytes(3000, 11);
        let b = random_bytes(4000, 12);
        stream_put(&mut sock, "a.bin", &a, digest(&a), true);
        match last {
            "a directory" => stream_put(&mut sock, "taken", &b, digest(&b), false),
            _ => stream_put(&mut sock, "b.bin", &b, digest(&a), false),
        }
        let first = next_reply(&mut frames, &mut sock);
        assert_eq!(
            first.as_deref(),
            Ok("Ok"),
            "last upload refused for {last}: the batch's replies were held \
             (log: {})",
            server.log_text()
        );
        let second = next_reply(&mut frames, &mut sock).unwrap();
        assert!(second.contains("Error"), "{second}");
    }
}

/// The same through the real client: `put -r` whose last file of a slice is
/// refused by the server must not wait for the reply timeout.
#[test]
fn put_r_whose_last_file_is_refused_does_not_hang() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("a"), b"alpha").unwrap();
    fs::write(tree.join("z"), b"omega").unwrap();
    // On the server, the last file's name is taken by a directory.
    fs::create_dir_all(root.path().join("tree/z/inner")).unwrap();
    let server = Server::start(root.path());
    let started = Instant::now();
    let out = server
        .client(local.path())
        .env("FTPSH_TIMEOUT", "8")
        .args(["-c", "put -r tree"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    let took = started.elapsed();
    assert!(
        !err.contains("connection") && !err.contains("silent"),
        "the slice failed as a whole after {took:?}: {err}"
    );
    assert_eq!(
        fs::read(root.path().join("tree/a")).unwrap(),
        b"alpha",
        "{err}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
}

/// A batch held by a connection that then stalls (a client that lost its
/// network between two uploads of a slice, or any peer that sends `more` and
/// waits) is installed only when the session ends (the idle timeout, 600 s by
/// default): by then a newer upload of the same name may have been answered
/// `Ok`, and the held, older data silently replaces it.
#[test]
fn a_held_upload_is_not_installed_over_a_newer_one_when_its_session_ends() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let old = b"old content".to_vec();
    let mut sock = raw_connection(&server, true);
    stream_put(&mut sock, "x.txt", &old, digest(&old), true);
    // Give the server time to receive and verify it.
    std::thread::sleep(Duration::from_millis(500));
    // Another client (or the same user, reconnected) uploads a newer x.txt.
    fs::write(local.path().join("x.txt"), b"new content").unwrap();
    let out = server
        .client(local.path())
        .args(["-c", "put x.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(fs::read(root.path().join("x.txt")).unwrap(), b"new content");
    // The first connection goes away without ever ending its batch.
    drop(sock);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        String::from_utf8_lossy(&fs::read(root.path().join("x.txt")).unwrap()),
        "new content",
        "an upload answered Ok was replaced by an older, never-answered one"
    );
}

/// Refused uploads are held too, but only a verified one checks whether the
/// batch is full: a peer that streams refused uploads with `more` (an empty
/// `Put` to a directory's name costs it ~30 bytes) makes the server keep a
/// message for each, without bound, and never answers. It must be answered in
/// batches of at most 64, as verified uploads are.
#[test]
fn refused_uploads_that_say_more_follow_are_answered_in_slices_too() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("taken")).unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut frames = FrameReader::new();
    for _ in 0..200 {
        stream_put(&mut sock, "taken", b"", digest(b""), true);
    }
    for i in 0..64 {
        let reply = next_reply(&mut frames, &mut sock);
        assert!(
            reply.as_deref().is_ok_and(|r| r.contains("is a directory")),
            "reply {i}: {reply:?}: the refusals are held without bound"
        );
    }
}
