//! A CA-issued certificate, trusted through SSL_CERT_FILE.
//!
//! Environment variables are process-wide and rustls-native-certs reads them
//! when it loads, so the client half runs in a child process (this same test
//! binary, re-run with only this test selected and the variables set).

use std::fs;
use std::process::Command;

use crate::common::*;
use ftpsh_core::tls::{connect, ClientTrust, ConnectError, Identity, Trust};

const CHILD: &str = "FTPSH_TLS_TEST_CHILD";

/// Runs `test` of this binary again in a child with `env`; returns its output.
fn rerun(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env(CHILD, "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn make_ca_and_server_cert(dir: &std::path::Path) -> (std::path::PathBuf, Identity) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftpsh test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ee_key = rcgen::KeyPair::generate().unwrap();
    let mut ee_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    ee_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let ee = ee_params.signed_by(&ee_key, &ca).unwrap();
    let ca_pem = dir.join("ca.pem");
    fs::write(&ca_pem, ca.pem()).unwrap();
    fs::write(dir.join("server.pem"), ee.pem()).unwrap();
    fs::write(dir.join("server.key"), ee_key.serialize_pem()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("server.key"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let id = Identity::from_pem_files(&dir.join("server.pem"), &dir.join("server.key")).unwrap();
    (ca_pem, id)
}

#[test]
fn ca_valid_by_name_without_pin_and_refused_for_another_name() {
    if std::env::var_os(CHILD).is_some() {
        return ca_child();
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ca_pem, id) = make_ca_and_server_cert(tmp.path());
    let (l, addr) = listener();
    let server = serve(l, &id, 4, |mut s| {
        use std::io::Read;
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        format!("GOT {}", String::from_utf8_lossy(&v))
    });
    let out = rerun(
        "ca::ca_valid_by_name_without_pin_and_refused_for_another_name",
        &[
            ("SSL_CERT_FILE", ca_pem.to_str().unwrap()),
            ("TEST_ADDR", &addr),
            ("TEST_FP", &id.fingerprint()),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
    let got = server.join().unwrap();
    assert_eq!(got[0], "GOT by name", "{got:?}");
    assert!(got[1].starts_with("ERR"), "{got:?}");
    assert_eq!(got[2], "GOT pinned", "{got:?}");
    assert!(got[3].starts_with("ERR"), "{got:?}");
}

fn ca_child() {
    use std::io::Write;
    let addr = std::env::var("TEST_ADDR").unwrap();
    let fp = std::env::var("TEST_FP").unwrap();
    let trust = ClientTrust::system();
    assert!(trust.root_errors().is_empty(), "{:?}", trust.root_errors());
    assert_eq!(
        trust.root_count(),
        1,
        "SSL_CERT_FILE replaces the system store"
    );

    // By name, no pin: valid under the CA.
    let (mut s, how) = connect(tcp(&addr), "localhost", &trust).unwrap();
    assert_eq!(
        how,
        Trust::CaValid {
            fingerprint: fp.clone()
        }
    );
    s.write_all(b"by name").unwrap();
    s.shutdown(std::net::Shutdown::Both).unwrap();

    // Another name: CA validation fails, and with no pin it is "unknown".
    let e = connect(tcp(&addr), "other.example", &trust).unwrap_err();
    let ConnectError::Untrusted {
        trust: Trust::Unknown { fingerprint },
        ca_error,
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(fingerprint, fp);
    let ca_error = ca_error.unwrap();
    assert!(ca_error.contains("not valid for name"), "{ca_error}");

    // The same wrong name with the pin: accepted as pinned.
    let pinned = trust.clone().with_pin(Some(&fp)).unwrap();
    let (mut s, how) = connect(tcp(&addr), "other.example", &pinned).unwrap();
    assert_eq!(
        how,
        Trust::Pinned {
            fingerprint: fp.clone()
        }
    );
    s.write_all(b"pinned").unwrap();
    s.shutdown(std::net::Shutdown::Both).unwrap();

    // Without the CA (pins only) the name alone is not enough.
    let e = connect(tcp(&addr), "localhost", &ClientTrust::pins_only()).unwrap_err();
    assert!(matches!(
        e,
        ConnectError::Untrusted {
            trust: Trust::Unknown { .. },
            ..
        }
    ));
}

#[test]
fn missing_ssl_cert_file_leaves_no_roots_and_pins_still_work() {
    if std::env::var_os(CHILD).is_some() {
        let trust = ClientTrust::system();
        assert_eq!(trust.root_count(), 0);
        assert_eq!(trust.root_errors().len(), 1, "{:?}", trust.root_errors());
        let tmp = tempfile::tempdir().unwrap();
        let id = identity(tmp.path());
        let (l, addr) = listener();
        let server = serve(l, &id, 1, |_| "ok".into());
        let t = trust.with_pin(Some(&id.fingerprint())).unwrap();
        let (_s, how) = connect(tcp(&addr), "localhost", &t).unwrap();
        assert!(matches!(how, Trust::Pinned { .. }));
        assert_eq!(server.join().unwrap(), ["ok"]);
        return;
    }
    let out = rerun(
        "ca::missing_ssl_cert_file_leaves_no_roots_and_pins_still_work",
        &[("SSL_CERT_FILE", "/nonexistent/ca.pem")],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
