//! The layers point one way (see ARCHITECTURE.md): `ftpsh-core` depends on no
//! ftpsh crate, `ftpsh-commands` on `ftpsh-core` alone, and the server in
//! `src/server/` uses `ftpsh-core` only. Cargo enforces the first two; these
//! tests keep the third, and keep `unsafe` inside `ftpsh-core`.

use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The `[dependencies]` table of a manifest: the names of the crates in it.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = fs::read_to_string(manifest).unwrap();
    let mut deps = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            deps.push(line.split(['=', ' ']).next().unwrap().to_string());
        }
    }
    deps
}

#[test]
fn the_server_imports_no_verb_crate() {
    let server = repo().join("src/server");
    let files = rust_files(&server);
    assert!(files.len() > 3, "the server's sources: {files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            assert!(
                !code.contains("ftpsh_commands") && !code.contains("crate::client"),
                "{}:{}: the server uses ftpsh-core only: {line}",
                file.display(),
                n + 1
            );
        }
    }
}

#[test]
fn core_depends_on_no_ftpsh_crate_and_commands_on_core_alone() {
    let core = dependencies(&repo().join("core/Cargo.toml"));
    assert!(core.contains(&"globset".to_string()), "{core:?}");
    assert!(
        core.iter().all(|d| !d.starts_with("ftpsh")),
        "core/Cargo.toml: {core:?}"
    );
    let commands = dependencies(&repo().join("commands/Cargo.toml"));
    let ours: Vec<_> = commands.iter().filter(|d| d.starts_with("ftpsh")).collect();
    assert_eq!(ours, ["ftpsh-core"], "commands/Cargo.toml");
    let fuzz = dependencies(&repo().join("fuzz/Cargo.toml"));
    let ours: Vec<_> = fuzz.iter().filter(|d| d.starts_with("ftpsh")).collect();
    assert_eq!(ours, ["ftpsh-core"], "fuzz/Cargo.toml");
}

#[test]
fn unsafe_code_is_forbidden_outside_core() {
    for root in [
        "src/lib.rs",
        "src/bin/ftpsh.rs",
        "src/bin/ftpsh-server.rs",
        "commands/src/lib.rs",
    ] {
        let text = fs::read_to_string(repo().join(root)).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{root} must forbid unsafe code: OS calls belong in ftpsh_core::sys"
        );
    }
    for dir in ["src", "commands/src"] {
        for file in rust_files(&repo().join(dir)) {
            let text = fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains("libc::"),
                "{}: calls into libc belong in ftpsh_core::sys",
                file.display()
            );
        }
    }
}
