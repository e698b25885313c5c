//! Batched uploads (`Put { more }`, protocol 3): the server holds a batch's
//! replies until the batch ends, installs its verified files together, and
//! then answers every upload in order. A raw client plays the peer so that
//! each end of a batch (its last upload, another request, a lost connection)
//! is exercised on its own.

use std::fs;
use std::time::{Duration, Instant};

use crate::common::*;
use ftpsh_core::protocol::{FrameReader, Reply, Request};

fn next_reply(frames: &mut FrameReader, sock: &mut std::net::TcpStream) -> String {
    try_reply(frames, sock).expect("a reply frame")
}

/// The next reply, or why none came (a timeout: the server holds it).
fn try_reply(frames: &mut FrameReader, sock: &mut std::net::TcpStream) -> Result<String, String> {
    let frame = frames.read(sock).map_err(|e| e.to_string())?;
    Ok(format!(
        "{:?}",
        Reply::decode(frame.kind, frame.payload).expect("a valid reply")
    ))
}

#[test]
fn a_batch_is_answered_in_order_once_its_last_upload_arrives() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("taken")).unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    let a = random_bytes(5000, 1);
    let b = random_bytes(70_000, 2);
    let c = random_bytes(1, 3);
    stream_put(&mut sock, "a.bin", &a, digest(&a), true);
    // Refused (a directory has that name): its data is still read.
    stream_put(&mut sock, "taken", &b, digest(&b), true);
    // A wrong digest: discarded.
    stream_put(&mut sock, "bad.bin", &b, digest(&a), true);
    stream_put(&mut sock, "c.bin", &c, digest(&c), true);
    stream_put(&mut sock, "empty.bin", b"", digest(b""), false);
    let replies: Vec<String> = (0..5).map(|_| next_reply(&mut frames, &mut sock)).collect();
    assert_eq!(replies[0], "Ok", "{replies:?}");
    assert!(
        replies[1].contains("Error") && replies[1].contains("taken: is a directory"),
        "{replies:?}"
    );
    assert!(
        replies[2].contains("Error") && replies[2].contains("MD5 mismatch"),
        "{replies:?}"
    );
    assert_eq!(&replies[3..], ["Ok", "Ok"], "{replies:?}");
    // Every `Ok` means installed: the files are there when it arrives.
    assert_eq!(fs::read(root.path().join("a.bin")).unwrap(), a);
    assert_eq!(fs::read(root.path().join("c.bin")).unwrap(), c);
    assert_eq!(fs::read(root.path().join("empty.bin")).unwrap(), b"");
    assert!(!root.path().join("bad.bin").exists());
    let left: Vec<String> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ftpsh-part"))
        .collect();
    assert!(left.is_empty(), "partials left behind: {left:?}");
    // The connection is still in step.
    Request::Echo {
        text: "after".into(),
    }
    .write_to(&mut sock)
    .unwrap();
    assert!(next_reply(&mut frames, &mut sock).contains("after"));
}

#[test]
fn another_request_ends_a_batch_and_is_answered_after_it() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    let a = random_bytes(3000, 4);
    let b = random_bytes(4000, 5);
    // Both say more follow, and none does: the echo ends the batch.
    stream_put(&mut sock, "a.bin", &a, digest(&a), true);
    stream_put(&mut sock, "b.bin", &b, digest(&b), true);
    Request::Echo {
        text: "ping".into(),
    }
    .write_to(&mut sock)
    .unwrap();
    assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
    assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
    let echo = next_reply(&mut frames, &mut sock);
    assert!(echo.contains("ping"), "{echo}");
    assert_eq!(fs::read(root.path().join("a.bin")).unwrap(), a);
    assert_eq!(fs::read(root.path().join("b.bin")).unwrap(), b);
}

#[test]
fn a_batch_cut_off_by_a_lost_connection_still_installs_its_verified_files() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let a = random_bytes(3000, 6);
    let b = random_bytes(4000, 7);
    stream_put(&mut sock, "a.bin", &a, digest(&a), true);
    stream_put(&mut sock, "b.bin", &b, digest(&b), true);
    // Half of a third upload, then the peer goes away.
    Request::Put {
        path: "c.bin".into(),
        size: 10,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more: true,
    }
    .write_to(&mut sock)
    .unwrap();
    Request::Data(vec![1, 2, 3]).write_to(&mut sock).unwrap();
    drop(sock);
    let installed = wait_until(Duration::from_secs(20), || {
        fs::read(root.path().join("a.bin")).ok().as_deref() == Some(&a[..])
            && fs::read(root.path().join("b.bin")).ok().as_deref() == Some(&b[..])
    });
    assert!(installed, "log: {}", server.log_text());
    // The unfinished one is not installed (its partial stays for `put -c`).
    assert!(!root.path().join("c.bin").exists());
}

#[test]
fn a_batch_that_never_ends_is_answered_in_slices() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    let data = b"x".to_vec();
    // More than the server holds at once, every one saying more follow: the
    // first ones must be answered without an end of batch (a peer cannot
    // make the server keep an unbounded number of open files).
    for i in 0..70 {
        stream_put(&mut sock, &format!("f{i}"), &data, digest(&data), true);
    }
    for i in 0..64 {
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok", "reply {i}");
    }
    assert!(root.path().join("f63").exists());
}

#[test]
fn put_r_of_many_small_files_installs_every_one_verified() {
    // Through the real client: slices of small files go as batches.
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    for d in 0..3 {
        fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..90 {
            let data = random_bytes(100 + f * 37, (d * 1000 + f) as u64);
            fs::write(tree.join(format!("d{d}/f{f}")), data).unwrap();
        }
    }
    let server = Server::start(root.path());
    let out = server
        .client(local.path())
        .args(["-c", "put -r tree"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("270 files"), "{}", stdout_of(&out));
    for d in 0..3 {
        for f in 0..90 {
            let rel = format!("tree/d{d}/f{f}");
            assert_eq!(
                md5_file(&root.path().join(&rel)),
                md5_file(&local.path().join(&rel)),
                "{rel}"
            );
        }
    }
}

#[test]
fn a_batch_left_waiting_is_ended_at_the_stall_timeout_not_the_idle_one() {
    // The peer promised more uploads and went silent without closing: it
    // owes data, so the stall timeout applies, and the verified upload is
    // installed then instead of keeping its name claimed for the idle timeout.
    let root = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout")
        .arg("1s")
        .arg("--idle-timeout")
        .arg("600s")
        .start();
    let mut sock = raw_connection(&server, true);
    let a = random_bytes(3000, 11);
    stream_put(&mut sock, "a.bin", &a, digest(&a), true);
    let installed = wait_until(Duration::from_secs(30), || {
        fs::read(root.path().join("a.bin")).ok().as_deref() == Some(&a[..])
    });
    assert!(installed, "log: {}", server.log_text());
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log_text()
            .contains("no upload data")),
        "log: {}",
        server.log_text()
    );
    drop(sock);
}

#[test]
fn held_uploads_into_one_directory_share_one_handle_on_it() {
    // Each held upload keeps its partial open; the directory they go to is
    // held once for all of them, so a batch costs about one descriptor per
    // file, not two.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("d")).unwrap();
    let server = Server::start(root.path());
    let pid = server.child.id();
    let fds = || {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut sock = raw_connection(&server, true);
    let before = fds();
    let data = b"held".to_vec();
    const HELD: usize = 50;
    for i in 0..HELD {
        stream_put(&mut sock, &format!("d/f{i}"), &data, digest(&data), true);
    }
    let partials = || {
        fs::read_dir(root.path().join("d"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".ftpsh-part")
            })
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(20), || partials() == HELD),
        "{} partials",
        partials()
    );
    // Give the last one time to be held (it is verified after it is written).
    std::thread::sleep(Duration::from_millis(300));
    let held = fds().saturating_sub(before);
    assert!(
        (HELD..HELD + 16).contains(&held),
        "{held} more descriptors for {HELD} held uploads"
    );
    // And they are all installed when the batch ends.
    Request::Echo { text: "end".into() }
        .write_to(&mut sock)
        .unwrap();
    let mut frames = FrameReader::new();
    for _ in 0..HELD {
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
    }
    assert_eq!(partials(), 0);
}

// Found by review; each failed when it was written.

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
        let first = try_reply(&mut frames, &mut sock);
        assert_eq!(
            first.as_deref(),
            Ok("Ok"),
            "last upload refused for {last}: the batch's replies were held \
             (log: {})",
            server.log_text()
        );
        let second = try_reply(&mut frames, &mut sock).unwrap();
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
        let reply = try_reply(&mut frames, &mut sock);
        assert!(
            reply.as_deref().is_ok_and(|r| r.contains("is a directory")),
            "reply {i}: {reply:?}: the refusals are held without bound"
        );
    }
}
