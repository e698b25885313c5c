//! `ftpsh-server`: serves one directory tree to ftpsh clients.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ftpsh::server::{Config, Server};
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
        FTPSH_MD5        rust: the portable MD5 even where OpenSSL's libcrypto is present"
)]
struct Args {
    /// The only tree served; clients cannot leave it (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// IPv4:PORT, [IPv6]:PORT or unix:PATH; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6969")]
    listen: String,
    /// Allow clients to run commands with `exec`.
    #[arg(long)]
    allow_exec: bool,
    /// Clients must present this token (default: $FTPSH_TOKEN).
    #[arg(long, env = "FTPSH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Listen on a non-loopback address without a token (anyone who can connect gets in).
    #[arg(long)]
    insecure_no_auth: bool,
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
    /// Testing only: send a wrong MD5 after every download. Debug builds only (the
    /// tests' `cargo test` builds): a release build has no such option.
    #[cfg(debug_assertions)]
    #[arg(long, hide = true)]
    debug_corrupt_md5: bool,
}

fn main() {
    let args = Args::parse();
    let listen = match Address::parse(&args.listen) {
        Ok(a) => a,
        Err(e) => fail(2, &format!("invalid --listen address: {e}")),
    };
    let token = args.token.filter(|t| !t.is_empty());
    if let Err(msg) = check_exposure(&listen, token.is_some(), args.insecure_no_auth, &args.root) {
        fail(2, &msg);
    }
    let mut config = Config::new(&args.root, listen);
    config.token = token;
    config.allow_exec = args.allow_exec;
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
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => fail(1, &format!("{e:#}")),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", server.local_addr());
    let _ = out.flush();
    server.run();
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
/// reach, unless the operator said `--insecure-no-auth`.
fn check_exposure(
    listen: &Address,
    has_token: bool,
    insecure: bool,
    root: &std::path::Path,
) -> Result<(), String> {
    let loopback = is_loopback(listen).map_err(|e| {
        format!(
            "cannot resolve --listen address {listen}: {e}; give IPv4:PORT, \
             [IPv6]:PORT, HOST:PORT or unix:PATH"
        )
    })?;
    if has_token || insecure || loopback {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen} without a token: anyone who can reach it could read \
         and write {}; give --token (or FTPSH_TOKEN), or --insecure-no-auth if you mean it",
        root.display()
    ))
}

/// True for addresses only this machine can reach (a Unix socket counts); an
/// error when a host name does not resolve, so that a typo is reported as one
/// rather than as a missing token.
fn is_loopback(addr: &Address) -> std::io::Result<bool> {
    use std::net::ToSocketAddrs;
    match addr {
        Address::Unix(_) => Ok(true),
        Address::Tcp(a) => Ok(a.to_socket_addrs()?.all(|sa| sa.ip().is_loopback())),
    }
}

fn fail(code: i32, msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "ftpsh-server: {msg}");
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn exposure(addr: &str, token: bool, insecure: bool) -> Result<(), String> {
        check_exposure(
            &Address::parse(addr).unwrap(),
            token,
            insecure,
            Path::new("/srv"),
        )
    }

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
            let refusal = exposure(addr, false, false).unwrap_err();
            assert!(refusal.starts_with("refusing to listen on"), "{refusal}");
            assert!(refusal.contains("/srv"), "{refusal}");
            assert!(exposure(addr, true, false).is_ok(), "{addr} with a token");
            assert!(exposure(addr, false, true).is_ok(), "{addr} insecure");
        }
        for addr in ["127.0.0.1:0", "[::1]:6969", "localhost:6969", "unix:/tmp/s"] {
            assert!(exposure(addr, false, false).is_ok(), "{addr} is local");
        }
    }
}
