//! A hostile client and a racing local user against the real server: what
//! an audit of the server found, each as the attack that worked before its
//! fix.

use crate::common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
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

/// Streams one upload of a batch: `Put` without waiting, its data, `PutEnd`
/// with the data's digest.
fn stream_put(sock: &mut TcpStream, path: &str, data: &[u8], more: bool) {
    Request::Put {
        path: path.into(),
        size: data.len() as u64,
        resume: false,
        wait: false,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more,
    }
    .write_to(sock)
    .unwrap();
    if !data.is_empty() {
        Request::Data(data.to_vec()).write_to(sock).unwrap();
    }
    let hex = md5_hex(data);
    let md5 = std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
    Request::PutEnd { md5 }.write_to(sock).unwrap();
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
        stream_put(&mut sock, &format!("a{batch}"), b"first", true);
        stream_put(&mut sock, &format!("b{batch}"), b"second", false);
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
        assert_eq!(next_reply(&mut frames, &mut sock), "Ok");
    }
    let small = traced.finish(&log);
    let Some(traced) = Traced::attach(server.child.id(), "syncfs,fsync", &log) else {
        panic!("strace attached once, not twice");
    };
    for i in 0..64 {
        stream_put(&mut sock, &format!("s{i}"), b"x", i < 63);
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
