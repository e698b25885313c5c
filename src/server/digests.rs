//! Remembered digests: the MD5 of a file the server has already read, keyed by
//! what changes whenever the file does (device, inode, size, mtime, ctime).
//!
//! A repeated download of an unchanged file then needs no server-side hashing, so
//! the bytes can go from the page cache to the socket with `sendfile` and the
//! server's core is free for the client's hashing. A file changed in a way that
//! fools the key (same size, mtime and ctime) still cannot slip through: the
//! client verifies the data it received against the digest and rejects it.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use ftpsh_core::Digest;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    pub fn of(meta: &Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Default)]
pub struct DigestCache {
    map: Mutex<HashMap<FileKey, Digest>>,
}

impl DigestCache {
    pub fn get(&self, key: &FileKey) -> Option<Digest> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    pub fn insert(&self, key: FileKey, digest: Digest) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, digest);
    }
}
