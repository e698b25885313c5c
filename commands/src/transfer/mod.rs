//! The client's transfer engine: one file each way, and batches (trees,
//! globs, `mget`, `mput`) built on the same pieces.
//!
//! A download is written to `NAME.ftpsh-part` beside its destination while it
//! is hashed; only when the digest matches the server's is the partial fsynced
//! and renamed over the destination. Until then the destination, if it existed,
//! keeps its exact content. A partial that survives an interruption is what
//! `get -c` resumes. Partial names come from `ftpsh_core::partial`, shared with
//! the server. A partial is never opened through a symbolic link
//! ([`PartialIsLink`]) and is locked while written ([`PartialInUse`]).
//!
//! The verbs (`get`, `put`, `mget`, `mput`) call [`download`], [`upload`] and
//! [`batch`]; `batch` calls the single-file modules, never a verb.

pub mod batch;
mod download;
mod install;
mod links;
mod partial;
mod receiver;
mod source;
mod stop;
mod summary;
mod upload;

pub use download::{destination, get_file};
pub use ftpsh_core::partial::{partial_path, remote_partial_path};
pub use install::{check_digest, install, replace_with, set_dir_attrs};
pub use links::{follow_links, open_through};
pub use partial::{is_partial_refusal, kept_bytes};
pub use receiver::FileReceiver;
pub use source::FileSource;
pub use stop::{stopped_midway, StoppedMidway};
pub use summary::{human_bytes, resumed_summary, summary, Timer};
pub use upload::{put_file, remote_destination};

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use ftpsh_core::hashing::Md5;

use crate::session::Digest;

/// How faithful a copy is: `preserve` (`-p`) keeps permission bits and
/// modification times; `follow` (`-L`) copies what links in a tree lead to
/// instead of the links.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faithful {
    pub preserve: bool,
    pub follow: bool,
}

/// MD5 of a local file.
pub fn local_md5(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize())
}

/// The last component of a remote path (`docs/a.txt` → `a.txt`).
pub fn remote_basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_basenames_are_the_last_component() {
        assert_eq!(remote_basename("/docs/x.bin"), "x.bin");
        assert_eq!(remote_basename("x.bin"), "x.bin");
        assert_eq!(remote_basename("docs/"), "docs");
    }
}
