//! Installing a verified partial: rename over the destination, durably.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use super::partial::open_partial;
use crate::session::{hex, Digest};

/// Renames a verified partial over its destination and makes the rename durable.
pub fn install(partial: &Path, dest: &Path) -> io::Result<()> {
    replace(partial, dest)?;
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
