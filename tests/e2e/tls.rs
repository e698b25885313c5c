//! TLS between the real `ftpsh` and the real `ftpsh-server` on 127.0.0.1
//! (`--tls`, as off loopback): the server's identity and its fingerprint
//! line, trust on first use at a terminal, `--fingerprint` in scripts, a
//! changed identity refused before the token leaves, a CA-issued
//! certificate, plaintext and TLS peers meeting, and verified transfers.
//!
//! Every process gets its own HOME, XDG data directory and known-servers
//! file, and no system CA store (SSL_CERT_FILE only where a test sets it).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A running `ftpsh-server`, killed on drop, with its fingerprint line.
struct TlsServer {
    child: Child,
    addr: String,
    /// The line after `listening on`, without `fingerprint ` (empty when
    /// the server speaks plaintext).
    fingerprint: String,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl TlsServer {
    /// `ftpsh-server --root ROOT --listen LISTEN ARGS...` with the test token.
    fn start(root: &Path, listen: &str, args: &[&str]) -> TlsServer {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("server.log");
        let mut child = Command::new(bin("ftpsh-server"))
            .arg("--root")
            .arg(root)
            .arg("--listen")
            .arg(listen)
            .args(args)
            .env("FTPSH_TOKEN", TOKEN)
            .env("HOME", logdir.path())
            .env("XDG_DATA_HOME", logdir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start ftpsh-server");
        let tls = args.contains(&"--tls");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut lines = Vec::new();
            for _ in 0..if tls { 2 } else { 1 } {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                lines.push(line);
            }
            let _ = tx.send(lines);
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let lines = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server printed its address");
        let addr = lines[0]
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {:?}", lines[0]))
            .to_string();
        let fingerprint = match lines.get(1) {
            Some(l) => l
                .trim_end()
                .strip_prefix("fingerprint ")
                .unwrap_or_else(|| panic!("unexpected second line {l:?}"))
                .to_string(),
            None => String::new(),
        };
        TlsServer {
            child,
            addr,
            fingerprint,
            log,
            _logdir: logdir,
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client's private places: HOME, XDG data, the known-servers file.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn known(&self) -> PathBuf {
        self.path().join("known_servers")
    }
    fn known_text(&self) -> String {
        std::fs::read_to_string(self.known()).unwrap_or_default()
    }
    /// Sets a client's environment to this home.
    fn env(&self, cmd: &mut Command) {
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("FTPSH_KNOWN_SERVERS", self.known())
            .env("FTPSH_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .env_remove("FTPSH_RC")
            .env_remove("FTPSH_FINGERPRINT")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
    }
    /// `ftpsh ADDR --norc ARGS...` as a script (stdin not a terminal).
    fn client(&self, addr: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("ftpsh"));
        cmd.arg(addr).arg("--norc").args(args).stdin(Stdio::null());
        self.env(&mut cmd);
        cmd
    }
}

/// Runs `cmd` and returns its output, failing the test after `limit`.
fn run_within(mut cmd: Command, limit: Duration) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            if !process_alive(pid) {
                return false;
            }
        }
        // The child we started, by its pid.
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        true
    });
    let mut out = Vec::new();
    let mut err = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    let killed = watchdog.join().unwrap();
    assert!(!killed, "the client hung for {limit:?}");
    (
        std::process::Output {
            status,
            stdout: out,
            stderr: err,
        },
        took,
    )
}

fn output(cmd: Command) -> std::process::Output {
    run_within(cmd, Duration::from_secs(600)).0
}

/// `SHA256:` and 43 characters of base64 without padding.
fn assert_fingerprint(fp: &str) {
    let b64 = fp
        .strip_prefix("SHA256:")
        .unwrap_or_else(|| panic!("{fp:?}"));
    assert_eq!(b64.len(), 43, "{fp:?}");
    assert!(
        b64.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "{fp:?}"
    );
}

fn tls_server(root: &Path, identity: &Path) -> TlsServer {
    TlsServer::start(
        root,
        "127.0.0.1:0",
        &["--tls", "--identity", identity.to_str().unwrap()],
    )
}

#[test]
fn identity_files_are_private_and_print_fingerprint_matches_the_line() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let identity = keep.path().join("id");
    let server = tls_server(root.path(), &identity);
    assert_fingerprint(&server.fingerprint);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&identity), 0o700);
    assert_eq!(mode(&identity.join("key.pem")), 0o600);
    let out = Command::new(bin("ftpsh-server"))
        .args(["--print-fingerprint", "--identity"])
        .arg(&identity)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout_of(&out), format!("{}\n", server.fingerprint));
    // Reused at the next start: the same fingerprint.
    let again = tls_server(root.path(), &identity);
    assert_eq!(again.fingerprint, server.fingerprint);
    // Plaintext (the default on loopback): no fingerprint line.
    let plain = TlsServer::start(root.path(), "127.0.0.1:0", &[]);
    assert_eq!(plain.fingerprint, "");
}

#[test]
fn no_tls_off_loopback_is_refused_before_binding() {
    let root = tempfile::tempdir().unwrap();
    let home = Home::new();
    let out = Command::new(bin("ftpsh-server"))
        .arg("--root")
        .arg(root.path())
        .args(["--listen", "0.0.0.0:0", "--no-tls"])
        .env("FTPSH_TOKEN", TOKEN)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stdout_of(&out), "", "it must not listen");
    let err = stderr_of(&out);
    assert!(
        err.starts_with("ftpsh-server: refusing --no-tls on 0.0.0.0:0")
            && err.contains("--insecure-no-auth"),
        "{err}"
    );
    assert!(!home.path().join("data").exists(), "no identity made");
}

#[test]
fn a_script_against_an_unknown_server_exits_3_with_the_fingerprint_and_the_flag() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let server = tls_server(root.path(), &keep.path().join("id"));
    let home = Home::new();
    let (out, took) = run_within(
        home.client(&server.addr, &["--tls", "-c", "echo in"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout_of(&out), "", "{err}");
    assert!(err.contains(&server.fingerprint), "{err}");
    assert!(
        err.contains(&format!("--fingerprint {}", server.fingerprint)),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(home.known_text(), "", "nothing recorded");
    // The server saw a client that did not trust it, and no session.
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log_text()
            .contains("does not trust this server's identity")),
        "{}",
        server.log_text()
    );
    assert!(
        !server.log_text().contains("connected"),
        "{}",
        server.log_text()
    );
}

#[test]
fn fingerprint_flag_pins_and_records() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let server = tls_server(root.path(), &keep.path().join("id"));
    let home = Home::new();
    let out = output(home.client(
        &server.addr,
        &[
            "--tls",
            "--fingerprint",
            &server.fingerprint,
            "-c",
            "echo in",
        ],
    ));
    assert_eq!(stdout_of(&out), "in\n", "{out:?}");
    assert!(out.status.success());
    let known = home.known_text();
    assert!(
        known.contains(&format!(
            "127.0.0.1:{} {}",
            server.port(),
            server.fingerprint
        )),
        "{known}"
    );
    // Recorded: the next script needs no flag, and says nothing of trust.
    let out = output(home.client(&server.addr, &["--tls", "-c", "echo again"]));
    assert_eq!(stdout_of(&out), "again\n", "{out:?}");
    assert_eq!(stderr_of(&out), "");
    // The environment variable does the same; a wrong one is refused.
    let other = Home::new();
    let mut cmd = other.client(&server.addr, &["--tls", "-c", "echo env"]);
    cmd.env("FTPSH_FINGERPRINT", &server.fingerprint);
    let out = output(cmd);
    assert_eq!(stdout_of(&out), "env\n", "{out:?}");
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let third = Home::new();
    let out = output(third.client(
        &server.addr,
        &["--tls", "--fingerprint", wrong, "-c", "echo no"],
    ));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = stderr_of(&out);
    assert!(
        err.contains(wrong) && err.contains(&server.fingerprint),
        "{err}"
    );
}

/// A TLS server that records every byte it receives after its handshake.
fn stand_in(port: u16, identity: &Path) -> (Arc<Mutex<Vec<u8>>>, Arc<Mutex<usize>>) {
    let id = ftpsh_core::tls::Identity::load_or_create(identity).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind the port");
    let got = Arc::new(Mutex::new(Vec::new()));
    let handshakes = Arc::new(Mutex::new(0));
    let (got_t, hs_t) = (Arc::clone(&got), Arc::clone(&handshakes));
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = id.server_config();
            match ftpsh_core::tls::accept(tcp, &config, Duration::from_secs(10)) {
                Ok(mut tls) => {
                    *hs_t.lock().unwrap() += 1;
                    tls.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        got_t.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
                Err(_) => continue,
            }
        }
    });
    (got, handshakes)
}

#[test]
fn a_changed_identity_is_refused_and_never_gets_the_token() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let mut server = tls_server(root.path(), &keep.path().join("id"));
    let home = Home::new();
    let out = output(home.client(
        &server.addr,
        &[
            "--tls",
            "--fingerprint",
            &server.fingerprint,
            "-c",
            "echo in",
        ],
    ));
    assert!(out.status.success(), "{out:?}");
    let port = server.port();
    let recorded = server.fingerprint.clone();
    server.stop();
    // Someone else answers on the same port, with another key.
    let other_id = keep.path().join("other");
    let (got, handshakes) = stand_in(port, &other_id);
    let other_fp = ftpsh_core::tls::Identity::load_or_create(&other_id)
        .unwrap()
        .fingerprint();
    let addr = format!("127.0.0.1:{port}");
    let (out, took) = run_within(
        home.client(&addr, &["--tls", "-c", "echo in"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CHANGED"), "{err}");
    assert!(err.contains(&recorded) && err.contains(&other_fp), "{err}");
    let at = format!("{}:1", home.known().display());
    assert!(err.contains(&at), "names {at}: {err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(*handshakes.lock().unwrap(), 0, "the handshake was refused");
    let bytes = got.lock().unwrap().clone();
    assert!(bytes.is_empty(), "the stand-in received {bytes:?}");
    // The recorded line is untouched.
    assert!(home.known_text().contains(&recorded));
}

/// A test CA, and a certificate it issued for `localhost` only.
fn make_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftpsh test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).unwrap();
    let (ca_pem, cert_pem, key_pem) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ca_pem, cert_pem, key_pem)
}

#[test]
fn a_ca_issued_certificate_is_accepted_by_name_and_refused_for_another() {
    let root = tempfile::tempdir().unwrap();
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_ca(pki.path());
    let server = TlsServer::start(
        root.path(),
        "127.0.0.1:0",
        &[
            "--tls",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert_fingerprint(&server.fingerprint);
    let home = Home::new();
    let mut cmd = home.client(
        &format!("localhost:{}", server.port()),
        &["--tls", "-c", "echo by name"],
    );
    cmd.env("SSL_CERT_FILE", &ca);
    let out = output(cmd);
    assert_eq!(stdout_of(&out), "by name\n", "{out:?}");
    assert_eq!(stderr_of(&out), "");
    assert_eq!(home.known_text(), "", "a CA-valid server is not pinned");
    // The certificate names localhost only: 127.0.0.1 is not trusted by it.
    let mut cmd = home.client(&server.addr, &["--tls", "-c", "echo by address"]);
    cmd.env("SSL_CERT_FILE", &ca);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout_of(&out), "");
    assert!(stderr_of(&out).contains(&server.fingerprint), "{out:?}");
    // Without the CA, localhost is an unknown server too.
    let out = output(home.client(
        &format!("localhost:{}", server.port()),
        &["--tls", "-c", "echo no ca"],
    ));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // A fingerprint the user gives is required even of a CA-valid certificate.
    let other = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut cmd = home.client(
        &format!("localhost:{}", server.port()),
        &["--fingerprint", other, "-c", "echo pinned elsewhere"],
    );
    cmd.env("SSL_CERT_FILE", &ca);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout_of(&out), "");
    let err = stderr_of(&out);
    assert!(
        err.contains(other) && err.contains(&server.fingerprint),
        "{err}"
    );
}

/// `--fingerprint` means TLS, on loopback too: a plaintext server there is
/// refused before the token is sent.
#[test]
fn a_fingerprint_on_loopback_means_tls() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let home = Home::new();
    let out = output(home.client(
        &server.addr,
        &[
            "--fingerprint",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "-c",
            "echo plain",
        ],
    ));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout_of(&out), "");
    assert!(
        !server.log_text().contains("connected"),
        "{}",
        server.log_text()
    );
}

#[test]
fn plaintext_and_tls_peers_get_one_line_and_exit_3_quickly() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let home = Home::new();
    // A plaintext client at a TLS server.
    let server = tls_server(root.path(), &keep.path().join("id"));
    let (out, took) = run_within(
        home.client(&server.addr, &["-c", "echo in"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("requires TLS") && err.contains("--tls"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log_text()
            .contains("a client without TLS reached this TLS port")),
        "{}",
        server.log_text()
    );
    // A TLS client at a plaintext server.
    let plain = TlsServer::start(root.path(), "127.0.0.1:0", &[]);
    let (out, took) = run_within(
        home.client(&plain.addr, &["--tls", "-c", "echo in"]),
        Duration::from_secs(60),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("does not speak TLS") && err.contains("drop --tls"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn tls_transfers_of_0_bytes_1_mib_and_300_mib_are_verified() {
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let server = tls_server(root.path(), &keep.path().join("id"));
    let home = Home::new();
    let local = home.path();
    let sizes: [(&str, usize); 3] = [("empty", 0), ("one", 1 << 20), ("big", 300 << 20)];
    let mut sums = Vec::new();
    for (i, (name, size)) in sizes.iter().enumerate() {
        let data = random_bytes(*size, 7 + i as u64);
        sums.push(md5_hex(&data));
        std::fs::write(root.path().join(name), &data).unwrap();
        std::fs::write(local.join(format!("{name}.up")), &data).unwrap();
    }
    let mut script = String::new();
    for (name, _) in &sizes {
        script.push_str(&format!(
            "get {name} {name}.down; put {name}.up {name}.up; "
        ));
    }
    let out = output(home.client(
        &server.addr,
        &["--tls", "--fingerprint", &server.fingerprint, "-c", &script],
    ));
    assert!(out.status.success(), "{out:?}");
    for ((name, _), sum) in sizes.iter().zip(&sums) {
        assert_eq!(
            &md5_file(&local.join(format!("{name}.down"))),
            sum,
            "{name} down"
        );
        assert_eq!(
            &md5_file(&root.path().join(format!("{name}.up"))),
            sum,
            "{name} up"
        );
    }
}

#[test]
fn trust_on_first_use_at_a_terminal_asks_records_and_then_is_silent() {
    use rexpect::reader::Options;
    use rexpect::session::spawn_with_options;
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let server = tls_server(root.path(), &keep.path().join("id"));
    let home = Home::new();
    let shell = || {
        let mut cmd = Command::new(bin("ftpsh"));
        cmd.arg(&server.addr).arg("--norc").arg("--tls");
        home.env(&mut cmd);
        cmd.env("TERM", "xterm")
            .env("FTPSH_HISTORY", home.path().join("history"));
        let options = Options::new()
            .timeout_ms(Some(20_000))
            .strip_ansi_escape_codes(true);
        spawn_with_options(cmd, options).expect("spawn ftpsh in a pty")
    };
    let prompt = format!("ftpsh {}:/> ", server.addr);
    let mut first = shell();
    let before = first.exp_string("Trust this server? [y/N]").unwrap();
    assert!(before.contains(&server.fingerprint), "{before}");
    first.send("y\r").unwrap();
    first.flush().unwrap();
    first.exp_string("recorded as").unwrap();
    first.exp_string(&prompt).unwrap();
    first.send("quit\r").unwrap();
    first.flush().unwrap();
    first.exp_eof().unwrap();
    let known = home.known_text();
    assert!(
        known.contains(&format!(
            "127.0.0.1:{} {}",
            server.port(),
            server.fingerprint
        )),
        "{known}"
    );
    let mut second = shell();
    let before = second.exp_string(&prompt).unwrap();
    assert!(!before.contains("Trust"), "{before}");
    assert!(!before.contains("SHA256"), "{before}");
    second.send("quit\r").unwrap();
    second.flush().unwrap();
    second.exp_eof().unwrap();
    // Refusing: nothing recorded, exit 3, and the server saw no session.
    let other = Home::new();
    let mut cmd = Command::new(bin("ftpsh"));
    cmd.arg(&server.addr).arg("--norc").arg("--tls");
    other.env(&mut cmd);
    cmd.env("TERM", "xterm");
    let mut third = spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(20_000))
            .strip_ansi_escape_codes(true),
    )
    .unwrap();
    third.exp_string("Trust this server? [y/N]").unwrap();
    third.send("n\r").unwrap();
    third.flush().unwrap();
    third.exp_string("not trusted").unwrap();
    match third.process().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(other.known_text(), "");
}

#[test]
fn a_reconnection_after_an_idle_drop_expects_the_identity_verified_first() {
    use rexpect::reader::Options;
    use rexpect::session::spawn_with_options;
    let root = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let mut server = TlsServer::start(
        root.path(),
        "127.0.0.1:0",
        &[
            "--tls",
            "--identity",
            keep.path().join("id").to_str().unwrap(),
            "--idle-timeout",
            "300ms",
        ],
    );
    let home = Home::new();
    let mut cmd = Command::new(bin("ftpsh"));
    cmd.arg(&server.addr)
        .args(["--norc", "--tls", "--fingerprint", &server.fingerprint]);
    home.env(&mut cmd);
    cmd.env("TERM", "xterm")
        .env("FTPSH_HISTORY", home.path().join("history"));
    let mut shell = spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(20_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn ftpsh in a pty");
    let prompt = format!("ftpsh {}:/> ", server.addr);
    shell.exp_string(&prompt).unwrap();
    // The server drops the idle connection: as over TCP, the next command
    // finds it closed and reconnects first (to the same identity).
    assert!(wait_until(Duration::from_secs(10), || server
        .log_text()
        .contains("disconnected")
        || server.log_text().contains("idle")));
    type_line(&mut shell, "echo first");
    let before = shell.exp_string("\nfirst").unwrap();
    assert!(!before.contains("connection lost"), "{before}");
    shell.exp_string(&prompt).unwrap();
    // Another key answers on that port now: the reconnection refuses it.
    let port = server.port();
    server.stop();
    let (got, handshakes) = stand_in(port, &keep.path().join("other"));
    type_line(&mut shell, "echo second");
    let before = shell.exp_string("reconnecting failed").unwrap();
    assert!(!before.contains("\nsecond"), "{before}");
    shell.exp_string(&prompt).unwrap();
    shell.send("quit\r").unwrap();
    shell.flush().unwrap();
    shell.exp_eof().unwrap();
    assert_eq!(*handshakes.lock().unwrap(), 0);
    assert!(got.lock().unwrap().is_empty());
}

/// Types `line` and Enter at the pseudo-terminal.
fn type_line(shell: &mut rexpect::session::PtySession, line: &str) {
    shell.send(&format!("{line}\r")).unwrap();
    shell.flush().unwrap();
}
