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
    /// A symbolic link's target, as stored (empty for anything else).
    pub target: String,
}

/// The `mode` of an entry that stands for a problem instead of a file (see
/// [`Entry::problem`]): no file has these bits (a file's mode is at most 0o7777).
pub const PROBLEM_MODE: u32 = u32::MAX;

impl Entry {
    /// A place in a listing or a walk where something could not be listed, in
    /// the entries' own stream so that it is reported where it was met, and
    /// the rest still arrives: `text` says what and why
    /// (`sub/locked: cannot read the directory: permission denied`, relative
    /// like the other names of its reply). On the wire it is an `Other` entry
    /// with mode [`PROBLEM_MODE`], so a client that does not know it still
    /// shows it, by name, as something it skips; one that does counts it as a
    /// failure. Its text names no file to fetch.
    pub fn problem(text: String) -> Entry {
        Entry {
            name: text,
            kind: EntryKind::Other,
            size: 0,
            mtime: 0,
            mode: PROBLEM_MODE,
            target: String::new(),
        }
    }

    /// True for an entry made by [`Entry::problem`].
    pub fn is_problem(&self) -> bool {
        self.kind == EntryKind::Other && self.mode == PROBLEM_MODE
    }
}

/// An MD5 digest.
pub type Digest = [u8; 16];

/// Lower-case hex, as `md5sum` prints it.
pub fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
