//! The runner's rules (aliases, `type`, `help`, `source`, failures) and a few
//! verbs, run against the in-memory [`MemRemote`] and [`MemUi`]: no server, no
//! process. What needs the real thing (transfers through an alias, the
//! start-up file, the binary's exit statuses) stays in `tests/e2e/aliases.rs`.

use super::*;
use crate::testing::{MemRemote, MemUi};
use crate::Registry;

/// A session's state: the remote tree lives across scripts, while each script
/// starts as a new client would (no aliases, remote directory `/`).
struct Fixture {
    registry: Registry,
    remote: MemRemote,
    ui: MemUi,
}

/// What a script did: whether it failed (exit status 1), stdout, stderr.
#[derive(Debug)]
struct Run {
    outcome: Outcome,
    out: String,
    err: String,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            registry: Registry::with_builtins(),
            remote: MemRemote::new(),
            ui: MemUi::new(),
        }
    }

    /// Runs `script` by the script rules, as `ftpsh ADDR < script` would.
    fn script(&mut self, script: &str) -> Run {
        self.registry.aliases = Default::default();
        self.remote.cd("/").unwrap();
        self.run(|runner| runner.run_script(script.lines().map(String::from), None))
    }

    /// Runs one line, as `ftpsh ADDR -c LINE` would.
    fn line(&mut self, line: &str) -> Run {
        self.registry.aliases = Default::default();
        self.remote.cd("/").unwrap();
        self.run(|runner| runner.run_line(line, None))
    }

    fn run(&mut self, f: impl FnOnce(&mut Runner) -> Outcome) -> Run {
        self.ui.clear();
        let mut runner = Runner {
            verbs: &self.registry.verbs,
            aliases: &mut self.registry.aliases,
            remote: &mut self.remote,
            ui: &mut self.ui,
            keep_going: false,
            depth: 0,
        };
        let outcome = f(&mut runner);
        Run {
            outcome,
            out: self.ui.out_text(),
            err: self.ui.err_text(),
        }
    }
}

/// Success, stdout exactly `expected`, nothing on stderr.
#[track_caller]
fn assert_ok(run: &Run, expected: &str) {
    assert!(!run.outcome.failed, "{run:?}");
    assert_eq!(run.out, expected, "{run:?}");
    assert_eq!(run.err, "", "nothing on stderr in script mode");
}

/// Failure, with `needle` on stderr.
#[track_caller]
fn assert_fails_with(run: &Run, needle: &str) {
    assert!(run.outcome.failed, "{run:?}");
    assert!(
        run.err.contains(needle),
        "stderr {:?} lacks {needle:?}",
        run.err
    );
}

// ---------------------------------------------------------------- expansion

#[test]
fn numbered_placeholders_take_the_arguments_in_any_order() {
    let mut f = Fixture::new();
    let run = f.script(
        "alias swap 'echo [$2] [$1]'\n\
         swap 'a b' c\n\
         alias wrap 'echo pre-$1-post $3'\n\
         wrap x\n",
    );
    // A missing argument expands to nothing; an argument with spaces stays whole.
    assert_ok(&run, "[c] [a b]\npre-x-post \n");
}

#[test]
fn without_placeholders_the_arguments_are_appended() {
    let mut f = Fixture::new();
    let run = f.script(
        "alias say 'echo pre'\n\
         say 1 '2  3'\n\
         say\n\
         alias both 'echo one; echo two'\n\
         both x y\n",
    );
    // Appended as words (the double space inside one argument survives), and to
    // the last command of a multi-command expansion.
    assert_ok(&run, "pre 1 2  3\npre\none\ntwo x y\n");
}

#[test]
fn an_expansion_may_hold_several_commands() {
    let mut f = Fixture::new();
    let run = f.script(
        "alias setup 'mkdir $1; cd $1; pwd'\n\
         setup work\n\
         alias hello \"echo hel; echo lo\"\n\
         hello\n",
    );
    assert_ok(&run, "/work\nhel\nlo\n");
    assert!(f.remote.is_dir("/work"));

    // Unquoted, the `;` ends the alias command itself: `x` is `echo a` and the
    // second command runs at once.
    let run = f.script("alias x echo a; echo b\nx\n");
    assert_ok(&run, "b\na\n");
}

#[test]
fn a_failing_command_inside_an_expansion_stops_it_and_the_script() {
    let mut f = Fixture::new();
    let run = f.script(
        "alias three 'echo one; frobnicate; echo three'\n\
         three\n\
         echo not-reached\n",
    );
    assert_fails_with(&run, "ftpsh: frobnicate: unknown command");
    assert_eq!(run.out, "one\n");

    // A `-` inside the expansion ignores that command's failure.
    let run = f.script("alias lenient 'echo one; -frobnicate; echo three'\nlenient\n");
    assert!(!run.outcome.failed, "{run:?}");
    assert_eq!(run.out, "one\nthree\n");
    assert!(run.err.contains("frobnicate"));
}

// ---------------------------------------------------------------- shadowing, chains, recursion

#[test]
fn an_alias_shadows_a_built_in_and_means_the_built_in_inside_itself() {
    let mut f = Fixture::new();
    f.remote.add_file("a.txt", b"hello\n");
    f.remote.add_dir("docs");

    let short = f.script("ls\n");
    assert_ok(&short, "a.txt\ndocs/\n");
    let long = f.script("ls -l\n");
    assert!(!long.outcome.failed);
    let long = long.out;
    assert_ne!(long, short.out);
    assert!(long.contains("a.txt") && long.contains(" 6 "), "{long}");

    // `ls` now gives the long form, without recursing, and the script goes on.
    let run = f.script("alias ls 'ls -l'\nls\necho after\n");
    assert_ok(&run, &format!("{long}after\n"));

    // Arguments reach the built-in; unalias brings the plain verb back.
    let run = f.script(
        "alias echo 'echo [shadow]'\n\
         echo hi\n\
         unalias echo\n\
         echo hi\n",
    );
    assert_ok(&run, "[shadow] hi\nhi\n");
}

#[test]
fn chains_of_aliases_reach_the_verb() {
    let mut f = Fixture::new();
    f.remote.add_file("a.txt", b"hello\n");
    let run = f.script(
        "alias first second\n\
         alias second 'third x'\n\
         alias third 'echo reached'\n\
         first y\n",
    );
    assert_ok(&run, "reached x y\n");

    // Through a shadowing alias: ll -> ls (the alias) -> ls -l (the built-in).
    let long = f.script("ls -l\n").out;
    let run = f.script("alias ls 'ls -l'\nalias ll ls\nll\n");
    assert_ok(&run, &long);
}

#[test]
fn runaway_recursion_fails_fast_with_a_clear_message() {
    let mut f = Fixture::new();
    for (script, chain) in [
        ("alias a b\nalias b a\na\necho not-reached\n", "a -> b -> a"),
        (
            "alias a 'b 1'\nalias b 'c 2'\nalias c 'a 3'\na\necho not-reached\n",
            "a -> b -> c -> a",
        ),
        ("alias self self\nself\necho not-reached\n", "self -> self"),
    ] {
        let run = f.script(script);
        assert_fails_with(&run, "alias loop");
        assert_fails_with(&run, chain);
        assert_eq!(run.err.lines().count(), 1, "{}", run.err);
        assert!(!run.out.contains("not-reached"));
    }

    // An alias that calls itself after doing something runs it once, then fails.
    let run = f.script("alias tick 'echo tick; tick'\ntick\n");
    assert_fails_with(&run, "alias loop: tick -> tick");
    assert_eq!(run.out, "tick\n");
}

#[test]
fn an_alias_that_fans_out_without_a_loop_hits_the_expansion_budget() {
    let mut f = Fixture::new();
    // No name repeats inside its own expansion, but 1 + 10 + 100 + 1000
    // expansions are more than one command may cause.
    let ten = |name: &str| [name; 10].join("; ");
    let run = f.script(&format!(
        "alias a '{}'\nalias b '{}'\nalias c '{}'\nalias d echo\na\necho not-reached\n",
        ten("b"),
        ten("c"),
        ten("d")
    ));
    assert_fails_with(&run, "alias expands too many times (runaway recursion?)");
    assert_eq!(run.err.lines().count(), 1, "{}", run.err);
    assert!(!run.out.contains("not-reached"));
}

// ---------------------------------------------------------------- alias, unalias, type

#[test]
fn unalias_removes_an_alias_and_fails_for_an_unknown_name() {
    let mut f = Fixture::new();
    let run = f.script("alias hi 'echo hi'\nhi\nunalias hi\nhi\n");
    assert_fails_with(&run, "ftpsh: hi: unknown command");
    assert_eq!(run.out, "hi\n");

    let run = f.script("unalias nosuch\n");
    assert_fails_with(&run, "ftpsh: unalias: nosuch: no such alias");

    let run = f.script("unalias\n");
    assert_fails_with(&run, "ftpsh: unalias: missing argument");
}

#[test]
fn alias_lists_all_or_shows_one() {
    let mut f = Fixture::new();
    // No aliases: nothing listed.
    assert_ok(&f.script("alias\n"), "");

    let run = f.script(
        "alias zed 'echo Z'\n\
         alias ab 'get $1; md5 $1'\n\
         alias ll 'ls -l'\n\
         alias\n\
         alias ll\n",
    );
    assert_ok(
        &run,
        "alias ab 'get $1; md5 $1'\n\
         alias ll 'ls -l'\n\
         alias zed 'echo Z'\n\
         alias ll 'ls -l'\n",
    );

    // Several words without quotes make one expansion, quoted so that the
    // listing reads back.
    let run = f.script("alias lw ls -l\nalias g get 'my file'\nalias\n");
    assert_ok(
        &run,
        r#"alias g 'get '\''my file'\'''
alias lw 'ls -l'
"#,
    );

    let run = f.script("alias nosuch\n");
    assert_fails_with(&run, "ftpsh: alias: nosuch: no such alias");
}

#[test]
fn bad_alias_definitions_are_refused() {
    let mut f = Fixture::new();
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
    let mut f = Fixture::new();
    let run = f.script(
        "type get\n\
         alias ll 'ls -l'\n\
         type ll\n\
         alias ls 'ls -a'\n\
         type ls\n",
    );
    assert_ok(
        &run,
        "get is a built-in verb\n\
         ll is an alias for 'ls -l'\n\
         ls is an alias for 'ls -a' (shadowing the built-in verb)\n",
    );

    let run = f.script("type nosuch\necho not-reached\n");
    assert_fails_with(&run, "ftpsh: type: nosuch: not found");
    assert_eq!(run.out, "");
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
    let mut f = Fixture::new();
    let run = f.script("help\n");
    assert!(!run.outcome.failed);
    let verbs = verbs_listed_by_help(&run.out);
    for verb in [
        "alias", "cd", "echo", "exec", "get", "help", "ls", "put", "source", "type", "unalias",
        "quit",
    ] {
        assert!(
            verbs.iter().any(|v| v == verb),
            "{verb} missing in:\n{}",
            run.out
        );
    }
    assert!(
        !run.out.contains("Aliases:"),
        "no aliases yet:\n{}",
        run.out
    );

    let run = f.script("alias ll 'ls -l'\nalias fetch 'get -c $1'\nhelp\n");
    assert!(!run.outcome.failed);
    let aliases: Vec<&str> = run
        .out
        .lines()
        .skip_while(|l| *l != "Aliases:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(
        aliases,
        ["alias fetch 'get -c $1'", "alias ll 'ls -l'"],
        "{}",
        run.out
    );

    // `help ALIAS` shows its definition.
    let run = f.script("alias ll 'ls -l'\nhelp ll\n");
    assert_ok(&run, "alias ll 'ls -l'\n");
}

#[test]
fn help_verb_shows_usage_options_and_an_example_for_every_verb() {
    let mut f = Fixture::new();
    let verbs = verbs_listed_by_help(&f.script("help\n").out);
    assert!(verbs.len() >= 20, "{verbs:?}");
    for verb in &verbs {
        let run = f.script(&format!("help {verb}\n"));
        assert!(!run.outcome.failed, "help {verb}: {}", run.err);
        let text = &run.out;
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
        // `VERB --help` is the same text, and not a failure.
        assert_ok(&f.script(&format!("{verb} --help\n")), text);
    }

    // Each option's doc comment is shown.
    let text = f.script("help mkdir\n").out;
    assert!(
        text.contains("\n  -p  Create missing parents too"),
        "{text}"
    );

    let run = f.script("help frobnicate\n");
    assert_fails_with(&run, "ftpsh: help: frobnicate: no such verb or alias");
    let run = f.script("help gte\n");
    assert_fails_with(&run, "(did you mean 'get'?)");
}

#[test]
fn dash_h_is_not_help() {
    let mut f = Fixture::new();
    let run = f.script("get -rh x\n");
    assert_fails_with(&run, "ftpsh: get: unexpected argument -h found");
    assert_eq!(run.out, "");
}

// ---------------------------------------------------------------- source

#[test]
fn source_runs_a_file_and_its_aliases_stay_defined() {
    let mut f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("setup.ftpsh");
    std::fs::write(
        &file,
        "# a comment\n\
         \n\
         alias greet 'echo hello $1'\n\
         echo from-file; echo second\n\
         -frobnicate\n",
    )
    .unwrap();
    let run = f.script(&format!("source {}\ngreet you\n", file.display()));
    assert!(!run.outcome.failed, "{run:?}");
    assert_eq!(run.out, "from-file\nsecond\nhello you\n");
    // The ignored failure is still reported, with file and line.
    assert!(
        run.err.contains(&format!(
            "ftpsh: {}:5: frobnicate: unknown command",
            file.display()
        )),
        "{}",
        run.err
    );
}

#[test]
fn source_stops_at_the_first_failing_line_and_fails() {
    let mut f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ftpsh");
    let name = file.display().to_string();
    std::fs::write(
        &file,
        "echo line1\n\
         echo line2\n\
         cd /does/not/exist\n\
         echo line4\n",
    )
    .unwrap();
    let run = f.script(&format!("source {name}\necho after\n"));
    assert_fails_with(&run, &format!("ftpsh: {name}:3: cd:"));
    assert_fails_with(&run, &format!("ftpsh: source: {name}"));
    assert_eq!(run.out, "line1\nline2\n");

    // With a leading `-` the failure of source itself is ignored.
    let run = f.line(&format!("-source {name}; echo after"));
    assert!(!run.outcome.failed, "{run:?}");
    assert_eq!(run.out, "line1\nline2\nafter\n");

    let missing = dir.path().join("missing.ftpsh");
    let run = f.script(&format!("source {}\n", missing.display()));
    assert_fails_with(
        &run,
        &format!("ftpsh: source: cannot open {}", missing.display()),
    );
}

// ---------------------------------------------------------------- verbs

#[test]
fn ls_lists_names_marks_directories_and_hides_dot_files() {
    let mut f = Fixture::new();
    f.remote.add_file("b.txt", b"12345");
    f.remote.add_file(".hidden", b"");
    f.remote.add_dir("a-dir");
    f.remote.add_file("a-dir/inner", b"x");
    assert_ok(&f.line("ls"), "a-dir/\nb.txt\n");
    assert_ok(&f.line("ls -a"), ".hidden\na-dir/\nb.txt\n");
    assert_ok(&f.line("ls a-dir"), "inner\n");
    assert_ok(
        &f.line("ls -l"),
        "drwxr-xr-x 0 1970-01-01 00:00 a-dir\n\
         -rw-r--r-- 5 1970-01-01 00:00 b.txt\n",
    );
    assert_fails_with(
        &f.line("ls nowhere"),
        "ftpsh: ls: /nowhere: no such file or directory",
    );
}

#[test]
fn cd_and_pwd_move_through_the_tree_and_stay_in_the_root() {
    let mut f = Fixture::new();
    f.remote.add_dir("docs/2026");
    f.remote.add_file("notes.txt", b"");
    assert_ok(&f.line("pwd"), "/\n");
    assert_ok(
        &f.line("cd docs/2026; pwd; cd ..; pwd"),
        "/docs/2026\n/docs\n",
    );
    // `..` at the root stays there; no PATH goes back to the root.
    assert_ok(&f.line("cd ../..; pwd; cd docs; cd; pwd"), "/\n/\n");
    let run = f.line("cd notes.txt; pwd");
    assert_fails_with(&run, "ftpsh: cd: /notes.txt: not a directory");
    assert_eq!(run.out, "");
    assert_fails_with(
        &f.line("pwd x"),
        "ftpsh: pwd: too many arguments (usage: pwd)",
    );
}

#[test]
fn md5_prints_lines_as_md5sum_does() {
    let mut f = Fixture::new();
    f.remote.add_file("empty", b"");
    f.remote.add_file("dir/abc", b"abc");
    assert_ok(
        &f.line("md5 empty dir/abc"),
        "d41d8cd98f00b204e9800998ecf8427e  empty\n\
         900150983cd24fb0d6963f7d28e17f72  dir/abc\n",
    );
    let run = f.line("md5 dir");
    assert_fails_with(&run, "ftpsh: md5: /dir: is a directory");
    assert_fails_with(
        &f.line("md5"),
        "ftpsh: md5: missing argument (usage: md5 PATH...)",
    );
}

#[test]
fn mkdir_and_rm_change_the_tree() {
    let mut f = Fixture::new();
    assert_ok(&f.line("mkdir -p a/b/c; mkdir d"), "");
    assert!(f.remote.is_dir("a/b/c") && f.remote.is_dir("d"));
    assert_fails_with(&f.line("rm a"), "ftpsh: rm: /a: directory not empty");
    assert_ok(&f.line("rm -r a; rm d"), "");
    assert!(!f.remote.is_dir("a") && !f.remote.is_dir("d"));
}

#[test]
fn ctrl_c_stops_the_script_whatever_keep_going_says() {
    let mut f = Fixture::new();
    f.ui.interrupt
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let run = f.script("echo one\necho two\n");
    assert_eq!(run.outcome.halt, Some(Halt::Interrupted));
    assert_eq!(run.out, "one\n");
}

// ---------------------------------------------------------------- everyday verbs

#[test]
fn rename_rmdir_cat_and_cd_dash_in_memory() {
    let mut f = Fixture::new();
    f.remote.add_file("a.txt", b"data");
    f.remote.add_dir("d/empty");
    assert_ok(&f.script("mv a.txt d/b.txt\ncat d/b.txt\n"), "data");
    assert_eq!(f.remote.file("/d/b.txt"), Some(&b"data"[..]));
    assert_fails_with(
        &f.line("rename d/b.txt d/empty"),
        "is an existing directory",
    );
    assert_eq!(f.remote.file("/d/b.txt"), Some(&b"data"[..]));
    assert_fails_with(&f.line("rmdir d"), "ftpsh: rmdir: /d: directory not empty");
    assert_ok(&f.line("rmdir d/empty"), "");
    assert!(!f.remote.is_dir("/d/empty"));
    assert_ok(&f.script("cd d\ncd -\npwd\ncd -\n"), "/\n/\n/d\n");
    assert_ok(&f.line("stat d/b.txt"), "  File: d/b.txt\n  Type: regular file\n  Size: 4\n  Mode: 0644 (-rw-r--r--)\nModify: 1970-01-01 00:00:00 UTC\n");
    assert_fails_with(
        &f.line("chmod u+z d/b.txt"),
        "ftpsh: chmod: u+z: not a mode",
    );
    // What this Remote does not do is a one-line refusal, not a panic.
    assert_fails_with(&f.line("df"), "ftpsh: df: df: unsupported by this server");
}
