//! Aliases and the start-up file, end to end in script mode: the real server on
//! loopback, the real `ftpsh` fed through a stdin pipe or `-c`, asserting output,
//! messages and exit statuses. The runner's rules themselves (expansion,
//! shadowing, loops, `alias`, `unalias`, `type`, `help`, `source`) are unit
//! tests over an in-memory server: `commands/src/script_tests.rs`. What stays
//! here needs the real thing: aliases that transfer files, and the binary's
//! start-up file.

use crate::common::*;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tempfile::TempDir;

/// A server over a fresh root, and a fresh local directory for the client.
struct Fixture {
    server: Server,
    root: TempDir,
    local: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let server = Server::start(root.path());
        Fixture {
            server,
            root,
            local,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn local(&self) -> &Path {
        self.local.path()
    }

    /// Runs `script` through a stdin pipe (script mode, `--norc`).
    fn script(&self, script: &str) -> Output {
        self.server
            .client(self.local())
            .timeout(Duration::from_secs(60))
            .write_stdin(script)
            .output()
            .unwrap()
    }

    /// `ftpsh ADDR` without `--norc`: the start-up file is looked for.
    fn client_with_rc(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin("ftpsh"));
        cmd.arg(&self.server.addr)
            .current_dir(self.local())
            .env("NO_COLOR", "1")
            .env("HOME", self.local())
            .env_remove("FTPSH_RC")
            .env("FTPSH_TOKEN", TOKEN)
            .timeout(Duration::from_secs(60));
        cmd
    }
}

/// Asserts success and that stdout is exactly `expected`, with stderr empty.
#[track_caller]
fn assert_ok(out: &Output, expected: &str) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    );
    assert_eq!(stdout_of(out), expected, "stderr:\n{}", stderr_of(out));
    assert_eq!(stderr_of(out), "", "nothing on stderr in script mode");
}

/// Asserts exit status 1 and that stderr holds `needle`.
#[track_caller]
fn assert_fails_with(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout_of(out),
        stderr_of(out)
    );
    let err = stderr_of(out);
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

// ---------------------------------------------------------------- aliases that move files

#[test]
fn placeholders_keep_arguments_with_spaces_as_single_words() {
    let f = Fixture::new();
    std::fs::write(f.root().join("remote file.txt"), b"spaced content\n").unwrap();
    let out = f.script(
        "alias fetch 'get $@'\n\
         fetch 'remote file.txt' 'local copy.txt'\n\
         alias fetch2 'get $2 $1'\n\
         fetch2 'second copy.txt' 'remote file.txt'\n\
         alias mk 'mkdir $1'\n\
         mk 'dir with spaces'\n\
         alias tag 'echo <$@>'\n\
         tag a 'b  c'\n",
    );
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    for name in ["local copy.txt", "second copy.txt"] {
        assert_eq!(
            std::fs::read(f.local().join(name)).unwrap(),
            b"spaced content\n",
            "{name}"
        );
    }
    assert!(f.root().join("dir with spaces").is_dir());
    // `$@` inside a word joins the arguments with one space.
    assert!(
        stdout_of(&out).ends_with("<a b  c>\n"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn the_listing_reads_back_with_source() {
    let f = Fixture::new();
    std::fs::write(f.root().join("my file"), b"mine\n").unwrap();
    let out = f.script(
        "alias greet 'echo hello $1!'\n\
         alias two 'echo a; echo b'\n\
         alias g get 'my file'\n\
         alias\n",
    );
    assert!(out.status.success());
    std::fs::write(f.local().join("saved.ftpsh"), &out.stdout).unwrap();
    let out = f.script("source saved.ftpsh\ngreet world\ntwo\ng copy\n");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(
        stdout_of(&out).starts_with("hello world!\na\nb\n"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(std::fs::read(f.local().join("copy")).unwrap(), b"mine\n");
}

// ---------------------------------------------------------------- start-up file

#[test]
fn the_rc_file_from_ftpsh_rc_defines_aliases() {
    let f = Fixture::new();
    let rc = f.local().join("my.rc");
    std::fs::write(&rc, "alias hi 'echo hello from rc'\nalias ll 'ls -l'\n").unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\ntype ll\n")
        .output()
        .unwrap();
    assert_ok(&out, "hello from rc\nll is an alias for 'ls -l'\n");

    // The same with -c.
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .args(["-c", "hi there"])
        .output()
        .unwrap();
    assert_ok(&out, "hello from rc there\n");
}

#[test]
fn norc_skips_the_rc_file() {
    let f = Fixture::new();
    let rc = f.local().join("my.rc");
    std::fs::write(&rc, "alias hi 'echo hello from rc'\necho rc-ran\n").unwrap();
    let out = f
        .client_with_rc()
        .arg("--norc")
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_fails_with(&out, "ftpsh: hi: unknown command");
    assert_eq!(stdout_of(&out), "");

    // ~/.ftpshrc is skipped too.
    std::fs::copy(&rc, f.local().join(".ftpshrc")).unwrap();
    let out = f
        .client_with_rc()
        .arg("--norc")
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_fails_with(&out, "ftpsh: hi: unknown command");
    assert_eq!(stdout_of(&out), "");
}

#[test]
fn an_rc_error_is_reported_with_file_and_line_and_the_shell_goes_on() {
    let f = Fixture::new();
    let rc = f.local().join("broken.rc");
    std::fs::write(
        &rc,
        "alias before 'echo defined before'\n\
         frobnicate now\n\
         alias 'bad name' x\n\
         alias after 'echo defined after'\n",
    )
    .unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("before\nafter\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "defined before\ndefined after\n");
    let err = stderr_of(&out);
    let name = rc.display().to_string();
    assert!(
        err.contains(&format!("ftpsh: {name}:2: frobnicate: unknown command")),
        "{err}"
    );
    assert!(
        err.contains(&format!("ftpsh: {name}:3: alias: invalid alias name")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");

    // A failing command after the rc still fails the script.
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("before\nfrobnicate\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn home_ftpshrc_is_read_when_ftpsh_rc_is_unset() {
    let f = Fixture::new();
    std::fs::write(
        f.local().join(".ftpshrc"),
        "alias hi 'echo hello from home'\n",
    )
    .unwrap();
    let out = f.client_with_rc().write_stdin("hi\n").output().unwrap();
    assert_ok(&out, "hello from home\n");

    // FTPSH_RC wins over ~/.ftpshrc.
    let rc = f.local().join("other.rc");
    std::fs::write(&rc, "alias hi 'echo hello from FTPSH_RC'\n").unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_ok(&out, "hello from FTPSH_RC\n");

    // No rc file at all is fine.
    std::fs::remove_file(f.local().join(".ftpshrc")).unwrap();
    let out = f
        .client_with_rc()
        .write_stdin("echo ok\n")
        .output()
        .unwrap();
    assert_ok(&out, "ok\n");
}

#[test]
fn a_missing_file_named_by_ftpsh_rc_is_reported_and_the_shell_goes_on() {
    let f = Fixture::new();
    let missing = f.local().join("no-such.rc");
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &missing)
        .write_stdin("echo still here\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("ftpsh: cannot open ") && stderr.contains("no-such.rc"),
        "{stderr}"
    );
}
