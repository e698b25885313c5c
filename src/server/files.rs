//! The requests that touch the tree but move no file data: listing, directories,
//! removal, globbing and walking. Every path goes through the [`Jail`].

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use ftpsh_core::glob::{
    component_matches, components as pattern_components, has_glob, matcher as glob_matcher,
};

use super::jail::{describe, virtual_path, Jail, JailError};
use ftpsh_core::protocol::{Entry, EntryKind};

fn jail_err(e: JailError) -> String {
    e.to_string()
}

/// An entry from metadata (not following a final symlink).
pub fn entry(name: String, meta: &fs::Metadata) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: meta.len(),
        mtime: meta.mtime(),
        mode: meta.permissions().mode() & 0o7777,
    }
}

pub fn change_dir(jail: &Jail, cwd: &str, path: &str) -> Result<String, String> {
    let r = jail.resolve(cwd, path).map_err(jail_err)?;
    match fs::metadata(&r.real) {
        Ok(m) if m.is_dir() => Ok(r.virt),
        Ok(_) => Err(format!("{}: not a directory", r.virt)),
        Err(e) => Err(format!("{}: {}", r.virt, describe(&e))),
    }
}

/// A directory's entries sorted by name, or a file as itself.
pub fn list(jail: &Jail, cwd: &str, path: &str) -> Result<Vec<Entry>, String> {
    let r = jail.resolve(cwd, path).map_err(jail_err)?;
    let meta = fs::metadata(&r.real).map_err(|e| format!("{}: {}", r.virt, describe(&e)))?;
    if !meta.is_dir() {
        let name = path.trim_end_matches('/').to_string();
        return Ok(vec![entry(name, &meta)]);
    }
    let mut out = Vec::new();
    for item in fs::read_dir(&r.real).map_err(|e| format!("{}: {}", r.virt, describe(&e)))? {
        let Ok(item) = item else { continue };
        let Ok(meta) = item.path().symlink_metadata() else {
            continue;
        };
        out.push(entry(
            item.file_name().to_string_lossy().into_owned(),
            &meta,
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn stat(jail: &Jail, cwd: &str, path: &str) -> Result<Entry, String> {
    let r = jail.resolve(cwd, path).map_err(jail_err)?;
    let meta = fs::metadata(&r.real).map_err(|e| format!("{}: {}", r.virt, describe(&e)))?;
    let name = r.virt.rsplit('/').next().unwrap_or("").to_string();
    Ok(entry(name, &meta))
}

pub fn mkdir(jail: &Jail, cwd: &str, path: &str, parents: bool) -> Result<(), String> {
    let r = jail.resolve(cwd, path).map_err(jail_err)?;
    let result = if parents {
        fs::create_dir_all(&r.real)
    } else {
        fs::create_dir(&r.real)
    };
    result.map_err(|e| format!("{}: {}", r.virt, describe(&e)))
}

pub fn remove(jail: &Jail, cwd: &str, path: &str, recursive: bool) -> Result<(), String> {
    let r = jail.resolve_nofollow(cwd, path).map_err(jail_err)?;
    if r.virt == "/" {
        return Err("/: refusing to remove the root".into());
    }
    let meta =
        fs::symlink_metadata(&r.real).map_err(|e| format!("{}: {}", r.virt, describe(&e)))?;
    let result = if meta.is_dir() {
        if recursive {
            fs::remove_dir_all(&r.real)
        } else {
            fs::remove_dir(&r.real)
        }
    } else {
        fs::remove_file(&r.real)
    };
    result.map_err(|e| format!("{}: {}", r.virt, describe(&e)))
}

/// The most paths a glob may expand to. Pipelined transfers handle that many
/// files easily; more is a whole tree, which `get -r` walks without a pattern.
const MAX_GLOB_MATCHES: usize = 100_000;

/// Expands a glob one path component at a time, inside the root. Names are
/// returned in the form of the pattern (relative stays relative), sorted; dot
/// files match only a component that starts with a dot, as in a shell
/// (`ftpsh_core::glob::component_matches`, which the client checks every
/// returned path against).
pub fn glob(jail: &Jail, cwd: &str, pattern: &str) -> Result<Vec<Entry>, String> {
    let absolute = pattern.starts_with('/');
    // (shown name, virtual path)
    let mut found: Vec<(String, String)> = vec![(
        String::new(),
        if absolute {
            "/".into()
        } else {
            cwd.to_string()
        },
    )];
    let components: Vec<&str> = pattern_components(pattern).collect();
    for component in &components {
        let mut next = Vec::new();
        // One path reached several ways (`*/..` leads back to one directory
        // from each subdirectory) is kept once: otherwise every such pair would
        // multiply the paths to expand, exponentially in the pattern's length.
        let mut seen = HashSet::new();
        let mut keep = |item: (String, String)| {
            if seen.insert(item.1.clone()) {
                next.push(item);
            }
            if next.len() > MAX_GLOB_MATCHES {
                return Err(format!(
                    "{pattern}: matches more than {MAX_GLOB_MATCHES} paths; narrow the pattern \
                     or copy the directory with -r"
                ));
            }
            Ok(())
        };
        for (shown, virt) in &found {
            let join = |name: &str| {
                let shown = if shown.is_empty() {
                    if absolute {
                        format!("/{name}")
                    } else {
                        name.to_string()
                    }
                } else {
                    format!("{shown}/{name}")
                };
                (shown, virtual_path(virt, name))
            };
            if !has_glob(component) {
                keep(join(component))?;
                continue;
            }
            let m = glob_matcher(component)?;
            let Ok(dir) = jail.resolve(virt, ".") else {
                continue;
            };
            let Ok(items) = fs::read_dir(&dir.real) else {
                continue;
            };
            let mut names: Vec<String> = items
                .filter_map(|i| i.ok())
                .map(|i| i.file_name().to_string_lossy().into_owned())
                // The rule the client checks the answer with (`glob::Pattern`).
                .filter(|n| component_matches(component, &m, n))
                .collect();
            names.sort();
            for n in &names {
                keep(join(n))?;
            }
        }
        found = next;
    }
    let mut out = Vec::new();
    for (shown, virt) in found {
        let Ok(r) = jail.resolve("/", &virt) else {
            continue;
        };
        if let Ok(meta) = fs::metadata(&r.real) {
            out.push(entry(shown, &meta));
        }
    }
    if components.is_empty() {
        out.clear();
    }
    Ok(out)
}

/// Every entry below a directory, parents before children, with paths relative
/// to it. Symlinks are followed only while they stay inside the root; those that
/// lead out (or nowhere) are listed as `Symlink` for the client to warn about,
/// and a directory reached twice (a link loop) is not entered again.
pub fn walk(jail: &Jail, cwd: &str, path: &str) -> Result<Vec<Entry>, String> {
    let r = jail.resolve(cwd, path).map_err(jail_err)?;
    let meta = fs::metadata(&r.real).map_err(|e| format!("{}: {}", r.virt, describe(&e)))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", r.virt));
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    seen.insert((meta.dev(), meta.ino()));
    walk_into(jail, &r.real, "", &mut out, &mut seen);
    Ok(out)
}

fn walk_into(
    jail: &Jail,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<Entry>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) {
    let Ok(items) = fs::read_dir(dir) else { return };
    let mut items: Vec<_> = items.filter_map(|i| i.ok()).collect();
    items.sort_by_key(|i| i.file_name());
    for item in items {
        let name = item.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = item.path();
        let Ok(lmeta) = path.symlink_metadata() else {
            continue;
        };
        let meta = if lmeta.file_type().is_symlink() {
            match fs::metadata(&path) {
                Ok(m) if jail.contains(&path) => m,
                _ => {
                    out.push(entry(rel, &lmeta));
                    continue;
                }
            }
        } else {
            lmeta
        };
        if meta.is_dir() {
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            out.push(entry(rel.clone(), &meta));
            walk_into(jail, &path, &rel, out, seen);
        } else {
            // Files, and special files (FIFOs, sockets, devices) for the client
            // to skip with a warning rather than lose without a word.
            out.push(entry(rel, &meta));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Vec<Entry>) -> Vec<String> {
        v.into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn globs_expand_per_component_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
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
        let jail = Jail::new(p).unwrap();
        assert_eq!(
            names(glob(&jail, "/", "*.log").unwrap()),
            ["a.log", "b.log"]
        );
        assert_eq!(names(glob(&jail, "/", "?.txt").unwrap()), ["c.txt"]);
        assert_eq!(
            names(glob(&jail, "/", "[ab].log").unwrap()),
            ["a.log", "b.log"]
        );
        assert_eq!(
            names(glob(&jail, "/", "data/2026-*").unwrap()),
            ["data/2026-01"]
        );
        assert_eq!(
            names(glob(&jail, "/", "/data/*/x.log").unwrap()),
            ["/data/2026-01/x.log"]
        );
        assert_eq!(
            names(glob(&jail, "/data", "*").unwrap()),
            ["2025-12", "2026-01"]
        );
        assert!(glob(&jail, "/", "*.none").unwrap().is_empty());
        // Climbing back up reaches the root from both data directories: once.
        assert_eq!(
            names(glob(&jail, "/", "data/*/../../*.log").unwrap()),
            ["data/2025-12/../../a.log", "data/2025-12/../../b.log"]
        );
        assert!(glob(&jail, "/", "../../*")
            .unwrap()
            .iter()
            .all(|e| !e.name.contains("etc")));
    }

    #[test]
    fn walk_lists_parents_first_and_skips_links_out() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        fs::create_dir_all(p.join("t/empty")).unwrap();
        fs::create_dir_all(p.join("t/sub")).unwrap();
        fs::write(p.join("t/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), p.join("t/out")).unwrap();
        std::os::unix::fs::symlink("..", p.join("t/sub/loop")).unwrap();
        let jail = Jail::new(p).unwrap();
        let entries = walk(&jail, "/", "t").unwrap();
        let listed: Vec<(String, EntryKind)> =
            entries.into_iter().map(|e| (e.name, e.kind)).collect();
        assert_eq!(
            listed,
            vec![
                ("empty".to_string(), EntryKind::Dir),
                ("out".to_string(), EntryKind::Symlink),
                ("sub".to_string(), EntryKind::Dir),
                ("sub/f".to_string(), EntryKind::File),
            ]
        );
    }
}
