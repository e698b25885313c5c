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
    let mut commands = Vec::new();
    for part in split_semicolons(line)? {
        let mut words = shell_words::split(&part)
            .map_err(|_| format!("unmatched quote in: {}", part.trim()))?;
        if words.is_empty() {
            continue;
        }
        let mut ignore_failure = false;
        if let Some(rest) = words[0].strip_prefix('-') {
            if !rest.is_empty() {
                ignore_failure = true;
                words[0] = rest.to_string();
            }
        }
        commands.push(Words {
            words,
            ignore_failure,
        });
    }
    Ok(commands)
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
    fn semicolons_separate_outside_quotes() {
        assert_eq!(
            words("echo a; echo 'b;c' \"d;e\" f\\;g"),
            vec![vec!["echo", "a"], vec!["echo", "b;c", "d;e", "f;g"],]
        );
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
        let cmds = split_line("-!false").unwrap();
        assert!(cmds[0].ignore_failure);
        assert_eq!(cmds[0].words, vec!["!", "false"]);
    }

    #[test]
    fn unmatched_quote_is_an_error() {
        assert!(split_line("get \"my file").is_err());
    }
}
