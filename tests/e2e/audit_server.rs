//! A hostile client and a racing local user against the real server: what
//! an audit of the server found, each as the attack that worked before its
//! fix.

use crate::common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Output, Stdio};

use ftpsh_core::protocol::{FrameReader, Reply, Request};

/// Runs `script` through the real client against `server`, from `home`.
fn run(server: &Server, home: &Path, script: &str) -> Output {
    server
        .client(home)
        .write_stdin(format!("{script}\n"))
        .output()
        .unwrap()
}

/// `ln -s` refuses a link whose target leads out of the root; `rename`
/// must not make one either, by moving a relative link (or a directory
/// holding one) to where the same target climbs out. The server itself never
/// follows it out, but every other program on the host that opens by path
/// would.
#[test]
fn rename_does_not_move_a_relative_link_to_where_it_leads_outside() {
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("a/b")).unwrap();
    fs::write(root.path().join("x"), "inside").unwrap();
    let server = Server::start(root.path());
    // Both links lead to /x where they are made: ln -s takes them.
    let out = run(&server, home.path(), "ln -s ../x a/l\nln -s ../../x a/b/l");
    assert!(out.status.success(), "{}", stderr_of(&out));

    // The link itself, moved up one level: `../x` from / leads out.
    let out = run(&server, home.path(), "rename a/l l");
    assert!(!out.status.success(), "the link was moved out of reach");
    let err = stderr_of(&out);
    assert!(err.contains("would lead outside the served root"), "{err}");
    assert!(fs::symlink_metadata(root.path().join("l")).is_err());
    assert!(fs::symlink_metadata(root.path().join("a/l")).is_ok());

    // A directory holding one, moved up: `/b/l -> ../../x` leads out.
    let out = run(&server, home.path(), "rename a/b b");
    assert!(!out.status.success(), "the directory was moved");
    let err = stderr_of(&out);
    assert!(
        err.contains("/b/l") && err.contains("would lead outside the served root"),
        "{err}"
    );
    assert!(fs::symlink_metadata(root.path().join("b")).is_err());
    assert!(root.path().join("a/b/l").exists());

    // Moves that keep the links inside are made: deeper, or renamed in place.
    let out = run(
        &server,
        home.path(),
        "mkdir c\nrename a/l c/l\nrename a/b a/b2\nmkdir a/d\nrename a/b2 a/d/b",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        fs::read_link(root.path().join("c/l")).unwrap(),
        Path::new("../x")
    );
    assert_eq!(
        fs::read_to_string(root.path().join("c/l")).unwrap(),
        "inside"
    );
    assert!(fs::symlink_metadata(root.path().join("a/d/b/l")).is_ok());
}

/// With the server's descriptors taken by a hostile peer, an honest client
/// still uploads `mine.txt` (from `home`) and lists `dir`.
fn assert_an_honest_client_is_served(server: &Server, root: &Path, home: &Path, dir: &str) {
    let out = run(server, home, &format!("put mine.txt mine.txt\nls {dir}"));
    assert!(
        out.status.success(),
        "an honest client failed with {} descriptors open: {}\nserver log: {}",
        open_descriptors(server),
        stderr_of(&out),
        server.log_text()
    );
    assert_eq!(
        fs::read_to_string(root.join("mine.txt")).unwrap(),
        "an honest upload"
    );
}

/// The next reply, as its debug text.
fn next_reply(frames: &mut FrameReader, sock: &mut TcpStream) -> String {
    let frame = frames.read(sock).expect("a reply frame");
    format!("{:?}", Reply::decode(frame.kind, frame.payload).unwrap())
}

/// `strace` attached to every thread of `pid`, logging the system calls
/// named in `calls` to `log`; stopped (and so detached) on drop. `None`
/// where `strace` cannot attach here.
struct Traced(std::process::Child);

impl Traced {
    fn attach(pid: u32, calls: &str, log: &Path) -> Option<Traced> {
        let mut child = std::process::Command::new("strace")
            .args(["-f", "-e", &format!("trace={calls}"), "-o"])
            .arg(log)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // strace says on stderr when it has attached (or why it cannot).
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("attached") => {
                std::thread::spawn(move || lines.for_each(drop));
                Some(Traced(child))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Detaches, and returns the log once strace has written it whole.
    fn finish(mut self, log: &Path) -> String {
        // SIGTERM: strace detaches from the server, which goes on.
        let _ = std::process::Command::new("kill")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
        fs::read_to_string(log).unwrap_or_default()
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.wait();
        }
    }
}

/// A batch of uploads is made durable with one `syncfs`, which writes back
/// and waits for every dirty page of the whole file system, other
/// processes' too. A peer streaming batches of two tiny files made the server
/// do that for every two files; such batches are fsynced file by file, as
/// single uploads are, and a full slice still takes one `syncfs`.
#[test]
fn batches_of_two_files_do_not_sync_the_whole_file_system() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let mut sock = raw_connection(&server, true);
    let mut frames = FrameReader::new();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("strace.log");
    let Some(traced) = Traced::attach(server.child.id(), "syncfs,fsync", &log) else {
        eprintln!("skipped: strace cannot attach to the server here");
        return;
    };
    for batch in 0..3 {
        stream_put(
            &mut sock,
            &format!("a{batch}"),
            b"first",
            digest(b"first"),
            true,
        );
        stream_put(
            &mut sock,
            &format!("b{batch}"),
            b"second",
            digest(b"second"),
            false,
        );
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
    }
    let small = traced.finish(&log);
    let Some(traced) = Traced::attach(server.child.id(), "syncfs,fsync", &log) else {
        panic!("strace attached once, not twice");
    };
    for i in 0..64 {
        stream_put(&mut sock, &format!("s{i}"), b"x", digest(b"x"), i < 63);
    }
    for i in 0..64 {
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok", "reply {i}");
    }
    let full = traced.finish(&log);
    let count = |log: &str, call: &str| log.lines().filter(|l| l.contains(call)).count();
    assert_eq!(count(&small, "syncfs("), 0, "{small}");
    // Each of the six files, and the batch's directory each time.
    assert!(count(&small, "fsync(") >= 6, "{small}");
    for batch in 0..3 {
        assert_eq!(
            fs::read(root.path().join(format!("b{batch}"))).unwrap(),
            b"second"
        );
    }
    // A full slice: one syncfs where the file system's is trusted, else
    // an fsync for each file.
    assert!(
        count(&full, "syncfs(") == 1 || count(&full, "fsync(") >= 64,
        "{full}"
    );
    assert!(root.path().join("s63").exists());
}

/// A server whose process may hold `limit` descriptors (soft and hard).
fn with_descriptor_limit(root: &Path, limit: u32) -> ServerBuilder {
    ServerBuilder::new(root)
        .wrapped(&[
            "sh",
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
        ])
        .arg("--stall-timeout")
        .arg("600")
}

/// The descriptors the server process holds now.
fn open_descriptors(server: &Server) -> usize {
    fs::read_dir(format!("/proc/{}/fd", server.child.id())).map_or(0, |d| d.count())
}

/// An `Ok` reply's frame.
const OK_FRAME: [u8; 5] = [0x80, 0, 0, 0, 0];

/// What `sock` has received so far (looked at, not read), if under 64 KiB.
fn received(sock: &TcpStream) -> Option<Vec<u8>> {
    const MAX: usize = 1 << 16;
    let mut buf = vec![0u8; MAX];
    sock.set_nonblocking(true).unwrap();
    let n = sock.peek(&mut buf).unwrap_or(0);
    sock.set_nonblocking(false).unwrap();
    buf.truncate(n);
    (n < MAX).then_some(buf)
}

/// Whether everything `sock` has received so far ends with the `Ok` that
/// ends a reply, and fits in 64 KiB.
fn received_ends_with_ok(sock: &TcpStream) -> bool {
    received(sock).is_some_and(|b| b.ends_with(&OK_FRAME))
}

/// Each level of a walk holds its directory's handle while the walk is
/// below it, and a walk waits, handles held, while its peer does not read
/// (up to the stall timeout). Every session may do so at once, and the
/// descriptors are the process's: one peer walking a deep tree it had made,
/// and then not reading, used them all up, and nobody could connect, list or
/// upload. Walks now share a budget of half the process's descriptors.
#[test]
fn a_deep_walk_left_unread_does_not_use_up_the_servers_descriptors() {
    const LIMIT: usize = 256;
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join("mine.txt"), "an honest upload").unwrap();
    let server = with_descriptor_limit(root.path(), LIMIT as u32).start();
    let mut sock = raw_connection(&server, true);
    // A tree whose walk takes all but three of the descriptors left (its
    // deepest step needs two more for a moment; an upload needs five), and
    // at the bottom more entries than the sockets hold: there the walk
    // waits for the peer.
    let left = LIMIT - open_descriptors(&server);
    let mut deep = root.path().join("t");
    for _ in 0..left - 4 {
        deep.push("0");
    }
    fs::create_dir_all(&deep).unwrap();
    // Made through a handle on the deepest directory: each path from the
    // top would be looked up through all its levels again.
    let handle = fs::File::open(&deep).unwrap();
    let bottom = format!("/proc/self/fd/{}", handle.as_raw_fd());
    for i in 0..20_000 {
        fs::write(format!("{bottom}/{i:0>200}"), "").unwrap();
    }
    drop(handle);
    Request::Walk {
        path: "t".into(),
        follow: false,
    }
    .write_to(&mut sock)
    .unwrap();
    // The walk holds its handles at the bottom, waiting for the peer to
    // read, or (with a budget) has ended at the depth it may go to.
    let waiting = wait_until(std::time::Duration::from_secs(60), || {
        open_descriptors(&server) >= LIMIT - 4 || received_ends_with_ok(&sock)
    });
    assert!(
        waiting,
        "{} open; log: {}",
        open_descriptors(&server),
        server.log_text()
    );
    assert_an_honest_client_is_served(&server, root.path(), home.path(), "t/0");
    // What the walk could not go into is named.
    let mut frames = FrameReader::new();
    let mut problems = Vec::new();
    loop {
        let frame = frames.read(&mut sock).expect("a reply frame");
        match Reply::decode(frame.kind, frame.payload).unwrap() {
            Reply::Entries(entries) => problems.extend(
                entries
                    .into_iter()
                    .filter(|e| e.is_problem())
                    .map(|e| e.name),
            ),
            Reply::Ok => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        problems.len() == 1 && problems[0].contains("too many directories open"),
        "{problems:?}"
    );
}

/// The `Ok` replies `sock` has received so far (looked at, not read), if
/// that is all it has received.
fn received_oks(sock: &TcpStream) -> Option<usize> {
    let buf = received(sock)?;
    let all_ok = buf.chunks(5).all(|c| c == OK_FRAME);
    (buf.len().is_multiple_of(5) && all_ok).then_some(buf.len() / 5)
}

/// Each upload held in a batch keeps its partial file and its directory's
/// handle open until the batch ends, which a peer can put off for the stall
/// timeout: a session holds up to 126 descriptors so, and every session may
/// at once. Two peers holding batches into many directories used up the
/// process's descriptors, and nobody could connect or upload. Held uploads
/// now share the budget walks have: a batch that would pass it ends at once.
#[test]
fn batches_held_open_by_two_peers_do_not_use_up_the_servers_descriptors() {
    const LIMIT: usize = 256;
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    for d in 0..63 {
        fs::create_dir(root.path().join(format!("d{d}"))).unwrap();
        fs::create_dir(root.path().join(format!("e{d}"))).unwrap();
    }
    fs::write(home.path().join("mine.txt"), "an honest upload").unwrap();
    let server = with_descriptor_limit(root.path(), LIMIT as u32).start();
    // The first peer holds 63 uploads into 63 directories: 126 descriptors.
    let mut first = raw_connection(&server, true);
    let before = open_descriptors(&server);
    for d in 0..63 {
        stream_put(
            &mut first,
            &format!("d{d}/held"),
            b"held",
            digest(b"held"),
            true,
        );
    }
    let held = wait_until(std::time::Duration::from_secs(60), || {
        open_descriptors(&server) >= before + 126
    });
    assert!(held, "{} open", open_descriptors(&server));
    // The second holds as many as fit in what is left but one or two (each
    // upload needs one more for a moment).
    let mut second = raw_connection(&server, true);
    let n = (LIMIT - open_descriptors(&server) - 1) / 2;
    let target = open_descriptors(&server) + 2 * n;
    for e in 0..n {
        stream_put(
            &mut second,
            &format!("e{e}/held"),
            b"held",
            digest(b"held"),
            true,
        );
    }
    // Held (no reply yet, the descriptors taken), or answered at once
    // because the budget ran out.
    // (Within the budget, every other one is held again: the last may be.)
    let settled = wait_until(std::time::Duration::from_secs(60), || {
        open_descriptors(&server) >= target || received_oks(&second).is_some_and(|k| k + 1 >= n)
    });
    assert!(
        settled,
        "{} open, {:?} replies",
        open_descriptors(&server),
        received_oks(&second)
    );
    assert_an_honest_client_is_served(&server, root.path(), home.path(), "d0");
    drop(first);
}

/// Any client may make a directory named like another name's resumable
/// partial (`mkdir x.ftpsh-part`). That must not lock everyone out of
/// uploading `x`: the upload goes through a private partial instead, and
/// only `put -c`, which needs that name, is refused, saying why.
#[test]
fn a_directory_at_the_partial_name_does_not_block_uploads_of_the_file() {
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("x.ftpsh-part")).unwrap();
    fs::write(home.path().join("x"), "the upload").unwrap();
    let server = Server::start(root.path());

    let out = run(&server, home.path(), "put x");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(fs::read(root.path().join("x")).unwrap(), b"the upload");
    assert!(root.path().join("x.ftpsh-part").is_dir());

    // (A new version: `put -c` of the same one is skipped as already there.)
    fs::write(home.path().join("x"), "a second version").unwrap();
    let out = run(&server, home.path(), "put -c x");
    assert!(!out.status.success(), "put -c went through a directory");
    let err = stderr_of(&out);
    assert!(
        err.contains("x.ftpsh-part) is a directory") && err.contains("without -c"),
        "{err}"
    );
    // Nothing but the upload and the directory: no private partial left.
    let mut names: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["x", "x.ftpsh-part"]);
}
