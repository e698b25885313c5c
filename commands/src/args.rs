//! A verb's words, read through its signature: the clap command of
//! [`Command::signature`] gives the usage line, the help of `help VERB` and
//! `VERB --help`, the completion kinds and the parsing, so the four cannot
//! disagree. Clap's multi-line errors become the one line the shell prints.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};

use crate::{ArgKind, Command, CommandError};

/// Ends the sources of a `SOURCE... [DEST]` signature (`get`, `put`). Clap
/// cannot leave the last of several words to an optional argument that follows
/// one taking many, and asks for a terminator on the many; this one cannot
/// occur in a path, so the sources take every word and the verb splits the
/// destination off itself (`split_destination`). The usage still reads
/// `get [-c] [-r] REMOTE... [LOCAL]`, and completion still knows LOCAL's side.
pub const SOURCES_END: &str = "\0";

/// The id of the `--help` argument every verb gets.
const HELP: &str = "help";

/// The verb's signature as the shell parses with it: named after the verb, with
/// `--help` and without clap's `-h` (a verb may want `-h` for itself, as `ls -lh`
/// does) or `--version`.
pub fn signature(verb: &dyn Command) -> clap::Command {
    with_help(verb.name(), verb.signature())
}

fn with_help(name: &'static str, signature: clap::Command) -> clap::Command {
    signature
        .name(name)
        .bin_name(name)
        .no_binary_name(false)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new(HELP)
                .long("help")
                .action(ArgAction::Help)
                .hide(true)
                .help("show this help"),
        )
}

/// Checks `args` (the words after the verb) against the verb's signature.
/// Errors become [`CommandError::Usage`] carrying one line and the usage;
/// `--help` becomes [`CommandError::Help`] with the text of `help VERB`.
pub fn matches(verb: &dyn Command, args: &[String]) -> Result<ArgMatches, CommandError> {
    let words = std::iter::once(verb.name().to_string()).chain(args.iter().cloned());
    let signature = signature(verb);
    let options = has_options(&signature);
    signature
        .try_get_matches_from(words)
        .map_err(|e| usage_error(verb, options, &e))
}

/// Parses `args` into `T`, normally the `#[derive(Parser)]` struct whose
/// `command()` is the verb's signature (see [`matches()`] for the errors).
pub fn parse<T: FromArgMatches>(verb: &dyn Command, args: &[String]) -> Result<T, CommandError> {
    let m = matches(verb, args)?;
    T::from_arg_matches(&m).map_err(|e| usage_error(verb, true, &e))
}

/// True when the signature has options besides `--help`.
fn has_options(signature: &clap::Command) -> bool {
    signature
        .get_arguments()
        .any(|a| !a.is_positional() && a.get_id() != HELP)
}

/// One line for a clap error. A verb without options counts words, and says
/// so as it always did: "missing argument", "too many arguments".
fn usage_error(verb: &dyn Command, options: bool, e: &clap::Error) -> CommandError {
    let what = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            return CommandError::Help(help_text(verb))
        }
        ErrorKind::MissingRequiredArgument if !options => "missing argument".to_string(),
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues if !options => {
            "too many arguments".to_string()
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(names)) => names
                    .iter()
                    .map(|n| n.replace(['<', '>'], ""))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "an argument".to_string(),
            };
            format!("missing {missing}")
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            first
                .trim_start_matches("error: ")
                .replace('\'', "")
                .to_string()
        }
    };
    CommandError::Usage(format!("{what} (usage: {})", verb.usage()))
}

/// The synopsis of a signature in the usual man-page form:
/// `get [-c] [-r] REMOTE... [LOCAL]`. Options come first, each in brackets;
/// then the positional arguments by index: `NAME` when required, `NAME...`
/// when it takes several, and an optional one opens a bracket that holds the
/// rest, `[NAME [MORE...]]`.
pub fn usage(name: &str, signature: &clap::Command) -> String {
    let signature = built(signature);
    let signature = &signature;
    let mut parts = vec![name.to_string()];
    for arg in signature.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() || arg.get_id() == HELP {
            continue;
        }
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        };
        let value = if takes_value(arg) {
            format!(" {}", value_name(arg))
        } else {
            String::new()
        };
        if arg.is_required_set() {
            parts.push(format!("{flag}{value}"));
        } else {
            parts.push(format!("[{flag}{value}]"));
        }
    }
    let mut open = 0;
    for arg in &positionals(signature) {
        let dots = if many(arg) { "..." } else { "" };
        if arg.is_required_set() {
            parts.push(format!("{}{dots}", value_name(arg)));
        } else {
            parts.push(format!("[{}{dots}", value_name(arg)));
            open += 1;
        }
    }
    let mut line = parts.join(" ");
    line.push_str(&"]".repeat(open));
    line
}

/// The completion kinds of a signature's positional arguments, in order.
pub fn kinds(signature: &clap::Command) -> Vec<ArgKind> {
    positionals(&built(signature))
        .iter()
        .map(|a| ArgKind::from_hint(a.get_value_hint()))
        .collect()
}

/// The text `help VERB` (and `VERB --help`) prints: the usage, the one line of
/// help, each option with its help, the details, the example.
pub fn help_text(verb: &dyn Command) -> String {
    let signature = built(&signature(verb));
    let mut text = format!("usage: {}\n  {}", verb.usage(), verb.about());
    let options: Vec<(String, String)> = signature
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .map(|a| {
            let mut flag = match (a.get_short(), a.get_long()) {
                (Some(c), Some(l)) => format!("-{c}, --{l}"),
                (Some(c), None) => format!("-{c}"),
                (None, Some(l)) => format!("--{l}"),
                (None, None) => String::new(),
            };
            if takes_value(a) {
                flag.push(' ');
                flag.push_str(&value_name(a));
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            (flag, help)
        })
        .collect();
    let width = options.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    for (flag, help) in &options {
        text.push_str(&format!("\n  {flag:<width$}  {help}"));
    }
    for line in verb.details().lines() {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text.push_str(&format!("\n  example: {}", verb.example()));
    text
}

/// A copy with clap's defaults filled in (how many values each argument
/// takes), which also runs clap's own checks of the signature.
fn built(signature: &clap::Command) -> clap::Command {
    let mut signature = signature.clone();
    signature.build();
    signature
}

/// The positional arguments in order (of a [`built`] signature).
fn positionals(signature: &clap::Command) -> Vec<Arg> {
    let mut args: Vec<Arg> = signature.get_positionals().cloned().collect();
    args.sort_by_key(|a| a.get_index());
    args
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

fn many(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

fn value_name(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some([first, ..]) => first.to_string(),
        _ => arg.get_id().as_str().to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    #[test]
    fn every_usage_line_is_rendered_from_the_signature() {
        let r = Registry::with_builtins();
        let usage = |v: &str| r.verbs.get(v).unwrap().usage();
        for (verb, line) in [
            ("alias", "alias [NAME [EXPANSION...]]"),
            ("cd", "cd [PATH]"),
            ("echo", "echo [TEXT...]"),
            ("exec", "exec COMMAND..."),
            ("get", "get [-c] [-r] [-p] [-L] REMOTE... [LOCAL]"),
            ("help", "help [VERB]"),
            ("lcd", "lcd [PATH]"),
            ("lls", "lls [-l] [-a] [PATH]"),
            ("lpwd", "lpwd"),
            ("ls", "ls [-l] [-a] [-h] [-t] [-S] [-r] [-1] [PATTERN...]"),
            ("md5", "md5 PATH..."),
            ("mget", "mget [-c] [-r] PATTERN..."),
            (
                "mirror",
                "mirror [-R] [--delete] [--dry-run] [-p] SOURCE [TARGET]",
            ),
            ("mkdir", "mkdir [-p] PATH..."),
            ("mput", "mput [-c] [-r] PATTERN..."),
            ("put", "put [-c] [-r] [-p] [-L] LOCAL... [REMOTE]"),
            ("pwd", "pwd"),
            ("quit", "quit"),
            ("exit", "exit"),
            ("bye", "bye"),
            ("rm", "rm [-r] PATTERN..."),
            ("rename", "rename OLD NEW"),
            ("mv", "mv OLD NEW"),
            ("chmod", "chmod MODE PATH..."),
            ("rmdir", "rmdir PATH..."),
            ("ln", "ln -s TARGET LINK"),
            ("stat", "stat PATH..."),
            ("df", "df [-h] [PATH]"),
            ("cat", "cat PATH..."),
            ("!", "! [COMMAND...]"),
            ("lmkdir", "lmkdir [-p] PATH..."),
            ("lrm", "lrm [-r] PATH..."),
            ("lrename", "lrename OLD NEW"),
            ("source", "source FILE"),
            ("type", "type NAME..."),
            ("unalias", "unalias NAME..."),
        ] {
            assert_eq!(usage(verb), line);
        }
        assert_eq!(r.verbs.sorted().len(), 36, "a verb above is missing");
    }

    #[test]
    fn completion_kinds_come_from_the_value_hints() {
        use ArgKind::*;
        let r = Registry::with_builtins();
        let kinds = |v: &str| r.verbs.get(v).unwrap().arg_kinds();
        assert_eq!(kinds("get"), [RemotePath, LocalPath]);
        assert_eq!(kinds("put"), [LocalPath, RemotePath]);
        assert_eq!(kinds("mget"), [RemotePath]);
        assert_eq!(kinds("mput"), [LocalPath]);
        assert_eq!(kinds("alias"), [Verb, Text]);
        assert_eq!(kinds("help"), [Verb]);
        assert_eq!(kinds("exec"), [Text]);
        assert_eq!(kinds("lls"), [LocalPath]);
        assert_eq!(kinds("md5"), [RemotePath]);
        assert_eq!(kinds("pwd"), []);
    }

    #[test]
    fn help_shows_each_option_with_its_doc_comment() {
        let r = Registry::with_builtins();
        let text = help_text(r.verbs.get("get").unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "usage: get [-c] [-r] [-p] [-L] REMOTE... [LOCAL]");
        assert!(lines[2].starts_with("  -c  Resume"), "{text}");
        assert!(lines[3].starts_with("  -r  Recursive"), "{text}");
        assert!(!text.contains("--help"), "{text}");
        assert_eq!(
            lines.last(),
            Some(&"  example: get -r -c backups/2026 ~/restore/")
        );
    }

    #[test]
    fn dash_h_is_left_to_the_verb_and_dash_dash_help_is_help() {
        let r = Registry::with_builtins();
        let ls = r.verbs.get("ls").unwrap();
        match matches(ls, &["--help".to_string()]) {
            Err(CommandError::Help(text)) => assert!(text.starts_with("usage: ls ")),
            other => panic!("{other:?}"),
        }
        let get = r.verbs.get("get").unwrap();
        match matches(get, &["-rh".to_string(), "x".to_string()]) {
            Err(CommandError::Usage(msg)) => assert!(msg.contains("-h"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(matches(ls, &["-lh".to_string()]).is_ok());
    }

    #[test]
    fn verbs_without_options_count_words_as_before() {
        let r = Registry::with_builtins();
        let err = |v: &str, words: &[&str]| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            match matches(r.verbs.get(v).unwrap(), &words) {
                Err(CommandError::Usage(msg)) => msg,
                other => panic!("{v} {words:?}: {other:?}"),
            }
        };
        assert_eq!(
            err("cd", &["a", "b"]),
            "too many arguments (usage: cd [PATH])"
        );
        assert_eq!(err("pwd", &["-x"]), "too many arguments (usage: pwd)");
        assert_eq!(
            err("unalias", &[]),
            "missing argument (usage: unalias NAME...)"
        );
        assert_eq!(
            err("get", &[]),
            "missing REMOTE... (usage: get [-c] [-r] [-p] [-L] REMOTE... [LOCAL])"
        );
        assert!(err("lls", &["a", "b"]).starts_with("unexpected argument b found"));
    }
}
