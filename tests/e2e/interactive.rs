//! The interactive shell through a pseudo-terminal (rexpect): the prompt, a verb,
//! Ctrl-D, persistent history, TAB completion of verbs, aliases, remote and local
//! paths, aliases defined at the prompt, and Ctrl-C at the prompt and during a
//! running command.
//!
//! rustyline redraws the line on every key with escape codes (bracketed paste,
//! synchronized output, cursor moves); they are stripped, and matches look for
//! what only a finished command prints: a line of output after a newline, or a
//! fresh prompt (which follows a newline, while redraws follow a carriage return).
//! Every wait has a generous deadline and nothing depends on timing.

use crate::common::*;

use std::path::{Path, PathBuf};

use rexpect::process::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};

/// How long any expected output may take to appear.
const TIMEOUT_MS: u64 = 10_000;

/// Escapes `text` for use inside a regular expression.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One `ftpsh` at a pseudo-terminal.
struct Shell {
    session: PtySession,
    /// `ftpsh 127.0.0.1:PORT:`, the prompt without the directory.
    prompt_start: String,
    /// The output consumed so far ended with a newline.
    at_line_start: bool,
}

/// How to start an interactive `ftpsh`.
struct Start<'a> {
    server: &'a Server,
    local: &'a Path,
    history: PathBuf,
    /// A start-up file to run (else `--norc`).
    rc: Option<PathBuf>,
}

impl<'a> Start<'a> {
    fn new(server: &'a Server, local: &'a Path) -> Self {
        Start {
            server,
            local,
            history: local.join("history"),
            rc: None,
        }
    }

    fn start(&self) -> Shell {
        let mut cmd = std::process::Command::new(bin("ftpsh"));
        cmd.arg(&self.server.addr).current_dir(self.local);
        match &self.rc {
            Some(rc) => cmd.env("FTPSH_RC", rc),
            None => cmd.arg("--norc").env_remove("FTPSH_RC"),
        };
        cmd.env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env("HOME", self.local)
            .env("FTPSH_HISTORY", &self.history)
            .env("FTPSH_TOKEN", TOKEN);
        let options = Options::new()
            .timeout_ms(Some(TIMEOUT_MS))
            .strip_ansi_escape_codes(true);
        let session = spawn_with_options(cmd, options).expect("spawn ftpsh in a pty");
        Shell {
            session,
            prompt_start: format!("ftpsh {}:", self.server.addr),
            at_line_start: false,
        }
    }

    /// Starts ftpsh and waits for its first prompt.
    fn spawn(&self) -> Shell {
        let mut shell = self.start();
        shell.expect_prompt("/");
        shell
    }

    /// Starts ftpsh, waits for `text` before the first prompt, then the prompt.
    fn spawn_expecting(&self, text: &str) -> Shell {
        let mut shell = self.start();
        shell.expect(text);
        shell.expect_prompt("/");
        shell
    }
}

impl Shell {
    /// Waits for `pattern` at the start of a line (after a newline, not after
    /// the carriage return of a redraw); returns what came before it.
    #[track_caller]
    fn expect_at_line_start(&mut self, pattern: &str, what: &str) -> String {
        let re = if self.at_line_start {
            format!("(?:^|\n)\r*{pattern}")
        } else {
            format!("\n\r*{pattern}")
        };
        match self.session.exp_regex(&re) {
            Ok((before, matched)) => {
                self.at_line_start = matched.ends_with('\n');
                before
            }
            Err(e) => panic!("no {what}: {e}"),
        }
    }

    /// Waits for a fresh prompt in remote directory `dir`; returns what came
    /// before it.
    #[track_caller]
    fn expect_prompt(&mut self, dir: &str) -> String {
        let prompt = format!("{}{dir}> ", self.prompt_start);
        self.expect_at_line_start(&regex_escape(&prompt), &format!("prompt {prompt:?}"))
    }

    /// Waits for `line` as a whole line of output; returns what came before it.
    #[track_caller]
    fn expect_line(&mut self, line: &str) -> String {
        let pattern = format!("{}\r?\n", regex_escape(line));
        self.expect_at_line_start(&pattern, &format!("output line {line:?}"))
    }

    /// Waits for `text` anywhere.
    #[track_caller]
    fn expect(&mut self, text: &str) -> String {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.at_line_start = text.ends_with('\n');
                before
            }
            Err(e) => panic!("no {text:?}: {e}"),
        }
    }

    /// Types `keys` (no Enter).
    fn keys(&mut self, keys: &str) {
        self.session.send(keys).unwrap();
        self.session.flush().unwrap();
    }

    /// Types `line` and Enter.
    fn line(&mut self, line: &str) {
        self.keys(&format!("{line}\r"));
    }

    fn ctrl(&mut self, c: char) {
        self.session.send_control(c).unwrap();
    }

    /// Ctrl-D at an empty prompt; the shell must exit with status 0.
    #[track_caller]
    fn exit_with_ctrl_d(mut self) {
        self.ctrl('d');
        if let Err(e) = self.session.exp_eof() {
            panic!("ftpsh did not end after Ctrl-D: {e}");
        }
        let status = self.session.process().wait().unwrap();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "exit status after Ctrl-D: {status:?}"
        );
    }
}

/// A server with exec enabled over a temporary root, and a local directory.
fn fixture() -> (Server, tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    (server, root, local)
}

#[test]
fn the_prompt_appears_a_verb_runs_and_ctrl_d_exits_0() {
    let (server, _root, local) = fixture();
    let start = Start::new(&server, local.path());
    let mut sh = start.spawn();
    sh.line("echo hi");
    sh.expect_line("hi");
    sh.expect_prompt("/");

    // A failing verb reports and the shell stays.
    sh.line("frobnicate");
    sh.expect("ftpsh: frobnicate: unknown command");
    sh.expect_prompt("/");
    sh.line("mkdir docs");
    sh.expect_prompt("/");
    sh.line("cd docs");
    sh.expect_prompt("/docs");
    sh.line("pwd");
    sh.expect_line("/docs");
    sh.expect_prompt("/docs");
    sh.exit_with_ctrl_d();

    let history = std::fs::read_to_string(&start.history).expect("history file written");
    for line in ["echo hi", "frobnicate", "cd docs", "pwd"] {
        assert!(
            history.lines().any(|l| l == line),
            "{line:?} not in history:\n{history}"
        );
    }
}

#[test]
fn quit_leaves_with_status_0() {
    let (server, _root, local) = fixture();
    let mut sh = Start::new(&server, local.path()).spawn();
    sh.line("quit");
    sh.session.exp_eof().expect("ftpsh ends after quit");
    let status = sh.session.process().wait().unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn history_persists_across_sessions() {
    let (server, _root, local) = fixture();
    let start = Start::new(&server, local.path());

    let mut first = start.spawn();
    first.line("echo first-session");
    first.expect_line("first-session");
    first.expect_prompt("/");
    first.exit_with_ctrl_d();
    let history = std::fs::read_to_string(&start.history).unwrap();
    assert!(history.contains("echo first-session"), "{history}");

    // Up recalls the first session's line; Enter runs it again.
    let mut second = start.spawn();
    second.keys("\x1b[A\r");
    second.expect_line("first-session");
    second.expect_prompt("/");
    second.line("echo second-session");
    second.expect_line("second-session");
    second.expect_prompt("/");
    second.exit_with_ctrl_d();

    let history = std::fs::read_to_string(&start.history).unwrap();
    let first_at = history.find("echo first-session");
    let second_at = history.find("echo second-session");
    assert!(
        matches!((first_at, second_at), (Some(a), Some(b)) if a < b),
        "both sessions' lines, in order:\n{history}"
    );
}

#[test]
fn tab_completes_a_verb_prefix_and_an_alias() {
    let (server, _root, local) = fixture();
    let mut sh = Start::new(&server, local.path()).spawn();
    // `ech` + TAB becomes `echo ` (with the space), so the next word follows.
    sh.keys("ech\t");
    sh.keys("completed\r");
    sh.expect_line("completed");
    sh.expect_prompt("/");

    sh.line("alias greeting 'echo hello'");
    sh.expect_prompt("/");
    sh.keys("greet\t");
    sh.keys("you\r");
    sh.expect_line("hello you");
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}

#[test]
fn tab_completes_a_unique_remote_file_name() {
    let (server, root, local) = fixture();
    let data = random_bytes(10_000, 7);
    std::fs::write(root.path().join("uniquefile.bin"), &data).unwrap();
    std::fs::write(root.path().join("other.txt"), b"x").unwrap();
    std::fs::create_dir(root.path().join("docs")).unwrap();
    std::fs::write(root.path().join("docs/report.txt"), b"report\n").unwrap();

    let mut sh = Start::new(&server, local.path()).spawn();
    sh.keys("get uniq\t");
    sh.keys("\r");
    sh.expect_prompt("/");
    assert_eq!(
        md5_file(&local.path().join("uniquefile.bin")),
        md5_hex(&data)
    );

    // The completed name ends with a space, so LOCAL can follow at once.
    sh.keys("get uniq\t");
    sh.keys("copy.bin\r");
    sh.expect_prompt("/");
    assert_eq!(md5_file(&local.path().join("copy.bin")), md5_hex(&data));

    // A directory completes with `/` and no space; names inside it complete too.
    sh.keys("cd do\t");
    sh.keys("\r");
    sh.expect_prompt("/docs");
    sh.keys("md5 rep\t");
    sh.keys("\r");
    sh.expect_line(&format!("{}  report.txt", md5_hex(b"report\n")));
    sh.expect_prompt("/docs");
    sh.exit_with_ctrl_d();
}

#[test]
fn tab_completes_a_local_path() {
    let (server, root, local) = fixture();
    std::fs::write(local.path().join("localfile.txt"), b"local data\n").unwrap();
    std::fs::create_dir(local.path().join("subdir")).unwrap();
    std::fs::write(local.path().join("subdir/inner.txt"), b"inner\n").unwrap();

    let mut sh = Start::new(&server, local.path()).spawn();
    sh.keys("put loc\t");
    sh.keys("\r");
    sh.expect_prompt("/");
    assert_eq!(
        std::fs::read(root.path().join("localfile.txt")).unwrap(),
        b"local data\n"
    );

    // Into a directory, then a file in it, then the remote name after the space.
    sh.keys("put sub\t");
    sh.keys("in\t");
    sh.keys("renamed.txt\r");
    sh.expect_prompt("/");
    assert_eq!(
        std::fs::read(root.path().join("renamed.txt")).unwrap(),
        b"inner\n"
    );
    sh.exit_with_ctrl_d();
}

#[test]
fn names_with_control_characters_show_escaped_at_the_terminal() {
    let (server, root, local) = fixture();
    std::fs::write(root.path().join("evil\x1b[31mred"), b"red\n").unwrap();
    std::fs::write(root.path().join("evil.txt"), b"plain\n").unwrap();
    std::fs::write(root.path().join("bell\x07"), b"bell\n").unwrap();
    let mut sh = Start::new(&server, local.path()).spawn();
    // (The pty reader strips escape sequences: a raw name would read `evilred`.)
    sh.line("ls");
    sh.expect_line("bell\\x07");
    sh.expect_line("evil\\e[31mred");
    sh.expect_line("evil.txt");
    sh.expect_prompt("/");

    // The list of completions shows the escaped name, then the line is drawn
    // again under it; Ctrl-C drops the line.
    sh.keys("get evil\t\t");
    sh.expect("evil\\e[31mred");
    sh.expect_prompt("/");
    sh.ctrl('c');
    sh.expect_prompt("/");

    // Completion stops before the control character instead of typing it, so
    // a pattern finishes the word; the summary line names the file escaped.
    sh.keys("get bel\t");
    sh.keys("*\r");
    sh.expect("bell\\x07: 5 B in ");
    sh.expect_prompt("/");
    assert_eq!(
        std::fs::read(local.path().join("bell\x07")).unwrap(),
        b"bell\n"
    );
    sh.exit_with_ctrl_d();
}

#[test]
fn an_alias_defined_at_the_prompt_works_on_the_next_line() {
    let (server, _root, local) = fixture();
    let mut sh = Start::new(&server, local.path()).spawn();
    sh.line("alias greet 'echo hello-$1; echo bye-$1'");
    sh.expect_prompt("/");
    sh.line("greet world");
    sh.expect_line("hello-world");
    sh.expect_line("bye-world");
    sh.expect_prompt("/");
    sh.line("type greet");
    sh.expect_line("greet is an alias for 'echo hello-$1; echo bye-$1'");
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}

#[test]
fn ctrl_c_at_the_prompt_cancels_the_line_only() {
    let (server, _root, local) = fixture();
    let mut sh = Start::new(&server, local.path()).spawn();
    // In raw mode Ctrl-C is a key like any other: it arrives after the text.
    sh.keys("echo cancelled-line");
    sh.ctrl('c');
    let before = sh.expect_prompt("/");
    assert!(
        !before.contains("\ncancelled-line"),
        "the cancelled line ran: {before:?}"
    );
    sh.line("echo still-here");
    let before = sh.expect_line("still-here");
    assert!(
        !before.contains("\ncancelled-line"),
        "the cancelled line ran: {before:?}"
    );
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}

#[test]
fn ctrl_c_interrupts_a_running_command_and_returns_to_the_prompt() {
    let (server, _root, local) = fixture();
    let mut sh = Start::new(&server, local.path()).spawn();
    sh.line("exec 'echo started; sleep 30; echo finished'");
    sh.expect_line("started");
    sh.ctrl('c');
    // Well before the 30 s sleep ends (the wait gives up after 10 s).
    sh.expect("ftpsh: exec: interrupted");
    let before = sh.expect_prompt("/");
    assert!(!before.contains("finished"), "{before:?}");
    sh.line("echo alive");
    sh.expect_line("alive");
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}

#[test]
fn the_rc_file_runs_before_the_prompt_and_its_errors_do_not_stop_it() {
    let (server, _root, local) = fixture();
    let rc = local.path().join("start.rc");
    std::fs::write(&rc, "alias hi 'echo hello from rc'\nfrobnicate\n").unwrap();
    let mut start = Start::new(&server, local.path());
    start.rc = Some(rc.clone());
    let mut sh = start.spawn_expecting(&format!(
        "ftpsh: {}:2: frobnicate: unknown command",
        rc.display()
    ));
    sh.line("hi");
    sh.expect_line("hello from rc");
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}

#[test]
fn ctrl_c_stops_a_hanging_rc_file_and_the_prompt_appears() {
    let (server, root, local) = fixture();
    let rc = local.path().join("start.rc");
    std::fs::write(
        &rc,
        "exec 'echo started; sleep 300'\nmkdir after-rc\nalias hi 'echo hello'\n",
    )
    .unwrap();
    let mut start = Start::new(&server, local.path());
    start.rc = Some(rc.clone());
    let mut sh = start.start();
    sh.expect("started\r\n");
    // The terminal is not in raw mode while the rc file runs: ^C is SIGINT.
    sh.ctrl('c');
    // Well before the sleep ends (the wait gives up after 10 s).
    sh.expect(&format!("ftpsh: {}:1: exec: interrupted", rc.display()));
    sh.expect_prompt("/");
    assert!(!root.path().join("after-rc").exists(), "the rc file ran on");
    sh.line("type hi");
    sh.expect("ftpsh: type: hi: not found");
    sh.expect_prompt("/");
    sh.line("echo alive");
    sh.expect_line("alive");
    sh.expect_prompt("/");
    sh.exit_with_ctrl_d();
}
