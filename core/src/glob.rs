//! Glob syntax: what counts as a pattern and what `*`, `?` and `[...]` match,
//! the same for the client's local globs and the server's.

use globset::{GlobBuilder, GlobMatcher};

/// True when a word is a pattern rather than a plain name.
pub fn has_glob(word: &str) -> bool {
    word.contains(['*', '?', '['])
}

/// The matcher for one path component of a glob; the server's glob uses it
/// too, so `*`, `?` and `[...]` mean the same on both sides.
pub fn matcher(component: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(component)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{component}: invalid pattern: {}", e.kind()))
}

/// Whether a name found in a directory may be a match of one pattern
/// component at all, whatever the component's wildcards say: never `.`, `..`,
/// an empty name or one holding `/`, and a dot file only for a component that
/// starts with a dot, as in a shell. The server's glob, the client's local
/// glob and the client's check of the server's answers all apply it.
pub fn may_match(component: &str, name: &str) -> bool {
    !matches!(name, "" | "." | "..")
        && !name.contains('/')
        && (!name.starts_with('.') || component.starts_with('.'))
}

/// Whether `name` matches the pattern component `component`, compiled as
/// `matcher` (see [`matcher`]): [`may_match`] and the wildcards.
pub fn component_matches(component: &str, matcher: &GlobMatcher, name: &str) -> bool {
    may_match(component, name) && matcher.is_match(name)
}

/// The components of a pattern as a glob expands them: split on `/`, empty
/// ones (`a//b`, a trailing `/`) left out.
pub fn components(pattern: &str) -> impl Iterator<Item = &str> {
    pattern.split('/').filter(|c| !c.is_empty())
}

/// A pattern compiled to check the paths a glob of it returned: the client
/// checks with it every match the server sends back.
pub struct Pattern {
    absolute: bool,
    /// Each component, with its matcher when it has wildcards (else it is
    /// matched literally).
    parts: Vec<(String, Option<GlobMatcher>)>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        let parts = components(pattern)
            .map(|c| {
                let m = if has_glob(c) { Some(matcher(c)?) } else { None };
                Ok((c.to_string(), m))
            })
            .collect::<Result<_, String>>()?;
        Ok(Pattern {
            absolute: pattern.starts_with('/'),
            parts,
        })
    }

    /// Whether `candidate` is a path a glob of this pattern can return: in the
    /// pattern's form (absolute exactly when it is), with as many components,
    /// none empty, literal components equal and the others matching
    /// ([`component_matches`]).
    pub fn matches(&self, candidate: &str) -> bool {
        let rest = match (self.absolute, candidate.strip_prefix('/')) {
            (true, Some(rest)) => rest,
            (false, None) => candidate,
            _ => return false,
        };
        if self.parts.is_empty() {
            return false;
        }
        let mut names = rest.split('/');
        for (component, m) in &self.parts {
            let Some(name) = names.next() else {
                return false;
            };
            let ok = match m {
                Some(m) => component_matches(component, m, name),
                None => name == component,
            };
            if !ok {
                return false;
            }
        }
        names.next().is_none()
    }
}

/// Whether `candidate` is a possible match of `pattern` (see
/// [`Pattern::matches`]); an invalid pattern matches nothing.
pub fn matches_pattern(pattern: &str, candidate: &str) -> bool {
    Pattern::new(pattern).is_ok_and(|p| p.matches(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_must_fit_the_pattern_component_by_component() {
        assert!(matches_pattern("*.txt", "report.txt"));
        assert!(matches_pattern("data/*/x.log", "data/2026-01/x.log"));
        assert!(matches_pattern("/data/*.log", "/data/a.log"));
        assert!(matches_pattern("a//b*", "a/bc"));
        assert!(matches_pattern("docs/", "docs"));
        assert!(matches_pattern("../*.txt", "../a.txt"));
        assert!(matches_pattern("./*", "./a"));
        assert!(matches_pattern(r"\**", "*star"));
        // Nothing the pattern's wildcards could not have produced.
        for bad in [
            "..",
            ".",
            "",
            "/",
            "report.md",
            "sub/x.txt",
            "/x.txt",
            "x.txt/",
            "a//b.txt",
            ".bashrc.txt",
        ] {
            assert!(!matches_pattern("*.txt", bad), "{bad:?}");
        }
        assert!(!matches_pattern("/data/*.log", "data/a.log"));
        assert!(!matches_pattern("data/*.log", "other/a.log"));
        assert!(!matches_pattern("data/*.log", "data/../a.log"));
        assert!(!matches_pattern("project*/*", "project1/.."));
        assert!(!matches_pattern("[", "["));
    }

    #[test]
    fn dot_files_match_only_a_component_that_starts_with_a_dot() {
        assert!(!matches_pattern("*", ".ftpshrc"));
        assert!(!matches_pattern("?ftpshrc", ".ftpshrc"));
        assert!(!matches_pattern("[.]ftpshrc", ".ftpshrc"));
        assert!(matches_pattern(".*", ".ftpshrc"));
        assert!(matches_pattern(".ss?/*", ".ssh/config"));
        assert!(!matches_pattern(".*", ".."));
        assert!(!matches_pattern(".*", "."));
        assert!(may_match(".*", ".x") && !may_match("*", ".x") && !may_match("*", "a/b"));
    }
}
