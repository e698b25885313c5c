//! Nothing lost silently, on the server's side (issue 11, item 11): an
//! unreadable directory in a walk, a name that is not UTF-8, a tree deeper than
//! PATH_MAX. Each is either transferred or named as a failure, counted in the
//! summary and the exit status; never dropped, never mixed up with another.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};

use crate::common::*;

fn run(server: &Server, local: &Path, commands: &str) -> Output {
    server
        .client(local)
        .args(["-c", commands])
        .output()
        .unwrap()
}

/// Exit status 1; (stdout, stderr).
fn fails(server: &Server, local: &Path, commands: &str) -> (String, String) {
    let out = run(server, local, commands);
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{commands}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// `N files, ... md5 ok, F failed` (`0 files in ... s, F failed`: nothing
/// to claim `md5 ok` for)
fn assert_summary(stdout: &str, files: usize, failed: usize) {
    let line = stdout.trim_end();
    let noun = if files == 1 { "file" } else { "files" };
    if files == 0 {
        assert!(line.starts_with("0 files in "), "{line:?}");
    } else {
        assert!(line.starts_with(&format!("{files} {noun}, ")), "{line:?}");
    }
    assert!(line.ends_with(&format!(", {failed} failed")), "{line:?}");
}

/// How to run a server on which file permissions bind: as is when we are not
/// root, else in a user namespace of its own (`unshare -U`: it runs as an
/// unmapped user, without root's override of permissions). `None` when
/// neither is possible here.
fn permissions_binding_server() -> Option<Vec<&'static str>> {
    // SAFETY: geteuid only reads this process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        return Some(Vec::new());
    }
    let works = std::process::Command::new("unshare")
        .args(["-U", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then(|| vec!["unshare", "-U"])
}

#[test]
fn an_unreadable_directory_in_get_r_is_a_named_failure() {
    let Some(wrapper) = permissions_binding_server() else {
        eprintln!("skipped: permissions do not bind here (root, and no unshare -U)");
        return;
    };
    let top = tempfile::tempdir().unwrap();
    let root = top.path();
    // Readable by the server whoever it runs as.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    for (f, data) in [
        ("tree/one.txt", "one"),
        ("tree/sub/two.txt", "two"),
        ("tree/locked/secret.txt", "secret"),
    ] {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }
    fs::set_permissions(root.join("tree/locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let server = ServerBuilder::new(root).wrapped(&wrapper).start();
    let local = tempfile::tempdir().unwrap();

    let (stdout, stderr) = fails(&server, local.path(), "get -r tree");
    assert_summary(&stdout, 2, 1);
    assert!(
        stderr.contains("tree/locked: cannot read the directory: permission denied"),
        "{stderr}"
    );
    let l = local.path();
    assert_eq!(fs::read(l.join("tree/one.txt")).unwrap(), b"one");
    assert_eq!(fs::read(l.join("tree/sub/two.txt")).unwrap(), b"two");
    assert!(!l.join("tree/locked").exists(), "it arrived empty");

    // A listing of it fails, saying why.
    let out = run(&server, l, "ls tree/locked");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("permission denied"), "{out:?}");
    fs::set_permissions(root.join("tree/locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn names_that_are_not_utf8_arrive_as_themselves_and_never_mixed_up() {
    let root = tempfile::tempdir().unwrap();
    let t = root.path().join("t");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("ok.txt"), "ok").unwrap();
    // Both would read "a\u{fffd}" converted lossily.
    fs::write(t.join(OsStr::from_bytes(b"a\xff")), "ff").unwrap();
    fs::write(t.join(OsStr::from_bytes(b"a\xfe")), "fe").unwrap();
    let server = Server::start(root.path());
    let local = tempfile::tempdir().unwrap();
    let l = local.path();

    // Names are bytes: each arrives under its own name, with its own data.
    let out = run(&server, l, "get -r t");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_summary(&stdout_of(&out), 3, 0);
    assert_eq!(fs::read(l.join("t/ok.txt")).unwrap(), b"ok");
    assert_eq!(
        fs::read(l.join("t").join(OsStr::from_bytes(b"a\xff"))).unwrap(),
        b"ff"
    );
    assert_eq!(
        fs::read(l.join("t").join(OsStr::from_bytes(b"a\xfe"))).unwrap(),
        b"fe"
    );

    // A glob matches them too, each fetched as itself.
    fs::create_dir(l.join("dl")).unwrap();
    let out = run(&server, l, "get 't/a*' dl");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        fs::read(l.join("dl").join(OsStr::from_bytes(b"a\xff"))).unwrap(),
        b"ff"
    );
    assert_eq!(
        fs::read(l.join("dl").join(OsStr::from_bytes(b"a\xfe"))).unwrap(),
        b"fe"
    );

    // A listing names them, escaped, and shows no converted name.
    let out = run(&server, l, "ls t");
    let listing = stdout_of(&out);
    assert!(
        listing.contains("a\\xff") && listing.contains("a\\xfe"),
        "{listing}"
    );
    assert!(!listing.contains('\u{fffd}'), "{listing}");
}

/// Makes `depth` nested directories named `name` under `dir` (a path too
/// long for one system call is no obstacle to handles), and returns the
/// deepest one's handle.
fn nest(dir: &Path, name: &str, depth: usize) -> OwnedFd {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = openat(CWD, dir, flags, Mode::empty()).unwrap();
    for _ in 0..depth {
        mkdirat(&fd, name, Mode::from_raw_mode(0o755)).unwrap();
        fd = openat(&fd, name, flags, Mode::empty()).unwrap();
    }
    fd
}

#[test]
fn a_tree_deeper_than_path_max_is_served_or_named() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    // 20 levels of 240 bytes: 4.8 KB of path below `deep`, past PATH_MAX.
    let name = "n".repeat(240);
    fs::create_dir(root.path().join("deep")).unwrap();
    let bottom = nest(&root.path().join("deep"), &name, 20);
    let file = openat(
        bottom.as_fd(),
        "end.txt",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    fs::File::from(file).write_all(b"the end").unwrap();
    let server = Server::start(root.path());
    let long = format!("deep/{}/end.txt", vec![name.as_str(); 20].join("/"));
    assert!(long.len() > 4096);

    // The server opens it by its long path (one name at a time).
    let out = run(&server, l, &format!("md5 {long}"));
    assert!(out.status.success(), "{out:?}");
    assert!(stdout_of(&out).starts_with(&md5_hex(b"the end")), "{out:?}");

    // A walk lists all of it; the client cannot create it locally (its
    // path is too long for this side), and says so: a failure, not a loss.
    let (stdout, stderr) = fails(&server, l, "get -r deep");
    assert_summary(&stdout, 0, 1);
    assert!(
        stderr.to_lowercase().contains("file name too long"),
        "{stderr}"
    );

    // Made on the server through the client: mkdir -p and put, past PATH_MAX.
    fs::write(l.join("up.txt"), b"uploaded").unwrap();
    let made = format!("made/{}", vec![name.as_str(); 20].join("/"));
    let out = run(
        &server,
        l,
        &format!("mkdir -p {made}; put up.txt {made}/up.txt; md5 {made}/up.txt"),
    );
    assert!(out.status.success(), "{out:?}");
    let digest = format!("{}  {made}/up.txt", md5_hex(b"uploaded"));
    assert!(stdout_of(&out).lines().any(|l| l == digest), "{out:?}");
    let out = run(&server, l, "rm -r made");
    assert!(out.status.success(), "{out:?}");
    assert!(!root.path().join("made").exists());
}
