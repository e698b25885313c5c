//! The `ftpsh` program: command line, connection, start-up file, then either the
//! prompt ([`repl`]) or a script.

mod complete;
mod repl;
pub mod ui;

use std::io::Write as _;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use clap::Parser;
use ftpsh_commands::script::{Halt, Outcome, Runner};
use ftpsh_commands::Registry;

use crate::client::{Connection, Options, SshOptions, TlsOptions};
use crate::server::{Config, Server};
use ftpsh_core::net::Address;

/// Exit statuses, as the spec fixes them.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const CONNECT: i32 = 3;
    /// Ctrl-C stopped a script: 128 + SIGINT, as shells report it.
    pub const INTERRUPTED: i32 = 130;
}

/// An interactive shell for ftpsh-server: verified transfers, remote commands, aliases.
///
/// Without ADDR, ftpsh serves --root (default: the current directory) itself on a
/// random loopback port, with exec enabled, and connects to it.
#[derive(Parser, Debug)]
#[command(
    name = "ftpsh",
    version,
    long_version = crate::long_version(),
    after_help = "Type 'help' at the prompt for the verbs."
)]
pub struct Cli {
    /// Server address: HOST[:PORT] (port 6969 by default), [IPv6]:PORT,
    /// unix:PATH, or ssh://[USER@]HOST[:PORT][/PATH] (runs ftpsh-server over ssh).
    pub addr: Option<String>,
    /// Token the server expects (default: $FTPSH_TOKEN).
    #[arg(long, env = "FTPSH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Run these commands (separated by ';' or newlines) and exit.
    #[arg(
        short = 'c',
        value_name = "COMMANDS",
        conflicts_with = "file",
        allow_hyphen_values = true
    )]
    pub commands: Option<String>,
    /// Run the commands of this file and exit; errors name SCRIPT:LINE.
    /// (-b, as sftp's batch file, is the same.)
    #[arg(short = 'f', visible_short_alias = 'b', value_name = "SCRIPT")]
    pub file: Option<PathBuf>,
    /// Quiet: no summary line after a transfer, no progress bars, no
    /// greeting. Results (ls, pwd, md5, echo, exec...), warnings and errors
    /// are printed as always.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// In a script, go on after a failing command (the exit status is still 1).
    #[arg(long)]
    pub keep_going: bool,
    /// Directory the embedded server serves (only without ADDR).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Do not run the start-up file ($FTPSH_RC, else ~/.ftpshrc).
    #[arg(long)]
    pub norc: bool,
    /// No colors (also when NO_COLOR is set).
    #[arg(long)]
    pub no_color: bool,
    /// Give up on a server that leaves a request unanswered this long, or
    /// stops in the middle of a reply (0: wait forever; exec output is never
    /// timed out).
    #[arg(
        long,
        env = "FTPSH_TIMEOUT",
        value_name = "SECS",
        default_value = "120",
        value_parser = parse_timeout
    )]
    pub timeout: Timeout,
    /// With ssh://: what runs on the other side (default: ftpsh-server, found
    /// on the remote PATH). The ssh command itself is $FTPSH_SSH (default: ssh).
    #[arg(long, value_name = "CMD")]
    pub remote_command: Option<String>,
    /// Speak TLS to a loopback address too (TLS is always used for other TCP
    /// addresses).
    #[arg(long)]
    pub tls: bool,
    /// The server's expected TLS identity (SHA256:..., as `ftpsh-server
    /// --print-fingerprint` shows it): checked before the token is sent, and
    /// recorded in the known-servers file ($FTPSH_KNOWN_SERVERS, else
    /// known_servers under ftpsh's data directory).
    #[arg(long, env = "FTPSH_FINGERPRINT", value_name = "SHA256:...")]
    pub fingerprint: Option<String>,
    /// The fingerprint came from `FTPSH_FINGERPRINT`, not the command line:
    /// an ambient setting, which an address without TLS ignores (the option
    /// there is a usage error). Set by [`Cli::from_command_line`].
    #[arg(skip)]
    pub fingerprint_from_env: bool,
}

impl Cli {
    /// The command line (and the environment), as `Cli::parse` reads them,
    /// also noting where the fingerprint came from.
    pub fn from_command_line() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.fingerprint_from_env =
            matches.value_source("fingerprint") == Some(clap::parser::ValueSource::EnvVariable);
        cli
    }
}

/// How `ssh://` addresses are reached: `$FTPSH_SSH` (split into words as a
/// shell would) or `ssh`, and `--remote-command`. In a script ssh must not
/// ask for a password: nobody is there to type it.
fn ssh_options(cli: &Cli, interactive: bool) -> Result<SshOptions, String> {
    let mut ssh = SshOptions {
        batch: !interactive,
        ..SshOptions::default()
    };
    if let Some(words) = std::env::var_os("FTPSH_SSH").filter(|v| !v.is_empty()) {
        let words = words.to_string_lossy();
        ssh.command = shell_words::split(&words).map_err(|e| format!("FTPSH_SSH: {e}"))?;
        if ssh.command.is_empty() {
            return Err("FTPSH_SSH holds no command".into());
        }
    }
    if let Some(remote) = &cli.remote_command {
        if remote.trim().is_empty() {
            return Err("--remote-command is empty".into());
        }
        ssh.remote = remote.clone();
    }
    Ok(ssh)
}

/// Why an option given cannot apply to `addr` (`None` without ADDR: the
/// embedded server, plain on loopback), if it cannot.
fn misplaced_option(cli: &Cli, addr: &Address) -> Option<String> {
    let fingerprint = cli.fingerprint.as_deref().is_some_and(|f| !f.is_empty());
    let given = cli.addr.is_some();
    let tcp = given && matches!(addr, Address::Tcp(_));
    let ssh = given && matches!(addr, Address::Ssh(_));
    let what = if !given {
        "the embedded server (no ADDR), which is plain on loopback"
    } else if ssh {
        "ssh://, which ssh encrypts and authenticates"
    } else {
        "unix:PATH, which the kernel protects"
    };
    if cli.tls && !tcp {
        return Some(format!(
            "--tls applies only to a TCP address, not to {what}"
        ));
    }
    if fingerprint && !tcp && !cli.fingerprint_from_env {
        return Some(format!(
            "--fingerprint applies only to a TCP address, not to {what}: \
             there is no TLS identity to check"
        ));
    }
    if cli.remote_command.is_some() && !ssh {
        return Some("--remote-command applies only to an ssh:// address".into());
    }
    None
}

/// `--timeout`: how long to wait for the server; `None` (written 0) waits
/// forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

/// `--timeout SECS`: seconds, fractions allowed; 0 means no deadline.
fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{text}' is not a number of seconds"));
    }
    Ok(Timeout(
        (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e9))),
    ))
}

/// Set while a command runs: Ctrl-C then interrupts it instead of ending ftpsh.
static BUSY: AtomicBool = AtomicBool::new(false);

/// The run Ctrl-C is for: its interrupt flag, and whether it is a script. A
/// process may install one Ctrl-C handler (the `ctrlc` crate refuses a
/// second), so the first [`run`] installs it for good and every run, the
/// second in a process too, puts itself here while it lasts.
static CTRL_C: Mutex<Option<(Arc<AtomicBool>, bool)>> = Mutex::new(None);

/// Sends Ctrl-C to this run (`flag`, and `script` for what an idle Ctrl-C
/// does) until the returned guard is dropped.
fn route_ctrl_c(flag: Arc<AtomicBool>, script: bool) -> CtrlCRoute {
    static INSTALL: Once = Once::new();
    *ctrl_c_target() = Some((flag, script));
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(on_ctrl_c);
    });
    CtrlCRoute
}

fn ctrl_c_target() -> std::sync::MutexGuard<'static, Option<(Arc<AtomicBool>, bool)>> {
    CTRL_C.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handler (on `ctrlc`'s own thread, so it may lock): a running command
/// is interrupted; a script between commands ends with 130; at the prompt
/// rustyline has the key; with no run under way the process ends as it would
/// without a handler.
fn on_ctrl_c() {
    let target = ctrl_c_target().clone();
    match target {
        Some((flag, _)) if BUSY.load(Ordering::SeqCst) => flag.store(true, Ordering::SeqCst),
        Some((_, false)) => {}
        _ => std::process::exit(exit::INTERRUPTED),
    }
}

/// While it lives, Ctrl-C goes to one run.
struct CtrlCRoute;

impl Drop for CtrlCRoute {
    fn drop(&mut self) {
        *ctrl_c_target() = None;
    }
}

/// Runs ftpsh with the built-in verbs and returns its exit status.
pub fn main(cli: Cli) -> i32 {
    run(cli, Registry::with_builtins())
}

/// Runs ftpsh with the verbs of `registry` (built-ins plus any a program added;
/// see `examples/custom_verb.rs`) and returns its exit status.
pub fn run(cli: Cli, mut registry: Registry) -> i32 {
    let script = cli.commands.is_some() || cli.file.is_some() || !std::io::stdin().is_terminal();
    let interactive = !script;
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && interactive;
    if !color {
        colored::control::set_override(false);
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    let _ctrl_c = route_ctrl_c(Arc::clone(&interrupt), script);

    let (addr, token) = match &cli.addr {
        Some(a) => {
            if cli.root.is_some() {
                let _ = writeln!(
                    std::io::stderr(),
                    "ftpsh: --root applies only to the embedded server (leave out ADDR)"
                );
                return exit::USAGE;
            }
            match Address::parse(a) {
                // ssh authenticated us already: a token would only go where
                // it is not needed.
                Ok(addr @ Address::Ssh(_)) => (addr, String::new()),
                Ok(addr) => (addr, cli.token.clone().unwrap_or_default()),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "ftpsh: invalid address: {e}");
                    return exit::USAGE;
                }
            }
        }
        None => match start_embedded(cli.root.clone().unwrap_or_else(|| PathBuf::from("."))) {
            Ok(pair) => pair,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "ftpsh: cannot start the embedded server: {}",
                    ftpsh_core::errors::without_os_errors(&format!("{e:#}"))
                );
                // A --root that is not a directory is a bad argument, not a
                // failure to connect.
                let bad_root = cli.root.as_ref().is_some_and(|r| !r.is_dir());
                return if bad_root { exit::USAGE } else { exit::CONNECT };
            }
        },
    };

    // An option for another kind of address would be silently ignored: a
    // fingerprint the user wants checked would not be, for one.
    if let Some(msg) = misplaced_option(&cli, &addr) {
        let _ = writeln!(std::io::stderr(), "ftpsh: {msg}");
        return exit::USAGE;
    }
    let ssh = match ssh_options(&cli, interactive) {
        Ok(ssh) => ssh,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ftpsh: {}",
                ftpsh_core::errors::without_os_errors(&e.to_string())
            );
            return exit::USAGE;
        }
    };
    // The embedded server (no ADDR) is plain, on loopback.
    // FTPSH_FINGERPRINT set for the user's TLS servers means nothing to an
    // address without TLS (`misplaced_option` refuses the option itself).
    let tcp = cli.addr.is_some() && matches!(addr, Address::Tcp(_));
    let fingerprint = cli.fingerprint.clone().filter(|f| !f.is_empty() && tcp);
    let tls = TlsOptions {
        // A fingerprint to check means TLS, on loopback too: the token must
        // not go in clear to a server whose identity was never checked.
        force: (cli.tls || fingerprint.is_some()) && cli.addr.is_some(),
        fingerprint,
        ask: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    };
    let options = Options {
        reply_timeout: cli.timeout.0,
        ssh,
        tls,
    };
    let no_token = token.is_empty();
    let mut conn = match Connection::connect_with(addr, token, Arc::clone(&interrupt), options) {
        Ok(c) => c,
        Err(e) => {
            let mut msg = ftpsh_core::errors::without_os_errors(&e.to_string());
            // The server cannot know where the token was to come from.
            if msg.ends_with("authentication failed: no token given") && no_token {
                msg.push_str(" (give the server's token in FTPSH_TOKEN, or with --token)");
            } else if msg.ends_with("authentication failed: wrong token") {
                msg.push_str(" (check the token in FTPSH_TOKEN or --token)");
            }
            let _ = writeln!(std::io::stderr(), "ftpsh: {msg}");
            return exit::CONNECT;
        }
    };
    let mut ui = ui::TermUi::new(interactive, color, cli.quiet, Arc::clone(&interrupt));

    if !cli.norc {
        match run_rc(&mut registry, &mut conn, &mut ui).halt {
            Some(Halt::OutputClosed) => return exit::OK,
            Some(Halt::Interrupted) if !interactive => return exit::INTERRUPTED,
            _ => {}
        }
    }

    let outcome = if interactive {
        repl::run(registry, conn, ui, cli.keep_going)
    } else {
        // Errors from a script file name FILE:LINE, as `source` does.
        let name = cli
            .file
            .as_ref()
            .filter(|_| cli.commands.is_none())
            .map(|f| f.to_string_lossy().into_owned());
        let lines: ScriptLines = match (&cli.commands, &cli.file) {
            (Some(c), _) => Box::new(
                c.lines()
                    .map(|l| Ok(l.to_string()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            (None, Some(f)) => match ftpsh_commands::verbs::read_script(&f.to_string_lossy()) {
                Ok(lines) => Box::new(lines.into_iter().map(Ok)),
                Err(e) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "ftpsh: {}",
                        ftpsh_core::errors::without_os_errors(&format!("{e:#}"))
                    );
                    return exit::USAGE;
                }
            },
            (None, None) => Box::new(stdin_lines()),
        };
        let mut runner = Runner {
            verbs: &registry.verbs,
            aliases: &mut registry.aliases,
            remote: &mut conn,
            ui: &mut ui,
            keep_going: cli.keep_going,
            depth: 0,
        };
        run_lines(&mut runner, lines, name.as_deref())
    };
    if interactive {
        exit::OK
    } else if outcome.halt == Some(Halt::Interrupted) {
        exit::INTERRUPTED
    } else if outcome.failed {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Lines of a script; an `Err` is a line that could not be read.
type ScriptLines = Box<dyn Iterator<Item = Result<String, String>>>;

/// The lines of stdin. A line that is not UTF-8 is an error for that line (it
/// must not end the script silently); a read error is reported and ends the input.
fn stdin_lines() -> impl Iterator<Item = Result<String, String>> {
    let mut lines = std::io::stdin().lock().split(b'\n');
    let (mut n, mut done) = (0usize, false);
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        n += 1;
        Some(match lines.next()? {
            Ok(mut line) => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                String::from_utf8(line).map_err(|_| format!("stdin line {n}: not valid UTF-8"))
            }
            Err(e) => {
                done = true;
                Err(format!("cannot read stdin: {e}"))
            }
        })
    })
}

/// Script mode: the runner's rules, with Ctrl-C interrupting the running command
/// and then the script. Between lines Ctrl-C ends ftpsh at once (status 130).
/// `name`, the script file's, labels error reports with `NAME:LINE`.
fn run_lines(runner: &mut Runner, lines: ScriptLines, name: Option<&str>) -> Outcome {
    let mut outcome = Outcome::default();
    let file = name.map(ftpsh_core::display::escape);
    for (n, line) in lines.enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(msg) => {
                runner.ui.report_error("", &msg);
                outcome.failed = true;
                if runner.keep_going {
                    continue;
                }
                break;
            }
        };
        BUSY.store(true, Ordering::SeqCst);
        let r = runner.run_script_line(&line, file.as_deref(), n + 1);
        BUSY.store(false, Ordering::SeqCst);
        outcome.failed |= r.failed;
        outcome.halt = r.halt;
        if r.quit || r.halt.is_some() || (r.failed && !runner.keep_going) {
            break;
        }
    }
    outcome
}

pub(crate) fn set_busy(busy: bool) {
    BUSY.store(busy, Ordering::SeqCst);
}

/// Starts a server inside this process on a random loopback port, with a random
/// token and exec enabled, serving `root`.
fn start_embedded(root: PathBuf) -> anyhow::Result<(Address, String)> {
    let token = random_token()?;
    let mut config = Config::new(&root, Address::Tcp("127.0.0.1:0".into()));
    config.token = Some(token.clone());
    config.allow_exec = true;
    config.log = false;
    let server = Server::bind(config)?;
    let addr = Address::Tcp(server.local_addr());
    std::thread::Builder::new()
        .name("ftpsh-embedded".into())
        .spawn(move || server.run())?;
    Ok((addr, token))
}

/// 128 random bits, hex.
fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The start-up file: `$FTPSH_RC`, else `~/.ftpshrc`. Every line runs; errors are
/// reported with the file and line and do not stop the shell. Ctrl-C stops the
/// file as it stops a script (a command in it may hang before any prompt exists).
fn run_rc(registry: &mut Registry, conn: &mut Connection, ui: &mut ui::TermUi) -> Outcome {
    // A start-up file named on purpose must exist; the default one may not.
    let (path, named) = match std::env::var_os("FTPSH_RC") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => match std::env::var_os("HOME") {
            Some(home) => (PathBuf::from(home).join(".ftpshrc"), false),
            None => return Outcome::default(),
        },
    };
    if !named && !path.exists() {
        return Outcome::default();
    }
    let name = path.display().to_string();
    let lines = match ftpsh_commands::verbs::read_script(&name) {
        Ok(l) => l,
        Err(e) => {
            use ftpsh_commands::Ui;
            ui.report_error("", &format!("{e:#}"));
            return Outcome::default();
        }
    };
    let mut runner = Runner {
        verbs: &registry.verbs,
        aliases: &mut registry.aliases,
        remote: conn,
        ui,
        keep_going: true,
        depth: 1,
    };
    BUSY.store(true, Ordering::SeqCst);
    let outcome = runner.run_script(lines, Some(&name));
    BUSY.store(false, Ordering::SeqCst);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A real SIGINT, as the terminal sends it, to this test process.
    fn sigint_to_self() {
        let status = std::process::Command::new("sh")
            .args(["-c", "kill -INT $PPID"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_second_run_in_one_process_still_gets_its_ctrl_c() {
        let first = Arc::new(AtomicBool::new(false));
        let second = Arc::new(AtomicBool::new(false));
        // The first run installs the process's one handler, then ends.
        drop(route_ctrl_c(Arc::clone(&first), false));
        let _route = route_ctrl_c(Arc::clone(&second), false);
        // A command of the second run is under way.
        BUSY.store(true, Ordering::SeqCst);
        sigint_to_self();
        let start = Instant::now();
        while !second.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        BUSY.store(false, Ordering::SeqCst);
        assert!(
            second.load(Ordering::SeqCst),
            "the second run's command was not interrupted"
        );
        assert!(
            !first.load(Ordering::SeqCst),
            "Ctrl-C went to a finished run"
        );
    }
}
