//! Load: 16 real `ftpsh` clients at once against one real server, each uploading
//! its own file, all uploading to one shared name (distinct contents) and to
//! another (identical contents), and all downloading the same files. Every digest
//! must be right, each shared name must end as exactly one complete upload (no
//! interleaving), and no partial file may be left on either side.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use crate::common::*;

const CLIENTS: usize = 16;
const SIZE: usize = 1_500_000;

fn partials_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".ftpsh-part") || n.starts_with('.'))
        .collect()
}

#[test]
fn sixteen_clients_get_and_put_at_once_without_losing_or_mixing_a_byte() {
    let root = tempfile::tempdir().unwrap();
    let common_a = random_bytes(3_000_000, 1);
    let common_b = random_bytes(SIZE, 2);
    std::fs::write(root.path().join("common_a.bin"), &common_a).unwrap();
    std::fs::write(root.path().join("common_b.bin"), &common_b).unwrap();
    let same = random_bytes(SIZE, 3);
    let server = Arc::new(Server::start(root.path()));

    let locals: Vec<tempfile::TempDir> =
        (0..CLIENTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut own = Vec::new();
    let mut mine_for_shared = Vec::new();
    for (i, local) in locals.iter().enumerate() {
        let o = random_bytes(SIZE + i * 1000, 100 + i as u64);
        let s = random_bytes(SIZE - i * 1000, 200 + i as u64);
        std::fs::write(local.path().join(format!("own_{i}.bin")), &o).unwrap();
        std::fs::write(local.path().join("mine.bin"), &s).unwrap();
        std::fs::write(local.path().join("same.bin"), &same).unwrap();
        own.push(o);
        mine_for_shared.push(s);
    }

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = locals
        .iter()
        .enumerate()
        .map(|(i, local)| {
            let server = Arc::clone(&server);
            let barrier = Arc::clone(&barrier);
            let dir = local.path().to_path_buf();
            // Downloads and uploads interleaved, the shared names twice, so that
            // transfers of one name overlap across clients.
            let script = format!(
                "put own_{i}.bin\n\
                 put mine.bin shared.bin\n\
                 get common_a.bin\n\
                 put same.bin\n\
                 get common_b.bin b1.bin\n\
                 put mine.bin shared.bin\n\
                 get common_a.bin a2.bin\n\
                 put same.bin\n\
                 md5 own_{i}.bin\n"
            );
            std::thread::spawn(move || {
                let mut cmd = server.client(&dir);
                cmd.write_stdin(script);
                barrier.wait();
                cmd.output().unwrap()
            })
        })
        .collect();
    let outputs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    for (i, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "client {i} failed: {}",
            stderr_of(out)
        );
        assert_eq!(
            stdout_of(out).lines().last(),
            Some(format!("{}  own_{i}.bin", md5_hex(&own[i])).as_str()),
            "client {i}: {}",
            stdout_of(out)
        );
        assert_eq!(stderr_of(out), "", "client {i}: script mode is quiet");
        let local = locals[i].path();
        assert_eq!(
            md5_file(&local.join("common_a.bin")),
            md5_hex(&common_a),
            "client {i}"
        );
        assert_eq!(
            md5_file(&local.join("a2.bin")),
            md5_hex(&common_a),
            "client {i}"
        );
        assert_eq!(
            md5_file(&local.join("b1.bin")),
            md5_hex(&common_b),
            "client {i}"
        );
        assert_eq!(partials_in(local), Vec::<String>::new(), "client {i}");
        assert_eq!(
            md5_file(&root.path().join(format!("own_{i}.bin"))),
            md5_hex(&own[i]),
            "upload of client {i}"
        );
    }

    // The contested names: exactly one whole upload each.
    let candidates: HashSet<String> = mine_for_shared.iter().map(|d| md5_hex(d)).collect();
    assert_eq!(candidates.len(), CLIENTS);
    let shared = std::fs::read(root.path().join("shared.bin")).unwrap();
    assert!(
        candidates.contains(&md5_hex(&shared)),
        "shared.bin ({} bytes) is not any one client's upload: interleaved",
        shared.len()
    );
    assert_eq!(md5_file(&root.path().join("same.bin")), md5_hex(&same));

    // Nothing half-written anywhere, and exactly the expected files on the server.
    assert_eq!(partials_in(root.path()), Vec::<String>::new());
    let mut names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..CLIENTS).map(|i| format!("own_{i}.bin")).collect();
    expected.extend(["common_a.bin", "common_b.bin", "same.bin", "shared.bin"].map(String::from));
    expected.sort();
    assert_eq!(names, expected);

    // The sessions really overlapped: a server that served one client at a
    // time would pass every check above.
    let mut open = 0i32;
    let mut most = 0;
    for line in server.log_text().lines() {
        if line.ends_with(": connected") {
            open += 1;
            most = most.max(open);
        } else if line.ends_with(": disconnected") {
            open -= 1;
        }
    }
    assert!(
        most >= 2,
        "sessions never overlapped:\n{}",
        server.log_text()
    );

    // The server is still healthy.
    let local = tempfile::tempdir().unwrap();
    server
        .client(local.path())
        .args(["-c", "echo done"])
        .assert()
        .success()
        .stdout("done\n");
}
