//! The download side: `get` beyond a single named file, and `mget`. Remote
//! patterns expand on the server, remote trees are walked into a plan, and the
//! plan runs in pipelined slices, each file received by a [`BatchReceiver`].

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::tally::Tally;
use super::{group_end, has_glob, is_fatal, is_partial, rjoin, Bars, FileBar, BIG};
use crate::local::expand_tilde;
use crate::session::{
    BatchGet, Digest, EntryKind, NoProgress, Receiver, RemoteError, RemoteResult,
};
use crate::transfer::local_md5;
use crate::transfer::{
    check_digest, follow_links, is_partial_refusal, kept_bytes, partial_path, remote_basename,
    FileReceiver,
};
use crate::transfer::{destination, get_file, set_dir_attrs, Faithful};
use crate::{CommandError, Context, Flow};
use ftpsh_core::display::{escape, escape_path, local_name};
use ftpsh_core::glob::Pattern;

/// A remote source after pattern expansion.
struct Match {
    path: String,
    kind: EntryKind,
    size: u64,
    /// The server named it, answering a pattern (rather than the user typing it).
    from_glob: bool,
    mode: u32,
    mtime: i64,
}

struct GetFile {
    remote: String,
    dest: PathBuf,
    size: u64,
    /// Part of a tree: a link at its place is replaced, never written through.
    in_tree: bool,
}

#[derive(Default)]
struct GetPlan {
    dirs: Vec<PathBuf>,
    files: Vec<GetFile>,
    /// Links of the trees, made after the files (so that no file of the
    /// batch is ever written through one): (where, target as stored, remote
    /// path for messages).
    links: Vec<(PathBuf, String, String)>,
    /// The trees' directories with the source's mode and time, applied after
    /// their contents (deepest first).
    dir_attrs: Vec<(PathBuf, u32, i64)>,
    /// Entries the server's walks sent for this command, all trees together:
    /// each answer is capped by the connection, the command by [`MAX_PLANNED`].
    walked: usize,
    /// The bytes of their names and link targets, capped by
    /// [`MAX_PLANNED_BYTES`].
    walked_bytes: usize,
}

/// The most entries one command plans, over all the trees a pattern matched
/// (a server could otherwise answer `get -r 'p*'` with many huge trees).
const MAX_PLANNED: usize = 1_000_000;
/// The most bytes of names and link targets one command plans, over all its
/// trees (as much as one answer may hold): a few entries with long names per
/// tree would otherwise pass under the count.
const MAX_PLANNED_BYTES: usize = 128 << 20;

/// `get [-c] [-r] REMOTE... [LOCAL]` and `mget`: everything but a single named
/// file without `-r`, which `get` does itself.
pub fn get(
    ctx: &mut Context,
    verb: &str,
    sources: &[String],
    local: Option<&str>,
    recursive: bool,
    resume: bool,
    faithful: Faithful,
) -> Result<Flow, CommandError> {
    let mut tally = Tally::new(verb, recursive);
    let matches = expand_remote(ctx, sources, &mut tally.failures)?;
    let local = local.map(expand_tilde).transpose()?;
    let several = sources.len() > 1 || matches.len() > 1;
    if several {
        let dir = local.as_deref().unwrap_or(".");
        if !Path::new(dir).is_dir() {
            // As `put` says it: a destination that is not there is not
            // called "not a directory".
            let why = match std::fs::metadata(dir) {
                Err(e) => ftpsh_core::errors::describe(&e),
                Ok(_) => "not a directory".into(),
            };
            return Err(CommandError::msg(format!(
                "{}: {why} (several files need a directory to go to)",
                escape(dir)
            )));
        }
    }
    let mut plan = GetPlan::default();
    for m in &matches {
        // `.`, `..` and `/` copy their contents into the destination itself
        // (`get -r . DIR`): only when the user wrote them, never as a match the
        // server sent back (a pattern ending in a literal `..`).
        if m.from_glob && nameless(remote_basename(&m.path)) {
            tally.failures.push(format!(
                "{}: a match of a pattern needs a name of its own; name the directory itself",
                escape(&m.path)
            ));
            continue;
        }
        match m.kind {
            EntryKind::Dir if recursive => match local_tree_root(&m.path, local.as_deref()) {
                Ok(root) => {
                    if !nameless(remote_basename(&m.path)) {
                        plan.dir_attrs.push((root.clone(), m.mode, m.mtime));
                    }
                    plan_remote_tree(ctx, &m.path, root, faithful, &mut plan, &mut tally)?
                }
                Err(msg) => tally.failures.push(msg),
            },
            EntryKind::Dir => tally.failures.push(format!(
                "{}: is a directory (use {verb} -r)",
                escape(&m.path)
            )),
            _ if !several && tally.failures.is_empty() => {
                // One file: exactly what `get REMOTE [LOCAL]` does.
                let dest = destination(&m.path, local.as_deref())?;
                if let Some(line) = get_file(ctx, &m.path, &dest, resume, faithful.preserve)? {
                    writeln!(ctx.ui.info(), "{line}")?;
                }
                return Ok(Flow::Continue);
            }
            _ => {
                let name = remote_basename(&m.path);
                if nameless(name) || name.contains('\0') {
                    tally
                        .failures
                        .push(format!("{}: not a file name", escape(&m.path)));
                    continue;
                }
                let dest = match local.as_deref() {
                    Some(dir) => local_name(dir).join(local_name(name)),
                    None => local_name(name),
                };
                plan.files.push(GetFile {
                    remote: m.path.clone(),
                    dest,
                    size: m.size,
                    in_tree: false,
                });
            }
        }
    }
    run_get(ctx, plan, resume, faithful.preserve, tally)
}

/// Expands patterns on the server and looks up plain names; what cannot be
/// found becomes a failure line. Every path the server returns for a pattern
/// is checked against it with the server's own rules
/// ([`ftpsh_core::glob::Pattern`]): one that the pattern could not have
/// matched (`..`, a dot file for `*`, another directory) is refused, named in
/// the verb's failures and never transferred.
fn expand_remote(
    ctx: &mut Context,
    sources: &[String],
    failures: &mut Vec<String>,
) -> Result<Vec<Match>, CommandError> {
    let mut out = Vec::new();
    for src in sources {
        if has_glob(src) {
            let found = match ctx.remote.glob_entries(src) {
                Ok(found) => found,
                Err(RemoteError::Refused(m)) => {
                    failures.push(m);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let pattern = match Pattern::new(src) {
                Ok(p) => p,
                Err(m) => {
                    failures.push(escape(&m).into_owned());
                    continue;
                }
            };
            let before = out.len();
            let mut refused = false;
            for e in found {
                if !pattern.matches(&e.name) {
                    failures.push(format!(
                        "'{}': refused: the server sent it as a match of '{}', which it is not",
                        escape(&e.name),
                        escape(src)
                    ));
                    refused = true;
                    continue;
                }
                if is_partial(&e.name) {
                    continue;
                }
                out.push(Match {
                    path: e.name,
                    kind: e.kind,
                    size: e.size,
                    from_glob: true,
                    mode: e.mode,
                    mtime: e.mtime,
                });
            }
            if out.len() > before || refused {
                continue;
            }
            // No match: a file whose name merely looks like a pattern will do.
            match ctx.remote.stat(src) {
                Ok(e) => out.push(Match {
                    path: src.clone(),
                    kind: e.kind,
                    size: e.size,
                    from_glob: false,
                    mode: e.mode,
                    mtime: e.mtime,
                }),
                Err(RemoteError::Refused(_)) => failures.push(format!("{}: no match", escape(src))),
                Err(e) => return Err(e.into()),
            }
        } else {
            match ctx.remote.stat(src) {
                Ok(e) => out.push(Match {
                    path: src.clone(),
                    kind: e.kind,
                    size: e.size,
                    from_glob: false,
                    mode: e.mode,
                    mtime: e.mtime,
                }),
                Err(RemoteError::Refused(m)) => failures.push(m),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Where a remote directory lands locally, by the `cp -r` rule.
fn local_tree_root(remote: &str, local: Option<&str>) -> Result<PathBuf, String> {
    let name = remote_basename(remote);
    let contents_only = nameless(name);
    // The tree's own name in a directory is ftpsh's choice, not the user's:
    // a link there (one an earlier copy made) is not gone through. A link
    // the user names as the destination is theirs to follow.
    let not_a_link = |root: PathBuf| {
        if root
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            Err(format!(
                "{}: a symbolic link is at the tree's name here (not gone through); \
                 remove it, or name it as the destination",
                escape_path(&root)
            ))
        } else {
            Ok(root)
        }
    };
    match local {
        None if contents_only => Ok(PathBuf::from(".")),
        None => not_a_link(local_name(name)),
        Some(l) => {
            let path = local_name(l);
            if path.is_dir() {
                if contents_only {
                    Ok(path.to_path_buf())
                } else {
                    not_a_link(path.join(local_name(name)))
                }
            } else if path.symlink_metadata().is_ok() {
                Err(format!("{}: exists and is not a directory", escape(l)))
            } else {
                Ok(path.to_path_buf())
            }
        }
    }
}

/// A source without a name of its own copies its contents, not itself.
fn nameless(name: &str) -> bool {
    matches!(name, "" | "." | "..")
}

/// Walks a remote directory into the plan: its directories (empty ones too),
/// files and links (as links; with `-L` the walk follows them instead, and a
/// link out of the root or to nothing is skipped). What is skipped (special
/// files, links with `-L` that lead nowhere) is a failure naming it.
fn plan_remote_tree(
    ctx: &mut Context,
    remote: &str,
    root: PathBuf,
    faithful: Faithful,
    plan: &mut GetPlan,
    tally: &mut Tally,
) -> Result<(), CommandError> {
    let entries = match ctx.remote.walk_links(remote, faithful.follow) {
        Ok(e) => e,
        Err(RemoteError::Refused(m)) => {
            tally.failures.push(m);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    plan.walked += entries.len();
    plan.walked_bytes = entries.iter().fold(plan.walked_bytes, |n, e| {
        n.saturating_add(e.name.len())
            .saturating_add(e.target.len())
    });
    if plan.walked > MAX_PLANNED || plan.walked_bytes > MAX_PLANNED_BYTES {
        return Err(CommandError::msg(format!(
            "{}: the trees hold more than {MAX_PLANNED} entries or {} MiB of names in all, \
             more than one command copies; copy them one at a time",
            escape(remote),
            MAX_PLANNED_BYTES >> 20
        )));
    }
    plan.dirs.push(root.clone());
    let mut checked: HashMap<PathBuf, bool> = HashMap::new();
    // The tree's own links: an honest walk lists nothing beneath a link it
    // does not follow, so an entry beneath one is a server trying to write
    // through a link it made (as in scp's CVE-2019-6111).
    let mut links: HashSet<PathBuf> = HashSet::new();
    for e in entries {
        let path = rjoin(remote, &e.name);
        // What the server could not list (an unreadable directory, a name
        // that is not UTF-8): a failure, named in the server's words.
        if e.is_problem() {
            tally.failures.push(escape(&path).into_owned());
            continue;
        }
        if e.kind == EntryKind::File && is_partial(remote_basename(&e.name)) {
            // ftpsh's own leftover, not part of the tree.
            continue;
        }
        let Some(rel) = safe_rel(&e.name) else {
            tally.failures.push(format!(
                "{}: '{}': unsafe path from the server (it would not stay beneath the \
                 destination), skipped",
                escape(remote),
                escape(&e.name)
            ));
            continue;
        };
        if let Some(link) = rel.ancestors().skip(1).find(|a| links.contains(*a)) {
            tally.failures.push(format!(
                "{}: skipped: beneath {}, a link of the same tree (not gone through)",
                escape(&path),
                escape_path(&root.join(link))
            ));
            continue;
        }
        // Links arrive as links: one already here (from an earlier copy) is
        // never gone through, so no path of the tree can lead out of it.
        if let Some(link) = through_link(&root, &rel, e.kind == EntryKind::Dir, &mut checked) {
            tally.failures.push(format!(
                "{}: skipped: {} is a symbolic link here (not gone through)",
                escape(&path),
                escape_path(&link)
            ));
            continue;
        }
        match e.kind {
            EntryKind::Dir => {
                plan.dirs.push(root.join(&rel));
                plan.dir_attrs.push((root.join(rel), e.mode, e.mtime));
            }
            EntryKind::File => plan.files.push(GetFile {
                remote: path,
                dest: root.join(rel),
                size: e.size,
                in_tree: true,
            }),
            EntryKind::Symlink if !faithful.follow && !e.target.is_empty() => {
                links.insert(rel.clone());
                plan.links.push((root.join(rel), e.target, path));
            }
            EntryKind::Symlink => tally.failures.push(format!(
                "{}: skipped: a symbolic link leading outside the served root or to nothing",
                escape(&path)
            )),
            EntryKind::Other => tally
                .failures
                .push(format!("{}: skipped: not a regular file", escape(&path))),
        }
    }
    Ok(())
}

/// A relative path from the server as a local relative path, or `None` when it
/// could climb out of the destination or land somewhere it should not: `..`,
/// `.`, absolute, empty components, NUL, or a component named like ftpsh's
/// partial files (`NAME.ftpsh-part`, which a later download would write to).
/// Joined to the tree's root, what is left names a path beneath it: the
/// download creates directories and regular files only, never a link to
/// lead a later path elsewhere.
pub fn safe_rel(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        if nameless(part) || part.contains('\0') || is_partial(part) {
            return None;
        }
        out.push(local_name(part));
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Runs a download plan: directories, the `-c` checks, then the files in
/// pipelined slices.
fn run_get(
    ctx: &mut Context,
    plan: GetPlan,
    resume: bool,
    preserve: bool,
    mut tally: Tally,
) -> Result<Flow, CommandError> {
    if plan.dirs.is_empty() && plan.files.is_empty() && plan.links.is_empty() {
        return tally.result();
    }
    let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut bad_dirs: Vec<&Path> = Vec::new();
    for dir in &plan.dirs {
        if bad_dirs.iter().any(|b| dir.starts_with(b)) {
            continue;
        }
        match fs::create_dir_all(dir) {
            Ok(()) => {
                touched.insert(dir.clone());
                touched.insert(parent_of(dir));
            }
            Err(e) => {
                tally.failures.push(format!(
                    "{}: cannot create the directory: {e}",
                    escape_path(dir)
                ));
                bad_dirs.push(dir);
            }
        }
    }

    let mut todo: Vec<(GetFile, u64)> = Vec::new();
    let mut claimed: BTreeSet<PathBuf> = BTreeSet::new();
    for mut f in plan.files {
        if bad_dirs.iter().any(|b| f.dest.starts_with(b)) {
            continue;
        }
        // As for one file: a link stays a link and the file it leads to is
        // replaced; what cannot be renamed over (a device, a pipe) is left be.
        // In a tree the file replaces a link at its place instead.
        match follow_links(&f.dest) {
            _ if f.in_tree => {}
            Ok(real) => f.dest = real,
            Err(e) => {
                tally
                    .failures
                    .push(format!("{}: {e}", escape_path(&f.dest)));
                continue;
            }
        }
        if fs::metadata(&f.dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            tally.failures.push(format!(
                "{}: skipped: not a regular file (get it on its own to write into it)",
                escape_path(&f.dest)
            ));
            continue;
        }
        if !claimed.insert(claim_key(&f.dest)) {
            tally.failures.push(format!(
                "{}: skipped: {} is also the destination of an earlier file",
                escape(&f.remote),
                escape_path(&f.dest)
            ));
            continue;
        }
        if f.dest.is_dir() {
            tally
                .failures
                .push(format!("{}: is a directory", escape_path(&f.dest)));
            continue;
        }
        let mut offset = 0;
        if resume {
            let same_size = fs::metadata(&f.dest)
                .map(|m| m.is_file() && m.len() == f.size)
                .unwrap_or(false);
            if same_size {
                match ctx.remote.md5(&f.remote) {
                    Ok(theirs) => {
                        if local_md5(&f.dest).ok() == Some(theirs) {
                            tally.skipped += 1;
                            continue;
                        }
                    }
                    Err(RemoteError::Refused(m)) => {
                        tally.failures.push(m);
                        continue;
                    }
                    Err(e) => return tally.abort(ctx, e),
                }
            }
            offset = kept_bytes(&partial_path(&f.dest));
            if offset > f.size {
                offset = 0;
            }
        }
        todo.push((f, offset));
    }

    // Sizes as listed (by the server, for downloads): a sum that would pass
    // u64 (a lying listing) stops at its top instead of overflowing.
    let total = todo.iter().fold(0u64, |n, (f, _)| n.saturating_add(f.size));
    let bars: Bars = Rc::new(RefCell::new(
        ctx.ui.batch_progress(todo.len() as u64, total),
    ));
    let mut stopped = None;
    let mut start = 0;
    while start < todo.len() {
        if ctx.ui.interrupted() {
            stopped = Some(RemoteError::Interrupted);
            break;
        }
        let end = group_end(&todo, start, |(f, _)| f.size >= BIG);
        let group = &todo[start..end];
        start = end;
        let mut receivers: Vec<BatchReceiver> = group
            .iter()
            .map(|(f, _)| BatchReceiver::new(f, &bars, ctx.ui.interrupt_flag(), preserve))
            .collect();
        let results = {
            let mut items: Vec<BatchGet> = group
                .iter()
                .zip(receivers.iter_mut())
                .map(|((f, offset), r)| BatchGet {
                    remote: f.remote.clone(),
                    offset: *offset,
                    receiver: r,
                })
                .collect();
            if let [one] = items.as_mut_slice() {
                match ctx.remote.download(&one.remote, one.offset, one.receiver) {
                    Err(e) if is_fatal(&e) => Err(e),
                    r => Ok(vec![r]),
                }
            } else {
                ctx.remote.download_batch(&mut items)
            }
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        // Verify every file, make the verified partials durable together,
        // then rename them into place: never a name before its data is on disk.
        let mut verified: Vec<Result<(), String>> = group
            .iter()
            .zip(receivers.iter_mut())
            .zip(results)
            .map(|(((f, _), r), result)| verify_get(f, r, result))
            .collect();
        make_durable(&receivers, &mut verified, group);
        for (((f, offset), mut r), checked) in group.iter().zip(receivers).zip(verified) {
            match checked.and_then(|()| install_get(f, *offset, &mut r)) {
                Ok(moved) => {
                    tally.files += 1;
                    tally.bytes += moved;
                    touched.insert(parent_of(&f.dest));
                }
                Err(m) => tally.failures.push(m),
            }
            bars.borrow().file_done();
        }
    }
    bars.borrow().finish();
    if stopped.is_none() {
        for (dest, target, remote) in &plan.links {
            if bad_dirs.iter().any(|b| dest.starts_with(b)) {
                continue;
            }
            match make_local_link(dest, target) {
                Ok(()) => {
                    tally.links += 1;
                    touched.insert(parent_of(dest));
                }
                Err(e) => tally.failures.push(format!(
                    "{}: cannot make the link {}: {e}",
                    escape(remote),
                    escape_path(dest)
                )),
            }
        }
        // Directories last, deepest first: their contents are in place, and a
        // read-only directory no longer needs to take any.
        let mut dirs: Vec<&(PathBuf, u32, i64)> = plan
            .dir_attrs
            .iter()
            .filter(|(d, ..)| !bad_dirs.iter().any(|b| d.starts_with(b)))
            .collect();
        dirs.sort_by_key(|(d, ..)| std::cmp::Reverse(d.components().count()));
        for (dir, mode, mtime) in dirs {
            if let Err(e) = set_dir_attrs(dir, *mode, *mtime, preserve) {
                tally.failures.push(format!(
                    "{}: cannot set its mode or time: {e}",
                    escape_path(dir)
                ));
            }
        }
    }
    sync_dirs(&touched);
    match stopped {
        Some(e) => tally.abort(ctx, e),
        None => tally.finish(ctx),
    }
}

/// The first path below `root` on the way to `rel` (and `rel` itself when
/// `last`) that is a symbolic link on this side, if any.
fn through_link(
    root: &Path,
    rel: &Path,
    last: bool,
    checked: &mut HashMap<PathBuf, bool>,
) -> Option<PathBuf> {
    let parts: Vec<_> = rel.components().collect();
    let upto = if last { parts.len() } else { parts.len() - 1 };
    let mut at = root.to_path_buf();
    for part in &parts[..upto] {
        at.push(part);
        let link = *checked
            .entry(at.clone())
            .or_insert_with(|| fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()));
        if link {
            return Some(at);
        }
    }
    None
}

/// Makes the link `dest` holding `target` as given: a link of the tree, data
/// that ftpsh never follows. A link or file already there is replaced (a link
/// with the same target is left be); a directory is not.
fn make_local_link(dest: &Path, target: &str) -> io::Result<()> {
    if target.contains('\0') {
        return Err(io::Error::other("the target holds a NUL byte"));
    }
    // Never made (nor anything removed) through a link: the plan keeps the
    // tree's entries out of its own links; this is the last look.
    let parent = parent_of(dest);
    if fs::symlink_metadata(&parent).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other(format!(
            "{} is a symbolic link; not gone through",
            escape_path(&parent)
        )));
    }
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory is in the way",
            ))
        }
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(dest).is_ok_and(|t| t == local_name(target)) {
                return Ok(());
            }
            fs::remove_file(dest)?;
        }
        Ok(_) => fs::remove_file(dest)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(local_name(target), dest)
}

/// One key per destination file however it is spelled (`big.bin` and a link
/// leading to it from elsewhere): its directory, canonicalised, and its name.
fn claim_key(dest: &Path) -> PathBuf {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (fs::canonicalize(dir), dest.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => dest.to_path_buf(),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Makes renames in these directories durable: one fsync per directory.
fn sync_dirs(dirs: &BTreeSet<PathBuf>) {
    for dir in dirs {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Checks one received file: the server's answer, local failures, the
/// digest. A partial whose digest does not match is removed.
fn verify_get(
    f: &GetFile,
    r: &mut BatchReceiver,
    result: RemoteResult<Digest>,
) -> Result<(), String> {
    r.bar.finish();
    let theirs = match result {
        Ok(d) => d,
        Err(RemoteError::Refused(m)) => return Err(m),
        Err(e) => return Err(format!("{}: {e}", escape(&f.remote))),
    };
    if let Some(e) = r.error.take() {
        if is_partial_refusal(&e) {
            return Err(e.to_string());
        }
        return Err(format!("{}: {e}", escape_path(&f.dest)));
    }
    let Some(ours) = r.digest else {
        return Err(format!(
            "{}: received {} of {} bytes; the partial file is kept",
            escape(&f.remote),
            r.received,
            r.size
        ));
    };
    if let Err(m) = check_digest(&theirs, &ours) {
        let _ = fs::remove_file(partial_path(&f.dest));
        return Err(format!("{}: {m}; nothing was installed", escape(&f.remote)));
    }
    Ok(())
}

/// Makes the verified partials of a slice durable before any is renamed.
/// Their writeback was started as each was complete
/// ([`FileReceiver::finish_writing`]); [`ftpsh_core::sys::make_durable`]
/// then takes one `syncfs` per file system for the slice instead of one
/// fsync (and journal commit) per file. That also waits for other processes'
/// dirty data on that file system: acceptable, because it is data the kernel
/// writes within seconds anyway (no extra I/O, only our waiting for it), a
/// slice holds at most `SLICE` files that are each under `BIG` (a big file
/// goes alone and is fsynced on its own), and on ext4 in ordered mode a
/// per-file fsync's journal commit already writes much of that data too. A
/// file that fails keeps its partial and is not installed.
fn make_durable(
    receivers: &[BatchReceiver],
    verified: &mut [Result<(), String>],
    group: &[(GetFile, u64)],
) {
    let open: Vec<usize> = (0..receivers.len())
        .filter(|&i| verified[i].is_ok() && receivers[i].open_file().is_some())
        .collect();
    let files: Vec<&std::fs::File> = open
        .iter()
        .filter_map(|&i| receivers[i].open_file())
        .collect();
    for (&i, result) in open.iter().zip(ftpsh_core::sys::make_durable(&files)) {
        if let Err(e) = result {
            verified[i] = Err(format!(
                "{}: cannot write the partial file to disk: {e}; nothing was installed",
                escape_path(&group[i].0.dest)
            ));
        }
    }
}

/// Installs one verified, durable partial; returns the bytes moved.
fn install_get(f: &GetFile, offset: u64, r: &mut BatchReceiver) -> Result<u64, String> {
    crate::transfer::replace_with(&partial_path(&f.dest), &f.dest, r.attrs, r.preserve)
        .map_err(|e| format!("{}: cannot install: {e}", escape_path(&f.dest)))?;
    Ok(r.size.saturating_sub(offset))
}

/// Receives one file of a batch. A local failure (cannot create or write the
/// partial) is kept for the file's report instead of being returned, so that it
/// does not break the pipelined connection for the files after it: the rest of
/// its data is read and dropped. The partial's writeback starts as soon as
/// its last byte is written; it stays open (locked) until the slice is made
/// durable ([`make_durable`]) and it is installed: a slice holds at most
/// `SLICE` open files.
struct BatchReceiver {
    /// First, so that dropping finishes the bar before the file is closed.
    bar: FileBar,
    inner: Option<FileReceiver<'static>>,
    size: u64,
    received: u64,
    digest: Option<Digest>,
    error: Option<io::Error>,
    /// The mode and time the server announced, and whether to keep them.
    attrs: Option<(u32, i64)>,
    preserve: bool,
}

impl BatchReceiver {
    fn new(f: &GetFile, bars: &Bars, stop: Arc<AtomicBool>, preserve: bool) -> Self {
        BatchReceiver {
            bar: FileBar::new(escape(&f.remote).into_owned(), bars),
            inner: Some(
                FileReceiver::new(
                    partial_path(&f.dest),
                    false,
                    Box::new(|_| Box::new(NoProgress)),
                )
                .interruptible(stop),
            ),
            size: 0,
            received: 0,
            digest: None,
            error: None,
            attrs: None,
            preserve,
        }
    }

    /// The open partial, while it is written and until it is installed.
    fn open_file(&self) -> Option<&File> {
        self.inner.as_ref().and_then(FileReceiver::open_file)
    }

    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
        self.inner = None;
    }

    /// After the last byte: start its writeback and take the digest. The
    /// file stays open, and so locked against another download to it, until
    /// [`make_durable`] has synced it and [`install_get`] has renamed it into
    /// place (the receiver is dropped after that).
    fn complete_if_done(&mut self) {
        if self.received != self.size || self.error.is_some() || self.digest.is_some() {
            return;
        }
        let synced = self
            .inner
            .as_mut()
            .map(|inner| inner.finish_writing().map(|()| inner.digest()));
        match synced {
            Some(Ok(digest)) => self.digest = Some(digest),
            Some(Err(e)) => self.fail(e),
            None => {}
        }
        self.bar.finish();
    }
}

impl Receiver for BatchReceiver {
    fn attrs(&mut self, mode: u32, mtime: i64) {
        self.attrs = Some((mode, mtime));
    }

    fn start(&mut self, size: u64, offset: u64) -> io::Result<()> {
        self.size = size;
        self.received = offset;
        self.bar.start(size, offset);
        if let Some(inner) = self.inner.as_mut() {
            if let Err(e) = inner.start(size, offset) {
                self.fail(e);
            }
        }
        self.complete_if_done();
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        let n = chunk.len() as u64;
        if self.received.saturating_add(n) > self.size {
            // Past the announced size (the engine refuses it before us; a
            // `Remote` that does not is still not let write it): the file
            // fails, its digest is not taken, nothing is installed.
            self.digest = None;
            self.fail(io::Error::other("more data than the server announced"));
            return Ok(());
        }
        self.received += n;
        self.bar.inc(n);
        if self.error.is_none() {
            match self.inner.as_mut() {
                Some(inner) => {
                    if let Err(e) = inner.data(chunk) {
                        self.fail(e);
                    }
                }
                None => self.fail(io::Error::other("more data than the server announced")),
            }
        }
        self.complete_if_done();
        Ok(())
    }

    /// The inner receiver's own buffer (no copy), as [`data`](Self::data)
    /// would write there; anything `data` would refuse or record as an
    /// error goes the `data` way.
    fn room(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        if self.error.is_some() || self.received.saturating_add(len as u64) > self.size {
            return Ok(None);
        }
        match self.inner.as_mut().map(|inner| inner.make_room(len)) {
            Some(Ok(true)) => {}
            Some(Ok(false)) | None => return Ok(None),
            Some(Err(e)) => {
                self.fail(e);
                return Ok(None);
            }
        }
        Ok(self.inner.as_mut().map(|inner| inner.room_slice(len)))
    }

    fn filled(&mut self, len: usize) -> io::Result<()> {
        let n = len as u64;
        self.received += n;
        self.bar.inc(n);
        if let Some(inner) = self.inner.as_mut() {
            if let Err(e) = inner.filled(len) {
                self.fail(e);
            }
        }
        self.complete_if_done();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice stopped after its partials were made durable and before the
    /// renames (Ctrl-C, a crash) leaves every verified partial complete and
    /// nothing under a final name; a file whose digest failed leaves nothing.
    #[test]
    fn a_slice_is_durable_before_any_file_gets_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let bars: Bars = Rc::new(RefCell::new(Box::new(NoProgress)));
        let stop = Arc::new(AtomicBool::new(false));
        let contents: [&[u8]; 3] = [b"one", b"two two", b"three"];
        let group: Vec<(GetFile, u64)> = (0..3)
            .map(|i| {
                let f = GetFile {
                    remote: format!("r/f{i}"),
                    dest: dir.path().join(format!("f{i}")),
                    size: contents[i].len() as u64,
                    in_tree: true,
                };
                (f, 0)
            })
            .collect();
        let mut receivers: Vec<BatchReceiver> = group
            .iter()
            .map(|(f, _)| BatchReceiver::new(f, &bars, stop.clone(), false))
            .collect();
        for (r, data) in receivers.iter_mut().zip(contents) {
            r.start(data.len() as u64, 0).unwrap();
            r.data(data).unwrap();
        }
        let digest = |b: &[u8]| -> Digest { <md5::Md5 as md5::Digest>::digest(b).into() };
        // The server's digest of the second file does not match what came.
        let results = vec![
            Ok(digest(contents[0])),
            Ok([0; 16]),
            Ok(digest(contents[2])),
        ];
        let mut verified: Vec<Result<(), String>> = group
            .iter()
            .zip(receivers.iter_mut())
            .zip(results)
            .map(|(((f, _), r), result)| verify_get(f, r, result))
            .collect();
        assert!(verified[0].is_ok() && verified[1].is_err() && verified[2].is_ok());
        make_durable(&receivers, &mut verified, &group);
        assert!(verified[0].is_ok() && verified[2].is_ok());
        // Stopped here: complete partials, no final names, no bad partial.
        drop(receivers);
        for (i, (f, _)) in group.iter().enumerate() {
            assert!(
                !f.dest.exists(),
                "{} has its name too early",
                f.dest.display()
            );
            let partial = fs::read(partial_path(&f.dest));
            if i == 1 {
                assert!(partial.is_err(), "the mismatched partial is removed");
            } else {
                assert_eq!(partial.unwrap(), contents[i]);
            }
        }
    }

    #[test]
    fn names_from_the_server_cannot_climb_out() {
        assert_eq!(safe_rel("a/b c/é"), Some(PathBuf::from("a/b c/é")));
        assert_eq!(safe_rel("../etc/passwd"), None);
        assert_eq!(safe_rel("a/../../b"), None);
        assert_eq!(safe_rel("/etc/passwd"), None);
        assert_eq!(safe_rel(""), None);
        assert_eq!(safe_rel("a//b"), None);
        assert_eq!(safe_rel("./a"), None);
        assert_eq!(safe_rel("a/."), None);
        assert_eq!(safe_rel("x.ftpsh-part/y"), None);
        assert_eq!(safe_rel("a/b.ftpsh-part"), None);
    }
}
