//! The server identity on disk.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ftpsh_core::tls::identity::{CERT_FILE, KEY_FILE};
use ftpsh_core::tls::{fingerprint_of_cert, parse_fingerprint, Identity};

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_once_then_reused_with_owner_only_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("xdg/ftpsh-server");
    let a = Identity::load_or_create(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert!(dir.join(CERT_FILE).is_file());
    assert_eq!(
        parse_fingerprint(&a.fingerprint()).unwrap(),
        a.fingerprint()
    );
    assert_eq!(
        fingerprint_of_cert(a.certificate_der()).unwrap(),
        a.fingerprint()
    );
    let key_before = fs::read(dir.join(KEY_FILE)).unwrap();

    let b = Identity::load_or_create(&dir).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), key_before);
    // Only the two files, no temporary left behind.
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [CERT_FILE, KEY_FILE]);

    // A lost certificate is made again from the key: same fingerprint.
    fs::remove_file(dir.join(CERT_FILE)).unwrap();
    let c = Identity::load_or_create(&dir).unwrap();
    assert_eq!(c.fingerprint(), a.fingerprint());

    // Another directory, another identity.
    let d = Identity::load_or_create(&tmp.path().join("other")).unwrap();
    assert_ne!(d.fingerprint(), a.fingerprint());
}

#[test]
fn loose_key_mode_and_foreign_certificate_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    Identity::load_or_create(&dir).unwrap();
    let key = dir.join(KEY_FILE);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let e = Identity::load_or_create(&dir).unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();

    // A certificate for another key.
    let other = tmp.path().join("other");
    Identity::load_or_create(&other).unwrap();
    fs::copy(other.join(CERT_FILE), dir.join(CERT_FILE)).unwrap();
    let e = Identity::load_or_create(&dir).unwrap_err().to_string();
    assert!(
        e.contains("not a certificate for") && e.contains("remove it"),
        "{e}"
    );
    let e = Identity::from_pem_files(&dir.join(CERT_FILE), &key)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
}

#[test]
fn concurrent_first_starts_agree_on_one_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("race");
    let fps: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Identity::load_or_create(&dir).map(|i| i.fingerprint())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert!(fps.windows(2).all(|w| w[0] == w[1]), "{fps:?}");
}

#[test]
fn ca_issued_pem_files_load() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ee_key = rcgen::KeyPair::generate().unwrap();
    let ee = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&ee_key, &ca)
        .unwrap();
    let cert = tmp.path().join("chain.pem");
    let key = tmp.path().join("key.pem");
    fs::write(&cert, format!("{}{}", ee.pem(), ca.pem())).unwrap();
    fs::write(&key, ee_key.serialize_pem()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // A key others can read is refused, as ssh refuses one.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = Identity::from_pem_files(&cert, &key).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let id = Identity::from_pem_files(&cert, &key).unwrap();
    assert_eq!(id.fingerprint(), fingerprint_of_cert(ee.der()).unwrap());
    assert_eq!(id.certificate_der(), ee.der());
}

#[test]
fn an_identity_directory_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("id");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Identity::load_or_create(&dir).err().unwrap();
    assert!(e.to_string().contains("chmod 700"), "{e}");
    assert!(!dir.join(KEY_FILE).exists(), "nothing made there");
}
