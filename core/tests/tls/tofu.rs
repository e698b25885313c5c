//! Trust on first use, pins, and a changed server identity.

use std::io::{Read, Write};

use crate::common::*;
use ftpsh_core::tls::known::host_port;
use ftpsh_core::tls::{connect, AcceptError, ClientTrust, ConnectError, KnownServers, Trust};

/// A server that echoes one line back, and reports what it got.
fn echo_once(mut s: ftpsh_core::tls::TlsStream) -> String {
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    s.write_all(&buf[..n]).unwrap();
    format!("GOT {}", String::from_utf8_lossy(&buf[..n]))
}

#[test]
fn unknown_is_reported_then_the_recorded_pin_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(&tmp.path().join("id"));
    let (l, addr) = listener();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let server = serve(l, &id, 2, echo_once);
    let known = KnownServers::new(tmp.path().join("data/ftpsh/known_servers"));
    let key = host_port("127.0.0.1", port);

    // 1. Unknown: the handshake fails, the fingerprint is reported.
    assert_eq!(known.lookup(&key).unwrap(), None);
    let trust = ClientTrust::pins_only();
    let err = connect(tcp(&addr), "127.0.0.1", &trust).unwrap_err();
    let ConnectError::Untrusted {
        trust: Trust::Unknown { fingerprint },
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*fingerprint, id.fingerprint());
    assert!(err.to_string().contains(&id.fingerprint()));
    // The user says yes: recorded.
    known.record(&key, fingerprint).unwrap();

    // 2. Pinned from the file: accepted, data flows.
    let entry = known.lookup(&key).unwrap().unwrap();
    let trust = ClientTrust::pins_only()
        .with_pin(Some(&entry.fingerprint))
        .unwrap();
    let (mut s, how) = connect(tcp(&addr), "127.0.0.1", &trust).unwrap();
    assert_eq!(
        how,
        Trust::Pinned {
            fingerprint: id.fingerprint()
        }
    );
    s.write_all(b"token").unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"token");
    let alpn = s.with_connection(|c| c.alpn_protocol().map(<[u8]>::to_vec));
    assert_eq!(alpn.as_deref(), Some(ftpsh_core::tls::ALPN));
    drop(s);

    // The server saw: a refusal (the client did not trust it), then the token.
    let got = server.join().unwrap();
    assert!(
        got[0].starts_with("ERR ") && got[0].contains("does not trust"),
        "{got:?}"
    );
    assert_eq!(got[1], "GOT token");
}

#[test]
fn changed_identity_is_refused_before_any_application_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let old = identity(&tmp.path().join("old"));
    let new = identity(&tmp.path().join("new"));
    let (l, addr) = listener();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    // The server now runs with the new identity; it reports every accept.
    let server = serve(l, &new, 1, echo_once);
    let known = KnownServers::new(tmp.path().join("known_servers"));
    let key = host_port("127.0.0.1", port);
    known.record("other:1", &new.fingerprint()).unwrap();
    known.record(&key, &old.fingerprint()).unwrap();

    let entry = known.lookup(&key).unwrap().unwrap();
    assert_eq!(entry.line, 2);
    let trust = ClientTrust::pins_only()
        .with_pin(Some(&entry.fingerprint))
        .unwrap();
    let err = connect(tcp(&addr), "127.0.0.1", &trust).unwrap_err();
    let ConnectError::Untrusted {
        trust: Trust::Mismatch { expected, got },
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*expected, old.fingerprint());
    assert_eq!(*got, new.fingerprint());
    let msg = known.mismatch_message(&key, &entry, got);
    assert!(msg.contains(&old.fingerprint()) && msg.contains(&new.fingerprint()));
    assert!(
        msg.contains(&format!("{}:2", known.path().display())),
        "{msg}"
    );

    // The server's accept failed on the client's alert: it never had a
    // stream to read application bytes from.
    let got = server.join().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("ERR "), "{got:?}");
    assert!(got[0].contains("does not trust"), "{got:?}");
}

#[test]
fn server_log_line_for_an_unknown_identity_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(&tmp.path().join("id"));
    let (l, addr) = listener();
    let cfg = id.server_config();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        ftpsh_core::tls::accept(s, &cfg, T).unwrap_err()
    });
    let e = connect(tcp(&addr), "127.0.0.1", &ClientTrust::pins_only()).unwrap_err();
    assert!(matches!(e, ConnectError::Untrusted { .. }));
    let se = h.join().unwrap();
    let ae = AcceptError::of(&se).expect("an AcceptError inside");
    assert!(matches!(ae, AcceptError::Tls(_)), "{ae:?}");
    assert_eq!(se.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn signatures_are_still_checked_for_a_pinned_certificate() {
    // A server that presents the pinned certificate but holds another key
    // cannot finish the handshake: CertificateVerify is checked.
    let tmp = tempfile::tempdir().unwrap();
    let real = identity(&tmp.path().join("real"));
    let thief_key = rcgen::KeyPair::generate().unwrap();
    let cert_pem = std::fs::read_to_string(tmp.path().join("real/cert.pem")).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(
        rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap(),
    );
    let key = rustls::pki_types::PrivateKeyDer::try_from(thief_key.serialize_der()).unwrap();
    let provider = ftpsh_core::tls::provider();
    let signer = provider.key_provider.load_private_key(key).unwrap();
    #[derive(Debug)]
    struct R(std::sync::Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for R {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let ck = rustls::sign::CertifiedKey::new(vec![cert], signer);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(std::sync::Arc::new(R(std::sync::Arc::new(ck))));
    cfg.alpn_protocols = vec![ftpsh_core::tls::ALPN.to_vec()];
    let cfg = std::sync::Arc::new(cfg);
    let (l, addr) = listener();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        ftpsh_core::tls::accept(s, &cfg, T).map(|_| ())
    });
    let trust = ClientTrust::pins_only()
        .with_pin(Some(&real.fingerprint()))
        .unwrap();
    let e = connect(tcp(&addr), "127.0.0.1", &trust).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectError::Tls(rustls::Error::InvalidCertificate(_)) | ConnectError::Tls(_)
        ),
        "{e:?}"
    );
    assert!(e.to_string().to_lowercase().contains("signature"), "{e}");
    assert!(h.join().unwrap().is_err());
}
