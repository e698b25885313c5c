//! A hostile client and a racing local user against the real server: what
//! an audit of the server found, each as the attack that worked before its
//! fix.

use crate::common::*;

use std::fs;
use std::path::Path;
use std::process::Output;

/// Runs `script` through the real client against `server`, from `home`.
fn run(server: &Server, home: &Path, script: &str) -> Output {
    server
        .client(home)
        .write_stdin(format!("{script}\n"))
        .output()
        .unwrap()
}

/// `ln -s` refuses a link whose target leads out of the root; `rename`
/// must not make one either, by moving a relative link (or a directory
/// holding one) to where the same target climbs out. The server itself never
/// follows it out, but every other program on the host that opens by path
/// would.
#[test]
fn rename_does_not_move_a_relative_link_to_where_it_leads_outside() {
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("a/b")).unwrap();
    fs::write(root.path().join("x"), "inside").unwrap();
    let server = Server::start(root.path());
    // Both links lead to /x where they are made: ln -s takes them.
    let out = run(&server, home.path(), "ln -s ../x a/l\nln -s ../../x a/b/l");
    assert!(out.status.success(), "{}", stderr_of(&out));

    // The link itself, moved up one level: `../x` from / leads out.
    let out = run(&server, home.path(), "rename a/l l");
    assert!(!out.status.success(), "the link was moved out of reach");
    let err = stderr_of(&out);
    assert!(err.contains("would lead outside the served root"), "{err}");
    assert!(fs::symlink_metadata(root.path().join("l")).is_err());
    assert!(fs::symlink_metadata(root.path().join("a/l")).is_ok());

    // A directory holding one, moved up: `/b/l -> ../../x` leads out.
    let out = run(&server, home.path(), "rename a/b b");
    assert!(!out.status.success(), "the directory was moved");
    let err = stderr_of(&out);
    assert!(
        err.contains("/b/l") && err.contains("would lead outside the served root"),
        "{err}"
    );
    assert!(fs::symlink_metadata(root.path().join("b")).is_err());
    assert!(root.path().join("a/b/l").exists());

    // Moves that keep the links inside are made: deeper, or renamed in place.
    let out = run(
        &server,
        home.path(),
        "mkdir c\nrename a/l c/l\nrename a/b a/b2\nmkdir a/d\nrename a/b2 a/d/b",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        fs::read_link(root.path().join("c/l")).unwrap(),
        Path::new("../x")
    );
    assert_eq!(
        fs::read_to_string(root.path().join("c/l")).unwrap(),
        "inside"
    );
    assert!(fs::symlink_metadata(root.path().join("a/d/b/l")).is_ok());
}
