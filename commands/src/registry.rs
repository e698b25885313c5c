//! The registry: the one place that maps a typed word to code.
//!
//! Lookup of a word is the `getattr` of the classic design, `alias` its `setattr`,
//! `unalias` its `delattr` and `type` its `hasattr`. Verbs and aliases live in
//! separate fields so that a running verb can hold `&Verbs` (for `help`, `type`)
//! and `&mut Aliases` (for `alias`) at once.

use std::collections::HashMap;

use crate::aliases::Aliases;
use crate::{verbs, Command};

/// The built-in verbs by name.
#[derive(Default)]
pub struct Verbs {
    map: HashMap<String, Box<dyn Command>>,
}

impl Verbs {
    pub fn get(&self, name: &str) -> Option<&dyn Command> {
        self.map.get(name).map(|b| b.as_ref())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
    /// All verbs, sorted by name.
    pub fn sorted(&self) -> Vec<&dyn Command> {
        let mut all: Vec<&dyn Command> = self.map.values().map(|b| b.as_ref()).collect();
        all.sort_by_key(|c| c.name());
        all
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
    fn insert(&mut self, verb: Box<dyn Command>) {
        self.map.insert(verb.name().to_string(), verb);
    }
}

/// Verbs plus the user's aliases.
#[derive(Default)]
pub struct Registry {
    pub verbs: Verbs,
    pub aliases: Aliases,
}

impl Registry {
    /// An empty registry: no verbs at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every built-in verb of ftpsh.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        for verb in verbs::builtins() {
            registry.register(verb);
        }
        registry
    }

    /// Adds a verb, replacing any verb of the same name.
    pub fn register(&mut self, verb: Box<dyn Command>) {
        self.verbs.insert(verb);
    }
}

/// The closest verb or alias to a mistyped word, if one is close enough to be a
/// likely typo (`gte` → `get`, `hlep` → `help`, `mkd` → `mkdir`).
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let word_len = word.chars().count();
    candidates
        .filter_map(|c| {
            let distance = strsim::damerau_levenshtein(word, c);
            let limit = (word_len.max(c.chars().count()) / 3).max(1);
            let prefix = word_len >= 2 && c.starts_with(word);
            (distance <= limit || prefix).then_some((if prefix { 0 } else { distance }, c))
        })
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        let verbs = ["get", "put", "help", "mkdir", "echo", "ls"];
        assert_eq!(suggest("gte", verbs.iter().copied()), Some("get"));
        assert_eq!(suggest("hlep", verbs.iter().copied()), Some("help"));
        assert_eq!(suggest("mkd", verbs.iter().copied()), Some("mkdir"));
        assert_eq!(suggest("ehco", verbs.iter().copied()), Some("echo"));
        assert_eq!(suggest("frobnicate", verbs.iter().copied()), None);
    }

    #[test]
    fn builtins_are_all_registered_under_their_names() {
        let r = Registry::with_builtins();
        for name in [
            "help", "echo", "exec", "get", "put", "mget", "mput", "ls", "cd", "pwd", "mkdir", "rm",
            "md5", "lcd", "lpwd", "lls", "alias", "unalias", "type", "source", "quit", "exit",
            "bye",
        ] {
            assert_eq!(r.verbs.get(name).map(|v| v.name()), Some(name), "{name}");
        }
        for verb in r.verbs.sorted() {
            assert!(verb.usage().starts_with(verb.name()), "{}", verb.name());
            assert!(
                !verb.about().is_empty() && !verb.example().is_empty(),
                "{}",
                verb.name()
            );
        }
    }
}
