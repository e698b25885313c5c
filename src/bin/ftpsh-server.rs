//! `ftpsh-server`: serves one directory tree to ftpsh clients.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ftpsh::server::{Config, Server, MIN_TOKEN_LEN};
use ftpsh_core::net::Address;

/// Serve a directory to ftpsh clients: verified transfers, optional remote commands.
#[derive(Parser, Debug)]
#[command(
    name = "ftpsh-server",
    version,
    long_version = ftpsh::long_version(),
    after_help = "Environment:\n  \
        FTPSH_TOKEN      the token, when --token is not given\n  \
        FTPSH_DIRECT_IO  0: write uploads through the page cache (by default an upload of\n                   \
        8 MiB or more to ext4, xfs, btrfs or f2fs is written with direct I/O)\n  \
        FTPSH_MD5        rust: the portable MD5; openssl: OpenSSL's libcrypto where present\n                   \
        (by default ftpsh's own on x86-64, OpenSSL's elsewhere if present)"
)]
struct Args {
    /// The only tree served; clients cannot leave it (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// IPv4:PORT, [IPv6]:PORT or unix:PATH; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6969")]
    listen: String,
    /// Allow clients to run commands with `exec`. Not jailed: commands run as this
    /// server's user, with all its access. Needs a token, except on a unix:PATH
    /// socket that admits no other user.
    #[arg(long)]
    allow_exec: bool,
    /// Clients must present this token. Prefer $FTPSH_TOKEN or --token-file: every
    /// local user can read a command line (ps, /proc/PID/cmdline).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Read the token from FILE (its first line); the file should not be
    /// readable by other users.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// On a unix:PATH socket, also admit this user id (repeatable). Only the
    /// server's own user is admitted otherwise; with other users the socket file
    /// is made connectable by everyone and each peer's uid is checked instead.
    #[arg(long, value_name = "UID")]
    unix_allow_uid: Vec<u32>,
    /// Listen on a non-loopback address without a token (anyone who can connect gets
    /// in); also allows --no-tls there.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Speak TLS on a loopback address too (TLS is on by default on every other TCP
    /// address; never on unix:PATH).
    #[arg(long, conflicts_with = "no_tls")]
    tls: bool,
    /// Plaintext on a non-loopback address: the token and every byte travel in the
    /// clear. Refused unless --insecure-no-auth is also given.
    #[arg(long)]
    no_tls: bool,
    /// Where the server's TLS identity (key.pem, cert.pem) is kept, created on first
    /// start (default: ftpsh-server under the XDG data directory,
    /// ~/.local/share/ftpsh-server).
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// A CA-issued certificate (PEM, chain allowed) instead of the self-signed identity.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "identity"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the identity's fingerprint (SHA256:...) and exit, creating the identity
    /// if there is none yet.
    #[arg(long)]
    print_fingerprint: bool,
    /// Most authenticated clients served at once; more are told the server is busy.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
    /// Most connections still in their handshake (not yet authenticated) at once; a new
    /// connection beyond it closes the oldest of them, so silent peers cannot crowd out clients.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_handshakes: usize,
    /// Close a connection that sends no request for this long. Durations are seconds
    /// (`30`, `1.5`) or carry a unit (`250ms`, `2s`).
    #[arg(long, value_name = "DURATION", default_value = "600", value_parser = duration)]
    idle_timeout: Duration,
    /// Drop a peer that stalls inside an upload (or stops reading) for this long, or
    /// takes longer than that to send a message it began; also the time allowed for the
    /// whole handshake.
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = duration)]
    stall_timeout: Duration,
    /// Kill `exec` commands that run longer than this (0: no limit).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration)]
    exec_timeout: Duration,
    /// Kill `exec` commands whose output (stdout and stderr together) passes this
    /// many bytes; the output is cut there (0: no limit).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    exec_max_output: u64,
    /// Do not log connections and errors to stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Serve one session on stdin and stdout, then exit: what `ftpsh
    /// ssh://HOST` runs on the remote side through ssh. No token (ssh
    /// authenticated the user), no TLS (ssh encrypts), exec enabled, no listening
    /// socket; stderr gets only errors.
    #[arg(long, conflicts_with_all = ["listen", "token", "token_file", "unix_allow_uid", "insecure_no_auth", "tls", "tls_cert"])]
    stdio: bool,
    /// With --stdio: no `exec` (it is also off when sshd runs ftpsh-server as a
    /// forced command, `command="..."` in authorized_keys).
    #[arg(long, requires = "stdio")]
    no_exec: bool,
    /// Testing only: send a wrong MD5 after every download. Debug builds only (the
    /// tests' `cargo test` builds): a release build has no such option.
    #[cfg(debug_assertions)]
    #[arg(long, hide = true)]
    debug_corrupt_md5: bool,
    /// Remember file digests in FILE (outside the root) across restarts, so that
    /// the first download of an unchanged file after a restart needs no hashing
    /// on the server either. Without it digests are remembered in memory only,
    /// except with --stdio (one process per ssh session), which keeps them in
    /// ~/.cache/ftpsh-server/digests unless --no-digest-cache
    #[arg(long, value_name = "FILE")]
    digest_cache: Option<PathBuf>,
    /// With --stdio: remember digests for this session only, not in
    /// ~/.cache/ftpsh-server/digests
    #[arg(long, requires = "stdio", conflicts_with = "digest_cache")]
    no_digest_cache: bool,
}

fn main() {
    // First, before any thread exists, so that every thread inherits the
    // mask and only the signal thread below receives SIGINT, SIGTERM, SIGHUP.
    let signals = ftpsh_core::sys::block_termination_signals();
    // Connections and walks hold descriptors: use all the system allows.
    let _ = ftpsh_core::sys::raise_descriptor_limit();
    // Transfer buffers (256 KiB and up) go back to the system when a
    // session frees them, instead of staying in the allocator's arenas.
    ftpsh_core::sys::return_large_blocks(ftpsh_core::protocol::DATA_CHUNK);
    let args = Args::parse();
    if args.print_fingerprint {
        match load_identity(&args) {
            Ok(id) => {
                println!("{}", id.fingerprint());
                std::process::exit(0);
            }
            Err(e) => fail(1, &e),
        }
    }
    if args.stdio {
        serve_stdio(&args);
    }
    let listen = match Address::parse(&args.listen) {
        Ok(a) => a,
        Err(e) => fail(2, &format!("invalid --listen address: {e}")),
    };
    if !args.unix_allow_uid.is_empty() && !matches!(listen, Address::Unix(_)) {
        fail(2, "--unix-allow-uid applies only to --listen unix:PATH");
    }
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => {
            if !t.is_empty() {
                warn(
                    "--token on the command line can be read by every local user (ps, \
                     /proc/PID/cmdline); pass it in FTPSH_TOKEN or with --token-file FILE",
                );
            }
            Some(t.clone())
        }
        (None, Some(file)) => match read_token_file(file) {
            Ok(t) => Some(t),
            Err(e) => fail(2, &e),
        },
        (None, None) => std::env::var("FTPSH_TOKEN").ok(),
    };
    let token = token.filter(|t| !t.is_empty());
    if let Err(msg) = check_exposure(&listen, token.as_deref(), args.insecure_no_auth, &args.root) {
        fail(2, &msg);
    }
    let tls = match wants_tls(&listen, &args) {
        Ok(t) => t,
        Err(msg) => fail(2, &msg),
    };
    let identity = if tls {
        match load_identity(&args) {
            Ok(id) => Some(std::sync::Arc::new(id)),
            Err(e) => fail(1, &e),
        }
    } else {
        None
    };
    let mut config = Config::new(&args.root, listen);
    config.tls = identity.clone();
    config.token = token;
    config.allow_exec = args.allow_exec;
    config.unix_allow_uids = args.unix_allow_uid;
    config.digest_cache = args.digest_cache.clone();
    config.max_connections = args.max_connections.max(1);
    config.max_handshakes = args.max_handshakes.max(1);
    config.idle_timeout = at_least_a_second_if_zero(args.idle_timeout);
    config.stall_timeout = at_least_a_second_if_zero(args.stall_timeout);
    config.exec_timeout = (!args.exec_timeout.is_zero()).then_some(args.exec_timeout);
    config.exec_max_output = (args.exec_max_output > 0).then_some(args.exec_max_output);
    config.log = !args.quiet;
    #[cfg(debug_assertions)]
    {
        config.corrupt_digests = args.debug_corrupt_md5;
    }
    if let Err(msg) = config.check() {
        fail(2, &msg);
    }
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => fail(1, &format!("{e:#}")),
    };
    if signals.is_ok() {
        // The socket file goes with the server. (SIGKILL leaves it: the next
        // server finds nobody listening there and replaces it.)
        let socket = server.socket_file();
        let _ = std::thread::Builder::new()
            .name("ftpsh-signals".into())
            .spawn(move || {
                let sig = ftpsh_core::sys::wait_termination_signal();
                if let Some(socket) = socket {
                    socket.remove();
                }
                ftpsh_core::sys::die_by_signal(sig);
            });
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", server.local_addr());
    if let Some(id) = &identity {
        let _ = writeln!(out, "fingerprint {}", id.fingerprint());
    }
    let _ = out.flush();
    server.run();
}

/// Whether the listener speaks TLS: by default on every TCP address that is
/// not loopback, with `--tls` on loopback too, never on a Unix socket.
fn wants_tls(listen: &Address, args: &Args) -> Result<bool, String> {
    let tcp = matches!(listen, Address::Tcp(_));
    if !tcp {
        if args.tls {
            return Err(format!("--tls applies to TCP addresses, not {listen}"));
        }
        return Ok(false);
    }
    let loopback = is_loopback(listen).map_err(|e| format!("cannot resolve {listen}: {e}"))?;
    if args.no_tls && !loopback && !args.insecure_no_auth {
        return Err(format!(
            "refusing --no-tls on {listen}: the token and every file would cross the network \
             in the clear; drop --no-tls, or add --insecure-no-auth if you mean it"
        ));
    }
    Ok(if args.no_tls {
        false
    } else {
        args.tls || !loopback
    })
}

/// The server's identity: `--tls-cert`/`--tls-key`, else the one kept in
/// `--identity DIR` (default: `ftpsh-server` under the XDG data directory),
/// created there on first use.
fn load_identity(args: &Args) -> Result<ftpsh_core::tls::Identity, String> {
    use ftpsh_core::tls::Identity;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return Identity::from_pem_files(cert, key).map_err(|e| {
            format!(
                "cannot use --tls-cert {} --tls-key {}: {e}",
                cert.display(),
                key.display()
            )
        });
    }
    let dir = match &args.identity {
        Some(d) => d.clone(),
        None => directories::ProjectDirs::from("", "", "ftpsh-server")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or("no home directory for the server's identity: give --identity DIR")?,
    };
    Identity::load_or_create(&dir).map_err(|e| {
        format!(
            "cannot load or create the identity in {}: {e}",
            dir.display()
        )
    })
}

/// Where `--stdio` remembers digests unless told otherwise:
/// `ftpsh-server/digests` under the XDG cache directory (`~/.cache`). The
/// server makes the directory (owner-only) if missing, through the jail when
/// it lies under the served root (`server::Config::digest_cache_best_effort`).
/// `None` when there is no home directory: the session then keeps digests in
/// memory.
fn default_digest_cache() -> Option<PathBuf> {
    let dir = directories::ProjectDirs::from("", "", "ftpsh-server")?
        .cache_dir()
        .to_path_buf();
    Some(dir.join("digests"))
}

/// `--stdio`: one session over stdin and stdout (see `server::serve_stdio`).
/// The session's routine log lines would reach the user's terminal through
/// ssh, in the middle of their prompt: only failures to start are printed.
fn serve_stdio(args: &Args) -> ! {
    let mut config = Config::new(&args.root, Address::Tcp("stdio".into()));
    config.idle_timeout = at_least_a_second_if_zero(args.idle_timeout);
    config.stall_timeout = at_least_a_second_if_zero(args.stall_timeout);
    config.exec_timeout = (!args.exec_timeout.is_zero()).then_some(args.exec_timeout);
    config.exec_max_output = (args.exec_max_output > 0).then_some(args.exec_max_output);
    config.log = false;
    // Every ssh session is a new process: a digest outlives it only in a
    // file, by default in the user's cache directory.
    config.digest_cache = args.digest_cache.clone();
    if config.digest_cache.is_none() && !args.no_digest_cache {
        config.digest_cache = default_digest_cache();
        config.digest_cache_best_effort = true;
    }
    match ftpsh::server::serve_stdio(config, args.no_exec) {
        Ok(()) => std::process::exit(0),
        Err(e) => fail(1, &format!("{e:#}")),
    }
}

/// The first line of a token file. A file other users can read is used, with
/// a warning.
fn read_token_file(file: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read --token-file {}: {e}", file.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("--token-file {} holds no token", file.display()));
    }
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            warn(&format!(
                "--token-file {} is readable by every user (mode {mode:03o}); \
                 chmod 600 it",
                file.display()
            ));
        }
    }
    Ok(token.to_string())
}

/// A duration on the command line: seconds (`30`, `1.5`), or a number with the
/// unit `s` or `ms` (`2s`, `250ms`), so that tests need not wait whole seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1.0)
    };
    let invalid = || format!("{text:?} is not a duration: give seconds (30, 1.5) or 250ms, 2s");
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| invalid())
}

/// An idle or stall timeout of 0 would end every connection at once: it
/// stands for one second, as it always has.
fn at_least_a_second_if_zero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(1)
    } else {
        d
    }
}

/// Refuses to serve `root` without a token on an address other machines can
/// reach, unless the operator said `--insecure-no-auth`, and with a token too
/// short to withstand guessing there.
fn check_exposure(
    listen: &Address,
    token: Option<&str>,
    insecure: bool,
    root: &std::path::Path,
) -> Result<(), String> {
    let loopback = is_loopback(listen).map_err(|e| {
        format!(
            "cannot resolve --listen address {listen}: {e}; give IPv4:PORT, \
             [IPv6]:PORT, HOST:PORT or unix:PATH"
        )
    })?;
    if loopback {
        return Ok(());
    }
    match token {
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => Err(format!(
            "refusing to listen on {listen} with a token of {} characters: off loopback a \
             token needs at least {MIN_TOKEN_LEN}; make one with `openssl rand -hex 16`",
            t.chars().count()
        )),
        Some(_) => Ok(()),
        None if insecure => Ok(()),
        None => Err(format!(
            "refusing to listen on {listen} without a token: anyone who can reach it could \
             read and write {}; give FTPSH_TOKEN (or --token-file), or --insecure-no-auth if \
             you mean it",
            root.display()
        )),
    }
}

/// True for addresses only this machine can reach (a Unix socket counts); an
/// error when a host name does not resolve, so that a typo is reported as one
/// rather than as a missing token.
fn is_loopback(addr: &Address) -> std::io::Result<bool> {
    use std::net::ToSocketAddrs;
    match addr {
        Address::Unix(_) => Ok(true),
        Address::Ssh(_) => Ok(false),
        Address::Tcp(a) => Ok(a.to_socket_addrs()?.all(|sa| sa.ip().is_loopback())),
    }
}

/// Warnings and fatal errors read as the client's do: `no such file or
/// directory`, without `(os error N)`.
fn warn(msg: &str) {
    let msg = ftpsh_core::errors::without_os_errors(msg);
    let _ = writeln!(std::io::stderr(), "ftpsh-server: warning: {msg}");
}

fn fail(code: i32, msg: &str) -> ! {
    let msg = ftpsh_core::errors::without_os_errors(msg);
    let _ = writeln!(std::io::stderr(), "ftpsh-server: {msg}");
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn exposure(addr: &str, token: Option<&str>, insecure: bool) -> Result<(), String> {
        check_exposure(
            &Address::parse(addr).unwrap(),
            token,
            insecure,
            Path::new("/srv"),
        )
    }

    const GOOD: Option<&str> = Some("0123456789abcdef");
    #[test]
    fn durations_are_seconds_unless_they_say_milliseconds() {
        let ms = Duration::from_millis;
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1.5"), Ok(ms(1500)));
        assert_eq!(duration("2s"), Ok(ms(2000)));
        assert_eq!(duration("250ms"), Ok(ms(250)));
        assert_eq!(duration("0.5s"), Ok(ms(500)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "", "s", "ms", "-1", "1m", "1 s", "1e3", "fast", "1..2", "NaN",
        ] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_names_the_environment_the_server_reads_and_no_test_hook() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        for var in ["FTPSH_TOKEN", "FTPSH_DIRECT_IO", "FTPSH_MD5"] {
            assert!(help.contains(var), "{var} in:\n{help}");
        }
        assert!(!help.contains("corrupt"), "{help}");
    }

    // Pure policy: nothing here binds a socket.
    #[test]
    fn every_address_others_can_reach_needs_a_token_or_insecure_no_auth() {
        for addr in ["0.0.0.0:6969", "[::]:6969", "192.0.2.7:6969"] {
            let refusal = exposure(addr, None, false).unwrap_err();
            assert!(refusal.starts_with("refusing to listen on"), "{refusal}");
            assert!(refusal.contains("/srv"), "{refusal}");
            assert!(exposure(addr, GOOD, false).is_ok(), "{addr} with a token");
            assert!(exposure(addr, None, true).is_ok(), "{addr} insecure");
        }
        for addr in ["127.0.0.1:0", "[::1]:6969", "localhost:6969", "unix:/tmp/s"] {
            assert!(exposure(addr, None, false).is_ok(), "{addr} is local");
        }
    }

    #[test]
    fn a_short_token_is_refused_off_loopback_only() {
        for addr in ["0.0.0.0:6969", "[::]:6969"] {
            for insecure in [false, true] {
                let refusal = exposure(addr, Some("0123456789abcde"), insecure).unwrap_err();
                assert!(refusal.contains("at least 16"), "{refusal}");
            }
        }
        for addr in ["127.0.0.1:0", "[::1]:6969", "unix:/tmp/s"] {
            assert!(
                exposure(addr, Some("short"), false).is_ok(),
                "{addr} is local"
            );
        }
    }

    // Pure policy: nothing here binds a socket.
    #[test]
    fn tls_is_on_off_loopback_and_no_tls_there_needs_insecure_no_auth() {
        let tls = |addr: &str, flags: &[&str]| {
            let argv = std::iter::once("ftpsh-server").chain(flags.iter().copied());
            wants_tls(
                &Address::parse(addr).unwrap(),
                &Args::try_parse_from(argv).unwrap(),
            )
        };
        for addr in ["0.0.0.0:6969", "[::]:6969", "192.0.2.7:6969"] {
            assert_eq!(tls(addr, &[]), Ok(true), "{addr}");
            let refusal = tls(addr, &["--no-tls"]).unwrap_err();
            assert!(refusal.contains("--insecure-no-auth"), "{refusal}");
            assert_eq!(tls(addr, &["--no-tls", "--insecure-no-auth"]), Ok(false));
        }
        for addr in ["127.0.0.1:0", "[::1]:6969", "localhost:6969"] {
            assert_eq!(tls(addr, &[]), Ok(false), "{addr}");
            assert_eq!(tls(addr, &["--tls"]), Ok(true), "{addr}");
            assert_eq!(tls(addr, &["--no-tls"]), Ok(false), "{addr}");
        }
        assert_eq!(tls("unix:/tmp/s", &[]), Ok(false));
        assert!(tls("unix:/tmp/s", &["--tls"]).is_err());
        let both = Args::try_parse_from(["ftpsh-server", "--tls", "--no-tls"]);
        assert!(both.is_err());
        // ssh protects --stdio.
        assert!(Args::try_parse_from(["ftpsh-server", "--stdio", "--tls"]).is_err());
    }
}
