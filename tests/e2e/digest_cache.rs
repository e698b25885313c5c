//! `--digest-cache FILE` (issue 14): the server's remembered digests survive a
//! restart, and what the file holds can at worst fail a download, never pass
//! a wrong file: a digest altered in the file makes the next download after a
//! restart fail its verification, with nothing installed.

use std::fs;

use crate::common::*;

#[test]
fn remembered_digests_survive_a_restart_and_a_wrong_one_fails_verification() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let cache = state.path().join("digests");
    let data = random_bytes(3 << 20, 7);
    fs::write(root.path().join("f.bin"), &data).unwrap();
    let start = || {
        ServerBuilder::new(root.path())
            .arg("--digest-cache")
            .arg(cache.to_str().unwrap())
            .start()
    };
    let get = |server: &Server| {
        server
            .client(local.path())
            .args(["-c", "get f.bin"])
            .output()
            .unwrap()
    };

    let mut server = start();
    assert!(get(&server).status.success());
    server.kill();
    assert_eq!(md5_file(&local.path().join("f.bin")), md5_hex(&data));
    // The magic, then one record of 72 bytes: the key, then the digest.
    let mut bytes = fs::read(&cache).unwrap();
    assert_eq!(bytes.len(), 8 + 72);
    assert_eq!(&bytes[8 + 56..], &md5_raw(&data)[..]);

    // Restarted, the server sends the remembered digest: a wrong one in the
    // file fails the download, nothing installed over the good copy.
    fs::remove_file(local.path().join("f.bin")).unwrap();
    bytes[8 + 56] ^= 0xff;
    fs::write(&cache, &bytes).unwrap();
    let mut server = start();
    let out = get(&server);
    assert!(!out.status.success(), "{}", stdout_of(&out));
    assert!(
        stderr_of(&out).contains("MD5 mismatch"),
        "{}",
        stderr_of(&out)
    );
    assert!(!local.path().join("f.bin").exists());
    server.kill();

    // Once the file changes, its new key misses the cache: verified again.
    fs::write(root.path().join("f.bin"), &data[1..]).unwrap();
    let server = start();
    assert!(get(&server).status.success());
    assert_eq!(md5_file(&local.path().join("f.bin")), md5_hex(&data[1..]));
    drop(server);
    assert_eq!(fs::read(&cache).unwrap().len(), 8 + 2 * 72);
}

#[test]
fn a_digest_cache_inside_the_root_or_not_a_cache_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let inside = root.path().join("digests");
    let out = std::process::Command::new(bin("ftpsh-server"))
        .arg("--root")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0", "--digest-cache"])
        .arg(&inside)
        .env("FTPSH_TOKEN", "t")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("outside the served root"),
        "{}",
        stderr_of(&out)
    );
    assert!(!inside.exists());
    let other = state.path().join("notes.txt");
    fs::write(&other, "keep me").unwrap();
    let out = std::process::Command::new(bin("ftpsh-server"))
        .arg("--root")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0", "--digest-cache"])
        .arg(&other)
        .env("FTPSH_TOKEN", "t")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("not an ftpsh digest cache"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(fs::read_to_string(&other).unwrap(), "keep me");
}

fn md5_raw(data: &[u8]) -> [u8; 16] {
    ftpsh_core::hashing::Md5::digest(data)
}
