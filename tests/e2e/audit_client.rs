//! A second audit of the client against hostile servers (`common::hostile`
//! and, where the scripted server cannot misbehave enough, raw sockets): what
//! `hostile.rs` did not cover yet.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{FrameReader, Reply};

use crate::common::hostile::*;

/// A generous deadline for a run that should take seconds: a safety net, not
/// an assertion (a client still running then is killed, `code` is `None`).
const EVENT: Duration = Duration::from_secs(60);

/// What the attacker would like to plant.
const PLANTED: &[u8] = b"ssh-ed25519 AAAA attacker\n";

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A server that accepts the client's greeting and token, answers with its
/// own greeting, and then trickles the answer to the token, a byte every
/// 300 ms: each read of the client gets something long before its timeout,
/// and the answer (a refusal of 100 000 bytes) would take eight hours.
/// The handshake has one deadline as a whole: the client gives up at it
/// (status 3, "cannot connect"), with a message saying so.
#[test]
fn a_server_that_trickles_its_handshake_is_given_up_at_one_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                if handshake::read_greeting(&mut stream).is_err() {
                    return;
                }
                let mut frames = FrameReader::new();
                if frames.read(&mut stream).is_err() {
                    return;
                }
                let message = "x".repeat(100_000);
                let mut answer = handshake::greeting().to_vec();
                Reply::Error { message: &message }
                    .write_to(&mut answer)
                    .unwrap();
                // The greeting and the frame's header at once, then the rest
                // a byte at a time (for at most ten minutes).
                let (head, rest) = answer.split_at(handshake::GREETING_LEN + 5);
                if stream.write_all(head).is_err() {
                    return;
                }
                for byte in rest.iter().take(2000) {
                    std::thread::sleep(Duration::from_millis(300));
                    if stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                }
                let mut sink = [0u8; 64];
                let _ = stream.read(&mut sink);
            });
        }
    });
    let home = home();
    let run = run_client(
        std::process::Command::new(crate::common::bin("ftpsh"))
            .arg(&addr)
            .args(["--norc", "-c", "echo hi"])
            .current_dir(home.path())
            .env("HOME", home.path())
            .env("FTPSH_TOKEN", "t")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null()),
        EVENT,
    );
    assert_eq!(
        run.code,
        Some(3),
        "the client waited on a trickling handshake (exit {:?} after {:?}): {}",
        run.code,
        run.elapsed,
        run.stderr
    );
    assert!(
        run.stderr.contains("handshake") && run.stderr.contains("timed out"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

/// Runs `cmd` (stdout and stderr to files), calls `then(pid)` once
/// `ready()` holds (at most `EVENT`), and waits for the end (killing it at the
/// safety net). Returns the exit status (`None`: killed) and stderr.
fn run_and_signal(
    cmd: &mut std::process::Command,
    ready: impl Fn() -> bool,
    then: impl FnOnce(u32),
) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start ftpsh");
    let start = std::time::Instant::now();
    while !ready() && start.elapsed() < EVENT {
        std::thread::sleep(Duration::from_millis(50));
    }
    then(child.id());
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > EVENT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&err_path).unwrap_or_default())
}

/// A scripted server's stall: nothing until the test raises `stop`, or
/// `limit` passes (a safety net, so that a failing test still ends).
fn stall_until(stop: &std::sync::atomic::AtomicBool, limit: Duration) {
    let start = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A server that says `Ready` to an upload and then stops reading: the
/// client's write blocks once the socket buffers are full. Ctrl-C must still
/// stop the transfer (the SPEC: Ctrl-C cancels the running transfer), also
/// with `--timeout 0`, where no write deadline would ever end the wait.
#[test]
fn ctrl_c_stops_an_upload_the_server_stopped_reading() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            ftpsh_core::protocol::Request::Put { .. } => {
                peer.send(Reply::Ready { offset: 0 });
                peer.flush();
                // Reads nothing more (for at most two minutes).
                stall_until(&stop, Duration::from_secs(120));
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let big = home.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let (code, stderr) = run_and_signal(
        server
            .command(home.path())
            .args(["--timeout", "0", "-c", "put big.bin"]),
        || {
            server
                .requests()
                .iter()
                .any(|r| matches!(r, ftpsh_core::protocol::Request::Put { .. }))
        },
        |pid| {
            // Long enough for a loopback socket's buffers to fill: the
            // client is then blocked in a write (not a timed assertion: if
            // it is not blocked yet, it sees Ctrl-C between two writes).
            std::thread::sleep(Duration::from_secs(2));
            // SAFETY: kill(2) on the child we spawned; no memory involved.
            unsafe {
                libc::kill(pid as i32, libc::SIGINT);
            }
        },
    );
    done.store(true, Ordering::SeqCst);
    assert_eq!(code, Some(130), "Ctrl-C did not stop the upload: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

/// A listing that announces sizes whose sum passes u64: the batch's total
/// (for its progress bar) and mirror's byte count overflowed, a panic in a
/// debug build (in a release build, a wrapped, wrong figure). The sizes a
/// listing gives are only a plan: the files are what the downloads announce,
/// and they arrive verified.
#[test]
fn listed_sizes_whose_sum_passes_u64_do_not_crash_a_batch() {
    const DATA: &[u8] = b"small after all";
    let huge = u64::MAX / 2 + 1;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Glob { .. } => {
                peer.entries(vec![file_entry("a.txt", huge), file_entry("b.txt", huge)])
            }
            Request::Stat { path } if path == "t" => {
                peer.send(Reply::Entries(vec![dir_entry("t")]))
            }
            Request::Walk { .. } => {
                peer.entries(vec![file_entry("a.txt", huge), file_entry("b.txt", huge)])
            }
            Request::Get { .. } => peer.file(DATA),
            _ => peer.error("not scripted"),
        }
    });
    for script in ["mget '*.txt'", "mirror t"] {
        let home = home();
        let run = run_client(server.command(home.path()).args(["-c", script]), EVENT);
        assert_eq!(run.code, Some(0), "{script}: {}", run.stderr);
        let dir = if script.starts_with("mirror") {
            home.path().join("t")
        } else {
            home.path().to_path_buf()
        };
        for name in ["a.txt", "b.txt"] {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), DATA, "{script}");
        }
    }
}

/// The cap on one listing counted the bytes of names only, not of link
/// targets: short names with long targets (each frame a megabyte) grew the
/// client by whatever the server sent. Targets count now.
#[test]
fn link_targets_count_towards_a_listing_s_memory_cap() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            ftpsh_core::protocol::Request::List { .. } => {
                let target = "t".repeat(200 << 10);
                let mut sent = 0u64;
                // 1.5 GiB of targets, or until the client stops reading.
                while peer.alive() && sent < 1536 << 20 {
                    let batch: Vec<_> = (0..4)
                        .map(|i| link_entry(&format!("l{}", sent / 1024 + i), &target))
                        .collect();
                    sent += 4 * target.len() as u64;
                    peer.send(Reply::Entries(batch));
                }
                peer.ok();
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "ls"]),
        Duration::from_secs(300),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("limit"), "{}", run.stderr);
    assert!(
        run.max_rss < 400 << 20,
        "the client grew to {} MiB",
        run.max_rss >> 20
    );
}

/// One command over many trees was capped by the count of entries, and each
/// tree's answer by its bytes, but not the command by its bytes: a pattern
/// matching eight trees, each a few hundred files with names of 200 KiB
/// (530 MiB of names, a few thousand entries), grew the client by all of
/// it, and more (each name is held as a remote path and a local one: 3.6 GiB).
#[test]
fn many_trees_of_long_names_behind_one_pattern_are_cut_off() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Glob { .. } => {
                peer.entries((1..=8).map(|i| dir_entry(&format!("p{i}"))).collect())
            }
            Request::Walk { .. } => {
                let long = "n".repeat(200 << 10);
                // 66 MiB a tree: the second passes the command's 128 MiB.
                for i in 0..330 {
                    if !peer.alive() {
                        return;
                    }
                    peer.send(Reply::Entries(vec![file_entry(&format!("{i}{long}"), 1)]));
                }
                peer.ok();
            }
            Request::Get { .. } => peer.file(b"x"),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "get -r 'p*'"]),
        Duration::from_secs(300),
    );
    assert!(
        run.max_rss < 600 << 20,
        "the client grew to {} MiB",
        run.max_rss >> 20
    );
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.stderr.chars().take(500).collect::<String>()
    );
    assert!(
        run.stderr.contains("MiB of names") && run.stderr.contains("one at a time"),
        "{}",
        run.stderr.chars().take(500).collect::<String>()
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !matches!(r, ftpsh_core::protocol::Request::Get { .. })),
        "nothing is fetched"
    );
}

/// `mirror` copies a server's link as a link (a faithful copy), and a later
/// run skips whatever the server lists beneath it ("not gone through"). But
/// the directories' modes and times, set once their contents are in place,
/// were set for every directory the server listed, skipped ones too: through
/// the link, on a directory outside the target (`mirror -p`: mode 777 on the
/// user's `~/.ssh`, say; without `-p` the server's bits less the umask).
#[test]
fn mirror_sets_no_mode_through_a_link_it_skipped() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let outside = tempfile::tempdir().unwrap();
    let inner = outside.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let walks = AtomicUsize::new(0);
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Stat { path } if path == "t" => {
                peer.send(Reply::Entries(vec![dir_entry("t")]))
            }
            // The first run: a link, copied as a link. Every later one: a
            // directory "inside" it, mode 777, and no longer the link itself
            // (without --delete the link stays).
            Request::Walk { .. } => {
                if walks.fetch_add(1, Ordering::SeqCst) == 0 {
                    peer.entries(vec![link_entry("sub", &target)])
                } else {
                    let mut d = dir_entry("sub/inner");
                    d.mode = 0o777;
                    d.mtime = 0;
                    peer.entries(vec![d])
                }
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(server.command(home.path()).args(["-c", "mirror t"]), EVENT);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(std::fs::symlink_metadata(home.path().join("t/sub"))
        .unwrap()
        .file_type()
        .is_symlink());
    for script in ["mirror -p t", "mirror t"] {
        let run = run_client(server.command(home.path()).args(["-c", script]), EVENT);
        assert_eq!(run.code, Some(1), "{script}: {}", run.stderr);
        assert!(run.stderr.contains("not gone through"), "{}", run.stderr);
        let meta = std::fs::metadata(&inner).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o700,
            "{script} changed the mode of a directory outside its target"
        );
        assert_ne!(meta.mtime(), 0, "{script} set the time of {inner:?}");
    }
}

/// Makes a directory's entries impossible to remove (as root, whom modes do
/// not stop, with `chattr +i`) until dropped. `None` where that cannot be done.
struct Unremovable(std::path::PathBuf, bool);

impl Unremovable {
    fn new(dir: &std::path::Path) -> Option<Unremovable> {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid(2) only reads the process's credentials.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let ok = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            ok.then(|| Unremovable(dir.to_path_buf(), true))
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).ok()?;
            Some(Unremovable(dir.to_path_buf(), false))
        }
    }
}

impl Drop for Unremovable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

/// `mirror` removes what stands where the source has something of another
/// kind: a link where the server lists a directory. When that removal
/// failed, the link was still taken for removed, and the directory's files
/// were downloaded through it, outside the target.
#[test]
fn mirror_writes_nothing_through_a_link_it_could_not_remove() {
    let outside = tempfile::tempdir().unwrap();
    let n = PLANTED.len() as u64;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Stat { path } if path == "t" => {
                peer.send(Reply::Entries(vec![dir_entry("t")]))
            }
            Request::Walk { .. } => peer.entries(vec![
                dir_entry("ro"),
                dir_entry("ro/sub"),
                file_entry("ro/sub/planted", n),
            ]),
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let ro = home.path().join("t/ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::os::unix::fs::symlink(outside.path(), ro.join("sub")).unwrap();
    let Some(_guard) = Unremovable::new(&ro) else {
        eprintln!("skipped: cannot make {ro:?} unremovable here");
        return;
    };
    let run = run_client(server.command(home.path()).args(["-c", "mirror t"]), EVENT);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        tree(outside.path()),
        Vec::<String>::new(),
        "written through the link: {}",
        run.stderr
    );
}

/// A batch keeps one line per failed file, and a refusal's text is the
/// server's: answering each download of a tree with a refusal of a megabyte
/// grew the client by a megabyte a file (and printed it all). A refusal is
/// cut to a readable length; every failed file is still named.
#[test]
fn long_refusals_do_not_pile_up_in_a_batch() {
    // A hundred is enough: uncut, they took about 400 MiB (1180 MiB for 300).
    const FILES: usize = 100;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Stat { path } if path == "t" => {
                peer.send(Reply::Entries(vec![dir_entry("t")]))
            }
            Request::Walk { .. } => peer.entries(
                (0..FILES)
                    .map(|i| file_entry(&format!("f{i}"), 1))
                    .collect(),
            ),
            Request::Get { path, .. } => {
                let message = format!("{path}: {}", "no ".repeat(340_000));
                peer.error(&message)
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "get -r t"]),
        Duration::from_secs(300),
    );
    assert!(
        run.max_rss < 200 << 20,
        "the client grew to {} MiB",
        run.max_rss >> 20
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(&format!("{FILES} failed")),
        "{}",
        run.stderr.chars().take(300).collect::<String>()
    );
    for i in 0..FILES {
        assert!(
            run.stderr.contains(&format!("t/f{i}: no no")),
            "f{i} is named"
        );
    }
    assert!(
        run.stderr.len() < FILES * 4000,
        "{} bytes of messages",
        run.stderr.len()
    );
}

/// Tab completion lists a remote directory while the line editor holds the
/// terminal in raw mode: Ctrl-C is then a key not yet read, not a signal. A
/// server that answers the listing a frame every half second, each well
/// within the reply timeout, froze the prompt for as long as it liked. The
/// listing now has a few seconds to arrive whole, and the prompt comes back.
#[test]
fn a_slow_listing_does_not_freeze_tab_completion() {
    use rexpect::reader::Options;
    use rexpect::session::spawn_with_options;
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            // Endless, a frame at a time (for at most ten minutes).
            Request::List { .. } => {
                for i in 0..1200 {
                    if !peer.alive() {
                        return;
                    }
                    peer.send(Reply::Entries(vec![file_entry(&format!("slow{i}"), 1)]));
                    peer.flush();
                    std::thread::sleep(Duration::from_millis(500));
                }
                peer.ok();
            }
            Request::Echo { text } => peer.text(&text),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    // As `Hostile::command`, but with the terminal as stdin.
    let mut cmd = std::process::Command::new(crate::common::bin("ftpsh"));
    cmd.arg(&server.addr)
        .arg("--norc")
        .current_dir(home.path())
        .env("NO_COLOR", "1")
        .env_remove("FTPSH_RC")
        .env_remove("FTPSH_TIMEOUT")
        .env("HOME", home.path())
        .env("FTPSH_TOKEN", "any-token-will-do")
        .env("TERM", "xterm")
        .env("FTPSH_HISTORY", home.path().join("history"));
    let options = Options::new()
        .timeout_ms(Some(EVENT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut sh = spawn_with_options(cmd, options).expect("spawn ftpsh in a pty");
    sh.exp_string("> ").expect("the first prompt");
    sh.send("ls sl\t").unwrap();
    sh.flush().unwrap();
    // Ctrl-U drops the line; what follows is a line of its own.
    sh.send_control('u').unwrap();
    sh.send("echo back-at-the-prompt\r").unwrap();
    sh.flush().unwrap();
    if let Err(e) = sh.exp_string("back-at-the-prompt\r\n") {
        panic!("the prompt stayed frozen on a slow listing: {e}");
    }
    sh.exp_string("> ").expect("the next prompt");
    sh.send_control('d').unwrap();
    sh.exp_eof().expect("ftpsh ends after Ctrl-D");
}

/// Ctrl-C in the middle of one of `mirror`'s files stops the mirror there,
/// saying what was kept: it used to count as that one file failing (its
/// message, naming the kept partial, was not recognised as a stop), so the
/// mirror went on to the next file, whose bare "interrupted" was all the
/// user saw.
#[test]
fn ctrl_c_in_the_middle_of_a_mirror_file_stops_the_mirror() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const REST: &[u8] = b"the second file";
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        use ftpsh_core::protocol::Request;
        match request {
            Request::Stat { .. } => peer.send(Reply::Entries(vec![dir_entry("t")])),
            Request::Walk { .. } => {
                peer.entries(vec![file_entry("a.bin", 1 << 30), file_entry("b.txt", 15)])
            }
            Request::Get { path, .. } if path.ends_with("a.bin") => {
                // Starts, sends a little, then stalls (for at most a minute).
                peer.send(Reply::FileStart {
                    size: 1 << 30,
                    offset: 0,
                    mode: 0o644,
                    mtime: 0,
                });
                peer.send(Reply::Data(&[7u8; 4096]));
                peer.flush();
                stall_until(&stop, Duration::from_secs(60));
            }
            Request::Get { .. } => peer.file(REST),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let (code, stderr) = run_and_signal(
        server.command(home.path()).args(["-c", "mirror t copy"]),
        || {
            server
                .requests()
                .iter()
                .any(|r| matches!(r, ftpsh_core::protocol::Request::Get { .. }))
        },
        |pid| {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: kill(2) on the child we spawned; no memory involved.
            unsafe {
                libc::kill(pid as i32, libc::SIGINT);
            }
        },
    );
    done.store(true, Ordering::SeqCst);
    let gets = server
        .requests()
        .iter()
        .filter(|r| matches!(r, ftpsh_core::protocol::Request::Get { .. }))
        .count();
    assert_eq!(gets, 1, "the mirror went on after Ctrl-C: {stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!home.path().join("copy/b.txt").exists(), "{stderr}");
    // Stopped at that file, so the user hears what was kept and how to go on
    // (before, the next file's failure, a bare "interrupted", hid it).
    assert!(
        stderr.contains("copy/a.bin.ftpsh-part is kept") && stderr.contains("get -c"),
        "{stderr}"
    );
}
