//! Aliases, `type`, `help`, `source` and the start-up file, end to end in script
//! mode: the real server on loopback, the real `ftpsh` fed through a stdin pipe or
//! `-c`, asserting output, messages and exit statuses.

use crate::common::*;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tempfile::TempDir;

/// A server over a fresh root, and a fresh local directory for the client.
struct Fixture {
    server: Server,
    root: TempDir,
    local: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        let server = Server::start(root.path());
        Fixture {
            server,
            root,
            local,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn local(&self) -> &Path {
        self.local.path()
    }

    /// Runs `script` through a stdin pipe (script mode, `--norc`).
    fn script(&self, script: &str) -> Output {
        self.server
            .client(self.local())
            .timeout(Duration::from_secs(60))
            .write_stdin(script)
            .output()
            .unwrap()
    }

    /// `ftpsh ADDR` without `--norc`: the start-up file is looked for.
    fn client_with_rc(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin("ftpsh"));
        cmd.arg(&self.server.addr)
            .current_dir(self.local())
            .env("NO_COLOR", "1")
            .env("HOME", self.local())
            .env_remove("FTPSH_RC")
            .env("FTPSH_TOKEN", TOKEN)
            .timeout(Duration::from_secs(60));
        cmd
    }
}

/// Asserts success and that stdout is exactly `expected`, with stderr empty.
#[track_caller]
fn assert_ok(out: &Output, expected: &str) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    );
    assert_eq!(stdout_of(out), expected, "stderr:\n{}", stderr_of(out));
    assert_eq!(stderr_of(out), "", "nothing on stderr in script mode");
}

/// Asserts exit status 1 and that stderr holds `needle`.
#[track_caller]
fn assert_fails_with(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout_of(out),
        stderr_of(out)
    );
    let err = stderr_of(out);
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

// ---------------------------------------------------------------- expansion

#[test]
fn numbered_placeholders_take_the_arguments_in_any_order() {
    let f = Fixture::new();
    let out = f.script(
        "alias swap 'echo [$2] [$1]'\n\
         swap 'a b' c\n\
         alias wrap 'echo pre-$1-post $3'\n\
         wrap x\n",
    );
    // A missing argument expands to nothing; an argument with spaces stays whole.
    assert_ok(&out, "[c] [a b]\npre-x-post \n");
}

#[test]
fn placeholders_keep_arguments_with_spaces_as_single_words() {
    let f = Fixture::new();
    std::fs::write(f.root().join("remote file.txt"), b"spaced content\n").unwrap();
    let out = f.script(
        "alias fetch 'get $@'\n\
         fetch 'remote file.txt' 'local copy.txt'\n\
         alias fetch2 'get $2 $1'\n\
         fetch2 'second copy.txt' 'remote file.txt'\n\
         alias mk 'mkdir $1'\n\
         mk 'dir with spaces'\n\
         alias tag 'echo <$@>'\n\
         tag a 'b  c'\n",
    );
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    for name in ["local copy.txt", "second copy.txt"] {
        assert_eq!(
            std::fs::read(f.local().join(name)).unwrap(),
            b"spaced content\n",
            "{name}"
        );
    }
    assert!(f.root().join("dir with spaces").is_dir());
    // `$@` inside a word joins the arguments with one space.
    assert!(
        stdout_of(&out).ends_with("<a b  c>\n"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn without_placeholders_the_arguments_are_appended() {
    let f = Fixture::new();
    let out = f.script(
        "alias say 'echo pre'\n\
         say 1 '2  3'\n\
         say\n\
         alias both 'echo one; echo two'\n\
         both x y\n",
    );
    // Appended as words (the double space inside one argument survives), and to
    // the last command of a multi-command expansion.
    assert_ok(&out, "pre 1 2  3\npre\none\ntwo x y\n");
}

#[test]
fn an_expansion_may_hold_several_commands() {
    let f = Fixture::new();
    let out = f.script(
        "alias setup 'mkdir $1; cd $1; pwd'\n\
         setup work\n\
         alias hello \"echo hel; echo lo\"\n\
         hello\n",
    );
    assert_ok(&out, "/work\nhel\nlo\n");
    assert!(f.root().join("work").is_dir());

    // Unquoted, the `;` ends the alias command itself: `x` is `echo a` and the
    // second command runs at once.
    let out = f.script("alias x echo a; echo b\nx\n");
    assert_ok(&out, "b\na\n");
}

#[test]
fn a_failing_command_inside_an_expansion_stops_it_and_the_script() {
    let f = Fixture::new();
    let out = f.script(
        "alias three 'echo one; frobnicate; echo three'\n\
         three\n\
         echo not-reached\n",
    );
    assert_fails_with(&out, "ftpsh: frobnicate: unknown command");
    assert_eq!(stdout_of(&out), "one\n");

    // A `-` inside the expansion ignores that command's failure.
    let out = f.script("alias lenient 'echo one; -frobnicate; echo three'\nlenient\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "one\nthree\n");
    assert!(stderr_of(&out).contains("frobnicate"));
}

// ---------------------------------------------------------------- shadowing, chains, recursion

#[test]
fn an_alias_shadows_a_built_in_and_means_the_built_in_inside_itself() {
    let f = Fixture::new();
    std::fs::write(f.root().join("a.txt"), b"hello\n").unwrap();
    std::fs::create_dir(f.root().join("docs")).unwrap();

    let short = f.script("ls\n");
    assert_ok(&short, "a.txt\ndocs/\n");
    let long = f.script("ls -l\n");
    assert!(long.status.success());
    let long = stdout_of(&long);
    assert_ne!(long, stdout_of(&short));
    assert!(long.contains("a.txt") && long.contains(" 6 "), "{long}");

    // `ls` now gives the long form, without recursing, and the script goes on.
    let out = f.script("alias ls 'ls -l'\nls\necho after\n");
    assert_ok(&out, &format!("{long}after\n"));

    // Arguments reach the built-in; unalias brings the plain verb back.
    let out = f.script(
        "alias echo 'echo [shadow]'\n\
         echo hi\n\
         unalias echo\n\
         echo hi\n",
    );
    assert_ok(&out, "[shadow] hi\nhi\n");
}

#[test]
fn chains_of_aliases_reach_the_verb() {
    let f = Fixture::new();
    std::fs::write(f.root().join("a.txt"), b"hello\n").unwrap();
    let out = f.script(
        "alias first second\n\
         alias second 'third x'\n\
         alias third 'echo reached'\n\
         first y\n",
    );
    assert_ok(&out, "reached x y\n");

    // Through a shadowing alias: ll -> ls (the alias) -> ls -l (the built-in).
    let long = stdout_of(&f.script("ls -l\n"));
    let out = f.script("alias ls 'ls -l'\nalias ll ls\nll\n");
    assert_ok(&out, &long);
}

#[test]
fn runaway_recursion_fails_fast_with_a_clear_message() {
    let f = Fixture::new();
    for (script, chain) in [
        ("alias a b\nalias b a\na\necho not-reached\n", "a -> b -> a"),
        (
            "alias a 'b 1'\nalias b 'c 2'\nalias c 'a 3'\na\necho not-reached\n",
            "a -> b -> c -> a",
        ),
        ("alias self self\nself\necho not-reached\n", "self -> self"),
    ] {
        // The client's own timeout turns a hang into a failure, not a stuck test.
        let out = f
            .server
            .client(f.local())
            .timeout(Duration::from_secs(20))
            .write_stdin(script)
            .output()
            .unwrap();
        assert_fails_with(&out, "alias loop");
        assert_fails_with(&out, chain);
        assert_eq!(stderr_of(&out).lines().count(), 1, "{}", stderr_of(&out));
        assert!(!stdout_of(&out).contains("not-reached"));
    }

    // An alias that calls itself after doing something runs it once, then fails.
    let out = f.script("alias tick 'echo tick; tick'\ntick\n");
    assert_fails_with(&out, "alias loop: tick -> tick");
    assert_eq!(stdout_of(&out), "tick\n");
}

// ---------------------------------------------------------------- alias, unalias, type

#[test]
fn unalias_removes_an_alias_and_fails_for_an_unknown_name() {
    let f = Fixture::new();
    let out = f.script("alias hi 'echo hi'\nhi\nunalias hi\nhi\n");
    assert_fails_with(&out, "ftpsh: hi: unknown command");
    assert_eq!(stdout_of(&out), "hi\n");

    let out = f.script("unalias nosuch\n");
    assert_fails_with(&out, "ftpsh: unalias: nosuch: no such alias");

    let out = f.script("unalias\n");
    assert_fails_with(&out, "ftpsh: unalias: missing argument");
}

#[test]
fn alias_lists_all_or_shows_one() {
    let f = Fixture::new();
    // No aliases: nothing listed.
    assert_ok(&f.script("alias\n"), "");

    let out = f.script(
        "alias zed 'echo Z'\n\
         alias ab 'get $1; md5 $1'\n\
         alias ll 'ls -l'\n\
         alias\n\
         alias ll\n",
    );
    assert_ok(
        &out,
        "alias ab 'get $1; md5 $1'\n\
         alias ll 'ls -l'\n\
         alias zed 'echo Z'\n\
         alias ll 'ls -l'\n",
    );

    // Several words without quotes make one expansion, quoted so that the
    // listing reads back.
    let out = f.script("alias lw ls -l\nalias g get 'my file'\nalias\n");
    assert_ok(
        &out,
        r#"alias g 'get '\''my file'\'''
alias lw 'ls -l'
"#,
    );

    let out = f.script("alias nosuch\n");
    assert_fails_with(&out, "ftpsh: alias: nosuch: no such alias");
}

#[test]
fn the_listing_reads_back_with_source() {
    let f = Fixture::new();
    std::fs::write(f.root().join("my file"), b"mine\n").unwrap();
    let out = f.script(
        "alias greet 'echo hello $1!'\n\
         alias two 'echo a; echo b'\n\
         alias g get 'my file'\n\
         alias\n",
    );
    assert!(out.status.success());
    std::fs::write(f.local().join("saved.ftpsh"), &out.stdout).unwrap();
    let out = f.script("source saved.ftpsh\ngreet world\ntwo\ng copy\n");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(
        stdout_of(&out).starts_with("hello world!\na\nb\n"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(std::fs::read(f.local().join("copy")).unwrap(), b"mine\n");
}

#[test]
fn bad_alias_definitions_are_refused() {
    let f = Fixture::new();
    assert_fails_with(
        &f.script("alias 'bad name' ls\n"),
        "ftpsh: alias: invalid alias name 'bad name'",
    );
    assert_fails_with(
        &f.script("alias q 'echo \"unterminated'\n"),
        "ftpsh: alias: unmatched quote",
    );
}

#[test]
fn type_tells_built_ins_aliases_and_unknown_names_apart() {
    let f = Fixture::new();
    let out = f.script(
        "type get\n\
         alias ll 'ls -l'\n\
         type ll\n\
         alias ls 'ls -a'\n\
         type ls\n",
    );
    assert_ok(
        &out,
        "get is a built-in verb\n\
         ll is an alias for 'ls -l'\n\
         ls is an alias for 'ls -a' (shadowing the built-in verb)\n",
    );

    let out = f.script("type nosuch\necho not-reached\n");
    assert_fails_with(&out, "ftpsh: type: nosuch: not found");
    assert_eq!(stdout_of(&out), "");
}

// ---------------------------------------------------------------- help

/// The verb names in the table `help` prints.
fn verbs_listed_by_help(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != "Verbs:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn help_lists_verbs_and_aliases() {
    let f = Fixture::new();
    let out = f.script("help\n");
    assert!(out.status.success());
    let text = stdout_of(&out);
    let verbs = verbs_listed_by_help(&text);
    for verb in [
        "alias", "cd", "echo", "exec", "get", "help", "ls", "put", "source", "type", "unalias",
        "quit",
    ] {
        assert!(
            verbs.iter().any(|v| v == verb),
            "{verb} missing in:\n{text}"
        );
    }
    assert!(!text.contains("Aliases:"), "no aliases yet:\n{text}");

    let out = f.script("alias ll 'ls -l'\nalias fetch 'get -c $1'\nhelp\n");
    assert!(out.status.success());
    let text = stdout_of(&out);
    let aliases: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Aliases:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(
        aliases,
        ["alias fetch 'get -c $1'", "alias ll 'ls -l'"],
        "{text}"
    );

    // `help ALIAS` shows its definition.
    let out = f.script("alias ll 'ls -l'\nhelp ll\n");
    assert_ok(&out, "alias ll 'ls -l'\n");
}

#[test]
fn help_verb_shows_usage_and_an_example_for_every_verb() {
    let f = Fixture::new();
    let verbs = verbs_listed_by_help(&stdout_of(&f.script("help\n")));
    assert!(verbs.len() >= 20, "{verbs:?}");
    for verb in &verbs {
        let out = f.script(&format!("help {verb}\n"));
        assert!(out.status.success(), "help {verb}: {}", stderr_of(&out));
        let text = stdout_of(&out);
        assert!(
            text.starts_with(&format!("usage: {verb}")),
            "help {verb}:\n{text}"
        );
        let example = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("example: "))
            .unwrap_or_else(|| panic!("help {verb} has no example:\n{text}"));
        let first = example.split_whitespace().next().unwrap_or("");
        assert_eq!(first, verb, "help {verb}: the example uses the verb");
    }

    let out = f.script("help frobnicate\n");
    assert_fails_with(&out, "ftpsh: help: frobnicate: no such verb or alias");
    let out = f.script("help gte\n");
    assert_fails_with(&out, "(did you mean 'get'?)");
}

// ---------------------------------------------------------------- source

#[test]
fn source_runs_a_file_and_its_aliases_stay_defined() {
    let f = Fixture::new();
    std::fs::write(
        f.local().join("setup.ftpsh"),
        "# a comment\n\
         \n\
         alias greet 'echo hello $1'\n\
         echo from-file; echo second\n\
         -frobnicate\n",
    )
    .unwrap();
    let out = f.script("source setup.ftpsh\ngreet you\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "from-file\nsecond\nhello you\n");
    // The ignored failure is still reported, with file and line.
    assert!(
        stderr_of(&out).contains("ftpsh: setup.ftpsh:5: frobnicate: unknown command"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn source_stops_at_the_first_failing_line_and_fails() {
    let f = Fixture::new();
    std::fs::write(
        f.local().join("bad.ftpsh"),
        "echo line1\n\
         echo line2\n\
         cd /does/not/exist\n\
         echo line4\n",
    )
    .unwrap();
    let out = f.script("source bad.ftpsh\necho after\n");
    assert_fails_with(&out, "ftpsh: bad.ftpsh:3: cd:");
    assert_fails_with(&out, "ftpsh: source: bad.ftpsh");
    assert_eq!(stdout_of(&out), "line1\nline2\n");

    // With -c and a leading `-` the failure of source itself is ignored.
    let out = f
        .server
        .client(f.local())
        .args(["-c", "-source bad.ftpsh; echo after"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "line1\nline2\nafter\n");

    let out = f.script("source missing.ftpsh\n");
    assert_fails_with(&out, "ftpsh: source: cannot open missing.ftpsh");
}

// ---------------------------------------------------------------- start-up file

#[test]
fn the_rc_file_from_ftpsh_rc_defines_aliases() {
    let f = Fixture::new();
    let rc = f.local().join("my.rc");
    std::fs::write(&rc, "alias hi 'echo hello from rc'\nalias ll 'ls -l'\n").unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\ntype ll\n")
        .output()
        .unwrap();
    assert_ok(&out, "hello from rc\nll is an alias for 'ls -l'\n");

    // The same with -c.
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .args(["-c", "hi there"])
        .output()
        .unwrap();
    assert_ok(&out, "hello from rc there\n");
}

#[test]
fn norc_skips_the_rc_file() {
    let f = Fixture::new();
    let rc = f.local().join("my.rc");
    std::fs::write(&rc, "alias hi 'echo hello from rc'\necho rc-ran\n").unwrap();
    let out = f
        .client_with_rc()
        .arg("--norc")
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_fails_with(&out, "ftpsh: hi: unknown command");
    assert_eq!(stdout_of(&out), "");

    // ~/.ftpshrc is skipped too.
    std::fs::copy(&rc, f.local().join(".ftpshrc")).unwrap();
    let out = f
        .client_with_rc()
        .arg("--norc")
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_fails_with(&out, "ftpsh: hi: unknown command");
    assert_eq!(stdout_of(&out), "");
}

#[test]
fn an_rc_error_is_reported_with_file_and_line_and_the_shell_goes_on() {
    let f = Fixture::new();
    let rc = f.local().join("broken.rc");
    std::fs::write(
        &rc,
        "alias before 'echo defined before'\n\
         frobnicate now\n\
         alias 'bad name' x\n\
         alias after 'echo defined after'\n",
    )
    .unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("before\nafter\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "defined before\ndefined after\n");
    let err = stderr_of(&out);
    let name = rc.display().to_string();
    assert!(
        err.contains(&format!("ftpsh: {name}:2: frobnicate: unknown command")),
        "{err}"
    );
    assert!(
        err.contains(&format!("ftpsh: {name}:3: alias: invalid alias name")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");

    // A failing command after the rc still fails the script.
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("before\nfrobnicate\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn home_ftpshrc_is_read_when_ftpsh_rc_is_unset() {
    let f = Fixture::new();
    std::fs::write(
        f.local().join(".ftpshrc"),
        "alias hi 'echo hello from home'\n",
    )
    .unwrap();
    let out = f.client_with_rc().write_stdin("hi\n").output().unwrap();
    assert_ok(&out, "hello from home\n");

    // FTPSH_RC wins over ~/.ftpshrc.
    let rc = f.local().join("other.rc");
    std::fs::write(&rc, "alias hi 'echo hello from FTPSH_RC'\n").unwrap();
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &rc)
        .write_stdin("hi\n")
        .output()
        .unwrap();
    assert_ok(&out, "hello from FTPSH_RC\n");

    // No rc file at all is fine.
    std::fs::remove_file(f.local().join(".ftpshrc")).unwrap();
    let out = f
        .client_with_rc()
        .write_stdin("echo ok\n")
        .output()
        .unwrap();
    assert_ok(&out, "ok\n");
}

#[test]
fn a_missing_file_named_by_ftpsh_rc_is_reported_and_the_shell_goes_on() {
    let f = Fixture::new();
    let missing = f.local().join("no-such.rc");
    let out = f
        .client_with_rc()
        .env("FTPSH_RC", &missing)
        .write_stdin("echo still here\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("ftpsh: cannot open ") && stderr.contains("no-such.rc"),
        "{stderr}"
    );
}
