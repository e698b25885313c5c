//! The requests that touch the tree but move no file data: listing, directories,
//! removal, globbing and walking. Every path is made virtual by the [`Jail`] and
//! every operation goes through its [`Root`](ftpsh_core::sys::beneath::Root),
//! beneath the root's handle.
//!
//! Work per request is bounded: a path has at most
//! [`MAX_PATH_COMPONENTS`](super::jail::MAX_PATH_COMPONENTS) components, a
//! glob at most [`MAX_GLOB_COMPONENTS`] components, wildcard components of at
//! most [`MAX_GLOB_COMPONENT_LEN`] bytes, examines at most [`MAX_GLOB_EXAMINED`]
//! directory entries and matches at most [`MAX_GLOB_MATCHES`] paths; past any
//! of them the request fails with "pattern too expensive". Globs, walks and
//! `rm -r` call the session's check ([`Check`]) as they go, so a `Cancel` or a
//! client that left stops them.
//!
//! Nothing is lost without a word: what a listing or a walk cannot list (an
//! unreadable directory, a name that is not UTF-8, a tree too deep) comes as a
//! *problem* entry in its place ([`Entry::problem`]), which the client counts as
//! a failure. Names are bytes: one that is not UTF-8 is listed, walked,
//! globbed and served like any other (held as text by
//! [`ftpsh_core::display::name_from_bytes`], exact both ways; the wire carries
//! its bytes).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use ftpsh_core::display::{name_from_bytes, name_to_bytes};
use ftpsh_core::glob::{
    component_matches, components as pattern_components, has_glob, matcher as glob_matcher,
};
use ftpsh_core::sys::beneath::{self, DirItem, FileType, Meta, Mode};

use super::{Handle, Handles};

use super::jail::{join, shorten, virtual_path, Jail, MAX_PATH_COMPONENTS};
use ftpsh_core::protocol::{Entry, EntryKind};

/// Why a long request stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// The client sent `Cancel`.
    Cancelled,
    /// The client is gone.
    Gone,
    /// The request failed: the error to reply with.
    Failed(String),
}

impl From<String> for Stop {
    fn from(m: String) -> Stop {
        Stop::Failed(m)
    }
}

/// Called between the steps of a long request: `Err(Cancelled)` or
/// `Err(Gone)` ends it.
pub type Check<'a> = dyn FnMut() -> Result<(), Stop> + 'a;

/// Where a streamed listing goes (`list`, `walk`): the session sends the
/// entries in bounded frames as they come, so the server never holds a whole
/// listing. Both calls can stop the request.
pub trait Listing {
    /// Between the steps of a long listing: `Err` stops it (see [`Check`]).
    fn check(&mut self) -> Result<(), Stop>;
    /// One entry, in the order of the listing.
    fn entry(&mut self, entry: Entry) -> Result<(), Stop>;
}

/// Entries read from a directory at a time, sorted within each batch: the
/// most a listing or one level of a walk holds at once.
pub const BATCH: usize = 1024;

/// A listing collected whole (tests).
#[cfg(test)]
struct Collect(Vec<Entry>);

#[cfg(test)]
impl Listing for Collect {
    fn check(&mut self) -> Result<(), Stop> {
        Ok(())
    }
    fn entry(&mut self, entry: Entry) -> Result<(), Stop> {
        self.0.push(entry);
        Ok(())
    }
}

/// Directory entries read between two calls of the check in a glob.
const CHECK_EVERY: u64 = 4096;

/// An entry from metadata (a final symlink not followed, or followed: whatever
/// `meta` describes).
pub fn entry(name: String, meta: &Meta) -> Entry {
    let kind = match meta.kind {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Entry {
        name,
        kind,
        size: meta.size,
        mtime: meta.mtime,
        mode: meta.mode,
        target: String::new(),
    }
}

/// An entry for a link, with its target; a target that is not UTF-8 is a
/// problem entry naming the link (it cannot travel as text yet).
fn link_entry(name: String, meta: &Meta, target: io::Result<std::ffi::OsString>) -> Entry {
    match target {
        Ok(t) => Entry {
            target: name_from_bytes(t.as_bytes()).into_owned(),
            ..entry(name, meta)
        },
        Err(e) => Entry::problem(format!(
            "{name}: cannot read the link: {}",
            super::jail::describe(&e)
        )),
    }
}

/// `Link`: the symbolic link `path` holding `target` as given (a link of a
/// tree being copied; its target is data, and every open the server makes
/// stays beneath the root whatever it says). A link or file already there is
/// replaced; a directory is not.
pub fn link(jail: &Jail, cwd: &str, path: &str, target: &str) -> Result<(), String> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    if target.is_empty() || target.contains('\0') {
        return Err(format!("{}: not a link target", r.virt));
    }
    let root = jail.root();
    let (dir, name) = root.parent(&r.virt).map_err(|e| Jail::error(&r, &e))?;
    let dir = dir.as_fd();
    match beneath::lstat_at(dir, &name).map(|st| Meta::from(&st)) {
        Ok(m) if m.is_dir() => return Err(format!("{}: is a directory", r.virt)),
        Ok(m) if m.is_symlink() => {
            if beneath::readlink_at(dir, &name)
                .is_ok_and(|t| *t.as_bytes() == *name_to_bytes(target))
            {
                return Ok(());
            }
            beneath::unlink_at(dir, &name).map_err(|e| Jail::error(&r, &e))?;
        }
        Ok(_) => beneath::unlink_at(dir, &name).map_err(|e| Jail::error(&r, &e))?,
        Err(_) => {}
    }
    root.symlink(OsStr::from_bytes(&name_to_bytes(target)), &r.virt)
        .map_err(|e| Jail::error(&r, &e))
}

/// `Attrs`: a directory's (or file's) mode and, with `keep`, time, set on
/// the handle of what `path` names beneath the root (a final link is not
/// followed: links have no mode of their own to set).
pub fn set_attrs(
    jail: &Jail,
    cwd: &str,
    path: &str,
    mode: u32,
    mtime: i64,
    keep: bool,
) -> Result<(), String> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    let root = jail.root();
    let fail = |e: io::Error| Jail::error(&r, &e);
    let st = root.stat(&r.virt, false).map_err(fail)?;
    if Meta::from(&st).is_symlink() {
        return Ok(());
    }
    if keep {
        let when = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(mtime.max(0) as u64))
            .ok_or_else(|| format!("{}: time out of range", r.virt))?;
        root.set_times(&r.virt, None, Some(when)).map_err(fail)?;
    }
    let bits = ftpsh_core::sys::new_mode(mode, keep);
    root.chmod(&r.virt, Mode::from_raw_mode(bits)).map_err(fail)
}

/// A name as the wire carries it: its bytes, whatever they are (held as
/// text by [`name_from_bytes`]).
fn byte_name(name: &OsStr) -> std::borrow::Cow<'_, str> {
    name_from_bytes(name.as_bytes())
}

pub fn change_dir(jail: &Jail, cwd: &str, path: &str) -> Result<String, String> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    match jail.root().stat(&r.virt, true) {
        Ok(st) if Meta::from(&st).is_dir() => Ok(r.virt),
        Ok(_) => Err(format!("{}: not a directory", r.virt)),
        Err(e) => Err(Jail::error(&r, &e)),
    }
}

/// A directory's entries, streamed in batches of [`BATCH`] as the directory
/// gives them (sorted by name within each batch only: the client sorts), or a
/// file as itself.
pub fn list(jail: &Jail, cwd: &str, path: &str, out: &mut dyn Listing) -> Result<(), Stop> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    let root = jail.root();
    let fail = |e: io::Error| Stop::Failed(Jail::error(&r, &e));
    let meta = Meta::from(&root.stat(&r.virt, true).map_err(fail)?);
    if !meta.is_dir() {
        let name = path.trim_end_matches('/').to_string();
        return out.entry(entry(name, &meta));
    }
    let mut dir =
        beneath::DirBatches::new(root.open_dir_fd(&r.virt).map_err(fail)?).map_err(fail)?;
    loop {
        let items = dir.next_batch(BATCH).map_err(fail)?;
        if items.is_empty() {
            return Ok(());
        }
        out.check()?;
        for DirItem { name, stat } in items {
            let name = byte_name(&name).into_owned();
            match stat {
                Ok(st) if Meta::from(&st).is_symlink() => {
                    let target = root.readlink(join(&r.virt, &name));
                    out.entry(link_entry(name, &Meta::from(&st), target))?
                }
                Ok(st) => out.entry(entry(name, &Meta::from(&st)))?,
                // Removed since the directory was read: not there to list.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.entry(Entry::problem(format!(
                    "{name}: cannot list: {}",
                    super::jail::describe(&e)
                )))?,
            }
        }
    }
}

/// [`list`], collected (tests).
#[cfg(test)]
pub fn list_all(jail: &Jail, cwd: &str, path: &str) -> Result<Vec<Entry>, Stop> {
    let mut c = Collect(Vec::new());
    list(jail, cwd, path, &mut c)?;
    Ok(c.0)
}

pub fn stat(jail: &Jail, cwd: &str, path: &str) -> Result<Entry, String> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    let st = jail
        .root()
        .stat(&r.virt, true)
        .map_err(|e| Jail::error(&r, &e))?;
    let name = r.virt.rsplit('/').next().unwrap_or("").to_string();
    Ok(entry(name, &Meta::from(&st)))
}

pub fn mkdir(jail: &Jail, cwd: &str, path: &str, parents: bool) -> Result<(), String> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    let mode = Mode::from_raw_mode(0o777); // less the umask, as mkdir(1)
    let result = if parents {
        jail.root().mkdir_all(&r.virt, mode).map_err(|e| {
            // As `mkdir -p`: what exists at the name itself and is no
            // directory "already exists" (a file above it is "not a directory").
            let here = jail.root().stat(&r.virt, true);
            if e.kind() == io::ErrorKind::NotADirectory && here.is_ok() {
                io::ErrorKind::AlreadyExists.into()
            } else {
                e
            }
        })
    } else if r.virt == "/" {
        Err(io::ErrorKind::AlreadyExists.into())
    } else {
        jail.root().mkdir(&r.virt, mode)
    };
    result.map_err(|e| Jail::error(&r, &e))
}

/// `rm` (a file, a link itself, or an empty directory) and `rm -r`, on
/// handles: a directory swapped for a link meanwhile costs only the link.
pub fn remove(
    jail: &Jail,
    cwd: &str,
    path: &str,
    recursive: bool,
    check: &mut Check,
) -> Result<(), Stop> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    if r.virt == "/" {
        return Err(Stop::Failed("/: refusing to remove the root".into()));
    }
    let root = jail.root();
    let result = if recursive {
        let mut stopped = None;
        let removed = root.remove_tree_with(&r.virt, &mut || {
            check().map_err(|stop| {
                stopped = Some(stop);
                io::Error::other("stopped")
            })
        });
        if let Some(stop) = stopped {
            return Err(stop);
        }
        removed
    } else {
        root.remove(&r.virt)
    };
    result.map_err(|e| Stop::Failed(Jail::error(&r, &e)))
}

/// The most directory levels one walk goes down: each holds a directory
/// handle while the walk is below it, and descriptors are shared by every
/// session of the server.
pub const MAX_WALK_DEPTH: usize = 256;

/// The most paths a glob may expand to. Pipelined transfers handle that many
/// files easily; more is a whole tree, which `get -r` walks without a pattern.
pub const MAX_GLOB_MATCHES: usize = 100_000;
/// The most components a glob may have: deeper paths are for `-r`.
pub const MAX_GLOB_COMPONENTS: usize = 64;
/// The longest wildcard component: a file name has at most 255 bytes, so a
/// pattern for one needs no more than a few times that.
pub const MAX_GLOB_COMPONENT_LEN: usize = 1024;
/// The most directory entries one glob may look at, over all its directories.
pub const MAX_GLOB_EXAMINED: u64 = 1_000_000;
/// The most bytes of paths a glob may hold at once (its matches so far).
pub const MAX_GLOB_BYTES: usize = 32 << 20;

fn too_expensive(pattern: &str, why: String) -> Stop {
    Stop::Failed(format!(
        "{}: pattern too expensive: {why}; narrow it (or copy a tree with -r)",
        shorten(pattern)
    ))
}

/// Why reading a directory for a glob stopped.
enum Scan {
    Io(io::Error),
    Stop(Stop),
}

impl From<io::Error> for Scan {
    fn from(e: io::Error) -> Scan {
        Scan::Io(e)
    }
}

/// Expands a glob one path component at a time, inside the root. Names are
/// returned in the form of the pattern (relative stays relative), sorted; dot
/// files match only a component that starts with a dot, as in a shell
/// (`ftpsh_core::glob::component_matches`, which the client checks every
/// returned path against).
pub fn glob(jail: &Jail, cwd: &str, pattern: &str, check: &mut Check) -> Result<Vec<Entry>, Stop> {
    let absolute = pattern.starts_with('/');
    let components: Vec<&str> = pattern_components(pattern).collect();
    if components.len() > MAX_GLOB_COMPONENTS {
        return Err(too_expensive(
            pattern,
            format!("more than {MAX_GLOB_COMPONENTS} path components"),
        ));
    }
    // A literal component longer than a name cannot match anything, and it
    // would be copied into every path kept: refused like a long wildcard one.
    if let Some(c) = components.iter().find(|c| {
        c.len()
            > if has_glob(c) {
                MAX_GLOB_COMPONENT_LEN
            } else {
                ftpsh_core::partial::NAME_MAX
            }
    }) {
        return Err(too_expensive(
            pattern,
            format!(
                "a component of {} bytes (at most {MAX_GLOB_COMPONENT_LEN})",
                c.len()
            ),
        ));
    }
    let start = if absolute { "/" } else { cwd };
    let root = jail.root();
    // (shown name, virtual path)
    let mut found: Vec<(String, String)> = vec![(String::new(), start.to_string())];
    let mut examined = 0u64;
    for component in &components {
        let mut next = Vec::new();
        // One path reached several ways (`*/..` leads back to one directory
        // from each subdirectory) is kept once: otherwise every such pair would
        // multiply the paths to expand, exponentially in the pattern's length.
        let mut seen = HashSet::new();
        let mut bytes = 0usize;
        let mut keep = |item: (String, String)| {
            if seen.insert(item.1.clone()) {
                bytes += 2 * (item.0.len() + item.1.len());
                next.push(item);
            }
            if bytes > MAX_GLOB_BYTES {
                return Err(too_expensive(
                    pattern,
                    format!(
                        "its matches would hold more than {} MiB",
                        MAX_GLOB_BYTES >> 20
                    ),
                ));
            }
            if next.len() > MAX_GLOB_MATCHES {
                return Err(Stop::Failed(format!(
                    "{}: matches more than {MAX_GLOB_MATCHES} paths; narrow the pattern \
                     or copy the directory with -r",
                    shorten(pattern)
                )));
            }
            Ok(())
        };
        let m = if has_glob(component) {
            Some(glob_matcher(component)?)
        } else {
            None
        };
        for (shown, virt) in &found {
            let join_shown = |name: &str| {
                if shown.is_empty() {
                    if absolute {
                        format!("/{name}")
                    } else {
                        name.to_string()
                    }
                } else {
                    format!("{shown}/{name}")
                }
            };
            let Some(m) = &m else {
                keep((join_shown(component), virtual_path(virt, component)))?;
                continue;
            };
            check()?;
            let mut names: Vec<String> = Vec::new();
            let scanned = root.for_each_name(virt, |name: &OsStr| {
                examined += 1;
                if examined > MAX_GLOB_EXAMINED {
                    return Err(Scan::Stop(too_expensive(
                        pattern,
                        format!("more than {MAX_GLOB_EXAMINED} directory entries to examine"),
                    )));
                }
                if examined.is_multiple_of(CHECK_EVERY) {
                    check().map_err(Scan::Stop)?;
                }
                let n = byte_name(name);
                // The rule the client checks the answer with (`glob::Pattern`).
                if component_matches(component, m, &n) {
                    names.push(n.into_owned());
                }
                Ok(())
            });
            match scanned {
                Ok(()) => {}
                Err(Scan::Stop(stop)) => return Err(stop),
                // Not a directory, or gone: nothing in it to match.
                Err(Scan::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) => {}
                // A link out of the root is not looked into.
                Err(Scan::Io(e)) if beneath::is_escape(&e) => {}
                Err(Scan::Io(e)) => {
                    return Err(Stop::Failed(format!(
                        "{}: cannot read the directory {}: {}",
                        shorten(pattern),
                        virt,
                        super::jail::describe(&e)
                    )))
                }
            }
            names.sort();
            for n in &names {
                keep((join_shown(n), virtual_path(virt, n)))?;
            }
        }
        found = next;
    }
    if components.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, (shown, virt)) in found.into_iter().enumerate() {
        if (i as u64).is_multiple_of(CHECK_EVERY) {
            check()?;
        }
        if let Ok(st) = root.stat(&virt, true) {
            out.push(entry(shown, &Meta::from(&st)));
        }
    }
    Ok(out)
}

/// One directory being walked: its handle (read a batch at a time) and its
/// (device, inode), its path relative to the walked directory, and the
/// entries of the current batch still to look at (next last).
struct Level<'h> {
    dir: beneath::DirBatches,
    id: (u64, u64),
    prefix: String,
    items: Vec<DirItem>,
    /// Its place in the server's budget of held descriptors (none for the
    /// top: that one is the request's own).
    _handle: Option<Handle<'h>>,
}

/// The (device, inode) of an open file or directory (an `O_PATH` handle too).
pub fn id_of(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let file = File::from(fd.try_clone_to_owned()?);
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Every entry below a directory, parents before children, with paths relative
/// to it, streamed: each directory is read [`BATCH`] entries at a time
/// (sorted within the batch), so the walk holds at most one batch per level
/// of depth, never a whole directory or tree. The walk goes down by directory
/// handles (`openat` with `O_NOFOLLOW`, never a path string).
///
/// Without `follow`, a symbolic link is an entry of its own, with its target:
/// a faithful copy makes it a link again. With `follow` (`-L`) links are
/// followed while they stay inside the root; those that lead out (or nowhere)
/// are listed as `Symlink` for the client to skip, and a link back to a
/// directory being walked (a loop) is a problem entry. A directory reached
/// by two paths (a link and its real name) is listed under both. What cannot
/// be listed is a problem entry in its place.
///
/// Each level below the top takes a descriptor from `handles`, the budget
/// every session's walks share: when it has none left, the directory is a
/// problem entry ("the server has too many directories open") instead.
pub fn walk(
    jail: &Jail,
    handles: &Handles,
    cwd: &str,
    path: &str,
    follow: bool,
    out: &mut dyn Listing,
) -> Result<(), Stop> {
    let r = jail.resolve(cwd, path).map_err(|e| e.to_string())?;
    let root = jail.root();
    let fail = |e: io::Error| Stop::Failed(Jail::error(&r, &e));
    let st = root.stat(&r.virt, true).map_err(fail)?;
    if !Meta::from(&st).is_dir() {
        return Err(Stop::Failed(format!("{}: not a directory", r.virt)));
    }
    let fd = root.open_dir_fd(&r.virt).map_err(fail)?;
    let id = id_of(fd.as_fd()).map_err(fail)?;
    let base_depth = r.virt.split('/').filter(|c| !c.is_empty()).count();
    let mut stack = vec![open_level(fd, id, String::new(), None).map_err(fail)?];
    while let Some(level) = stack.last_mut() {
        let Some(DirItem { name, stat }) = level.items.pop() else {
            match next_batch(level) {
                // A huge directory is a long request too.
                Ok(true) => out.check()?,
                Ok(false) => {
                    stack.pop();
                }
                Err(e) => {
                    let rel = level.prefix.clone();
                    stack.pop();
                    out.entry(Entry::problem(format!(
                        "{rel}: cannot read the directory: {}",
                        super::jail::describe(&e)
                    )))?;
                }
            }
            continue;
        };
        let prefix = level.prefix.clone();
        let rel_of = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}/{n}")
            }
        };
        let rel = rel_of(&byte_name(&name));
        let lmeta = match stat {
            Ok(st) => Meta::from(&st),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.entry(Entry::problem(format!(
                    "{rel}: cannot list: {}",
                    super::jail::describe(&e)
                )))?;
                continue;
            }
        };
        if lmeta.is_symlink() && !follow {
            let target = beneath::readlink_at(level.dir.fd(), &name);
            out.entry(link_entry(rel, &lmeta, target))?;
            continue;
        }
        // A link is followed beneath the root, from the root: its target may
        // be anywhere inside.
        let virt = join(&r.virt, &rel);
        let (meta, linked) = if lmeta.is_symlink() {
            match root.stat(&virt, true) {
                Ok(st) => (Meta::from(&st), true),
                Err(_) => {
                    let target = beneath::readlink_at(level.dir.fd(), &name);
                    out.entry(link_entry(rel, &lmeta, target))?;
                    continue;
                }
            }
        } else {
            (lmeta, false)
        };
        if !meta.is_dir() {
            // Files, and special files (FIFOs, sockets, devices) for the client
            // to skip with a warning rather than lose without a word.
            out.entry(entry(rel, &meta))?;
            continue;
        }
        out.check()?;
        // Each level of the walk holds a directory handle: a tree deeper
        // than this is copied from further down, not in one walk.
        if rel.split('/').count() >= MAX_WALK_DEPTH {
            out.entry(Entry::problem(format!(
                "{rel}: skipped: more than {MAX_WALK_DEPTH} directories deep below {}; \
                 copy it from further down",
                r.virt
            )))?;
            continue;
        }
        let depth = base_depth + rel.split('/').count();
        if depth >= MAX_PATH_COMPONENTS {
            out.entry(Entry::problem(format!(
                "{rel}: skipped: what it holds is more than {MAX_PATH_COMPONENTS} path \
                 components deep"
            )))?;
            continue;
        }
        let Some(handle) = handles.take() else {
            out.entry(Entry::problem(format!(
                "{rel}: skipped: the server has too many directories open for the walks \
                 of all its clients; copy it again later, or from further down"
            )))?;
            continue;
        };
        let opened = if linked {
            root.open_dir_fd(&virt)
        } else {
            beneath::subdir_at(level.dir.fd(), &name)
        };
        let (fd, id) = match opened.and_then(|fd| id_of(fd.as_fd()).map(|id| (fd, id))) {
            Ok(found) => found,
            Err(e) => {
                out.entry(Entry::problem(format!(
                    "{rel}: cannot read the directory: {}",
                    super::jail::describe(&e)
                )))?;
                continue;
            }
        };
        // Only a directory that holds this one is a loop; one reached again
        // by another path is walked again, under that name.
        if let Some(above) = stack.iter().find(|l| l.id == id) {
            let shown = if above.prefix.is_empty() {
                ".".to_string()
            } else {
                above.prefix.clone()
            };
            out.entry(Entry::problem(format!(
                "{rel}: skipped: a link loop (it leads back to {shown})"
            )))?;
            continue;
        }
        match open_level(fd, id, rel.clone(), Some(handle)) {
            Ok(next) => {
                out.entry(entry(rel, &meta))?;
                stack.push(next);
            }
            Err(e) => out.entry(Entry::problem(format!(
                "{rel}: cannot read the directory: {}",
                super::jail::describe(&e)
            )))?,
        }
    }
    Ok(())
}

/// [`walk`], collected (tests).
#[cfg(test)]
pub fn walk_all(
    jail: &Jail,
    cwd: &str,
    path: &str,
    follow: bool,
    check: &mut Check,
) -> Result<Vec<Entry>, Stop> {
    struct Checked<'a, 'b>(Vec<Entry>, &'a mut Check<'b>);
    impl Listing for Checked<'_, '_> {
        fn check(&mut self) -> Result<(), Stop> {
            (self.1)()
        }
        fn entry(&mut self, entry: Entry) -> Result<(), Stop> {
            self.0.push(entry);
            Ok(())
        }
    }
    let mut c = Checked(Vec::new(), check);
    walk(jail, &Handles::new(1 << 20), cwd, path, follow, &mut c)?;
    Ok(c.0)
}

fn open_level(
    fd: OwnedFd,
    id: (u64, u64),
    prefix: String,
    handle: Option<Handle<'_>>,
) -> io::Result<Level<'_>> {
    let mut level = Level {
        dir: beneath::DirBatches::new(fd)?,
        id,
        prefix,
        items: Vec::new(),
        _handle: handle,
    };
    next_batch(&mut level)?;
    Ok(level)
}

/// Reads the level's next batch; false at the end of its directory.
fn next_batch(level: &mut Level) -> io::Result<bool> {
    level.items = level.dir.next_batch(BATCH)?;
    level.items.reverse();
    Ok(!level.items.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(v: Vec<Entry>) -> Vec<String> {
        v.into_iter().map(|e| e.name).collect()
    }

    fn go() -> impl FnMut() -> Result<(), Stop> {
        || Ok(())
    }

    fn globbed(jail: &Jail, cwd: &str, pattern: &str) -> Vec<String> {
        match glob(jail, cwd, pattern, &mut go()) {
            Ok(v) => names(v),
            Err(e) => panic!("{pattern}: {e:?}"),
        }
    }

    #[test]
    fn globs_expand_per_component_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        fs::create_dir_all(p.join("data/2026-01")).unwrap();
        fs::create_dir_all(p.join("data/2025-12")).unwrap();
        for f in [
            "a.log",
            "b.log",
            "c.txt",
            ".hidden.log",
            "data/2026-01/x.log",
        ] {
            fs::write(p.join(f), f).unwrap();
        }
        let jail = Jail::new(p).unwrap();
        assert_eq!(globbed(&jail, "/", "*.log"), ["a.log", "b.log"]);
        assert_eq!(globbed(&jail, "/", "?.txt"), ["c.txt"]);
        assert_eq!(globbed(&jail, "/", "[ab].log"), ["a.log", "b.log"]);
        assert_eq!(globbed(&jail, "/", "data/2026-*"), ["data/2026-01"]);
        assert_eq!(
            globbed(&jail, "/", "/data/*/x.log"),
            ["/data/2026-01/x.log"]
        );
        assert_eq!(globbed(&jail, "/data", "*"), ["2025-12", "2026-01"]);
        assert!(globbed(&jail, "/", "*.none").is_empty());
        // Climbing back up reaches the root from both data directories: once.
        assert_eq!(
            globbed(&jail, "/", "data/*/../../*.log"),
            ["data/2025-12/../../a.log", "data/2025-12/../../b.log"]
        );
        assert!(globbed(&jail, "/", "../../*")
            .iter()
            .all(|n| !n.contains("etc")));
    }

    #[test]
    fn expensive_globs_are_refused_and_cancellation_stops_them() {
        let root = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c"] {
            fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let jail = Jail::new(root.path()).unwrap();
        let pattern = "*/..".repeat(250_000);
        let started = std::time::Instant::now();
        let e = glob(&jail, "/", &pattern, &mut go()).unwrap_err();
        assert!(
            matches!(&e, Stop::Failed(m) if m.contains("pattern too expensive") && m.len() < 300),
            "{e:?}"
        );
        let e = glob(&jail, "/", &"*".repeat(5000), &mut go()).unwrap_err();
        assert!(matches!(&e, Stop::Failed(m) if m.contains("pattern too expensive")));
        assert!(started.elapsed().as_secs() < 2);
        let e = glob(&jail, "/", "*/../*", &mut || Err(Stop::Cancelled)).unwrap_err();
        assert!(matches!(e, Stop::Cancelled));
    }

    #[test]
    fn walk_lists_parents_first_and_skips_links_out() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        fs::create_dir_all(p.join("t/empty")).unwrap();
        fs::create_dir_all(p.join("t/sub")).unwrap();
        fs::write(p.join("t/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), p.join("t/out")).unwrap();
        std::os::unix::fs::symlink("..", p.join("t/sub/loop")).unwrap();
        std::os::unix::fs::symlink("sub", p.join("t/zlink")).unwrap();
        let jail = Jail::new(p).unwrap();
        let entries = walk_all(&jail, "/", "t", true, &mut go()).unwrap();
        let listed: Vec<(String, EntryKind, bool)> = entries
            .into_iter()
            .map(|e| (e.name.clone(), e.kind, e.is_problem()))
            .collect();
        let d = |n: &str| (n.to_string(), EntryKind::Dir, false);
        let f = |n: &str| (n.to_string(), EntryKind::File, false);
        let loop_ = |n: &str| {
            (
                format!("{n}: skipped: a link loop (it leads back to .)"),
                EntryKind::Other,
                true,
            )
        };
        // Followed: the directory a link leads to is listed under both names;
        // a link back up is a loop, named.
        assert_eq!(
            listed,
            vec![
                d("empty"),
                ("out".to_string(), EntryKind::Symlink, false),
                d("sub"),
                f("sub/f"),
                loop_("sub/loop"),
                d("zlink"),
                f("zlink/f"),
                loop_("zlink/loop"),
            ]
        );
        // Not followed: links are entries with their targets.
        let entries = walk_all(&jail, "/", "t", false, &mut go()).unwrap();
        let links: Vec<(String, String)> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Symlink)
            .map(|e| (e.name.clone(), e.target.clone()))
            .collect();
        assert_eq!(
            links,
            vec![
                (
                    "out".to_string(),
                    outside.path().to_string_lossy().into_owned()
                ),
                ("sub/loop".to_string(), "..".to_string()),
                ("zlink".to_string(), "sub".to_string()),
            ]
        );
        assert_eq!(entries.len(), 6, "{entries:?}");
    }

    #[test]
    fn walks_and_removals_stop_when_the_client_cancels_or_leaves() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("t/a/b")).unwrap();
        fs::write(root.path().join("t/a/b/f"), "x").unwrap();
        let jail = Jail::new(root.path()).unwrap();
        let e = walk_all(&jail, "/", "t", true, &mut || Err(Stop::Gone)).unwrap_err();
        assert!(matches!(e, Stop::Gone), "{e:?}");
        let mut calls = 0;
        let e = remove(&jail, "/", "t", true, &mut || {
            calls += 1;
            if calls > 1 {
                Err(Stop::Cancelled)
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(e, Stop::Cancelled), "{e:?}");
        assert!(root.path().join("t").exists());
        remove(&jail, "/", "t", true, &mut go()).unwrap();
        assert!(!root.path().join("t").exists());
    }

    #[test]
    fn names_that_are_not_utf8_are_listed_walked_and_globbed_as_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        fs::create_dir_all(p.join("t")).unwrap();
        fs::write(p.join("t/ok"), "x").unwrap();
        for bad in [&b"a\xff"[..], b"a\xfe"] {
            fs::write(p.join("t").join(OsStr::from_bytes(bad)), "bad").unwrap();
        }
        let jail = Jail::new(p).unwrap();
        let want: Vec<String> = [&b"a\xfe"[..], b"a\xff", b"ok"]
            .iter()
            .map(|b| name_from_bytes(b).into_owned())
            .collect();
        for entries in [
            walk_all(&jail, "/", "t", false, &mut go()).unwrap(),
            list_all(&jail, "/", "t").unwrap(),
        ] {
            assert!(!entries.iter().any(|e| e.is_problem()), "{entries:?}");
            assert_eq!(names(entries), want);
        }
        let found = globbed(&jail, "/", "t/a*");
        assert_eq!(
            found,
            ["t/".to_string() + &want[0], "t/".to_string() + &want[1]]
        );
        // And each is the file of exactly those bytes.
        let st = jail.root().stat(&found[1], false).unwrap();
        assert_eq!(Meta::from(&st).size, 3);
    }
}
