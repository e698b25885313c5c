//! Every built-in verb's example, as `help VERB` shows it, runs: in script mode
//! against the real server (exec allowed), in a root and a home directory
//! holding what the example names. (`commands/src/verbs/mod.rs` checks that
//! each one parses with its verb's signature.)

use crate::common::*;

use std::path::Path;

use ftpsh_commands::Registry;

/// Verbs whose example cannot run unattended, with the reason. None today:
/// a verb added here must say why.
const NEEDS_A_HUMAN: &[(&str, &str)] = &[];

/// What an example needs before it runs: files in the served root and in the
/// client's home (also its working directory), and commands run first.
fn set_up(verb: &str, root: &Path, home: &Path) -> &'static str {
    let file = |dir: &Path, rel: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, rel.as_bytes()).unwrap();
    };
    let dir = |dir: &Path, rel: &str| std::fs::create_dir_all(dir.join(rel)).unwrap();
    match verb {
        "cd" => dir(root, "docs/2026"),
        "exec" => file(root, "a.txt"),
        "get" => {
            file(root, "backups/2026/jan.tar");
            dir(home, "restore");
        }
        "lcd" | "lls" => file(home, "Downloads/a.txt"),
        "ls" => file(root, "docs/report.pdf"),
        "md5" => file(root, "backup.tar"),
        "mget" => {
            file(root, "a.log");
            file(root, "data/2026-01.csv");
        }
        "mput" => {
            file(home, "a.txt");
            file(home, "notes/todo.md");
        }
        "put" => {
            file(home, "photos/cat.jpg");
            dir(root, "backups");
        }
        "rm" => file(root, "old.log"),
        "mirror" => file(root, "site/index.html"),
        "source" => std::fs::write(home.join("backup.ftpsh"), "echo sourced\n").unwrap(),
        "type" | "unalias" => return "alias ll 'ls -l'\n",
        "rename" | "mv" => {
            file(root, "draft.txt");
            dir(root, "docs");
        }
        "chmod" => file(root, "bin/run.sh"),
        "rmdir" => dir(root, "old/empty"),
        "ln" | "stat" => file(root, "docs/report.pdf"),
        "cat" => file(root, "notes.txt"),
        "lrm" => file(home, "old-restore/a.txt"),
        "lrename" => file(home, "notes.txt"),
        _ => {}
    }
    ""
}

/// What some examples should have done, beyond succeeding.
fn check(verb: &str, root: &Path, home: &Path, stdout: &str) {
    let done = match verb {
        "echo" => stdout == "hello world\n",
        "get" => home.join("restore/2026/jan.tar").is_file(),
        "put" => root.join("backups/photos/cat.jpg").is_file(),
        "mget" => home.join("a.log").is_file() && home.join("2026-01.csv").is_file(),
        "mput" => root.join("a.txt").is_file() && root.join("todo.md").is_file(),
        "mkdir" => root.join("backups/2026").is_dir(),
        "rm" => !root.join("old.log").exists(),
        "mirror" => home.join("site/index.html").is_file(),
        "md5" => stdout.ends_with("  backup.tar\n"),
        "source" => stdout == "sourced\n",
        "type" => stdout == "ll is an alias for 'ls -l'\n",
        "rename" | "mv" => {
            root.join("docs/final.txt").is_file() && !root.join("draft.txt").exists()
        }
        "chmod" => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.join("bin/run.sh"))
                .unwrap()
                .permissions()
                .mode();
            mode & 0o100 != 0 && mode & 0o022 == 0
        }
        "rmdir" => !root.join("old/empty").exists() && root.join("old").is_dir(),
        "ln" => std::fs::read_link(root.join("latest.pdf"))
            .is_ok_and(|t| t == Path::new("docs/report.pdf")),
        "stat" => stdout.contains("  Type: regular file\n"),
        "df" => stdout.trim_start().starts_with("Size") && stdout.contains("Use%"),
        "cat" => stdout == "notes.txt",
        "!" => stdout == "local\n",
        "lmkdir" => home.join("restore/2026").is_dir(),
        "lrm" => !home.join("old-restore").exists(),
        "lrename" => home.join("notes-2026.txt").is_file() && !home.join("notes.txt").exists(),
        "ls" => stdout.contains("report.pdf"),
        _ => true,
    };
    assert!(
        done,
        "{verb}: the example did not do its job; stdout:\n{stdout}"
    );
}

#[test]
fn every_verbs_example_runs() {
    let registry = Registry::with_builtins();
    let mut ran = 0;
    for verb in registry.verbs.sorted() {
        let name = verb.name();
        if let Some((_, why)) = NEEDS_A_HUMAN.iter().find(|(v, _)| *v == name) {
            eprintln!("{name}: example not run: {why}");
            continue;
        }
        let root = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let before = set_up(name, root.path(), home.path());
        let server = ServerBuilder::new(root.path()).allow_exec().start();
        let script = format!("{before}{}\n", verb.example());
        let out = server
            .client(home.path())
            .write_stdin(script.as_str())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {script:?} failed ({:?}); add what it needs to set_up\nstdout:\n{}\nstderr:\n{}",
            out.status,
            stdout_of(&out),
            stderr_of(&out)
        );
        assert_eq!(stderr_of(&out), "", "{name}: {script:?}");
        check(name, root.path(), home.path(), &stdout_of(&out));
        ran += 1;
    }
    assert_eq!(ran + NEEDS_A_HUMAN.len(), registry.verbs.sorted().len());
}
