//! `ftpsh ssh://...`: the protocol over an ssh child talking to
//! `ftpsh-server --stdio`. A stand-in for ssh (`FTPSH_SSH`) runs the remote
//! command here, as sshd would run it there; a real sshd on loopback is used
//! when the machine has one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

/// A stand-in for ssh: it records its arguments, drops ssh's own options and
/// the host, and runs the remote command with `sh -c` in `home`, after
/// printing `noise` (what a login script or a message of the day would).
fn fake_ssh(dir: &Path, home: &Path, noise: &str) -> PathBuf {
    let script = dir.join("fake-ssh");
    fs::write(
        &script,
        format!(
            r#"#!/bin/sh
printf '%s\n' "$@" > '{log}'
while [ $# -gt 0 ]; do
  case "$1" in
    -T) shift ;;
    -o|-p|-i|-c) shift 2 ;;
    *) break ;;
  esac
done
shift
cd '{home}' || exit 1
printf '%s' '{noise}'
exec sh -c "$*"
"#,
            log = dir.join("ssh-args").display(),
            home = home.display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `ftpsh ssh://ADDR --norc -c COMMANDS` with the stand-in ssh, and the
/// directory of `ftpsh-server` first on PATH (as if installed there).
fn run(ssh: &Path, addr: &str, local: &Path, extra: &[&str], commands: &str) -> Output {
    command(ssh, addr, local, extra, commands).output().unwrap()
}

/// The command [`run`] runs, for a test that needs more of it.
fn command(ssh: &Path, addr: &str, local: &Path, extra: &[&str], commands: &str) -> Command {
    let server_dir = bin("ftpsh-server").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        server_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(bin("ftpsh"));
    cmd.arg(addr)
        .args(["--norc", "-c", commands])
        .args(extra)
        .current_dir(local)
        .env("PATH", path)
        .env("FTPSH_SSH", ssh)
        .env("FTPSH_TOKEN", "never-sent-over-ssh-0123")
        .env("HOME", local)
        .env("NO_COLOR", "1")
        .env_remove("XDG_CACHE_HOME")
        .stdin(Stdio::null());
    cmd
}

fn ssh_args(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("ssh-args"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn verbs_work_over_a_stand_in_ssh_that_runs_the_remote_command() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join("srv")).unwrap();
    let data = random_bytes(1 << 20, 5);
    fs::write(home.path().join("srv/big.bin"), &data).unwrap();
    fs::write(local.path().join("up.txt"), b"from the client\n").unwrap();
    let ssh = fake_ssh(dir.path(), home.path(), "");
    let out = run(
        &ssh,
        &format!(
            "ssh://alice@files.example:2222{}/srv",
            home.path().display()
        ),
        local.path(),
        &[],
        "pwd; ls; get big.bin; put up.txt; exec cat up.txt; md5 big.bin",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    assert!(stdout.starts_with("/\nbig.bin\n"), "{stdout}");
    assert!(
        stdout.contains("from the client\n"),
        "exec runs there: {stdout}"
    );
    assert!(stdout.contains(&md5_hex(&data)), "{stdout}");
    assert_eq!(fs::read(local.path().join("big.bin")).unwrap(), data);
    assert_eq!(
        fs::read(home.path().join("srv/up.txt")).unwrap(),
        b"from the client\n"
    );
    // What ssh was asked: no pty, no password prompt in a script, the port
    // and user, and the remote command with the directory quoted.
    let args = ssh_args(dir.path());
    assert_eq!(
        args[..6],
        [
            "-T",
            "-o",
            "BatchMode=yes",
            "-p",
            "2222",
            "alice@files.example"
        ]
    );
    assert_eq!(
        args[6],
        format!("ftpsh-server --stdio --root {}/srv", home.path().display())
    );
    assert!(
        !stderr_of(&out).contains("never-sent"),
        "no token goes over ssh"
    );
}

#[test]
fn a_login_script_chatter_is_skipped_and_remote_command_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(home.path().join("a.txt"), b"hello").unwrap();
    let ssh = fake_ssh(
        dir.path(),
        home.path(),
        "Welcome to example! FTPSH lives here, and FTP is dead...\n",
    );
    let server = bin("ftpsh-server");
    let out = run(
        &ssh,
        "ssh://host",
        local.path(),
        &["--remote-command", &server.to_string_lossy()],
        "get a.txt",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(fs::read(local.path().join("a.txt")).unwrap(), b"hello");
    let args = ssh_args(dir.path());
    assert_eq!(
        args.last().unwrap(),
        &format!("{} --stdio", server.display())
    );
}

#[test]
fn no_server_on_the_other_side_is_one_line_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(dir.path(), home.path(), "");
    let out = run(
        &ssh,
        "ssh://host",
        local.path(),
        &["--remote-command", "no-such-ftpsh-server-here"],
        "pwd",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("ftpsh: cannot connect to ssh://host"), "{err}");
    assert!(err.contains("--remote-command"), "{err}");
    // A remote side that talks but is not ftpsh: the text is shown.
    let fake = dir.path().join("chatty");
    fs::write(&fake, "#!/bin/sh\nyes 'not ftpsh'\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(
        &ssh,
        "ssh://host",
        local.path(),
        &["--remote-command", &fake.to_string_lossy()],
        "pwd",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("not ftpsh"), "{}", stderr_of(&out));
}

#[test]
fn ftpsh_server_stdio_serves_one_session_and_exits() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("f"), b"x").unwrap();
    // A client that leaves at once: the server must end, not wait.
    let mut child = Command::new(bin("ftpsh-server"))
        .args(["--stdio", "--root"])
        .arg(root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    assert!(
        wait_until(Duration::from_secs(10), || child
            .try_wait()
            .unwrap()
            .is_some()),
        "ftpsh-server --stdio outlived its client"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.stdout.is_empty(), "nothing but the protocol on stdout");
    // --stdio does not listen, and says so when asked to.
    let out = Command::new(bin("ftpsh-server"))
        .args(["--stdio", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Through a real sshd on loopback, when this machine has one: a key made
/// for the test, a config of its own, the real `ssh`.
#[test]
fn a_real_sshd_on_loopback_carries_the_session() {
    let sshd = Path::new("/usr/sbin/sshd");
    let keygen = Path::new("/usr/bin/ssh-keygen");
    if !sshd.exists() || !keygen.exists() || which("ssh").is_none() {
        println!("skipped: no sshd here (install openssh-server to run this test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keygen_to = |name: &str| {
        let status = Command::new(keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    };
    keygen_to("host_key");
    keygen_to("user_key");
    fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let server_dir = bin("ftpsh-server").parent().unwrap().to_path_buf();
    fs::write(
        d.join("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
             SetEnv PATH={bin}:/usr/bin:/bin\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
            bin = server_dir.display(),
        ),
    )
    .unwrap();
    fs::create_dir_all("/run/sshd").ok();
    let mut daemon = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = daemon.kill();
        let out = daemon.wait_with_output().unwrap();
        println!(
            "skipped: sshd did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(300 << 10, 8);
    fs::write(root.path().join("f.bin"), &data).unwrap();
    let ssh = format!(
        "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        d.join("user_key").display()
    );
    let out = Command::new(bin("ftpsh"))
        .arg(format!(
            "ssh://{user}@127.0.0.1:{port}{}",
            root.path().display()
        ))
        .args(["--norc", "-c", "get f.bin; exec echo over-ssh"])
        .current_dir(local.path())
        .env("FTPSH_SSH", ssh)
        .env("HOME", local.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("over-ssh"), "{}", stdout_of(&out));
    assert_eq!(fs::read(local.path().join("f.bin")).unwrap(), data);
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// A key restricted with `command="ftpsh-server --stdio ..."` in
/// authorized_keys (sshd then sets SSH_ORIGINAL_COMMAND) gives file transfer,
/// not a shell: `exec` is off there, and with `--no-exec`.
#[test]
fn a_forced_command_or_no_exec_turns_exec_off() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(home.path().join("a.txt"), b"hello").unwrap();
    // As sshd runs a forced command: the client's command only in the
    // environment, the forced one run instead.
    let forced = dir.path().join("forced-ssh");
    fs::write(
        &forced,
        format!(
            "#!/bin/sh\ncd '{}' || exit 1\nSSH_ORIGINAL_COMMAND=\"$*\" exec {} --stdio\n",
            home.path().display(),
            bin("ftpsh-server").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&forced, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(
        &forced,
        "ssh://host",
        local.path(),
        &[],
        "get a.txt; exec id",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(fs::read(local.path().join("a.txt")).unwrap(), b"hello");
    assert!(stderr_of(&out).contains("exec"), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains("uid="), "{}", stdout_of(&out));

    let ssh = fake_ssh(dir.path(), home.path(), "");
    let server = bin("ftpsh-server");
    let remote = format!("{} --no-exec", server.display());
    let out = run(
        &ssh,
        "ssh://host",
        local.path(),
        &["--remote-command", &remote],
        "exec id",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains("uid="));
}

#[test]
fn a_digest_cache_given_to_the_remote_server_outlives_the_session() {
    // Each ssh session runs its own `ftpsh-server --stdio`: a digest can only
    // be remembered for the next session in `--digest-cache FILE`.
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(300_000, 9);
    fs::write(home.path().join("a.bin"), &data).unwrap();
    let ssh = fake_ssh(dir.path(), home.path(), "");
    let cache = dir.path().join("digests");
    let remote = format!(
        "{} --digest-cache {}",
        bin("ftpsh-server").display(),
        cache.display()
    );
    for round in 0..2 {
        let out = run(
            &ssh,
            "ssh://host",
            local.path(),
            &["--remote-command", &remote],
            "get a.bin",
        );
        assert!(out.status.success(), "round {round}: {}", stderr_of(&out));
        assert_eq!(fs::read(local.path().join("a.bin")).unwrap(), data);
        let _ = fs::remove_file(local.path().join("a.bin"));
        // The header and one record: the second session found it there and
        // added nothing.
        let len = fs::metadata(&cache).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 8 + 72, "round {round}: cache of {len} bytes");
    }
}

#[test]
fn a_stdio_server_remembers_digests_in_the_users_cache_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let cache_home = dir.path().join("xdg-cache");
    let data = random_bytes(200_000, 10);
    fs::write(home.path().join("a.bin"), &data).unwrap();
    let ssh = fake_ssh(dir.path(), home.path(), "");
    let server = bin("ftpsh-server").display().to_string();
    let cache = cache_home.join("ftpsh-server/digests");
    let get = |remote: &str| {
        let out = command(
            &ssh,
            "ssh://host",
            local.path(),
            &["--remote-command", remote],
            "get a.bin",
        )
        .env("XDG_CACHE_HOME", &cache_home)
        .output()
        .unwrap();
        assert!(out.status.success(), "{remote}: {}", stderr_of(&out));
        assert_eq!(fs::read(local.path().join("a.bin")).unwrap(), data);
        fs::remove_file(local.path().join("a.bin")).unwrap();
    };
    get(&server);
    assert_eq!(fs::metadata(&cache).map(|m| m.len()).ok(), Some(8 + 72));
    let mode = fs::metadata(cache.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the cache directory is the user's alone"
    );
    fs::remove_file(&cache).unwrap();
    get(&format!("{server} --no-digest-cache"));
    assert!(
        !cache.exists(),
        "--no-digest-cache wrote {}",
        cache.display()
    );
}

/// `--stdio` keeps digests under `~/.cache` by default, opened by path with
/// every directory link followed; when the served root is the home directory
/// (`ssh://host` with no path, or a key forced to `ftpsh-server --stdio
/// --no-exec`), the client can make `~/.cache` a link leading outside: `mv`
/// no longer moves a link to where it would (the rule of `ln -s`), but a
/// tree copied in keeps its links' targets as given (`mirror -R`, `put -r`).
/// The next session must not then make `ftpsh-server/` and its `digests`
/// file in a directory outside the jail.
#[test]
fn the_default_digest_cache_is_never_written_outside_the_served_root() {
    let dir = tempfile::tempdir().unwrap();
    let base = tempfile::tempdir().unwrap();
    // The served root and home directory: BASE/h/home. `../../x` from it
    // is BASE/x, outside.
    let home = base.path().join("h/home");
    let outside = base.path().join("x");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let local = tempfile::tempdir().unwrap();
    let ssh = fake_ssh(dir.path(), &home, "");
    let remote = format!(
        "env HOME={} {}",
        home.display(),
        bin("ftpsh-server").display()
    );
    let session = |commands: &str| {
        command(
            &ssh,
            "ssh://host",
            local.path(),
            &["--remote-command", &remote],
            commands,
        )
        .output()
        .unwrap()
    };
    // From h/home/a/b, `../../x` is h/home/x: inside, so the link is made;
    // moved up it would lead outside, and is not moved.
    // This session made ~/.cache itself (its own cache): the client removes it.
    let out = session("rm -r .cache; mkdir -p a/b; ln -s ../../x a/b/l; mv a/b/l .cache");
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("would lead outside the served root"),
        "{}",
        stderr_of(&out)
    );
    // A copied tree's link is stored as it is: `.cache -> ../../x` at the top.
    let tree = local.path().join("tree");
    fs::create_dir(&tree).unwrap();
    std::os::unix::fs::symlink("../../x", tree.join(".cache")).unwrap();
    let out = session("rm -r .cache; mirror -R tree .");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        fs::read_link(home.join(".cache")).unwrap(),
        Path::new("../../x")
    );
    let _ = fs::remove_dir_all(outside.join("ftpsh-server"));
    fs::write(home.join("f"), b"data").unwrap();
    let out = session("md5 f");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let planted: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        planted.is_empty(),
        "the server wrote outside its root: {planted:?} in {}",
        outside.display()
    );
}
