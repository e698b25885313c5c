//! The served tree: client paths made virtual, and every file operation done
//! beneath a handle on the root.
//!
//! A client path is joined to the session's remote directory and normalised
//! lexically (`..` at the root stays at the root, an absolute path starts at the
//! root), giving a *virtual* path such as `/docs/a.txt`: what messages show,
//! and what is handed to the [`Root`]. The `Root` (`ftpsh_core::sys::beneath`)
//! then opens, creates, renames and removes beneath its handle on the root
//! directory without ever following a link out of it, at any step
//! (`openat2(RESOLVE_BENEATH)`, or a walk with `O_NOFOLLOW` per component).
//! There is no separate check to race: what the kernel opened beneath the root
//! is what is used, so a directory swapped for a link meanwhile leads nowhere.
//!
//! A symlink with an absolute target is read the way a canonicalising jail
//! reads it: a target spelled under the root's own path (`/srv/files/a` when
//! serving `/srv/files`) stays inside, resolved beneath the handle all the same;
//! any other absolute target leads outside and is refused.

use std::io;
use std::path::{Component, Path, PathBuf};

pub use ftpsh_core::errors::is_escape;

/// [`ftpsh_core::errors::describe`] in the words a client of this server
/// reads: whose disk is full, and what `rm` without `-r` needs.
pub fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::StorageFull => "no space left on the server".into(),
        std::io::ErrorKind::DirectoryNotEmpty => "directory not empty (use rm -r)".into(),
        _ => ftpsh_core::errors::describe(e),
    }
}
use ftpsh_core::sys::beneath::Root;

/// The most components a client path may have (after joining it to the remote
/// directory): more is refused before any work, with a clear error. Deeper
/// files cannot be named in one request, and a walk does not list them.
pub const MAX_PATH_COMPONENTS: usize = ftpsh_core::sys::beneath::MAX_COMPONENTS;

/// The served tree.
#[derive(Debug)]
pub struct Jail {
    root: Root,
}

/// A client path, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Root-relative, as shown to the user and handed to the [`Root`]:
    /// `/` or `/docs/a.txt`.
    pub virt: String,
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
        let canonical = root.canonicalize()?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", canonical.display()),
            ));
        }
        let root = Root::new(&canonical)?.with_absolute_links_to_root(root);
        Ok(Jail { root })
    }

    /// Where every file operation goes.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The root's path, for messages and for `exec` (which is not jailed).
    pub fn root_path(&self) -> &Path {
        self.root.path()
    }

    /// Makes `input` a virtual path against the virtual directory `cwd`. Only
    /// the number of components is checked here: the [`Root`] resolves.
    pub fn resolve(&self, cwd: &str, input: &str) -> Result<Resolved, JailError> {
        let count = |p: &str| p.split('/').filter(|c| !c.is_empty()).count();
        let total = count(input)
            + if input.starts_with('/') {
                0
            } else {
                count(cwd)
            };
        if total > MAX_PATH_COMPONENTS {
            return Err(JailError::Io(
                shorten(input),
                format!("too many path components (more than {MAX_PATH_COMPONENTS})"),
            ));
        }
        Ok(Resolved {
            virt: virtual_path(cwd, input),
        })
    }

    /// An I/O error on `r` as the client reads it.
    pub fn error(r: &Resolved, e: &io::Error) -> String {
        // A path as long as a request may be is cut short past PATH_MAX.
        let shown = shorten_to(&r.virt, 4096);
        if is_escape(e) {
            JailError::Escape(shown).to_string()
        } else {
            format!("{shown}: {}", describe(e))
        }
    }
}

/// A path quoted in a message, cut short when it is long (a request may name a
/// path of a megabyte).
pub fn shorten(path: &str) -> String {
    shorten_to(path, 80)
}

/// `path` itself up to `shown` bytes, else its start and its length.
fn shorten_to(path: &str, shown: usize) -> String {
    if path.len() <= shown {
        return path.to_string();
    }
    let mut end = shown;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &path[..end], path.len())
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

/// `virt` joined with one more name (a virtual path stays virtual).
pub fn join(virt: &str, name: &str) -> String {
    if virt.ends_with('/') {
        format!("{virt}{name}")
    } else {
        format!("{virt}/{name}")
    }
}

/// The working directory for `exec`, which runs an arbitrary shell and so is
/// not jailed anyway: the directory's handle, reached through `/proc` so that
/// the directory opened beneath the root is the one the command starts in (the
/// handle must stay open until the command is spawned). Without `/proc`, its
/// path.
pub fn exec_dir(jail: &Jail, r: &Resolved) -> io::Result<(std::os::fd::OwnedFd, PathBuf)> {
    use std::os::fd::AsRawFd;
    let fd = jail.root.dir_handle(&r.virt)?;
    let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let dir = if Path::new("/proc/self/fd").is_dir() {
        proc
    } else {
        jail.root_path().join(r.virt.trim_start_matches('/'))
    };
    Ok((fd, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftpsh_core::sys::beneath::{Mode, OFlags};
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
        symlink(root.path().join("d/f"), root.path().join("abs_inside")).unwrap();
        symlink(outside.path().join("missing"), root.path().join("dangling")).unwrap();
        let open = |p: &str| {
            let r = jail.resolve("/", p).unwrap();
            jail.root()
                .open(&r.virt, OFlags::RDONLY, Mode::empty())
                .map_err(|e| Jail::error(&r, &e))
        };
        for p in ["d/f", "inside", "abs_inside"] {
            open(p).unwrap();
        }
        for p in ["out", "out/secret", "secret", "/out/x/y", "dangling"] {
            let e = open(p).unwrap_err();
            assert!(e.ends_with("leads outside the served root"), "{p}: {e}");
        }
        // The link itself may be removed.
        jail.root().unlink("out").unwrap();
        assert!(outside.path().join("secret").exists());
    }

    #[test]
    fn paths_with_too_many_components_are_refused_at_once() {
        let root = tempfile::tempdir().unwrap();
        let jail = Jail::new(root.path()).unwrap();
        let long = "a/..//".repeat(300_000);
        let started = std::time::Instant::now();
        let e = jail.resolve("/", &long).unwrap_err().to_string();
        assert!(e.contains("too many path components"), "{e}");
        assert!(
            e.len() < 200,
            "the message quotes the path in full: {}",
            e.len()
        );
        assert!(started.elapsed().as_secs() < 2);
        let just = "a/".repeat(MAX_PATH_COMPONENTS);
        assert_eq!(jail.resolve("/", &just).unwrap().virt.len(), just.len());
    }
}
