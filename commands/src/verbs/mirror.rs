use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::session::{Entry, EntryKind, RemoteError};
use crate::transfer::batch::is_partial;
use crate::transfer::batch::tally::{failure_error, plural};
use crate::transfer::{
    get_file, local_md5, put_file, remote_basename, set_dir_attrs, StoppedMidway,
};
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::{escape, escape_path, local_name, name_of_path};

/// `mirror`: make a directory the same as another, moving only what differs.
pub struct Mirror;

#[derive(Parser)]
struct Args {
    /// Reverse: SOURCE is local and TARGET remote.
    #[arg(short = 'R')]
    reverse: bool,
    /// Remove from TARGET what SOURCE no longer has.
    #[arg(long = "delete")]
    delete: bool,
    /// Print the plan; change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Preserve: keep permission bits and modification times.
    #[arg(short = 'p')]
    preserve: bool,
    /// The directory to copy from (remote; local with -R).
    #[arg(value_name = "SOURCE", value_hint = hint::REMOTE_PATH)]
    source: String,
    /// The directory to make the same (local; remote with -R). Default:
    /// SOURCE's name in the current directory of the other side.
    #[arg(value_name = "TARGET", value_hint = hint::LOCAL_PATH)]
    target: Option<String>,
}

impl Command for Mirror {
    fn name(&self) -> &'static str {
        "mirror"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "make a local directory the same as a remote one (-R: the other way)"
    }
    fn details(&self) -> &'static str {
        "Files whose size differs are sent; where only the time differs, MD5 decides\n\
         (equal: nothing sent; -p fixes the time). Each file is verified and installed\n\
         atomically, as by get and put. Links are copied as links. --delete removes\n\
         what SOURCE no longer has; --dry-run prints the plan and changes nothing. A\n\
         second run with nothing changed sends nothing and says so. TARGET must be a\n\
         directory or not exist."
    }
    fn example(&self) -> &'static str {
        "mirror --delete site"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let source = if a.reverse {
            expand_tilde(&a.source)?
        } else {
            a.source.clone()
        };
        let name = remote_basename(&source).to_string();
        let target = match &a.target {
            Some(t) if !a.reverse => expand_tilde(t)?,
            Some(t) => t.clone(),
            None if matches!(name.as_str(), "" | "." | "..") => ".".to_string(),
            None => name,
        };
        let mut m = Mirroring {
            reverse: a.reverse,
            preserve: a.preserve,
            dry_run: a.dry_run,
            source,
            target,
            sent: 0,
            bytes: 0,
            deleted: 0,
            same: 0,
            failures: Vec::new(),
        };
        m.run(ctx, a.delete)
    }
}

struct Mirroring {
    reverse: bool,
    preserve: bool,
    dry_run: bool,
    source: String,
    target: String,
    sent: u64,
    bytes: u64,
    deleted: u64,
    same: u64,
    failures: Vec<String>,
}

/// A tree's entries by relative path.
type Listing = BTreeMap<String, Entry>;

fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// A local path's entry (links not followed).
fn local_entry(name: String, path: &Path) -> std::io::Result<Entry> {
    let meta = fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let (kind, target) = if ft.is_dir() {
        (EntryKind::Dir, String::new())
    } else if ft.is_file() {
        (EntryKind::File, String::new())
    } else if ft.is_symlink() {
        let t = fs::read_link(path)?;
        (EntryKind::Symlink, name_of_path(&t).into_owned())
    } else {
        (EntryKind::Other, String::new())
    };
    Ok(Entry {
        name,
        kind,
        size: meta.len(),
        mtime: meta.mtime(),
        mode: meta.mode() & 0o7777,
        target,
    })
}

/// Every entry below a local directory, links not followed.
fn walk_local(dir: &Path, rel: &str, out: &mut Listing, failures: &mut Vec<String>) {
    let items = match fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) => {
            failures.push(format!("{}: {e}", escape_path(dir)));
            return;
        }
    };
    for item in items.filter_map(Result::ok) {
        let name = name_of_path(Path::new(&item.file_name())).into_owned();
        if is_partial(&name) {
            continue;
        }
        let child = join(rel, &name).trim_start_matches('/').to_string();
        match local_entry(child.clone(), &item.path()) {
            Ok(e) => {
                let is_dir = e.kind == EntryKind::Dir;
                out.insert(child.clone(), e);
                if is_dir {
                    walk_local(&item.path(), &child, out, failures);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", escape_path(&item.path()))),
        }
    }
}

impl Mirroring {
    /// The entries of one side's tree: `None` when it does not exist; an
    /// error when it is not a directory.
    fn list(
        &mut self,
        ctx: &mut Context,
        remote: bool,
        path: &str,
    ) -> Result<Option<Listing>, CommandError> {
        let mut out = Listing::new();
        if remote {
            match ctx.remote.stat(path) {
                Ok(e) if e.kind == EntryKind::Dir => {}
                Ok(_) => {
                    return Err(CommandError::msg(format!(
                        "{}: exists and is not a directory; nothing was changed",
                        escape(path)
                    )))
                }
                Err(RemoteError::Refused(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // The server's names are checked as `get -r` checks them: each
            // stays beneath the target, and nothing is beneath a link (an
            // honest walk lists nothing there).
            let mut links: std::collections::HashSet<std::path::PathBuf> = Default::default();
            for e in ctx.remote.walk_links(path, false)? {
                if e.is_problem() {
                    self.failures
                        .push(escape(&join(path, &e.name)).into_owned());
                    continue;
                }
                if is_partial(&e.name) {
                    continue;
                }
                let rel = crate::transfer::batch::safe_rel(&e.name);
                let beneath_link = rel
                    .as_ref()
                    .is_some_and(|r| r.ancestors().skip(1).any(|a| links.contains(a)));
                if rel.is_none() || beneath_link {
                    self.failures.push(format!(
                        "{}: '{}': unsafe path from the server (it would not stay beneath \
                         the target), skipped",
                        escape(path),
                        escape(&e.name)
                    ));
                    continue;
                }
                if let (EntryKind::Symlink, Some(rel)) = (e.kind, rel) {
                    links.insert(rel);
                }
                out.insert(e.name.clone(), e);
            }
        } else {
            let p = local_name(path);
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(CommandError::msg(format!(
                        "{}: exists and is not a directory; nothing was changed",
                        escape(path)
                    )))
                }
                Err(_) if fs::symlink_metadata(&p).is_ok() => {
                    return Err(CommandError::msg(format!(
                        "{}: a link to nothing; nothing was changed",
                        escape(path)
                    )))
                }
                Err(_) => return Ok(None),
            }
            walk_local(&p, "", &mut out, &mut self.failures);
        }
        Ok(Some(out))
    }

    fn src_path(&self, rel: &str) -> String {
        join(&self.source, rel)
    }
    fn dst_path(&self, rel: &str) -> String {
        join(&self.target, rel)
    }

    fn run(&mut self, ctx: &mut Context, delete: bool) -> Result<Flow, CommandError> {
        let (src_remote, dst_remote) = (!self.reverse, self.reverse);
        let source = self.source.clone();
        let target = self.target.clone();
        let before = self.failures.len();
        let listed = self.list(ctx, src_remote, &source)?;
        // What the source could not list is not "gone from the source":
        // nothing is deleted after such a failure (as rsync does).
        let incomplete = self.failures.len() > before;
        let skip_deletions = delete && incomplete;
        let delete = delete && !incomplete;
        if skip_deletions {
            self.failures.push(format!(
                "{}: deletions skipped: the source could not be listed whole",
                escape(&source)
            ));
        }
        let Some(src) = listed else {
            return Err(CommandError::msg(format!(
                "{}: no such directory",
                escape(&source)
            )));
        };
        let dst = self.list(ctx, dst_remote, &target)?;
        let exists = dst.is_some();
        let dst = dst.unwrap_or_default();
        let mut out = Vec::new();

        if !exists {
            out.push(format!("mkdir {}", escape(&target)));
            if !self.dry_run {
                self.mkdir(ctx, "")?;
            }
        }
        // Deletions first (deepest first), so that a file can replace a
        // directory of the same name and the other way round.
        let mut doomed: Vec<&String> = dst
            .iter()
            .filter(|(rel, e)| match src.get(*rel) {
                None => delete,
                Some(s) => s.kind != e.kind,
            })
            .map(|(rel, _)| rel)
            .collect();
        doomed.sort_by_key(|rel| std::cmp::Reverse(rel.matches('/').count()));
        let mut removed: Vec<String> = Vec::new();
        // What could not be removed (its failure is reported): nothing is
        // made at it or beneath it, as if it were still to be gone through.
        let mut stuck: Vec<String> = Vec::new();
        for rel in doomed {
            if removed.iter().any(|r| rel.starts_with(&format!("{r}/"))) {
                continue;
            }
            out.push(format!("delete {}", escape(&self.dst_path(rel))));
            if self.dry_run || self.remove(ctx, rel, dst[rel].kind == EntryKind::Dir)? {
                removed.push(rel.clone());
            } else {
                stuck.push(rel.clone());
            }
        }
        let at_or_beneath = |rel: &str, list: &[String]| {
            list.iter()
                .any(|r| rel == r || rel.starts_with(&format!("{r}/")))
        };
        let is_removed = |rel: &str| at_or_beneath(rel, &removed);
        // Source entries left alone: their directories get no mode or time
        // either (through a link, that would be a directory outside).
        let mut skipped: HashSet<&str> = HashSet::new();
        for (rel, s) in &src {
            if at_or_beneath(rel, &stuck) {
                skipped.insert(rel);
                continue;
            }
            // Locally, nothing is written through a link already there (one
            // an earlier mirror made, say): its target is only data.
            if !self.reverse {
                if let Some(link) = self.local_link_above(rel, &dst, &removed) {
                    self.failures.push(format!(
                        "{}: skipped: {} is a symbolic link here (not gone through)",
                        escape(&self.src_path(rel)),
                        escape(&self.dst_path(&link))
                    ));
                    skipped.insert(rel);
                    continue;
                }
            }
            let there = dst.get(rel).filter(|_| !is_removed(rel));
            match s.kind {
                EntryKind::Dir => {
                    if there.is_none() {
                        out.push(format!("mkdir {}", escape(&self.dst_path(rel))));
                        if !self.dry_run {
                            self.mkdir(ctx, rel)?;
                        }
                    }
                }
                EntryKind::File => {
                    let send = match there {
                        None => true,
                        Some(d) if d.size != s.size => true,
                        Some(d) if d.mtime == s.mtime => false,
                        Some(_) => !self.same_md5(ctx, rel)?,
                    };
                    if send {
                        out.push(format!("send {}", escape(&self.dst_path(rel))));
                        if !self.dry_run {
                            self.send(ctx, rel, s.size)?;
                        }
                    } else {
                        self.same += 1;
                        if self.preserve && there.is_some_and(|d| d.mtime != s.mtime) {
                            out.push(format!("touch {}", escape(&self.dst_path(rel))));
                            if !self.dry_run {
                                self.attrs(ctx, rel, s)?;
                            }
                        }
                    }
                }
                EntryKind::Symlink => {
                    if there.is_none_or(|d| d.target != s.target) {
                        out.push(format!(
                            "link {} -> {}",
                            escape(&self.dst_path(rel)),
                            escape(&s.target)
                        ));
                        if !self.dry_run {
                            self.link(ctx, rel, &s.target)?;
                        }
                    }
                }
                EntryKind::Other => self.failures.push(format!(
                    "{}: skipped: not a regular file",
                    escape(&self.src_path(rel))
                )),
            }
        }
        if !self.dry_run {
            // Directories' modes and times once their contents are in place.
            let mut dirs: Vec<(&String, &Entry)> = src
                .iter()
                .filter(|(rel, e)| e.kind == EntryKind::Dir && !skipped.contains(rel.as_str()))
                .collect();
            dirs.sort_by_key(|(rel, _)| std::cmp::Reverse(rel.matches('/').count()));
            for (rel, e) in dirs {
                self.attrs(ctx, rel, e)?;
            }
        }

        if self.dry_run {
            // The plan is what was asked for: printed with -q too.
            let w = ctx.ui.out();
            for line in &out {
                writeln!(w, "{line}")?;
            }
            if out.is_empty() {
                writeln!(w, "dry run: nothing to do, {} files up to date", self.same)?;
            } else {
                writeln!(w, "dry run: nothing was changed")?;
            }
        } else if self.sent == 0 && self.deleted == 0 && out.is_empty() {
            // The summary is about the result, as a transfer's line: not with -q.
            writeln!(
                ctx.ui.info(),
                "nothing to do: {} up to date, nothing sent",
                plural(self.same, "file")
            )?;
        } else {
            writeln!(
                ctx.ui.info(),
                "{} sent ({}), {} deleted, {} up to date, {} failed",
                plural(self.sent, "file"),
                crate::transfer::human_bytes(self.bytes),
                self.deleted,
                self.same,
                self.failures.len()
            )?;
        }
        if self.failures.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(failure_error(&self.failures))
        }
    }

    /// The first directory above `rel` in the local target that is a link
    /// (and still there).
    fn local_link_above(&self, rel: &str, dst: &Listing, removed: &[String]) -> Option<String> {
        let mut at = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            at = join(&at, part).trim_start_matches('/').to_string();
            if removed.contains(&at) {
                return None;
            }
            let link = match dst.get(&at) {
                Some(e) => e.kind == EntryKind::Symlink,
                None => fs::symlink_metadata(local_name(&self.dst_path(&at)))
                    .is_ok_and(|m| m.file_type().is_symlink()),
            };
            if link {
                return Some(at);
            }
        }
        None
    }

    fn same_md5(&mut self, ctx: &mut Context, rel: &str) -> Result<bool, CommandError> {
        let (remote, local) = if self.reverse {
            (self.dst_path(rel), self.src_path(rel))
        } else {
            (self.src_path(rel), self.dst_path(rel))
        };
        let theirs = match ctx.remote.md5(&remote) {
            Ok(d) => d,
            Err(RemoteError::Refused(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(local_md5(&local_name(&local)).ok() == Some(theirs))
    }

    /// One file, verified and installed atomically by `get` or `put`.
    fn send(&mut self, ctx: &mut Context, rel: &str, size: u64) -> Result<(), CommandError> {
        let (from, to) = (self.src_path(rel), self.dst_path(rel));
        let result = if self.reverse {
            put_file(ctx, &local_name(&from), &to, false, self.preserve).map(drop)
        } else {
            get_file(ctx, &from, &local_name(&to), false, self.preserve).map(drop)
        };
        match result {
            Ok(()) => {
                self.sent += 1;
                // The size the listing gave (a lying server's may be anything).
                self.bytes = self.bytes.saturating_add(size);
                Ok(())
            }
            Err(e) if is_connection(&e) => Err(e),
            Err(e) => {
                self.failures.push(format!("{}: {e}", escape(&from)));
                Ok(())
            }
        }
    }

    fn mkdir(&mut self, ctx: &mut Context, rel: &str) -> Result<(), CommandError> {
        let path = self.dst_path(rel);
        if self.reverse {
            match ctx.remote.mkdir(&path, true) {
                Err(RemoteError::Refused(m)) => self.failures.push(m),
                other => other?,
            }
        } else if let Err(e) = fs::create_dir_all(local_name(&path)) {
            self.failures.push(format!("{}: {e}", escape(&path)));
        }
        Ok(())
    }

    /// Removes `rel` from the target; whether it is gone (a failure is
    /// reported and the mirror goes on).
    fn remove(&mut self, ctx: &mut Context, rel: &str, dir: bool) -> Result<bool, CommandError> {
        let path = self.dst_path(rel);
        let done = if self.reverse {
            match ctx.remote.remove(&path, dir) {
                Err(RemoteError::Refused(m)) => Err(m),
                other => Ok(other?),
            }
        } else {
            let p = local_name(&path);
            if dir {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            }
            .map_err(|e| format!("{}: {e}", escape(&path)))
        };
        match done {
            Ok(()) => {
                self.deleted += 1;
                Ok(true)
            }
            Err(m) => {
                self.failures.push(m);
                Ok(false)
            }
        }
    }

    fn link(&mut self, ctx: &mut Context, rel: &str, target: &str) -> Result<(), CommandError> {
        let path = self.dst_path(rel);
        let done = if self.reverse {
            match ctx.remote.make_link(&path, target) {
                Err(RemoteError::Refused(m)) => Err(m),
                other => Ok(other?),
            }
        } else {
            let p = local_name(&path);
            let _ = fs::remove_file(&p);
            std::os::unix::fs::symlink(local_name(target), &p)
                .map_err(|e| format!("{}: {e}", escape(&path)))
        };
        if let Err(m) = done {
            self.failures.push(m);
        }
        Ok(())
    }

    /// A file's or directory's mode (less the umask without -p) and, with -p,
    /// time, from the source.
    fn attrs(&mut self, ctx: &mut Context, rel: &str, e: &Entry) -> Result<(), CommandError> {
        let path = self.dst_path(rel);
        let done = if self.reverse {
            match ctx.remote.set_attrs(&path, e.mode, e.mtime, self.preserve) {
                Err(RemoteError::Refused(m)) => Err(m),
                other => Ok(other?),
            }
        } else {
            set_local_attrs(&local_name(&path), e, self.preserve)
                .map_err(|err| format!("{}: {err}", escape(&path)))
        };
        if let Err(m) = done {
            self.failures.push(m);
        }
        Ok(())
    }
}

fn set_local_attrs(path: &Path, e: &Entry, preserve: bool) -> std::io::Result<()> {
    if e.kind == EntryKind::Dir {
        return set_dir_attrs(path, e.mode, e.mtime, preserve);
    }
    if preserve {
        let f = fs::File::open(path)?;
        f.set_times(fs::FileTimes::new().set_modified(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime.max(0) as u64),
        ))?;
    }
    Ok(())
}

/// A lost connection or Ctrl-C ends the mirror, also in the middle of a
/// file ([`StoppedMidway`]); anything else fails one file.
fn is_connection(e: &CommandError) -> bool {
    match e {
        CommandError::Interrupted | CommandError::Stopped { .. } => true,
        CommandError::Failed(a) => {
            a.is::<StoppedMidway>()
                || matches!(
                    a.downcast_ref::<RemoteError>(),
                    Some(RemoteError::ConnectionLost(_) | RemoteError::Interrupted)
                )
                || a.to_string().contains("connection lost")
        }
        _ => false,
    }
}
