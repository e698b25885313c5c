//! A peer that does not speak TLS, and handshake deadlines: clear one-line
//! errors, nobody hangs.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;
use ftpsh_core::tls::{
    accept, connect, looks_like_tls_client_hello, looks_like_tls_record, AcceptError, ClientTrust,
    ConnectError, PLAINTEXT_REFUSAL,
};

const GREETING: &[u8; 7] = b"FTPSH\x00\x01";

#[test]
fn first_bytes() {
    assert!(looks_like_tls_client_hello(0x16));
    assert!(!looks_like_tls_client_hello(b'F'));
    assert!(looks_like_tls_record(&PLAINTEXT_REFUSAL));
    assert!(!looks_like_tls_record(GREETING));
}

#[test]
fn tls_client_to_plaintext_server_that_answers() {
    // A plaintext server that sends its greeting (or an error) first.
    let (l, addr) = listener();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(GREETING).unwrap();
        let mut buf = [0u8; 7];
        let _ = s.read_exact(&mut buf);
        buf
    });
    let e = connect(tcp(&addr), "127.0.0.1", &ClientTrust::pins_only()).unwrap_err();
    assert!(matches!(e, ConnectError::NotTls), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the server does not speak TLS on this port (try without --tls)"
    );
    assert!(looks_like_tls_client_hello(h.join().unwrap()[0]));
}

#[test]
fn tls_client_to_plaintext_server_that_hangs_up() {
    // Today's ftpsh server: reads 7 bytes, sees bad magic, closes (with the
    // rest of the ClientHello unread: the client may see a reset).
    let (l, addr) = listener();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).unwrap();
        drop(s);
        buf
    });
    let e = connect(tcp(&addr), "127.0.0.1", &ClientTrust::pins_only()).unwrap_err();
    assert!(matches!(e, ConnectError::NoAnswer), "{e:?}");
    assert!(e.to_string().contains("try without --tls"));
    assert!(!e.to_string().contains('\n'));
    h.join().unwrap();
}

#[test]
fn plaintext_client_to_tls_server() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(tmp.path());
    let (l, addr) = listener();
    let cfg = id.server_config();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        accept(s, &cfg, T).unwrap_err()
    });
    let mut c = tcp(&addr);
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(GREETING).unwrap();
    let mut reply = [0u8; 7];
    c.read_exact(&mut reply).unwrap();
    assert!(looks_like_tls_record(&reply), "{reply:?}");
    assert_eq!(reply, PLAINTEXT_REFUSAL);
    // Then a clean end of file, not a hang.
    assert_eq!(c.read(&mut reply).unwrap(), 0);
    let e = h.join().unwrap();
    assert!(matches!(
        AcceptError::of(&e),
        Some(AcceptError::PlaintextClient)
    ));
    assert!(e.to_string().contains("without TLS"), "{e}");
}

#[test]
fn silent_client_times_out_on_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(tmp.path());
    let (l, addr) = listener();
    let cfg = id.server_config();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let t0 = Instant::now();
        let e = accept(s, &cfg, Duration::from_millis(300)).unwrap_err();
        (e, t0.elapsed())
    });
    let _c = tcp(&addr);
    let (e, took) = h.join().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn silent_server_times_out_on_the_client() {
    let (l, addr) = listener();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        drop(s);
    });
    let t0 = Instant::now();
    let trust = ClientTrust::pins_only().with_timeout(Duration::from_millis(300));
    let e = connect(tcp(&addr), "127.0.0.1", &trust).unwrap_err();
    assert!(matches!(e, ConnectError::Timeout), "{e:?}");
    assert!(t0.elapsed() < Duration::from_millis(900));
    h.join().unwrap();
}

#[test]
fn server_names() {
    let (_l, addr) = listener();
    let e = connect(tcp(&addr), "not a name!", &ClientTrust::pins_only()).unwrap_err();
    assert!(matches!(e, ConnectError::BadName(_)), "{e:?}");
    // An IPv6 literal, bracketed or not, is a valid name.
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(tmp.path());
    let (l, addr) = listener();
    let server = serve(l, &id, 2, |_| String::new());
    for name in ["[::1]", "::1"] {
        let e = connect(tcp(&addr), name, &ClientTrust::pins_only()).unwrap_err();
        assert!(matches!(e, ConnectError::Untrusted { .. }), "{name}: {e:?}");
    }
    server.join().unwrap();
}
