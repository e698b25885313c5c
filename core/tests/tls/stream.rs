//! TlsStream: two threads at once, timeouts, shutdown, ends of file.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use ftpsh_core::tls::TlsStream;
use sha2::{Digest, Sha256};

/// Writes `total` pseudo-random bytes in pieces of random size, then ends
/// the direction with close_notify. Returns the digest of what was sent.
/// Every 64 MiB it asks for a key update (which the peer's reader answers
/// while its writer is busy).
fn send_all<S: std::os::fd::AsFd>(s: TlsStream<S>, total: u64, seed: u64) -> [u8; 32] {
    const REKEY: u64 = 64 << 20;
    let mut sizes = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut data = Rng(seed);
    let mut buf = vec![0u8; 256 * 1024];
    let mut h = Sha256::new();
    let mut left = total;
    let mut w = &s;
    while left > 0 {
        let n = (1 + sizes.below(buf.len() as u64)).min(left) as usize;
        data.fill(&mut buf[..n]);
        w.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        if (total - left) / REKEY != (total - left + n as u64) / REKEY {
            s.refresh_traffic_keys().unwrap();
        }
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write).unwrap();
    h.finalize().into()
}

/// Reads to the end of file with reads of random size: (bytes, digest).
fn recv_all<S: std::os::fd::AsFd>(s: TlsStream<S>, seed: u64) -> (u64, [u8; 32]) {
    let mut sizes = Rng(seed);
    let mut buf = vec![0u8; 200 * 1024];
    let mut h = Sha256::new();
    let mut total = 0u64;
    let mut r = &s;
    loop {
        let want = 1 + sizes.below(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want]).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    (total, h.finalize().into())
}

#[test]
fn full_duplex_300_mib_each_way_with_checksums() {
    const N: u64 = 300 << 20;
    let (server, client) = tls_pair();
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        // Four threads: a reader and a writer on each side, all at once.
        let sw = {
            let s = server.clone();
            std::thread::spawn(move || send_all(s, N, 1))
        };
        let sr = {
            let s = server.clone();
            std::thread::spawn(move || recv_all(s, 11))
        };
        let cw = {
            let s = client.clone();
            std::thread::spawn(move || send_all(s, N, 2))
        };
        let cr = {
            let s = client.clone();
            std::thread::spawn(move || recv_all(s, 12))
        };
        let r = (
            sw.join().unwrap(),
            sr.join().unwrap(),
            cw.join().unwrap(),
            cr.join().unwrap(),
        );
        tx.send(r).unwrap();
    });
    let (s_sent, s_got, c_sent, c_got) = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("no deadlock: finished within 300 s");
    assert_eq!(s_got, (N, c_sent), "client -> server");
    assert_eq!(c_got, (N, s_sent), "server -> client");
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "full duplex: 2 x 300 MiB in {secs:.2} s ({:.0} MiB/s each way)",
        300.0 / secs
    );
}

#[test]
fn both_sides_write_large_replies_while_the_other_writes_too() {
    // The ftpsh pattern: each side's reader thread queues what it reads to
    // a writer thread that answers with more than the socket buffers hold;
    // both peers are in write() at the same time.
    let (server, client) = tls_pair();
    let echo = |s: TlsStream| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let r = s.clone();
        let reader = std::thread::spawn(move || {
            let mut r = &r;
            loop {
                let mut b = vec![0u8; 4 << 20];
                match r.read_exact(&mut b) {
                    Ok(()) => tx.send(b).unwrap(),
                    Err(_) => break,
                }
            }
        });
        let writer = std::thread::spawn(move || {
            let mut w = &s;
            let mut n = 0;
            for b in rx {
                w.write_all(&b).unwrap();
                n += 1;
            }
            n
        });
        (reader, writer)
    };
    let (sr, sw) = echo(server.clone());
    // The client sends 16 blocks of 4 MiB while reading the echo on another thread.
    let c2 = client.clone();
    let creader = std::thread::spawn(move || {
        let mut r = &c2;
        let mut got = 0usize;
        let mut b = vec![0u8; 1 << 20];
        while got < 64 << 20 {
            got += r.read(&mut b).unwrap();
        }
        got
    });
    let block = vec![7u8; 4 << 20];
    for _ in 0..16 {
        (&client).write_all(&block).unwrap();
    }
    assert_eq!(creader.join().unwrap(), 64 << 20);
    client.shutdown(Shutdown::Both).unwrap();
    sr.join().unwrap();
    drop(server);
    assert_eq!(sw.join().unwrap(), 16);
}

#[test]
fn read_timeout_then_the_stream_still_works() {
    let (server, client) = tls_pair();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(client.read_timeout(), Some(Duration::from_millis(200)));
    assert!(client.set_read_timeout(Some(Duration::ZERO)).is_err());
    let t0 = Instant::now();
    let e = (&client).read(&mut [0u8; 8]).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
    (&server).write_all(b"late").unwrap();
    let mut b = [0u8; 4];
    (&client).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"late");
    // Timeouts are shared by clones, as a socket's are.
    assert_eq!(
        client.clone().read_timeout(),
        Some(Duration::from_millis(200))
    );
}

#[test]
fn write_timeout_when_the_peer_does_not_read() {
    let (server, client) = tls_pair();
    client
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let buf = vec![1u8; 1 << 20];
    let t0 = Instant::now();
    let mut sent = 0usize;
    let e = loop {
        match (&client).write(&buf) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never timed out");
    };
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(sent > 0);
    drop(server);
}

#[test]
fn shutdown_wakes_a_reader_blocked_on_another_thread() {
    let (server, client) = tls_pair();
    let r = client.clone();
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let n = (&r).read(&mut [0u8; 16]);
        (n.map_err(|e| e.kind()), t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    client.shutdown(Shutdown::Both).unwrap();
    let (n, took) = h.join().unwrap();
    assert_eq!(n, Ok(0));
    assert!(took < Duration::from_secs(2));
    // The peer sees a clean end of file (close_notify).
    assert_eq!((&server).read(&mut [0u8; 16]).unwrap(), 0);
    // And writing to a shut stream fails at once.
    assert_eq!(
        (&client).write(b"x").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[test]
fn ends_of_file() {
    // Dropping the last handle sends close_notify: a clean end.
    let (server, client) = tls_pair();
    (&client).write_all(b"bye").unwrap();
    drop(client);
    let mut v = Vec::new();
    (&server).read_to_end(&mut v).unwrap();
    assert_eq!(v, b"bye");

    // A TCP end without close_notify (a crashed peer, or a truncation
    // attack) is an error, not a quiet end of file.
    let (server, client) = tls_pair();
    rustix::net::shutdown(client.get_ref(), rustix::net::Shutdown::Write).unwrap();
    let e = (&server).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);

    // Writing to a peer that is gone fails, it does not hang.
    let (server, client) = tls_pair();
    drop(server);
    std::thread::sleep(Duration::from_millis(50));
    let buf = vec![0u8; 1 << 20];
    let mut err = None;
    for _ in 0..64 {
        if let Err(e) = (&client).write(&buf) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("write to a closed peer fails");
    assert!(
        matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{e:?}"
    );
}

#[test]
fn works_over_a_unix_socket_too() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(tmp.path());
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let cfg = id.server_config();
    let h = std::thread::spawn(move || ftpsh_core::tls::accept(a, &cfg, T).unwrap());
    let trust = ftpsh_core::tls::ClientTrust::pins_only()
        .with_pin(Some(&id.fingerprint()))
        .unwrap();
    let (c, _) = ftpsh_core::tls::connect(b, "localhost", &trust).unwrap();
    let s = h.join().unwrap();
    const N: u64 = 8 << 20;
    let w = {
        let c = c.clone();
        std::thread::spawn(move || send_all(c, N, 5))
    };
    let (n, d) = recv_all(s, 6);
    assert_eq!((n, d), (N, w.join().unwrap()));
}

#[test]
fn a_signal_interrupts_a_blocked_read_as_on_a_socket() {
    extern "C" fn on_usr1(_: libc::c_int) {}
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        sa.sa_flags = 0; // no SA_RESTART
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let (server, client) = tls_pair();
    let (tx, rx) = mpsc::channel();
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&interrupted);
    let r = client.clone();
    let h = std::thread::spawn(move || {
        tx.send(unsafe { libc::pthread_self() }).unwrap();
        let mut b = [0u8; 4];
        let first = (&r).read(&mut b).map_err(|e| e.kind());
        if first == Err(ErrorKind::Interrupted) {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        // read_exact retries after EINTR and still gets the bytes.
        (&r).read_exact(&mut b).unwrap();
        (first, b)
    });
    let tid = rx.recv().unwrap();
    // Signalled until the blocked read reports it (on a loaded machine the
    // thread may not have reached its read yet), for ten seconds at most;
    // the data is sent in any case, so the reader always ends.
    for _ in 0..200 {
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(50));
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
    }
    (&server).write_all(b"ping").unwrap();
    let (first, b) = h.join().unwrap();
    assert_eq!(first, Err(ErrorKind::Interrupted));
    assert_eq!(&b, b"ping");
}
