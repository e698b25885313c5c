//! The README's "add a verb" example is compiled by `cargo test` (which builds
//! every example before it runs a test); this runs it.

use std::path::PathBuf;
use std::process::Command;

fn example_binary() -> PathBuf {
    // target/debug/deps/example-HASH -> target/debug/examples/custom_verb
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("custom_verb")
}

#[test]
fn a_registered_custom_verb_runs_and_is_listed_by_help() {
    let bin = example_binary();
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds the examples first; with a filter \
         such as `--test main`, run `cargo build --examples` before",
        bin.display()
    );
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), "12345").unwrap();
    let out = Command::new(&bin)
        .arg("--root")
        .arg(root.path())
        .args(["--norc", "-c", "size a.txt; help; type size"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("a.txt: file, 5 bytes\n"), "{stdout}");
    assert!(
        stdout.contains("size PATH..."),
        "help lists the new verb: {stdout}"
    );
    assert!(stdout.contains("size is a built-in verb"), "{stdout}");
}
