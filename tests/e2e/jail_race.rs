//! The jail against races (issue 11, item 5), end to end: the real
//! `ftpsh-server` serves a root in which a local process swaps a directory for
//! a symlink to an outside directory, over and over (`renameat2` with
//! `RENAME_EXCHANGE`), while real `ftpsh` clients run `get`, `get -r`, `md5`,
//! `put`, `mkdir -p` and `rm -r` on paths under it. Afterwards nothing outside
//! the root was read (the outside files hold a marker that must never arrive),
//! written (no new entry, no changed content, mode or time) or deleted (the
//! outside tree is intact).
//!
//! A server that checks a path and then opens, renames or removes it by its
//! name loses this race within a second; one that resolves every step beneath a
//! handle on the root never does. Bounded: the swap runs for `RACE` only.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::common::*;

const MARKER: &[u8] = b"OUTSIDE-MARKER: this file is outside the served root";
const INSIDE: &[u8] = b"inside the root";
/// How long the clients race the swap.
const RACE: Duration = Duration::from_millis(2000);

/// Every entry below `dir` (itself included): path, contents, mode, mtime and
/// ctime in ns, so that a file created and removed again, a rewrite or a
/// chmod out there would all show.
type Seen = (PathBuf, Vec<u8>, u32, (i64, i64), (i64, i64));

fn snapshot(dir: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let data = if m.is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.push((
            p,
            data,
            m.mode(),
            (m.mtime(), m.mtime_nsec()),
            (m.ctime(), m.ctime_nsec()),
        ));
    }
    out.sort();
    out
}

/// Every regular file below `dir`, with its contents.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let data = fs::read(&p).unwrap();
                out.push((p, data));
            }
        }
    }
    out
}

/// One long-running `ftpsh` fed commands through its stdin, a few at a time:
/// each batch ends with an `echo` whose line on stdout says the batch is done,
/// so the commands never run far behind the race.
struct Driver {
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    child: std::process::Child,
    /// Everything the client printed on stdout.
    seen: Vec<String>,
    batches: u64,
}

impl Driver {
    fn start(server: &Server, local: &Path) -> Driver {
        let mut child = client_process(server, local)
            .arg("--keep-going")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ftpsh");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Driver {
            stdin,
            lines,
            child,
            seen: Vec::new(),
            batches: 0,
        }
    }

    /// Runs `commands` and waits until the client has done them.
    fn run(&mut self, commands: &[String]) {
        self.batches += 1;
        let tick = format!("batch-done-{}", self.batches);
        let mut text = commands.join("\n");
        text.push_str(&format!("\necho {tick}\n"));
        self.stdin.write_all(text.as_bytes()).expect("client alive");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("the client answers its batch");
            if line == tick {
                return;
            }
            self.seen.push(line);
        }
    }

    fn finish(mut self) -> Vec<String> {
        drop(self.stdin);
        let _ = self.child.wait();
        self.seen
    }
}

#[test]
fn a_directory_swapped_for_a_link_out_never_leads_outside() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let outside = top.path().join("outside");
    // Inside: d/f, d/sub/g, d/t/x/f. Outside, under the same names, markers.
    for base in [&root.join("d"), &outside] {
        let content = if base == &outside { MARKER } else { INSIDE };
        fs::create_dir_all(base.join("sub")).unwrap();
        fs::create_dir_all(base.join("t/x")).unwrap();
        for f in ["f", "sub/g", "t/x/f"] {
            fs::write(base.join(f), content).unwrap();
        }
    }
    symlink(&outside, root.join("swap")).unwrap();
    let before = snapshot(&outside);
    let marker_md5 = md5_hex(MARKER);

    let server = Server::start(&root);
    let locals: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for l in &locals {
        fs::write(l.path().join("up.bin"), b"uploaded by a client").unwrap();
    }

    // The attacker: d and the link trade places as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (d, swap) = (root.join("d"), root.join("swap"));
        let (stop, swaps) = (stop.clone(), swaps.clone());
        thread::spawn(move || {
            while !stop.load(Relaxed) {
                if renameat_with(CWD, &d, CWD, &swap, RenameFlags::EXCHANGE).is_ok() {
                    swaps.fetch_add(1, Relaxed);
                }
            }
            // Leave the real directory at its own name.
            if fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
                renameat_with(CWD, &d, CWD, &swap, RenameFlags::EXCHANGE).unwrap();
            }
        })
    };

    let deadline = Instant::now() + RACE;
    let workers: Vec<_> = locals
        .iter()
        .enumerate()
        .map(|(w, local)| {
            let local = local.path().to_path_buf();
            let mut driver = Driver::start(&server, &local);
            thread::spawn(move || {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let batch: Vec<String> = match w {
                        // Reads: files, a tree, digests.
                        0 => vec![
                            format!("get d/f r{i}"),
                            format!("get d/sub/g g{i}"),
                            "md5 d/f".into(),
                            format!("get -r d/sub tree{i}"),
                        ],
                        // Writes: new files under d.
                        1 => vec![
                            format!("put up.bin d/p{i}"),
                            format!("put up.bin d/sub/q{i}"),
                            "put up.bin d/f".into(),
                        ],
                        // Removals: a tree rebuilt under d, then removed.
                        _ => vec![
                            "mkdir -p d/t/x".into(),
                            "put up.bin d/t/x/f".into(),
                            "rm -r d/t".into(),
                            format!("rm d/p{i}"),
                        ],
                    };
                    driver.run(&batch);
                }
                (i, driver.finish())
            })
        })
        .collect();
    let mut batches = 0;
    let mut printed = Vec::new();
    for w in workers {
        let (n, lines) = w.join().unwrap();
        batches += n;
        printed.extend(lines);
    }
    stop.store(true, Relaxed);
    attacker.join().unwrap();
    let swaps = swaps.load(Relaxed);
    println!("{swaps} swaps, {batches} batches of commands");

    // Nothing outside was read: no file a client received holds the marker,
    // and no digest of it was computed.
    let mut leaked = Vec::new();
    let mut received = 0;
    for l in &locals {
        for (path, data) in files_below(l.path()) {
            if data.windows(MARKER.len()).any(|w| w == MARKER) {
                leaked.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
            received += usize::from(!path.ends_with("up.bin"));
        }
    }
    let digests = printed.iter().filter(|l| l.contains(&marker_md5)).count();
    // Nothing outside was written, created, changed or deleted.
    let after = snapshot(&outside);
    let changed: Vec<_> = before.iter().filter(|e| !after.contains(e)).collect();
    let new: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
    assert!(
        leaked.is_empty() && digests == 0 && changed.is_empty() && new.is_empty(),
        "the server reached outside the root: {} received files hold the outside marker \
         ({leaked:?}), {digests} digests of an outside file; outside, {} entries changed or \
         gone ({:?}) and {} new or changed ({:?})",
        leaked.len(),
        changed.len(),
        changed.iter().map(|e| &e.0).collect::<Vec<_>>(),
        new.len(),
        new.iter().map(|e| &e.0).collect::<Vec<_>>(),
    );
    // The race was really run: many swaps, and reads that went through.
    assert!(swaps > 100, "only {swaps} swaps");
    assert!(batches > 10, "only {batches} batches");
    assert!(received > 0, "no read ever succeeded under the swap");
    assert_serves(&server, locals[0].path());
}
