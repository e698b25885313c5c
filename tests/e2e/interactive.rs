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

#[test]
fn the_usage_hint_is_not_accepted_by_the_right_arrow() {
    let (server, root, local) = fixture();
    std::fs::write(root.path().join("f.txt"), b"data\n").unwrap();
    let mut sh = Start::new(&server, local.path()).spawn();
    // `get ` shows `[-c] [-r] REMOTE... [LOCAL]` dimmed; → and End, then Enter.
    sh.keys("get ");
    sh.expect("REMOTE");
    sh.keys("\x1b[C\x1b[F\r");
    sh.expect_at_line_start("ftpsh: get: ", "the error of get");
    let message = sh.expect_prompt("/");
    // (On main: `[LOCAL]: not a directory (several files need a directory ...)`.)
    assert!(
        message.starts_with("missing REMOTE"),
        "the hint ran as typed text: {message:?}"
    );
    // Typed text after the hint still works.
    sh.keys("get ");
    sh.keys("\x1b[Cf.txt\r");
    sh.expect("f.txt: 5 B in ");
    sh.expect_prompt("/");
    assert_eq!(
        std::fs::read(local.path().join("f.txt")).unwrap(),
        b"data\n"
    );
    sh.exit_with_ctrl_d();
}

/// A loopback proxy that forwards at most 4 KiB every 4 ms each way, so that a
/// transfer of a few MiB lasts long enough for progress bars to draw.
fn slow_proxy(upstream: &str) -> String {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                        std::thread::sleep(std::time::Duration::from_millis(4));
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

/// What a terminal of `width` columns shows after `bytes`, scrollback included:
/// printable text with autowrap, CR, LF, BS, and the CSI sequences that move
/// the cursor up, down, across and erase (others are ignored). The cursor
/// cannot go above the last `height` rows: the scrollback is out of reach.
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    width: usize,
    height: usize,
}

impl Screen {
    fn new(width: usize, height: usize) -> Self {
        Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            width,
            height,
        }
    }

    fn top(&self) -> usize {
        self.rows.len().saturating_sub(self.height)
    }

    fn down(&mut self) {
        self.row += 1;
        if self.row == self.rows.len() {
            self.rows.push(Vec::new());
        }
    }

    fn put(&mut self, c: char) {
        if self.col >= self.width {
            self.down();
            self.col = 0;
        }
        let line = &mut self.rows[self.row];
        if line.len() <= self.col {
            line.resize(self.col + 1, ' ');
        }
        line[self.col] = c;
        self.col += 1;
    }

    fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => self.col = 0,
                '\n' => self.down(),
                '\x08' => self.col = self.col.saturating_sub(1),
                '\x1b' => match chars.next() {
                    Some('[') => {
                        let mut params = String::new();
                        let mut last = ' ';
                        for c in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&c) {
                                last = c;
                                break;
                            }
                            params.push(c);
                        }
                        if params.starts_with('?') {
                            continue;
                        }
                        let n: usize = params.split(';').next().unwrap_or("").parse().unwrap_or(0);
                        let line = &mut self.rows[self.row];
                        match last {
                            'A' => self.row = self.row.saturating_sub(n.max(1)).max(self.top()),
                            'B' => {
                                for _ in 0..n.max(1) {
                                    self.down();
                                }
                            }
                            'C' => self.col = (self.col + n.max(1)).min(self.width - 1),
                            'D' => self.col = self.col.saturating_sub(n.max(1)),
                            'G' => self.col = n.max(1) - 1,
                            'K' => match n {
                                0 => line.truncate(self.col),
                                1 => {
                                    let end = self.col.min(line.len());
                                    line[..end].fill(' ');
                                }
                                _ => line.clear(),
                            },
                            'J' if n == 0 => {
                                line.truncate(self.col);
                                self.rows.truncate(self.row + 1);
                            }
                            _ => {}
                        }
                    }
                    // OSC and other escapes: skip to the end of the string.
                    Some(']') => {
                        for c in chars.by_ref() {
                            if c == '\x07' {
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect()
    }
}

#[test]
fn the_screen_emulator_follows_redraws() {
    let mut s = Screen::new(10, 24);
    s.feed("abc\r\x1b[2Kdef\r\nline two that wraps\r\x1b[1A\x1b[2K\x1b[1B\r\x1b[2Kx");
    assert_eq!(s.lines(), ["def", "", "x"]);
}

#[test]
fn the_batch_progress_bar_redraws_in_place_at_80_columns_and_after_a_resize() {
    let (server, root, local) = fixture();
    let tree = root.path().join("tree");
    for d in 0..6 {
        let dir = tree.join(format!("dir{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..50 {
            std::fs::write(dir.join(format!("f{f}")), random_bytes(8192, d * 100 + f)).unwrap();
        }
    }
    for n in 0..4 {
        let long = format!("{n}-{}", "a-name-long-enough-to-wrap-".repeat(5));
        std::fs::write(tree.join(long), random_bytes(100_000, n)).unwrap();
    }
    let proxy = slow_proxy(&server.addr);
    let tty_file = local.path().join("tty");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("stty cols 80 rows 24; tty > \"$0\"; exec \"$1\" \"$2\" --norc")
        .arg(&tty_file)
        .arg(bin("ftpsh"))
        .arg(&proxy)
        .current_dir(local.path())
        .env_remove("FTPSH_RC")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("HOME", local.path())
        .env("FTPSH_HISTORY", local.path().join("history"))
        .env("FTPSH_TOKEN", TOKEN);
    let options = Options::new()
        .timeout_ms(Some(60_000))
        .strip_ansi_escape_codes(false);
    let mut session = spawn_with_options(cmd, options).expect("spawn ftpsh in a pty");
    let mut seen = session.exp_string(":/> ").unwrap();
    seen.push_str(":/> ");
    let mut resized_at = 0;
    for (round, columns) in [(1, 80), (2, 60)] {
        if round == 2 {
            // Between two runs, at the idle prompt: nothing is on its way.
            resized_at = seen.len();
            let tty = std::fs::read_to_string(&tty_file).unwrap();
            let status = std::process::Command::new("stty")
                .args(["-F", tty.trim(), "cols", &columns.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        session.send(&format!("get -r tree out{round}\r")).unwrap();
        session.flush().unwrap();
        // The bar is drawn before the summary.
        let (before, matched) = session.exp_regex(r"[0-9]+/30[0-9] files").unwrap();
        seen.push_str(&before);
        seen.push_str(&matched);
        let (before, matched) = session.exp_regex(r"[0-9]+ files, [^\n]*\n").unwrap();
        seen.push_str(&before);
        seen.push_str(&matched);
        seen.push_str(&session.exp_string(":/> ").unwrap());
        seen.push_str(":/> ");
    }
    session.send_control('d').unwrap();
    session.exp_eof().unwrap();

    let mut screen = Screen::new(80, 24);
    let (at80, at60) = seen.split_at(resized_at);
    screen.feed(at80);
    screen.width = 60;
    screen.feed(at60);
    let lines = screen.lines();
    let bars: Vec<&String> = lines.iter().filter(|l| l.contains(" files")).collect();
    assert_eq!(
        bars.len(),
        2,
        "only the summary may remain, no copy of a bar:\n{}",
        lines.join("\n")
    );
    for summary in bars {
        assert!(summary.starts_with("304 files, "), "{}", lines.join("\n"));
    }
}
