//! Tab completion, hints and highlighting at the prompt.
//!
//! What is completed follows the kinds of each verb's arguments
//! ([`ftpsh_commands::ArgKind`], from the value hints of its signature), as
//! sftp's command table drives its completion:
//! verbs and aliases first, then local paths, remote paths (listed from the
//! server, cached per directory until the next command runs) or verb names.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use colored::Colorize;
use ftpsh_commands::session::{Entry, EntryKind, Remote};
use ftpsh_commands::{ArgKind, Registry};
use ftpsh_core::display;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Context;

use crate::client::Connection;

/// How long tab completion waits for a remote listing.
const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the prompt's helper shares with the shell loop.
pub struct State {
    pub registry: Registry,
    pub conn: Connection,
    /// Remote listings by absolute directory, dropped after every command.
    pub cache: HashMap<String, Vec<Entry>>,
}

pub struct ShellHelper {
    pub state: Rc<RefCell<State>>,
    pub color: bool,
    files: FilenameCompleter,
}

impl ShellHelper {
    pub fn new(state: Rc<RefCell<State>>, color: bool) -> Self {
        ShellHelper {
            state,
            color,
            files: FilenameCompleter::new(),
        }
    }
}

/// The word the cursor is in: its start offset and text (quotes and escapes
/// removed), and the words of the current command before it.
fn current_word(line: &str) -> (usize, String, Vec<String>) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, ';') => {
                words.clear();
                word.clear();
                in_word = false;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '\'' | '"') => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                quote = Some(c);
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                }
            }
            (_, c) => {
                if !in_word {
                    start = i;
                    in_word = true;
                }
                word.push(c);
            }
        }
    }
    if !in_word {
        start = line.len();
    }
    (start, word, words)
}

/// Escapes a completed name for the line (spaces and quotes get a backslash).
fn escape(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_whitespace() || "'\"\\;#$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// As bash and sftp do, a unique file name is completed with a space after it
/// (closing an open quote first), so the next word can follow; a directory keeps
/// its trailing `/` and no space, to go on into it.
fn end_unique_file(pairs: &mut [Pair], quote: Option<char>) {
    if let [only] = pairs {
        if !only.replacement.ends_with('/') {
            only.replacement.extend(quote);
            only.replacement.push(' ');
        }
    }
}

/// The line editor echoes what completion types, so a control character in a
/// name would reach the terminal raw: the list shows such a name escaped, and
/// the word is completed only up to its first control character (a pattern can
/// finish it). Runs after [`end_unique_file`], so a cut name gets no space.
fn stop_at_controls(pairs: &mut [Pair]) {
    for pair in pairs {
        pair.display = display::escape(&pair.display).into_owned();
        if let Some(cut) = pair.replacement.find(char::is_control) {
            pair.replacement.truncate(cut);
        }
    }
}

/// The quote left open at the end of `line`, if any.
fn open_quote(line: &str) -> Option<char> {
    let mut quote = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                chars.next();
            }
            _ => {}
        }
    }
    quote
}

impl State {
    /// The kind of argument number `index` (0-based, flags not counted) of `verb`,
    /// looking through an alias to the verb it starts with.
    fn arg_kind(&self, verb: &str, index: usize) -> ArgKind {
        let mut name = verb.to_string();
        for _ in 0..8 {
            match self.registry.aliases.get(&name) {
                Some(exp) if !self.registry.verbs.contains(&name) || name != verb => {
                    let first = exp.split_whitespace().next().unwrap_or("").to_string();
                    if first == name {
                        break;
                    }
                    name = first;
                }
                _ => break,
            }
        }
        match self.registry.verbs.get(&name) {
            Some(v) => {
                let kinds = v.arg_kinds();
                kinds
                    .get(index.min(kinds.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(ArgKind::Text)
            }
            None => ArgKind::Text,
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.registry.verbs.names().map(str::to_string).collect();
        names.extend(self.registry.aliases.names().map(str::to_string));
        names.sort();
        names.dedup();
        names
    }

    /// Remote completions for a typed word such as `docs/re`.
    fn remote_candidates(&mut self, typed: &str) -> Vec<Pair> {
        let (dir, prefix) = match typed.rfind('/') {
            Some(i) => (&typed[..=i], &typed[i + 1..]),
            None => ("", typed),
        };
        let key = if dir.starts_with('/') {
            dir.to_string()
        } else {
            format!("{}/{dir}", self.conn.cwd().trim_end_matches('/'))
        };
        if !self.cache.contains_key(&key) {
            // Within a few seconds or not at all: the prompt cannot be
            // interrupted while it waits.
            let listing = self
                .conn
                .list_promptly(if dir.is_empty() { "." } else { dir }, COMPLETION_WAIT)
                .unwrap_or_default();
            self.cache.insert(key.clone(), listing);
        }
        self.cache[&key]
            .iter()
            .filter(|e| {
                e.name.starts_with(prefix) && (prefix.starts_with('.') || !e.name.starts_with('.'))
            })
            .map(|e| {
                let slash = if e.kind == EntryKind::Dir { "/" } else { "" };
                Pair {
                    display: format!("{}{slash}", e.name),
                    replacement: format!("{}{}{slash}", escape(dir), escape(&e.name)),
                }
            })
            .collect()
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, word, before) = current_word(&line[..pos]);
        let mut state = self.state.borrow_mut();
        let verb_position = before.is_empty();
        let trimmed = line.trim_start();
        // `!COMMAND` is for the local shell: its words are local paths.
        let kind = if trimmed.starts_with('!') || trimmed.starts_with("-!") {
            if verb_position {
                ArgKind::Text
            } else {
                ArgKind::LocalPath
            }
        } else if verb_position {
            ArgKind::Verb
        } else {
            let verb = before[0].trim_start_matches('-');
            let index = before[1..].iter().filter(|w| !w.starts_with('-')).count();
            if word.starts_with('-') {
                return Ok((start, Vec::new()));
            }
            state.arg_kind(verb, index)
        };
        match kind {
            ArgKind::Verb => {
                let prefix = word.trim_start_matches('-');
                let skip = word.len() - prefix.len();
                let pairs = state
                    .names()
                    .into_iter()
                    .filter(|n| n.starts_with(prefix))
                    .map(|n| Pair {
                        display: n.clone(),
                        replacement: format!("{n} "),
                    })
                    .collect();
                Ok((start + skip, pairs))
            }
            ArgKind::LocalPath => {
                drop(state);
                let (start, mut pairs) = self.files.complete(line, pos, ctx)?;
                end_unique_file(&mut pairs, open_quote(&line[..pos]));
                stop_at_controls(&mut pairs);
                Ok((start, pairs))
            }
            ArgKind::RemotePath => {
                let mut pairs = state.remote_candidates(&word);
                end_unique_file(&mut pairs, None);
                stop_at_controls(&mut pairs);
                Ok((start, pairs))
            }
            ArgKind::Text => Ok((pos, Vec::new())),
        }
    }
}

/// A hint that is only shown: its `completion` is `None`, so no key (right
/// arrow, End, Ctrl-F) turns `[-c] [-r] REMOTE...` into typed text.
pub struct UsageHint(String);

impl rustyline::hint::Hint for UsageHint {
    fn display(&self) -> &str {
        &self.0
    }
    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for ShellHelper {
    type Hint = UsageHint;

    /// After `VERB ` with nothing else typed, the verb's usage as a grey hint,
    /// for reading only.
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<UsageHint> {
        if pos != line.len() || !line.ends_with(' ') || line.contains(';') {
            return None;
        }
        let word = line.trim();
        if word.is_empty() || word.contains(char::is_whitespace) {
            return None;
        }
        let state = self.state.borrow();
        let verb = state.registry.verbs.get(word)?;
        if state.registry.aliases.get(word).is_some() {
            return None;
        }
        let usage = verb.usage();
        let rest = usage.strip_prefix(verb.name())?.trim_start();
        (!rest.is_empty()).then(|| UsageHint(rest.to_string()))
    }
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if !self.color {
            return Cow::Borrowed(prompt);
        }
        // "ftpsh ADDR:DIR> ": the program bold, the place in cyan.
        match prompt.split_once(' ') {
            Some((name, rest)) => {
                let place = rest.trim_end_matches("> ");
                Cow::Owned(format!("{} {}{}", name.bold(), place.cyan(), "> ".bold()))
            }
            None => Cow::Borrowed(prompt),
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(hint.dimmed().to_string())
        } else {
            Cow::Borrowed(hint)
        }
    }

    /// The verb green when it is known, red when it is not.
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let word = &trimmed[..end];
        if word.is_empty() || word.starts_with('#') || line.contains(';') {
            return Cow::Borrowed(line);
        }
        let state = self.state.borrow();
        let name = word.strip_prefix('-').unwrap_or(word);
        let known =
            state.registry.verbs.contains(name) || state.registry.aliases.get(name).is_some();
        let painted = if known {
            word.green().to_string()
        } else {
            word.red().to_string()
        };
        Cow::Owned(format!("{}{painted}{}", &line[..lead], &trimmed[end..]))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Validator for ShellHelper {}
impl rustyline::Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_under_the_cursor_is_found_through_quotes() {
        assert_eq!(
            current_word("get "),
            (4, String::new(), vec!["get".to_string()])
        );
        assert_eq!(
            current_word("get do"),
            (4, "do".to_string(), vec!["get".to_string()])
        );
        assert_eq!(
            current_word("put \"my fi"),
            (4, "my fi".to_string(), vec!["put".to_string()])
        );
        assert_eq!(
            current_word("put my\\ fi"),
            (4, "my fi".to_string(), vec!["put".to_string()])
        );
        assert_eq!(current_word("ls; ge"), (4, "ge".to_string(), vec![]));
        assert_eq!(current_word(""), (0, String::new(), vec![]));
    }

    #[test]
    fn a_unique_file_ends_with_a_space_and_its_quote_closed() {
        let pair = |r: &str| Pair {
            display: r.to_string(),
            replacement: r.to_string(),
        };
        let mut one = [pair("a.txt")];
        end_unique_file(&mut one, None);
        assert_eq!(one[0].replacement, "a.txt ");
        let mut quoted = [pair("my file")];
        end_unique_file(&mut quoted, open_quote("put \"my fi"));
        assert_eq!(quoted[0].replacement, "my file\" ");
        let mut dir = [pair("docs/")];
        end_unique_file(&mut dir, None);
        assert_eq!(dir[0].replacement, "docs/");
        let mut two = [pair("a1"), pair("a2")];
        end_unique_file(&mut two, None);
        assert_eq!(two[1].replacement, "a2");
        assert_eq!(open_quote("put 'a b' \"c\\\"d"), Some('"'));
        assert_eq!(open_quote("put it\\'s"), None);
    }

    #[test]
    fn control_characters_are_listed_escaped_and_never_typed() {
        let mut pairs = [Pair {
            display: "bell\x07".to_string(),
            replacement: "bell\x07".to_string(),
        }];
        end_unique_file(&mut pairs, None);
        stop_at_controls(&mut pairs);
        assert_eq!(pairs[0].display, "bell\\x07");
        assert_eq!(pairs[0].replacement, "bell");
    }

    #[test]
    fn completed_names_are_escaped() {
        assert_eq!(escape("a b's"), "a\\ b\\'s");
    }
}
