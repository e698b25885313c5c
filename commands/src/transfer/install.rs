//! Installing a verified partial: rename over the destination, durably.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use super::partial::open_partial;
use crate::session::{hex, Digest};

/// Renames a verified partial over its destination, with the source's
/// attributes ([`replace_with`]), and makes the rename durable.
pub fn install(
    partial: &Path,
    dest: &Path,
    attrs: Option<(u32, i64)>,
    preserve: bool,
) -> io::Result<()> {
    replace_with(partial, dest, attrs, preserve)?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Renames a verified partial over its destination (the caller makes the
/// rename durable). A file it replaces keeps its permission bits, as with `cp`
/// onto an existing file: a private file must not turn world-readable because
/// it was updated.
pub fn replace(partial: &Path, dest: &Path) -> io::Result<()> {
    if let Ok(old) = fs::metadata(dest) {
        if old.is_file() {
            use std::os::unix::fs::PermissionsExt;
            // Set-id and sticky bits are not carried over onto new content.
            let mode = old.permissions().mode() & 0o777;
            open_partial(OpenOptions::new().read(true), partial)?
                .set_permissions(fs::Permissions::from_mode(mode))?;
        }
    }
    fs::rename(partial, dest)
}

/// Installs a verified partial with the source's attributes, when the server
/// announced them: with `preserve` (`-p`) its mode and time as they are;
/// without, a new file gets the source's bits less the umask (never wider
/// than the source) and a file it replaces keeps its own, as [`replace`] does.
/// The partial gets them before it is renamed: the file appears with them.
pub fn replace_with(
    partial: &Path,
    dest: &Path,
    attrs: Option<(u32, i64)>,
    preserve: bool,
) -> io::Result<()> {
    let Some((mode, mtime)) = attrs else {
        return replace(partial, dest);
    };
    use std::os::unix::fs::PermissionsExt;
    let file = open_partial(OpenOptions::new().read(true), partial)?;
    if preserve {
        file.set_times(fs::FileTimes::new().set_modified(to_time(mtime)))?;
    }
    let existing = fs::metadata(dest).is_ok_and(|m| m.is_file());
    if preserve || !existing {
        let bits = ftpsh_core::sys::new_mode(mode, preserve);
        file.set_permissions(fs::Permissions::from_mode(bits))?;
    }
    drop(file);
    if preserve {
        fs::rename(partial, dest)
    } else {
        replace(partial, dest)
    }
}

/// Seconds since the epoch as a time (before it: the epoch).
pub fn to_time(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
}

/// Sets a local directory's attributes after its contents arrived: with
/// `preserve`, mode and time as the source's; without, the source's bits
/// less the umask (never wider than the source).
pub fn set_dir_attrs(dir: &Path, mode: u32, mtime: i64, preserve: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if preserve {
        let d = File::open(dir)?;
        d.set_times(fs::FileTimes::new().set_modified(to_time(mtime)))?;
    }
    let bits = ftpsh_core::sys::new_mode(mode, preserve);
    fs::set_permissions(dir, fs::Permissions::from_mode(bits))
}

/// Compares the digest the server sent with the one computed here.
pub fn check_digest(expected: &Digest, actual: &Digest) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "MD5 mismatch: the server's digest is {} but the data received hashes to {}",
            hex(expected),
            hex(actual)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_message_names_both_digests() {
        let err = check_digest(&[0; 16], &[1; 16]).unwrap_err();
        assert!(err.contains("00000000000000000000000000000000"));
        assert!(err.contains("01010101010101010101010101010101"));
    }
}
