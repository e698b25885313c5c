//! Options, scripts and messages (issue 13): `-h` is not help, errors from a
//! script file name `FILE:LINE` (`-f`, `-b`, `source`), a failure that a
//! leading `-` lets pass says so, `-q` keeps results and errors only, no
//! `(os error N)` in any message, the rate of `get -c` counts only what moved,
//! and a batch that copied nothing claims no `md5 ok`.

use std::path::Path;

use crate::common::*;

/// Exit status, stdout and stderr of one `ftpsh` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Fx {
    server: Server,
    root: tempfile::TempDir,
    local: tempfile::TempDir,
}

impl Fx {
    fn new() -> Fx {
        let root = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let server = ServerBuilder::new(root.path()).allow_exec().start();
        Fx {
            server,
            root,
            local,
        }
    }

    fn local(&self) -> &Path {
        self.local.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self
            .server
            .client(self.local())
            .args(args)
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: stdout_of(&out),
            stderr: stderr_of(&out),
        };
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        assert!(
            !run.stderr.contains("os error"),
            "an OS error number: {run:?}"
        );
        run
    }
}

#[test]
fn dash_h_is_not_help_get_rh_fails_as_a_usage_error_in_a_script() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root.path().join("x")).unwrap();
    let run = fx.run(&["-c", "get -rh x\necho after"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "the script went on: {run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("ftpsh: get: unexpected argument -h found (usage: get "),
        "{run:?}"
    );
    assert!(!fx.local().join("x").exists());
}

#[test]
fn errors_from_a_script_file_name_file_and_line_with_f_b_and_source() {
    let fx = Fx::new();
    let script = fx.local().join("s.ftp");
    std::fs::write(&script, "echo one\n\n# a comment\nrm nothere\necho never\n").unwrap();
    std::fs::write(
        fx.local().join("outer.ftp"),
        "echo outer\nsource s.ftp\necho never\n",
    )
    .unwrap();
    for flag in ["-f", "-b"] {
        let run = fx.run(&[flag, "s.ftp"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(run.stdout, "one\n", "{run:?}");
        assert_eq!(
            run.stderr, "ftpsh: s.ftp:4: rm: /nothere: no such file or directory\n",
            "{flag}: {run:?}"
        );
    }
    let run = fx.run(&["-f", "outer.ftp"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "outer\none\n", "{run:?}");
    assert_eq!(
        run.stderr,
        "ftpsh: s.ftp:4: rm: /nothere: no such file or directory\n\
         ftpsh: outer.ftp:2: source: s.ftp: a command failed\n",
        "{run:?}"
    );
    // Commands given with -c have no file to name.
    let run = fx.run(&["-c", "rm nothere"]);
    assert_eq!(
        run.stderr,
        "ftpsh: rm: /nothere: no such file or directory\n"
    );
}

#[test]
fn a_failure_that_a_leading_dash_tolerates_is_reported_as_tolerated() {
    let fx = Fx::new();
    std::fs::write(
        fx.local().join("s.ftp"),
        "-rm nothere\necho after\nalias tryrm 'rm $1'\n-tryrm gone\n",
    )
    .unwrap();
    let run = fx.run(&["-f", "s.ftp"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "after\n", "{run:?}");
    assert_eq!(
        run.stderr,
        "ftpsh: s.ftp:1: rm: /nothere: no such file or directory \
         (tolerated: the line starts with '-')\n\
         ftpsh: s.ftp:4: rm: /gone: no such file or directory \
         (tolerated: the line starts with '-')\n",
        "{run:?}"
    );
    // Without the dash: a plain failure, and the status says so.
    let run = fx.run(&["-c", "echo a; rm nothere"]);
    assert_eq!(run.code, 1);
    assert!(!run.stderr.contains("tolerated"), "{run:?}");
}

#[test]
fn quiet_prints_results_and_errors_but_no_summaries() {
    let fx = Fx::new();
    std::fs::write(fx.root.path().join("a.txt"), b"alpha\n").unwrap();
    std::fs::create_dir(fx.root.path().join("d")).unwrap();
    std::fs::write(fx.root.path().join("d/b.txt"), b"beta\n").unwrap();
    std::fs::write(fx.local().join("up.txt"), b"up\n").unwrap();
    let script = "get a.txt\nget -r d\nput up.txt\nls\npwd\necho said\nmd5 a.txt";
    let run = fx.run(&["-q", "-c", script]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "a.txt\nd/\nup.txt\n/\nsaid\n{}  a.txt\n",
            md5_hex(b"alpha\n")
        ),
        "{run:?}"
    );
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(
        std::fs::read(fx.local().join("d/b.txt")).unwrap(),
        b"beta\n"
    );
    assert_eq!(
        std::fs::read(fx.root.path().join("up.txt")).unwrap(),
        b"up\n"
    );
    // Errors are still printed, and the status still counts them.
    let run = fx.run(&["-q", "-c", "get nothere"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert_eq!(
        run.stderr,
        "ftpsh: get: /nothere: no such file or directory\n"
    );
    // Without -q, the summary is there.
    let run = fx.run(&["-c", "get a.txt"]);
    assert!(run.stdout.starts_with("a.txt: 6 B in "), "{run:?}");
}

#[test]
fn local_errors_read_as_words_without_os_error_numbers() {
    let fx = Fx::new();
    std::fs::write(fx.root.path().join("f"), b"data\n").unwrap();
    std::fs::write(fx.local().join("plain"), b"x").unwrap();
    let cases = [
        (
            "get f nodir/sub/f",
            "ftpsh: get: cannot write nodir/sub/f.ftpsh-part: no such file or directory\n",
        ),
        (
            "lcd plain",
            "ftpsh: lcd: cannot change to plain: not a directory\n",
        ),
        (
            "put nofile",
            "ftpsh: put: cannot read nofile: no such file or directory\n",
        ),
    ];
    for (line, stderr) in cases {
        let run = fx.run(&["-c", line]);
        assert_eq!(run.code, 1, "{line}: {run:?}");
        assert_eq!(run.stderr, stderr, "{line}: {run:?}");
    }
    // The script file itself.
    let run = fx.run(&["-f", "no-such-script"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.ends_with(": no such file or directory\n"),
        "{run:?}"
    );
}

#[test]
fn get_c_counts_only_the_bytes_it_moved_and_an_empty_batch_claims_no_md5() {
    let fx = Fx::new();
    let data = random_bytes(2 << 20, 13);
    std::fs::write(fx.root.path().join("big"), &data).unwrap();
    std::fs::write(fx.local().join("big.ftpsh-part"), &data[..(3 << 19)]).unwrap();
    let run = fx.run(&["-c", "get -c big"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("big: 2.0 MiB in "), "{run:?}");
    assert!(
        run.stdout.ends_with(", resumed after 1.5 MiB), md5 ok\n"),
        "{run:?}"
    );
    assert_eq!(md5_file(&fx.local().join("big")), md5_hex(&data));

    // Both destinations are directories: nothing can be installed.
    std::fs::write(fx.root.path().join("small"), b"s").unwrap();
    std::fs::create_dir_all(fx.local().join("out/big")).unwrap();
    std::fs::create_dir_all(fx.local().join("out/small")).unwrap();
    let run = fx.run(&["-c", "get big small out"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.starts_with("0 files in "), "{run:?}");
    assert!(run.stdout.ends_with(" s, 2 failed\n"), "{run:?}");
    assert!(!run.stdout.contains("md5 ok"), "{run:?}");
}

#[test]
fn quiet_mirror_prints_no_summary_but_its_dry_run_plan() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root.path().join("d")).unwrap();
    std::fs::write(fx.root.path().join("d/f"), b"f\n").unwrap();
    let run = fx.run(&["-q", "-c", "mirror --dry-run d"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "mkdir d\nsend d/f\ndry run: nothing was changed\n"
    );
    let run = fx.run(&["-q", "-c", "mirror d; mirror d"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(std::fs::read(fx.local().join("d/f")).unwrap(), b"f\n");
    // Without -q, the summary is there.
    let run = fx.run(&["-c", "mirror d"]);
    assert_eq!(
        run.stdout, "nothing to do: 1 file up to date, nothing sent\n",
        "{run:?}"
    );
}

#[test]
fn put_c_says_it_resumed_and_counts_only_the_bytes_it_moved() {
    let fx = Fx::new();
    let data = random_bytes(2 << 20, 14);
    std::fs::write(fx.local().join("big"), &data).unwrap();
    std::fs::write(fx.root.path().join("big.ftpsh-part"), &data[..(3 << 19)]).unwrap();
    let run = fx.run(&["-c", "put -c big"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("big: 2.0 MiB in "), "{run:?}");
    assert!(
        run.stdout.ends_with(", resumed after 1.5 MiB), md5 ok\n"),
        "{run:?}"
    );
    assert_eq!(md5_file(&fx.root.path().join("big")), md5_hex(&data));
}

#[test]
fn the_server_s_start_up_errors_read_as_words_without_os_error_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (
            &["--root", "nothere"],
            "ftpsh-server: cannot serve nothere: no such file or directory\n",
        ),
        (
            &["--token-file", "nothere"],
            "ftpsh-server: cannot read --token-file nothere: no such file or directory\n",
        ),
    ];
    for (args, stderr) in cases {
        let out = std::process::Command::new(bin("ftpsh-server"))
            .current_dir(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(stderr_of(&out), stderr, "{args:?}");
    }
}

#[test]
fn an_option_for_another_kind_of_address_is_a_usage_error_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix:{}", dir.path().join("sock").display());
    let cases: [(&[&str], &str); 4] = [
        (&["--tls"], "ftpsh: --tls applies only to a TCP address"),
        (
            &["--fingerprint", "SHA256:AAAA", &sock],
            "ftpsh: --fingerprint applies only to a TCP address",
        ),
        (
            &["--tls", &sock],
            "ftpsh: --tls applies only to a TCP address",
        ),
        (
            &["--remote-command", "/opt/ftpsh-server"],
            "ftpsh: --remote-command applies only to an ssh:// address",
        ),
    ];
    for (args, start) in cases {
        let out = std::process::Command::new(bin("ftpsh"))
            .current_dir(dir.path())
            .args(["--norc", "-c", "pwd"])
            .args(args)
            .env_remove("FTPSH_FINGERPRINT")
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(stdout_of(&out), "", "{args:?}");
        assert!(err.starts_with(start), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // FTPSH_FINGERPRINT is an ambient setting, for the user's TLS servers:
    // the embedded server (no ADDR), which has no TLS, goes on without it.
    let out = std::process::Command::new(bin("ftpsh"))
        .current_dir(dir.path())
        .args(["--norc", "-c", "pwd"])
        .env("FTPSH_FINGERPRINT", "SHA256:AAAA")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "/\n");
}

#[test]
fn a_bang_command_after_a_semicolon_runs_locally_as_at_the_start_of_a_line() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root.path().join("d")).unwrap();
    let run = fx.run(&["-c", "cd d; !echo local; pwd"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "local\n/d\n", "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
}

#[test]
fn get_of_several_files_into_a_missing_directory_says_it_is_missing() {
    let fx = Fx::new();
    std::fs::write(fx.root.path().join("a"), b"a").unwrap();
    std::fs::write(fx.root.path().join("b"), b"b").unwrap();
    std::fs::write(fx.local().join("plain"), b"x").unwrap();
    let run = fx.run(&["-c", "get a b nodir/"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "ftpsh: get: nodir/: no such file or directory (several files need a directory to go to)\n",
        "{run:?}"
    );
    let run = fx.run(&["-c", "get a b plain"]);
    assert_eq!(
        run.stderr,
        "ftpsh: get: plain: not a directory (several files need a directory to go to)\n",
        "{run:?}"
    );
    assert!(!fx.local().join("nodir").exists());
}

#[test]
fn a_refused_token_says_where_the_client_takes_it_from() {
    let fx = Fx::new();
    let out = fx
        .server
        .client(fx.local())
        .env_remove("FTPSH_TOKEN")
        .args(["-c", "pwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        format!(
            "ftpsh: {} refused the connection: authentication failed: no token given \
             (give the server's token in FTPSH_TOKEN, or with --token)\n",
            fx.server.addr
        )
    );
    let out = fx
        .server
        .client(fx.local())
        .env("FTPSH_TOKEN", "not-the-token-at-all")
        .args(["-c", "pwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        format!(
            "ftpsh: {} refused the connection: authentication failed: wrong token \
             (check the token in FTPSH_TOKEN or --token)\n",
            fx.server.addr
        )
    );
}

#[test]
fn every_verb_s_help_text_is_wrapped_at_80_columns_plus_its_indent() {
    let fx = Fx::new();
    let list = fx.run(&["-c", "help"]);
    let verbs: Vec<&str> = list
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(verbs.contains(&"get"), "{list:?}");
    for verb in verbs {
        let run = fx.run(&["-c", &format!("help {}", shell_words::quote(verb))]);
        assert_eq!(run.code, 0, "{verb}: {run:?}");
        // The paragraph after the usage, the one-line summary and the options.
        for line in run.stdout.lines().skip(2) {
            if line.starts_with("  -") || line.starts_with("  example:") {
                continue;
            }
            assert!(line.chars().count() <= 82, "help {verb}: {line:?}");
        }
    }
}

#[test]
fn ls_l_of_a_link_named_shows_the_link_and_its_target() {
    let fx = Fx::new();
    let root = fx.root.path();
    std::fs::write(root.join("f"), b"data\n").unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/inside"), b"x").unwrap();
    std::os::unix::fs::symlink("f", root.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("d", root.join("dlink")).unwrap();
    for (line, shown) in [
        ("ls -l link", "link -> f"),
        ("ls -l dangling", "dangling -> nowhere"),
        ("ls -l f link", "link -> f"),
    ] {
        let run = fx.run(&["-c", line]);
        assert_eq!(run.code, 0, "{line}: {run:?}");
        let row = run
            .stdout
            .lines()
            .find(|l| l.contains("link") || l.contains("dangling"))
            .unwrap_or_else(|| panic!("{line}: {run:?}"));
        assert!(row.starts_with("lrwxrwxrwx "), "{line}: {run:?}");
        assert!(row.ends_with(shown), "{line}: {run:?}");
    }
    // A link to a directory still lists the directory.
    let run = fx.run(&["-c", "ls -l dlink"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.trim_end().ends_with(" inside"), "{run:?}");
}
