#![cfg(target_os = "linux")]
//! The audit's attack, against `Root`: a local process swaps a directory for a
//! symlink to an outside directory, over and over, while the server reads,
//! writes, renames, chmods and removes trees under it.
//!
//! Two swaps run at once:
//! * `root/d` ⇄ `root/swap` (a link to `outside`), exchanged atomically with
//!   `renameat2(RENAME_EXCHANGE)`: every path under `d/` alternates between
//!   the real directory and the outside one. Readers open `d/f` and
//!   `d/sub/g`, a writer creates/renames/unlinks under `d/` and chmods/touches
//!   `d/f`, a remover rebuilds and `remove_tree`s `d/sub`.
//! * `root/e/sub` ⇄ `root/e/sublink` (a link to `outside/sub2`): the swap is
//!   *inside* the tree that a second remover rebuilds and `remove_tree`s
//!   (`e`), so the swap lands in the middle of the removal walk.
//!
//! Afterwards: no read returned the outside marker, and nothing outside
//! changed (entries, contents, modes, and every entry's mtime and ctime, so even
//! a file created and removed again outside, or a chmod, would show).
//!
//! Bounded: each phase runs for `PHASE` (and at most `MAX_ITERS` iterations
//! per thread). A control phase runs the old check-then-open-by-path scheme
//! against the same swap, to show the race window is really hit.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use ftpsh_core::sys::beneath::{describe, is_escape, Resolver, Root};
use rustix::fs::{renameat_with, Mode, OFlags, RenameFlags, CWD};

const MARKER: &[u8] = b"OUTSIDE-MARKER";
const PHASE: Duration = Duration::from_millis(600);
const MAX_ITERS: u64 = 2_000_000;

#[derive(Default)]
struct Counts {
    swaps: AtomicU64,
    swaps_e: AtomicU64,
    reads_ok: AtomicU64,
    reads_refused: AtomicU64,
    reads_other: AtomicU64,
    leaked: AtomicU64,
    writes_ok: AtomicU64,
    writes_refused: AtomicU64,
    meta_ok: AtomicU64,
    trees_removed: AtomicU64,
    trees_refused: AtomicU64,
    trees_e_removed: AtomicU64,
    other_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Counts an error as refused (an escape) or other; anything but the errors a
/// concurrent swap can cause is a test failure.
fn classify(e: &io::Error, refused: &AtomicU64, other: &AtomicU64) {
    if is_escape(e) {
        bump(refused);
    } else {
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::AlreadyExists
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::DirectoryNotEmpty
            | io::ErrorKind::Interrupted => bump(other),
            _ => panic!("unexpected error: {e:?} ({})", describe(e)),
        }
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn setup(relative_link: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    for d in ["d/sub/x/y", "e"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("d/f"), "inside").unwrap();
    fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o644)).unwrap();
    for d in ["sub/x/y", "sub2/x/y"] {
        fs::create_dir_all(outside.join(d)).unwrap();
    }
    for f in ["f", "sub/g", "sub/x/file", "sub2/x/file"] {
        fs::write(outside.join(f), MARKER).unwrap();
        fs::set_permissions(outside.join(f), fs::Permissions::from_mode(0o600)).unwrap();
    }
    if relative_link {
        symlink("../outside", root.join("swap")).unwrap();
        symlink("../../outside/sub2", root.join("e/sublink")).unwrap();
    } else {
        symlink(&outside, root.join("swap")).unwrap();
        symlink(outside.join("sub2"), root.join("e/sublink")).unwrap();
    }
    Setup {
        _tmp: tmp,
        root,
        outside,
    }
}

use std::os::unix::fs::PermissionsExt;

/// Every entry outside: path, contents, mode, mtime and ctime (ns).
/// (path, contents, mode, mtime, mtime ns, ctime, ctime ns)
type Seen = (PathBuf, Vec<u8>, u32, i64, i64, i64, i64);

fn snapshot(dir: &Path) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        out.push((
            d.clone(),
            vec![],
            m.mode(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ));
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                let data = fs::read(&p).unwrap();
                out.push((
                    p,
                    data,
                    m.mode(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn exchange(a: &Path, b: &Path) -> bool {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).is_ok()
}

fn run_phase(resolver: Resolver, relative_link: bool) {
    let s = setup(relative_link);
    let before = snapshot(&s.outside);
    let root = Arc::new(Root::with_resolver(&s.root, resolver).unwrap());
    let c = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + PHASE;
    let started = Instant::now();

    // The attacker: path-based exchanges inside the root.
    let mut attackers = Vec::new();
    {
        let (d, swap) = (s.root.join("d"), s.root.join("swap"));
        let (c, stop) = (c.clone(), stop.clone());
        attackers.push(thread::spawn(move || {
            for _ in 0..MAX_ITERS * 10 {
                if stop.load(Relaxed) {
                    break;
                }
                if exchange(&d, &swap) {
                    bump(&c.swaps);
                }
            }
        }));
    }
    {
        let (sub, link) = (s.root.join("e/sub"), s.root.join("e/sublink"));
        let (c, stop) = (c.clone(), stop.clone());
        attackers.push(thread::spawn(move || {
            for _ in 0..MAX_ITERS * 10 {
                if stop.load(Relaxed) {
                    break;
                }
                if exchange(&sub, &link) {
                    bump(&c.swaps_e);
                } else {
                    thread::yield_now(); // e is being rebuilt
                }
            }
        }));
    }

    let mut workers = Vec::new();
    // Reader.
    {
        let (root, c) = (root.clone(), c.clone());
        workers.push(thread::spawn(move || {
            let mut buf = Vec::new();
            for i in 0..MAX_ITERS {
                if Instant::now() >= deadline {
                    break;
                }
                let p = if i % 2 == 0 { "d/f" } else { "d/sub/g" };
                match root.open_file(p, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
                    Ok(mut f) => {
                        buf.clear();
                        f.read_to_end(&mut buf).unwrap();
                        if buf == MARKER {
                            bump(&c.leaked);
                        } else {
                            bump(&c.reads_ok);
                        }
                    }
                    Err(e) => classify(&e, &c.reads_refused, &c.reads_other),
                }
            }
        }));
    }
    // Writer: create, write, rename, unlink under d/; chmod and touch d/f.
    {
        let (root, c) = (root.clone(), c.clone());
        workers.push(thread::spawn(move || {
            for i in 0..MAX_ITERS {
                if Instant::now() >= deadline {
                    break;
                }
                let (w, r) = (format!("d/w{i}"), format!("d/r{i}"));
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
                match root.open_file(&w, flags, Mode::from_raw_mode(0o644)) {
                    Ok(mut f) => {
                        f.write_all(b"written").unwrap();
                        bump(&c.writes_ok);
                    }
                    Err(e) => classify(&e, &c.writes_refused, &c.other_errors),
                }
                for res in [
                    root.rename(&w, &r),
                    root.unlink(&r),
                    root.unlink(&w),
                    root.chmod("d/f", Mode::from_raw_mode(0o644)),
                    root.set_times("d/f", None, Some(UNIX_EPOCH + Duration::from_secs(1))),
                    root.mkdir("d/newdir", Mode::from_raw_mode(0o755)),
                    root.rmdir("d/newdir"),
                ] {
                    match res {
                        Ok(()) => bump(&c.meta_ok),
                        Err(e) => classify(&e, &c.writes_refused, &c.other_errors),
                    }
                }
            }
        }));
    }
    // Remover of d/sub (d swapping above it).
    {
        let (root, c) = (root.clone(), c.clone());
        workers.push(thread::spawn(move || {
            for _ in 0..MAX_ITERS {
                if Instant::now() >= deadline {
                    break;
                }
                let built = root
                    .mkdir_all("d/sub/x/y", Mode::from_raw_mode(0o755))
                    .and_then(|()| {
                        root.open(
                            "d/sub/x/file",
                            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW,
                            Mode::from_raw_mode(0o644),
                        )
                    });
                if let Err(e) = built {
                    classify(&e, &c.trees_refused, &c.other_errors);
                    continue;
                }
                match root.remove_tree("d/sub") {
                    Ok(()) => bump(&c.trees_removed),
                    Err(e) => classify(&e, &c.trees_refused, &c.other_errors),
                }
            }
        }));
    }
    // Remover of e (e/sub swapping inside it, mid-walk).
    {
        let (root, c) = (root.clone(), c.clone());
        let outside_sub2 = if relative_link {
            PathBuf::from("../../outside/sub2")
        } else {
            s.outside.join("sub2")
        };
        workers.push(thread::spawn(move || {
            for _ in 0..MAX_ITERS {
                if Instant::now() >= deadline {
                    break;
                }
                let _ = root.mkdir_all("e/sub/x/y", Mode::from_raw_mode(0o755));
                let _ = root.open(
                    "e/sub/x/file",
                    OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o644),
                );
                let _ = root.symlink(outside_sub2.as_os_str(), "e/sublink");
                match root.remove_tree("e") {
                    Ok(()) => bump(&c.trees_e_removed),
                    Err(e) => classify(&e, &c.trees_refused, &c.other_errors),
                }
            }
        }));
    }
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let elapsed = started.elapsed();

    let g = |a: &AtomicU64| a.load(Relaxed);
    println!(
        "race {resolver:?}, {} link: {:.2} s; swaps d⇄link {}, e/sub⇄link {}; \
         reads ok {} refused {} other {} LEAKED {}; writes ok {} refused {}; \
         rename/unlink/chmod/utimes/mkdir/rmdir ok {}; remove_tree d/sub ok {} e ok {} refused {}; \
         other errors {}",
        if relative_link {
            "relative"
        } else {
            "absolute"
        },
        elapsed.as_secs_f64(),
        g(&c.swaps),
        g(&c.swaps_e),
        g(&c.reads_ok),
        g(&c.reads_refused),
        g(&c.reads_other),
        g(&c.leaked),
        g(&c.writes_ok),
        g(&c.writes_refused),
        g(&c.meta_ok),
        g(&c.trees_removed),
        g(&c.trees_e_removed),
        g(&c.trees_refused),
        g(&c.other_errors),
    );
    assert_eq!(g(&c.leaked), 0, "read the outside marker");
    assert_eq!(snapshot(&s.outside), before, "something outside changed");
    // The race was exercised on both sides of the swap.
    assert!(g(&c.swaps) > 100 && g(&c.swaps_e) > 10, "too few swaps");
    assert!(
        g(&c.reads_ok) > 0 && g(&c.reads_refused) > 0,
        "reads never saw both states"
    );
    // (Writes and removals do many steps each and succeed far less often
    // under the swap than single opens: only ask that some did.)
    assert!(
        g(&c.writes_ok) + g(&c.meta_ok) > 0 && g(&c.writes_refused) > 0,
        "writes never saw both states"
    );
    assert!(
        g(&c.trees_removed) + g(&c.trees_e_removed) > 0,
        "no tree removed"
    );
}

#[test]
fn race_openat2_absolute_link() {
    run_phase(Resolver::Openat2, false);
}

#[test]
fn race_openat2_relative_link() {
    run_phase(Resolver::Openat2, true);
}

#[test]
fn race_walk_absolute_link() {
    run_phase(Resolver::Walk, false);
}

#[test]
fn race_walk_relative_link() {
    run_phase(Resolver::Walk, true);
}

/// Control: the scheme `Jail::resolve` uses today (canonicalise, check the
/// prefix, then open by path string) against the same swap. It is expected to
/// leak; it is printed, not asserted, so that a lucky schedule cannot fail it.
#[test]
fn race_control_check_then_open_by_path() {
    let s = setup(false);
    let canon_root = s.root.canonicalize().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (d, swap, stop, swaps) = (
            s.root.join("d"),
            s.root.join("swap"),
            stop.clone(),
            swaps.clone(),
        );
        thread::spawn(move || {
            for _ in 0..MAX_ITERS * 10 {
                if stop.load(Relaxed) {
                    break;
                }
                if exchange(&d, &swap) {
                    bump(&swaps);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_millis(500);
    let (mut checked, mut leaked) = (0u64, 0u64);
    for _ in 0..MAX_ITERS {
        if Instant::now() >= deadline {
            break;
        }
        let p = s.root.join("d/f");
        let Ok(c) = p.canonicalize() else { continue };
        if !c.starts_with(&canon_root) {
            continue;
        }
        checked += 1;
        if fs::read(&p).is_ok_and(|b| b == MARKER) {
            leaked += 1;
        }
    }
    stop.store(true, Relaxed);
    attacker.join().unwrap();
    println!(
        "control (check, then open by path): {checked} opens passed the check, {leaked} of them \
         read the outside marker; {} swaps",
        swaps.load(Relaxed)
    );
}
