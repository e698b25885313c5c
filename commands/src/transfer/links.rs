//! Destinations that are links, devices or pipes: where a download really goes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ftpsh_core::sys;

/// Where a link at `path` leads, through any number of links (up to the
/// kernel's own limit of 40), even if the last one dangles; `path` itself when
/// it is no link. Links are followed here, not by the kernel, so the kernel's
/// `fs.protected_symlinks` rule is applied here too ([`refuse_foreign_link`]).
pub fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(meta) if meta.file_type().is_symlink() => {
                refuse_foreign_link(&p, &meta)?;
                // A relative target is relative to the link's directory.
                p = p.parent().unwrap_or(Path::new("")).join(fs::read_link(&p)?);
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// In a sticky, world-writable directory such as `/tmp`, a link is followed
/// only if it belongs to us or to the directory's owner, as the kernel does
/// with `fs.protected_symlinks`: otherwise another user could plant
/// `/tmp/x -> ~/.bashrc` and have `get file /tmp/x` replace our file.
fn refuse_foreign_link(link: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = link
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = fs::metadata(dir)?;
    let shared = dir.mode() & 0o1002 == 0o1002;
    let me = sys::effective_uid();
    if shared && meta.uid() != me && meta.uid() != dir.uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a link another user made in a shared directory; ftpsh does not follow it",
        ));
    }
    Ok(())
}

/// Opens a device or a named pipe to write a download straight into it. A pipe
/// nobody reads fails at once (`ENXIO`) instead of hanging the shell; once open,
/// writes block as usual.
pub fn open_through(dest: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(sys::O_NONBLOCK)
        .open(dest)?;
    sys::set_nonblocking(&file, false)?;
    Ok(file)
}
