//! The upload side: `put` beyond a single named file, and `mput`. Local
//! patterns expand here ([`local_glob`]), local trees are walked into a plan,
//! and the plan runs in pipelined slices, each file supplied by a
//! [`BatchSource`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::glob::local_glob;
use super::tally::Tally;
use super::{group_end, has_glob, is_fatal, is_partial, rjoin, Bars, FileBar, BIG};
use crate::local::expand_tilde;
use crate::session::{BatchPut, Digest, EntryKind, NoProgress, RemoteError, Source};
use crate::transfer::local_md5;
use crate::transfer::{put_file, remote_destination, Faithful};
use crate::transfer::{remote_partial_path, FileSource};
use crate::{CommandError, Context, Flow};
use ftpsh_core::display::{escape, escape_path, local_name, name_of_path};

struct PutFile {
    local: PathBuf,
    remote: String,
    size: u64,
}

#[derive(Default)]
struct PutPlan {
    /// Remote directories to make (`mkdir -p`), parents first.
    dirs: Vec<String>,
    files: Vec<PutFile>,
    /// Remote directories to look at for `-c`: walked (trees) or listed.
    scans: Vec<(String, bool)>,
    /// Links of the trees, made as links after the files: (remote path,
    /// target as stored, local path for messages).
    links: Vec<(String, String, PathBuf)>,
    /// The trees' directories with their source's mode and time, set after
    /// their contents (deepest first).
    dir_attrs: Vec<(String, u32, i64)>,
}

/// A directory's (device, inode): a link back to one that holds it is a loop.
fn dir_id(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

fn mode_and_time(meta: &fs::Metadata) -> (u32, i64) {
    use std::os::unix::fs::MetadataExt;
    (meta.mode() & 0o7777, meta.mtime())
}

/// `put [-c] [-r] LOCAL... [REMOTE]` and `mput`: everything but a single named
/// file without `-r`, which `put` does itself.
pub fn put(
    ctx: &mut Context,
    verb: &str,
    sources: &[String],
    remote: Option<&str>,
    recursive: bool,
    resume: bool,
    faithful: Faithful,
) -> Result<Flow, CommandError> {
    let mut tally = Tally::new(verb, recursive);
    let matches = expand_local(sources, &mut tally.failures);
    let several = sources.len() > 1 || matches.len() > 1;
    if several {
        if let Some(r) = remote {
            match ctx.remote.stat(r) {
                Ok(e) if e.kind == EntryKind::Dir => {}
                Ok(_) => {
                    return Err(CommandError::msg(format!(
                        "{}: not a directory (several files need a directory to go to)",
                        escape(r)
                    )))
                }
                Err(RemoteError::Refused(m)) => {
                    return Err(CommandError::msg(format!(
                        "{m} (several files need a directory to go to)"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let base = remote.unwrap_or(".");
    let mut plan = PutPlan::default();
    for path in matches {
        let shown = escape_path(&path).into_owned();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                tally.failures.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if meta.is_dir() {
            if !recursive {
                tally
                    .failures
                    .push(format!("{shown}: is a directory (use {verb} -r)"));
                continue;
            }
            match remote_tree_root(ctx, &path, remote, several)? {
                Ok(root) => {
                    plan.dirs.push(root.clone());
                    if path.file_name().is_some() {
                        let (mode, mtime) = mode_and_time(&meta);
                        plan.dir_attrs.push((root.clone(), mode, mtime));
                    }
                    if resume {
                        plan.scans.push((root.clone(), true));
                    }
                    let mut above = vec![dir_id(&meta)];
                    walk_local(
                        &path,
                        "",
                        &root,
                        faithful.follow,
                        &mut above,
                        &mut plan,
                        &mut tally.failures,
                    );
                }
                Err(m) => tally.failures.push(m),
            }
        } else if meta.is_file() {
            if !several && tally.failures.is_empty() {
                // One file: exactly what `put LOCAL [REMOTE]` does.
                let dest = remote_destination(ctx, &name_of_path(&path), remote)?;
                let line = put_file(ctx, &path, &dest, resume, faithful.preserve)?;
                writeln!(ctx.ui.info(), "{line}")?;
                return Ok(Flow::Continue);
            }
            let Some(name) = path.file_name().map(|n| name_of_path(Path::new(n))) else {
                tally.failures.push(format!("{shown}: not a file name"));
                continue;
            };
            if resume && !plan.scans.iter().any(|(d, deep)| d == base && !deep) {
                plan.scans.push((base.to_string(), false));
            }
            plan.files.push(PutFile {
                remote: rjoin(base, &name),
                local: path.clone(),
                size: meta.len(),
            });
        } else {
            tally.failures.push(format!("{shown}: not a regular file"));
        }
    }
    run_put(ctx, plan, resume, faithful.preserve, tally)
}

/// Expands local patterns; plain names are kept as they are (checked later).
fn expand_local(sources: &[String], failures: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for src in sources {
        let word = match expand_tilde(src) {
            Ok(w) => w,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        if !has_glob(&word) {
            out.push(local_name(&word));
            continue;
        }
        match local_glob(&word) {
            Ok(found) => {
                let before = out.len();
                out.extend(found.into_iter().filter(|p| {
                    !p.file_name()
                        .map(|n| is_partial(&n.to_string_lossy()))
                        .unwrap_or(false)
                }));
                if out.len() == before {
                    if Path::new(&word).symlink_metadata().is_ok() {
                        out.push(PathBuf::from(word));
                    } else {
                        failures.push(format!("{}: no match", escape(src)));
                    }
                }
            }
            // The matcher's message quotes the pattern as it was typed.
            Err(m) => failures.push(escape(&m).into_owned()),
        }
    }
    out
}

/// Where a local directory lands on the server, by the `cp -r` rule. The outer
/// error is the connection's; the inner one a failure of this source.
fn remote_tree_root(
    ctx: &mut Context,
    local: &Path,
    remote: Option<&str>,
    several: bool,
) -> Result<Result<String, String>, CommandError> {
    let name = local.file_name().map(|n| name_of_path(Path::new(n)));
    let within = |dir: &str| match &name {
        Some(n) => rjoin(dir, n),
        None => dir.to_string(),
    };
    Ok(match remote {
        None => Ok(within(".")),
        Some(r) if several => Ok(within(r)),
        Some(r) => match ctx.remote.stat(r) {
            Ok(e) if e.kind == EntryKind::Dir => Ok(within(r)),
            Ok(_) => Err(format!("{}: exists and is not a directory", escape(r))),
            Err(RemoteError::Refused(_)) => Ok(r.to_string()),
            Err(e) => return Err(e.into()),
        },
    })
}

/// Walks a local directory into the plan, parents before children. Links
/// are sent as links (their targets as stored); with `follow` (`-L`) what they
/// lead to is sent instead, and a link to nothing or back to a directory that
/// holds it (a loop) is skipped. Whatever is skipped (special files too) is a
/// failure naming it; unreadable directories are failures.
fn walk_local(
    dir: &Path,
    rel: &str,
    root: &str,
    follow: bool,
    above: &mut Vec<(u64, u64)>,
    plan: &mut PutPlan,
    failures: &mut Vec<String>,
) {
    let items = match fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) => {
            failures.push(format!("{}: {e}", escape_path(dir)));
            return;
        }
    };
    let mut items: Vec<_> = items.filter_map(Result::ok).collect();
    items.sort_by_key(|i| i.file_name());
    for item in items {
        let path = item.path();
        let shown = escape_path(&path).into_owned();
        let name = name_of_path(Path::new(&item.file_name())).into_owned();
        if is_partial(&name) {
            continue;
        }
        let child = rjoin(rel, &name);
        let meta = match path.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() && !follow => {
                match fs::read_link(&path) {
                    Ok(target) => {
                        let target = name_of_path(&target).into_owned();
                        plan.links.push((rjoin(root, &child), target, path))
                    }
                    Err(e) => failures.push(format!("{shown}: {e}")),
                }
                continue;
            }
            Ok(m) if m.file_type().is_symlink() => match fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => {
                    failures.push(format!("{shown}: skipped: a symbolic link to nothing"));
                    continue;
                }
            },
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if meta.is_dir() {
            let id = dir_id(&meta);
            if above.contains(&id) {
                failures.push(format!(
                    "{shown}: skipped: a link loop (it leads to a directory that holds it)"
                ));
                continue;
            }
            plan.dirs.push(rjoin(root, &child));
            let (mode, mtime) = mode_and_time(&meta);
            plan.dir_attrs.push((rjoin(root, &child), mode, mtime));
            above.push(id);
            walk_local(&path, &child, root, follow, above, plan, failures);
            above.pop();
        } else if meta.is_file() {
            plan.files.push(PutFile {
                local: path,
                remote: rjoin(root, &child),
                size: meta.len(),
            });
        } else {
            failures.push(format!("{shown}: skipped: not a regular file"));
        }
    }
}

/// Runs an upload plan: remote directories, the `-c` checks, then the files in
/// pipelined slices (big files and resumed ones one by one).
fn run_put(
    ctx: &mut Context,
    plan: PutPlan,
    resume: bool,
    preserve: bool,
    mut tally: Tally,
) -> Result<Flow, CommandError> {
    if plan.dirs.is_empty() && plan.files.is_empty() && plan.links.is_empty() {
        return tally.result();
    }
    let mut bad_dirs: Vec<String> = Vec::new();
    for dir in &plan.dirs {
        if dir == "." || bad_dirs.iter().any(|b| dir.starts_with(&format!("{b}/"))) {
            continue;
        }
        match ctx.remote.mkdir(dir, true) {
            Ok(()) => {}
            Err(RemoteError::Refused(m)) => {
                tally.failures.push(m);
                bad_dirs.push(dir.clone());
            }
            Err(e) => return tally.abort(ctx, e),
        }
    }

    // What the server already has, for -c.
    let mut there: HashMap<String, (EntryKind, u64)> = HashMap::new();
    for (dir, deep) in &plan.scans {
        let listed = if *deep {
            ctx.remote.walk(dir)
        } else {
            ctx.remote.list(dir)
        };
        match listed {
            Ok(entries) => {
                for e in entries {
                    there.insert(rjoin(dir, &e.name), (e.kind, e.size));
                }
            }
            Err(RemoteError::Refused(_)) => {}
            Err(e) => return tally.abort(ctx, e),
        }
    }

    // (file, resume its partial on the server)
    let mut todo: Vec<(PutFile, bool)> = Vec::new();
    for f in plan.files {
        if bad_dirs
            .iter()
            .any(|b| f.remote.starts_with(&format!("{b}/")))
        {
            continue;
        }
        if resume {
            if let Some(&(EntryKind::File, size)) = there.get(&f.remote) {
                if size == f.size {
                    match ctx.remote.md5(&f.remote) {
                        Ok(theirs) => match local_md5(&f.local) {
                            Ok(ours) if ours == theirs => {
                                tally.skipped += 1;
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tally
                                    .failures
                                    .push(format!("{}: {e}", escape_path(&f.local)));
                                continue;
                            }
                        },
                        Err(RemoteError::Refused(_)) => {}
                        Err(e) => return tally.abort(ctx, e),
                    }
                }
            }
            let partial = remote_partial_path(&f.remote);
            if there.contains_key(&partial) {
                todo.push((f, true));
                continue;
            }
        }
        todo.push((f, false));
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
        let end = group_end(&todo, start, |(f, partial)| *partial || f.size >= BIG);
        let group = &todo[start..end];
        start = end;
        // Open the slice's files; one that cannot be opened is not sent.
        let mut sources: Vec<(&PutFile, BatchSource)> = Vec::new();
        for (f, _) in group {
            match BatchSource::open(f, &bars, preserve) {
                Ok(s) => sources.push((f, s)),
                Err(e) => {
                    tally
                        .failures
                        .push(format!("{}: {e}", escape_path(&f.local)));
                    bars.borrow().file_done();
                }
            }
        }
        if sources.is_empty() {
            continue;
        }
        let results = if let [(f, source)] = sources.as_mut_slice() {
            match ctx.remote.upload(&f.remote, resume, source) {
                Err(e) if is_fatal(&e) => Err(e),
                r => Ok(vec![r]),
            }
        } else {
            let mut items: Vec<BatchPut> = sources
                .iter_mut()
                .map(|(f, s)| BatchPut {
                    remote: f.remote.clone(),
                    source: s,
                })
                .collect();
            ctx.remote.upload_batch(&mut items)
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        for ((f, mut source), result) in sources.into_iter().zip(results) {
            source.bar.finish();
            match (result, source.error.take()) {
                (Ok(()), None) => {
                    tally.files += 1;
                    tally.bytes += source.size.saturating_sub(source.offset);
                }
                (_, Some(e)) | (Err(RemoteError::Local(e)), None) => tally
                    .failures
                    .push(format!("{}: {e}", escape_path(&f.local))),
                (Err(RemoteError::Refused(m)), None) => tally.failures.push(m),
                (Err(e), None) => tally.failures.push(format!("{}: {e}", escape(&f.remote))),
            }
            bars.borrow().file_done();
        }
    }
    bars.borrow().finish();
    if stopped.is_none() {
        let under_bad = |p: &str| bad_dirs.iter().any(|b| p.starts_with(&format!("{b}/")));
        for (remote, target, local) in &plan.links {
            if under_bad(remote) {
                continue;
            }
            match ctx.remote.make_link(remote, target) {
                Ok(()) => tally.links += 1,
                Err(RemoteError::Refused(m)) => {
                    tally.failures.push(format!("{}: {m}", escape_path(local)))
                }
                Err(e) => return tally.abort(ctx, e),
            }
        }
        // Directories last, deepest first, once their contents are in place.
        let mut dirs: Vec<&(String, u32, i64)> = plan
            .dir_attrs
            .iter()
            .filter(|(d, ..)| d != "." && !under_bad(d) && !bad_dirs.contains(d))
            .collect();
        dirs.sort_by_key(|(d, ..)| std::cmp::Reverse(d.split('/').count()));
        for (dir, mode, mtime) in dirs {
            match ctx.remote.set_attrs(dir, *mode, *mtime, preserve) {
                Ok(()) => {}
                Err(RemoteError::Refused(m)) => tally.failures.push(m),
                Err(e) => return tally.abort(ctx, e),
            }
        }
    }
    match stopped {
        Some(e) => tally.abort(ctx, e),
        None => tally.finish(ctx),
    }
}

/// Supplies one file of a batch upload. A local read failure is kept for the
/// file's report instead of being returned (which would drop the pipelined
/// connection): the file's data simply ends early, with a digest that cannot
/// match, so the server refuses that one file and the batch goes on. At most the
/// announced size is sent, and the file is closed as soon as it is read.
struct BatchSource {
    /// First, so that dropping finishes the bar before the file is closed.
    bar: FileBar,
    inner: Option<FileSource>,
    size: u64,
    offset: u64,
    sent: u64,
    digest: Option<Digest>,
    error: Option<io::Error>,
    /// Mode, time and `-p`, told to the server.
    attrs: (u32, i64, bool),
}

impl BatchSource {
    fn open(f: &PutFile, bars: &Bars, preserve: bool) -> io::Result<Self> {
        // Never open a FIFO that replaced a file since the walk: it would block.
        let meta = fs::metadata(&f.local)?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let inner = FileSource::open(&f.local, Box::new(NoProgress))?.preserving(preserve);
        Ok(BatchSource {
            attrs: inner.attrs(),
            bar: FileBar::new(escape_path(&f.local).into_owned(), bars),
            size: inner.size(),
            inner: Some(inner),
            offset: 0,
            sent: 0,
            digest: None,
            error: None,
        })
    }

    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
        self.inner = None;
    }
}

impl Source for BatchSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn start(&mut self, offset: u64) -> io::Result<()> {
        self.offset = offset;
        self.sent = offset;
        self.bar.start(self.size, offset);
        if let Some(inner) = self.inner.as_mut() {
            if let Err(e) = inner.start(offset) {
                self.fail(e);
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let want = buf
            .len()
            .min((self.size - self.sent.min(self.size)) as usize);
        let n = if want == 0 {
            0
        } else {
            match inner.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(e);
                    return Ok(0);
                }
            }
        };
        if n == 0 {
            // The end: keep the digest, close the file.
            self.digest = Some(inner.digest());
            self.inner = None;
            return Ok(0);
        }
        self.sent += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn attrs(&self) -> (u32, i64, bool) {
        self.attrs
    }

    fn digest(&mut self) -> Digest {
        if self.error.is_some() {
            // Whatever was sent must not be installed.
            let mut d = self.digest.unwrap_or_default();
            d[0] ^= 0xff;
            return d;
        }
        match (self.digest, self.inner.as_mut()) {
            (Some(d), _) => d,
            (None, Some(inner)) => inner.digest(),
            (None, None) => Digest::default(),
        }
    }
}
