//! A second audit of the client against hostile servers (`common::hostile`
//! and, where the scripted server cannot misbehave enough, raw sockets): what
//! `hostile.rs` did not cover yet.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{FrameReader, Reply};

use crate::common::hostile::*;

/// A generous deadline for a run that should take seconds: a safety net, not
/// an assertion (a client still running then is killed, `code` is `None`).
const EVENT: Duration = Duration::from_secs(60);

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A server that accepts the client's greeting and token, answers with its
/// own greeting, and then trickles the answer to the token, a byte every
/// 300 ms: each read of the client gets something long before its timeout,
/// and the answer (a refusal of 100 000 bytes) would take eight hours.
/// The handshake has one deadline as a whole: the client gives up at it
/// (status 3, "cannot connect"), with a message saying so.
#[test]
fn a_server_that_trickles_its_handshake_is_given_up_at_one_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                if handshake::read_greeting(&mut stream).is_err() {
                    return;
                }
                let mut frames = FrameReader::new();
                if frames.read(&mut stream).is_err() {
                    return;
                }
                let message = "x".repeat(100_000);
                let mut answer = handshake::greeting().to_vec();
                Reply::Error { message: &message }
                    .write_to(&mut answer)
                    .unwrap();
                // The greeting and the frame's header at once, then the rest
                // a byte at a time (for at most ten minutes).
                let (head, rest) = answer.split_at(handshake::GREETING_LEN + 5);
                if stream.write_all(head).is_err() {
                    return;
                }
                for byte in rest.iter().take(2000) {
                    std::thread::sleep(Duration::from_millis(300));
                    if stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                }
                let mut sink = [0u8; 64];
                let _ = stream.read(&mut sink);
            });
        }
    });
    let home = home();
    let run = run_client(
        std::process::Command::new(crate::common::bin("ftpsh"))
            .arg(&addr)
            .args(["--norc", "-c", "echo hi"])
            .current_dir(home.path())
            .env("HOME", home.path())
            .env("FTPSH_TOKEN", "t")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null()),
        EVENT,
    );
    assert_eq!(
        run.code,
        Some(3),
        "the client waited on a trickling handshake (exit {:?} after {:?}): {}",
        run.code,
        run.elapsed,
        run.stderr
    );
    assert!(
        run.stderr.contains("handshake") && run.stderr.contains("timed out"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}
