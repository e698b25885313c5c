//! Two `ftpsh-server` processes serving one root, as several servers over one
//! shared file system would: uploads of one name through both end as exactly
//! one complete upload, a download through one while the other installs a new
//! version gets one version whole, and a partial left through one is resumed
//! through the other.

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;

fn spawn(server: &Server, local: &Path, commands: &str) -> Child {
    client_process(server, local)
        .args(["-c", commands])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn uploads_of_one_name_through_two_servers_end_as_exactly_one_of_them() {
    let root = tempfile::tempdir().unwrap();
    let one = Server::start(root.path());
    let two = Server::start(root.path());
    let size = 24 << 20;
    let versions: Vec<Vec<u8>> = (0..2).map(|i| random_bytes(size, 40 + i)).collect();
    let locals: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (local, data) in locals.iter().zip(&versions) {
        fs::write(local.path().join("same.bin"), data).unwrap();
    }
    for round in 0..3 {
        let a = spawn(&one, locals[0].path(), "put same.bin");
        let b = spawn(&two, locals[1].path(), "put same.bin");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(
            a.status.success() || b.status.success(),
            "round {round}: neither upload succeeded: {} / {}",
            stderr_of(&a),
            stderr_of(&b)
        );
        let got = fs::read(root.path().join("same.bin")).unwrap();
        assert!(
            got == versions[0] || got == versions[1],
            "round {round}: the file is a mixture of the two uploads ({} bytes)",
            got.len()
        );
        let stray: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "same.bin")
            .collect();
        assert!(stray.is_empty(), "round {round}: left behind: {stray:?}");
    }
}

#[test]
fn a_download_while_the_other_server_installs_gets_one_version_whole() {
    let root = tempfile::tempdir().unwrap();
    let one = Server::start(root.path());
    let two = Server::start(root.path());
    let size = 24 << 20;
    let old = random_bytes(size, 50);
    let new = random_bytes(size, 51);
    fs::write(root.path().join("f.bin"), &old).unwrap();
    let up = tempfile::tempdir().unwrap();
    fs::write(up.path().join("f.bin"), &new).unwrap();
    for round in 0..3 {
        let down = tempfile::tempdir().unwrap();
        let g = spawn(&one, down.path(), "get f.bin");
        let p = spawn(&two, up.path(), "put f.bin");
        let (g, p) = (g.wait_with_output().unwrap(), p.wait_with_output().unwrap());
        assert!(p.status.success(), "{}", stderr_of(&p));
        if g.status.success() {
            let got = fs::read(down.path().join("f.bin")).unwrap();
            assert!(got == old || got == new, "round {round}: a mixture arrived");
        } else {
            // Refused because the file changed under it: nothing installed.
            assert!(!down.path().join("f.bin").exists(), "{}", stderr_of(&g));
        }
        fs::write(root.path().join("f.bin"), &old).unwrap();
    }
}

#[test]
fn a_partial_upload_through_one_server_is_resumed_through_the_other() {
    let root = tempfile::tempdir().unwrap();
    let one = Server::start(root.path());
    let two = Server::start(root.path());
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(64 << 20, 60);
    fs::write(local.path().join("big.bin"), &data).unwrap();
    let partial = root.path().join("big.bin.ftpsh-part");
    let mut started = false;
    for _ in 0..5 {
        let mut c = spawn(&one, local.path(), "put big.bin");
        started = wait_until(Duration::from_secs(30), || {
            fs::metadata(&partial).is_ok_and(|m| m.len() > 0 && m.len() < data.len() as u64)
        });
        c.kill().unwrap();
        c.wait().unwrap();
        if started {
            break;
        }
        let _ = fs::remove_file(root.path().join("big.bin"));
        let _ = fs::remove_file(&partial);
    }
    assert!(started, "the upload never started");
    // Server one lets go of it when it sees its client gone.
    let kept = fs::metadata(&partial).unwrap().len();
    let mut out = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let o = two
                .client(local.path())
                .args(["-c", "put -c big.bin"])
                .output()
                .unwrap();
            let ok = o.status.success();
            out = Some(o);
            ok
        }),
        "put -c through the other server: {}",
        out.as_ref().map(stderr_of).unwrap_or_default()
    );
    assert_eq!(md5_file(&root.path().join("big.bin")), md5_hex(&data));
    assert!(!partial.exists());
    assert!(kept > 0);
}
