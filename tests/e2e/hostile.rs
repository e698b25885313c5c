//! A client that trusts no server: the real `ftpsh` against a scripted server
//! that lies (`common::hostile`). Whatever the server answers, nothing is
//! written outside the destination the user named, no dot file is touched
//! unless asked for, no byte past the announced size lands, memory stays
//! bounded, a silent server ends with an error in the deadline, replies that
//! answer nothing are refused, and the server's text reaches a terminal
//! escaped.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use ftpsh_core::protocol::{Reply, Request};

use crate::common::hostile::*;

/// A generous deadline for a run that should take a second.
const EVENT: Duration = Duration::from_secs(30);

/// What the attacker would like to plant.
const PLANTED: &[u8] = b"ssh-ed25519 AAAA attacker\n";

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The files an attacker aims at in a home directory are not there.
#[track_caller]
fn assert_home_untouched(home: &Path) {
    for f in [".ftpshrc", ".ssh", ".bashrc", ".profile"] {
        assert!(
            home.join(f).symlink_metadata().is_err(),
            "{f} was written into the home directory: {:?}",
            tree(home)
        );
    }
}

#[track_caller]
fn assert_no_raw_escape(text: &str) {
    assert!(
        !text.contains('\x1b') && !text.contains('\x07'),
        "raw control characters reached the output: {text:?}"
    );
}

fn got(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| match r {
            Request::Get { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn glob_results_outside_the_pattern_are_refused_and_nothing_lands_outside() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            // scp's CVE-2019-6111, our way: the glob "matches" `..`, and the
            // walk of `..` holds the victim's dot files.
            Request::Glob { pattern } if pattern == "project*" => {
                peer.entries(vec![dir_entry(".."), dir_entry("project1")])
            }
            Request::Glob { pattern } if pattern == "*.txt" => peer.entries(vec![
                file_entry("report.txt", PLANTED.len() as u64),
                file_entry(".bashrc", PLANTED.len() as u64),
                file_entry(".ftpshrc", PLANTED.len() as u64),
                file_entry("notes.md", PLANTED.len() as u64),
                file_entry("sub/x.txt", PLANTED.len() as u64),
                file_entry("/x.txt", PLANTED.len() as u64),
                file_entry("..", PLANTED.len() as u64),
                file_entry("", PLANTED.len() as u64),
                file_entry("evil\x1b]0;pwned\x07.md", PLANTED.len() as u64),
            ]),
            // A pattern ending in a literal `..`: the match fits it, and
            // still has no name of its own to copy into.
            Request::Glob { pattern } if pattern == "proj*/.." => {
                peer.entries(vec![dir_entry("project1/..")])
            }
            Request::Glob { .. } => peer.entries(vec![]),
            Request::Walk { path, .. } if path == "project1" => {
                peer.entries(vec![file_entry("a.txt", PLANTED.len() as u64)])
            }
            Request::Walk { .. } => peer.entries(vec![
                dir_entry(".ssh"),
                file_entry(".ssh/authorized_keys", PLANTED.len() as u64),
                file_entry(".ftpshrc", PLANTED.len() as u64),
            ]),
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });

    let home = home();
    let run = run_client(
        server
            .command(home.path())
            .args(["-c", "get -r 'project*'"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("..") && run.stderr.contains("project*"),
        "the refusal names the result and the pattern: {}",
        run.stderr
    );
    assert_home_untouched(home.path());
    assert_eq!(tree(home.path()), ["project1/", "project1/a.txt"]);

    let home = self::home();
    let run = run_client(
        server
            .command(home.path())
            .args(["-c", "get -r 'proj*/..'"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("name of its own"), "{}", run.stderr);
    assert_home_untouched(home.path());
    assert_eq!(tree(home.path()), Vec::<String>::new());

    let home = self::home();
    let run = run_client(
        server.command(home.path()).args(["-c", "mget '*.txt'"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_home_untouched(home.path());
    assert_eq!(tree(home.path()), ["report.txt"]);
    for refused in [".bashrc", ".ftpshrc", "notes.md", "sub/x.txt", "/x.txt"] {
        assert!(
            run.stderr.contains(refused),
            "{refused} is named: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("evil\\e]0;pwned\\x07.md"),
        "{}",
        run.stderr
    );
    assert_no_raw_escape(&run.stderr);

    // Nothing refused was even asked for.
    let asked = got(&server.requests());
    for never in [
        ".bashrc",
        ".ftpshrc",
        "notes.md",
        "/x.txt",
        "..",
        "../.ftpshrc",
    ] {
        assert!(
            !asked.iter().any(|p| p == never),
            "{never} was requested: {asked:?}"
        );
    }
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| matches!(r, Request::Walk { path, .. } if path == "..")),
        "the walk of .. was requested"
    );
}

#[test]
fn walked_paths_stay_beneath_the_destination() {
    let n = PLANTED.len() as u64;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Stat { path } if path == "project" => {
                peer.send(Reply::Entries(vec![dir_entry("project")]))
            }
            Request::Walk { .. } => peer.entries(vec![
                file_entry("../escape.txt", n),
                file_entry("/abs.txt", n),
                file_entry("a//b.txt", n),
                file_entry("./dot.txt", n),
                file_entry("sub/../../up.txt", n),
                file_entry("", n),
                file_entry("ok.txt", n),
                dir_entry("x.ftpsh-part"),
                file_entry("x.ftpsh-part/z.txt", n),
                file_entry("y.txt.ftpsh-part", n),
                dir_entry("sub"),
                file_entry("sub/y.txt", n),
            ]),
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    std::fs::create_dir(home.path().join("dest")).unwrap();
    let run = run_client(
        server
            .command(home.path())
            .args(["-c", "get -r project dest"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_home_untouched(home.path());
    assert_eq!(
        tree(home.path()),
        [
            "dest/",
            "dest/project/",
            "dest/project/ok.txt",
            "dest/project/sub/",
            "dest/project/sub/y.txt",
        ]
    );
    assert!(run.stderr.contains("x.ftpsh-part"), "{}", run.stderr);
    let asked = got(&server.requests());
    assert_eq!(asked, ["project/ok.txt", "project/sub/y.txt"]);
}

/// `size` announced, `sent` bytes sent, and the digest of the announced part.
fn oversized(peer: &mut Peer, size: usize, sent: &[u8]) {
    peer.send(Reply::FileStart {
        size: size as u64,
        offset: 0,
        mode: 0o644,
        mtime: 0,
    });
    for chunk in sent.chunks(size.max(1)) {
        peer.send(Reply::Data(chunk));
    }
    peer.send(Reply::FileEnd {
        md5: md5(&sent[..size]),
    });
}

#[test]
fn batch_downloads_refuse_bytes_past_the_announced_size() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Glob { .. } => peer.entries(vec![
                file_entry("a.txt", 12),
                file_entry("b.txt", 12),
                file_entry("c.txt", 12),
            ]),
            Request::Get { path, .. } if path == "b.txt" => {
                oversized(peer, 12, b"twelve bytes and twenty-four more bytes.")
            }
            Request::Get { .. } => peer.file(b"twelve bytes"),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "mget '*.txt'"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        home.path().join("b.txt").symlink_metadata().is_err(),
        "b.txt was installed: {:?}",
        std::fs::read(home.path().join("b.txt"))
    );
    for path in tree(home.path()) {
        let len = std::fs::metadata(home.path().join(&path)).unwrap().len();
        assert!(path.ends_with('/') || len <= 12, "{path} holds {len} bytes");
    }
    assert!(
        run.stderr.contains("more than") && run.stderr.contains("announced"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_endless_download_writes_no_more_than_announced() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Get { .. } => {
                peer.send(Reply::FileStart {
                    size: 12,
                    offset: 0,
                    mode: 0o644,
                    mtime: 0,
                });
                let chunk = vec![b'x'; 256 * 1024];
                for _ in 0..64 {
                    if !peer.alive() {
                        return;
                    }
                    peer.send(Reply::Data(&chunk));
                    peer.flush();
                }
                peer.send(Reply::FileEnd {
                    md5: md5(&chunk[..12]),
                });
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "get big.bin"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(home.path().join("big.bin").symlink_metadata().is_err());
    for path in tree(home.path()) {
        let len = std::fs::metadata(home.path().join(&path)).unwrap().len();
        assert!(len <= 12, "{path} holds {len} bytes");
    }
    assert!(run.stderr.contains("announced"), "{}", run.stderr);
}

#[test]
fn a_huge_listing_is_cut_off_with_bounded_memory() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            // Endless, as far as the client can tell: millions of entries,
            // sent until it stops reading.
            Request::List { .. } => {
                let mut sent = 0u64;
                while peer.alive() && sent < 5_000_000 {
                    let batch: Vec<_> = (sent..sent + 20_000)
                        .map(|i| file_entry(&format!("f{i:09}"), i))
                        .collect();
                    sent += batch.len() as u64;
                    peer.send(Reply::Entries(batch));
                }
                peer.ok();
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let mut cmd = server.command(home.path());
    cmd.args(["-c", "ls"]);
    let run = run_client(&mut cmd, Duration::from_secs(120));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "a cut-off listing prints nothing");
    assert!(
        run.stderr.contains("entries") && run.stderr.contains("limit"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.max_rss < 200 << 20,
        "the client grew to {} MiB",
        run.max_rss >> 20
    );
}

#[test]
fn a_silent_server_ends_within_the_deadline() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            // A download that starts, then nothing more.
            Request::Get { .. } => {
                peer.send(Reply::FileStart {
                    size: 100,
                    offset: 0,
                    mode: 0o644,
                    mtime: 0,
                });
                peer.send(Reply::Data(b"ten bytes."));
                peer.hang();
            }
            _ => peer.hang(),
        }
    });
    for script in ["echo hi", "get f"] {
        let home = home();
        let run = run_client(
            server
                .command(home.path())
                .args(["--timeout", "1", "-c", script]),
            EVENT,
        );
        assert_eq!(run.code, Some(1), "{script}: {}", run.stderr);
        assert!(
            run.elapsed < Duration::from_secs(15),
            "{script}: took {:?}",
            run.elapsed
        );
        assert!(
            run.stderr.contains("no answer from the server") && run.stderr.contains("--timeout"),
            "{script}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{script}: {}", run.stderr);
    }
    // The deadline is also read from the environment.
    let home = home();
    let run = run_client(
        server
            .command(home.path())
            .env("FTPSH_TIMEOUT", "1")
            .args(["-c", "echo hi"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(15), "{:?}", run.elapsed);
}

#[test]
fn an_unsolicited_reply_is_a_protocol_error() {
    // After the first handshake, and after every answer to `echo`: a whole
    // file nobody asked for, sent in the same write as a legitimate message.
    let mut connections = 0;
    let server = Hostile::start(move |peer, event| match event {
        Event::Connected => {
            connections += 1;
            if connections == 1 {
                peer.file(PLANTED);
            }
        }
        Event::Request(Request::Echo { text }) => {
            peer.text(&text);
            peer.file(PLANTED);
        }
        Event::Request(Request::Get { .. }) => peer.error("no such file"),
        Event::Request(_) => peer.error("not scripted"),
    });
    for script in ["get zz", "echo hi; get zz"] {
        let home = home();
        let run = run_client(server.command(home.path()).args(["-c", script]), EVENT);
        assert_eq!(run.code, Some(1), "{script}: {}", run.stderr);
        assert_eq!(tree(home.path()), Vec::<String>::new(), "{script}");
        assert!(
            run.stderr.contains("protocol error") && run.stderr.contains("nobody asked for"),
            "{script}: {}",
            run.stderr
        );
    }
}

/// Runs `cmd` with its stdout on a pseudo-terminal; returns how it ended and
/// what it printed there.
fn run_on_terminal(mut cmd: std::process::Command) -> (Run, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the ints we own.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are ours alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut out = Vec::new();
        // EIO once no one has the other side open any more.
        let _ = master.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    cmd.stdout(std::fs::File::from(slave));
    let run = run_client_own_stdout(&mut cmd, EVENT);
    // The Command keeps our copy of the terminal's other side until dropped.
    drop(cmd);
    (run, reader.join().unwrap())
}

#[test]
fn server_text_reaches_a_terminal_escaped() {
    const NAME: &str = "x\x1b[2Jy";
    const CONTENT: &[u8] = b"already here";
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Echo { .. } => peer.text("hi\x1b[31mred\x1b]0;title\x07"),
            Request::Glob { .. } => peer.entries(vec![file_entry(NAME, CONTENT.len() as u64)]),
            Request::Stat { .. } => {
                peer.send(Reply::Entries(vec![file_entry(NAME, CONTENT.len() as u64)]))
            }
            Request::Md5 { .. } => peer.send(Reply::FileEnd { md5: md5(CONTENT) }),
            Request::Cd { .. } => peer.error("no such directory: \x1b[2J\x1b]0;x\x07"),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    std::fs::write(home.path().join(NAME), CONTENT).unwrap();
    let mut cmd = server.command(home.path());
    cmd.args(["-c", "echo x; get -c 'x*'; -cd somewhere"]);
    let (run, out) = run_on_terminal(cmd);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let err = run.stderr;
    assert!(out.contains("hi\\e[31mred\\e]0;title\\x07"), "{out:?}");
    assert!(out.contains("x\\e[2Jy: already complete"), "{out:?}");
    assert_no_raw_escape(&out);
    // Messages are escaped wherever they go.
    assert!(
        err.contains("no such directory: \\e[2J\\e]0;x\\x07"),
        "{err:?}"
    );
    assert_no_raw_escape(&err);
}

/// A server that sends a link in a tree and then a file "inside" it (as
/// scp's CVE-2019-6111 and friends): the link arrives as a link, and nothing
/// is written through it.
#[test]
fn a_link_sent_in_a_tree_is_never_written_through() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let n = PLANTED.len() as u64;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Stat { path } if path == "project" => {
                peer.send(Reply::Entries(vec![dir_entry("project")]))
            }
            Request::Walk { .. } => {
                let mut link = entry("sub", ftpsh_core::EntryKind::Symlink, 0);
                link.target = target.clone();
                peer.entries(vec![
                    link,
                    dir_entry("sub"),
                    file_entry("sub/authorized_keys", n),
                ])
            }
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let run = run_client(
        server.command(home.path()).args(["-c", "get -r project"]),
        EVENT,
    );
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert_home_untouched(home.path());
    assert!(
        tree(outside.path()).is_empty(),
        "written through the link: {:?}",
        tree(outside.path())
    );
}

/// A link the user already has in the destination (or an earlier copy made)
/// is not followed by a tree copy either.
#[test]
fn a_link_already_in_the_destination_is_not_followed_by_a_tree_copy() {
    let outside = tempfile::tempdir().unwrap();
    let n = PLANTED.len() as u64;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Stat { path } if path == "project" => {
                peer.send(Reply::Entries(vec![dir_entry("project")]))
            }
            Request::Walk { .. } => peer.entries(vec![
                dir_entry("sub"),
                file_entry("sub/authorized_keys", n),
                file_entry("top.txt", n),
            ]),
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    std::fs::create_dir_all(home.path().join("dl/project")).unwrap();
    std::os::unix::fs::symlink(outside.path(), home.path().join("dl/project/sub")).unwrap();
    let run = run_client(
        server
            .command(home.path())
            .args(["-c", "lcd dl; get -r project"]),
        EVENT,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        tree(outside.path()).is_empty(),
        "written through the link: {:?}",
        tree(outside.path())
    );
    assert!(run.stderr.contains("sub"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(home.path().join("dl/project/top.txt")).unwrap(),
        PLANTED,
        "the rest of the tree still arrives"
    );
}

/// Each answer is capped, and so is one command: many huge trees behind one
/// pattern stop the command instead of growing the client without bound.
#[test]
fn many_huge_trees_behind_one_pattern_are_cut_off_with_bounded_memory() {
    let server = Hostile::start(|peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Glob { .. } => {
                peer.entries((1..=4).map(|i| dir_entry(&format!("p{i}"))).collect())
            }
            Request::Walk { .. } => {
                for chunk in 0..20u64 {
                    let batch: Vec<_> = (chunk * 20_000..(chunk + 1) * 20_000)
                        .map(|i| file_entry(&format!("f{i:09}"), 1))
                        .collect();
                    peer.send(Reply::Entries(batch));
                }
                peer.ok();
            }
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    let mut cmd = server.command(home.path());
    cmd.args(["-c", "get -r 'p*'"]);
    let run = run_client(&mut cmd, Duration::from_secs(120));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("more than 1000000 entries"),
        "{}",
        run.stderr
    );
    assert!(got(&server.requests()).is_empty(), "nothing was fetched");
    assert!(
        run.max_rss < 600 << 20,
        "the client grew to {} MiB",
        run.max_rss >> 20
    );
}

/// A tree whose link is followed by links and files "inside" it: nothing
/// is made, replaced or removed outside the destination, by `get -r` or by
/// `mirror`, and a mirror's server names stay beneath the target.
#[test]
fn links_and_names_of_a_hostile_tree_never_reach_outside_get_r_or_mirror() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), b"mine").unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let n = PLANTED.len() as u64;
    let server = Hostile::start(move |peer, event| {
        let Event::Request(request) = event else {
            return;
        };
        match request {
            Request::Stat { path } if path == "t" => {
                peer.send(Reply::Entries(vec![dir_entry("t")]))
            }
            Request::Walk { .. } => peer.entries(vec![
                link_entry("x", &target),
                link_entry("x/victim", "/etc/hostname"),
                link_entry("x/newlink", "/etc/hostname"),
                file_entry("x/y/planted", n),
                file_entry("../escape.txt", n),
                link_entry("../../planted", "/etc/hostname"),
                file_entry("ok.txt", n),
            ]),
            Request::Get { .. } => peer.file(PLANTED),
            _ => peer.error("not scripted"),
        }
    });
    let home = home();
    for cmd in ["get -r t dl1", "mirror t dl2/t", "mirror --delete t dl2/t"] {
        let run = run_client(server.command(home.path()).args(["-c", cmd]), EVENT);
        assert_eq!(run.code, Some(1), "{cmd}: {}", run.stderr);
        assert_eq!(
            tree(outside.path()),
            ["victim"],
            "{cmd} reached outside: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(outside.path().join("victim")).unwrap(),
            b"mine",
            "{cmd}"
        );
        assert_home_untouched(home.path());
    }
    let made = tree(home.path());
    assert!(
        !made
            .iter()
            .any(|p| p.contains("escape") || p.ends_with("planted")),
        "{made:?}"
    );
    assert!(made.contains(&"dl1/ok.txt".to_string()), "{made:?}");
    assert!(made.contains(&"dl2/t/ok.txt".to_string()), "{made:?}");
}

/// The client reconnects before a request when it finds its connection
/// closed (4cf1b8b), and restoring the remote directory on the new connection
/// is itself such a request: a server that accepts, authenticates and closes
/// at once (hostile, or a restarting one) must cost one more connection and an
/// error, not a reconnection inside a reconnection without end (each level a
/// new TCP connection and handshake, until the client's stack overflows or
/// the deadline kills it).
#[test]
fn a_server_that_closes_every_new_connection_is_not_reconnected_to_forever() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    let server = Hostile::start(move |peer, event| match event {
        Event::Connected => {
            // The first connection serves; every later one closes at once.
            if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                peer.close();
            }
        }
        Event::Request(Request::Cd { .. }) => {
            peer.text("/d");
            // A restart right after the reply.
            peer.close();
        }
        Event::Request(Request::Pwd) => peer.text("/d"),
        Event::Request(_) => peer.error("not scripted"),
    });
    let home = home();
    let run = run_client(
        server
            .command(home.path())
            .args(["-c", "cd d; ! sleep 1; pwd"]),
        Duration::from_secs(20),
    );
    let made = connections.load(Ordering::SeqCst);
    assert!(
        made <= 4,
        "{made} connections for one command (exit {:?}): {}",
        run.code,
        run.stderr.chars().take(2000).collect::<String>()
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}
