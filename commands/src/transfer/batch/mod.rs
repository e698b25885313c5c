//! Many files at once: globs, whole trees, `mget` and `mput`.
//!
//! `get` and `put` hand anything beyond a single named file to [`get`] and
//! [`put`] here. A transfer is planned first (patterns expanded, trees walked,
//! destinations worked out), then run:
//!
//! - **Globs** (`*`, `?`, `[...]`) expand on the server for downloads
//!   ([`crate::Remote::glob_entries`]) and locally for uploads
//!   ([`local_glob`](glob::local_glob)), one path component at a time, dot
//!   files only for a component that starts with a dot. A pattern that matches
//!   nothing is a failure naming it (unless a file of that very name exists).
//!   With several files the destination must be a directory.
//! - **Trees** (`-r`) follow `cp -r`: `get -r docs` makes `./docs`,
//!   `get -r docs DIR` makes `DIR/docs` when `DIR` is a directory and `DIR`
//!   otherwise; a source without a name (`.`, `..`, `/`) copies its contents into
//!   the destination. Empty directories are copied too. Trees are faithful
//!   (see [`crate::transfer::Faithful`]): links arrive as links with their
//!   targets, made after the files and never written through (nor is a link
//!   already in the destination: that entry is skipped, named); with `-L` links
//!   are followed instead, and a link out of the root, to nothing, or a loop is
//!   skipped. Whatever is skipped (special files too) is a failure naming it.
//!   Directories get their modes and times (`-p`) after their contents.
//! - Partial files (`NAME.ftpsh-part`) are ftpsh's own leftovers: trees and
//!   patterns leave them out.
//! - **Verification** is the single-file rule: every download is written to
//!   `NAME.ftpsh-part`, hashed while it arrives, fsynced and renamed into place
//!   only when its MD5 matches the server's; each directory that received files
//!   is fsynced once at the end. Uploads are verified and installed by the server.
//! - **Resume** (`-c`): a file whose destination already has the same size and
//!   MD5 is skipped (the MD5 is only asked for when the sizes match); a partial
//!   one is continued from where it stopped.
//! - **Small files do not crawl**: consecutive files under [`BIG`] go through the
//!   pipelined `download_batch`/`upload_batch` in slices of [`SLICE`], so they do
//!   not each pay a round trip; big files (and resumed uploads) go one by one.
//!   Memory stays bounded: a slice's receivers open their file only when its
//!   data starts and close it when it ends.
//! - **Failures**: a file that fails (unreadable, vanished, refused, corrupt)
//!   does not stop the batch; the verb prints its summary line and then fails
//!   with one line per failed file. A lost connection or Ctrl-C stops the batch:
//!   what was installed stays, partial files are kept for `-c`.
//!
//! Where things are: `download.rs` (`get`, `mget`), `upload.rs` (`put`,
//! `mput`), `glob.rs` (what a pattern is; local expansion), `tally.rs` (the
//! summary line and the failures); helpers both sides share are here.

use std::cell::RefCell;
use std::rc::Rc;

use crate::session::{BatchProgress, Progress, RemoteError};
use ftpsh_core::partial::PARTIAL_SUFFIX;

mod download;
mod glob;
pub(crate) mod tally;
mod upload;

pub use download::{get, safe_rel};
pub use ftpsh_core::glob::has_glob;
pub use upload::put;

/// Files in one pipelined request batch.
pub const SLICE: usize = 64;
/// Files at least this large are transferred one by one.
pub const BIG: u64 = 1 << 20;

/// Splits `SOURCE... [DEST]`: one word is a source; with more, the last is the
/// destination.
pub fn split_destination(paths: &[String]) -> (&[String], Option<&str>) {
    match paths {
        [_] => (paths, None),
        [sources @ .., dest] => (sources, Some(dest.as_str())),
        [] => (paths, None),
    }
}

/// ftpsh's own leftovers (`NAME.ftpsh-part`), which trees and patterns leave out.
/// The suffix alone is enough: a partial name shortened to fit NAME_MAX, and the
/// server's private `.NAME.PID.ID.ftpsh-part`, keep it (`transfer::decorated_name`).
pub(crate) fn is_partial(name: &str) -> bool {
    name.ends_with(PARTIAL_SUFFIX)
}

/// `base/rel` for remote paths; `.` and an empty base mean the remote directory.
fn rjoin(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.is_empty() || base == "." {
        rel.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// Where consecutive items starting at `start` end: a slice of small items, or
/// one item that must go alone.
fn group_end<T>(items: &[T], start: usize, alone: impl Fn(&T) -> bool) -> usize {
    if alone(&items[start]) {
        return start + 1;
    }
    let mut end = start + 1;
    while end < items.len() && end - start < SLICE && !alone(&items[end]) {
        end += 1;
    }
    end
}

/// Errors that end a batch rather than one file of it.
fn is_fatal(e: &RemoteError) -> bool {
    matches!(e, RemoteError::ConnectionLost(_) | RemoteError::Interrupted)
}

type Bars = Rc<RefCell<Box<dyn BatchProgress>>>;

/// One file's bar under the batch's: they move together. Finished when the
/// file ends or fails, at the latest when it is dropped.
struct FileBar {
    name: String,
    bars: Bars,
    bar: Option<Box<dyn Progress>>,
}

impl FileBar {
    fn new(name: String, bars: &Bars) -> Self {
        FileBar {
            name,
            bars: Rc::clone(bars),
            bar: None,
        }
    }

    /// The file's data starts; `offset` bytes were there already.
    fn start(&mut self, size: u64, offset: u64) {
        let bar = self.bars.borrow_mut().file(&self.name, size);
        bar.set_position(offset);
        self.bars.borrow().inc(offset);
        self.bar = Some(bar);
    }

    fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        self.bars.borrow().inc(n);
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

impl Drop for FileBar {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_into_sources_and_a_destination() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = w(&["a"]);
        assert_eq!(split_destination(&one), (&one[..], None));
        let three = w(&["a", "b", "dir"]);
        assert_eq!(split_destination(&three), (&three[..2], Some("dir")));
    }

    #[test]
    fn remote_paths_join_like_a_shell() {
        assert_eq!(rjoin(".", "a"), "a");
        assert_eq!(rjoin("", "a"), "a");
        assert_eq!(rjoin("/", "a"), "/a");
        assert_eq!(rjoin("docs", "a/b"), "docs/a/b");
        assert_eq!(rjoin("docs/", "a"), "docs/a");
        assert_eq!(rjoin("docs", ""), "docs");
    }

    #[test]
    fn small_files_group_and_big_ones_go_alone() {
        let sizes = [1u64, 2, BIG, 3, 4, 5];
        let alone = |s: &u64| *s >= BIG;
        assert_eq!(group_end(&sizes, 0, alone), 2);
        assert_eq!(group_end(&sizes, 2, alone), 3);
        assert_eq!(group_end(&sizes, 3, alone), 6);
        let many = vec![1u64; SLICE * 2 + 1];
        assert_eq!(group_end(&many, 0, alone), SLICE);
    }
}
