//! `ftpsh-server`: serves one directory tree to ftpsh clients.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ftpsh::net::Address;
use ftpsh::server::{Config, Server};

/// Serve a directory to ftpsh clients: verified transfers, optional remote commands.
#[derive(Parser, Debug)]
#[command(name = "ftpsh-server", version)]
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
    /// Most clients served at once; more are refused with a message.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
    /// Close a connection that sends no request for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    idle_timeout: u64,
    /// Drop a peer that stalls inside a message or an upload (or stops reading) for this
    /// many seconds; also the time allowed for the whole handshake.
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
    if token.is_none() && !args.insecure_no_auth && !is_loopback(&listen) {
        fail(
            2,
            &format!(
                "refusing to listen on {listen} without a token: anyone who can reach it could read \
                 and write {}; give --token (or FTPSH_TOKEN), or --insecure-no-auth if you mean it",
                args.root.display()
            ),
        );
    }
    let mut config = Config::new(&args.root, listen);
    config.token = token;
    config.allow_exec = args.allow_exec;
    config.max_connections = args.max_connections.max(1);
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

/// True for addresses only this machine can reach (a Unix socket counts).
fn is_loopback(addr: &Address) -> bool {
    use std::net::ToSocketAddrs;
    match addr {
        Address::Unix(_) => true,
        Address::Tcp(a) => match a.to_socket_addrs() {
            Ok(mut addrs) => addrs.all(|sa| sa.ip().is_loopback()),
            Err(_) => false,
        },
    }
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("ftpsh-server: {msg}");
    std::process::exit(code);
}
