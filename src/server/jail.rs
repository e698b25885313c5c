//! Path resolution inside `--root`: the one function every client path goes
//! through.
//!
//! A client path is joined to the session's remote directory and normalised
//! lexically (`..` at the root stays at the root, an absolute path starts at the
//! root), giving a *virtual* path such as `/docs/a.txt`. The real path is then
//! found by canonicalising the longest prefix that exists, which follows every
//! symlink on the way; if the result is not inside the root, the request is
//! refused. Components that do not exist yet cannot be symlinks, so a path to be
//! created is safe once its existing ancestor is.

use std::io;

pub use ftpsh_core::errors::describe;
use std::path::{Component, Path, PathBuf};

/// The served tree.
#[derive(Debug, Clone)]
pub struct Jail {
    root: PathBuf,
}

/// A client path, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Root-relative, as shown to the user: `/` or `/docs/a.txt`.
    pub virt: String,
    /// The path on disk.
    pub real: PathBuf,
}

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("{0}: leads outside the served root")]
    Escape(String),
    #[error("{0}: {1}")]
    Io(String, String),
}

impl Jail {
    pub fn new(root: &Path) -> io::Result<Jail> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Jail { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `input` against the virtual directory `cwd`, following symlinks,
    /// which must stay inside the root.
    pub fn resolve(&self, cwd: &str, input: &str) -> Result<Resolved, JailError> {
        let virt = virtual_path(cwd, input);
        let real = self.contain(&virt, &self.lexical_real(&virt))?;
        Ok(Resolved { virt, real })
    }

    /// Like [`Jail::resolve`], but the last component is not followed: for
    /// removing or replacing a symlink itself.
    pub fn resolve_nofollow(&self, cwd: &str, input: &str) -> Result<Resolved, JailError> {
        let virt = virtual_path(cwd, input);
        if virt == "/" {
            return Ok(Resolved {
                virt,
                real: self.root.clone(),
            });
        }
        let (parent, name) = virt.rsplit_once('/').unwrap();
        let parent_virt = if parent.is_empty() { "/" } else { parent };
        let parent_real = self.contain(parent_virt, &self.lexical_real(parent_virt))?;
        Ok(Resolved {
            real: parent_real.join(name),
            virt,
        })
    }

    /// The virtual path of a real path inside the root (for listings and globs).
    pub fn virtual_of(&self, real: &Path) -> Option<String> {
        let rel = real.strip_prefix(&self.root).ok()?;
        let mut v = String::from("/");
        v.push_str(&rel.to_string_lossy());
        Some(v)
    }

    /// True when a real path, with every symlink followed, is inside the root.
    pub fn contains(&self, real: &Path) -> bool {
        real.canonicalize()
            .map(|c| c.starts_with(&self.root))
            .unwrap_or(false)
    }

    fn lexical_real(&self, virt: &str) -> PathBuf {
        self.root.join(virt.trim_start_matches('/'))
    }

    /// Canonicalises the longest existing prefix of `real` and checks it.
    fn contain(&self, virt: &str, real: &Path) -> Result<PathBuf, JailError> {
        let mut existing = real.to_path_buf();
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        loop {
            match existing.canonicalize() {
                Ok(canon) => {
                    if !canon.starts_with(&self.root) {
                        return Err(JailError::Escape(virt.to_string()));
                    }
                    let mut full = canon;
                    for part in rest.iter().rev() {
                        full.push(part);
                    }
                    return Ok(full);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    // A dangling symlink is not "missing": refuse rather than let a
                    // later create follow it out of the root.
                    if existing.symlink_metadata().is_ok() && existing != self.root {
                        return Err(JailError::Escape(virt.to_string()));
                    }
                    match (existing.file_name(), existing.parent()) {
                        (Some(name), Some(parent)) if existing != self.root => {
                            rest.push(name.to_os_string());
                            existing = parent.to_path_buf();
                        }
                        _ => return Err(JailError::Io(virt.to_string(), describe(&e))),
                    }
                }
                Err(e) => return Err(JailError::Io(virt.to_string(), describe(&e))),
            }
        }
    }
}

/// Joins and normalises without touching the disk. Never leaves `/`.
pub fn virtual_path(cwd: &str, input: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined;
    let full = if input.starts_with('/') {
        input
    } else {
        joined = format!("{cwd}/{input}");
        &joined
    };
    for c in Path::new(full).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn virtual_paths_never_leave_the_root() {
        assert_eq!(virtual_path("/", "a/b"), "/a/b");
        assert_eq!(virtual_path("/a", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(virtual_path("/a", "/x/./y/"), "/x/y");
        assert_eq!(virtual_path("/a/b", ".."), "/a");
        assert_eq!(virtual_path("/", ".."), "/");
        assert_eq!(virtual_path("/a", ""), "/a");
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = tempfile::tempdir().unwrap();
        let jail = Jail::new(root.path()).unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::fs::write(root.path().join("d/f"), "f").unwrap();
        symlink(outside.path(), root.path().join("out")).unwrap();
        symlink(outside.path().join("secret"), root.path().join("secret")).unwrap();
        symlink("d/f", root.path().join("inside")).unwrap();
        symlink(outside.path().join("missing"), root.path().join("dangling")).unwrap();

        assert!(jail.resolve("/", "d/f").is_ok());
        assert!(jail.resolve("/", "inside").is_ok());
        assert!(
            jail.resolve("/", "new/file").is_ok(),
            "missing paths resolve for creation"
        );
        for p in ["out", "out/secret", "secret", "/out/x/y", "dangling"] {
            assert!(
                matches!(jail.resolve("/", p), Err(JailError::Escape(_))),
                "{p}"
            );
        }
        // The link itself may be removed.
        let link = jail.resolve_nofollow("/", "out").unwrap();
        assert_eq!(link.real, jail.root().join("out"));
    }
}
