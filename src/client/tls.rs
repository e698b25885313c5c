//! The client's side of TLS: the server's identity is verified (CA, else the
//! known-servers file, `--fingerprint`, or the user at a terminal) before
//! anything of ours, the token above all, is sent.

use std::io::{self, BufRead as _, Write as _};
use std::sync::OnceLock;

use ftpsh_core::net::{Address, Stream};
use ftpsh_core::tls::known::host_port;
use ftpsh_core::tls::{
    self as core_tls, ClientTrust, ConnectError as TlsError, KnownServers, Trust,
};

use super::{describe_connect, ConnectError, TlsOptions, CONNECT_TIMEOUT};

/// The system's trusted CAs (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured),
/// loaded once.
fn system_trust() -> ClientTrust {
    static SYSTEM: OnceLock<ClientTrust> = OnceLock::new();
    SYSTEM.get_or_init(ClientTrust::system).clone()
}

/// Connects to `host_and_port` (as typed, `HOST:PORT`) over TLS: the
/// stream and the fingerprint verified. `reconnect_pin`: the identity a
/// reconnection expects (the one verified the first time).
pub(super) fn open(
    addr: &Address,
    host_and_port: &str,
    options: &TlsOptions,
    reconnect_pin: Option<&str>,
) -> Result<(Stream, String), ConnectError> {
    let unreachable = |reason: String| ConnectError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let (host, port) = host_and_port
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| unreachable("not HOST:PORT".into()))?;
    let key = host_port(host, port);
    let known = KnownServers::default_path().map(KnownServers::new);
    let entry = match &known {
        Some(k) => k
            .lookup(&key)
            .map_err(|e| ConnectError::Untrusted(e.to_string()))?,
        None => None,
    };
    let given = match &options.fingerprint {
        Some(f) => Some(
            core_tls::parse_fingerprint(f)
                .map_err(|e| ConnectError::Untrusted(format!("--fingerprint: {e}")))?,
        ),
        None => None,
    };
    let mut pin = reconnect_pin
        .map(str::to_string)
        .or_else(|| given.clone())
        .or_else(|| entry.as_ref().map(|e| e.fingerprint.clone()));
    let mut asked = false;
    loop {
        let trust = system_trust()
            .with_pin(pin.as_deref())
            .map_err(ConnectError::Untrusted)?
            .with_timeout(CONNECT_TIMEOUT);
        let tcp = Stream::connect(addr, CONNECT_TIMEOUT)
            .map_err(|e| unreachable(describe_connect(&e)))?;
        let (stream, trust) = match core_tls::connect_stream(tcp, host, &trust) {
            Ok(pair) => pair,
            Err(TlsError::Untrusted {
                trust: Trust::Unknown { fingerprint },
                ..
            }) if !asked && reconnect_pin.is_none() => {
                if !options.ask {
                    let text = match &known {
                        Some(k) => k.unknown_message(&key, &fingerprint),
                        None => format!(
                            "the identity of {key} is not known: {fingerprint}\n\
                             Check it with the server's operator (ftpsh-server \
                             --print-fingerprint), then connect with --fingerprint {fingerprint}"
                        ),
                    };
                    return Err(ConnectError::Untrusted(text));
                }
                if !ask(&key, &fingerprint) {
                    return Err(ConnectError::Untrusted(format!(
                        "{key} not trusted: the token was not sent"
                    )));
                }
                record(known.as_ref(), &key, &fingerprint);
                pin = Some(fingerprint);
                asked = true;
                continue;
            }
            Err(TlsError::Untrusted {
                trust: Trust::Mismatch { expected, got },
                ..
            }) => {
                let text = match (&known, &entry) {
                    (Some(k), Some(e)) if given.is_none() && e.fingerprint == expected => {
                        k.mismatch_message(&key, e, &got)
                    }
                    _ => format!(
                        "WARNING: the identity of {key} is not the one expected.\n\
                         \x20 expected: {expected}\n\
                         \x20 now:      {got}\n\
                         Someone may be intercepting this connection, or the server got a new \
                         key. The token was not sent."
                    ),
                };
                return Err(ConnectError::Untrusted(text));
            }
            Err(e) => return Err(describe(addr, e)),
        };
        // A fingerprint the user gave (or the one a reconnection expects) is
        // required even of a certificate a CA vouches for: the user asked
        // for that key, not for any key the CA would sign for the name.
        if let Some(required) = given.as_deref().or(reconnect_pin) {
            if trust.fingerprint() != required {
                return Err(ConnectError::Untrusted(format!(
                    "WARNING: the identity of {key} is not the one expected.\n\
                     \x20 expected: {required}\n\
                     \x20 now:      {}\n\
                     Its certificate is valid for the name, but it is not the key pinned. \
                     The token was not sent.",
                    trust.fingerprint()
                )));
            }
        }
        if let (Trust::Pinned { fingerprint }, Some(g)) = (&trust, &given) {
            let recorded = entry.as_ref().map(|e| e.fingerprint.as_str());
            if fingerprint == g && reconnect_pin.is_none() && recorded != Some(g.as_str()) {
                record(known.as_ref(), &key, fingerprint);
            }
        }
        return Ok((stream, trust.fingerprint().to_string()));
    }
}

/// A TLS failure other than an untrusted identity, in one line.
fn describe(addr: &Address, e: TlsError) -> ConnectError {
    match e {
        TlsError::NotTls | TlsError::NoAnswer => ConnectError::Refused {
            addr: addr.to_string(),
            reason: "the server does not speak TLS on this port (drop --tls if it is on \
                     loopback; off loopback ask its operator to serve TLS)"
                .into(),
        },
        TlsError::Untrusted { trust, ca_error } => {
            let why = ca_error.map(|c| format!(" ({c})")).unwrap_or_default();
            ConnectError::Untrusted(format!("{addr}: {trust}{why}"))
        }
        other => ConnectError::Unreachable {
            addr: addr.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Shows an unknown server's fingerprint on the terminal and asks.
fn ask(key: &str, fingerprint: &str) -> bool {
    let mut err = io::stderr().lock();
    let _ = write!(
        err,
        "The identity of {key} is not known.\n\
         \x20 fingerprint {fingerprint}\n\
         Compare it with what the server's operator sees (ftpsh-server --print-fingerprint).\n\
         Trust this server? [y/N] "
    );
    let _ = err.flush();
    drop(err);
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Records a trusted fingerprint; a failure is a warning (this connection
/// goes on, the next one asks again).
fn record(known: Option<&KnownServers>, key: &str, fingerprint: &str) {
    let result = match known {
        Some(k) => k
            .record(key, fingerprint)
            .map(|()| k.path().display().to_string()),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no home directory: set FTPSH_KNOWN_SERVERS",
        )),
    };
    match result {
        Ok(path) => eprintln!("ftpsh: {key} recorded as {fingerprint} in {path}"),
        Err(e) => eprintln!("ftpsh: warning: cannot record {key}'s identity: {e}"),
    }
}
