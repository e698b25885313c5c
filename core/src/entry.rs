//! What both sides say about files: directory entries and digests.

/// What kind of thing a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One entry of a remote listing. `name` is a file name for `list` and a path
/// relative to the walked directory for `walk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    /// Unix permission bits.
    pub mode: u32,
}

/// An MD5 digest.
pub type Digest = [u8; 16];

/// Lower-case hex, as `md5sum` prints it.
pub fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
