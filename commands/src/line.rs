//! Splitting a typed line into commands and words.
//!
//! `;` separates commands except inside quotes or after a backslash; each command
//! is split into words with shell quoting rules (shell-words). A line whose first
//! word starts with `#` is a comment. A command written `-verb ...` has its failure
//! ignored, as in `sftp -b`.

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub words: Vec<String>,
    /// Written with a leading `-`: a failure does not stop a script.
    pub ignore_failure: bool,
}

/// Splits a line into its commands. Empty commands and comments are dropped.
/// A line starting with `!` (or `-!`) is one command, `!` and the rest of the
/// line as one word, unsplit: it is for the local shell (see the `!` verb).
pub fn split_line(line: &str) -> Result<Vec<Words>, String> {
    let trimmed = line.trim_start();
    let (bang, ignore_failure) = match trimmed.strip_prefix("-!") {
        Some(rest) => (Some(rest), true),
        None => (trimmed.strip_prefix('!'), false),
    };
    if let Some(rest) = bang {
        let mut words = vec!["!".to_string()];
        let rest = rest.trim();
        if !rest.is_empty() {
            words.push(rest.to_string());
        }
        return Ok(vec![Words {
            words,
            ignore_failure,
        }]);
    }
    if let Some(words) = plain_words(line) {
        return Ok(command(words).into_iter().collect());
    }
    let mut commands = Vec::new();
    for part in split_semicolons(line)? {
        let words = shell_words::split(&unescape_single_quoted(&part))
            .map_err(|_| format!("unmatched quote in: {}", part.trim()))?;
        commands.extend(command(words));
    }
    Ok(commands)
}

/// One command's words, with a leading `-` taken off as the mark of a
/// command whose failure is tolerated; `None` for no words.
fn command(mut words: Vec<String>) -> Option<Words> {
    if words.is_empty() {
        return None;
    }
    let mut ignore_failure = false;
    if let Some(rest) = words[0].strip_prefix('-') {
        if !rest.is_empty() {
            ignore_failure = true;
            words[0] = rest.to_string();
        }
    }
    // `!ls` after a `;` is `! ls`, as at the start of a line (where `!`
    // takes the rest of the line, unsplit); here it ends at the next `;`.
    if let Some(rest) = words[0].strip_prefix('!') {
        if !rest.is_empty() {
            words[0] = rest.to_string();
            words.insert(0, "!".to_string());
        }
    }
    Some(Words {
        words,
        ignore_failure,
    })
}

/// The words of a line with nothing for the full splitter to do: printable
/// ASCII without quotes, backslashes, `;` or `#`, in words separated by
/// spaces and tabs, which shell-words would split the same way. A script of
/// many short lines (`echo` to measure latency) spent more time in the
/// copies of the full path than in the round trip's system calls.
fn plain_words(line: &str) -> Option<Vec<String>> {
    let plain = line
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (b.is_ascii_graphic() && !b"'\"\\;#".contains(&b)));
    plain.then(|| {
        line.split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    })
}

/// Inside single quotes, the escaped form names are shown in is typed back
/// ([`ftpsh_core::display::unescape`]): `'a\xffb'` is the name of bytes
/// `a`, 0xff, `b`; `\\` a backslash; `\e \n \r \t` the controls. The rest of
/// the line is left to shell-words.
fn unescape_single_quoted(part: &str) -> String {
    if !part.contains('\'') || !part.contains('\\') {
        return part.to_string();
    }
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') => {
                let mut inner = String::new();
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    inner.push(q);
                }
                out.push('\'');
                out.push_str(&ftpsh_core::display::unescape(&inner).replace('\'', "'\\''"));
                out.push('\'');
            }
            (None, '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                out.push(c);
            }
            (_, '\\') => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Splits at `;` outside single quotes, double quotes and backslash escapes,
/// keeping the quoting of each part for shell-words. A `#` that starts a word
/// ends the line, so a `;` inside a comment does not start a command.
pub fn split_semicolons(line: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, ';') => parts.push(std::mem::take(&mut current)),
            (None, '#') if current.chars().last().is_none_or(|l| l.is_whitespace()) => {
                break;
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some('\''), _) => current.push(c),
            (_, '\\') => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            _ => current.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("unmatched quote in: {}", line.trim()));
    }
    parts.push(current);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        split_line(line)
            .unwrap()
            .into_iter()
            .map(|w| w.words)
            .collect()
    }

    #[test]
    fn plain_lines_split_as_shell_words_splits_them() {
        for line in [
            "",
            "   ",
            "echo ping",
            "  echo\tping  pong ",
            "-echo x",
            "- echo",
            "get -r a/b c.d",
            "ls *.txt ~/x $HOME a=b (c) [d] {e} | & < > ` % ? !",
            "echo a!b",
        ] {
            let full = shell_words::split(line).unwrap();
            assert_eq!(plain_words(line), Some(full), "{line:?}");
        }
        for line in [
            "echo 'a'",
            "echo \"a\"",
            "echo a\\b",
            "a; b",
            "a #c",
            "é",
            "a\nb",
        ] {
            assert_eq!(plain_words(line), None, "{line:?}");
        }
        assert_eq!(words("-echo x"), vec![vec!["echo", "x"]]);
        assert!(split_line("-echo x").unwrap()[0].ignore_failure);
        assert!(words("  ").is_empty());
    }

    #[test]
    fn semicolons_separate_outside_quotes() {
        assert_eq!(
            words("echo a; echo 'b;c' \"d;e\" f\\;g"),
            vec![vec!["echo", "a"], vec!["echo", "b;c", "d;e", "f;g"],]
        );
    }

    #[test]
    fn escapes_inside_single_quotes_name_bytes() {
        let raw = ftpsh_core::display::name_from_bytes(b"a\xffb").into_owned();
        assert_eq!(words("rm 'a\\xffb'"), vec![vec!["rm".to_string(), raw]]);
        assert_eq!(
            words("ls 'back\\\\slash\\e' \"d\\q\""),
            vec![vec!["ls", "back\\slash\x1b", "d\\q"]]
        );
        assert_eq!(words("echo 'it\\x27s'"), vec![vec!["echo", "it's"]]);
    }

    #[test]
    fn comments_and_blanks_are_dropped() {
        assert!(words("   ").is_empty());
        assert!(words("# echo a; echo b").is_empty());
        assert_eq!(
            words("echo a # a comment; not a command"),
            vec![vec!["echo", "a"]]
        );
        assert_eq!(words("echo a#b"), vec![vec!["echo", "a#b"]]);
    }

    #[test]
    fn leading_dash_ignores_failure() {
        let cmds = split_line("-rm x; rm y").unwrap();
        assert!(cmds[0].ignore_failure);
        assert_eq!(cmds[0].words, vec!["rm", "x"]);
        assert!(!cmds[1].ignore_failure);
    }

    #[test]
    fn a_bang_line_is_one_unsplit_command() {
        assert_eq!(
            words("  !ls -l 'a b'; echo x # y"),
            vec![vec!["!", "ls -l 'a b'; echo x # y"]]
        );
        assert_eq!(words("!"), vec![vec!["!"]]);
        assert_eq!(
            words("cd d; !ls -l; pwd"),
            vec![vec!["cd", "d"], vec!["!", "ls", "-l"], vec!["pwd"]]
        );
        let cmds = split_line("-!false").unwrap();
        assert!(cmds[0].ignore_failure);
        assert_eq!(cmds[0].words, vec!["!", "false"]);
    }

    #[test]
    fn unmatched_quote_is_an_error() {
        assert!(split_line("get \"my file").is_err());
    }
}
