//! The everyday verbs of sftp and lftp users (issue 13): rename/mv, chmod,
//! rmdir, ln -s, stat, df, cat, !, lmkdir, lrm, lrename, cd -, ls with its
//! sorting, human sizes and globs, rm with globs. Each against the real
//! server and client: what succeeds does its job; what fails fails with one
//! line naming the problem, and changes nothing on either side.

use crate::common::*;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A root with a link `out` leading to a directory outside it, a home, and
/// a server.
struct Fx {
    root: tempfile::TempDir,
    home: tempfile::TempDir,
    outside: tempfile::TempDir,
    server: Server,
}

impl Fx {
    fn new() -> Fx {
        Fx::with(ServerBuilder::new)
    }

    fn with(builder: impl FnOnce(&Path) -> ServerBuilder) -> Fx {
        let root = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "secret").unwrap();
        fs::create_dir(outside.path().join("sub")).unwrap();
        symlink(outside.path(), root.path().join("out")).unwrap();
        let server = builder(root.path()).start();
        Fx {
            root,
            home,
            outside,
            server,
        }
    }

    fn r(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn h(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    fn run(&self, script: &str) -> Output {
        self.server
            .client(self.home.path())
            .write_stdin(format!("{script}\n"))
            .output()
            .unwrap()
    }

    /// Runs a script that must succeed silently on stderr; its stdout.
    fn ok(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(
            out.status.success(),
            "{script:?} failed:\n{}",
            stderr_of(&out)
        );
        assert_eq!(stderr_of(&out), "", "{script:?}");
        stdout_of(&out)
    }

    /// Runs one command that must fail with one line `ftpsh: VERB: ...`
    /// holding each of `needles`.
    fn fails(&self, command: &str, needles: &[&str]) {
        let out = self.run(command);
        assert!(!out.status.success(), "{command:?} succeeded");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{command:?}: not one line:\n{err}");
        let verb = command.split_whitespace().next().unwrap();
        let verb = if verb.starts_with('!') { "!" } else { verb };
        assert!(
            err.starts_with(&format!("ftpsh: {verb}: ")),
            "{command:?}: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "{command:?}: {err:?} lacks {n:?}");
        }
        assert!(!err.contains("os error"), "{command:?}: {err}");
    }

    /// The names in the root (and the home), to see that nothing changed.
    fn snapshot(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            tree(self.root.path()),
            tree(self.home.path()),
            tree(self.outside.path()),
        )
    }
}

/// Every path below `dir` with its mode and content length (links not followed).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push(format!("{rel} {:o} {}", m.permissions().mode(), m.len()));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn rename_and_mv_move_names_and_refuse_a_directory_an_existing_name_and_the_outside() {
    let f = Fx::new();
    fs::write(f.r("a.txt"), "a").unwrap();
    fs::write(f.r("b.txt"), "b").unwrap();
    fs::write(f.r("c.txt"), "c").unwrap();
    fs::create_dir(f.r("d")).unwrap();
    fs::create_dir(f.r("full")).unwrap();
    f.ok("rename a.txt d/x.txt");
    assert_eq!(fs::read(f.r("d/x.txt")).unwrap(), b"a");
    assert!(!f.r("a.txt").exists());
    f.ok("mv d e");
    assert_eq!(fs::read(f.r("e/x.txt")).unwrap(), b"a");
    assert!(!f.r("d").exists());

    let before = f.snapshot();
    f.fails("rename nope z", &["/nope: no such file or directory"]);
    f.fails("rename b.txt full", &["/full: is an existing directory"]);
    f.fails("mv b.txt c.txt", &["/c.txt: already exists"]);
    f.fails("rename b.txt out/b.txt", &["leads outside the served root"]);
    f.fails("rename out/secret mine", &["leads outside the served root"]);
    f.fails("rename / x", &["refusing to rename the root"]);
    f.fails("rename e e/inner", &["into itself"]);
    f.fails("rename b.txt", &["usage: rename OLD NEW"]);
    assert_eq!(f.snapshot(), before, "a refused rename changed something");
}

#[test]
fn chmod_sets_octal_and_symbolic_modes_and_refuses_bad_ones() {
    let f = Fx::new();
    fs::write(f.r("f"), "f").unwrap();
    fs::create_dir(f.r("dir")).unwrap();
    set_mode(&f.r("f"), 0o666);
    f.ok("chmod u+x,go-w f");
    assert_eq!(mode(&f.r("f")), 0o744);
    f.ok("chmod 640 f");
    assert_eq!(mode(&f.r("f")), 0o640);
    f.ok("chmod a=r f");
    assert_eq!(mode(&f.r("f")), 0o444);
    set_mode(&f.r("dir"), 0o700);
    f.ok("chmod go+rX dir");
    assert_eq!(mode(&f.r("dir")), 0o755);

    let before = f.snapshot();
    for bad in ["u+q", "999", "rwx", "u+x,", "12345"] {
        f.fails(&format!("chmod {bad} f"), &["not a mode"]);
    }
    f.fails("chmod 600 nope", &["/nope: no such file or directory"]);
    f.fails("chmod 600 out/secret", &["leads outside the served root"]);
    f.fails("chmod g+w out/secret", &["leads outside the served root"]);
    assert_eq!(f.snapshot(), before, "a refused chmod changed something");
}

#[test]
fn rmdir_removes_empty_directories_only() {
    let f = Fx::new();
    fs::create_dir_all(f.r("a/empty")).unwrap();
    fs::write(f.r("file"), "x").unwrap();
    f.ok("rmdir a/empty");
    assert!(!f.r("a/empty").exists());
    fs::write(f.r("a/x"), "x").unwrap();
    let before = f.snapshot();
    f.fails("rmdir a", &["/a: directory not empty"]);
    f.fails("rmdir nope", &["/nope: no such file or directory"]);
    f.fails("rmdir file", &["/file: not a directory"]);
    f.fails("rmdir out/sub", &["leads outside the served root"]);
    f.fails("rmdir /", &["refusing to remove the root"]);
    assert_eq!(f.snapshot(), before);
}

#[test]
fn ln_s_makes_links_that_stay_inside_and_refuses_the_others() {
    let f = Fx::new();
    fs::create_dir(f.r("docs")).unwrap();
    fs::write(f.r("docs/f.txt"), "content").unwrap();
    f.ok("ln -s docs/f.txt l; ln -s f.txt docs/l2; ln -s ../docs docs/up");
    assert_eq!(fs::read_link(f.r("l")).unwrap(), Path::new("docs/f.txt"));
    assert_eq!(f.ok("cat l docs/l2 docs/up/f.txt"), "contentcontentcontent");

    let before = f.snapshot();
    f.fails(
        "ln -s ../../etc/passwd x",
        &["leads outside the served root"],
    );
    f.fails("ln -s /etc/passwd x", &["leads outside the served root"]);
    f.fails("ln -s ../.. docs/x", &["leads outside the served root"]);
    f.fails("ln -s out x", &["leads outside the served root"]);
    f.fails("ln -s docs/f.txt l", &["/l: already exists"]);
    f.fails("ln -s f.txt nope/l", &["no such file or directory"]);
    f.fails("ln docs/f.txt hard", &["-s"]);
    assert_eq!(f.snapshot(), before, "a refused link changed something");
}

#[test]
fn stat_shows_type_size_mode_time_and_link_target() {
    let f = Fx::new();
    fs::write(f.r("f.txt"), "12345").unwrap();
    set_mode(&f.r("f.txt"), 0o640);
    symlink("f.txt", f.r("l")).unwrap();
    fs::create_dir(f.r("d")).unwrap();
    let out = f.ok("stat f.txt l d");
    assert!(
        out.contains(
            "  File: f.txt\n  Type: regular file\n  Size: 5\n  Mode: 0640 (-rw-r-----)\nModify: 20"
        ),
        "{out}"
    );
    assert!(
        out.contains("  File: l -> f.txt\n  Type: symbolic link\n"),
        "{out}"
    );
    assert!(out.contains("  File: d\n  Type: directory\n"), "{out}");
    assert_eq!(out.matches(" UTC\n").count(), 3, "{out}");
    f.fails("stat nope", &["/nope: no such file or directory"]);
    f.fails("stat out/secret", &["leads outside the served root"]);
}

#[test]
fn df_reports_sane_sizes() {
    let f = Fx::new();
    let out = f.ok("df");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Size", "Used", "Avail", "Use%", "Path"]
    );
    let n: Vec<&str> = lines[1].split_whitespace().collect();
    let (size, used, avail): (u64, u64, u64) = (
        n[0].parse().unwrap(),
        n[1].parse().unwrap(),
        n[2].parse().unwrap(),
    );
    assert!(size > 0 && used <= size && avail <= size, "{out}");
    let percent: u64 = n[3].trim_end_matches('%').parse().unwrap();
    assert!(percent <= 100, "{out}");
    assert_eq!(n[4], "/");
    let human = f.ok("df -h /");
    assert!(human.contains("iB") || human.contains(" B "), "{human}");
    assert!(human.lines().nth(1).unwrap().ends_with(" /"), "{human}");
    f.fails("df nope", &["/nope: no such file or directory"]);
    f.fails("df out", &["leads outside the served root"]);
}

#[test]
fn cat_prints_files_exactly_and_verifies_them() {
    let f = Fx::new();
    let data = random_bytes(700_000, 13);
    fs::write(f.r("big.bin"), &data).unwrap();
    fs::write(f.r("small.txt"), "small\n").unwrap();
    fs::create_dir(f.r("dir")).unwrap();
    let out = f
        .server
        .client(f.home.path())
        .write_stdin("cat big.bin small.txt\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut want = data.clone();
    want.extend_from_slice(b"small\n");
    assert!(out.stdout == want, "cat's output is not the files");
    f.fails("cat nope", &["/nope: no such file or directory"]);
    f.fails("cat out/secret", &["leads outside the served root"]);
    f.fails("cat dir", &["/dir"]);

    #[cfg(debug_assertions)]
    {
        let liar = Fx::with(|root| ServerBuilder::new(root).arg("--debug-corrupt-md5"));
        fs::write(liar.r("small.txt"), "small\n").unwrap();
        let out = liar.run("cat small.txt");
        assert!(!out.status.success());
        assert_eq!(stdout_of(&out), "small\n");
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("MD5 mismatch"), "{err}");
        assert!(
            err.contains("the data written to stdout is not the file"),
            "{err}"
        );
    }
}

#[test]
fn bang_runs_local_commands_unsplit_and_refuses_a_shell_in_a_script() {
    let f = Fx::new();
    let out = f.ok("!echo one; echo 'two  spaced' > made.txt\necho after");
    assert_eq!(out, "one\nafter\n");
    assert_eq!(
        fs::read_to_string(f.h("made.txt")).unwrap(),
        "two  spaced\n"
    );
    assert_eq!(
        f.ok("! pwd").trim_end(),
        f.home.path().canonicalize().unwrap().display().to_string()
    );
    f.fails("!exit 3", &["local command exited with status 3"]);
    f.fails("!", &["only at a terminal"]);
    // A tolerated failure lets the script go on.
    let out = f.run("-!false\necho went on");
    assert_eq!(stdout_of(&out), "went on\n");
}

#[test]
fn local_verbs_make_remove_and_rename_and_refuse_what_rename_refuses() {
    let f = Fx::new();
    f.ok("lmkdir -p a/b/c; lmkdir d");
    assert!(f.h("a/b/c").is_dir() && f.h("d").is_dir());
    fs::write(f.h("a/b/c/file"), "x").unwrap();
    fs::write(f.h("x.txt"), "x").unwrap();
    fs::write(f.h("y.txt"), "y").unwrap();
    f.ok("lrename x.txt d/moved.txt");
    assert_eq!(fs::read(f.h("d/moved.txt")).unwrap(), b"x");

    let before = f.snapshot();
    f.fails("lmkdir d", &["d: already exists"]);
    f.fails("lmkdir no/parent", &["no such file or directory"]);
    f.fails("lrm a", &["a: directory not empty (use lrm -r)"]);
    f.fails("lrm nope", &["nope: no such file or directory"]);
    f.fails("lrename y.txt d", &["d: is an existing directory"]);
    f.fails("lrename y.txt d/moved.txt", &["already exists"]);
    f.fails("lrename nope z", &["nope: no such file or directory"]);
    assert_eq!(
        f.snapshot(),
        before,
        "a refused local verb changed something"
    );

    f.ok("lrm y.txt; lrm -r a; lrm d/moved.txt; lrm d");
    assert!(!f.h("y.txt").exists() && !f.h("a").exists() && !f.h("d").exists());
}

#[test]
fn cd_dash_goes_back_and_twice_toggles() {
    let f = Fx::new();
    fs::create_dir_all(f.r("docs/2026")).unwrap();
    f.fails("cd -", &["no previous remote directory"]);
    let out = f.ok("cd docs; cd 2026; cd -; pwd; cd -; pwd; cd -");
    assert_eq!(out, "/docs\n/docs\n/docs/2026\n/docs/2026\n/docs\n");
}

#[test]
fn ls_lists_long_with_human_sizes_sorted_and_with_link_targets() {
    let f = Fx::new();
    fs::write(f.r("big.bin"), vec![0u8; 2 << 20]).unwrap();
    fs::write(f.r("mid.bin"), vec![0u8; 3000]).unwrap();
    fs::write(f.r("small.txt"), "s").unwrap();
    fs::write(f.r(".hidden"), "h").unwrap();
    symlink("small.txt", f.r("link")).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for (name, age) in [("big.bin", 3), ("mid.bin", 1), ("small.txt", 2)] {
        let t = old + std::time::Duration::from_secs(1000 * (10 - age));
        fs::File::options()
            .write(true)
            .open(f.r(name))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    let long = f.ok("ls -lh");
    let line = |name: &str| {
        long.lines()
            .find(|l| {
                l.split(" -> ")
                    .next()
                    .unwrap()
                    .ends_with(&format!(" {name}"))
            })
            .unwrap_or_else(|| panic!("{name} not in:\n{long}"))
            .to_string()
    };
    assert!(line("big.bin").starts_with("-rw"), "{long}");
    assert!(line("big.bin").contains(" 2.0 MiB "), "{long}");
    assert!(line("mid.bin").contains(" 2.9 KiB "), "{long}");
    assert!(line("small.txt").contains(" 1 B "), "{long}");
    assert!(line("link").starts_with('l'), "{long}");
    assert!(line("link").ends_with(" link -> small.txt"), "{long}");
    assert!(!long.contains(".hidden"), "{long}");
    assert!(f.ok("ls -l").contains(" 2097152 "));
    assert!(f.ok("ls -a").contains(".hidden\n"));

    let names = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| l.trim_end_matches('@').to_string())
            .collect()
    };
    assert_eq!(
        names(f.ok("ls")),
        ["big.bin", "link", "mid.bin", "out", "small.txt"]
    );
    assert_eq!(
        names(f.ok("ls -1 -r")),
        ["small.txt", "out", "mid.bin", "link", "big.bin"]
    );
    assert_eq!(
        names(f.ok("ls -S *.bin *.txt")),
        ["big.bin", "mid.bin", "small.txt"]
    );
    assert_eq!(
        names(f.ok("ls -t *.bin *.txt")),
        ["mid.bin", "small.txt", "big.bin"]
    );
    assert_eq!(
        names(f.ok("ls -tr *.bin *.txt")),
        ["big.bin", "small.txt", "mid.bin"]
    );
    f.fails("ls nope", &["/nope: no such file or directory"]);
    f.fails("ls out/", &["leads outside the served root"]);
}

#[test]
fn ls_and_rm_expand_globs_on_the_server() {
    let f = Fx::new();
    for name in ["a.log", "b.log", "c.txt", "sub/d.log", "sub/e.txt"] {
        let p = f.r(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, name).unwrap();
    }
    assert_eq!(f.ok("ls *.log"), "a.log\nb.log\n");
    assert_eq!(f.ok("ls */*.txt c.txt"), "c.txt\nsub/e.txt\n");
    assert_eq!(f.ok("ls s*"), "d.log\ne.txt\n");
    assert_eq!(f.ok("ls c.txt s*"), "c.txt\n\nsub:\nd.log\ne.txt\n");
    f.fails("ls *.zip", &["*.zip: no match"]);

    f.ok("rm *.log sub/*.txt");
    assert!(!f.r("a.log").exists() && !f.r("b.log").exists() && !f.r("sub/e.txt").exists());
    assert!(f.r("c.txt").exists() && f.r("sub/d.log").exists());
    let before = f.snapshot();
    f.fails("rm *.zip", &["*.zip: no match"]);
    f.fails("rm nope", &["/nope: no such file or directory"]);
    f.fails("rm out/secret", &["leads outside the served root"]);
    assert_eq!(f.snapshot(), before);
    f.ok("rm -r s?b");
    assert!(!f.r("sub").exists());
}

/// `!` alone at a terminal: an interactive `$SHELL`; leaving it comes back to
/// the ftpsh prompt.
#[test]
fn bang_alone_at_a_terminal_starts_a_local_shell() {
    use rexpect::reader::Options;
    use rexpect::session::spawn_with_options;
    let f = Fx::new();
    let mut cmd = std::process::Command::new(bin("ftpsh"));
    cmd.arg(&f.server.addr)
        .arg("--norc")
        .current_dir(f.home.path())
        .env_remove("FTPSH_RC")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("HOME", f.home.path())
        .env("FTPSH_HISTORY", f.home.path().join("history"))
        .env("FTPSH_TOKEN", TOKEN)
        .env("SHELL", "/bin/sh")
        .env("PS1", "inner$ ");
    let options = Options::new()
        .timeout_ms(Some(10_000))
        .strip_ansi_escape_codes(true);
    let mut sh = spawn_with_options(cmd, options).unwrap();
    sh.exp_string("/> ").unwrap();
    sh.send_line("!").unwrap();
    sh.exp_string("inner$ ").unwrap();
    sh.send_line("echo made-$((40+2)) > from-inner").unwrap();
    sh.exp_string("inner$ ").unwrap();
    sh.send_line("exit").unwrap();
    sh.exp_string("/> ").unwrap();
    sh.send_line("lls").unwrap();
    sh.exp_string("from-inner").unwrap();
    sh.exp_string("/> ").unwrap();
    sh.send_line("quit").unwrap();
    sh.exp_eof().unwrap();
    assert_eq!(fs::read_to_string(f.h("from-inner")).unwrap(), "made-42\n");
}

/// Set-user-ID and set-group-ID bits are never given by a client: `chmod`
/// refuses them and `put -p` drops them (a copy must not become a program
/// that runs as the server's user).
#[test]
fn set_id_bits_are_refused_by_chmod_and_dropped_by_put_p() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    fs::write(root.path().join("prog"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.path().join("prog"), fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start(root.path());
    let out = server
        .client(local.path())
        .args(["-c", "chmod 4755 prog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_of(&out).contains("set-user-ID"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(mode(&root.path().join("prog")), 0o755);
    let out = server
        .client(local.path())
        .args(["-c", "chmod u+s prog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(mode(&root.path().join("prog")), 0o755);

    fs::write(local.path().join("suid"), b"x").unwrap();
    fs::set_permissions(
        local.path().join("suid"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let out = server
        .client(local.path())
        .args(["-c", "put -p suid"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&root.path().join("suid")), 0o755);
}
