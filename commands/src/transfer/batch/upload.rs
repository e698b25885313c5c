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
use crate::session::{BatchPut, Digest, EntryKind, NoProgress, RemoteError, Source, Ui};
use crate::transfer::local_md5;
use crate::transfer::{put_file, remote_destination};
use crate::transfer::{remote_partial_path, FileSource};
use crate::{CommandError, Context, Flow};
use ftpsh_core::display::{escape, escape_path};

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
                    if resume {
                        plan.scans.push((root.clone(), true));
                    }
                    walk_local(
                        &mut *ctx.ui,
                        verb,
                        &path,
                        "",
                        &root,
                        &mut plan,
                        &mut tally.failures,
                    );
                }
                Err(m) => tally.failures.push(m),
            }
        } else if meta.is_file() {
            if !several && tally.failures.is_empty() {
                // One file: exactly what `put LOCAL [REMOTE]` does.
                let dest = remote_destination(ctx, &path.to_string_lossy(), remote)?;
                let line = put_file(ctx, &path, &dest, resume)?;
                writeln!(ctx.ui.info(), "{line}")?;
                return Ok(Flow::Continue);
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                tally
                    .failures
                    .push(format!("{shown}: the name is not valid UTF-8"));
                continue;
            };
            if resume && !plan.scans.iter().any(|(d, deep)| d == base && !deep) {
                plan.scans.push((base.to_string(), false));
            }
            plan.files.push(PutFile {
                remote: rjoin(base, name),
                local: path.clone(),
                size: meta.len(),
            });
        } else {
            tally.failures.push(format!("{shown}: not a regular file"));
        }
    }
    run_put(ctx, plan, resume, tally)
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
            out.push(PathBuf::from(word));
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
    let name = match local.file_name() {
        None => None,
        Some(n) => match n.to_str() {
            Some(n) => Some(n),
            None => {
                return Ok(Err(format!(
                    "{}: the name is not valid UTF-8",
                    escape_path(local)
                )))
            }
        },
    };
    let within = |dir: &str| match name {
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

/// Walks a local directory into the plan, parents before children. Links to
/// files are followed; links to directories, dangling links and special files
/// are skipped with a warning; unreadable directories are failures.
fn walk_local(
    ui: &mut dyn Ui,
    verb: &str,
    dir: &Path,
    rel: &str,
    root: &str,
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
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            failures.push(format!("{shown}: the name is not valid UTF-8"));
            continue;
        };
        if is_partial(&name) {
            continue;
        }
        let child = rjoin(rel, &name);
        let meta = match path.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => match fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(m) if m.is_dir() => {
                    ui.warn(
                        verb,
                        &format!("{shown}: skipped: a symbolic link to a directory (not followed)"),
                    );
                    continue;
                }
                Ok(_) => {
                    ui.warn(verb, &format!("{shown}: skipped: not a regular file"));
                    continue;
                }
                Err(_) => {
                    ui.warn(
                        verb,
                        &format!("{shown}: skipped: a symbolic link to nothing"),
                    );
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
            plan.dirs.push(rjoin(root, &child));
            walk_local(ui, verb, &path, &child, root, plan, failures);
        } else if meta.is_file() {
            plan.files.push(PutFile {
                local: path,
                remote: rjoin(root, &child),
                size: meta.len(),
            });
        } else {
            ui.warn(verb, &format!("{shown}: skipped: not a regular file"));
        }
    }
}

/// Runs an upload plan: remote directories, the `-c` checks, then the files in
/// pipelined slices (big files and resumed ones one by one).
fn run_put(
    ctx: &mut Context,
    plan: PutPlan,
    resume: bool,
    mut tally: Tally,
) -> Result<Flow, CommandError> {
    if plan.dirs.is_empty() && plan.files.is_empty() {
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

    let total: u64 = todo.iter().map(|(f, _)| f.size).sum();
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
            match BatchSource::open(f, &bars) {
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
}

impl BatchSource {
    fn open(f: &PutFile, bars: &Bars) -> io::Result<Self> {
        // Never open a FIFO that replaced a file since the walk: it would block.
        let meta = fs::metadata(&f.local)?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let inner = FileSource::open(&f.local, Box::new(NoProgress))?;
        Ok(BatchSource {
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
