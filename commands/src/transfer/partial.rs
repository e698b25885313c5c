//! The client's partial files: opened without following links, locked while
//! written, refused with a message that says what to do.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ftpsh_core::sys;

/// A partial file that another download is writing (it holds the lock).
#[derive(Debug)]
pub struct PartialInUse(pub PathBuf);

impl std::fmt::Display for PartialInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is being written by another download to the same file; \
             wait for it to finish (or stop it) and try again",
            ftpsh_core::display::escape_path(&self.0)
        )
    }
}

impl std::error::Error for PartialInUse {}

/// Opens the partial (creating it if `create`) and takes its lock, not
/// truncating anything before the lock is ours: the partial may be another
/// download's. Between our open and our lock, that other download may have
/// renamed it into place (its file is then the destination, which we must not
/// touch) or removed it: the lock is only good while the name still leads to
/// the locked file, so the open is retried until it does.
pub(super) fn open_locked_partial(partial: &Path, create: bool) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..8 {
        let f = open_partial(
            OpenOptions::new().read(true).write(true).create(create),
            partial,
        )?;
        lock_partial(&f, partial)?;
        let ours = f.metadata()?;
        if ours.nlink() > 1 {
            // A hard link to another file: writing the download into it would
            // change that file (in a shared directory, someone else's trap).
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                PartialIsHardLink(partial.to_path_buf()),
            ));
        }
        match fs::symlink_metadata(partial) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => return Ok(f),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        PartialInUse(partial.to_path_buf()),
    ))
}

/// Takes the partial's lock for as long as `file` stays open. Two downloads to
/// one destination would otherwise write the same partial at once, and the one
/// that finishes first could install a mixture of both while its own digest,
/// taken over the bytes it received, still matched.
fn lock_partial(file: &File, partial: &Path) -> io::Result<()> {
    let Err(e) = sys::try_lock_exclusive(file) else {
        return Ok(());
    };
    if e.kind() == io::ErrorKind::WouldBlock {
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            PartialInUse(partial.to_path_buf()),
        ))
    } else {
        Err(e)
    }
}

/// A partial file that turned out to be a symbolic link. Refused, not followed:
/// in a shared directory someone else may have planted it to make a download
/// overwrite (or create) the file it points to.
#[derive(Debug)]
pub struct PartialIsLink(pub PathBuf);

impl std::fmt::Display for PartialIsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a symbolic link; ftpsh does not write a download through a link: remove it and try again",
            ftpsh_core::display::escape_path(&self.0)
        )
    }
}

impl std::error::Error for PartialIsLink {}

/// A partial file that is a hard link to another file: writing the download
/// into it would change that file too. Refused, as a symbolic link is.
#[derive(Debug)]
pub struct PartialIsHardLink(pub PathBuf);

impl std::fmt::Display for PartialIsHardLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a hard link to another file; ftpsh does not write a download into it: remove it and try again",
            ftpsh_core::display::escape_path(&self.0)
        )
    }
}

impl std::error::Error for PartialIsHardLink {}

/// Whether a local failure is a [`PartialIsLink`] or a [`PartialInUse`], whose
/// message already names the partial and says what to do.
pub fn is_partial_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| {
        inner.is::<PartialIsLink>() || inner.is::<PartialIsHardLink>() || inner.is::<PartialInUse>()
    })
}

/// Opens a partial with `O_NOFOLLOW`, so that a link at its name fails the open
/// before anything (truncation, creation, a write) reaches the link's target.
pub(super) fn open_partial(options: &mut OpenOptions, partial: &Path) -> io::Result<File> {
    options
        .custom_flags(sys::O_NOFOLLOW)
        .open(partial)
        .map_err(|e| {
            if fs::symlink_metadata(partial).is_ok_and(|m| m.file_type().is_symlink()) {
                io::Error::new(e.kind(), PartialIsLink(partial.to_path_buf()))
            } else {
                e
            }
        })
}

/// The size of a partial file; 0 when there is none, or something else (a link,
/// a directory) is at its name.
pub fn kept_bytes(partial: &Path) -> u64 {
    fs::symlink_metadata(partial)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{NoProgress, Receiver};
    use crate::transfer::FileReceiver;

    #[test]
    fn a_link_at_the_partial_name_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        std::os::unix::fs::symlink(&target, &partial).unwrap();
        for (resume, offset) in [(false, 0), (true, 2)] {
            let mut r =
                FileReceiver::new(partial.clone(), resume, Box::new(|_| Box::new(NoProgress)));
            assert_eq!(r.resume_offset(), 0, "a link's target is no partial");
            let e = r.start(10, offset).unwrap_err();
            assert!(is_partial_refusal(&e), "{e}");
            assert!(e.to_string().contains("remove it"), "{e}");
        }
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn a_hard_link_at_the_partial_name_is_refused_and_its_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("someone-elses");
        fs::write(&target, b"keep").unwrap();
        let partial = dir.path().join("f.ftpsh-part");
        fs::hard_link(&target, &partial).unwrap();
        for (resume, offset) in [(false, 0), (true, 2)] {
            let mut r =
                FileReceiver::new(partial.clone(), resume, Box::new(|_| Box::new(NoProgress)));
            let e = r.start(10, offset).unwrap_err();
            assert!(is_partial_refusal(&e), "{e}");
        }
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
