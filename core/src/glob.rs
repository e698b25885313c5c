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
