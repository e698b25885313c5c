//! Faithful copies, end to end (issue 13): a directory reached by a link and by
//! its name arrives under both, a skipped entry fails the summary's count,
//! permission bits and times are kept with `-p` and never widened without,
//! and a peer of protocol version 1 is told to upgrade.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, UNIX_EPOCH};

use crate::common::*;

/// Runs the client in `local` under `umask` (script mode, `-c`).
fn client(server: &Server, local: &Path, umask: &str, commands: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(bin("ftpsh"))
        .arg(&server.addr)
        .args(["--norc", "-c", commands])
        .current_dir(local)
        .env("NO_COLOR", "1")
        .env_remove("FTPSH_RC")
        .env("HOME", local)
        .env("FTPSH_TOKEN", server.token.clone().unwrap_or_default())
        .output()
        .unwrap()
}

fn ok(server: &Server, local: &Path, umask: &str, commands: &str) -> String {
    let out = client(server, local, umask, commands);
    assert!(
        out.status.success(),
        "{commands}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout_of(&out),
        stderr_of(&out)
    );
    stdout_of(&out)
}

/// A server whose file creation mask is `umask`.
fn server_with_umask(root: &Path, umask: &str) -> Server {
    let script = format!("umask {umask}; exec \"$@\"");
    ServerBuilder::new(root)
        .wrapped(&["sh", "-c", &script, "sh"])
        .start()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn mtime(p: &Path) -> i64 {
    fs::symlink_metadata(p).unwrap().mtime()
}

fn set_mtime(p: &Path, secs: u64) {
    File::open(p)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// `tree/secret` 600, `tree/private/` 700 holding `inner`, `tree/run.sh`
/// 755, each with its own old modification time (directories last).
fn modes_tree(t: &Path) {
    fs::create_dir_all(t.join("private")).unwrap();
    fs::write(t.join("secret"), b"key").unwrap();
    fs::write(t.join("private/inner"), b"inner").unwrap();
    fs::write(t.join("run.sh"), b"#!/bin/sh\n").unwrap();
    let set = |rel: &str, m: u32| {
        fs::set_permissions(t.join(rel), fs::Permissions::from_mode(m)).unwrap()
    };
    set("secret", 0o600);
    set("private/inner", 0o640);
    set("run.sh", 0o755);
    set("private", 0o700);
    for (i, rel) in ["secret", "private/inner", "run.sh", "private", ""]
        .iter()
        .enumerate()
    {
        set_mtime(&t.join(rel), 1_500_000_000 + i as u64 * 1000);
    }
}

/// Modes and times of `got` against the source `src`: with `keep`, equal;
/// without, the source's bits less `umask`.
fn assert_modes(src: &Path, got: &Path, keep: bool, umask: u32) {
    for rel in ["secret", "private/inner", "run.sh", "private"] {
        let want = if keep {
            mode(&src.join(rel))
        } else {
            mode(&src.join(rel)) & !umask
        };
        assert_eq!(
            format!("{:o}", mode(&got.join(rel))),
            format!("{want:o}"),
            "{rel} (keep {keep})"
        );
        if keep {
            assert_eq!(mtime(&got.join(rel)), mtime(&src.join(rel)), "{rel} mtime");
        }
    }
    if keep {
        assert_eq!(mtime(got), mtime(src), "the tree's own mtime");
    }
}

#[test]
fn a_directory_reached_by_a_link_and_by_its_name_arrives_under_both_and_skips_fail() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let t = root.path().join("t");
    fs::create_dir_all(t.join("zreal")).unwrap();
    fs::write(t.join("zreal/f"), b"x\n").unwrap();
    symlink("zreal", t.join("alias")).unwrap();
    let server = Server::start(root.path());

    // The faithful copy: the real directory with its file, the link as a link.
    ok(&server, local.path(), "022", "get -r t o");
    let o = local.path().join("o");
    assert_eq!(fs::read(o.join("zreal/f")).unwrap(), b"x\n");
    assert!(fs::symlink_metadata(o.join("zreal")).unwrap().is_dir());
    assert_eq!(fs::read_link(o.join("alias")).unwrap(), Path::new("zreal"));
    assert_eq!(fs::read(o.join("alias/f")).unwrap(), b"x\n");

    // A link already here (from that copy) is never gone through, even when
    // the source now has a directory there: named, counted, and skipped.
    let out = client(&server, local.path(), "022", "get -r -L t/. o");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("o/alias is a symbolic link here (not gone through)"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(fs::read_link(o.join("alias")).unwrap(), Path::new("zreal"));

    // Followed (-L): a real copy under each name.
    ok(&server, local.path(), "022", "get -r -L t o2");
    let o2 = local.path().join("o2");
    for name in ["zreal", "alias"] {
        assert!(
            fs::symlink_metadata(o2.join(name)).unwrap().is_dir(),
            "{name}"
        );
        assert_eq!(fs::read(o2.join(name).join("f")).unwrap(), b"x\n", "{name}");
    }

    // Something skipped (a named pipe) is named and fails the count.
    mkfifo(&t.join("pipe"));
    let out = client(&server, local.path(), "022", "get -r t o3");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    assert!(stdout.trim_end().ends_with(", 1 failed"), "{stdout}");
    assert!(stdout.starts_with("1 file, "), "{stdout}");
    let err = stderr_of(&out);
    assert!(err.contains("t/pipe: skipped: not a regular file"), "{err}");
    assert_eq!(fs::read(local.path().join("o3/zreal/f")).unwrap(), b"x\n");

    // The same from this side: put -r sends the link as a link.
    ok(&server, local.path(), "022", "put -r o up");
    assert_eq!(
        fs::read_link(root.path().join("up/alias")).unwrap(),
        Path::new("zreal")
    );
    assert_eq!(fs::read(root.path().join("up/zreal/f")).unwrap(), b"x\n");
}

#[test]
fn downloads_keep_modes_and_times_with_p_and_are_never_wider_without() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let t = root.path().join("tree");
    modes_tree(&t);
    let server = Server::start(root.path());

    ok(&server, local.path(), "022", "get -r -p tree kept");
    assert_modes(&t, &local.path().join("kept"), true, 0);

    // Without -p: the source's bits less the client's umask, as cp.
    ok(&server, local.path(), "027", "get -r tree plain");
    assert_modes(&t, &local.path().join("plain"), false, 0o027);

    // One file alike.
    ok(
        &server,
        local.path(),
        "022",
        "get -p tree/secret s1; get tree/run.sh r1",
    );
    assert_eq!(mode(&local.path().join("s1")), 0o600);
    assert_eq!(mtime(&local.path().join("s1")), mtime(&t.join("secret")));
    assert_eq!(mode(&local.path().join("r1")), 0o755);
    ok(&server, local.path(), "077", "get tree/run.sh r2");
    assert_eq!(mode(&local.path().join("r2")), 0o700);
}

#[test]
fn uploads_keep_modes_and_times_with_p_and_are_never_wider_without() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let t = local.path().join("tree");
    modes_tree(&t);
    let server = server_with_umask(root.path(), "022");

    ok(&server, local.path(), "022", "put -r -p tree kept");
    assert_modes(&t, &root.path().join("kept"), true, 0);
    ok(&server, local.path(), "022", "put -r tree plain");
    assert_modes(&t, &root.path().join("plain"), false, 0o022);
    ok(
        &server,
        local.path(),
        "022",
        "put -p tree/secret s1; put tree/secret s2",
    );
    assert_eq!(mode(&root.path().join("s1")), 0o600);
    assert_eq!(mtime(&root.path().join("s1")), mtime(&t.join("secret")));
    assert_eq!(mode(&root.path().join("s2")), 0o600);

    // Less the server's umask.
    let root2 = tempfile::tempdir().unwrap();
    let strict = server_with_umask(root2.path(), "077");
    ok(&strict, local.path(), "022", "put -r tree plain");
    assert_modes(&t, &root2.path().join("plain"), false, 0o077);
}

/// The bytes of one frame read from `s`: (kind, payload).
fn read_frame(s: &mut impl Read) -> (u8, Vec<u8>) {
    let mut header = [0u8; 5];
    s.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (header[0], payload)
}

#[test]
fn a_version_1_client_is_told_to_upgrade() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"FTPSH\x00\x01").unwrap();
    let mut greeting = [0u8; 7];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting, ftpsh_core::protocol::handshake::greeting());
    let (kind, payload) = read_frame(&mut s);
    assert_eq!(kind, 0x81, "an Error frame");
    let text = String::from_utf8_lossy(&payload[4..]).into_owned();
    assert!(
        text.contains("speaks protocol 1") && text.contains("upgrade ftpsh"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
}

#[test]
fn a_version_1_server_is_named_and_the_client_says_to_upgrade_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // An old server: greets with version 1 and admits anyone.
    let old = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut greeting = [0u8; 7];
        let _ = s.read_exact(&mut greeting);
        let _ = read_frame(&mut s);
        let _ = s.write_all(b"FTPSH\x00\x01");
        let _ = s.write_all(&[0x80, 0, 0, 0, 0]);
        // Whatever comes next is not answered.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let local = tempfile::tempdir().unwrap();
    let out = Command::new(bin("ftpsh"))
        .arg(addr.to_string())
        .args(["--norc", "-c", "echo hi"])
        .current_dir(local.path())
        .env("HOME", local.path())
        .env("NO_COLOR", "1")
        .env("FTPSH_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("the server speaks protocol 1; upgrade ftpsh-server to protocol 3"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    drop(out);
    old.join().unwrap();
}

#[test]
fn names_that_are_not_utf8_round_trip_through_ls_get_put_rename_and_rm() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let remote_name = OsStr::from_bytes(b"a\xffb");
    fs::write(root.path().join(remote_name), b"remote bytes").unwrap();
    fs::create_dir_all(root.path().join("t").join(OsStr::from_bytes(b"d\xe9"))).unwrap();
    fs::write(
        root.path()
            .join("t")
            .join(OsStr::from_bytes(b"d\xe9"))
            .join(OsStr::from_bytes(b"f\x80")),
        b"deep",
    )
    .unwrap();
    let local_name = OsStr::from_bytes(b"l\xfez");
    fs::write(local.path().join(local_name), b"local bytes").unwrap();
    let server = Server::start(root.path());

    // Listed escaped, as typed back.
    let listed = ok(&server, local.path(), "022", "ls");
    assert!(listed.lines().any(|l| l == "a\\xffb"), "{listed}");

    // Fetched under its own bytes, one file and in a tree.
    ok(&server, local.path(), "022", "get 'a\\xffb'; get -r t");
    assert_eq!(
        fs::read(local.path().join(remote_name)).unwrap(),
        b"remote bytes"
    );
    assert_eq!(
        fs::read(
            local
                .path()
                .join("t")
                .join(OsStr::from_bytes(b"d\xe9"))
                .join(OsStr::from_bytes(b"f\x80"))
        )
        .unwrap(),
        b"deep"
    );

    // Sent under its own bytes, one file and in a tree.
    ok(&server, local.path(), "022", "put 'l\\xfez'; put -r t back");
    assert_eq!(
        fs::read(root.path().join(local_name)).unwrap(),
        b"local bytes"
    );
    assert_eq!(
        fs::read(
            root.path()
                .join("back")
                .join(OsStr::from_bytes(b"d\xe9"))
                .join(OsStr::from_bytes(b"f\x80"))
        )
        .unwrap(),
        b"deep"
    );

    // Renamed to another name that is not UTF-8, and back.
    ok(&server, local.path(), "022", "rename 'a\\xffb' 'c\\xfed'");
    assert!(fs::symlink_metadata(root.path().join(remote_name)).is_err());
    assert_eq!(
        fs::read(root.path().join(OsStr::from_bytes(b"c\xfed"))).unwrap(),
        b"remote bytes"
    );
    ok(&server, local.path(), "022", "mv 'c\\xfed' 'a\\xffb'");

    // Removed by the name ls shows.
    ok(&server, local.path(), "022", "rm 'a\\xffb'; rm 'l\\xfez'");
    assert!(fs::symlink_metadata(root.path().join(remote_name)).is_err());
    assert!(fs::symlink_metadata(root.path().join(local_name)).is_err());
    let listed = ok(&server, local.path(), "022", "ls");
    assert!(!listed.contains("\\x"), "{listed}");
}

/// The files below `dir` with their contents, and the directories (links
/// as `-> target`).
fn tree_of(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut items: Vec<_> = fs::read_dir(dir).unwrap().map(|i| i.unwrap()).collect();
        items.sort_by_key(|i| i.file_name());
        for item in items {
            let name = format!("{rel}{}", item.file_name().to_string_lossy());
            let ft = item.file_type().unwrap();
            if ft.is_symlink() {
                out.push(format!(
                    "{name} -> {}",
                    fs::read_link(item.path()).unwrap().display()
                ));
            } else if ft.is_dir() {
                out.push(format!("{name}/"));
                walk(&item.path(), &format!("{name}/"), out);
            } else {
                out.push(format!(
                    "{name}: {}",
                    String::from_utf8_lossy(&fs::read(item.path()).unwrap())
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

fn site(dir: &Path) {
    fs::create_dir_all(dir.join("css/empty")).unwrap();
    fs::write(dir.join("index.html"), b"<h1>hi</h1>").unwrap();
    fs::write(dir.join("css/main.css"), b"body{}").unwrap();
    symlink("index.html", dir.join("home.html")).unwrap();
}

#[test]
fn mirror_moves_only_what_differs_and_a_second_run_moves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = root.path().join("site");
    site(&src);
    let server = Server::start(root.path());

    let out = ok(&server, local.path(), "022", "mirror site");
    assert!(out.starts_with("2 files sent"), "{out}");
    let copy = local.path().join("site");
    assert_eq!(tree_of(&copy), tree_of(&src));

    // Nothing changed: nothing sent, and it says so.
    let out = ok(&server, local.path(), "022", "mirror site");
    assert_eq!(out, "nothing to do: 2 files up to date, nothing sent\n");

    // Only the time differs: MD5 decides, nothing is sent; -p fixes the time.
    set_mtime(&copy.join("index.html"), 1_000_000_000);
    let out = ok(&server, local.path(), "022", "mirror -p site");
    assert!(out.starts_with("0 files sent"), "{out}");
    assert_eq!(
        mtime(&copy.join("index.html")),
        mtime(&src.join("index.html"))
    );
    // A changed size is sent; what the source no longer has stays without
    // --delete and goes with it.
    fs::write(src.join("index.html"), b"<h1>hello</h1>").unwrap();
    fs::remove_file(src.join("css/main.css")).unwrap();
    let out = ok(&server, local.path(), "022", "mirror site");
    assert!(out.starts_with("1 file sent"), "{out}");
    assert!(copy.join("css/main.css").exists());

    // --dry-run prints the plan and changes nothing.
    fs::write(src.join("new.txt"), b"new").unwrap();
    let out = ok(
        &server,
        local.path(),
        "022",
        "mirror --dry-run --delete site",
    );
    assert!(out.contains("send site/new.txt\n"), "{out}");
    assert!(out.contains("delete site/css/main.css\n"), "{out}");
    assert!(!copy.join("new.txt").exists());
    assert!(copy.join("css/main.css").exists());

    let out = ok(&server, local.path(), "022", "mirror --delete site");
    assert!(out.contains("1 deleted"), "{out}");
    assert_eq!(tree_of(&copy), tree_of(&src));
}

#[test]
fn mirror_dash_r_goes_the_other_way_and_a_file_as_target_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("site");
    site(&src);
    let server = Server::start(root.path());

    let out = ok(&server, local.path(), "022", "mirror -R site pub");
    assert!(out.starts_with("2 files sent"), "{out}");
    assert_eq!(tree_of(&root.path().join("pub")), tree_of(&src));
    let out = ok(&server, local.path(), "022", "mirror -R site pub");
    assert_eq!(out, "nothing to do: 2 files up to date, nothing sent\n");
    fs::remove_file(src.join("css/main.css")).unwrap();
    ok(&server, local.path(), "022", "mirror -R --delete site pub");
    assert_eq!(tree_of(&root.path().join("pub")), tree_of(&src));

    // Onto a file, either way: one line, nothing changed on either side.
    fs::write(root.path().join("afile"), b"keep").unwrap();
    fs::write(local.path().join("lfile"), b"keep").unwrap();
    for (cmd, what) in [
        ("mirror -R site afile", "afile"),
        ("mirror pub lfile", "lfile"),
    ] {
        let out = client(&server, local.path(), "022", cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(what) && err.contains("not a directory"),
            "{err}"
        );
    }
    assert_eq!(fs::read(root.path().join("afile")).unwrap(), b"keep");
    assert_eq!(fs::read(local.path().join("lfile")).unwrap(), b"keep");
}
