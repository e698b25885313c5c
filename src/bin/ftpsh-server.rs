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
#[command(name = "ftpsh-server", version, long_version = ftpsh::long_version())]
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
    /// Close a connection that sends no request for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    idle_timeout: u64,
    /// Drop a peer that stalls inside an upload (or stops reading) for this many seconds, or
    /// takes longer than that to send a message it began; also the time allowed for the
    /// whole handshake.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    stall_timeout: u64,
    /// Kill `exec` commands that run longer than this many seconds (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    exec_timeout: u64,
    /// Kill `exec` commands whose output (stdout and stderr together) passes this
    /// many bytes; the output is cut there (0: no limit).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    exec_max_output: u64,
    /// Do not log connections and errors to stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Testing only: send a wrong MD5 after every download.
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
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    config.stall_timeout = Duration::from_secs(args.stall_timeout.max(1));
    config.exec_timeout = (args.exec_timeout > 0).then(|| Duration::from_secs(args.exec_timeout));
    config.exec_max_output = (args.exec_max_output > 0).then_some(args.exec_max_output);
    config.log = !args.quiet;
    config.corrupt_digests = args.debug_corrupt_md5;
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => fail(1, &format!("{e:#}")),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", server.local_addr());
    let _ = out.flush();
    server.run();
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
        Address::Ssh(_) => Ok(false),
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
