//! Race-free file operations beneath a root directory handle (Linux).
//!
//! A [`Root`] holds a directory handle for the served tree. Every operation
//! names a path *relative to the root* (a leading `/` is ignored, so a virtual
//! path such as `/docs/a.txt` may be passed as is) and is carried out on
//! handles, never on a path string the kernel would resolve from `/`:
//!
//! * Resolution follows symlinks only while they stay beneath the root: an
//!   absolute target, or a `..` that would climb above the root, is an escape
//!   and fails with [`is_escape`] true ("leads outside the served root").
//!   Magic links (`/proc/PID/fd/N` and the like) are never jumped through.
//! * With `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (Linux 5.6+) the
//!   kernel enforces this atomically. Where `openat2` is missing (ENOSYS) or
//!   forbidden by a seccomp filter (EPERM), the same rules are applied by a
//!   walk, one component at a time: `openat(dir, name, O_PATH | O_NOFOLLOW)`,
//!   `fstat`, symlinks read with `readlinkat` on the link's own handle and
//!   spliced into the rest of the path; `..` reopens the parent and checks it
//!   is the directory the walk came from (device and inode), so it never
//!   leaves the root even if a directory is moved meanwhile. The walk holds one
//!   directory handle at a time and does a bounded amount of work per
//!   component: linear in the path's length plus the links' targets.
//! * Operations that must not follow the final component (create, rename,
//!   unlink, symlink, readlink, lstat) resolve the *parent* to a handle and use
//!   the `*at` system calls on it with the final name.
//! * [`Root::remove_tree`] walks with `openat(O_DIRECTORY | O_NOFOLLOW)` per
//!   level and unlinks relative to each level's handle, so a subdirectory
//!   swapped for a link mid-walk costs only the link.
//!
//! A swap between a check and a use therefore cannot lead outside: there is no
//! separate check. What the kernel (or the walk) opened is what is used.
//!
//! Limits: [`MAX_SYMLINK_HOPS`] links per resolution (then ELOOP, as the
//! kernel), [`MAX_COMPONENTS`] components in a path (then an `InvalidInput`
//! error saying so). `remove_tree` holds one handle per level of the tree being
//! removed, like `std::fs::remove_dir_all`, so a tree deeper than the open-file
//! limit fails with EMFILE ("too many open files").

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{self as rfs, AtFlags, ResolveFlags, Timespec, Timestamps, CWD};

/// The rustix types this API takes and returns, so that callers need no
/// `rustix` dependency of their own.
pub use rustix::fs::{Dir, FileType, Mode, OFlags, RenameFlags, Stat, StatVfs};
use rustix::io::Errno;

/// The jail's error and how errors read: one place for both (`crate::errors`).
pub use crate::errors::{describe, escape_error, is_escape, Escape};

/// Symlinks followed in one resolution before giving up with ELOOP (as Linux).
pub const MAX_SYMLINK_HOPS: usize = 40;
/// Path components accepted in one request path.
pub const MAX_COMPONENTS: usize = 4096;
/// `openat2` answers EAGAIN when a rename raced a `..` lookup; retry this many
/// times, then resolve with the walk (which does not need the retry).
const OPENAT2_RETRIES: usize = 8;
/// How often `remove_tree` retries a name that keeps changing between a
/// directory and something else under it.
const REMOVE_RETRIES: usize = 16;

/// How paths are resolved beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`.
    Openat2,
    /// The component walk (`openat` + `O_NOFOLLOW` per component).
    Walk,
}

fn too_many_components() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("too many path components (more than {MAX_COMPONENTS})"),
    )
}

fn no_name() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "names the root or a `..`, not an entry",
    )
}

/// One directory entry, with the entry's own metadata (a symlink is not
/// followed), read through the directory's handle.
#[derive(Debug)]
pub struct DirItem {
    pub name: OsString,
    pub stat: io::Result<Stat>,
}

/// The served tree, as a directory handle.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// The spellings of the root that an absolute link may start with, when
    /// such links are taken as root-relative (see
    /// [`Root::with_absolute_links_to_root`]); empty: refused.
    abs_prefixes: Vec<Vec<u8>>,
    id: (u64, u64),
    resolver: Resolver,
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Root {
    /// Opens `path` (symlinks in it are followed: the operator chose it) as the
    /// root, resolving with `openat2` where the kernel allows it, else with the
    /// walk.
    pub fn new(path: &Path) -> io::Result<Root> {
        Root::open_root(path, None)
    }

    /// As [`Root::new`] with a chosen resolver. `Resolver::Walk` forces the
    /// fallback (for tests, or to distrust `openat2`); `Resolver::Openat2`
    /// fails with `Unsupported` where the kernel does not offer it.
    pub fn with_resolver(path: &Path, resolver: Resolver) -> io::Result<Root> {
        Root::open_root(path, Some(resolver))
    }

    fn open_root(path: &Path, want: Option<Resolver>) -> io::Result<Root> {
        let fd = rfs::openat(
            CWD,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_path(e.into(), path))?;
        let st = rfs::fstat(&fd)?;
        let available = openat2_available(&fd);
        let resolver = match want {
            Some(Resolver::Walk) => Resolver::Walk,
            Some(Resolver::Openat2) if !available => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2 is not available (kernel older than 5.6, or filtered)",
                ))
            }
            _ if available => Resolver::Openat2,
            _ => Resolver::Walk,
        };
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Root {
            fd,
            path,
            abs_prefixes: Vec::new(),
            id: (st.st_dev as u64, st.st_ino as u64),
            resolver,
        })
    }

    /// Takes an absolute symlink whose target starts with the root's own path
    /// (as given to [`Root::new`] or canonical), such as `/srv/files/a` under
    /// the root `/srv/files`, as the root-relative `a`, as the server's
    /// canonicalising jail did. Resolution stays beneath the handle either
    /// way: the prefix is only spelling. Any other absolute target is still an
    /// escape. Off by default (`RESOLVE_BENEATH` semantics); with it, an
    /// `openat2` escape is retried by the walk, which knows the rule.
    pub fn with_absolute_links_to_root(mut self, given: &Path) -> Root {
        let mut prefixes = vec![self.path.as_os_str().as_bytes().to_vec()];
        if let Ok(abs) = std::path::absolute(given) {
            prefixes.push(abs.into_os_string().into_vec());
        }
        for p in &mut prefixes {
            while p.len() > 1 && p.ends_with(b"/") {
                p.pop();
            }
        }
        prefixes.dedup();
        self.abs_prefixes = prefixes;
        self
    }

    /// The rest of an absolute link target that names a place under the
    /// root's own path, when such targets are accepted.
    fn under_root_path<'t>(&self, target: &'t [u8]) -> Option<&'t [u8]> {
        self.abs_prefixes.iter().find_map(|p| {
            let rest = target.strip_prefix(p.as_slice())?;
            (p.as_slice() == b"/" || rest.is_empty() || rest.starts_with(b"/")).then_some(rest)
        })
    }

    /// The root's path, for messages (and nothing else: never open by it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How this root resolves paths.
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// Opens `rel` beneath the root. `flags` are `open(2)`'s (`O_CLOEXEC` is
    /// always added); a final symlink is followed (beneath the root) unless
    /// `flags` has `O_NOFOLLOW`. With `O_CREAT` a dangling final link inside
    /// the root creates its target, as `open(2)` would; add `O_NOFOLLOW` or
    /// `O_EXCL` to create only at the name itself.
    pub fn open<P: AsRef<Path>>(&self, rel: P, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        self.resolve(&rel_bytes(rel.as_ref()), flags, mode)
    }

    /// [`Root::open`] as a `File`.
    pub fn open_file<P: AsRef<Path>>(&self, rel: P, flags: OFlags, mode: Mode) -> io::Result<File> {
        self.open(rel, flags, mode).map(File::from)
    }

    /// A directory handle for `rel` (`O_PATH`: usable with every `*at` call,
    /// with `fchdir` and `fstatvfs`, but not for reading entries or `fsync`).
    pub fn dir_handle<P: AsRef<Path>>(&self, rel: P) -> io::Result<OwnedFd> {
        self.open(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
    }

    /// Opens directory `rel` for reading its entries.
    pub fn open_dir<P: AsRef<Path>>(&self, rel: P) -> io::Result<Dir> {
        let fd = self.open(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        Ok(Dir::new(fd)?)
    }

    /// The entries of directory `rel` (without `.` and `..`), sorted by name,
    /// each with its `lstat` taken through the directory's handle.
    pub fn read_dir<P: AsRef<Path>>(&self, rel: P) -> io::Result<Vec<DirItem>> {
        read_dir_at(self.open_dir_fd(rel)?.as_fd())
    }

    /// The parent directory's handle (`O_PATH`) and the final name, for
    /// operations that must not follow the final component. Symlinks before it
    /// are followed beneath the root. Fails with `InvalidInput` for the root
    /// itself or a path whose last component is `..`.
    pub fn parent<P: AsRef<Path>>(&self, rel: P) -> io::Result<(OwnedFd, OsString)> {
        let rel = rel_bytes(rel.as_ref());
        let (dir, name) = split_last(&rel)?;
        let fd = self.resolve_dir(dir, None)?;
        Ok((fd, OsString::from_vec(name.to_vec())))
    }

    /// `stat`, following a final link (beneath the root) when `follow`,
    /// else `lstat`.
    pub fn stat<P: AsRef<Path>>(&self, rel: P, follow: bool) -> io::Result<Stat> {
        let rel = rel.as_ref();
        // The root, or a path ending in `..`, names no link: nothing to not follow.
        if follow || split_last(&rel_bytes(rel)).is_err() {
            let fd = self.open(rel, OFlags::PATH, Mode::empty())?;
            return Ok(rfs::fstat(&fd)?);
        }
        let (dir, name) = self.parent(rel)?;
        Ok(rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)?)
    }

    /// A symlink's target, as stored.
    pub fn readlink<P: AsRef<Path>>(&self, rel: P) -> io::Result<OsString> {
        let (dir, name) = self.parent(rel)?;
        let target = rfs::readlinkat(&dir, &name, Vec::new())?;
        Ok(OsString::from_vec(target.into_bytes()))
    }

    /// Creates directory `rel` (its parent must exist).
    pub fn mkdir<P: AsRef<Path>>(&self, rel: P, mode: Mode) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rfs::mkdirat(&dir, &name, mode)?)
    }

    /// Creates directory `rel` and any missing parents (`mkdir -p`); an
    /// existing directory (or a link to one beneath the root) is fine.
    pub fn mkdir_all<P: AsRef<Path>>(&self, rel: P, mode: Mode) -> io::Result<()> {
        self.resolve_dir(&rel_bytes(rel.as_ref()), Some(mode))
            .map(drop)
    }

    /// Removes a non-directory (a symlink itself, never its target).
    pub fn unlink<P: AsRef<Path>>(&self, rel: P) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rfs::unlinkat(&dir, &name, AtFlags::empty())?)
    }

    /// Removes an empty directory.
    pub fn rmdir<P: AsRef<Path>>(&self, rel: P) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rfs::unlinkat(&dir, &name, AtFlags::REMOVEDIR)?)
    }

    /// Removes `rel` whatever it is, a directory only when empty (`rm`).
    pub fn remove<P: AsRef<Path>>(&self, rel: P) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        match rfs::unlinkat(&dir, &name, AtFlags::empty()) {
            Err(Errno::ISDIR) => Ok(rfs::unlinkat(&dir, &name, AtFlags::REMOVEDIR)?),
            other => Ok(other?),
        }
    }

    /// `rename(2)` between two names beneath the root (neither final component
    /// is followed).
    pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(&self, from: P, to: Q) -> io::Result<()> {
        self.rename_with(from, to, RenameFlags::empty())
    }

    /// `renameat2(2)`: `RenameFlags::NOREPLACE` refuses an existing
    /// destination, `RenameFlags::EXCHANGE` swaps the two atomically.
    pub fn rename_with<P: AsRef<Path>, Q: AsRef<Path>>(
        &self,
        from: P,
        to: Q,
        flags: RenameFlags,
    ) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        if flags.is_empty() {
            Ok(rfs::renameat(&from_dir, &from_name, &to_dir, &to_name)?)
        } else {
            Ok(rfs::renameat_with(
                &from_dir, &from_name, &to_dir, &to_name, flags,
            )?)
        }
    }

    /// Creates symlink `link` with `target` stored as given. The target is not
    /// checked (following it is always confined anyway); see
    /// [`Root::check_link_target`] to refuse one that would lead out.
    pub fn symlink<P: AsRef<Path>>(&self, target: &OsStr, link: P) -> io::Result<()> {
        let (dir, name) = self.parent(link)?;
        Ok(rfs::symlinkat(target, &dir, &name)?)
    }

    /// Whether a link at `link` to `target`, followed on the disk as it is now,
    /// would stay beneath the root: `Ok` when it would (or leads nowhere: a
    /// missing part is judged by its spelling, a loop is not an escape), an
    /// escape error when it would not (an absolute target always does).
    pub fn check_link_target<P: AsRef<Path>>(&self, link: P, target: &OsStr) -> io::Result<()> {
        let link = rel_bytes(link.as_ref());
        let (dir, _) = split_last(&link)?;
        let target = target.as_bytes();
        if target.starts_with(b"/") {
            return match self.under_root_path(target) {
                Some(rest) => Walk::new(self, rest)?.probe(),
                None => Err(escape_error()),
            };
        }
        let mut joined = dir.to_vec();
        joined.push(b'/');
        joined.extend_from_slice(target);
        Walk::new(self, &joined)?.probe()
    }

    /// For renaming the directory `from` to `to`: what judges, with
    /// [`Moved::check_link`], whether a link inside `from` would stay beneath
    /// the root once the directory is at `to`, following it on the disk as
    /// it is now (as [`Root::check_link_target`] judges a new link), with a
    /// `..` out of the moved directory leading to `to`'s parent and `to`'s
    /// name there leading to the moved directory. `to`'s parent must exist.
    pub fn moved<P: AsRef<Path>, Q: AsRef<Path>>(&self, from: P, to: Q) -> io::Result<Moved<'_>> {
        let dir = self.open(from, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        let st = rfs::fstat(&dir)?;
        let to = rel_bytes(to.as_ref());
        let (parent, name) = split_last(&to)?;
        let mut walk = Walk::new(self, parent)?;
        walk.walk_to_dir()?;
        Ok(Moved {
            root: self,
            dir,
            id: (st.st_dev as u64, st.st_ino as u64),
            parent: walk.cur,
            parent_ids: walk.ids,
            name: name.to_vec(),
        })
    }

    /// `chmod`, following a final link beneath the root. Done on the resolved
    /// object's handle (through `/proc/self/fd`), so a name swapped for a link
    /// meanwhile cannot redirect it.
    pub fn chmod<P: AsRef<Path>>(&self, rel: P, mode: Mode) -> io::Result<()> {
        let rel = rel.as_ref();
        let fd = self.open(rel, OFlags::PATH, Mode::empty())?;
        match rfs::chmodat(CWD, proc_fd_path(&fd).as_c_str(), mode, AtFlags::empty()) {
            // No /proc: open the object itself (needs read permission).
            Err(Errno::NOENT) => {
                let f = self.open(
                    rel,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
                    Mode::empty(),
                )?;
                Ok(rfs::fchmod(&f, mode)?)
            }
            other => Ok(other?),
        }
    }

    /// Sets access and modification times (`None` leaves one unchanged),
    /// following a final link beneath the root, on the resolved handle.
    pub fn set_times<P: AsRef<Path>>(
        &self,
        rel: P,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> io::Result<()> {
        let fd = self.open(rel, OFlags::PATH, Mode::empty())?;
        let times = Timestamps {
            last_access: timespec(atime),
            last_modification: timespec(mtime),
        };
        match rfs::utimensat(&fd, c"", &times, AtFlags::EMPTY_PATH) {
            // Kernels without AT_EMPTY_PATH for utimensat.
            Err(Errno::INVAL | Errno::NOENT) => Ok(rfs::utimensat(
                CWD,
                proc_fd_path(&fd).as_c_str(),
                &times,
                AtFlags::empty(),
            )?),
            other => Ok(other?),
        }
    }

    /// The file system's sizes (`df`) for `rel`.
    pub fn statvfs<P: AsRef<Path>>(&self, rel: P) -> io::Result<StatVfs> {
        let fd = self.open(rel, OFlags::PATH, Mode::empty())?;
        Ok(rfs::fstatvfs(&fd)?)
    }

    /// `fsync` a directory (to make renames and creations in it durable).
    pub fn sync_dir<P: AsRef<Path>>(&self, rel: P) -> io::Result<()> {
        let fd = self.open(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        Ok(rfs::fsync(&fd)?)
    }

    /// Removes `rel` and, if it is a directory, everything below it (`rm -r`).
    /// A final symlink is removed, not followed. The walk goes by directory
    /// handles (`openat(O_DIRECTORY | O_NOFOLLOW)` per level, `unlinkat` on
    /// each level's handle), never by path string: a subdirectory swapped for
    /// a link mid-walk is removed as a link, and nothing outside is touched.
    pub fn remove_tree<P: AsRef<Path>>(&self, rel: P) -> io::Result<()> {
        self.remove_tree_with(rel, &mut || Ok(()))
    }

    /// [`Root::remove_tree`], calling `check` before each directory is read:
    /// an error from it stops the removal there (a cancelled request, a
    /// client gone), with what was removed so far removed.
    pub fn remove_tree_with<P: AsRef<Path>>(
        &self,
        rel: P,
        check: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        let name = CString::new(name.into_vec()).map_err(|_| nul_error())?;
        remove_entry(dir.as_fd(), &name, check)
    }

    /// Opens directory `rel` for reading (`O_RDONLY`): a handle for
    /// [`read_dir_at`], [`subdir_at`] and the other `*_at` functions, which
    /// act on names in that directory and never resolve a path.
    pub fn open_dir_fd<P: AsRef<Path>>(&self, rel: P) -> io::Result<OwnedFd> {
        self.open(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
    }

    /// Calls `f` with the name of each entry of directory `rel` (without `.`
    /// and `..`), in the order the directory gives them, without collecting
    /// them first: `f` can stop a scan of a huge directory early by failing.
    pub fn for_each_name<P, E, F>(&self, rel: P, mut f: F) -> Result<(), E>
    where
        P: AsRef<Path>,
        E: From<io::Error>,
        F: FnMut(&OsStr) -> Result<(), E>,
    {
        let mut dir = self.open_dir(rel)?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(io::Error::from)?;
            let name = entry.file_name();
            if name != c"." && name != c".." {
                f(OsStr::from_bytes(name.to_bytes()))?;
            }
        }
        Ok(())
    }

    /// Resolves to an open file: `openat2` where in use, else the walk.
    fn resolve(&self, rel: &[u8], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let rel = trim_rel(rel);
        if count_components(rel) > MAX_COMPONENTS {
            return Err(too_many_components());
        }
        // openat2 refuses a mode without O_CREAT / O_TMPFILE.
        let mode = if flags.intersects(OFlags::CREATE | OFlags::TMPFILE) {
            mode
        } else {
            Mode::empty()
        };
        if self.resolver == Resolver::Openat2 {
            let path: &[u8] = if rel.is_empty() { b"." } else { rel };
            for _ in 0..OPENAT2_RETRIES {
                match rfs::openat2(
                    &self.fd,
                    path,
                    flags | OFlags::CLOEXEC,
                    mode,
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => return Ok(fd),
                    // The walk decides for absolute links to the root's path.
                    Err(Errno::XDEV) if !self.abs_prefixes.is_empty() => break,
                    Err(Errno::XDEV) => return Err(escape_error()),
                    Err(Errno::AGAIN) => continue,
                    // No openat2 after all, or a path longer than PATH_MAX
                    // (the walk takes it one name at a time).
                    Err(Errno::NOSYS | Errno::NAMETOOLONG) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Walk::new(self, rel)?.open(flags, mode)
    }

    /// Resolves to a directory handle (`O_PATH`), creating missing
    /// directories when `create` is given.
    fn resolve_dir(&self, rel: &[u8], create: Option<Mode>) -> io::Result<OwnedFd> {
        let rel = trim_rel(rel);
        if rel.is_empty() {
            return self.fd.try_clone();
        }
        match self.resolve(rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
            Err(e) if create.is_some() && e.kind() == io::ErrorKind::NotFound => {
                Walk::new(self, rel)?.into_dir(create)
            }
            other => other,
        }
    }
}

/// A directory about to be renamed, and where to: see [`Root::moved`].
#[derive(Debug)]
pub struct Moved<'r> {
    root: &'r Root,
    /// The directory being moved (`O_PATH`), and its (device, inode).
    dir: OwnedFd,
    id: (u64, u64),
    /// Its new parent (`None`: the root) and the (device, inode) of each
    /// directory from the root to it; its new name there.
    parent: Option<OwnedFd>,
    parent_ids: Vec<(u64, u64)>,
    name: Vec<u8>,
}

impl Moved<'_> {
    /// Whether a link in the moved directory's subdirectory `dir` (relative
    /// to the moved directory, made of real directories, `""` for itself)
    /// holding `target` would stay beneath the root after the move: `Ok`, or
    /// an escape error (the rules of [`Root::check_link_target`]).
    pub fn check_link(&self, dir: &Path, target: &OsStr) -> io::Result<()> {
        let target = target.as_bytes();
        if target.starts_with(b"/") {
            return self.root.check_link_target("/l", OsStr::from_bytes(target));
        }
        let mut walk = Walk::new(self.root, &[])?;
        walk.cur = Some(self.dir.try_clone()?);
        walk.ids = self.parent_ids.clone();
        walk.ids.push(self.id);
        walk.moved = Some(self);
        walk.push_components(target);
        // The link's directory comes first: its components go on top.
        walk.push_components(&rel_bytes(dir));
        if walk.todo.len() > MAX_COMPONENTS {
            return Err(too_many_components());
        }
        walk.probe()
    }
}

/// The metadata the server reports, from a [`Stat`], in plain integers (the
/// `stat` fields' C types differ between architectures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileType,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
}

impl From<&Stat> for Meta {
    #[allow(clippy::unnecessary_cast)] // the fields' types vary by target
    fn from(st: &Stat) -> Meta {
        Meta {
            kind: FileType::from_raw_mode(st.st_mode as _),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mode: (st.st_mode as u32) & 0o7777,
            mtime: st.st_mtime as i64,
        }
    }
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }
    pub fn is_file(&self) -> bool {
        self.kind == FileType::RegularFile
    }
    pub fn is_symlink(&self) -> bool {
        self.kind == FileType::Symlink
    }
}

/// A single file name for the `*_at` functions: never empty, `.`, `..`, nor
/// holding a `/` (which would make the kernel resolve a path).
fn single_name(name: &OsStr) -> io::Result<&OsStr> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single file name",
        ));
    }
    Ok(name)
}

/// Opens the entry `name` of the directory `dir` with `open(2)`'s `flags`
/// (`O_NOFOLLOW` and `O_CLOEXEC` always added: a link there is never
/// followed, whatever it points to).
pub fn open_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let mode = if flags.intersects(OFlags::CREATE | OFlags::TMPFILE) {
        mode
    } else {
        Mode::empty()
    };
    Ok(rfs::openat(
        dir,
        single_name(name)?,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )?)
}

/// Opens the subdirectory `name` of `dir` for reading, never through a link
/// (a link there fails with `ELOOP` or `ENOTDIR`).
pub fn subdir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_at(dir, name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
}

/// `lstat` of the entry `name` of `dir` (a link is not followed).
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    Ok(rfs::statat(
        dir,
        single_name(name)?,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// The target of the symbolic link `name` of `dir`, as stored.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    let target = rfs::readlinkat(dir, single_name(name)?, Vec::new())?;
    Ok(OsString::from_vec(target.into_bytes()))
}

/// Removes the non-directory `name` of `dir` (a link itself).
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, single_name(name)?, AtFlags::empty())?)
}

/// `renameat(2)` between two entries of directory handles.
pub fn rename_at(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> io::Result<()> {
    Ok(rfs::renameat(
        from_dir,
        single_name(from)?,
        to_dir,
        single_name(to)?,
    )?)
}

/// A new handle on the directory `dir` itself, open for reading: an `O_PATH`
/// handle (from [`Root::parent`]) cannot be fsynced or read, this one can.
pub fn reopen_dir(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The entries of the directory open at `dir` (`O_RDONLY`, as from
/// [`Root::open_dir_fd`] or [`subdir_at`]), without `.` and `..`, sorted by
/// name, each with its `lstat` taken through the handle.
pub fn read_dir_at(dir: BorrowedFd<'_>) -> io::Result<Vec<DirItem>> {
    let mut d = Dir::read_from(dir)?;
    let names = read_names(&mut d)?;
    let mut items: Vec<DirItem> = names
        .into_iter()
        .map(|name| DirItem {
            stat: rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io::Error::from),
            name: OsString::from_vec(name.into_bytes()),
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

/// A directory read in bounded batches, for listings that stream: memory
/// stays at one batch however many entries the directory holds.
pub struct DirBatches {
    dir: Dir,
    done: bool,
}

impl DirBatches {
    /// Reads the directory open at `fd` (`O_RDONLY`, as from
    /// [`Root::open_dir_fd`] or [`subdir_at`], at its start), which it keeps.
    pub fn new(fd: OwnedFd) -> io::Result<DirBatches> {
        Ok(DirBatches {
            dir: Dir::new(fd)?,
            done: false,
        })
    }

    /// The directory's handle, for the `*_at` functions (which do not move
    /// the read position).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.fd().expect("a Dir always has its fd")
    }

    /// The next at most `max` entries (without `.` and `..`) in the order
    /// the directory gives them, sorted by name *within the batch*, each with
    /// its `lstat` taken through the handle; empty at the end.
    pub fn next_batch(&mut self, max: usize) -> io::Result<Vec<DirItem>> {
        let mut names = Vec::new();
        while !self.done && names.len() < max.max(1) {
            match self.dir.read() {
                None => self.done = true,
                Some(entry) => {
                    let entry = entry?;
                    let name = entry.file_name();
                    if name != c"." && name != c".." {
                        names.push(name.to_owned());
                    }
                }
            }
        }
        let fd = self.fd();
        let mut items: Vec<DirItem> = names
            .into_iter()
            .map(|name| DirItem {
                stat: rfs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io::Error::from),
                name: OsString::from_vec(name.into_bytes()),
            })
            .collect();
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }
}

/// Whether `openat2` with `RESOLVE_BENEATH` works here.
fn openat2_available(root: &OwnedFd) -> bool {
    rfs::openat2(
        root,
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .is_ok()
}

/// One resolution by the component walk.
struct Walk<'r> {
    root: &'r Root,
    /// The directory reached so far; `None` is the root itself.
    cur: Option<OwnedFd>,
    /// (device, inode) of each directory from the root (first) to `cur`.
    ids: Vec<(u64, u64)>,
    /// The components still to resolve, the next one last.
    todo: Vec<Vec<u8>>,
    hops: usize,
    /// A directory as it will be once renamed ([`Moved`]): `..` out of it
    /// leads to its new parent, and its new name there leads to it.
    moved: Option<&'r Moved<'r>>,
}

/// What one step down did.
enum Step {
    Entered,
    Expanded,
    NotADir,
}

impl<'r> Walk<'r> {
    fn new(root: &'r Root, rel: &[u8]) -> io::Result<Walk<'r>> {
        let rel = trim_rel(rel);
        if count_components(rel) > MAX_COMPONENTS {
            return Err(too_many_components());
        }
        let mut w = Walk {
            root,
            cur: None,
            ids: vec![root.id],
            todo: Vec::new(),
            hops: 0,
            moved: None,
        };
        w.push_components(rel);
        Ok(w)
    }

    fn dir(&self) -> BorrowedFd<'_> {
        match &self.cur {
            Some(fd) => fd.as_fd(),
            None => self.root.fd.as_fd(),
        }
    }

    fn push_components(&mut self, path: &[u8]) {
        self.todo.extend(
            path.split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .rev()
                .map(<[u8]>::to_vec),
        );
    }

    /// Splices a symlink's target in front of the rest of the path.
    fn expand(&mut self, target: CString) -> io::Result<()> {
        self.hops += 1;
        if self.hops > MAX_SYMLINK_HOPS {
            return Err(Errno::LOOP.into());
        }
        let target = target.as_bytes();
        if target.starts_with(b"/") {
            let rest = self.root.under_root_path(target).ok_or_else(escape_error)?;
            // Start again at the root with what follows its path.
            self.cur = None;
            self.ids.truncate(1);
            self.push_components(rest);
            return Ok(());
        }
        if target.is_empty() {
            return Err(Errno::NOENT.into());
        }
        self.push_components(target);
        Ok(())
    }

    /// `..`: never above the root, and only to the directory the walk came
    /// through (a directory moved meanwhile would make `..` lead elsewhere,
    /// perhaps outside: refused as an escape).
    fn up(&mut self) -> io::Result<()> {
        if self.ids.len() == 1 {
            return Err(escape_error());
        }
        if let Some(m) = self.moved {
            if self.ids.last() == Some(&m.id) {
                self.cur = match &m.parent {
                    Some(fd) => Some(fd.try_clone()?),
                    None => None,
                };
                self.ids = m.parent_ids.clone();
                return Ok(());
            }
        }
        let parent = rfs::openat(
            self.dir(),
            c"..",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rfs::fstat(&parent)?;
        self.ids.pop();
        if Some(&(st.st_dev as u64, st.st_ino as u64)) != self.ids.last() {
            return Err(escape_error());
        }
        self.cur = if self.ids.len() == 1 {
            None
        } else {
            Some(parent)
        };
        Ok(())
    }

    /// A component that is not the last: enter a directory, or expand a link.
    fn down(&mut self, name: &[u8]) -> io::Result<Step> {
        if let Some(m) = self.moved {
            if name == m.name.as_slice() && self.ids.last() == m.parent_ids.last() {
                self.ids.push(m.id);
                self.cur = Some(m.dir.try_clone()?);
                return Ok(Step::Entered);
            }
        }
        let fd = rfs::openat(
            self.dir(),
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rfs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                self.ids.push((st.st_dev as u64, st.st_ino as u64));
                self.cur = Some(fd);
                Ok(Step::Entered)
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(&fd, c"", Vec::new())?;
                self.expand(target)?;
                Ok(Step::Expanded)
            }
            _ => Ok(Step::NotADir),
        }
    }

    /// Resolves the whole path and opens the final component with `flags`.
    fn open(mut self, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let nofollow = flags.contains(OFlags::NOFOLLOW);
        loop {
            let Some(name) = self.todo.pop() else {
                // Nothing left (the root, or a path ending in `..` or in a
                // link to `.`): the directory reached is the object.
                return Ok(rfs::openat(
                    self.dir(),
                    c".",
                    flags | OFlags::CLOEXEC,
                    mode,
                )?);
            };
            if name == b".." {
                self.up()?;
                continue;
            }
            if !self.todo.is_empty() {
                if let Step::NotADir = self.down(&name)? {
                    return Err(Errno::NOTDIR.into());
                }
                continue;
            }
            // The final component: never followed by the kernel.
            match rfs::openat(
                self.dir(),
                name.as_slice(),
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            ) {
                Ok(fd) => {
                    // O_PATH | O_NOFOLLOW opens a link itself: follow it here.
                    if flags.contains(OFlags::PATH) && !nofollow {
                        let st = rfs::fstat(&fd)?;
                        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                            let target = rfs::readlinkat(&fd, c"", Vec::new())?;
                            self.expand(target)?;
                            continue;
                        }
                    }
                    return Ok(fd);
                }
                // ELOOP: a link met O_NOFOLLOW; ENOTDIR: a link met O_DIRECTORY.
                Err(e @ (Errno::LOOP | Errno::NOTDIR)) if !nofollow => {
                    match rfs::readlinkat(self.dir(), name.as_slice(), Vec::new()) {
                        Ok(target) => self.expand(target)?,
                        Err(_) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Resolves the whole path to a directory handle, creating missing
    /// directories when `create` is given.
    fn into_dir(mut self, create: Option<Mode>) -> io::Result<OwnedFd> {
        let mut created = 0usize;
        loop {
            let Some(name) = self.todo.pop() else {
                return match self.cur.take() {
                    Some(fd) => Ok(fd),
                    None => Ok(self.root.fd.try_clone()?),
                };
            };
            if name == b".." {
                self.up()?;
                continue;
            }
            match self.down(&name) {
                Ok(Step::Entered | Step::Expanded) => {}
                Ok(Step::NotADir) => return Err(Errno::NOTDIR.into()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
                    created += 1;
                    if created > MAX_COMPONENTS + REMOVE_RETRIES {
                        return Err(e);
                    }
                    match rfs::mkdirat(self.dir(), name.as_slice(), create.unwrap()) {
                        Ok(()) | Err(Errno::EXIST) => self.todo.push(name),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Resolves the whole path to a directory (no link followed out, none
    /// created), left as the walk's current directory with its chain of ids.
    fn walk_to_dir(&mut self) -> io::Result<()> {
        while let Some(name) = self.todo.pop() {
            if name == b".." {
                self.up()?;
                continue;
            }
            if let Step::NotADir = self.down(&name)? {
                return Err(Errno::NOTDIR.into());
            }
        }
        Ok(())
    }

    /// Follows the path as far as it exists; judges the rest by its spelling.
    fn probe(mut self) -> io::Result<()> {
        loop {
            let Some(name) = self.todo.pop() else {
                return Ok(());
            };
            if name == b".." {
                self.up()?;
                continue;
            }
            match self.down(&name) {
                Ok(Step::Entered | Step::Expanded) => {}
                // A file in the middle, or a loop: the link leads nowhere.
                Ok(Step::NotADir) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // `name` is missing: count it and what follows lexically.
                    let mut depth = self.ids.len();
                    for c in self.todo.iter().rev() {
                        if c.as_slice() == b".." {
                            if depth == 0 {
                                return Err(escape_error());
                            }
                            depth -= 1;
                        } else {
                            depth += 1;
                        }
                    }
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Removes `name` in `dir`, recursively if it is a directory.
fn remove_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    check: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<()> {
    struct Level {
        dir: Dir,
        /// Its name in the level above (or in `dir` for the first).
        name: CString,
        /// Entries still to remove.
        names: Vec<CString>,
    }
    let Some(first) = open_for_removal(dir, name, false)? else {
        return Ok(());
    };
    check()?;
    let mut stack = vec![first_level(first, name.to_owned())?];
    fn first_level(mut d: Dir, name: CString) -> io::Result<Level> {
        let names = read_names(&mut d)?;
        Ok(Level {
            dir: d,
            name,
            names,
        })
    }
    while let Some(top) = stack.last_mut() {
        if let Some(child) = top.names.pop() {
            let fd = top.dir.fd()?;
            if let Some(sub) = open_for_removal(fd, &child, true)? {
                check()?;
                let level = first_level(sub, child)?;
                stack.push(level);
            }
            continue;
        }
        let done = stack.pop().expect("non-empty");
        let parent = match stack.last() {
            Some(l) => l.dir.fd()?,
            None => dir,
        };
        drop(done.dir);
        match rfs::unlinkat(parent, done.name.as_c_str(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Unlinks `name` in `dir` if it is not a directory (`None`: done), or opens
/// it, without following a link, for its entries to be removed. A name gone
/// meanwhile is done when `missing_ok` (an entry below the top), else an error.
fn open_for_removal(dir: BorrowedFd<'_>, name: &CStr, missing_ok: bool) -> io::Result<Option<Dir>> {
    for _ in 0..REMOVE_RETRIES {
        match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) => return Ok(None),
            Err(Errno::NOENT) if missing_ok => return Ok(None),
            Err(Errno::ISDIR) => {}
            Err(e) => return Err(e.into()),
        }
        #[cfg(test)]
        tests::REMOVAL_HOOK.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(name)
            }
        });
        match rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => return Ok(Some(Dir::new(fd)?)),
            Err(Errno::NOENT) if missing_ok => return Ok(None),
            // Swapped for a link or a file since the unlink: unlink again.
            Err(Errno::LOOP | Errno::NOTDIR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "kept changing between a directory and a non-directory while being removed",
    ))
}

/// A directory's entry names, without `.` and `..`.
fn read_names(dir: &mut Dir) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// A path's bytes. Names are bytes: a path given as text in which raw bytes
/// of names stand as private-use characters ([`crate::display::name_from_bytes`],
/// as the server holds request paths) means those bytes.
fn rel_bytes(rel: &Path) -> std::borrow::Cow<'_, [u8]> {
    let bytes = rel.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => crate::display::name_to_bytes(text),
        Err(_) => std::borrow::Cow::Borrowed(bytes),
    }
}

/// Without leading slashes: a virtual `/a/b` is the root-relative `a/b`.
fn trim_rel(rel: &[u8]) -> &[u8] {
    let start = rel.iter().position(|&b| b != b'/').unwrap_or(rel.len());
    &rel[start..]
}

fn count_components(rel: &[u8]) -> usize {
    rel.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count()
}

/// (everything before the last component, the last component), refusing a
/// path whose last component is not a name.
fn split_last(rel: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let rel = trim_rel(rel);
    let mut end = rel.len();
    // Trailing slashes and `.` components name the same entry.
    loop {
        while end > 0 && rel[end - 1] == b'/' {
            end -= 1;
        }
        if rel[..end].ends_with(b"/.") || &rel[..end] == b"." {
            end -= 1;
            continue;
        }
        break;
    }
    let body = &rel[..end];
    let start = body.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let name = &body[start..];
    if name.is_empty() || name == b".." {
        return Err(no_name());
    }
    if count_components(body) > MAX_COMPONENTS {
        return Err(too_many_components());
    }
    Ok((&body[..start], name))
}

fn proc_fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL")
}

fn timespec(t: Option<SystemTime>) -> Timespec {
    match t {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_OMIT,
        },
        Some(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            },
            Err(before) => {
                let d = before.duration();
                let (mut sec, mut nsec) = (-(d.as_secs() as i64), -(d.subsec_nanos() as i64));
                if nsec < 0 {
                    sec -= 1;
                    nsec += 1_000_000_000;
                }
                Timespec {
                    tv_sec: sec as _,
                    tv_nsec: nsec as _,
                }
            }
        },
    }
}

fn nul_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "a name contains a NUL byte")
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.display(), describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;
    use std::fs;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    const MARKER: &str = "OUTSIDE-MARKER";

    type Hook = Box<dyn FnMut(&CStr)>;

    thread_local! {
        /// Runs in `remove_tree` between "it is a directory" and opening it:
        /// where a swap would redirect a walk that followed links.
        pub(super) static REMOVAL_HOOK: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    /// `base/root` (served) and `base/outside` (not), and the roots to test:
    /// one that uses openat2 (this kernel has it) and one forced to walk.
    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/f"), "inside").unwrap();
        fs::write(root.join("d/sub/g"), "deep").unwrap();
        fs::create_dir_all(outside.join("sub")).unwrap();
        fs::write(outside.join("secret"), MARKER).unwrap();
        fs::write(outside.join("sub/g"), MARKER).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            outside,
        }
    }

    impl Fixture {
        fn roots(&self) -> Vec<Root> {
            let auto = Root::new(&self.root).unwrap();
            let walk = Root::with_resolver(&self.root, Resolver::Walk).unwrap();
            assert_eq!(walk.resolver(), Resolver::Walk);
            vec![auto, walk]
        }
        fn link(&self, target: impl AsRef<Path>, at: &str) {
            symlink(target, self.root.join(at)).unwrap();
        }
        /// Every file outside, with its contents, mode and mtime.
        fn outside_state(&self) -> Vec<(PathBuf, Vec<u8>, u32, i64)> {
            let mut out = Vec::new();
            let mut stack = vec![self.outside.clone()];
            while let Some(d) = stack.pop() {
                for e in fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    let m = fs::symlink_metadata(&p).unwrap();
                    let data = if m.is_file() {
                        fs::read(&p).unwrap()
                    } else {
                        vec![]
                    };
                    out.push((p.clone(), data, m.mode(), m.mtime()));
                    if m.is_dir() {
                        stack.push(p);
                    }
                }
            }
            out.sort();
            out
        }
    }

    fn read(root: &Root, rel: &str) -> io::Result<String> {
        let mut f = root.open_file(rel, OFlags::RDONLY, Mode::empty())?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        Ok(s)
    }

    fn assert_escape<T: fmt::Debug>(r: io::Result<T>, what: &str) {
        match r {
            Err(e) => {
                assert!(is_escape(&e), "{what}: expected an escape, got {e:?}");
                assert_eq!(describe(&e), "leads outside the served root");
            }
            Ok(v) => panic!("{what}: expected an escape, got {v:?}"),
        }
    }

    #[test]
    fn kernels_with_openat2_use_it() {
        // Linux 5.6 and later have openat2: there, if this fails, the openat2
        // branch of every other test silently became a second walk test.
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        let f = fixture();
        let resolver = Root::new(&f.root).unwrap().resolver();
        if version >= (5, 6) {
            assert_eq!(resolver, Resolver::Openat2, "kernel {release}");
        }
    }

    #[test]
    fn plain_paths_open() {
        let f = fixture();
        for root in f.roots() {
            for p in [
                "d/f",
                "/d/f",
                "d/./f",
                "d//f",
                "./d/f",
                "d/sub/../f",
                "d/../d/sub/../f",
            ] {
                assert_eq!(
                    read(&root, p).unwrap(),
                    "inside",
                    "{p} ({:?})",
                    root.resolver()
                );
            }
            let e = read(&root, "d/missing").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert_eq!(describe(&e), "no such file or directory");
            let e = read(&root, "d/f/x").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
            // The root itself, by several spellings.
            for p in ["", "/", ".", "d/..", "d/sub/../.."] {
                assert_eq!(
                    root.stat(p, false).unwrap().st_ino,
                    root.stat(p, true).unwrap().st_ino
                );
                let st = root.stat(p, true).unwrap();
                assert_eq!(st.st_ino, fs::metadata(&f.root).unwrap().ino(), "{p}");
            }
        }
    }

    #[test]
    fn symlinks_inside_are_followed() {
        let f = fixture();
        f.link("d/f", "to_file");
        f.link("d", "to_dir");
        f.link("to_dir", "chain");
        f.link("../../d/f", "d/sub/up");
        f.link(".", "d/self");
        f.link("sub/../f", "d/via_dotdot");
        for root in f.roots() {
            let r = root.resolver();
            for p in [
                "to_file",
                "to_dir/f",
                "chain/f",
                "d/sub/up",
                "d/self/self/f",
                "d/via_dotdot",
                "chain/sub/up",
            ] {
                assert_eq!(read(&root, p).unwrap(), "inside", "{p} ({r:?})");
            }
            // O_PATH follows a final link too, unless O_NOFOLLOW.
            let fd = root.open("to_dir", OFlags::PATH, Mode::empty()).unwrap();
            assert_eq!(
                FileType::from_raw_mode(rfs::fstat(&fd).unwrap().st_mode),
                FileType::Directory
            );
            let fd = root
                .open("to_dir", OFlags::PATH | OFlags::NOFOLLOW, Mode::empty())
                .unwrap();
            assert_eq!(
                FileType::from_raw_mode(rfs::fstat(&fd).unwrap().st_mode),
                FileType::Symlink
            );
            let e = root
                .open("to_file", OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{r:?}");
            // A directory through a link, for reading entries.
            let names: Vec<OsString> = root
                .read_dir("chain")
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect();
            assert_eq!(
                names,
                ["f", "self", "sub", "via_dotdot"].map(OsString::from)
            );
        }
    }

    #[test]
    fn symlinks_out_are_refused() {
        let f = fixture();
        f.link(&f.outside, "abs");
        f.link(f.outside.join("secret"), "abs_file");
        f.link("../outside", "rel");
        f.link("../outside/secret", "rel_file");
        f.link("../../outside/secret", "d/deep");
        f.link("sub/../../../outside", "d/twisty");
        f.link(f.root.join("d"), "abs_inside"); // absolute, even to inside: refused
        f.link(f.outside.join("new"), "dangling_abs");
        f.link("../outside/new", "dangling_rel");
        f.link("/proc/self/root", "magic");
        let before = f.outside_state();
        for root in f.roots() {
            let r = root.resolver();
            for p in [
                "abs",
                "abs/secret",
                "abs_file",
                "rel",
                "rel/secret",
                "rel_file",
                "d/deep",
                "d/twisty/secret",
                "abs_inside/f",
                "magic/etc/passwd",
                "..",
                "../outside/secret",
                "d/../../outside/secret",
                "d/sub/../../..",
            ] {
                assert_escape(read(&root, p), &format!("read {p} ({r:?})"));
                assert_escape(root.stat(p, true), &format!("stat {p} ({r:?})"));
            }
            // Creating through a link out is refused too, and creates nothing.
            for p in [
                "abs/new",
                "rel/new",
                "dangling_abs",
                "dangling_rel",
                "d/twisty/new",
            ] {
                assert_escape(
                    root.open(
                        p,
                        OFlags::WRONLY | OFlags::CREATE,
                        Mode::from_raw_mode(0o644),
                    ),
                    &format!("create {p} ({r:?})"),
                );
                assert_escape(root.mkdir(format!("{p}/x"), Mode::from_raw_mode(0o755)), p);
                assert_escape(
                    root.mkdir_all(format!("{p}/x/y"), Mode::from_raw_mode(0o755)),
                    p,
                );
            }
            assert_escape(root.chmod("abs_file", Mode::from_raw_mode(0o777)), "chmod");
            assert_escape(
                root.set_times("rel_file", None, Some(UNIX_EPOCH)),
                "set_times",
            );
            assert_escape(root.unlink("abs/secret"), "unlink");
            assert_escape(root.remove_tree("rel/sub"), "remove_tree");
            assert_escape(root.rename("abs/secret", "stolen"), "rename from");
            assert_escape(root.rename("d/f", "rel/planted"), "rename to");
            assert_escape(root.symlink(OsStr::new("x"), "abs/planted"), "symlink");
            assert_escape(root.read_dir("abs"), "read_dir");
            // The links themselves are ordinary entries.
            assert!(root.stat("abs", false).is_ok());
            assert_eq!(root.readlink("rel").unwrap(), "../outside");
        }
        assert_eq!(f.outside_state(), before);
    }

    #[test]
    fn absolute_links_to_the_roots_own_path_on_request() {
        let f = fixture();
        f.link(f.root.join("d"), "abs_inside");
        f.link(f.root.join("d/f"), "abs_file");
        f.link(&f.root, "abs_root");
        f.link(f.root.join("d/../.."), "abs_dotdot"); // spelled under the root, leads out
        f.link(format!("{}x/f", f.root.display()), "abs_sibling"); // .../rootx: not the root
        f.link(&f.outside, "abs_out");
        let given = f.root.join("d/..");
        for root in f.roots() {
            let r = root.resolver();
            // Off by default.
            assert_escape(read(&root, "abs_file"), "default");
            let root = root.with_absolute_links_to_root(&given);
            for p in [
                "abs_inside/f",
                "abs_file",
                "abs_root/d/f",
                "abs_root/abs_root/abs_file",
            ] {
                assert_eq!(read(&root, p).unwrap(), "inside", "{p} ({r:?})");
            }
            for p in ["abs_dotdot/outside/secret", "abs_sibling", "abs_out/secret"] {
                assert_escape(read(&root, p), &format!("{p} ({r:?})"));
            }
            root.check_link_target("l", f.root.join("d").as_os_str())
                .unwrap();
            assert_escape(
                root.check_link_target("l", f.outside.as_os_str()),
                "check outside",
            );
        }
    }

    #[test]
    fn loops_and_limits() {
        let f = fixture();
        f.link("b", "a");
        f.link("a", "b");
        // Dirs whose whole path is longer than PATH_MAX: openat2 refuses it
        // (ENAMETOOLONG), the walk takes it.
        let long = "n".repeat(250);
        let deep: Vec<&str> = std::iter::repeat_n(long.as_str(), 20).collect();
        let deep = deep.join("/");
        for root in f.roots() {
            let e = read(&root, "a").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(Errno::LOOP.raw_os_error()));
            assert_eq!(describe(&e), "too many levels of symbolic links");
            let too_many = "x/".repeat(MAX_COMPONENTS + 1);
            let e = read(&root, &too_many).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(describe(&e), "too many path components (more than 4096)");
            root.mkdir_all(&deep, Mode::from_raw_mode(0o755)).unwrap();
            let file = format!("{deep}/file");
            let mut w = root
                .open_file(
                    &file,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
                    Mode::from_raw_mode(0o644),
                )
                .unwrap();
            w.write_all(b"long").unwrap();
            assert_eq!(read(&root, &file).unwrap(), "long");
            root.remove_tree(long.as_str()).unwrap();
        }
    }

    #[test]
    fn link_hops_are_capped_at_40() {
        let f = fixture();
        // l0 -> l1 -> ... -> l40 -> d/f: 41 hops, one too many; l1 is fine.
        for i in 0..=40 {
            let target = if i == 40 {
                "d/f".to_string()
            } else {
                format!("l{}", i + 1)
            };
            f.link(target, &format!("l{i}"));
        }
        for root in f.roots() {
            assert_eq!(
                read(&root, "l1").unwrap(),
                "inside",
                "{:?}",
                root.resolver()
            );
            let e = read(&root, "l0").unwrap_err();
            assert_eq!(
                e.raw_os_error(),
                Some(Errno::LOOP.raw_os_error()),
                "{:?}",
                root.resolver()
            );
        }
    }

    #[test]
    fn parent_handle_operations() {
        let f = fixture();
        f.link("d", "dl");
        f.link(&f.outside, "out");
        let before = f.outside_state();
        for (i, root) in f.roots().into_iter().enumerate() {
            let r = root.resolver();
            let base = format!("w{i}");
            root.mkdir(&base, Mode::from_raw_mode(0o755)).unwrap();
            let e = root.mkdir(&base, Mode::from_raw_mode(0o755)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            root.mkdir_all(format!("{base}/a/b/c"), Mode::from_raw_mode(0o755))
                .unwrap();
            root.mkdir_all(format!("{base}/a/b/c"), Mode::from_raw_mode(0o755))
                .unwrap();
            root.mkdir_all(format!("dl/made{i}/x"), Mode::from_raw_mode(0o755))
                .unwrap();
            assert!(f.root.join(format!("d/made{i}/x")).is_dir(), "{r:?}");

            // Create new, refuse to create over it.
            let new = format!("{base}/a/new");
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
            root.open_file(&new, flags, Mode::from_raw_mode(0o600))
                .unwrap()
                .write_all(b"1")
                .unwrap();
            assert_eq!(
                root.open(&new, flags, Mode::from_raw_mode(0o600))
                    .unwrap_err()
                    .kind(),
                io::ErrorKind::AlreadyExists
            );
            assert_eq!(root.stat(&new, false).unwrap().st_mode & 0o777, 0o600);

            // Rename, NOREPLACE, EXCHANGE.
            let moved = format!("{base}/a/b/moved");
            root.rename(&new, &moved).unwrap();
            assert_eq!(read(&root, &moved).unwrap(), "1");
            fs::write(f.root.join(&base).join("other"), "2").unwrap();
            let e = root
                .rename_with(format!("{base}/other"), &moved, RenameFlags::NOREPLACE)
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            root.rename_with(format!("{base}/other"), &moved, RenameFlags::EXCHANGE)
                .unwrap();
            assert_eq!(read(&root, &moved).unwrap(), "2");
            // Rename through a link inside: dl/f is d/f.
            root.rename("dl/f", format!("{base}/f")).unwrap();
            root.rename(format!("{base}/f"), "dl/f").unwrap();

            // Symlinks: created, read back, stat with and without following.
            let link = format!("{base}/link");
            root.symlink(OsStr::new("a/b/moved"), &link).unwrap();
            assert_eq!(root.readlink(&link).unwrap(), "a/b/moved");
            assert_eq!(
                FileType::from_raw_mode(root.stat(&link, false).unwrap().st_mode),
                FileType::Symlink
            );
            assert_eq!(
                FileType::from_raw_mode(root.stat(&link, true).unwrap().st_mode),
                FileType::RegularFile
            );
            assert_eq!(read(&root, &link).unwrap(), "2");

            // chmod and times through the link land on the target.
            root.chmod(&link, Mode::from_raw_mode(0o640)).unwrap();
            let target = f.root.join(&moved);
            assert_eq!(
                fs::metadata(&target).unwrap().permissions().mode() & 0o777,
                0o640
            );
            let when = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
            root.set_times(&link, None, Some(when)).unwrap();
            assert_eq!(fs::metadata(&target).unwrap().mtime(), 1_000_000_000);
            // chmod to and from 0 (done through /proc/self/fd, not by opening
            // the file: a non-root owner could not reopen a 0o000 file).
            root.chmod(&moved, Mode::from_raw_mode(0o000)).unwrap();
            assert_eq!(
                fs::metadata(&target).unwrap().permissions().mode() & 0o777,
                0
            );
            root.chmod(&moved, Mode::from_raw_mode(0o644)).unwrap();

            // Unlinking a link removes the link; unlink of a link out too.
            root.unlink(&link).unwrap();
            assert!(target.exists());
            assert_eq!(
                root.unlink(format!("{base}/a")).unwrap_err().kind(),
                io::ErrorKind::IsADirectory
            );
            assert_eq!(
                root.rmdir(format!("{base}/a")).unwrap_err().kind(),
                io::ErrorKind::DirectoryNotEmpty
            );
            root.rmdir(format!("{base}/a/b/c")).unwrap();
            root.remove(&moved).unwrap();
            root.remove(format!("{base}/a/b")).unwrap();
            assert!(!f.root.join(&base).join("a/b").exists());

            // The root itself has no parent entry.
            for p in ["", "/", ".", "d/..", "d/sub/.."] {
                assert_eq!(
                    root.parent(p).unwrap_err().kind(),
                    io::ErrorKind::InvalidInput,
                    "{p}"
                );
            }
            let (_, name) = root.parent("d/sub/./").unwrap();
            assert_eq!(name, "sub");

            root.sync_dir(&base).unwrap();
            assert!(root.statvfs("d").unwrap().f_blocks > 0);
            let items = root.read_dir("").unwrap();
            let out = items.iter().find(|i| i.name == "out").unwrap();
            assert_eq!(
                FileType::from_raw_mode(out.stat.as_ref().unwrap().st_mode),
                FileType::Symlink
            );
        }
        // The link out can be removed (it is inside); its target stays.
        let root = Root::new(&f.root).unwrap();
        root.unlink("out").unwrap();
        assert_eq!(f.outside_state(), before);
    }

    #[test]
    fn link_targets_are_checked_against_the_disk() {
        let f = fixture();
        f.link("d/sub", "sl");
        for root in f.roots() {
            let ok = |link: &str, target: &str| root.check_link_target(link, OsStr::new(target));
            ok("l", "d/f").unwrap();
            ok("d/l", "../d/f").unwrap();
            ok("d/l", "sub/../..").unwrap();
            ok("d/l", "missing/x/../..").unwrap();
            ok("l", "nowhere/..").unwrap();
            ok("sl/l", "../../d").unwrap(); // sl is d/sub: two levels down
            assert_escape(ok("l", ".."), "..");
            assert_escape(ok("d/l", "../.."), "../..");
            assert_escape(ok("d/l", "/etc"), "absolute");
            assert_escape(ok("d/l", "missing/../../.."), "lexical rest");
            assert_escape(ok("l", "sl/../../.."), "through a link");
        }
    }

    #[test]
    fn remove_tree_stays_inside() {
        let f = fixture();
        let before = f.outside_state();
        for (i, root) in f.roots().into_iter().enumerate() {
            let t = format!("t{i}");
            fs::create_dir_all(f.root.join(&t).join("a/b/c")).unwrap();
            fs::create_dir_all(f.root.join(&t).join("empty")).unwrap();
            fs::write(f.root.join(&t).join("a/b/c/file"), "x").unwrap();
            fs::write(f.root.join(&t).join("top"), "x").unwrap();
            symlink(&f.outside, f.root.join(&t).join("a/out")).unwrap();
            symlink("../outside/sub", f.root.join(&t).join("rel_out")).unwrap();
            root.remove_tree(&t).unwrap();
            assert!(!f.root.join(&t).exists());
            // A link as the top: the link goes, not the target's contents.
            symlink(&f.outside, f.root.join(format!("l{i}"))).unwrap();
            root.remove_tree(format!("l{i}")).unwrap();
            assert!(fs::symlink_metadata(f.root.join(format!("l{i}"))).is_err());
            // A plain file, and a missing name.
            fs::write(f.root.join(format!("file{i}")), "x").unwrap();
            root.remove_tree(format!("file{i}")).unwrap();
            assert_eq!(
                root.remove_tree("nothing").unwrap_err().kind(),
                io::ErrorKind::NotFound
            );
            assert_eq!(
                root.remove_tree("/").unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            // A deep tree.
            let deep = "x/".repeat(300);
            root.mkdir_all(format!("deep/{deep}"), Mode::from_raw_mode(0o755))
                .unwrap();
            root.remove_tree("deep").unwrap();
        }
        assert_eq!(f.outside_state(), before);
        assert!(f.root.join("d/sub/g").exists());
    }

    #[test]
    fn remove_tree_survives_a_swap_mid_walk() {
        // Deterministic version of the race: the moment remove_tree has seen
        // that t/a is a directory, t/a is moved away and replaced by a link to
        // the outside tree. The link must be removed, not walked.
        let f = fixture();
        let before = f.outside_state();
        for (i, root) in f.roots().into_iter().enumerate() {
            let t = f.root.join(format!("t{i}"));
            fs::create_dir_all(t.join("a/b")).unwrap();
            fs::write(t.join("a/b/file"), "x").unwrap();
            let (t2, outside, parked) = (
                t.clone(),
                f.outside.clone(),
                f.root.join(format!("parked{i}")),
            );
            let mut fired = 0;
            REMOVAL_HOOK.with(|h| {
                *h.borrow_mut() = Some(Box::new(move |name: &CStr| {
                    if name == c"a" && fired == 0 {
                        fired += 1;
                        fs::rename(t2.join("a"), &parked).unwrap();
                        symlink(&outside, t2.join("a")).unwrap();
                    }
                }))
            });
            let result = root.remove_tree(format!("t{i}"));
            REMOVAL_HOOK.with(|h| h.borrow_mut().take());
            result.unwrap();
            assert!(!t.exists());
            assert!(f.root.join(format!("parked{i}/b/file")).exists());
        }
        assert_eq!(f.outside_state(), before);
    }

    /// Resolution time against path length (run with `--ignored --nocapture`):
    /// linear, so 4x the components should take about 4x the time.
    #[test]
    #[ignore]
    fn walk_time_is_linear() {
        let f = fixture();
        let root = Root::with_resolver(&f.root, Resolver::Walk).unwrap();
        let deep = "a/".repeat(4000);
        root.mkdir_all(&deep, Mode::from_raw_mode(0o755)).unwrap();
        for n in [1000, 2000, 4000] {
            let p = "a/".repeat(n);
            let t = std::time::Instant::now();
            for _ in 0..20 {
                root.dir_handle(&p).unwrap();
            }
            println!("{n} components: {:?} per resolution", t.elapsed() / 20);
        }
        // 4000 `..` back up from the bottom, then down again.
        let p = format!("{deep}{}{deep}", "../".repeat(4000));
        let t = std::time::Instant::now();
        root.dir_handle(&p).unwrap_err(); // 12000 components: over the limit
        let p = format!("{}{}", "a/".repeat(2000), "../".repeat(2000));
        root.dir_handle(&p).unwrap();
        println!("2000 down + 2000 up: {:?}", t.elapsed());
        root.remove_tree("a").unwrap();
    }
}
