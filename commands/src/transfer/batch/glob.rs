//! Local patterns: what counts as one, and how it expands against the local
//! file system (the server expands its own, for downloads).

use std::fs;
use std::path::{Path, PathBuf};

use ftpsh_core::glob::{has_glob, matcher, may_match};

/// Expands a pattern against the local file system one component at a time,
/// as a shell does: matches come back in the pattern's form (relative stays
/// relative), sorted; `*` does not match a leading dot.
pub fn local_glob(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let mut found = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if !has_glob(component) {
            for base in &found {
                next.push(base.join(component));
            }
            found = next;
            continue;
        }
        let m = matcher(component)?;
        for base in &found {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(items) = fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = items
                .filter_map(Result::ok)
                .map(|i| i.file_name())
                .filter(|n| may_match(component, &n.to_string_lossy()) && m.is_match(Path::new(n)))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_ok());
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_globs_expand_per_component() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("data/2026-01")).unwrap();
        fs::create_dir_all(p.join("data/2025-12")).unwrap();
        for f in [
            "a.log",
            "b.log",
            "c.txt",
            ".hidden.log",
            "data/2026-01/x.log",
        ] {
            fs::write(p.join(f), f).unwrap();
        }
        let base = p.to_str().unwrap();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.into_iter()
                .map(|x| x.strip_prefix(p).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            rel(local_glob(&format!("{base}/*.log")).unwrap()),
            ["a.log", "b.log"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/.*.log")).unwrap()),
            [".hidden.log"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/[bc].*")).unwrap()),
            ["b.log", "c.txt"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/data/*/?.log")).unwrap()),
            ["data/2026-01/x.log"]
        );
        assert!(local_glob(&format!("{base}/*.none")).unwrap().is_empty());
        assert!(local_glob(&format!("{base}/[")).is_err());
    }
}
