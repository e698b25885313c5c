//! The everyday verbs' requests that change or describe one name: rename,
//! chmod, rmdir, symlink, detailed stat and file system sizes. Like
//! [`super::files`], every path is made virtual by the [`Jail`] and every
//! operation goes through its root handle, beneath the root.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ftpsh_core::display::escape_path;
use ftpsh_core::protocol::Entry;
use ftpsh_core::sys::beneath::{Meta, Mode, RenameFlags};

use super::files::entry;
use super::jail::{shorten, Jail, Resolved};

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
pub fn rename(jail: &Jail, cwd: &str, from: &str, to: &str) -> Result<(), String> {
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
        let e = rename(&jail, "/", "a", "d").unwrap_err();
        assert!(e.contains("is an existing directory"), "{e}");
        let e = rename(&jail, "/", "a", "b").unwrap_err();
        assert_eq!(e, "/b: already exists");
        let e = rename(&jail, "/", "d", "d/x").unwrap_err();
        assert!(e.contains("into itself"), "{e}");
        let e = rename(&jail, "/", "nope", "c").unwrap_err();
        assert_eq!(e, "/nope: no such file or directory");
        rename(&jail, "/", "a", "d/a").unwrap();
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
