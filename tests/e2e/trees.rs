//! Many files at once, end to end with real processes: `get -r`/`put -r` of whole
//! trees, globs on both sides, `mget`/`mput`, batches with a failing file, `-r -c`
//! resuming an interrupted tree, symlinks out of the root, and hundreds of small
//! files. Correctness only: no timing assertions.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;

use crate::common::*;

/// Runs `commands` (script mode, `-c`) with the client in `local`.
fn run(server: &Server, local: &Path, commands: &str) -> Output {
    server
        .client(local)
        .args(["-c", commands])
        .output()
        .unwrap()
}

/// Runs and insists on success; returns stdout.
fn ok(server: &Server, local: &Path, commands: &str) -> String {
    let out = run(server, local, commands);
    assert!(
        out.status.success(),
        "{commands}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout_of(&out),
        stderr_of(&out)
    );
    stdout_of(&out)
}

/// Runs and insists on exit status 1; returns (stdout, stderr).
fn fails(server: &Server, local: &Path, commands: &str) -> (String, String) {
    let out = run(server, local, commands);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{commands}\nstdout: {}\nstderr: {}",
        stdout_of(&out),
        stderr_of(&out)
    );
    (stdout_of(&out), stderr_of(&out))
}

/// The directories and files below `root` (relative paths), symlinks not
/// followed (they would show as neither).
#[derive(Debug, PartialEq, Eq)]
struct Tree {
    dirs: BTreeSet<String>,
    files: BTreeMap<String, String>,
}

fn snapshot(root: &Path) -> Tree {
    fn walk(dir: &Path, rel: &str, tree: &mut Tree) {
        for item in fs::read_dir(dir).unwrap() {
            let item = item.unwrap();
            let name = item.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = item.file_type().unwrap();
            if ft.is_dir() {
                tree.dirs.insert(child.clone());
                walk(&item.path(), &child, tree);
            } else if ft.is_file() {
                tree.files.insert(child, md5_file(&item.path()));
            }
        }
    }
    let mut tree = Tree {
        dirs: BTreeSet::new(),
        files: BTreeMap::new(),
    };
    walk(root, "", &mut tree);
    tree
}

/// Same directories (empty ones included), same files, byte for byte and by MD5.
fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = snapshot(expected);
    let b = snapshot(actual);
    assert_eq!(a.dirs, b.dirs, "directories differ");
    assert_eq!(
        a.files.keys().collect::<Vec<_>>(),
        b.files.keys().collect::<Vec<_>>(),
        "file sets differ"
    );
    for (name, digest) in &a.files {
        assert_eq!(&b.files[name], digest, "{name}: MD5 differs");
        assert_eq!(
            fs::read(expected.join(name)).unwrap(),
            fs::read(actual.join(name)).unwrap(),
            "{name}: content differs"
        );
    }
}

fn no_partials_below(root: &Path) {
    let tree = snapshot(root);
    for name in tree.files.keys() {
        assert!(!name.ends_with(".ftpsh-part"), "leftover partial {name}");
    }
}

/// The script-mode summary line of a batch: `N files, SIZE in T s (RATE/s), md5
/// ok, F failed`, and nothing else on stdout.
fn assert_summary(stdout: &str, files: usize, failed: usize) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line expected: {stdout:?}");
    let line = lines[0];
    let noun = if files == 1 { "file" } else { "files" };
    assert!(
        line.starts_with(&format!("{files} {noun}, ")),
        "summary {line:?} should count {files} files"
    );
    assert!(
        line.contains(" in ") && line.contains(" s (") && line.contains("/s), md5 ok"),
        "{line:?}"
    );
    assert!(line.ends_with(&format!(", {failed} failed")), "{line:?}");
}

fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

/// A tree with everything awkward: nesting, empty directories (one deep inside),
/// spaces and non-ASCII names, a zero-byte file and a file of a few MiB.
fn awkward_tree(root: &Path) {
    write(&root.join("a.txt"), b"alpha\n");
    write(&root.join("zero.bin"), b"");
    write(
        &root.join("big.bin"),
        &random_bytes(3 * 1024 * 1024 + 17, 1),
    );
    write(
        &root.join("with space/file one.txt"),
        &random_bytes(5000, 2),
    );
    write(
        &root.join("ünïcødé/日本語 ファイル.txt"),
        "こんにちは\n".as_bytes(),
    );
    write(&root.join("nested/x/y.dat"), &random_bytes(70_000, 3));
    write(&root.join("nested/x/z.dat"), &random_bytes(1, 4));
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("nested/deeper/emptier")).unwrap();
    fs::create_dir_all(root.join("with space/empty too")).unwrap();
}

/// True when `chmod 000` stops this process from reading a file (false when the
/// tests run as root or with CAP_DAC_OVERRIDE).
fn permissions_bind_us(dir: &Path) -> bool {
    let probe = dir.join("probe");
    fs::write(&probe, b"x").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    let blocked = fs::read(&probe).is_err();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&probe).unwrap();
    blocked
}

#[test]
fn a_tree_goes_down_with_get_r_and_back_up_with_put_r() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    awkward_tree(&root.path().join("docs"));
    let server = Server::start(root.path());

    let stdout = ok(&server, local.path(), "get -r docs");
    assert_summary(&stdout, 7, 0);
    assert_same_tree(&root.path().join("docs"), &local.path().join("docs"));
    no_partials_below(local.path());

    // Back up under a new remote name: the server makes it (mkdir -p).
    let stdout = ok(&server, local.path(), "put -r docs copy/of/docs");
    assert_summary(&stdout, 7, 0);
    assert_same_tree(&root.path().join("docs"), &root.path().join("copy/of/docs"));
    no_partials_below(root.path());
}

#[test]
fn tree_destinations_follow_cp_r() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    awkward_tree(&root.path().join("docs"));
    let server = Server::start(root.path());
    let l = local.path();

    // Into an existing directory: DIR/docs. To a new name: the name itself.
    fs::create_dir(l.join("existing")).unwrap();
    ok(&server, l, "get -r docs existing; get -r docs newname");
    assert_same_tree(&root.path().join("docs"), &l.join("existing/docs"));
    assert_same_tree(&root.path().join("docs"), &l.join("newname"));
    // A file in the way is an error that names it.
    write(&l.join("afile"), b"x");
    let (_, err) = fails(&server, l, "get -r docs afile");
    assert!(
        err.contains("afile") && err.contains("not a directory"),
        "{err}"
    );

    // The same on the server side, from the remote directory.
    ok(
        &server,
        l,
        "mkdir there; put -r newname there; cd there; put -r newname renamed",
    );
    assert_same_tree(
        &root.path().join("docs"),
        &root.path().join("there/newname"),
    );
    assert_same_tree(
        &root.path().join("docs"),
        &root.path().join("there/renamed"),
    );
}

#[test]
fn globs_expand_on_the_server_for_get_and_locally_for_put() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let r = root.path();
    let l = local.path();
    for (name, seed) in [
        ("a.log", 1),
        ("b.log", 2),
        ("c.txt", 3),
        (".hidden.log", 4),
        ("data/2026-01.csv", 5),
        ("data/2026-02.csv", 6),
        ("data/2025-12.csv", 7),
    ] {
        write(&r.join(name), &random_bytes(1000 + seed * 100, seed as u64));
    }
    let server = Server::start(r);

    let stdout = ok(&server, l, "get '*.log'");
    assert_summary(&stdout, 2, 0);
    assert_eq!(md5_file(&l.join("a.log")), md5_file(&r.join("a.log")));
    assert_eq!(md5_file(&l.join("b.log")), md5_file(&r.join("b.log")));
    assert!(
        !l.join(".hidden.log").exists(),
        "* must not match dot files"
    );
    assert!(!l.join("c.txt").exists());

    fs::create_dir(l.join("dl")).unwrap();
    ok(&server, l, "get 'data/2026-*' dl");
    let mut got: Vec<String> = fs::read_dir(l.join("dl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["2026-01.csv", "2026-02.csv"]);
    for name in &got {
        assert_eq!(
            fs::read(l.join("dl").join(name)).unwrap(),
            fs::read(r.join("data").join(name)).unwrap()
        );
    }

    // Several matches need a directory to go to.
    let (_, err) = fails(&server, l, "get 'data/*' nowhere");
    assert!(
        err.contains("nowhere: no such file or directory")
            && err.contains("several files need a directory"),
        "{err}"
    );
    assert!(!l.join("nowhere").exists());

    // A single match behaves as a plain get: LOCAL may be a new file name.
    ok(&server, l, "get 'data/2025-*' december.csv");
    assert_eq!(
        fs::read(l.join("december.csv")).unwrap(),
        fs::read(r.join("data/2025-12.csv")).unwrap()
    );

    // put expands locally.
    write(&l.join("up/x.txt"), b"x\n");
    write(&l.join("up/y.txt"), &random_bytes(3000, 9));
    write(&l.join("up/z.md"), b"z\n");
    let stdout = ok(&server, l, "mkdir inbox; put 'up/*.txt' inbox");
    assert_summary(&stdout, 2, 0);
    assert_eq!(fs::read(r.join("inbox/x.txt")).unwrap(), b"x\n");
    assert_eq!(
        md5_file(&r.join("inbox/y.txt")),
        md5_file(&l.join("up/y.txt"))
    );
    assert!(!r.join("inbox/z.md").exists());
    let (_, err) = fails(&server, l, "put 'up/*' c.txt");
    assert!(
        err.contains("c.txt") && err.contains("not a directory"),
        "{err}"
    );

    // A pattern that matches nothing is an error naming it, on both sides.
    let (out, err) = fails(&server, l, "get '*.none'");
    assert!(err.contains("*.none") && err.contains("no match"), "{err}");
    assert!(out.is_empty(), "{out}");
    let (_, err) = fails(&server, l, "put 'up/*.none'");
    assert!(
        err.contains("up/*.none") && err.contains("no match"),
        "{err}"
    );
}

#[test]
fn mget_and_mput_take_several_patterns() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let r = root.path();
    let l = local.path();
    for (name, seed) in [
        ("logs/a.log", 1u64),
        ("logs/b.log", 2),
        ("data/2026-01.csv", 3),
        ("data/2026-02.csv", 4),
        ("data/old.csv", 5),
    ] {
        write(&r.join(name), &random_bytes(777 * seed as usize, seed));
    }
    let server = Server::start(r);

    let stdout = ok(&server, l, "mget 'logs/*.log' 'data/2026-*'");
    assert_summary(&stdout, 4, 0);
    for (here, there) in [
        ("a.log", "logs/a.log"),
        ("b.log", "logs/b.log"),
        ("2026-01.csv", "data/2026-01.csv"),
        ("2026-02.csv", "data/2026-02.csv"),
    ] {
        assert_eq!(md5_file(&l.join(here)), md5_file(&r.join(there)), "{here}");
    }
    assert!(!l.join("old.csv").exists());

    // One pattern matching nothing: the others still arrive, the verb fails
    // naming the pattern.
    fs::create_dir(l.join("again")).unwrap();
    let (out, err) = fails(&server, &l.join("again"), "mget 'nothing*' 'logs/a*'");
    assert!(
        err.contains("nothing*") && err.contains("no match"),
        "{err}"
    );
    assert_summary(&out, 1, 1);
    assert_eq!(
        md5_file(&l.join("again/a.log")),
        md5_file(&r.join("logs/a.log"))
    );

    // mput sends to the remote directory.
    write(&l.join("n1.txt"), b"one");
    write(&l.join("n2.txt"), b"two");
    write(&l.join("m.md"), b"markdown");
    let stdout = ok(
        &server,
        l,
        "mkdir drop; cd drop; mput '*.txt' '*.md' '*.csv'",
    );
    assert_summary(&stdout, 5, 0);
    for name in ["n1.txt", "n2.txt", "m.md", "2026-01.csv", "2026-02.csv"] {
        assert_eq!(
            fs::read(r.join("drop").join(name)).unwrap(),
            fs::read(l.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_failing_file_does_not_stop_a_download_batch() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let r = root.path();
    let l = local.path();
    write(&r.join("set/a.txt"), &random_bytes(2000, 1));
    write(&r.join("set/c.txt"), &random_bytes(3000, 2));
    // A FIFO cannot be read as a file whoever we are (and must not hang anyone).
    mkfifo(&r.join("set/pipe.txt"));
    let server = Server::start(r);

    fs::create_dir(l.join("dl")).unwrap();
    let (out, err) = fails(&server, l, "get 'set/*.txt' dl");
    assert_summary(&out, 2, 1);
    assert!(err.contains("pipe.txt"), "the failed file is named: {err}");
    assert!(!err.contains("a.txt") && !err.contains("c.txt"), "{err}");
    for name in ["a.txt", "c.txt"] {
        assert_eq!(
            md5_file(&l.join("dl").join(name)),
            md5_file(&r.join("set").join(name))
        );
    }
    assert!(!l.join("dl/pipe.txt").exists());
    no_partials_below(l);

    // Several plain names, one of them gone: the same.
    fs::create_dir(l.join("dl2")).unwrap();
    let (out, err) = fails(&server, l, "get set/a.txt set/gone.txt set/c.txt dl2");
    assert_summary(&out, 2, 1);
    assert!(err.contains("gone.txt"), "{err}");
    assert!(l.join("dl2/a.txt").exists() && l.join("dl2/c.txt").exists());

    // Two sources with one destination: the first wins, the second fails.
    write(&r.join("other/a.txt"), b"another a");
    fs::create_dir(l.join("dl3")).unwrap();
    let (out, err) = fails(&server, l, "get set/a.txt other/a.txt dl3");
    assert_summary(&out, 1, 1);
    assert!(err.contains("other/a.txt"), "{err}");
    assert_eq!(
        md5_file(&l.join("dl3/a.txt")),
        md5_file(&r.join("set/a.txt"))
    );

    // An unreadable file inside a tree, where permissions apply to us.
    if permissions_bind_us(l) {
        write(&r.join("tree/one.txt"), b"one");
        write(&r.join("tree/sub/locked.txt"), b"secret");
        write(&r.join("tree/sub/two.txt"), b"two");
        fs::set_permissions(
            r.join("tree/sub/locked.txt"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let (out, err) = fails(&server, l, "get -r tree");
        assert_summary(&out, 2, 1);
        assert!(err.contains("locked.txt"), "{err}");
        assert_eq!(fs::read(l.join("tree/one.txt")).unwrap(), b"one");
        assert_eq!(fs::read(l.join("tree/sub/two.txt")).unwrap(), b"two");
        assert!(!l.join("tree/sub/locked.txt").exists());
        no_partials_below(l);
    }
}

#[test]
fn a_failing_file_does_not_stop_an_upload_batch() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let r = root.path();
    let l = local.path();
    write(&l.join("a.txt"), &random_bytes(2000, 1));
    write(&l.join("c.txt"), &random_bytes(3000, 2));
    symlink(l.join("nowhere"), l.join("broken.txt")).unwrap();
    let server = Server::start(r);

    let (out, err) = fails(&server, l, "mkdir up; put a.txt broken.txt c.txt up");
    assert_summary(&out, 2, 1);
    assert!(err.contains("broken.txt"), "{err}");
    for name in ["a.txt", "c.txt"] {
        assert_eq!(md5_file(&r.join("up").join(name)), md5_file(&l.join(name)));
    }
    assert!(!r.join("up/broken.txt").exists());

    // The same link matched by a pattern.
    let (out, err) = fails(&server, l, "mkdir up2; put '*.txt' up2");
    assert_summary(&out, 2, 1);
    assert!(err.contains("broken.txt"), "{err}");
    assert!(r.join("up2/a.txt").exists() && r.join("up2/c.txt").exists());
    no_partials_below(r);

    if permissions_bind_us(l) {
        write(&l.join("tree/one.txt"), b"one");
        write(&l.join("tree/sub/locked.txt"), b"secret");
        write(&l.join("tree/sub/two.txt"), b"two");
        fs::set_permissions(
            l.join("tree/sub/locked.txt"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let (out, err) = fails(&server, l, "put -r tree");
        assert_summary(&out, 2, 1);
        assert!(err.contains("locked.txt"), "{err}");
        assert_eq!(fs::read(r.join("tree/one.txt")).unwrap(), b"one");
        assert_eq!(fs::read(r.join("tree/sub/two.txt")).unwrap(), b"two");
        assert!(!r.join("tree/sub/locked.txt").exists());
    }
}

/// A tree of files of assorted sizes, some above the one-by-one threshold.
fn resumable_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            let size = match i {
                0 => 0,
                4 => 2 * 1024 * 1024 + 3,
                _ => 10_000 * i + 7,
            };
            (
                format!("d{}/f{i}.bin", i % 3),
                random_bytes(size, 100 + i as u64),
            )
        })
        .collect();
    for (name, data) in &files {
        write(&root.join(name), data);
    }
    fs::create_dir_all(root.join("d0/empty")).unwrap();
    files
}

#[test]
fn get_r_c_completes_an_interrupted_tree_download() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let r = root.path().join("tree");
    let l = local.path().join("tree");
    let files = resumable_tree(&r);
    let server = Server::start(root.path());

    // What an interrupted `get -r tree` leaves: some files complete, some
    // partials (one truncated in the middle of the big file), one file with the
    // right size but stale content, the rest missing.
    let by_name: BTreeMap<&str, &[u8]> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    write(&l.join("d1/f1.bin"), by_name["d1/f1.bin"]);
    write(&l.join("d2/f2.bin"), by_name["d2/f2.bin"]);
    let big = by_name["d1/f4.bin"];
    write(&l.join("d1/f4.bin.ftpsh-part"), &big[..big.len() / 2]);
    let f5 = by_name["d2/f5.bin"];
    write(&l.join("d2/f5.bin.ftpsh-part"), &f5[..1000]);
    let mut stale = by_name["d0/f3.bin"].to_vec();
    stale[10] ^= 1;
    write(&l.join("d0/f3.bin"), &stale);
    let kept_inode = fs::metadata(l.join("d1/f1.bin")).unwrap().ino();

    let stdout = ok(&server, local.path(), "get -r -c tree");
    assert_summary_with_skips(&stdout, 8, 2);
    assert_same_tree(&r, &l);
    no_partials_below(&l);
    assert_eq!(
        fs::metadata(l.join("d1/f1.bin")).unwrap().ino(),
        kept_inode,
        "a complete, matching file is left alone"
    );

    // Run again: everything is already there.
    let stdout = ok(&server, local.path(), "get -r -c tree");
    assert_summary_with_skips(&stdout, 0, 10);
}

fn assert_summary_with_skips(stdout: &str, files: usize, skipped: usize) {
    let line = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let noun = if files == 1 { "file" } else { "files" };
    assert!(line.starts_with(&format!("{files} {noun}, ")), "{line:?}");
    assert!(
        line.ends_with(&format!(", {skipped} already complete, 0 failed")),
        "{line:?}"
    );
}

#[test]
fn put_r_c_completes_an_interrupted_tree_upload() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let l = local.path().join("tree");
    let r = root.path().join("tree");
    let files = resumable_tree(&l);
    let server = Server::start(root.path());

    let by_name: BTreeMap<&str, &[u8]> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    write(&r.join("d1/f1.bin"), by_name["d1/f1.bin"]);
    let big = by_name["d1/f4.bin"];
    write(&r.join("d1/f4.bin.ftpsh-part"), &big[..big.len() / 3]);
    let f5 = by_name["d2/f5.bin"];
    write(&r.join("d2/f5.bin.ftpsh-part"), &f5[..999]);
    let kept_inode = fs::metadata(r.join("d1/f1.bin")).unwrap().ino();

    let stdout = ok(&server, local.path(), "put -r -c tree");
    assert_summary_with_skips(&stdout, 9, 1);
    assert_same_tree(&l, &r);
    no_partials_below(&r);
    assert_eq!(fs::metadata(r.join("d1/f1.bin")).unwrap().ino(), kept_inode);
}

#[test]
fn links_arrive_as_links_and_with_dash_l_those_out_of_the_root_are_skipped_and_counted() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let secret = b"outside the root: never served";
    write(&outside.path().join("secret.txt"), secret);
    write(&outside.path().join("dir/more.txt"), secret);
    let t = root.path().join("tree");
    write(&t.join("inner.txt"), b"inside");
    symlink(outside.path().join("dir"), t.join("out_dir")).unwrap();
    symlink(outside.path().join("secret.txt"), t.join("out_file")).unwrap();
    symlink("/nonexistent/ftpsh/target", t.join("dangling")).unwrap();
    symlink("inner.txt", t.join("in_link")).unwrap();
    let server = Server::start(root.path());

    // A faithful copy: every link arrives as a link with its target, and
    // nothing is followed (the targets are only data).
    let out = run(&server, local.path(), "get -r tree");
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.is_empty(), "{err}");
    for name in ["out_dir", "out_file", "dangling", "in_link"] {
        let here = local.path().join("tree").join(name);
        assert!(
            fs::symlink_metadata(&here)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{name}"
        );
        assert_eq!(
            fs::read_link(&here).unwrap(),
            fs::read_link(t.join(name)).unwrap(),
            "{name}"
        );
    }
    for digest in snapshot(local.path()).files.values() {
        assert_ne!(digest, &md5_hex(secret));
    }

    // -L follows links: those that lead out of the root or nowhere are
    // skipped, each named, and counted as failures.
    let l = tempfile::tempdir().unwrap();
    let (stdout, err) = fails(&server, l.path(), "get -r -L tree");
    assert_summary(&stdout, 2, 3);
    for name in ["out_dir", "out_file", "dangling"] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("skipped")),
            "the failure names {name}: {err}"
        );
        assert!(!l.path().join("tree").join(name).exists(), "{name}");
    }
    assert_eq!(fs::read(l.path().join("tree/in_link")).unwrap(), b"inside");
    assert!(!fs::symlink_metadata(l.path().join("tree/in_link"))
        .unwrap()
        .file_type()
        .is_symlink());
    for digest in snapshot(l.path()).files.values() {
        assert_ne!(digest, &md5_hex(secret));
    }

    // put -r: links go as links; with -L links to files are followed and a
    // link back to a directory that holds it is a loop, skipped and counted.
    let up = local.path().join("up");
    write(&up.join("real.txt"), b"real");
    symlink("real.txt", up.join("file_link")).unwrap();
    symlink(&up, up.join("loop")).unwrap();
    ok(&server, local.path(), "put -r up");
    assert_eq!(fs::read(root.path().join("up/real.txt")).unwrap(), b"real");
    assert_eq!(
        fs::read_link(root.path().join("up/file_link")).unwrap(),
        Path::new("real.txt")
    );
    assert_eq!(fs::read_link(root.path().join("up/loop")).unwrap(), up);
    let (stdout, err) = fails(&server, local.path(), "put -r -L up upL");
    assert_summary(&stdout, 2, 1);
    assert!(err.contains("loop") && err.contains("skipped"), "{err}");
    assert_eq!(
        fs::read(root.path().join("upL/file_link")).unwrap(),
        b"real"
    );
    assert!(!fs::symlink_metadata(root.path().join("upL/file_link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(root.path().join("upL/loop")).is_err());
}

#[test]
fn hundreds_of_small_files_go_both_ways() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = root.path().join("many");
    for i in 0..320u64 {
        let size = (i * 37 % 4000) as usize;
        write(
            &src.join(format!("d{}/s{}/file {i}.dat", i % 4, i % 3)),
            &random_bytes(size, i + 1),
        );
    }
    let server = Server::start(root.path());

    let stdout = ok(&server, local.path(), "get -r many");
    assert_summary(&stdout, 320, 0);
    assert_same_tree(&src, &local.path().join("many"));

    let stdout = ok(&server, local.path(), "put -r many many-again");
    assert_summary(&stdout, 320, 0);
    assert_same_tree(&src, &root.path().join("many-again"));
    no_partials_below(root.path());
    no_partials_below(local.path());
}

#[test]
fn help_shows_the_new_forms() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let out = ok(
        &server,
        local.path(),
        "help get; help put; help mget; help mput; help",
    );
    for usage in [
        "get [-c] [-r] [-p] [-L] REMOTE... [LOCAL]",
        "put [-c] [-r] [-p] [-L] LOCAL... [REMOTE]",
        "mget [-c] [-r] PATTERN...",
        "mput [-c] [-r] PATTERN...",
    ] {
        assert!(out.contains(usage), "{usage} in {out}");
    }
    assert!(out.contains("example: mget"), "{out}");
    // A bare `get` is a usage error (exit 2 is for the command line; a verb's
    // usage error fails the command).
    let (_, err) = fails(&server, local.path(), "get");
    assert!(
        err.contains("usage: get [-c] [-r] [-p] [-L] REMOTE... [LOCAL]"),
        "{err}"
    );
}

#[test]
fn a_glob_that_climbs_back_up_expands_each_path_once() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    for d in ["a", "b", "c", "d"] {
        fs::create_dir(root.path().join(d)).unwrap();
    }
    fs::write(root.path().join("one.txt"), "1").unwrap();
    fs::write(root.path().join("two.txt"), "2").unwrap();
    let server = Server::start(root.path());
    // Each `*/..` leads back to the root from all four directories: expanded
    // naively, ten of them make 4^10 paths (gigabytes on the server).
    let pattern = format!("{}*.txt", "*/../".repeat(10));
    let out = ok(&server, local.path(), &format!("mget '{pattern}'"));
    assert!(out.contains("2 files"), "{out}");
    assert_eq!(
        fs::read_to_string(local.path().join("one.txt")).unwrap(),
        "1"
    );
    assert_eq!(
        fs::read_to_string(local.path().join("two.txt")).unwrap(),
        "2"
    );
}

#[test]
fn files_a_tree_copy_replaces_keep_their_permissions() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("docs")).unwrap();
    fs::write(root.path().join("docs/private.txt"), "new").unwrap();
    fs::write(root.path().join("docs/public.txt"), "new").unwrap();
    let server = Server::start(root.path());
    fs::create_dir(local.path().join("docs")).unwrap();
    fs::write(local.path().join("docs/private.txt"), "old").unwrap();
    fs::set_permissions(
        local.path().join("docs/private.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    ok(&server, local.path(), "get -r docs .");
    let private = local.path().join("docs/private.txt");
    assert_eq!(fs::read_to_string(&private).unwrap(), "new");
    assert_eq!(fs::metadata(&private).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(
        fs::read_to_string(local.path().join("docs/public.txt")).unwrap(),
        "new"
    );
}

#[test]
fn a_tree_copy_replaces_links_at_destinations_and_leaves_pipes_alone() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("d")).unwrap();
    fs::write(root.path().join("d/a.txt"), "new a").unwrap();
    fs::write(root.path().join("d/p.txt"), "new p").unwrap();
    let server = Server::start(root.path());
    fs::create_dir(local.path().join("d")).unwrap();
    fs::write(local.path().join("target.txt"), "old").unwrap();
    symlink("../target.txt", local.path().join("d/a.txt")).unwrap();
    mkfifo(&local.path().join("d/p.txt"));
    let (_, stderr) = fails(&server, local.path(), "get -r d .");
    assert!(
        stderr.contains("p.txt: skipped: not a regular file"),
        "{stderr}"
    );
    // A faithful copy: the tree's file replaces the link at its place, and
    // what the link led to is left alone (a link is never written through).
    assert!(fs::symlink_metadata(local.path().join("d/a.txt"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(
        fs::read_to_string(local.path().join("d/a.txt")).unwrap(),
        "new a"
    );
    assert_eq!(
        fs::read_to_string(local.path().join("target.txt")).unwrap(),
        "old"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(local.path().join("d/p.txt"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn two_names_for_one_local_file_in_a_batch_are_one_destination() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(root.path().join("big.bin"), "remote big").unwrap();
    fs::write(root.path().join("data.bin"), "remote data").unwrap();
    let server = Server::start(root.path());
    fs::write(local.path().join("big.bin"), "old").unwrap();
    symlink(local.path().join("big.bin"), local.path().join("data.bin")).unwrap();
    let (_, stderr) = fails(&server, local.path(), "get big.bin data.bin .");
    assert!(
        stderr.contains("also the destination of an earlier file"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(local.path().join("big.bin")).unwrap(),
        "remote big"
    );
}

/// A link at the tree's own name in the destination directory (one an
/// earlier copy made, perhaps from a hostile server) is not gone through:
/// the tree would land wherever it leads.
#[test]
fn a_link_at_the_trees_name_in_the_destination_is_not_gone_through() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("esc")).unwrap();
    fs::write(root.path().join("esc/f.txt"), b"f").unwrap();
    fs::create_dir(local.path().join("dl")).unwrap();
    symlink(outside.path(), local.path().join("dl/esc")).unwrap();
    let server = Server::start(root.path());
    let out = server
        .client(local.path())
        .args(["-c", "get -r esc dl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_of(&out).contains("not gone through"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    // Named as the destination itself, the link is the user's to follow.
    let out = server
        .client(local.path())
        .args(["-c", "get -r esc dl/esc"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
