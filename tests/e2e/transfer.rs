//! Verified file transfer (issue 3), end to end with real processes and real
//! files: `get` and `put` of awkward sizes, names and destinations, the summary
//! line, `md5`, failures that must leave the destination untouched (a missing
//! file, a lying digest, a server killed mid-download, a client killed
//! mid-upload), `get -c`/`put -c` resuming and still verifying the whole file,
//! path escapes, the local verbs, concurrent uploads of one name, and sizes past
//! 4 GiB.
//!
//! No timing assertions: a test that must interrupt a transfer waits for the
//! partial file to appear, then kills.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `protocol::DATA_CHUNK`, the largest data frame (256 KiB).
const CHUNK: usize = 262_144;

/// A generous deadline for events that should take about a second.
const EVENT: Duration = Duration::from_secs(30);

/// Big enough that a transfer is surely still running when the test sees its
/// partial file and kills a process.
const INTERRUPTED_SIZE: usize = 64 << 20;

// ---------------------------------------------------------------- helpers

/// Runs `commands` (script mode, `-c`) with the client in `local`.
fn run(server: &Server, local: &Path, commands: &str) -> Output {
    server
        .client(local)
        .args(["-c", commands])
        .output()
        .unwrap()
}

/// Runs and insists on success with nothing on stderr; returns stdout.
fn ok(server: &Server, local: &Path, commands: &str) -> String {
    let out = run(server, local, commands);
    assert!(
        out.status.success(),
        "{commands}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout_of(&out),
        stderr_of(&out)
    );
    assert_eq!(
        stderr_of(&out),
        "",
        "{commands}: script mode prints nothing on stderr on success"
    );
    stdout_of(&out)
}

/// Runs and insists on exit status 1; returns (stdout, stderr).
fn fails(server: &Server, local: &Path, commands: &str) -> (String, String) {
    let out = run(server, local, commands);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{commands} should fail\nstdout: {}\nstderr: {}",
        stdout_of(&out),
        stderr_of(&out)
    );
    (stdout_of(&out), stderr_of(&out))
}

/// A failure of `verb`: exactly one line, `ftpsh: VERB: ...`, containing each
/// of `needles`.
fn assert_one_error_line(stderr: &str, verb: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got {stderr:?}");
    let prefix = format!("ftpsh: {verb}: ");
    assert!(
        lines[0].starts_with(&prefix),
        "error line should start with {prefix:?}: {stderr:?}"
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "error line should mention {n:?}: {stderr:?}"
        );
    }
}

/// The names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// True when no name in `dir` looks like a partial or temporary upload.
fn assert_no_partials(dir: &Path) {
    let strays: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|n| n.contains("ftpsh-part"))
        .collect();
    assert!(strays.is_empty(), "stray partial files: {strays:?}");
}

fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap();
}

/// The file holds exactly `data`: byte for byte and by MD5.
fn assert_content(path: &Path, data: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got.len(), data.len(), "{}: size", path.display());
    assert!(got == data, "{}: content differs", path.display());
    assert_eq!(md5_file(path), md5_hex(data), "{}: md5", path.display());
}

/// The summary line of a transfer: names the file, ends with `md5 ok`.
fn assert_summary(stdout: &str, name: &str) {
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name}: ")) && l.ends_with("md5 ok")),
        "no summary line for {name:?} in {stdout:?}"
    );
}

fn len_of(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits (polling tightly, so a fast transfer is still caught) until `path`
/// holds some bytes but not yet `full`.
fn wait_for_partial(path: &Path, full: u64) -> bool {
    let start = Instant::now();
    while start.elapsed() < EVENT {
        let n = len_of(path);
        if n > 0 && n < full {
            return true;
        }
        // Spinning, not sleeping: a sleeping thread may wake too late.
        std::thread::yield_now();
    }
    false
}

/// How many sessions the server's log shows as still open: peers whose last
/// line is `connected`.
fn open_sessions(log: &str) -> usize {
    let mut last = std::collections::HashMap::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("ftpsh-server: ") {
            // `PEER: MESSAGE`; a peer (`127.0.0.1:40123`) holds no ": ", a
            // message may (`disconnected: connection reset by peer`).
            if let Some((peer, msg)) = rest.split_once(": ") {
                last.insert(peer.to_string(), msg == "connected");
            }
        }
    }
    last.values().filter(|open| **open).count()
}

/// Waits for `child`, meanwhile noting every distinct size `path` shows
/// (`None`: absent).
fn watch_sizes(mut child: Child, path: &Path) -> (Output, Vec<Option<u64>>) {
    let mut seen = Vec::new();
    loop {
        let size = fs::metadata(path).ok().map(|m| m.len());
        if !seen.contains(&size) {
            seen.push(size);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (child.wait_with_output().unwrap(), seen)
}

fn spawn_client(server: &Server, local: &Path, commands: &str) -> Child {
    client_process(server, local)
        .args(["-c", commands])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The sizes every transfer must get right: empty, one byte, one data chunk
/// and its neighbours, tens of MiB, and a large file (hashed on a thread,
/// written directly) whose size is a multiple of neither a data chunk nor
/// the client's 1 MiB receive buffers nor the 4 KiB direct-I/O block.
fn awkward_sizes() -> Vec<(String, Vec<u8>)> {
    [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        20 << 20,
        (9 << 20) + 4097,
    ]
    .iter()
    .enumerate()
    .map(|(i, &n)| (format!("size-{n}.bin"), random_bytes(n, 100 + i as u64)))
    .collect()
}

// ------------------------------------------------------------ the tests

#[test]
fn get_of_awkward_sizes_is_byte_exact_and_md5_agrees() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let files = awkward_sizes();
    for (name, data) in &files {
        write(&root.path().join(name), data);
    }
    let server = Server::start(root.path());
    let script: String = files
        .iter()
        .map(|(name, _)| format!("get {name}\nmd5 {name}\n"))
        .collect();
    let out = server
        .client(local.path())
        .write_stdin(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
    let stdout = stdout_of(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2 * files.len(), "{stdout}");
    for (i, (name, data)) in files.iter().enumerate() {
        assert_content(&local.path().join(name), data);
        assert_summary(lines[2 * i], name);
        assert!(
            lines[2 * i].contains(&transfer_size(data.len())),
            "{}",
            lines[2 * i]
        );
        assert_eq!(lines[2 * i + 1], format!("{}  {name}", md5_hex(data)));
    }
    assert_eq!(names_in(local.path()).len(), files.len());
    assert_no_partials(local.path());
}

/// How the summary line spells a size (`0 B`, `1 B`, `256.0 KiB`, `20.0 MiB`).
fn transfer_size(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    }
}

#[test]
fn put_of_awkward_sizes_is_byte_exact_and_md5_agrees() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let files = awkward_sizes();
    for (name, data) in &files {
        write(&local.path().join(name), data);
    }
    let server = Server::start(root.path());
    let script: Vec<String> = files
        .iter()
        .map(|(name, _)| format!("put {name}; md5 {name}"))
        .collect();
    let stdout = ok(&server, local.path(), &script.join("; "));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2 * files.len(), "{stdout}");
    for (i, (name, data)) in files.iter().enumerate() {
        assert_content(&root.path().join(name), data);
        assert_summary(lines[2 * i], name);
        assert_eq!(lines[2 * i + 1], format!("{}  {name}", md5_hex(data)));
    }
    assert_eq!(names_in(root.path()).len(), files.len());
    assert_no_partials(root.path());

    // And back down again, into a fresh directory: the round trip is exact.
    let back = tempfile::tempdir().unwrap();
    let script: Vec<String> = files.iter().map(|(n, _)| format!("get {n}")).collect();
    ok(&server, back.path(), &script.join("; "));
    for (name, data) in &files {
        assert_content(&back.path().join(name), data);
    }
}

#[test]
fn names_with_spaces_and_default_and_directory_destinations() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let a = random_bytes(70_000, 1);
    let b = random_bytes(CHUNK + 3, 2);
    write(&root.path().join("docs/my file.txt"), &a);
    fs::create_dir(root.path().join("in box")).unwrap();
    fs::create_dir(local.path().join("dl dir")).unwrap();
    write(&local.path().join("src/up load.bin"), &b);
    let server = Server::start(root.path());

    // get: default name (the remote basename, here), a directory, an explicit name.
    let out = ok(
        &server,
        local.path(),
        "get \"docs/my file.txt\"; get 'docs/my file.txt' \"dl dir\"; \
         get \"/docs/my file.txt\" \"renamed copy.txt\"",
    );
    assert_content(&local.path().join("my file.txt"), &a);
    assert_content(&local.path().join("dl dir/my file.txt"), &a);
    assert_content(&local.path().join("renamed copy.txt"), &a);
    assert_summary(&out, "my file.txt");
    assert_summary(&out, "dl dir/my file.txt");
    assert_summary(&out, "renamed copy.txt");

    // put: default name (LOCAL's file name in the remote directory), a remote
    // directory (with and without a trailing slash), an explicit name, and the
    // default after `cd`.
    let out = ok(
        &server,
        local.path(),
        "put \"src/up load.bin\"; put \"src/up load.bin\" \"in box\"; \
         put \"src/up load.bin\" docs/; put \"src/up load.bin\" \"docs/new name.bin\"; \
         cd docs; put \"src/up load.bin\"",
    );
    assert_content(&root.path().join("up load.bin"), &b);
    assert_content(&root.path().join("in box/up load.bin"), &b);
    assert_content(&root.path().join("docs/up load.bin"), &b);
    assert_content(&root.path().join("docs/new name.bin"), &b);
    assert_summary(&out, "up load.bin");
    assert_summary(&out, "docs/new name.bin");
    assert_eq!(names_in(&root.path().join("in box")), ["up load.bin"]);
    assert_eq!(
        names_in(&root.path().join("docs")),
        ["my file.txt", "new name.bin", "up load.bin"]
    );
    assert_no_partials(root.path());
    assert_no_partials(local.path());

    // The md5 verb echoes the path as typed, like md5sum.
    let out = ok(&server, local.path(), "md5 \"docs/my file.txt\"");
    assert_eq!(out, format!("{}  docs/my file.txt\n", md5_hex(&a)));
}

#[test]
fn a_missing_remote_file_fails_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());

    let (stdout, stderr) = fails(&server, local.path(), "get nope.bin");
    assert_eq!(stdout, "");
    assert_one_error_line(&stderr, "get", &["nope.bin"]);
    assert!(
        names_in(local.path()).is_empty(),
        "{:?}",
        names_in(local.path())
    );

    // Into a directory and under another name: still nothing.
    fs::create_dir(local.path().join("d")).unwrap();
    let (_, stderr) = fails(&server, local.path(), "get nope.bin d");
    assert_one_error_line(&stderr, "get", &["nope.bin"]);
    let (_, stderr) = fails(&server, local.path(), "get missing/deeper.bin other.bin");
    assert_one_error_line(&stderr, "get", &["deeper.bin"]);
    assert_eq!(names_in(local.path()), ["d"]);
    assert!(names_in(&local.path().join("d")).is_empty());

    // A pre-existing destination keeps its content.
    write(&local.path().join("nope.bin"), b"mine");
    fails(&server, local.path(), "get nope.bin");
    assert_content(&local.path().join("nope.bin"), b"mine");
    assert_eq!(names_in(local.path()), ["d", "nope.bin"]);

    // The script stops at the failure: the next command does not run.
    let (stdout, _) = fails(&server, local.path(), "get nope.bin; echo after");
    assert_eq!(stdout, "");

    // md5 and put of missing files fail too, without side effects.
    let (_, stderr) = fails(&server, local.path(), "md5 nope.bin");
    assert_one_error_line(&stderr, "md5", &["nope.bin"]);
    let (_, stderr) = fails(&server, local.path(), "put not-here.bin");
    assert_one_error_line(&stderr, "put", &["not-here.bin"]);
    assert!(names_in(root.path()).is_empty());
}

#[test]
fn an_existing_destination_is_replaced_only_by_a_verified_download() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let new = random_bytes(3 * CHUNK + 17, 5);
    write(&root.path().join("data.bin"), &new);
    write(&local.path().join("data.bin"), b"the old local copy");
    let other = local.path().join("elsewhere");
    fs::create_dir(&other).unwrap();

    // A server that lies about the digest: the download is refused and nothing
    // is installed; the old copy keeps its exact content, no destination appears
    // where there was none, no partial is left. (The hook exists in debug
    // builds only, which is what `cargo test` builds.)
    #[cfg(debug_assertions)]
    {
        let liar = ServerBuilder::new(root.path())
            .arg("--debug-corrupt-md5")
            .start();
        for command in [
            "get data.bin",
            "get data.bin elsewhere",
            "get data.bin fresh.bin",
        ] {
            let (stdout, stderr) = fails(&liar, local.path(), command);
            assert_eq!(stdout, "", "{command}: no summary line for a failure");
            // The message names the digest the data really has.
            assert_one_error_line(&stderr, "get", &["MD5 mismatch", &md5_hex(&new)]);
            assert!(stderr.contains("nothing was installed"), "{stderr}");
        }
        assert_content(&local.path().join("data.bin"), b"the old local copy");
        assert_eq!(names_in(local.path()), ["data.bin", "elsewhere"]);
        assert!(names_in(&other).is_empty());

        // The lie also defeats a resumed download, and a second attempt (the
        // server may now answer from its digest cache).
        write(&local.path().join("data.bin.ftpsh-part"), &new[..CHUNK]);
        let (_, stderr) = fails(&liar, local.path(), "get -c data.bin");
        assert_one_error_line(&stderr, "get", &["MD5 mismatch"]);
        let (_, stderr) = fails(&liar, local.path(), "get data.bin");
        assert_one_error_line(&stderr, "get", &["MD5 mismatch"]);
        assert_content(&local.path().join("data.bin"), b"the old local copy");
        assert_eq!(names_in(local.path()), ["data.bin", "elsewhere"]);
    }

    // An honest server: the verified copy replaces the old one.
    let server = Server::start(root.path());
    let out = ok(&server, local.path(), "get data.bin");
    assert_summary(&out, "data.bin");
    assert_content(&local.path().join("data.bin"), &new);
    assert_eq!(names_in(local.path()), ["data.bin", "elsewhere"]);
}

/// A large file (hashed on threads, received into the client's own buffers,
/// written directly) of an odd size: a lying server's digest is refused and
/// nothing installed; a download resumed from a partial of an odd length
/// ends byte for byte.
#[test]
fn a_large_odd_sized_download_is_verified_and_resumes() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes((9 << 20) + 4097, 77);
    write(&root.path().join("big.bin"), &data);

    #[cfg(debug_assertions)]
    {
        let liar = ServerBuilder::new(root.path())
            .arg("--debug-corrupt-md5")
            .start();
        let (_, stderr) = fails(&liar, local.path(), "get big.bin");
        assert_one_error_line(&stderr, "get", &["MD5 mismatch", &md5_hex(&data)]);
        assert!(names_in(local.path()).is_empty());
    }

    let server = Server::start(root.path());
    write(&local.path().join("big.bin.ftpsh-part"), &data[..3_333_333]);
    let out = ok(&server, local.path(), "get -c big.bin");
    assert!(out.contains("big.bin"), "{out}");
    assert_content(&local.path().join("big.bin"), &data);
    assert_eq!(names_in(local.path()), ["big.bin"]);
}

/// Starts `get NAME` against a server, kills the server (SIGKILL) as soon as
/// the client's partial file holds some bytes, and returns the client's output.
fn get_with_the_server_killed(
    root: &Path,
    local: &Path,
    name: &str,
    full: u64,
    old: Option<&[u8]>,
) -> Output {
    let partial = local.join(format!("{name}.ftpsh-part"));
    // On a loaded machine this thread may sleep through a whole download;
    // then the client has installed the file: put things back, try again.
    for _ in 0..5 {
        let mut server = Server::start(root);
        let client = spawn_client(&server, local, &format!("get {name}"));
        let started = wait_for_partial(&partial, full);
        server.kill();
        let out = client.wait_with_output().unwrap();
        if started {
            return out;
        }
        let dest = local.join(name);
        match old {
            Some(old) => write(&dest, old),
            None => {
                let _ = fs::remove_file(&dest);
            }
        }
        let _ = fs::remove_file(&partial);
    }
    panic!("the download never started writing {partial:?}");
}

#[test]
fn server_killed_mid_download_then_get_c_resumes_and_verifies() {
    let root = tempfile::tempdir().unwrap();
    let data = random_bytes(INTERRUPTED_SIZE, 7);
    write(&root.path().join("big.bin"), &data);
    let full = data.len() as u64;

    // Without and with a pre-existing destination.
    for old in [None, Some(b"an older big.bin".to_vec())] {
        let local = tempfile::tempdir().unwrap();
        let dest = local.path().join("big.bin");
        let partial = local.path().join("big.bin.ftpsh-part");
        if let Some(old) = &old {
            write(&dest, old);
        }
        let out =
            get_with_the_server_killed(root.path(), local.path(), "big.bin", full, old.as_deref());
        assert_eq!(
            out.status.code(),
            Some(1),
            "a transfer cut off exits 1: {}",
            stderr_of(&out)
        );
        assert_eq!(stdout_of(&out), "", "no summary for a cut-off transfer");
        let stderr = stderr_of(&out);
        assert_one_error_line(&stderr, "get", &["big.bin.ftpsh-part", "get -c"]);

        // The destination is untouched; only the resumable partial is new, and
        // it holds a true prefix of the file.
        match &old {
            Some(old) => {
                assert_content(&dest, old);
                assert_eq!(names_in(local.path()), ["big.bin", "big.bin.ftpsh-part"]);
            }
            None => assert_eq!(names_in(local.path()), ["big.bin.ftpsh-part"]),
        }
        let kept = fs::read(&partial).unwrap();
        assert!(
            !kept.is_empty() && kept.len() < data.len(),
            "{}",
            kept.len()
        );
        assert!(
            kept[..] == data[..kept.len()],
            "the partial is not a prefix"
        );

        // A new server on the same root; `get -c` completes and verifies.
        let server = Server::start(root.path());
        // Meanwhile the destination holds the old file or the whole new one.
        let client = spawn_client(&server, local.path(), "get -c big.bin; md5 big.bin");
        let (out, seen) = watch_sizes(client, &dest);
        let allowed = [old.as_ref().map(|o| o.len() as u64), Some(full)];
        assert!(
            seen.iter().all(|n| allowed.contains(n)),
            "the destination showed partial content: sizes {seen:?}"
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(stderr_of(&out), "");
        let out = stdout_of(&out);
        assert_summary(&out, "big.bin");
        assert!(out.ends_with(&format!("{}  big.bin\n", md5_hex(&data))));
        assert_content(&dest, &data);
        assert_eq!(names_in(local.path()), ["big.bin"], "the partial is gone");
    }
}

#[test]
fn get_c_verifies_the_whole_file_including_the_kept_prefix() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(5 * CHUNK + 99, 8);
    write(&root.path().join("f.bin"), &data);
    let server = Server::start(root.path());

    // A good prefix: resumed, installed, partial gone.
    write(
        &local.path().join("f.bin.ftpsh-part"),
        &data[..2 * CHUNK + 5],
    );
    ok(&server, local.path(), "get -c f.bin");
    assert_content(&local.path().join("f.bin"), &data);
    assert_eq!(names_in(local.path()), ["f.bin"]);

    // A damaged prefix: the whole-file digest catches it, the installed copy
    // stays as it was, and no partial is left to be resumed again.
    let mut bad = data[..CHUNK].to_vec();
    bad[1000] ^= 0x55;
    write(&local.path().join("g.bin.ftpsh-part"), &bad);
    write(&root.path().join("g.bin"), &data);
    let (_, stderr) = fails(&server, local.path(), "get -c g.bin");
    assert_one_error_line(&stderr, "get", &["MD5 mismatch"]);
    assert_eq!(names_in(local.path()), ["f.bin"]);

    // `-c` with no partial is a plain download; a complete partial is verified
    // and installed without more data.
    ok(&server, local.path(), "get -c g.bin");
    assert_content(&local.path().join("g.bin"), &data);
    write(&local.path().join("h.bin.ftpsh-part"), &data);
    write(&root.path().join("h.bin"), &data);
    ok(&server, local.path(), "get -c h.bin");
    assert_content(&local.path().join("h.bin"), &data);
    assert_eq!(names_in(local.path()), ["f.bin", "g.bin", "h.bin"]);

    // `-c` on a file already here in full downloads nothing: the copy keeps its
    // inode; one that differs is replaced by a verified download.
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(local.path().join("g.bin")).unwrap().ino();
    let out = ok(&server, local.path(), "get -c g.bin");
    assert!(out.contains("g.bin: already complete"), "{out}");
    assert!(out.contains("md5 ok"), "{out}");
    let after = std::fs::metadata(local.path().join("g.bin")).unwrap().ino();
    assert_eq!(inode, after, "the complete file was downloaded again");
    let mut other = data.clone();
    other[7] ^= 1;
    write(&local.path().join("g.bin"), &other);
    let out = ok(&server, local.path(), "get -c g.bin");
    assert!(!out.contains("already complete"), "{out}");
    assert_content(&local.path().join("g.bin"), &data);

    // A partial longer than the file is refused, not silently truncated.
    write(&local.path().join("s.bin.ftpsh-part"), &data);
    write(&root.path().join("s.bin"), &data[..10]);
    let (_, stderr) = fails(&server, local.path(), "get -c s.bin");
    assert_one_error_line(&stderr, "get", &["s.bin"]);
    assert!(!local.path().join("s.bin").exists());
}

#[test]
fn client_killed_mid_upload_then_put_c_resumes_and_the_destination_never_shows_partial_content() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(INTERRUPTED_SIZE, 9);
    write(&local.path().join("big.bin"), &data);
    write(&local.path().join("other.bin"), &data);
    write(&root.path().join("other.bin"), b"the server's older copy");
    let full = data.len() as u64;
    let server = Server::start(root.path());

    for name in ["big.bin", "other.bin"] {
        let before = fs::read(root.path().join(name)).ok();
        let partial = root.path().join(format!("{name}.ftpsh-part"));
        // On a loaded machine this thread may sleep through a whole upload;
        // then the server holds the complete file: put things back, try again.
        let mut started = false;
        for _ in 0..5 {
            let mut client = spawn_client(&server, local.path(), &format!("put {name}"));
            started = wait_for_partial(&partial, full);
            client.kill().unwrap();
            client.wait().unwrap();
            if started {
                break;
            }
            assert!(wait_until(EVENT, || open_sessions(&server.log_text()) == 0));
            match &before {
                Some(old) => write(&root.path().join(name), old),
                None => {
                    let _ = fs::remove_file(root.path().join(name));
                }
            }
            let _ = fs::remove_file(&partial);
        }
        assert!(started, "the upload never started writing {partial:?}");
        // The server must have let go of the upload before it can be resumed.
        assert!(
            wait_until(EVENT, || open_sessions(&server.log_text()) == 0),
            "the server did not notice the client going: {}",
            server.log_text()
        );

        // The destination shows nothing of the partial upload.
        match &before {
            Some(old) => assert_content(&root.path().join(name), old),
            None => assert!(!root.path().join(name).exists()),
        }
        let kept = fs::read(&partial).unwrap();
        assert!(
            !kept.is_empty() && kept.len() < data.len(),
            "{}",
            kept.len()
        );
        assert!(
            kept[..] == data[..kept.len()],
            "the partial is not a prefix"
        );

        // While the resumed upload runs, the destination only ever holds the
        // old file or the complete new one.
        let dest = root.path().join(name);
        let client = spawn_client(&server, local.path(), &format!("put -c {name}; md5 {name}"));
        let (out, seen) = watch_sizes(client, &dest);
        let allowed = [before.as_ref().map(|b| b.len() as u64), Some(full)];
        assert!(
            seen.iter().all(|n| allowed.contains(n)),
            "the destination showed partial content: sizes {seen:?}"
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(stderr_of(&out), "");
        let out = stdout_of(&out);
        assert_summary(&out, name);
        assert!(
            out.ends_with(&format!("{}  {name}\n", md5_hex(&data))),
            "{out}"
        );
        assert_content(&root.path().join(name), &data);
        assert!(!partial.exists(), "the server's partial is gone");
    }
    assert_eq!(names_in(root.path()), ["big.bin", "other.bin"]);

    // A damaged server-side partial is caught by the whole-file digest and
    // discarded; the destination keeps its (older) content. (Were the
    // destination already equal to the local file, `put -c` would have nothing
    // to send.)
    write(&root.path().join("big.bin"), b"an older big.bin");
    let mut bad = data[..CHUNK].to_vec();
    bad[10] ^= 1;
    write(&root.path().join("big.bin.ftpsh-part"), &bad);
    let (_, stderr) = fails(&server, local.path(), "put -c big.bin");
    assert_one_error_line(&stderr, "put", &["MD5 mismatch"]);
    assert_content(&root.path().join("big.bin"), b"an older big.bin");
    // `put -c` with nothing to resume is a plain upload.
    let small = random_bytes(1000, 10);
    write(&local.path().join("small.bin"), &small);
    ok(&server, local.path(), "put -c small.bin");
    assert_content(&root.path().join("small.bin"), &small);
    assert_no_partials(root.path());
}

#[test]
fn path_escapes_are_refused_for_get_put_and_md5() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let outside = top.path().join("outside");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    write(&outside.join("secret"), b"outside the root");
    write(&top.path().join("x"), b"beside the root");
    symlink(outside.join("secret"), root.join("link_file")).unwrap();
    symlink(&outside, root.join("link_dir")).unwrap();
    let inside = random_bytes(1234, 3);
    write(&root.join("real.bin"), &inside);
    symlink(root.join("real.bin"), root.join("inner_link")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let up = random_bytes(4321, 4);
    write(&local.path().join("up.bin"), &up);
    let server = Server::start(&root);

    // `..` at the root stays at the root; absolute paths start at the root:
    // nothing outside is read.
    for path in [
        "../x",
        "/../../x",
        "../outside/secret",
        "/../../etc/passwd",
        "/etc/passwd",
    ] {
        let (stdout, stderr) = fails(&server, local.path(), &format!("get {path} got"));
        assert_eq!(stdout, "");
        assert_one_error_line(&stderr, "get", &[]);
        assert!(
            !local.path().join("got").exists(),
            "get {path} created a file"
        );
        // Clamped at the root, so simply missing there.
        assert!(stderr.contains("no such file"), "{stderr}");
        let (_, stderr) = fails(&server, local.path(), &format!("md5 {path}"));
        assert_one_error_line(&stderr, "md5", &[]);
    }
    // ... which is why /etc/passwd means the root's own etc/passwd.
    write(&root.join("etc/passwd"), b"root's passwd");
    ok(&server, local.path(), "get /../../etc/passwd got");
    assert_content(&local.path().join("got"), b"root's passwd");
    fs::remove_file(local.path().join("got")).unwrap();

    // Symlinks leading out of the root are refused, for files and directories.
    for path in [
        "link_file",
        "link_dir/secret",
        "/link_dir/../link_dir/secret",
    ] {
        let (_, stderr) = fails(&server, local.path(), &format!("get {path} got"));
        assert_one_error_line(&stderr, "get", &["outside the served root"]);
        let (_, stderr) = fails(&server, local.path(), &format!("md5 {path}"));
        assert_one_error_line(&stderr, "md5", &["outside the served root"]);
    }
    assert!(
        names_in(local.path()) == ["up.bin"],
        "{:?}",
        names_in(local.path())
    );
    // A symlink that stays inside the root is followed.
    ok(&server, local.path(), "get inner_link");
    assert_content(&local.path().join("inner_link"), &inside);

    // put: `..` and absolute paths land inside the root, never beside it.
    ok(
        &server,
        local.path(),
        "put up.bin ../x; put up.bin /../../y",
    );
    assert_content(&root.join("x"), &up);
    assert_content(&root.join("y"), &up);
    assert_content(&top.path().join("x"), b"beside the root");
    assert!(!top.path().join("y").exists());
    // Into a directory symlinked out of the root: refused, nothing written.
    for dest in [
        "link_dir/new.bin",
        "link_dir/secret",
        "link_dir",
        "link_dir/",
    ] {
        let (_, stderr) = fails(&server, local.path(), &format!("put up.bin {dest}"));
        assert_one_error_line(&stderr, "put", &[]);
    }
    assert_eq!(names_in(&outside), ["secret"]);
    assert_content(&outside.join("secret"), b"outside the root");
    // Onto a symlink that points out of the root: the link is never followed
    // out (the outside file keeps its content, nothing appears out there);
    // either the upload is refused or the link itself is replaced.
    let out = run(&server, local.path(), "put up.bin link_file");
    assert_content(&outside.join("secret"), b"outside the root");
    assert_eq!(names_in(&outside), ["secret"]);
    if out.status.success() {
        let meta = fs::symlink_metadata(root.join("link_file")).unwrap();
        assert!(meta.is_file(), "the link itself was replaced by the upload");
        assert_content(&root.join("link_file"), &up);
    } else {
        assert_one_error_line(&stderr_of(&out), "put", &[]);
    }
    assert_no_partials(&root);
    assert_no_partials(&outside);
}

#[test]
fn lcd_lpwd_lls_work_on_the_local_side() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(CHUNK + 1, 12);
    write(&root.path().join("a.bin"), &data);
    fs::create_dir(local.path().join("sub")).unwrap();
    write(&local.path().join("sub/.hidden"), b"h");
    write(&local.path().join("sub/z.txt"), b"12345");
    write(&local.path().join("up.txt"), b"from the start dir");
    let here = local.path().canonicalize().unwrap();
    let sub = here.join("sub");
    let server = Server::start(root.path());

    // Piped on stdin, as a script.
    let script = "lpwd\nlcd sub\nlpwd\nget a.bin\nlls\nlls -l\nlls -a\nlcd ..\nlls sub\nput sub/z.txt\nlcd\nlpwd\n";
    let out = server.client(&here).write_stdin(script).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
    let stdout = stdout_of(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], here.display().to_string());
    assert_eq!(lines[1], sub.display().to_string());
    assert_summary(lines[2], "a.bin");
    // lls: names, sorted, dot files hidden.
    assert_eq!(&lines[3..5], ["a.bin", "z.txt"]);
    // lls -l: size and name.
    assert!(lines[5].starts_with("-rw") && lines[5].contains(&format!(" {} ", CHUNK + 1)));
    assert!(lines[5].ends_with(" a.bin"), "{}", lines[5]);
    assert!(
        lines[6].contains(" 5 ") && lines[6].ends_with(" z.txt"),
        "{}",
        lines[6]
    );
    // lls -a shows dot files.
    assert_eq!(&lines[7..10], [".hidden", "a.bin", "z.txt"]);
    // lcd .. then lls sub.
    assert_eq!(&lines[10..12], ["a.bin", "z.txt"]);
    assert_summary(lines[12], "z.txt");
    // lcd without PATH goes home (HOME is the start dir in these tests).
    assert_eq!(lines[13], here.display().to_string());
    assert_eq!(lines.len(), 14, "{stdout}");

    // The get after lcd landed in the new local directory, not the old one.
    assert_content(&sub.join("a.bin"), &data);
    assert!(!here.join("a.bin").exists());
    assert_content(&root.path().join("z.txt"), b"12345");

    // Errors: lcd to a missing directory, lls of a missing path.
    let (_, stderr) = fails(&server, &here, "lcd no-such-dir");
    assert_one_error_line(&stderr, "lcd", &["no-such-dir"]);
    let (_, stderr) = fails(&server, &here, "lls no-such-dir");
    assert_one_error_line(&stderr, "lls", &["no-such-dir"]);
    // lls of a file lists the file.
    let out = ok(&server, &here, "lls up.txt");
    assert_eq!(out, "up.txt\n");
}

#[test]
fn concurrent_uploads_of_one_name_end_as_exactly_one_complete_upload() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    let clients = 5;
    let size = 6 << 20;
    let mut dirs = Vec::new();
    let mut digests = Vec::new();
    for i in 0..clients {
        let dir = tempfile::tempdir().unwrap();
        let data = random_bytes(size, 1000 + i as u64);
        write(&dir.path().join("mine.bin"), &data);
        digests.push(md5_hex(&data));
        dirs.push(dir);
    }
    for round in 0..2 {
        let children: Vec<Child> = dirs
            .iter()
            .map(|d| spawn_client(&server, d.path(), "put mine.bin shared.bin"))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr_of(&out));
            assert_summary(&stdout_of(&out), "shared.bin");
        }
        let got = md5_file(&root.path().join("shared.bin"));
        assert!(
            digests.contains(&got),
            "round {round}: shared.bin ({got}) is none of the uploads"
        );
        assert_eq!(len_of(&root.path().join("shared.bin")), size as u64);
        // No leftover temporary or partial file, hidden or not.
        assert_eq!(names_in(root.path()), ["shared.bin"], "round {round}");
    }
    let expected = md5_file(&root.path().join("shared.bin"));
    let out = ok(&server, root.path(), "md5 shared.bin");
    assert_eq!(out, format!("{expected}  shared.bin\n"));
}

#[test]
fn a_file_over_4_gib_lists_its_u64_size_and_hashes() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let size: u64 = (4 << 30) + 10;
    let path: PathBuf = root.path().join("huge.bin");
    // Sparse: 4 GiB of zeros, then ten bytes of data past the 32-bit limit.
    let mut f = fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        f.seek(SeekFrom::Start(4 << 30)).unwrap();
        f.write_all(b"0123456789").unwrap();
    }
    drop(f);
    assert_eq!(len_of(&path), size);
    let server = Server::start(root.path());

    let out = ok(&server, local.path(), "ls -l; ls -l huge.bin");
    for line in out.lines() {
        assert!(line.contains(&format!(" {size} ")), "{line}");
        assert!(line.ends_with("huge.bin"), "{line}");
    }
    assert_eq!(out.lines().count(), 2, "{out}");

    // MD5 is optimised even in test builds (see Cargo.toml), so hashing the
    // 4 GiB here takes seconds; the full download is left to the benchmark.
    // The content is known: hash it from memory instead of reading it back.
    let expected = {
        let mut h = md5_stream();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..4096 {
            h.update(&zeros);
        }
        h.update(b"0123456789");
        h.hex()
    };
    let out = ok(&server, local.path(), "md5 huge.bin");
    assert_eq!(out, format!("{expected}  huge.bin\n"));
}

/// An incremental MD5 for data too big to hold in memory.
fn md5_stream() -> Md5Stream {
    Md5Stream(<md5::Md5 as md5::Digest>::new())
}

struct Md5Stream(md5::Md5);

impl Md5Stream {
    fn update(&mut self, data: &[u8]) {
        md5::Digest::update(&mut self.0, data);
    }
    fn hex(self) -> String {
        md5::Digest::finalize(self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The next reply on a raw connection, as text for assertions.
fn raw_reply(
    frames: &mut ftpsh_core::protocol::FrameReader,
    sock: &mut std::net::TcpStream,
) -> String {
    let frame = frames.read(sock).expect("a reply frame");
    format!(
        "{:?}",
        ftpsh_core::protocol::Reply::decode(frame.kind, frame.payload).expect("a valid reply")
    )
}

/// Uploads `data` over a raw session, announcing `size` and the digest `md5`;
/// returns the server's final reply.
fn raw_put(server: &Server, path: &str, size: u64, data: &[u8], md5: [u8; 16]) -> String {
    use ftpsh_core::protocol::Request;
    let mut sock = raw_connection(server, true);
    let mut frames = ftpsh_core::protocol::FrameReader::new();
    Request::Put {
        path: path.into(),
        size,
        resume: false,
        wait: true,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more: false,
    }
    .write_to(&mut sock)
    .unwrap();
    let ready = raw_reply(&mut frames, &mut sock);
    assert!(ready.starts_with("Ready"), "{ready}");
    for chunk in data.chunks(CHUNK) {
        Request::Data(chunk.to_vec()).write_to(&mut sock).unwrap();
    }
    Request::PutEnd { md5 }.write_to(&mut sock).unwrap();
    raw_reply(&mut frames, &mut sock)
}

#[test]
fn the_server_installs_an_upload_only_when_its_digest_and_size_match() {
    assert_eq!(ftpsh_core::protocol::DATA_CHUNK, CHUNK);
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("up.bin"), b"the server's copy");
    let server = Server::start(root.path());
    let data = random_bytes(2 * CHUNK + 1, 20);
    let good: [u8; 16] = {
        let hex = md5_hex(&data);
        std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
    };
    let mut bad = good;
    bad[15] ^= 1;

    // A digest that does not match the data: discarded, the old file stays.
    let reply = raw_put(&server, "up.bin", data.len() as u64, &data, bad);
    assert!(reply.contains("MD5 mismatch"), "{reply}");
    assert_content(&root.path().join("up.bin"), b"the server's copy");
    assert_eq!(names_in(root.path()), ["up.bin"]);
    let reply = raw_put(&server, "new.bin", data.len() as u64, &data, bad);
    assert!(reply.contains("MD5 mismatch"), "{reply}");
    assert_eq!(names_in(root.path()), ["up.bin"]);

    // More data than announced: refused, nothing installed.
    let reply = raw_put(&server, "up.bin", 10, &data[..20], good);
    assert!(reply.contains("more data than"), "{reply}");
    assert_content(&root.path().join("up.bin"), b"the server's copy");

    // Fewer bytes than announced, with the right digest of what was sent:
    // refused, nothing installed (a resumable partial may stay for `put -c`).
    let reply = raw_put(&server, "up.bin", data.len() as u64 + 1, &data, good);
    assert!(reply.contains("received"), "{reply}");
    assert_content(&root.path().join("up.bin"), b"the server's copy");

    // The honest upload goes in.
    let reply = raw_put(&server, "up.bin", data.len() as u64, &data, good);
    assert_eq!(reply, "Ok");
    assert_content(&root.path().join("up.bin"), &data);
    assert_eq!(names_in(root.path()), ["up.bin"]);
}

#[test]
fn put_c_of_a_file_the_server_has_in_full_uploads_nothing() {
    use std::os::unix::fs::MetadataExt;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 * CHUNK + 1, 21);
    write(&local.path().join("p.bin"), &data);
    let server = Server::start(root.path());
    ok(&server, local.path(), "put p.bin");
    let inode = fs::metadata(root.path().join("p.bin")).unwrap().ino();

    let out = ok(&server, local.path(), "put -c p.bin");
    assert!(out.contains("p.bin: already complete"), "{out}");
    let after = fs::metadata(root.path().join("p.bin")).unwrap().ino();
    assert_eq!(inode, after, "the complete file was uploaded again");

    // Same size, different content: uploaded and verified.
    let mut changed = data.clone();
    changed[CHUNK] ^= 0xff;
    write(&local.path().join("p.bin"), &changed);
    let out = ok(&server, local.path(), "put -c p.bin");
    assert!(!out.contains("already complete"), "{out}");
    assert_summary(&out, "p.bin");
    assert_content(&root.path().join("p.bin"), &changed);
}

// ------------------------------------------------- names near NAME_MAX (255)

/// Two 250-byte names sharing their first 240 bytes (two-byte characters, so a
/// shortened partial name must cut between characters), and a 248-byte one.
fn long_names() -> (String, String, String) {
    let stem = "é".repeat(120);
    let a = format!("{stem}aaaaaa.bin");
    let b = format!("{stem}bbbbbb.bin");
    let c = format!("{}.bin", "r".repeat(244));
    assert_eq!((a.len(), b.len(), c.len()), (250, 250, 248));
    (a, b, c)
}

/// The partial file ftpsh uses for `name` (on either side).
fn partial_of(name: &str) -> String {
    ftpsh_core::partial::partial_name(std::ffi::OsStr::new(name))
        .into_string()
        .expect("a UTF-8 name keeps a UTF-8 partial name")
}

#[test]
fn names_of_250_bytes_download_upload_and_resume() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (a, b, c) = long_names();
    let data = random_bytes(3 * CHUNK + 7, 21);
    let other = random_bytes(1000, 22);
    write(&root.path().join(&a), &data);
    write(&root.path().join(&b), &other);
    let server = Server::start(root.path());

    // Plain get and put, under the file's own name and to a 248-byte one.
    let out = ok(&server, local.path(), &format!("get {a}; get {b}"));
    assert_summary(&out, &a);
    assert_content(&local.path().join(&a), &data);
    assert_content(&local.path().join(&b), &other);
    assert_no_partials(local.path());
    ok(&server, local.path(), &format!("put {a} {c}"));
    assert_content(&root.path().join(&c), &data);
    fs::remove_file(root.path().join(&b)).unwrap();
    ok(&server, local.path(), &format!("put {b}"));
    assert_content(&root.path().join(&b), &other);
    assert_no_partials(root.path());

    // Partial names fit, keep the suffix, and differ for names sharing a prefix.
    for name in [&a, &b, &c] {
        let p = partial_of(name);
        assert!(p.len() <= 255, "{p:?} is {} bytes", p.len());
        assert!(p.ends_with(".ftpsh-part"), "{p:?}");
    }
    assert_ne!(partial_of(&a), partial_of(&b));

    // `get -c` finds the shortened partial: a damaged prefix proves that it
    // was continued (a fresh download would have succeeded), a good one is
    // completed, and either way no partial is left.
    fs::remove_file(local.path().join(&a)).unwrap();
    let partial = local.path().join(partial_of(&a));
    let mut bad = data[..CHUNK + 5].to_vec();
    bad[100] ^= 1;
    write(&partial, &bad);
    let (_, stderr) = fails(&server, local.path(), &format!("get -c {a}"));
    assert_one_error_line(&stderr, "get", &["MD5 mismatch"]);
    assert_eq!(names_in(local.path()), std::slice::from_ref(&b));
    write(&partial, &data[..CHUNK + 5]);
    ok(&server, local.path(), &format!("get -c {a}"));
    assert_content(&local.path().join(&a), &data);
    assert_no_partials(local.path());

    // `put -c` finds the server's shortened partial the same way.
    let newer = random_bytes(2 * CHUNK + 3, 23);
    write(&local.path().join(&b), &newer);
    let remote_partial = root.path().join(partial_of(&c));
    let mut bad = newer[..CHUNK].to_vec();
    bad[7] ^= 1;
    write(&remote_partial, &bad);
    let (_, stderr) = fails(&server, local.path(), &format!("put -c {b} {c}"));
    assert_one_error_line(&stderr, "put", &["MD5 mismatch"]);
    assert_content(&root.path().join(&c), &data);
    write(&remote_partial, &newer[..CHUNK]);
    ok(&server, local.path(), &format!("put -c {b} {c}"));
    assert_content(&root.path().join(&c), &newer);
    assert_no_partials(root.path());
}

#[test]
fn a_second_upload_of_a_250_byte_name_gets_a_private_partial_that_fits() {
    use ftpsh_core::protocol::Request;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (a, _, _) = long_names();
    let server = ServerBuilder::new(root.path())
        .arg("--stall-timeout=600")
        .start();

    // A raw upload holds the stable partial name while ftpsh uploads the same name.
    let held = random_bytes(CHUNK + 1, 24);
    let mut sock = raw_connection(&server, true);
    let mut frames = ftpsh_core::protocol::FrameReader::new();
    Request::Put {
        path: a.clone(),
        size: held.len() as u64,
        resume: false,
        wait: true,
        mode: 0o644,
        mtime: 0,
        keep: false,
        more: false,
    }
    .write_to(&mut sock)
    .unwrap();
    let ready = raw_reply(&mut frames, &mut sock);
    assert!(ready.starts_with("Ready"), "{ready}");

    let mine = random_bytes(5000, 25);
    write(&local.path().join("mine.bin"), &mine);
    let out = ok(&server, local.path(), &format!("put mine.bin {a}"));
    assert_summary(&out, &a);
    assert_content(&root.path().join(&a), &mine);

    // The held upload then completes under the stable name.
    for chunk in held.chunks(CHUNK) {
        Request::Data(chunk.to_vec()).write_to(&mut sock).unwrap();
    }
    let hex = md5_hex(&held);
    let md5: [u8; 16] =
        std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
    Request::PutEnd { md5 }.write_to(&mut sock).unwrap();
    assert_eq!(raw_reply(&mut frames, &mut sock), "Ok");
    assert_content(&root.path().join(&a), &held);
    assert_eq!(names_in(root.path()), [a]);
}

#[test]
fn trees_of_250_byte_names_skip_shortened_partials_and_resume_them() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let (a, b, _) = long_names();
    let data = random_bytes(2 * CHUNK + 11, 26);
    let other = random_bytes(700, 27);
    let tree = local.path().join("tree");
    write(&tree.join(&a), &data);
    write(&tree.join(format!("sub/{b}")), &other);
    // A leftover partial is ftpsh's own: never uploaded or downloaded.
    write(&tree.join(partial_of(&a)), b"a leftover");
    let server = Server::start(root.path());

    ok(&server, local.path(), "put -r tree");
    let r = root.path().join("tree");
    assert_eq!(names_in(&r), ["sub".to_string(), a.clone()]);
    assert_content(&r.join(&a), &data);
    assert_content(&r.join(format!("sub/{b}")), &other);

    write(
        &r.join(format!("sub/{}", partial_of(&b))),
        b"a server leftover",
    );
    let dl = local.path().join("dl");
    fs::create_dir(&dl).unwrap();
    ok(&server, &dl, "get -r tree");
    let back = dl.join("tree");
    assert_eq!(names_in(&back), ["sub".to_string(), a.clone()]);
    assert_eq!(names_in(&back.join("sub")), std::slice::from_ref(&b));
    assert_content(&back.join(&a), &data);

    // `put -r -c` sees the server's shortened partial and continues it: a
    // damaged one fails the whole-file digest, which a fresh upload would not.
    // (Two changed files: without a partial seen, they would go together in
    // one pipelined batch, which does not resume.)
    let newer = random_bytes(3 * CHUNK, 28);
    write(&tree.join(&a), &newer);
    let other2 = random_bytes(800, 30);
    write(&tree.join(format!("sub/{b}")), &other2);
    let mut bad = newer[..CHUNK].to_vec();
    bad[3] ^= 1;
    write(&r.join(partial_of(&a)), &bad);
    let (_, stderr) = fails(&server, local.path(), "put -r -c tree");
    assert!(stderr.contains("MD5 mismatch"), "{stderr}");
    assert_content(&r.join(&a), &data);
    write(&r.join(partial_of(&a)), &newer[..CHUNK]);
    ok(&server, local.path(), "put -r -c tree");
    assert_content(&r.join(&a), &newer);
    assert_content(&r.join(format!("sub/{b}")), &other2);
    assert_eq!(names_in(&r), ["sub".to_string(), a.clone()]);

    // `get -r -c` continues the local shortened partial the same way.
    fs::remove_file(back.join(&a)).unwrap();
    let mut bad = newer[..CHUNK + 1].to_vec();
    bad[9] ^= 1;
    write(&back.join(partial_of(&a)), &bad);
    let (_, stderr) = fails(&server, &dl, "get -r -c tree");
    assert!(stderr.contains("MD5 mismatch"), "{stderr}");
    write(&back.join(partial_of(&a)), &newer[..CHUNK + 1]);
    ok(&server, &dl, "get -r -c tree");
    assert_content(&back.join(&a), &newer);
    assert_eq!(names_in(&back), ["sub".to_string(), a]);
}

#[test]
fn a_symlink_planted_at_the_partial_name_is_refused_not_written_through() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let data = random_bytes(CHUNK + 3, 29);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    let victim = outside.path().join("victim.txt");
    write(&victim, b"someone else's file");
    let partial = local.path().join("data.bin.ftpsh-part");
    symlink(&victim, &partial).unwrap();

    // A fresh download (which would truncate), a resumed one (which would
    // continue the target), and a batch: each refuses, naming the partial and
    // what to do, and leaves the link and its target as they were.
    for command in ["get data.bin", "get -c data.bin"] {
        let (stdout, stderr) = fails(&server, local.path(), command);
        assert_eq!(stdout, "", "{command}");
        assert_one_error_line(
            &stderr,
            "get",
            &["data.bin.ftpsh-part", "symbolic link", "remove it"],
        );
        assert_content(&victim, b"someone else's file");
        assert!(fs::symlink_metadata(&partial).unwrap().is_symlink());
        assert_eq!(names_in(local.path()), ["data.bin.ftpsh-part"]);
    }
    for command in ["get d*.bin", "get -r -c ."] {
        let (_, stderr) = fails(&server, local.path(), command);
        assert!(
            stderr.contains("data.bin.ftpsh-part") && stderr.contains("remove it"),
            "{command}: {stderr}"
        );
        assert_content(&victim, b"someone else's file");
        assert!(fs::symlink_metadata(&partial).unwrap().is_symlink());
        assert_eq!(names_in(local.path()), ["data.bin.ftpsh-part"]);
    }

    // A dangling link is refused too: nothing is created where it points.
    let nowhere = outside.path().join("created.txt");
    fs::remove_file(&partial).unwrap();
    symlink(&nowhere, &partial).unwrap();
    let (_, stderr) = fails(&server, local.path(), "get data.bin");
    assert_one_error_line(&stderr, "get", &["data.bin.ftpsh-part", "remove it"]);
    assert!(!nowhere.exists(), "the download created the link's target");

    // Once the link is removed, the download goes through.
    fs::remove_file(&partial).unwrap();
    ok(&server, local.path(), "get data.bin");
    assert_content(&local.path().join("data.bin"), &data);
    assert_content(&victim, b"someone else's file");
}

// ------------------------------------- destinations that are not plain files

/// Sends `signal` to a process we started.
fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child; no memory is involved.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

#[test]
fn two_downloads_to_one_destination_never_install_a_mixture() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let first = random_bytes(INTERRUPTED_SIZE, 61);
    let second = random_bytes(INTERRUPTED_SIZE, 62);
    write(&root.path().join("first.bin"), &first);
    write(&root.path().join("second.bin"), &second);
    let server = Server::start(root.path());
    let dest = local.path().join("dest.bin");
    let partial = local.path().join("dest.bin.ftpsh-part");

    // The first download is frozen halfway, holding its partial.
    let a = spawn_client(&server, local.path(), "get first.bin dest.bin");
    assert!(wait_for_partial(&partial, first.len() as u64));
    signal(&a, libc::SIGSTOP);
    let (_, stderr) = fails(&server, local.path(), "get second.bin dest.bin");
    assert_one_error_line(&stderr, "get", &["dest.bin.ftpsh-part", "another download"]);
    assert!(!dest.exists(), "the refused download installed something");

    signal(&a, libc::SIGCONT);
    let out = a.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_summary(&stdout_of(&out), "dest.bin");
    assert_content(&dest, &first);
    assert_no_partials(local.path());
}

#[test]
fn a_download_into_a_named_pipe_writes_through_it() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 * CHUNK + 7, 63);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    let fifo = local.path().join("pipe");
    mkfifo(&fifo);

    // Nobody reading: a clear error at once, not a hang, and the pipe stays.
    let (_, stderr) = fails(&server, local.path(), "get data.bin pipe");
    assert_one_error_line(&stderr, "get", &["nothing is reading", "pipe"]);

    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    // Until the reader waits in open(), the download finds nobody reading.
    let mut out = run(&server, local.path(), "get data.bin pipe");
    let started = Instant::now();
    while !out.status.success() && started.elapsed() < EVENT {
        assert!(
            stderr_of(&out).contains("nothing is reading"),
            "{}",
            stderr_of(&out)
        );
        std::thread::sleep(Duration::from_millis(20));
        out = run(&server, local.path(), "get data.bin pipe");
    }
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_summary(&stdout_of(&out), "pipe");
    assert_eq!(reader.join().unwrap(), data);
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names_in(local.path()), ["pipe"]);
    let (_, stderr) = fails(&server, local.path(), "get -c data.bin pipe");
    assert_one_error_line(&stderr, "get", &["not a regular file"]);
}

#[test]
fn a_download_to_our_own_stdout_is_exactly_the_file() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(CHUNK + 99, 64);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    // What /dev/stdout is, without touching /dev: a link to our descriptor 1.
    symlink("/proc/self/fd/1", local.path().join("out")).unwrap();
    let out = run(&server, local.path(), "get data.bin out");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
    assert!(
        out.stdout == data,
        "stdout is the file, with no summary line"
    );
    assert!(fs::symlink_metadata(local.path().join("out"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_link_at_the_destination_stays_and_a_replaced_file_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(1000, 65);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    let l = local.path();
    fs::create_dir(l.join("real")).unwrap();
    write(&l.join("real/target.bin"), b"old");
    symlink("real/target.bin", l.join("link")).unwrap();
    symlink("real/new.bin", l.join("dangling")).unwrap();
    write(&l.join("private"), b"secret");
    fs::set_permissions(l.join("private"), fs::Permissions::from_mode(0o600)).unwrap();

    ok(
        &server,
        l,
        "get data.bin link; get data.bin dangling; get data.bin private",
    );
    assert!(fs::symlink_metadata(l.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_content(&l.join("real/target.bin"), &data);
    assert!(fs::symlink_metadata(l.join("dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_content(&l.join("real/new.bin"), &data);
    assert_content(&l.join("private"), &data);
    let mode = fs::metadata(l.join("private"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600, "a private file stays private");
    assert_no_partials(l);
    assert_no_partials(&l.join("real"));
}

#[test]
fn an_empty_local_name_fails_before_anything_is_downloaded() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    write(&root.path().join("data.bin"), b"data");
    let server = Server::start(root.path());
    let (_, stderr) = fails(&server, local.path(), "get data.bin ''");
    assert_one_error_line(&stderr, "get", &["local name is empty"]);
    assert!(
        names_in(local.path()).is_empty(),
        "{:?}",
        names_in(local.path())
    );
}

#[test]
fn put_of_a_device_or_a_pipe_is_refused_and_leaves_nothing_on_the_server() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    mkfifo(&local.path().join("pipe"));
    for (source, name) in [("/dev/zero", "zero"), ("pipe", "pipe")] {
        let (_, stderr) = fails(&server, local.path(), &format!("put {source} {name}"));
        assert_one_error_line(&stderr, "put", &[source, "not a regular file"]);
        let (_, stderr) = fails(&server, local.path(), &format!("put -c {source} {name}"));
        assert_one_error_line(&stderr, "put", &[source, "not a regular file"]);
    }
    assert!(
        names_in(root.path()).is_empty(),
        "{:?}",
        names_in(root.path())
    );
}

#[test]
fn uploads_to_partial_file_names_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    write(&local.path().join("x"), b"mine");
    let server = Server::start(root.path());
    let (_, stderr) = fails(&server, local.path(), "put x doc.txt.ftpsh-part");
    assert_one_error_line(&stderr, "put", &["doc.txt.ftpsh-part", "partial"]);
    assert!(
        names_in(root.path()).is_empty(),
        "{:?}",
        names_in(root.path())
    );
}

#[test]
fn md5_of_a_directory_says_so_without_suggesting_get() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("dir")).unwrap();
    let server = Server::start(root.path());
    let (_, stderr) = fails(&server, local.path(), "md5 dir");
    assert_eq!(stderr, "ftpsh: md5: /dir: is a directory\n");
}

#[test]
fn ctrl_c_while_get_c_hashes_a_huge_kept_part_stops_at_once() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // 64 GiB of holes on both sides: minutes of hashing, no disk space.
    let size: u64 = 64 << 30;
    fs::File::create(root.path().join("huge.bin"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let partial = local.path().join("huge.bin.ftpsh-part");
    fs::File::create(&partial)
        .unwrap()
        .set_len(size - (1 << 20))
        .unwrap();
    let server = Server::start(root.path());
    let client = spawn_client(&server, local.path(), "get -c huge.bin");
    // The client is hashing the kept part once it has burnt some CPU on it.
    assert!(
        wait_until(EVENT, || cpu_seconds(client.id()) > 0.5),
        "the client never started hashing"
    );
    signal(&client, libc::SIGINT);
    let started = Instant::now();
    let mut client = client;
    let status = loop {
        if let Some(s) = client.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > EVENT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(status) = status else {
        let _ = client.kill();
        panic!("Ctrl-C did not stop the hashing of the kept part");
    };
    let out = client.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&out));
    assert_one_error_line(&stderr_of(&out), "get", &["interrupted", "get -c"]);
    assert_eq!(
        len_of(&partial),
        size - (1 << 20),
        "the kept part is untouched"
    );
    // The server stops hashing its side for a client that left.
    assert!(
        wait_until(EVENT, || server.log_text().contains("disconnected")),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_download_to_a_stdout_that_closes_stops_quietly() {
    use std::io::Read;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Far more than a pipe holds, so the download meets the closed pipe.
    write(&root.path().join("data.bin"), &random_bytes(16 << 20, 66));
    let server = Server::start(root.path());
    symlink("/proc/self/fd/1", local.path().join("out")).unwrap();
    let mut client = spawn_client(&server, local.path(), "get data.bin out; echo after");
    let mut head = [0u8; 10];
    client.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The reader is gone (as `| head -c 10` would be).
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "", "a closed stdout is no error to report");
}

#[test]
fn a_download_to_a_stdout_redirected_to_a_file_appends_to_it() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(CHUNK + 5, 67);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    symlink("/proc/self/fd/1", local.path().join("out")).unwrap();
    // `>> log.txt`: the file stdout goes to must be appended to, not replaced.
    let log = local.path().join("log.txt");
    write(&log, b"earlier lines\n");
    let stdout = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let out = client_process(&server, local.path())
        .args(["-c", "echo before; get data.bin out; echo after"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut expected = b"earlier lines\nbefore\n".to_vec();
    expected.extend_from_slice(&data);
    expected.extend_from_slice(b"after\n");
    assert!(
        fs::read(&log).unwrap() == expected,
        "log.txt is not appended to"
    );
}

#[test]
fn a_link_another_user_made_in_a_shared_directory_is_not_followed() {
    // SAFETY: geteuid only reads our credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a link owned by another user needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    write(&root.path().join("data.bin"), b"data");
    let server = Server::start(root.path());
    let shared = local.path().join("tmp");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    write(&local.path().join("precious"), b"mine");
    let link = shared.join("x");
    symlink(local.path().join("precious"), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let (_, stderr) = fails(&server, local.path(), "get data.bin tmp/x");
    assert_one_error_line(&stderr, "get", &["tmp/x", "another user"]);
    assert_content(&local.path().join("precious"), b"mine");
    // Our own link there is followed.
    std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
    ok(&server, local.path(), "get data.bin tmp/x");
    assert_content(&local.path().join("precious"), b"data");
}

#[test]
fn a_plain_name_is_replaced_even_when_stdout_goes_to_that_file() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    write(&root.path().join("new.txt"), b"downloaded\n");
    let server = Server::start(root.path());
    let log = local.path().join("log.txt");
    write(&log, b"earlier\n");
    let stdout = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let out = client_process(&server, local.path())
        .args(["-c", "get new.txt log.txt"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // As `cp new.txt log.txt` would: the name now holds the download.
    assert_content(&log, b"downloaded\n");
}

#[test]
fn a_download_to_a_non_blocking_stdout_pipe_is_complete() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(4 * CHUNK, 68);
    write(&root.path().join("data.bin"), &data);
    let server = Server::start(root.path());
    symlink("/proc/self/fd/1", local.path().join("out")).unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two descriptors we own; fcntl only changes the
    // write end's status flags (shared with the child, as a parent's would be).
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        assert_eq!(
            libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK),
            0
        );
    }
    // SAFETY: each descriptor is owned once, here.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut client = client_process(&server, local.path())
        .args(["-c", "get data.bin out"])
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A slow reader: the pipe fills, and a non-blocking write would fail.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    fs::File::from(read_end).read_to_end(&mut got).unwrap();
    let status = client.wait().unwrap();
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
}

#[test]
fn a_hard_link_at_the_servers_partial_name_is_never_written_through() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // Another file of the tree, hard-linked where `put -c` looks for a partial.
    write(&root.path().join("precious.txt"), b"do not touch");
    fs::hard_link(
        root.path().join("precious.txt"),
        root.path().join("up.bin.ftpsh-part"),
    )
    .unwrap();
    let data = random_bytes(100_000, 77);
    write(&local.path().join("up.bin"), &data);
    let server = Server::start(root.path());
    for cmd in ["put -c up.bin", "put up.bin"] {
        let out = run(&server, local.path(), cmd);
        assert!(out.status.success(), "{cmd}: {}", stderr_of(&out));
        assert_content(&root.path().join("precious.txt"), b"do not touch");
        assert_content(&root.path().join("up.bin"), &data);
    }
}
