//! The everyday verbs' requests that change or describe one name: rename,
//! chmod, rmdir, symlink, detailed stat and file system sizes. Like
//! [`super::files`], every path is made virtual by the [`Jail`] and every
//! operation goes through its root handle, beneath the root.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ftpsh_core::display::{escape_path, name_to_bytes};
use ftpsh_core::protocol::{Entry, EntryKind};
use ftpsh_core::sys::beneath::{Meta, Mode, RenameFlags};

use super::files::{entry, id_of, walk, Listing, Stop};
use super::jail::{describe, is_escape, join, shorten, Jail, Resolved};
use super::Handles;

fn resolve(jail: &Jail, cwd: &str, path: &str) -> Result<Resolved, String> {
    jail.resolve(cwd, path).map_err(|e| e.to_string())
}

/// Refuses the root itself as the object of an operation.
fn not_root(r: &Resolved, what: &str) -> Result<(), String> {
    if r.virt == "/" {
        return Err(format!("/: refusing to {what} the root"));
    }
    Ok(())
}

/// `rename OLD NEW`: NEW is the new path in full. An existing NEW is refused
/// (`RENAME_NOREPLACE`, so a name created meanwhile is refused too); an
/// existing directory is not moved into, as sftp's rename.
pub fn rename(
    jail: &Jail,
    handles: &Handles,
    cwd: &str,
    from: &str,
    to: &str,
) -> Result<(), String> {
    let from = resolve(jail, cwd, from)?;
    let to = resolve(jail, cwd, to)?;
    not_root(&from, "rename")?;
    let root = jail.root();
    root.stat(&from.virt, false)
        .map_err(|e| Jail::error(&from, &e))?;
    if to.virt.starts_with(&format!("{}/", from.virt)) {
        return Err(format!(
            "{}: cannot move a directory into itself ({})",
            shorten(&from.virt),
            shorten(&to.virt)
        ));
    }
    let exists = |to: &Resolved| {
        match root.stat(&to.virt, false) {
        Ok(st) if Meta::from(&st).is_dir() => Err(format!(
            "{}: is an existing directory: rename does not move into it (name the new path in full)",
            shorten(&to.virt)
        )),
        Ok(_) => Err(format!("{}: already exists", shorten(&to.virt))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Jail::error(to, &e)),
    }
    };
    exists(&to)?;
    check_links_moved(jail, handles, &from, &to)?;
    match root.rename_with(&from.virt, &to.virt, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => exists(&to),
        // A file system without RENAME_NOREPLACE: the check above stands.
        Err(e)
            if e.raw_os_error() == Some(ftpsh_core::sys::EINVAL)
                || e.kind() == io::ErrorKind::Unsupported =>
        {
            root.rename(&from.virt, &to.virt)
                .map_err(|e| Jail::error(&to, &e))
        }
        Err(e) => Err(Jail::error(&to, &e)),
    }
}

/// The most entries of a directory being moved that are looked at for links
/// (as many as a glob may examine): a larger tree is refused, not moved
/// unchecked.
pub const MAX_MOVED_ENTRIES: u64 = 1_000_000;

/// `rename` keeps the rule of `ln -s`: a symbolic link is not moved to where
/// its target, followed on the disk from there, would lead outside the root;
/// nor is a directory holding such a link (each relative link in it judged
/// at its new place). The server never follows a link out, but other
/// programs on the host that open by path would.
///
/// An absolute target means the same wherever its link is, and a rename
/// within one directory changes no relative target's meaning: neither is
/// looked at. A directory moved elsewhere is walked (without following
/// links) up to [`MAX_MOVED_ENTRIES`] entries; a larger one, or one with a
/// part that cannot be read, is refused with the reason. Like the check of
/// `ln -s`, this judges the disk as it is at the request: a local user who
/// can change the tree can make any link anyway.
fn check_links_moved(
    jail: &Jail,
    handles: &Handles,
    from: &Resolved,
    to: &Resolved,
) -> Result<(), String> {
    let root = jail.root();
    let parent_id = |r: &Resolved| {
        root.parent(&r.virt)
            .and_then(|(dir, _)| id_of(dir.as_fd()))
            .map_err(|e| Jail::error(r, &e))
    };
    if parent_id(from)? == parent_id(to)? {
        return Ok(());
    }
    let meta = Meta::from(
        &root
            .stat(&from.virt, false)
            .map_err(|e| Jail::error(from, &e))?,
    );
    if meta.is_symlink() {
        let target = root
            .readlink(&from.virt)
            .map_err(|e| Jail::error(from, &e))?;
        if target.as_bytes().starts_with(b"/") {
            return Ok(());
        }
        return match root.check_link_target(&to.virt, &target) {
            Err(e) if is_escape(&e) => Err(format!(
                "{}: {}",
                shorten(&from.virt),
                leads_outside(&to.virt, &target)
            )),
            Err(e) => Err(Jail::error(to, &e)),
            Ok(()) => Ok(()),
        };
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let moved = root
        .moved(&from.virt, &to.virt)
        .map_err(|e| Jail::error(to, &e))?;
    let mut links = MovedLinks {
        moved: &moved,
        seen: 0,
        to: &to.virt,
        failure: None,
    };
    let walked = walk(jail, handles, "/", &from.virt, false, &mut links);
    if let Some(m) = links.failure {
        return Err(format!("{}: {m}", shorten(&from.virt)));
    }
    walked.map_err(|stop| match stop {
        Stop::Failed(m) => m,
        // The walk's check never stops it.
        Stop::Cancelled | Stop::Gone => format!("{}: not moved", shorten(&from.virt)),
    })
}

/// Why a move is refused: the link that would be at `at` (a virtual path)
/// holds `target`, which leads outside the root from there.
fn leads_outside(at: &str, target: &OsStr) -> String {
    format!(
        "refused: at {}, the link's target {} would lead outside the served root; \
         nothing was moved",
        shorten(at),
        escape_path(Path::new(target))
    )
}

/// The links of a directory being moved, each checked at its new place as
/// the walk finds it.
struct MovedLinks<'a> {
    moved: &'a ftpsh_core::sys::beneath::Moved<'a>,
    seen: u64,
    to: &'a str,
    /// Why the move is refused, once known (the walk is then stopped).
    failure: Option<String>,
}

impl Listing for MovedLinks<'_> {
    fn check(&mut self) -> Result<(), Stop> {
        Ok(())
    }

    fn entry(&mut self, e: Entry) -> Result<(), Stop> {
        self.seen += 1;
        let stop = |me: &mut Self, m: String| {
            me.failure = Some(m);
            Err(Stop::Failed(String::new()))
        };
        if self.seen > MAX_MOVED_ENTRIES {
            return stop(
                self,
                format!(
                    "refused: it holds more than {MAX_MOVED_ENTRIES} entries, too many to check \
                     that its links stay inside the root where it goes; move its subdirectories \
                     one at a time"
                ),
            );
        }
        if e.is_problem() {
            return stop(
                self,
                format!(
                    "refused: cannot check the links inside it ({}); nothing was moved",
                    // Without the walk's advice to a copy ("copy it again
                    // later, ..."), which is not what to do with a rename.
                    e.name
                        .split_once("; ")
                        .map_or(e.name.as_str(), |(what, _)| what)
                ),
            );
        }
        if e.kind != EntryKind::Symlink {
            return Ok(());
        }
        let target = name_to_bytes(&e.target);
        if target.starts_with(b"/") {
            return Ok(());
        }
        let dir = e.name.rsplit_once('/').map_or("", |(d, _)| d);
        let target = OsStr::from_bytes(&target);
        match self.moved.check_link(Path::new(dir), target) {
            Ok(()) => Ok(()),
            Err(err) if is_escape(&err) => {
                let at = join(self.to, &e.name);
                stop(self, leads_outside(&at, target))
            }
            Err(err) => stop(
                self,
                format!(
                    "refused: cannot check the link {}: {}",
                    e.name,
                    describe(&err)
                ),
            ),
        }
    }
}

/// `chmod`: permission bits of `path` (a final link followed beneath the root).
pub fn chmod(jail: &Jail, cwd: &str, path: &str, mode: u32) -> Result<(), String> {
    let r = resolve(jail, cwd, path)?;
    if mode > 0o7777 {
        return Err(format!("{mode:o}: not a file mode (at most 7777)"));
    }
    if mode & 0o6000 != 0 {
        // A client must not make a program that runs as this server's user.
        return Err(format!(
            "{mode:04o}: set-user-ID and set-group-ID bits are not given to files here"
        ));
    }
    jail.root()
        .chmod(&r.virt, Mode::from_raw_mode(mode))
        .map_err(|e| Jail::error(&r, &e))
}

/// `rmdir`: an empty directory only.
pub fn rmdir(jail: &Jail, cwd: &str, path: &str) -> Result<(), String> {
    let r = resolve(jail, cwd, path)?;
    not_root(&r, "remove")?;
    jail.root().rmdir(&r.virt).map_err(|e| {
        if e.kind() == io::ErrorKind::DirectoryNotEmpty {
            format!("{}: directory not empty", shorten(&r.virt))
        } else {
            Jail::error(&r, &e)
        }
    })
}

/// `ln -s TARGET LINK`: refused when the target, followed on the disk from
/// the link's directory, would lead outside the root.
pub fn symlink(jail: &Jail, cwd: &str, target: &str, link: &str) -> Result<(), String> {
    let r = resolve(jail, cwd, link)?;
    not_root(&r, "replace")?;
    if target.is_empty() || target.contains('\0') {
        return Err("the link target is empty or holds a NUL byte".into());
    }
    let root = jail.root();
    let target_os = OsStr::new(target);
    root.check_link_target(&r.virt, target_os).map_err(|e| {
        if ftpsh_core::errors::is_escape(&e) {
            format!(
                "{}: refused: the target {} leads outside the served root",
                shorten(&r.virt),
                shorten(target)
            )
        } else {
            Jail::error(&r, &e)
        }
    })?;
    root.symlink(target_os, &r.virt)
        .map_err(|e| Jail::error(&r, &e))
}

/// `stat`: what `path` itself is (a final link not followed), and a link's
/// target as stored (escaped when it is not UTF-8).
pub fn details(jail: &Jail, cwd: &str, path: &str) -> Result<(Entry, String), String> {
    let r = resolve(jail, cwd, path)?;
    let root = jail.root();
    let meta = Meta::from(&root.stat(&r.virt, false).map_err(|e| Jail::error(&r, &e))?);
    let name = r.virt.rsplit('/').next().unwrap_or("").to_string();
    let target = if meta.is_symlink() {
        let t = root.readlink(&r.virt).map_err(|e| Jail::error(&r, &e))?;
        match t.to_str() {
            Some(s) => s.to_string(),
            None => escape_path(Path::new(OsStr::from_bytes(t.as_bytes()))).into_owned(),
        }
    } else {
        String::new()
    };
    Ok((entry(name, &meta), target))
}

/// `df`: size, free and available bytes of the file system holding `path`.
pub fn space(jail: &Jail, cwd: &str, path: &str) -> Result<(u64, u64, u64), String> {
    let r = resolve(jail, cwd, path)?;
    let st = jail
        .root()
        .statvfs(&r.virt)
        .map_err(|e| Jail::error(&r, &e))?;
    #[allow(clippy::unnecessary_cast)] // the fields' types vary by target
    let (unit, blocks, free, avail) = (
        st.f_frsize as u64,
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
    );
    Ok((
        blocks.saturating_mul(unit),
        free.saturating_mul(unit),
        avail.saturating_mul(unit),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail() -> (tempfile::TempDir, Jail) {
        let dir = tempfile::tempdir().unwrap();
        let jail = Jail::new(dir.path()).unwrap();
        (dir, jail)
    }

    #[test]
    fn rename_refuses_an_existing_name_and_moving_into_a_directory() {
        let (dir, jail) = jail();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        std::fs::write(dir.path().join("b"), "b").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let e = rename(&jail, &Handles::new(1 << 20), "/", "a", "d").unwrap_err();
        assert!(e.contains("is an existing directory"), "{e}");
        let e = rename(&jail, &Handles::new(1 << 20), "/", "a", "b").unwrap_err();
        assert_eq!(e, "/b: already exists");
        let e = rename(&jail, &Handles::new(1 << 20), "/", "d", "d/x").unwrap_err();
        assert!(e.contains("into itself"), "{e}");
        let e = rename(&jail, &Handles::new(1 << 20), "/", "nope", "c").unwrap_err();
        assert_eq!(e, "/nope: no such file or directory");
        rename(&jail, &Handles::new(1 << 20), "/", "a", "d/a").unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/a")).unwrap(), b"a");
    }

    #[test]
    fn links_out_of_the_root_are_refused_and_others_made() {
        let (dir, jail) = jail();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for t in ["../../x", "/etc/passwd", "../.."] {
            let e = symlink(&jail, "/", t, "d/l").unwrap_err();
            assert!(e.contains("leads outside the served root"), "{t}: {e}");
        }
        assert!(std::fs::symlink_metadata(dir.path().join("d/l")).is_err());
        symlink(&jail, "/", "../d", "d/l").unwrap();
        let (e, target) = details(&jail, "/", "d/l").unwrap();
        assert_eq!(e.kind, ftpsh_core::protocol::EntryKind::Symlink);
        assert_eq!(target, "../d");
    }

    #[test]
    fn rename_judges_moved_links_on_the_disk_at_their_new_place() {
        let (dir, jail) = jail();
        let p = dir.path();
        std::fs::create_dir_all(p.join("p/m/sub")).unwrap();
        // `d` leads to /p, `c` through it to /x: inside. Moved to /m, `d`
        // leads to the root (inside) and `c` through it above the root,
        // though its own spelling never climbs out of the moved directory.
        std::os::unix::fs::symlink("..", p.join("p/m/d")).unwrap();
        std::os::unix::fs::symlink("d/../x", p.join("p/m/c")).unwrap();
        // Links that stay inside the moved directory, wherever it goes.
        std::os::unix::fs::symlink("../sub", p.join("p/m/sub/up")).unwrap();
        std::os::unix::fs::symlink("../../m/sub", p.join("p/m/sub/round")).unwrap();
        let e = rename(&jail, &Handles::new(1 << 20), "/", "p/m", "m").unwrap_err();
        assert!(
            e.contains("at /m/c,") && e.contains("would lead outside"),
            "{e}"
        );
        assert!(p.join("p/m").is_dir());
        std::fs::remove_file(p.join("p/m/c")).unwrap();
        rename(&jail, &Handles::new(1 << 20), "/", "p/m", "m").unwrap();
        // An absolute link means the same wherever it goes.
        std::os::unix::fs::symlink("/etc", p.join("m/abs")).unwrap();
        std::fs::create_dir(p.join("q")).unwrap();
        rename(&jail, &Handles::new(1 << 20), "/", "m", "q/m").unwrap();
        rename(&jail, &Handles::new(1 << 20), "/", "q/m/abs", "abs").unwrap();
        // A renamed directory whose part cannot be read is not moved.
        if ftpsh_core::sys::effective_uid() != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p.join("q/m/sub"), std::fs::Permissions::from_mode(0o0))
                .unwrap();
            let e = rename(&jail, &Handles::new(1 << 20), "/", "q/m", "m").unwrap_err();
            assert!(e.contains("cannot check the links inside it"), "{e}");
            std::fs::set_permissions(p.join("q/m/sub"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
    }

    #[test]
    fn rmdir_chmod_and_space() {
        let (dir, jail) = jail();
        std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
        assert_eq!(
            rmdir(&jail, "/", "d").unwrap_err(),
            "/d: directory not empty"
        );
        rmdir(&jail, "/", "d/e").unwrap();
        chmod(&jail, "/", "d", 0o700).unwrap();
        let (e, _) = details(&jail, "/", "d").unwrap();
        assert_eq!(e.mode, 0o700);
        let (size, free, avail) = space(&jail, "/", "/").unwrap();
        assert!(size > 0 && free <= size && avail <= size);
    }
}
