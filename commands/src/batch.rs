//! Many files at once: globs, whole trees, `mget` and `mput`.
//!
//! `get` and `put` hand anything beyond a single named file to [`get`] and
//! [`put`] here. A transfer is planned first (patterns expanded, trees walked,
//! destinations worked out), then run:
//!
//! - **Globs** (`*`, `?`, `[...]`) expand on the server for downloads
//!   ([`crate::Remote::glob_entries`]) and locally for uploads ([`local_glob`]),
//!   one path component at a time, dot files only for a component that starts
//!   with a dot. A pattern that matches nothing is a failure naming it (unless a
//!   file of that very name exists). With several files the destination must be
//!   a directory.
//! - **Trees** (`-r`) follow `cp -r`: `get -r docs` makes `./docs`,
//!   `get -r docs DIR` makes `DIR/docs` when `DIR` is a directory and `DIR`
//!   otherwise; a source without a name (`.`, `..`, `/`) copies its contents into
//!   the destination. Empty directories are copied too. On the server, links that
//!   lead outside the root (or nowhere) are reported by the walk and skipped here
//!   with a warning. Locally, `put -r` follows links to files but skips links to
//!   directories (so a link loop cannot make it run forever) and dangling links
//!   and special files, each with a warning.
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

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use globset::{GlobBuilder, GlobMatcher};
use md5::{Digest as _, Md5};

use crate::session::{
    BatchGet, BatchProgress, BatchPut, Digest, EntryKind, NoProgress, Progress, Receiver,
    RemoteError, RemoteResult, Source, Ui,
};
use crate::transfer::{
    check_digest, human_bytes, partial_path, remote_basename, FileReceiver, FileSource, Timer,
    PARTIAL_SUFFIX,
};
use crate::verbs::get::{destination, get_file};
use crate::verbs::lcd::expand_tilde;
use crate::verbs::put::{put_file, remote_destination};
use crate::{CommandError, Context, Flow};

/// Files in one pipelined request batch.
pub const SLICE: usize = 64;
/// Files at least this large are transferred one by one.
pub const BIG: u64 = 1 << 20;

/// True when a word is a pattern rather than a plain name.
pub fn has_glob(word: &str) -> bool {
    word.contains(['*', '?', '['])
}

/// Splits `SOURCE... [DEST]`: one word is a source; with more, the last is the
/// destination.
pub fn split_destination(paths: &[String]) -> (&[String], Option<&str>) {
    match paths {
        [_] => (paths, None),
        [sources @ .., dest] => (sources, Some(dest.as_str())),
        [] => (paths, None),
    }
}

fn is_partial(name: &str) -> bool {
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

/// A relative path from the server as a local relative path, or `None` when it
/// could climb out of the destination (`..`, absolute, empty components).
fn safe_rel(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return None;
        }
        out.push(part);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// A source without a name of its own copies its contents, not itself.
fn nameless(name: &str) -> bool {
    matches!(name, "" | "." | "..")
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// MD5 of a local file.
fn local_md5(path: &Path) -> io::Result<Digest> {
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
    Ok(hasher.finalize().into())
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

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
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

/// The error of a verb whose files failed: one line per failure.
fn failure_error(failures: &[String]) -> CommandError {
    match failures {
        [one] => CommandError::msg(one),
        many => CommandError::msg(format!("{} failed:\n  {}", many.len(), many.join("\n  "))),
    }
}

/// What a batch came to, for the summary line and the verb's result.
struct Tally {
    /// The command that resumes this one (`get -r -c`), for the abort message.
    again: String,
    timer: Timer,
    files: u64,
    bytes: u64,
    skipped: u64,
    failures: Vec<String>,
}

impl Tally {
    fn new(verb: &str, recursive: bool) -> Self {
        Tally {
            again: format!("{verb}{} -c", if recursive { " -r" } else { "" }),
            timer: Timer::start(),
            files: 0,
            bytes: 0,
            skipped: 0,
            failures: Vec::new(),
        }
    }

    /// `12 files, 3.4 MiB in 0.21 s (16.2 MiB/s), md5 ok, 0 failed`
    fn summary(&self) -> String {
        let secs = self.timer.elapsed().as_secs_f64().max(1e-6);
        let mut line = format!(
            "{}, {} in {secs:.2} s ({}/s), md5 ok",
            plural(self.files, "file"),
            human_bytes(self.bytes),
            human_bytes((self.bytes as f64 / secs) as u64)
        );
        if self.skipped > 0 {
            line.push_str(&format!(", {} already complete", self.skipped));
        }
        line.push_str(&format!(", {} failed", self.failures.len()));
        line
    }

    /// Prints the summary; fails naming each failed file, if any.
    fn finish(self, ctx: &mut Context) -> Result<Flow, CommandError> {
        writeln!(ctx.ui.out(), "{}", self.summary())?;
        self.result()
    }

    fn result(self) -> Result<Flow, CommandError> {
        if self.failures.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(failure_error(&self.failures))
        }
    }

    /// The batch stopped (connection lost, Ctrl-C): summary, then why, what to
    /// do, and the files that had failed before.
    fn abort(self, ctx: &mut Context, e: RemoteError) -> Result<Flow, CommandError> {
        writeln!(ctx.ui.out(), "{}", self.summary())?;
        let mut message = format!(
            "{e}; the files done so far are installed and partial files are kept: \
             '{}' with the same arguments resumes",
            self.again
        );
        for f in &self.failures {
            message.push_str("\n  ");
            message.push_str(f);
        }
        Err(CommandError::msg(message))
    }
}

/// Errors that end a batch rather than one file of it.
fn is_fatal(e: &RemoteError) -> bool {
    matches!(e, RemoteError::ConnectionLost(_) | RemoteError::Interrupted)
}

type Bars = Rc<RefCell<Box<dyn BatchProgress>>>;

// ---------------------------------------------------------------------------
// Downloads
// ---------------------------------------------------------------------------

/// A remote source after pattern expansion.
struct Match {
    path: String,
    kind: EntryKind,
    size: u64,
}

struct GetFile {
    remote: String,
    dest: PathBuf,
    size: u64,
}

#[derive(Default)]
struct GetPlan {
    dirs: Vec<PathBuf>,
    files: Vec<GetFile>,
}

/// `get [-c] [-r] REMOTE... [LOCAL]` and `mget`: everything but a single named
/// file without `-r`, which `get` does itself.
pub fn get(
    ctx: &mut Context,
    verb: &str,
    sources: &[String],
    local: Option<&str>,
    recursive: bool,
    resume: bool,
) -> Result<Flow, CommandError> {
    let mut tally = Tally::new(verb, recursive);
    let matches = expand_remote(ctx, sources, &mut tally.failures)?;
    let local = local.map(expand_tilde);
    let several = sources.len() > 1 || matches.len() > 1;
    if several {
        let dir = local.as_deref().unwrap_or(".");
        if !Path::new(dir).is_dir() {
            return Err(CommandError::msg(format!(
                "{dir}: not a directory (several files need a directory to go to)"
            )));
        }
    }
    let mut plan = GetPlan::default();
    for m in &matches {
        match m.kind {
            EntryKind::Dir if recursive => match local_tree_root(&m.path, local.as_deref()) {
                Ok(root) => plan_remote_tree(ctx, verb, &m.path, root, &mut plan, &mut tally)?,
                Err(msg) => tally.failures.push(msg),
            },
            EntryKind::Dir => tally
                .failures
                .push(format!("{}: is a directory (use {verb} -r)", m.path)),
            _ if !several && tally.failures.is_empty() => {
                // One file: exactly what `get REMOTE [LOCAL]` does.
                let dest = destination(&m.path, local.as_deref());
                let line = get_file(ctx, &m.path, &dest, resume)?;
                writeln!(ctx.ui.out(), "{line}")?;
                return Ok(Flow::Continue);
            }
            _ => {
                let name = remote_basename(&m.path);
                if nameless(name) || name.contains('\0') {
                    tally.failures.push(format!("{}: not a file name", m.path));
                    continue;
                }
                let dest = match local.as_deref() {
                    Some(dir) => Path::new(dir).join(name),
                    None => PathBuf::from(name),
                };
                plan.files.push(GetFile {
                    remote: m.path.clone(),
                    dest,
                    size: m.size,
                });
            }
        }
    }
    run_get(ctx, plan, resume, tally)
}

/// Expands patterns on the server and looks up plain names; what cannot be
/// found becomes a failure line.
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
            let before = out.len();
            out.extend(
                found
                    .into_iter()
                    .filter(|e| !is_partial(&e.name))
                    .map(|e| Match {
                        path: e.name,
                        kind: e.kind,
                        size: e.size,
                    }),
            );
            if out.len() > before {
                continue;
            }
            // No match: a file whose name merely looks like a pattern will do.
            match ctx.remote.stat(src) {
                Ok(e) => out.push(Match {
                    path: src.clone(),
                    kind: e.kind,
                    size: e.size,
                }),
                Err(RemoteError::Refused(_)) => failures.push(format!("{src}: no match")),
                Err(e) => return Err(e.into()),
            }
        } else {
            match ctx.remote.stat(src) {
                Ok(e) => out.push(Match {
                    path: src.clone(),
                    kind: e.kind,
                    size: e.size,
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
    match local {
        None if contents_only => Ok(PathBuf::from(".")),
        None => Ok(PathBuf::from(name)),
        Some(l) => {
            let path = Path::new(l);
            if path.is_dir() {
                Ok(if contents_only {
                    path.to_path_buf()
                } else {
                    path.join(name)
                })
            } else if path.symlink_metadata().is_ok() {
                Err(format!("{l}: exists and is not a directory"))
            } else {
                Ok(path.to_path_buf())
            }
        }
    }
}

/// Walks a remote directory into the plan: its directories (empty ones too) and
/// files; links out of the root and special files are skipped with a warning.
fn plan_remote_tree(
    ctx: &mut Context,
    verb: &str,
    remote: &str,
    root: PathBuf,
    plan: &mut GetPlan,
    tally: &mut Tally,
) -> Result<(), CommandError> {
    let entries = match ctx.remote.walk(remote) {
        Ok(e) => e,
        Err(RemoteError::Refused(m)) => {
            tally.failures.push(m);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    plan.dirs.push(root.clone());
    for e in entries {
        let path = rjoin(remote, &e.name);
        let Some(rel) = safe_rel(&e.name) else {
            tally
                .failures
                .push(format!("{path}: unsafe name from the server, skipped"));
            continue;
        };
        match e.kind {
            EntryKind::Dir => plan.dirs.push(root.join(rel)),
            EntryKind::File if is_partial(&e.name) => {}
            EntryKind::File => plan.files.push(GetFile {
                remote: path,
                dest: root.join(rel),
                size: e.size,
            }),
            EntryKind::Symlink => ctx.ui.warn(
                verb,
                &format!("{path}: skipped: a symbolic link leading outside the served root or to nothing"),
            ),
            EntryKind::Other => {
                ctx.ui
                    .warn(verb, &format!("{path}: skipped: not a regular file"))
            }
        }
    }
    Ok(())
}

/// Runs a download plan: directories, the `-c` checks, then the files in
/// pipelined slices.
fn run_get(
    ctx: &mut Context,
    plan: GetPlan,
    resume: bool,
    mut tally: Tally,
) -> Result<Flow, CommandError> {
    if plan.dirs.is_empty() && plan.files.is_empty() {
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
                    dir.display()
                ));
                bad_dirs.push(dir);
            }
        }
    }

    let mut todo: Vec<(GetFile, u64)> = Vec::new();
    let mut claimed: BTreeSet<PathBuf> = BTreeSet::new();
    for f in plan.files {
        if bad_dirs.iter().any(|b| f.dest.starts_with(b)) {
            continue;
        }
        if !claimed.insert(f.dest.clone()) {
            tally.failures.push(format!(
                "{}: skipped: {} is also the destination of an earlier file",
                f.remote,
                f.dest.display()
            ));
            continue;
        }
        if f.dest.is_dir() {
            tally
                .failures
                .push(format!("{}: is a directory", f.dest.display()));
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
            offset = fs::metadata(partial_path(&f.dest))
                .map(|m| m.len())
                .unwrap_or(0);
            if offset > f.size {
                offset = 0;
            }
        }
        todo.push((f, offset));
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
        let end = group_end(&todo, start, |(f, _)| f.size >= BIG);
        let group = &todo[start..end];
        start = end;
        let mut receivers: Vec<BatchReceiver> = group
            .iter()
            .map(|(f, _)| BatchReceiver::new(f, &bars))
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
        for (((f, offset), mut r), result) in group.iter().zip(receivers).zip(results) {
            match settle_get(f, *offset, &mut r, result) {
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
    sync_dirs(&touched);
    match stopped {
        Some(e) => tally.abort(ctx, e),
        None => tally.finish(ctx),
    }
}

/// Verifies and installs one received file; returns the bytes moved.
fn settle_get(
    f: &GetFile,
    offset: u64,
    r: &mut BatchReceiver,
    result: RemoteResult<Digest>,
) -> Result<u64, String> {
    r.finish_bar();
    let theirs = match result {
        Ok(d) => d,
        Err(RemoteError::Refused(m)) => return Err(m),
        Err(e) => return Err(format!("{}: {e}", f.remote)),
    };
    if let Some(e) = r.error.take() {
        return Err(format!("{}: {e}", f.dest.display()));
    }
    let Some(ours) = r.digest else {
        return Err(format!(
            "{}: received {} of {} bytes; the partial file is kept",
            f.remote, r.received, r.size
        ));
    };
    let partial = partial_path(&f.dest);
    if let Err(m) = check_digest(&theirs, &ours) {
        let _ = fs::remove_file(&partial);
        return Err(format!("{}: {m}; nothing was installed", f.remote));
    }
    fs::rename(&partial, &f.dest)
        .map_err(|e| format!("{}: cannot install: {e}", f.dest.display()))?;
    Ok(r.size.saturating_sub(offset))
}

/// Receives one file of a batch. A local failure (cannot create or write the
/// partial) is kept for the file's report instead of being returned, so that it
/// does not break the pipelined connection for the files after it: the rest of
/// its data is read and dropped. The partial is fsynced and closed as soon as its
/// last byte is written, so a slice holds at most one open file at a time.
struct BatchReceiver {
    name: String,
    inner: Option<FileReceiver<'static>>,
    bars: Bars,
    bar: Option<Box<dyn Progress>>,
    size: u64,
    received: u64,
    digest: Option<Digest>,
    error: Option<io::Error>,
}

impl BatchReceiver {
    fn new(f: &GetFile, bars: &Bars) -> Self {
        BatchReceiver {
            name: f.remote.clone(),
            inner: Some(FileReceiver::new(
                partial_path(&f.dest),
                false,
                Box::new(|_| Box::new(NoProgress)),
            )),
            bars: Rc::clone(bars),
            bar: None,
            size: 0,
            received: 0,
            digest: None,
            error: None,
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
        self.inner = None;
    }

    /// After the last byte: fsync, take the digest, close the file.
    fn complete_if_done(&mut self) {
        if self.received != self.size || self.error.is_some() {
            return;
        }
        if let Some(mut inner) = self.inner.take() {
            match inner.sync() {
                Ok(()) => self.digest = Some(inner.digest()),
                Err(e) => self.fail(e),
            }
        }
        self.finish_bar();
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

impl Drop for BatchReceiver {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

impl Receiver for BatchReceiver {
    fn start(&mut self, size: u64, offset: u64) -> io::Result<()> {
        self.size = size;
        self.received = offset;
        let bar = self.bars.borrow_mut().file(&self.name, size);
        bar.set_position(offset);
        self.bars.borrow().inc(offset);
        self.bar = Some(bar);
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
        self.received += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        self.bars.borrow().inc(n);
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
}

// ---------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------

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
                        "{r}: not a directory (several files need a directory to go to)"
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
        let shown = path.display().to_string();
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
                let dest = remote_destination(ctx, &shown, remote)?;
                let line = put_file(ctx, &path, &dest, resume)?;
                writeln!(ctx.ui.out(), "{line}")?;
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
        let word = expand_tilde(src);
        if !has_glob(&word) {
            out.push(PathBuf::from(word));
            continue;
        }
        match local_glob(&word) {
            Ok(found) => {
                let before = out.len();
                out.extend(found.into_iter().filter(|p| {
                    !p.file_name()
                        .map(|n| n.to_string_lossy().ends_with(PARTIAL_SUFFIX))
                        .unwrap_or(false)
                }));
                if out.len() == before {
                    if Path::new(&word).symlink_metadata().is_ok() {
                        out.push(PathBuf::from(word));
                    } else {
                        failures.push(format!("{src}: no match"));
                    }
                }
            }
            Err(m) => failures.push(m),
        }
    }
    out
}

fn matcher(component: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(component)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{component}: invalid pattern: {}", e.kind()))
}

/// Expands a pattern against the local file system one component at a time,
/// as a shell does: matches come back in the pattern's form (relative stays
/// relative), sorted; `*` does not match a leading dot.
pub fn local_glob(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let mut found = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if !has_glob(component) {
            for base in &found {
                next.push(base.join(component));
            }
            found = next;
            continue;
        }
        let m = matcher(component)?;
        for base in &found {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(items) = fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = items
                .filter_map(Result::ok)
                .map(|i| i.file_name())
                .filter(|n| {
                    (!n.to_string_lossy().starts_with('.') || component.starts_with('.'))
                        && m.is_match(Path::new(n))
                })
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_ok());
    Ok(found)
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
                    local.display()
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
            Ok(_) => Err(format!("{r}: exists and is not a directory")),
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
            failures.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut items: Vec<_> = items.filter_map(Result::ok).collect();
    items.sort_by_key(|i| i.file_name());
    for item in items {
        let path = item.path();
        let shown = path.display().to_string();
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
                                tally.failures.push(format!("{}: {e}", f.local.display()));
                                continue;
                            }
                        },
                        Err(RemoteError::Refused(_)) => {}
                        Err(e) => return tally.abort(ctx, e),
                    }
                }
            }
            let partial = format!("{}{PARTIAL_SUFFIX}", f.remote);
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
                    tally.failures.push(format!("{}: {e}", f.local.display()));
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
            source.finish_bar();
            match (result, source.error.take()) {
                (Ok(()), None) => {
                    tally.files += 1;
                    tally.bytes += source.size.saturating_sub(source.offset);
                }
                (_, Some(e)) | (Err(RemoteError::Local(e)), None) => {
                    tally.failures.push(format!("{}: {e}", f.local.display()))
                }
                (Err(RemoteError::Refused(m)), None) => tally.failures.push(m),
                (Err(e), None) => tally.failures.push(format!("{}: {e}", f.remote)),
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
    name: String,
    inner: Option<FileSource>,
    bars: Bars,
    bar: Option<Box<dyn Progress>>,
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
            name: f.local.display().to_string(),
            size: inner.size(),
            inner: Some(inner),
            bars: Rc::clone(bars),
            bar: None,
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

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

impl Drop for BatchSource {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

impl Source for BatchSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn start(&mut self, offset: u64) -> io::Result<()> {
        self.offset = offset;
        self.sent = offset;
        let bar = self.bars.borrow_mut().file(&self.name, self.size);
        bar.set_position(offset);
        self.bars.borrow().inc(offset);
        self.bar = Some(bar);
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
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
        self.bars.borrow().inc(n as u64);
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
    fn names_from_the_server_cannot_climb_out() {
        assert_eq!(safe_rel("a/b c/é"), Some(PathBuf::from("a/b c/é")));
        assert_eq!(safe_rel("../etc/passwd"), None);
        assert_eq!(safe_rel("a/../../b"), None);
        assert_eq!(safe_rel("/etc/passwd"), None);
        assert_eq!(safe_rel(""), None);
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

    #[test]
    fn local_globs_expand_per_component() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
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
        let base = p.to_str().unwrap();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.into_iter()
                .map(|x| x.strip_prefix(p).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            rel(local_glob(&format!("{base}/*.log")).unwrap()),
            ["a.log", "b.log"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/.*.log")).unwrap()),
            [".hidden.log"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/[bc].*")).unwrap()),
            ["b.log", "c.txt"]
        );
        assert_eq!(
            rel(local_glob(&format!("{base}/data/*/?.log")).unwrap()),
            ["data/2026-01/x.log"]
        );
        assert!(local_glob(&format!("{base}/*.none")).unwrap().is_empty());
        assert!(local_glob(&format!("{base}/[")).is_err());
    }

    #[test]
    fn the_summary_counts_files_bytes_and_failures() {
        let mut t = Tally::new("get", true);
        t.files = 12;
        t.bytes = 3 << 20;
        let line = t.summary();
        assert!(line.starts_with("12 files, 3.0 MiB in "), "{line}");
        assert!(line.ends_with("/s), md5 ok, 0 failed"), "{line}");
        t.files = 1;
        t.skipped = 2;
        t.failures.push("x: gone".into());
        let line = t.summary();
        assert!(line.starts_with("1 file, "), "{line}");
        assert!(line.ends_with(", 2 already complete, 1 failed"), "{line}");
    }

    #[test]
    fn completion_knows_which_side_each_argument_is_on() {
        use crate::ArgKind::{LocalPath, RemotePath};
        let r = crate::Registry::with_builtins();
        let kinds = |v: &str| r.verbs.get(v).unwrap().args().to_vec();
        assert_eq!(kinds("get"), [RemotePath, LocalPath]);
        assert_eq!(kinds("put"), [LocalPath, RemotePath]);
        assert_eq!(kinds("mget"), [RemotePath]);
        assert_eq!(kinds("mput"), [LocalPath]);
    }

    #[test]
    fn several_failures_make_one_line_each() {
        let e = failure_error(&["a: gone".into(), "b: denied".into()]).to_string();
        assert_eq!(e, "2 failed:\n  a: gone\n  b: denied");
        let e = failure_error(&["a: gone".into()]).to_string();
        assert_eq!(e, "a: gone");
    }
}
