//! The alias table and alias expansion.
//!
//! An expansion is text in the shell's own syntax, so it may hold several
//! commands separated by `;`. `$1`..`$9` take the arguments the alias was called
//! with and `$@` takes them all (as separate words when it stands alone); an
//! expansion with no placeholder gets the arguments appended to its last command,
//! as lftp does.

use std::collections::BTreeMap;

use crate::line::{split_line, Words};

/// User-defined aliases, sorted by name for listing.
#[derive(Debug, Default, Clone)]
pub struct Aliases {
    table: BTreeMap<String, String>,
}

impl Aliases {
    pub fn new() -> Self {
        Self::default()
    }
    /// Defines or replaces an alias. The expansion must split into words.
    pub fn set(&mut self, name: &str, expansion: &str) -> Result<(), String> {
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == ';' || c == '\'' || c == '"')
        {
            return Err(format!("invalid alias name '{name}'"));
        }
        if name.starts_with('-') || name.starts_with('#') {
            return Err(format!("an alias name cannot start with '{}'", &name[..1]));
        }
        split_line(expansion)?;
        self.table.insert(name.to_string(), expansion.to_string());
        Ok(())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.table.get(name).map(String::as_str)
    }
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.table.remove(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.table.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }
}

/// Expands an alias's text with the arguments it was called with.
pub fn expand(expansion: &str, args: &[String]) -> Result<Vec<Words>, String> {
    let mut commands = split_line(expansion)?;
    let has_placeholder = commands
        .iter()
        .flat_map(|c| &c.words)
        .any(|w| placeholders(w).next().is_some());
    if !has_placeholder {
        if let Some(last) = commands.last_mut() {
            last.words.extend(args.iter().cloned());
        }
        return Ok(commands);
    }
    for command in &mut commands {
        let mut words = Vec::with_capacity(command.words.len());
        for word in &command.words {
            if word == "$@" {
                words.extend(args.iter().cloned());
            } else {
                words.push(substitute(word, args));
            }
        }
        command.words = words;
    }
    Ok(commands)
}

/// Positions of `$1`..`$9` and `$@` in a word.
fn placeholders(word: &str) -> impl Iterator<Item = usize> + '_ {
    word.match_indices('$').filter_map(move |(i, _)| {
        let next = word[i + 1..].chars().next()?;
        (next == '@' || ('1'..='9').contains(&next)).then_some(i)
    })
}

fn substitute(word: &str, args: &[String]) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('@') => {
                out.push_str(&args.join(" "));
                rest = &after[1..];
            }
            Some(d @ '1'..='9') => {
                let n = d as usize - '1' as usize;
                out.push_str(args.get(n).map(String::as_str).unwrap_or(""));
                rest = &after[1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expansion: &str, args: &[&str]) -> Vec<Vec<String>> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        expand(expansion, &args)
            .unwrap()
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    #[test]
    fn arguments_are_appended_without_placeholders() {
        assert_eq!(
            run("ls -l", &["docs", "x y"]),
            vec![vec!["ls", "-l", "docs", "x y"]]
        );
    }

    #[test]
    fn placeholders_take_arguments() {
        assert_eq!(run("get $2 $1", &["a", "b"]), vec![vec!["get", "b", "a"]]);
        assert_eq!(
            run("echo pre-$1-post", &["x"]),
            vec![vec!["echo", "pre-x-post"]]
        );
        assert_eq!(run("echo $3", &["x"]), vec![vec!["echo", ""]]);
        assert_eq!(
            run("echo $@ end", &["a b", "c"]),
            vec![vec!["echo", "a b", "c", "end"]]
        );
        assert_eq!(run("echo [$@]", &["a", "c"]), vec![vec!["echo", "[a c]"]]);
    }

    #[test]
    fn several_commands_and_placeholders_in_each() {
        assert_eq!(
            run("cd $1; ls", &["docs"]),
            vec![vec!["cd", "docs"], vec!["ls"]]
        );
        assert_eq!(run("pwd; ls", &["x"]), vec![vec!["pwd"], vec!["ls", "x"]]);
    }

    #[test]
    fn a_lone_dollar_is_kept() {
        assert_eq!(run("echo $ $x", &[]), vec![vec!["echo", "$", "$x"]]);
    }

    #[test]
    fn names_are_checked() {
        let mut a = Aliases::new();
        assert!(a.set("bad name", "ls").is_err());
        assert!(a.set("-x", "ls").is_err());
        assert!(a.set("ok", "echo 'unterminated").is_err());
        a.set("ll", "ls -l").unwrap();
        assert_eq!(a.get("ll"), Some("ls -l"));
    }
}
