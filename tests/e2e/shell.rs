//! The foundation (issue 2), end to end: the real `ftpsh-server` on a loopback
//! address and the real `ftpsh` binary driven through a stdin pipe, `-c` or `-f`.
//! Every verb of the issue, the script-mode rules, exit statuses, token checks,
//! listening addresses (IPv4, IPv6, Unix socket, the embedded default), and a
//! server that shrugs off malformed peers.
//!
//! Assertions are on exact stdout, exact stderr lines, exit statuses and files on
//! disk. No timing assertions: a wait for an event has a generous deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use crate::common::*;
use tempfile::TempDir;

/// A generous deadline for events that should take well under a second.
const EVENT: Duration = Duration::from_secs(20);

/// What a finished process came to.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    out: Output,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(2000) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Every run goes through here: no process may panic, and it must exit with a
/// status (not be killed by a signal).
fn finish(out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: stdout_of(&out),
        stderr: stderr_of(&out),
        out,
    };
    assert!(!run.stderr.contains("panicked"), "a panic: {run:?}");
    assert!(
        run.out.status.code().is_some(),
        "killed by a signal: {run:?}"
    );
    run
}

impl Run {
    /// Exit 0, exactly this on stdout, nothing on stderr.
    fn ok(&self, stdout: &str) -> &Self {
        assert_eq!(self.stdout, stdout, "{self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
    /// Exit `code`, exactly this on stdout and on stderr.
    fn exact(&self, code: i32, stdout: &str, stderr: &str) -> &Self {
        assert_eq!(self.stdout, stdout, "{self:?}");
        assert_eq!(self.stderr, stderr, "{self:?}");
        assert_eq!(self.code, code, "{self:?}");
        self
    }
    /// Exit `code` and exactly one line on stderr, which is returned.
    fn one_error_line(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one error line expected: {self:?}");
        assert!(self.stderr.ends_with('\n'), "{self:?}");
        lines[0]
    }
}

/// A server (token, exec allowed unless built otherwise) over a fresh root, and a
/// fresh local directory for the client.
struct Fx {
    server: Server,
    root: TempDir,
    local: TempDir,
}

impl Fx {
    fn new() -> Fx {
        Fx::build(|b| b.allow_exec())
    }

    fn build(options: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Fx {
        let root = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let server = options(ServerBuilder::new(root.path())).start();
        Fx {
            server,
            root,
            local,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// The root as the server sees it (`exec pwd` prints real paths).
    fn real_root(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap()
    }

    fn client(&self) -> assert_cmd::Command {
        self.server.client(self.local.path())
    }

    /// `script` through the client's stdin.
    fn pipe(&self, script: &str) -> Run {
        self.pipe_args(&[], script)
    }

    fn pipe_args(&self, args: &[&str], script: &str) -> Run {
        finish(
            self.client()
                .args(args)
                .write_stdin(script)
                .output()
                .unwrap(),
        )
    }

    /// `ftpsh ADDR -c COMMANDS`.
    fn c(&self, commands: &str) -> Run {
        finish(self.client().args(["-c", commands]).output().unwrap())
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.root().join(rel)).unwrap();
    }

    /// Proof that the server still serves a normal client.
    fn assert_serves(&mut self) {
        self.c("echo still serving").ok("still serving\n");
        assert!(self.server.alive(), "the server died");
    }
}

/// `ftpsh` with no server of the fixture: the given arguments only.
fn ftpsh(args: &[&str], cwd: &Path) -> Run {
    let mut cmd = assert_cmd::Command::new(bin("ftpsh"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("HOME", cwd)
        .env_remove("FTPSH_RC")
        .env_remove("FTPSH_TOKEN")
        .timeout(Duration::from_secs(120));
    finish(cmd.output().unwrap())
}

/// `ftpsh-server` that is expected to exit by itself (a refusal).
fn server_refusal(args: &[&str]) -> Run {
    let mut cmd = assert_cmd::Command::new(bin("ftpsh-server"));
    cmd.args(args)
        .env_remove("FTPSH_TOKEN")
        .timeout(Duration::from_secs(60));
    finish(cmd.output().unwrap())
}

/// The greeting a version-`version` client sends.
use ftpsh_core::protocol::handshake::VERSION;

fn greeting(version: u16) -> Vec<u8> {
    let mut g = b"FTPSH".to_vec();
    g.extend_from_slice(&version.to_be_bytes());
    g
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn set_mtime(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

// ---------------------------------------------------------------- help, type

#[test]
fn help_lists_every_verb_with_its_usage() {
    let fx = Fx::new();
    let run = fx.pipe("help\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"Verbs:"), "{run:?}");
    assert_eq!(
        lines.last(),
        Some(&"Type 'help VERB' for its usage and an example."),
        "{run:?}"
    );
    for (verb, usage) in [
        ("help", "help [VERB]"),
        ("echo", "echo [TEXT...]"),
        ("exec", "exec COMMAND..."),
        ("ls", "ls [-l] [-a] [-h] [-t] [-S] [-r] [-1] [PATTERN...]"),
        ("cd", "cd [PATH]"),
        ("pwd", "pwd"),
        ("mkdir", "mkdir [-p] PATH..."),
        ("rm", "rm [-r] PATTERN..."),
        ("type", "type NAME..."),
        ("quit", "quit"),
        ("exit", "exit"),
        ("bye", "bye"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(verb))
            .unwrap_or_else(|| panic!("{verb} missing from help: {run:?}"));
        assert!(
            line.trim_start().starts_with(usage),
            "{verb}: {line:?} should start with {usage:?}"
        );
        let about = line.trim_start()[usage.len()..].trim();
        assert!(!about.is_empty(), "{verb} has no one-line help: {line:?}");
    }
    // Verbs are listed in name order.
    let names: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn help_verb_shows_its_usage_and_an_example() {
    let fx = Fx::new();
    let run = fx.pipe("help ls\n");
    run.ok(&run.stdout.clone());
    assert!(
        run.stdout
            .starts_with("usage: ls [-l] [-a] [-h] [-t] [-S] [-r] [-1] [PATTERN...]\n"),
        "{run:?}"
    );
    assert!(run.stdout.contains("\n  example: ls"), "{run:?}");

    for verb in [
        "help", "echo", "exec", "cd", "pwd", "mkdir", "rm", "type", "quit", "exit", "bye",
    ] {
        let run = fx.c(&format!("help {verb}"));
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stderr, "", "{run:?}");
        assert!(
            run.stdout.starts_with(&format!("usage: {verb}")),
            "{verb}: {run:?}"
        );
        assert!(run.stdout.contains("  example: "), "{verb}: {run:?}");
    }

    // VERB --help is the same text and not a failure.
    let run = fx.c("mkdir --help");
    run.ok(&run.stdout.clone());
    assert!(
        run.stdout.starts_with("usage: mkdir [-p] PATH...\n"),
        "{run:?}"
    );
}

#[test]
fn help_of_an_unknown_verb_fails_with_a_suggestion_when_one_is_close() {
    let fx = Fx::new();
    fx.c("help frob")
        .exact(1, "", "ftpsh: help: frob: no such verb or alias\n");
    fx.c("help hlep").exact(
        1,
        "",
        "ftpsh: help: hlep: no such verb or alias (did you mean 'help'?)\n",
    );
}

#[test]
fn type_says_built_in_or_fails_with_not_found() {
    let fx = Fx::new();
    fx.pipe("type ls\ntype quit bye\n")
        .ok("ls is a built-in verb\nquit is a built-in verb\nbye is a built-in verb\n");
    fx.pipe("type frob\necho not reached\n")
        .exact(1, "", "ftpsh: type: frob: not found\n");
    fx.c("type ls frob").exact(
        1,
        "ls is a built-in verb\n",
        "ftpsh: type: frob: not found\n",
    );
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_joins_words_with_one_space_and_honours_quoting() {
    let fx = Fx::new();
    fx.pipe("echo hello   world\n").ok("hello world\n");
    fx.pipe("echo  a   \"b  c\"   d\n").ok("a b  c d\n");
    fx.pipe("echo \"it's\" 'say \"hi\"' back\\ slash\n")
        .ok("it's say \"hi\" back slash\n");
    fx.pipe("echo 'h\u{e9}llo w\u{f6}rld \u{2713}'\n")
        .ok("h\u{e9}llo w\u{f6}rld \u{2713}\n");
    fx.pipe("echo '' x\n").ok(" x\n");
    fx.pipe("echo '$HOME' `id` *\n").ok("$HOME `id` *\n");
}

// ---------------------------------------------------------------- exec

#[test]
fn exec_separates_stdout_from_stderr_and_reports_the_exit_status() {
    let fx = Fx::new();
    fx.pipe("exec 'echo out1; echo err1 >&2; echo out2'\n")
        .exact(0, "out1\nout2\n", "err1\n");
    fx.pipe("exec 'echo out; echo err >&2; exit 3'\necho not reached\n")
        .exact(
            1,
            "out\n",
            "err\nftpsh: exec: remote command exited with status 3\n",
        );
    fx.c("exec false")
        .exact(1, "", "ftpsh: exec: remote command exited with status 1\n");
    fx.c("exec 'kill -9 $$'")
        .exact(1, "", "ftpsh: exec: remote command killed by signal 9\n");
    // The words are joined with spaces and run by sh -c, as ssh does.
    fx.c("exec echo a   b '|' tr a-z A-Z").ok("A B\n");
    // The remote command's stdin is empty: reading it ends at once.
    fx.pipe("exec cat\nexec 'read x; echo got=$x'\necho after\n")
        .ok("got=\nafter\n");
}

#[test]
fn exec_runs_in_the_remote_directory() {
    let fx = Fx::new();
    fx.mkdir("sub/deeper");
    let real = fx.real_root();
    fx.pipe("exec pwd\ncd sub\nexec pwd\nexec 'echo made > made.txt'\ncd deeper\nexec ls ..\n")
        .ok(&format!(
            "{}\n{}\ndeeper\nmade.txt\n",
            real.display(),
            real.join("sub").display()
        ));
    assert_eq!(
        std::fs::read_to_string(fx.root().join("sub/made.txt")).unwrap(),
        "made\n"
    );
}

#[test]
fn exec_is_refused_without_allow_exec() {
    let fx = Fx::build(|b| b);
    let run = fx.pipe("exec touch ran\necho not reached\n");
    assert_eq!(run.stdout, "", "{run:?}");
    let line = run.one_error_line(1);
    assert!(line.starts_with("ftpsh: exec: "), "{line}");
    assert!(line.contains("--allow-exec"), "unclear refusal: {line}");
    assert!(!fx.root().join("ran").exists(), "the command ran");
    // The refusal costs nothing else: the session carries on.
    let run = fx.c("-exec true; echo still here");
    assert_eq!(run.stdout, "still here\n", "{run:?}");
    assert!(run.one_error_line(0).starts_with("ftpsh: exec: "));
}

#[test]
fn exec_output_of_20_mb_arrives_byte_exact_on_either_stream() {
    let fx = Fx::new();
    // Binary, not text: every byte value, no newlines to lean on.
    let data = random_bytes(20_000_000, 2);
    fx.write("big.bin", &data);

    let run = fx.c("exec cat big.bin");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(run.out.stdout.len(), data.len());
    assert_eq!(md5_hex(&run.out.stdout), md5_hex(&data));

    let run = fx.c("exec 'cat big.bin >&2'");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.out.stdout.is_empty(), "{run:?}");
    assert_eq!(run.out.stderr.len(), data.len());
    assert_eq!(md5_hex(&run.out.stderr), md5_hex(&data));

    // A generated stream, no file behind it.
    let run = fx.c("exec \"head -c 20000000 /dev/zero | tr '\\\\0' x\"");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(run.out.stdout.len(), 20_000_000);
    assert_eq!(
        md5_hex(&run.out.stdout),
        md5_hex(&vec![b'x'; 20_000_000]),
        "not all x"
    );
}

// ---------------------------------------------------------------- ls

#[test]
fn ls_lists_names_sorted_with_directories_marked() {
    let fx = Fx::new();
    fx.write("b.txt", b"b");
    fx.write("a.txt", b"a");
    fx.write(".hidden", b"h");
    fx.write("sub/inner.txt", b"i");
    fx.pipe("ls\n").ok("a.txt\nb.txt\nsub/\n");
    fx.pipe("ls -a\n").ok(".hidden\na.txt\nb.txt\nsub/\n");
    fx.pipe("ls sub\nls /sub\nls sub/\n")
        .ok("inner.txt\ninner.txt\ninner.txt\n");
    // `..` and absolute paths never leave the root.
    fx.pipe("cd sub\nls ../..\nls /\n")
        .ok("a.txt\nb.txt\nsub/\na.txt\nb.txt\nsub/\n");
    // A file path lists the file itself.
    fx.pipe("ls a.txt\nls sub/inner.txt\n")
        .ok("a.txt\nsub/inner.txt\n");
    // An empty directory lists nothing.
    fx.mkdir("empty");
    fx.pipe("ls empty\n").ok("");
}

#[test]
fn ls_long_shows_kind_permissions_size_and_utc_time() {
    let fx = Fx::new();
    fx.write("l/one", b"12345");
    fx.write("l/two", b"twelve bytes");
    fx.write("l/.dot", b"");
    for (name, mode) in [("one", 0o640), ("two", 0o600), (".dot", 0o644)] {
        let p = fx.root().join("l").join(name);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(&p, 1_000_000_000); // 2001-09-09 01:46:40 UTC
    }
    fx.pipe("ls -l l\n").ok(concat!(
        "-rw-r-----  5 2001-09-09 01:46 one\n",
        "-rw------- 12 2001-09-09 01:46 two\n",
    ));
    fx.pipe("ls -la l\n").ok(concat!(
        "-rw-r--r--  0 2001-09-09 01:46 .dot\n",
        "-rw-r-----  5 2001-09-09 01:46 one\n",
        "-rw------- 12 2001-09-09 01:46 two\n",
    ));
    fx.pipe("ls -l l/one\n")
        .ok("-rw-r----- 5 2001-09-09 01:46 l/one\n");
    // A directory in a long listing starts with `d`.
    std::fs::set_permissions(fx.root().join("l"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let run = fx.pipe("ls -l\n");
    run.ok(&run.stdout.clone());
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert!(run.stdout.starts_with("drwxr-x--- "), "{run:?}");
    assert!(run.stdout.ends_with(" l\n"), "{run:?}");
}

#[test]
fn ls_of_a_missing_path_fails_with_the_path_in_the_message() {
    let fx = Fx::new();
    fx.pipe("ls nope\necho not reached\n").exact(
        1,
        "",
        "ftpsh: ls: /nope: no such file or directory\n",
    );
    fx.mkdir("sub");
    fx.pipe("cd sub\nls ../gone/x\n").exact(
        1,
        "",
        "ftpsh: ls: /gone/x: no such file or directory\n",
    );
}

// ------------------------------------------------ names with control characters

/// A name whose escape sequence would turn a terminal red.
const RED: &str = "evil\x1b[31mred";
/// A directory whose name would set the terminal's title, then ring its bell.
const TITLE: &str = "dir\x1b]0;pwned\x07";

#[test]
fn piped_results_keep_exact_names_while_errors_escape_them() {
    let fx = Fx::new();
    fx.write(RED, b"red\n");
    fx.write("bell\x07", b"bell\n");
    fx.write("back\\slash", b"b\n");
    fx.mkdir(TITLE);
    for name in [RED, "bell\x07", "back\\slash"] {
        std::fs::write(fx.local.path().join(name), b"").unwrap();
    }
    // One run: stdout (a pipe, for a program) has the exact bytes, stderr (for
    // a person) the escaped form.
    let run = fx.pipe(&format!("ls\nlls\nmd5 '{RED}'\nget '{TITLE}'\n"));
    let listing = format!("back\\slash\nbell\x07\n{TITLE}/\n{RED}\n");
    let local = format!("back\\slash\nbell\x07\n{RED}\n");
    run.exact(
        1,
        &format!("{listing}{local}{}  {RED}\n", md5_hex(b"red\n")),
        "ftpsh: get: /dir\\e]0;pwned\\x07: is a directory (use get -r)\n",
    );
}

#[test]
fn errors_and_warnings_escape_control_characters_and_backslashes() {
    let fx = Fx::new();
    fx.write(&format!("t/{RED}"), b"x");
    std::os::unix::fs::symlink("nowhere", fx.root().join("t/link\x07")).unwrap();
    let run = fx.pipe_args(
        &["--keep-going"],
        concat!(
            "get -r -L t\n",
            "put 'gone\x1bc'\n",
            "ls 'back\\slash\r/none'\n",
            "mget 'nomatch\x07*' 'also\x1bc*'\n",
        ),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.starts_with("1 file, 1 B in "), "{run:?}");
    assert_eq!(
        run.stderr,
        concat!(
            "ftpsh: get: t/link\\x07: skipped: a symbolic link leading outside the served root or to nothing\n",
            "ftpsh: put: cannot read gone\\ec: no such file or directory\n",
            "ftpsh: ls: /back\\\\slash\\r/none: no such file or directory\n",
            "ftpsh: mget: 2 failed:\n",
            "  nomatch\\x07*: no match\n",
            "  also\\ec*: no match\n",
        ),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read(fx.local.path().join("t").join(RED)).unwrap(),
        b"x"
    );
}

#[test]
fn symlinks_out_of_the_root_are_not_followed() {
    let fx = Fx::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), fx.root().join("out")).unwrap();
    for line in ["ls out", "cd out", "ls out/secret"] {
        let run = fx.c(line);
        assert_eq!(run.stdout, "", "{line}: {run:?}");
        let err = run.one_error_line(1);
        assert!(
            err.contains("/out") && err.contains("outside"),
            "{line}: {err}"
        );
    }
}

// ---------------------------------------------------------------- cd, pwd

#[test]
fn cd_and_pwd_move_inside_the_root_only() {
    let fx = Fx::new();
    fx.mkdir("docs/2026");
    fx.write("a.txt", b"a");
    fx.pipe(
        "pwd\ncd docs\npwd\ncd 2026\npwd\ncd ..\npwd\ncd ..\npwd\ncd ..\npwd\ncd ../../..\npwd\n",
    )
    .ok("/\n/docs\n/docs/2026\n/docs\n/\n/\n/\n");
    fx.pipe("cd /docs/2026\npwd\ncd /\npwd\ncd docs/./2026/../2026/\npwd\ncd\npwd\n")
        .ok("/docs/2026\n/\n/docs/2026\n/\n");
    fx.pipe("cd docs\ncd /docs/../docs/2026\npwd\n")
        .ok("/docs/2026\n");
}

#[test]
fn cd_into_a_file_or_a_missing_directory_fails_and_stays_put() {
    let fx = Fx::new();
    fx.mkdir("docs");
    fx.write("docs/a.txt", b"a");
    fx.pipe_args(
        &["--keep-going"],
        "cd docs\ncd a.txt\npwd\ncd nope\npwd\ncd /a.txt\npwd\n",
    )
    .exact(
        1,
        "/docs\n/docs\n/docs\n",
        concat!(
            "ftpsh: cd: /docs/a.txt: not a directory\n",
            "ftpsh: cd: /docs/nope: no such file or directory\n",
            "ftpsh: cd: /a.txt: no such file or directory\n",
        ),
    );
}

#[test]
fn each_connection_has_its_own_remote_directory() {
    let fx = Fx::new();
    fx.mkdir("sub");
    fx.c("cd sub; pwd").ok("/sub\n");
    fx.c("pwd").ok("/\n");
}

// ---------------------------------------------------------------- mkdir, rm

#[test]
fn mkdir_creates_directories_and_p_creates_parents() {
    let fx = Fx::new();
    fx.pipe("mkdir one\nmkdir two three\nls\n")
        .ok("one/\nthree/\ntwo/\n");
    for d in ["one", "two", "three"] {
        assert!(fx.root().join(d).is_dir(), "{d}");
    }
    fx.pipe("mkdir -p a/b/c\nmkdir -p a/b/c\ncd a/b\nls\n")
        .ok("c/\n");
    assert!(fx.root().join("a/b/c").is_dir());
    // Relative to the remote directory, and `..` cannot climb out.
    fx.pipe("cd one\nmkdir inner\nmkdir ../../../escape\n")
        .ok("");
    assert!(fx.root().join("one/inner").is_dir());
    assert!(fx.root().join("escape").is_dir());
}

#[test]
fn mkdir_failures_name_the_path() {
    let fx = Fx::new();
    fx.mkdir("exists");
    fx.write("file", b"f");
    fx.pipe_args(
        &["--keep-going"],
        "mkdir exists\nmkdir no/parent\nmkdir -p file/sub\nmkdir -p file\n",
    )
    .exact(
        1,
        "",
        concat!(
            "ftpsh: mkdir: /exists: already exists\n",
            "ftpsh: mkdir: /no/parent: no such file or directory\n",
            "ftpsh: mkdir: /file/sub: not a directory\n",
            "ftpsh: mkdir: /file: already exists\n",
        ),
    );
    assert!(!fx.root().join("no").exists());
    assert!(fx.root().join("file").is_file());
}

#[test]
fn rm_removes_files_and_empty_directories_and_needs_r_for_trees() {
    let fx = Fx::new();
    fx.write("f.txt", b"f");
    fx.mkdir("empty");
    fx.write("full/sub/deep.txt", b"d");
    fx.write("full/top.txt", b"t");

    fx.pipe("rm f.txt\nrm empty\n").ok("");
    assert!(!fx.root().join("f.txt").exists());
    assert!(!fx.root().join("empty").exists());

    fx.pipe("rm full\necho not reached\n").exact(
        1,
        "",
        "ftpsh: rm: /full: directory not empty (use rm -r)\n",
    );
    assert!(fx.root().join("full/sub/deep.txt").is_file());

    fx.pipe("rm -r full\nls\n").ok("");
    assert!(!fx.root().join("full").exists());

    fx.pipe("rm gone\n")
        .exact(1, "", "ftpsh: rm: /gone: no such file or directory\n");
}

#[test]
fn rm_never_removes_the_root() {
    let fx = Fx::new();
    fx.write("keep.txt", b"k");
    fx.mkdir("sub");
    let run = fx.pipe_args(&["--keep-going"], "rm -r /\nrm -r .\ncd sub\nrm -r ..\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert_eq!(run.stderr.lines().count(), 3, "{run:?}");
    for line in run.stderr.lines() {
        assert!(line.starts_with("ftpsh: rm: /: "), "{line}");
    }
    assert!(fx.root().join("keep.txt").is_file());
    assert!(fx.root().join("sub").is_dir());
}

// ---------------------------------------------------------------- quit

#[test]
fn quit_exit_and_bye_stop_a_script_with_status_0() {
    let fx = Fx::new();
    for verb in ["quit", "exit", "bye"] {
        fx.pipe(&format!(
            "echo before\n{verb}\necho after\nmkdir {verb}-ran\n"
        ))
        .ok("before\n");
        assert!(!fx.root().join(format!("{verb}-ran")).exists(), "{verb}");
        fx.c(&format!("echo a; {verb}; echo b; mkdir {verb}-ran"))
            .ok("a\n");
        assert!(!fx.root().join(format!("{verb}-ran")).exists(), "{verb}");
    }
    // A failure before quit still counts under --keep-going.
    fx.pipe_args(&["--keep-going"], "rm nope\nquit\necho after\n")
        .exact(1, "", "ftpsh: rm: /nope: no such file or directory\n");
}

// ---------------------------------------------------------------- unknown verbs

#[test]
fn an_unknown_verb_fails_with_exactly_that_message() {
    let fx = Fx::new();
    fx.pipe("frob\necho not reached\n")
        .exact(1, "", "ftpsh: frob: unknown command\n");
    fx.c("gte a.txt")
        .exact(1, "", "ftpsh: gte: unknown command (did you mean 'get'?)\n");
    fx.c("ehco hi").exact(
        1,
        "",
        "ftpsh: ehco: unknown command (did you mean 'echo'?)\n",
    );
    fx.c("mkd x").exact(
        1,
        "",
        "ftpsh: mkd: unknown command (did you mean 'mkdir'?)\n",
    );
    assert!(!fx.root().join("x").exists());
}

// ---------------------------------------------------------------- script mode

#[test]
fn a_script_stops_at_the_first_failing_command_with_status_1() {
    let fx = Fx::new();
    fx.pipe("echo one\nmkdir made\nrm nope\necho two\nmkdir after\n")
        .exact(1, "one\n", "ftpsh: rm: /nope: no such file or directory\n");
    assert!(fx.root().join("made").is_dir());
    assert!(
        !fx.root().join("after").exists(),
        "a line after the failure ran"
    );
    // The same within one line: `;` stops there too.
    fx.pipe("echo one; rm nope; mkdir after2\necho two\n")
        .exact(1, "one\n", "ftpsh: rm: /nope: no such file or directory\n");
    assert!(!fx.root().join("after2").exists());
}

#[test]
fn keep_going_runs_everything_and_still_exits_1() {
    let fx = Fx::new();
    fx.pipe_args(
        &["--keep-going"],
        "echo one\nrm nope\nfrob\necho two; rm nope2; mkdir after\n",
    )
    .exact(
        1,
        "one\ntwo\n",
        concat!(
            "ftpsh: rm: /nope: no such file or directory\n",
            "ftpsh: frob: unknown command\n",
            "ftpsh: rm: /nope2: no such file or directory\n",
        ),
    );
    assert!(fx.root().join("after").is_dir());
}

#[test]
fn a_leading_dash_ignores_a_failure() {
    let fx = Fx::new();
    let run = fx.pipe("-rm nope\n-frob\necho after; -cd nope; mkdir after\n");
    assert_eq!(run.stdout, "after\n", "{run:?}");
    assert_eq!(run.code, 0, "{run:?}");
    // The failures are still reported, each on its line.
    assert_eq!(
        run.stderr,
        concat!(
            "ftpsh: rm: /nope: no such file or directory (tolerated: the line starts with '-')\n",
            "ftpsh: frob: unknown command (tolerated: the line starts with '-')\n",
            "ftpsh: cd: /nope: no such file or directory (tolerated: the line starts with '-')\n",
        ),
        "{run:?}"
    );
    assert!(fx.root().join("after").is_dir());
    // A dash on a command that succeeds changes nothing.
    fx.c("-echo fine").ok("fine\n");
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let fx = Fx::new();
    fx.pipe(
        "# a comment; frob\n\n   \n\t\n  # indented comment\necho yes # trailing; frob\necho a#b\n",
    )
    .ok("yes\na#b\n");
    fx.pipe("").ok("");
}

#[test]
fn semicolons_separate_commands_except_inside_quotes() {
    let fx = Fx::new();
    fx.pipe("echo a; echo 'b;c' \"d;e\"; echo f\\;g;echo h\n")
        .ok("a\nb;c d;e\nf;g\nh\n");
    fx.pipe(";;echo x;;  ;\n").ok("x\n");
    fx.c("echo a; echo b").ok("a\nb\n");
    fx.c("echo a\necho b; echo c").ok("a\nb\nc\n");
    fx.c("mkdir d; cd d; pwd").ok("/d\n");
}

#[test]
fn dash_c_and_dash_f_follow_the_script_rules() {
    let fx = Fx::new();
    fx.c("echo one; rm nope; mkdir after").exact(
        1,
        "one\n",
        "ftpsh: rm: /nope: no such file or directory\n",
    );
    assert!(!fx.root().join("after").exists());
    fx.c("-rm nope").exact(
        0,
        "",
        "ftpsh: rm: /nope: no such file or directory (tolerated: the line starts with '-')\n",
    );

    let script = fx.local.path().join("s.ftpsh");
    std::fs::write(
        &script,
        "# set up\nmkdir -p work/logs\n\ncd work\npwd\n-rm missing\necho done; ls\n",
    )
    .unwrap();
    let run = finish(fx.client().arg("-f").arg(&script).output().unwrap());
    // Errors from a script file name FILE:LINE.
    let shown = script.display();
    run.exact(
        0,
        "/work\ndone\nlogs/\n",
        &format!(
            "ftpsh: {shown}:6: rm: /work/missing: no such file or directory \
             (tolerated: the line starts with '-')\n"
        ),
    );

    std::fs::write(&script, "echo one\nfrob\necho two\n").unwrap();
    let run = finish(fx.client().arg("-f").arg(&script).output().unwrap());
    let frob = format!("ftpsh: {shown}:2: frob: unknown command\n");
    run.exact(1, "one\n", &frob);
    let run = finish(
        fx.client()
            .arg("--keep-going")
            .arg("-f")
            .arg(&script)
            .output()
            .unwrap(),
    );
    run.exact(1, "one\ntwo\n", &frob);

    // CRLF line endings are lines too.
    std::fs::write(&script, "echo one\r\necho two\r\n").unwrap();
    let run = finish(fx.client().arg("-f").arg(&script).output().unwrap());
    run.ok("one\ntwo\n");
    fx.pipe("echo one\r\necho two\r\n").ok("one\ntwo\n");
}

#[test]
fn a_missing_script_file_is_a_one_line_error() {
    let fx = Fx::new();
    let run = fx.pipe_args(&["-f", "no-such-script"], "");
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(2);
    assert!(line.starts_with("ftpsh: "), "{line}");
    assert!(line.contains("no-such-script"), "{line}");
}

#[test]
fn a_script_never_prints_color_even_without_no_color() {
    let fx = Fx::new();
    let run = finish(
        fx.client()
            .env_remove("NO_COLOR")
            .args(["-c", "echo fine; frob"])
            .output()
            .unwrap(),
    );
    run.exact(1, "fine\n", "ftpsh: frob: unknown command\n");
}

// ---------------------------------------------------------------- bad input

#[test]
fn wrong_arguments_give_one_usage_line_each_and_nothing_panics() {
    let fx = Fx::new();
    fx.mkdir("d");
    let cases: &[(&str, &str, &str)] = &[
        ("help a b", "help", "too many arguments"),
        ("exec", "exec", "missing"),
        ("rename a", "rename", "missing"),
        ("ls -z", "ls", "unexpected argument"),
        ("cd a b", "cd", "too many arguments"),
        ("pwd x", "pwd", "too many arguments"),
        ("mkdir", "mkdir", "missing"),
        ("mkdir -p", "mkdir", "missing"),
        ("mkdir -q x", "mkdir", "unexpected argument"),
        ("rm", "rm", "missing"),
        ("rm -r", "rm", "missing"),
        ("type", "type", "missing"),
        ("quit now", "quit", "too many arguments"),
        ("exit 3", "exit", "too many arguments"),
        ("bye bye", "bye", "too many arguments"),
        ("mv a b c", "mv", "too many arguments"),
        ("chmod 640", "chmod", "missing"),
        ("rmdir", "rmdir", "missing"),
        ("ln a b", "ln", "missing"),
        ("stat", "stat", "missing"),
        ("df a b", "df", "unexpected argument"),
        ("cat", "cat", "missing"),
        ("lmkdir -q x", "lmkdir", "unexpected argument"),
        ("lrm", "lrm", "missing"),
        ("lrename a", "lrename", "missing"),
    ];
    let script: String = cases.iter().map(|(l, _, _)| format!("{l}\n")).collect();
    let run = fx.pipe_args(&["--keep-going"], &format!("{script}echo survived\n"));
    assert_eq!(run.stdout, "survived\n", "{run:?}");
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{run:?}");
    for ((input, verb, what), line) in cases.iter().zip(lines) {
        assert!(
            line.starts_with(&format!("ftpsh: {verb}: {what}")),
            "{input}: {line}"
        );
        assert!(line.contains("(usage: "), "{input}: {line}");
    }
    // Nothing was created or removed by the bad lines.
    assert!(fx.root().join("d").is_dir());
    assert!(!fx.root().join("x").exists());
    // Each one alone stops a script with status 1.
    for (input, _, _) in cases {
        let run = fx.pipe(&format!("{input}\necho not reached\n"));
        assert_eq!(run.stdout, "", "{input}: {run:?}");
        run.one_error_line(1);
    }
}

#[test]
fn an_unmatched_quote_is_a_one_line_error() {
    let fx = Fx::new();
    fx.pipe("echo \"abc\necho not reached\n").exact(
        1,
        "",
        "ftpsh: unmatched quote in: echo \"abc\n",
    );
    fx.pipe_args(&["--keep-going"], "echo 'a; echo b\necho next\n")
        .exact(1, "next\n", "ftpsh: unmatched quote in: echo 'a; echo b\n");
    fx.c("mkdir \"x")
        .exact(1, "", "ftpsh: unmatched quote in: mkdir \"x\n");
    assert!(!fx.root().join("x").exists());
    fx.c("echo \"a;b")
        .exact(1, "", "ftpsh: unmatched quote in: echo \"a;b\n");
}

#[test]
fn odd_paths_are_errors_not_crashes() {
    let mut fx = Fx::new();
    let long = "x".repeat(5000);
    let script = format!(
        "ls a\u{0}b\nmkdir {long}\ncd ''\npwd\nls ''\nrm ''\nmkdir ''\ncd '\\\\'\nls '\u{1b}[31m'\n"
    );
    let run = fx.pipe_args(&["--keep-going"], &script);
    assert_eq!(run.code, 1, "{run:?}");
    // `cd ''` stays at the root; `ls ''` lists it (empty).
    assert_eq!(run.stdout, "/\n", "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{run:?}");
    for line in lines {
        assert!(line.starts_with("ftpsh: "), "{line}");
    }
    fx.assert_serves();
}

#[test]
fn a_line_that_is_not_utf8_is_an_error_not_the_end_of_the_script() {
    let fx = Fx::new();
    let mut script = b"echo a\necho \xff\xfe\necho b\n".to_vec();
    let run = finish(fx.client().write_stdin(script.clone()).output().unwrap());
    assert_eq!(run.stdout, "a\n", "{run:?}");
    let line = run.one_error_line(1);
    assert!(
        line.starts_with("ftpsh: ") && line.contains("UTF-8"),
        "{line}"
    );

    script.extend_from_slice(b"mkdir after\n");
    let run = finish(
        fx.client()
            .arg("--keep-going")
            .write_stdin(script)
            .output()
            .unwrap(),
    );
    assert_eq!(run.stdout, "a\nb\n", "{run:?}");
    run.one_error_line(1);
    assert!(fx.root().join("after").is_dir());
}

// ---------------------------------------------------------------- command line

#[test]
fn a_bad_command_line_exits_2_without_running_anything() {
    let fx = Fx::new();
    let addr = fx.server.addr.as_str();
    let local = fx.local.path();
    let cases: Vec<Vec<&str>> = vec![
        vec![addr, "--bogus", "-c", "mkdir ran"],
        vec![addr, "-c"],
        vec![addr, "-c", "mkdir ran", "-f", "script"],
        vec![addr, "extra", "-c", "mkdir ran"],
        vec![addr, "--root", ".", "-c", "mkdir ran"],
        vec!["not:an:addr", "-c", "mkdir ran"],
        vec!["127.0.0.1:99999", "-c", "mkdir ran"],
        vec!["127.0.0.1:port", "-c", "mkdir ran"],
        vec!["[::1", "-c", "mkdir ran"],
        vec!["", "-c", "mkdir ran"],
        vec![":6969", "-c", "mkdir ran"],
        vec!["unix:", "-c", "mkdir ran"],
    ];
    for args in cases {
        let mut full = vec!["--norc"];
        full.extend(&args);
        let mut cmd = assert_cmd::Command::new(bin("ftpsh"));
        cmd.args(&full)
            .current_dir(local)
            .env("NO_COLOR", "1")
            .env("HOME", local)
            .env("FTPSH_TOKEN", TOKEN)
            .timeout(Duration::from_secs(60));
        let run = finish(cmd.output().unwrap());
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
        assert!(!run.stderr.trim().is_empty(), "{args:?}: no message");
        assert!(!fx.root().join("ran").exists(), "{args:?} ran a command");
    }
}

#[test]
fn the_server_rejects_a_bad_command_line() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    // With a token, so that the refusal is about the address itself.
    for args in [
        vec!["--bogus"],
        vec!["--root", r, "--token", TOKEN, "--listen", "1.2.3.4:5:6"],
        vec!["--root", r, "--token", TOKEN, "--listen", "127.0.0.1:70000"],
        vec!["--root", r, "--token", TOKEN, "--listen", "unix:"],
        vec!["--root", r, "--token", TOKEN, "--listen", ":0"],
        vec!["--root", r, "--token", TOKEN, "--listen", "[::1"],
    ] {
        let run = server_refusal(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
        assert!(!run.stderr.trim().is_empty(), "{args:?}");
    }
    let missing = root.path().join("missing");
    let run = server_refusal(&[
        "--root",
        missing.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let line = run.one_error_line(run.code);
    assert!(
        line.starts_with("ftpsh-server: ") && line.contains("missing"),
        "{line}"
    );
}

// ---------------------------------------------------------------- tokens, connecting

#[test]
fn a_wrong_token_exits_3_with_one_line_about_authentication() {
    let fx = Fx::new();
    let run = finish(
        fx.client()
            .env("FTPSH_TOKEN", "not-the-token")
            .args(["-c", "mkdir ran"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(3);
    assert!(line.starts_with("ftpsh: "), "{line}");
    assert!(line.contains("authentication"), "{line}");
    assert!(!fx.root().join("ran").exists());

    // --token wins over the environment.
    let run = finish(
        fx.client()
            .args(["--token", "also-wrong", "-c", "echo x"])
            .output()
            .unwrap(),
    );
    assert!(run.one_error_line(3).contains("authentication"));
    let run = finish(
        fx.client()
            .env("FTPSH_TOKEN", "not-the-token")
            .args(["--token", TOKEN, "-c", "echo right"])
            .output()
            .unwrap(),
    );
    run.ok("right\n");
}

#[test]
fn a_missing_token_exits_3_when_the_server_wants_one() {
    let fx = Fx::new();
    let run = finish(
        fx.client()
            .env_remove("FTPSH_TOKEN")
            .write_stdin("mkdir ran\n")
            .output()
            .unwrap(),
    );
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(3);
    assert!(line.contains("authentication"), "{line}");
    assert!(!fx.root().join("ran").exists());
}

#[test]
fn a_server_without_a_token_lets_anyone_on_loopback_in() {
    let fx = Fx::build(|b| b.no_token());
    fx.c("echo open").ok("open\n");
}

#[test]
fn connecting_to_a_closed_port_exits_3() {
    let local = tempfile::tempdir().unwrap();
    let port = closed_port();
    let addr = format!("127.0.0.1:{port}");
    let run = ftpsh(&[&addr, "--norc", "-c", "echo x"], local.path());
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(3);
    assert!(
        line.starts_with(&format!("ftpsh: cannot connect to {addr}")),
        "{line}"
    );
    let sock = local.path().join("nobody.sock");
    let addr = format!("unix:{}", sock.display());
    let run = ftpsh(&[&addr, "--norc", "-c", "echo x"], local.path());
    assert!(run.one_error_line(3).starts_with("ftpsh: "));
}

#[test]
fn a_peer_that_is_not_an_ftpsh_server_exits_3() {
    let local = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        let _ = s.flush();
        // Let the client read it before the socket goes away.
        let mut buf = [0u8; 64];
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.read(&mut buf);
    });
    let run = ftpsh(&[&addr, "--norc", "-c", "echo x"], local.path());
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(3);
    assert!(
        line.starts_with("ftpsh: ") && line.contains(&addr),
        "{line}"
    );
    fake.join().unwrap();
}

// ---------------------------------------------------------------- a robust server

#[test]
fn the_server_survives_garbage_huge_and_truncated_frames() {
    let mut fx = Fx::new();

    // Bytes that are not the protocol at all.
    let mut garbage = TcpStream::connect(&fx.server.addr).unwrap();
    garbage.write_all(&random_bytes(4096, 7)).unwrap();
    // A good handshake, then a frame announcing 4 GiB - 1.
    let mut huge = raw_connection(&fx.server, true);
    huge.write_all(&[0x02, 0xff, 0xff, 0xff, 0xff]).unwrap();
    // The same before authentication: the Auth frame itself is huge.
    let mut huge_auth = TcpStream::connect(&fx.server.addr).unwrap();
    huge_auth.write_all(&greeting(1)).unwrap();
    huge_auth
        .write_all(&[0x01, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    // A frame cut short, its connection left open (a stalled peer).
    let mut truncated = raw_connection(&fx.server, true);
    truncated.write_all(&[0x02, 0, 0, 0, 100]).unwrap();
    truncated.write_all(&[0, 0, 0, 96, b'h', b'e']).unwrap();

    for (name, sock) in [
        ("garbage", &mut garbage),
        ("huge", &mut huge),
        ("huge auth", &mut huge_auth),
    ] {
        assert!(wait_closed(sock), "{name}: connection left open");
    }
    // While the truncated frame is still pending, others are served.
    fx.assert_serves();
    // Then the peer goes away mid-frame.
    truncated.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        wait_closed(&mut truncated),
        "truncated: connection left open"
    );

    // A frame whose payload disagrees with its own length field.
    let mut lying = raw_connection(&fx.server, true);
    let mut frame = vec![0x02, 0, 0, 0, 6];
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0, b'h', b'i']);
    lying.write_all(&frame).unwrap();
    assert!(wait_closed(&mut lying), "lying: connection left open");

    assert!(fx.server.alive(), "the server died");
    fx.assert_serves();
    fx.pipe("echo a\nmkdir d\ncd d\npwd\n").ok("a\n/d\n");
    // The server said why, on its log.
    assert!(
        wait_until(EVENT, || fx
            .server
            .log_text()
            .contains("more than the limit")),
        "{}",
        fx.server.log_text()
    );
}

#[test]
fn a_client_of_another_protocol_version_is_told_and_dropped() {
    let mut fx = Fx::new();
    let mut s = TcpStream::connect(&fx.server.addr).unwrap();
    s.set_read_timeout(Some(EVENT)).unwrap();
    s.write_all(&greeting(VERSION + 1)).unwrap();
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(
        reply.to_vec(),
        greeting(VERSION),
        "the server's own greeting"
    );
    let mut header = [0u8; 5];
    s.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x81, "an Error frame");
    let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    let text = String::from_utf8_lossy(&payload);
    assert!(
        text.contains(&format!("speaks protocol {}", VERSION + 1)),
        "{text}"
    );
    assert!(wait_closed(&mut s));
    fx.assert_serves();
}

// ---------------------------------------------------------------- listening

/// Starts `ftpsh-server` with `args` and returns it with the first stdout line.
fn spawn_server(args: &[&str], env_token: Option<&str>) -> (std::process::Child, String) {
    let mut cmd = Command::new(bin("ftpsh-server"));
    cmd.args(args)
        .env_remove("FTPSH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = env_token {
        cmd.env("FTPSH_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

fn stop(mut child: std::process::Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut rest);
    }
    rest
}

#[test]
fn the_listening_line_names_the_real_port() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let (child, line) = spawn_server(
        &["--root", r, "--listen", "127.0.0.1:0", "--token", TOKEN],
        None,
    );
    let port: u16 = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.strip_suffix('\n'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad listening line {line:?}"));
    assert_ne!(port, 0);
    // Something listens there, and it is an ftpsh server.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(EVENT)).unwrap();
    s.write_all(&greeting(VERSION)).unwrap();
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply.to_vec(), greeting(VERSION));
    drop(s);
    // Exactly one line on stdout.
    assert_eq!(stop(child), "");
}

#[test]
fn a_non_loopback_listen_needs_a_token_or_insecure_no_auth() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let run = server_refusal(&["--root", r, "--listen", "0.0.0.0:0"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "it must not listen: {run:?}");
    let line = run.one_error_line(run.code);
    assert!(
        line.starts_with("ftpsh-server: refusing to listen on 0.0.0.0:0"),
        "{line}"
    );
    assert!(line.contains("--insecure-no-auth"), "{line}");
    let run = server_refusal(&["--root", r, "--listen", "0.0.0.0:0", "--token", ""]);
    assert_ne!(run.code, 0, "an empty token is no token: {run:?}");
    assert_eq!(run.stdout, "", "{run:?}");

    // Which addresses are accepted with a token or --insecure-no-auth is unit-tested
    // in src/bin/ftpsh-server.rs: tests never listen beyond loopback.
}

#[test]
fn a_unix_socket_is_owner_only_and_serves_clients() {
    let fx_root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let sockdir = tempfile::tempdir().unwrap();
    let sock = sockdir.path().join("ftpsh.sock");
    let listen = format!("unix:{}", sock.display());
    let mut server = ServerBuilder::new(fx_root.path()).listen(&listen).start();
    assert_eq!(server.addr, listen);
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    finish(
        server
            .client(local.path())
            .write_stdin("echo via unix\nmkdir u\ncd u\npwd\n")
            .output()
            .unwrap(),
    )
    .ok("via unix\n/u\n");
    assert!(fx_root.path().join("u").is_dir());

    // A socket left behind by a killed server is replaced.
    server.kill();
    assert!(sock.exists(), "SIGKILL leaves the socket file");
    let server = ServerBuilder::new(fx_root.path()).listen(&listen).start();
    finish(
        server
            .client(local.path())
            .args(["-c", "echo again"])
            .output()
            .unwrap(),
    )
    .ok("again\n");
    drop(server);

    // Anything else at the path is an error, and left alone.
    let file = sockdir.path().join("plain");
    std::fs::write(&file, "keep me").unwrap();
    let run = server_refusal(&[
        "--root",
        fx_root.path().to_str().unwrap(),
        "--listen",
        &format!("unix:{}", file.display()),
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(run.one_error_line(run.code).starts_with("ftpsh-server: "));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn an_ipv6_loopback_server_serves_clients() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine cannot bind [::1]");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).listen("[::1]:0").start();
    let port: u16 = server
        .addr
        .strip_prefix("[::1]:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{}", server.addr));
    assert_ne!(port, 0);
    finish(
        server
            .client(local.path())
            .write_stdin("echo over ipv6\npwd\n")
            .output()
            .unwrap(),
    )
    .ok("over ipv6\n/\n");
}

// ---------------------------------------------------------------- the embedded default

#[test]
fn without_an_address_ftpsh_serves_root_itself_with_exec() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("here.txt"), "h").unwrap();
    std::fs::create_dir(root.path().join("dir")).unwrap();
    let r = root.path().to_str().unwrap();
    let real = root.path().canonicalize().unwrap();

    ftpsh(&["--root", r, "--norc", "-c", "ls"], local.path()).ok("dir/\nhere.txt\n");
    ftpsh(
        &[
            "--root",
            r,
            "--norc",
            "-c",
            "exec pwd; cd dir; exec pwd; pwd",
        ],
        local.path(),
    )
    .ok(&format!(
        "{}\n{}\n/dir\n",
        real.display(),
        real.join("dir").display()
    ));
    // The default root is the current directory; a script on stdin works too.
    finish(
        assert_cmd::Command::new(bin("ftpsh"))
            .arg("--norc")
            .current_dir(root.path())
            .env("NO_COLOR", "1")
            .env("HOME", local.path())
            .env_remove("FTPSH_RC")
            .env_remove("FTPSH_TOKEN")
            .timeout(Duration::from_secs(120))
            .write_stdin("ls\nexec 'echo x > made.txt'\n")
            .output()
            .unwrap(),
    )
    .ok("dir/\nhere.txt\n");
    assert_eq!(
        std::fs::read_to_string(root.path().join("made.txt")).unwrap(),
        "x\n"
    );
    // A token in the environment is not needed and does not get in the way.
    let run = finish(
        assert_cmd::Command::new(bin("ftpsh"))
            .args(["--root", r, "--norc", "-c", "echo fine"])
            .env("FTPSH_TOKEN", "unrelated")
            .env("NO_COLOR", "1")
            .env("HOME", local.path())
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap(),
    );
    run.ok("fine\n");
    // A root that does not exist is a bad argument: a one-line error, status 2.
    let missing = local.path().join("missing");
    let run = ftpsh(
        &["--root", missing.to_str().unwrap(), "--norc", "-c", "ls"],
        local.path(),
    );
    assert_eq!(run.stdout, "");
    let line = run.one_error_line(2);
    assert!(line.starts_with("ftpsh: "), "{line}");
    assert!(line.contains("missing"), "{line}");
}
