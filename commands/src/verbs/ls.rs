use std::cmp::Reverse;

use clap::{CommandFactory, Parser};

use super::listing;
use crate::session::{Entry, EntryKind, RemoteError};
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::{escape, for_out};
use ftpsh_core::glob::has_glob;

/// `ls`: list remote directories, files and patterns, as ls(1).
pub struct Ls;

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct Args {
    /// Long listing: type, permissions, size, time, and a link's target.
    #[arg(short = 'l')]
    long: bool,
    /// Include names starting with a dot.
    #[arg(short = 'a')]
    all: bool,
    /// Human sizes (KiB, MiB, GiB) in the long listing.
    #[arg(short = 'h')]
    human: bool,
    /// Sort by modification time, newest first.
    #[arg(short = 't')]
    time: bool,
    /// Sort by size, largest first.
    #[arg(short = 'S')]
    size: bool,
    /// Reverse the order.
    #[arg(short = 'r')]
    reverse: bool,
    /// One name per line (what the short form does anyway).
    #[arg(short = '1')]
    #[allow(dead_code)]
    one: bool,
    /// Remote paths or patterns (*, ?, [...]), expanded on the server.
    #[arg(value_name = "PATTERN", value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Args {
    fn sort(&self, entries: &mut [Entry]) {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if self.size {
            entries.sort_by_key(|e| Reverse(e.size));
        } else if self.time {
            entries.sort_by_key(|e| Reverse(e.mtime));
        }
        if self.reverse {
            entries.reverse();
        }
    }
}

impl Command for Ls {
    fn name(&self) -> &'static str {
        "ls"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "list remote directories or patterns (-l long, -h human sizes, -t/-S sort, -r reverse)"
    }
    fn details(&self) -> &'static str {
        "As ls(1): files named or matched first, then each directory's entries under\n\
         its name when there are several. A PATTERN (*, ?, [...]) is expanded on the\n\
         server; one that matches nothing is an error. Names are sorted by name,\n\
         by time with -t (newest first) or by size with -S (largest first); -r\n\
         reverses. -l shows a link's target as '-> target' (entries of a directory,\n\
         and a link named that does not lead to a directory; a pattern's matches\n\
         are shown as what they lead to)."
    }
    fn example(&self) -> &'static str {
        "ls -lh docs"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let operands = if a.paths.is_empty() {
            vec![".".to_string()]
        } else {
            a.paths.clone()
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for op in &operands {
            if has_glob(op) {
                let matches = ctx.remote.glob_entries(op)?;
                if matches.is_empty() {
                    return Err(CommandError::msg(format!("{}: no match", escape(op))));
                }
                for e in matches {
                    if e.kind == EntryKind::Dir {
                        dirs.push(e.name);
                    } else {
                        files.push(e);
                    }
                }
            } else if let Some(link) = named_link(a.long, ctx, op)? {
                files.push(link);
            } else if operands.len() == 1 {
                // One name: the listing says itself whether it is a directory.
                dirs.push(op.clone());
            } else {
                let mut e = ctx.remote.stat(op)?;
                if e.kind == EntryKind::Dir {
                    dirs.push(op.clone());
                } else {
                    e.name = op.clone();
                    files.push(e);
                }
            }
        }
        dirs.sort();
        let headers = files.len() + dirs.len() > 1;
        let mut first = true;
        if !files.is_empty() {
            a.sort(&mut files);
            self.print(&a, ctx, &files, None)?;
            first = false;
        }
        for dir in &dirs {
            let mut entries = ctx.remote.list(dir)?;
            if !a.all {
                entries.retain(|e| !e.name.starts_with('.'));
            }
            a.sort(&mut entries);
            if headers {
                let terminal = ctx.ui.out_is_terminal();
                let blank = if first { "" } else { "\n" };
                writeln!(ctx.ui.out(), "{blank}{}:", for_out(dir, terminal))?;
            }
            first = false;
            self.print(&a, ctx, &entries, Some(dir))?;
        }
        Ok(Flow::Continue)
    }
}

/// With `-l`, a link named as an operand that does not lead to a directory
/// is shown as itself with its target, as `ls -l` shows it, rather than as
/// the file it leads to. (A link to a directory lists the directory.)
fn named_link(long: bool, ctx: &mut Context, op: &str) -> Result<Option<Entry>, CommandError> {
    if !long {
        return Ok(None);
    }
    let details = match ctx.remote.stat_details(op) {
        Ok(d) if d.entry.kind == EntryKind::Symlink => d,
        Ok(_) | Err(RemoteError::Refused(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match ctx.remote.stat(op) {
        Ok(e) if e.kind == EntryKind::Dir => return Ok(None),
        // A link to nothing is shown as the link it is.
        Ok(_) | Err(RemoteError::Refused(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut entry = details.entry;
    entry.name = op.to_string();
    entry.target = details.target.unwrap_or_default();
    Ok(Some(entry))
}

impl Ls {
    /// Prints entries; `dir` is where they are, for links' targets.
    fn print(
        &self,
        a: &Args,
        ctx: &mut Context,
        entries: &[Entry],
        dir: Option<&str>,
    ) -> Result<(), CommandError> {
        let terminal = ctx.ui.out_is_terminal();
        if !a.long {
            listing::short(ctx.ui.out(), entries, terminal)?;
            return Ok(());
        }
        let mut targets = Vec::with_capacity(entries.len());
        for e in entries {
            let target = match (e.kind, dir) {
                // Listings carry a link's target (protocol 2).
                (EntryKind::Symlink, _) if !e.target.is_empty() => Some(e.target.clone()),
                (EntryKind::Symlink, Some(dir)) => {
                    let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
                    match ctx.remote.stat_details(&path) {
                        Ok(d) => d.target,
                        // Gone meanwhile, or a server without details: the
                        // link is shown without its target.
                        Err(RemoteError::Refused(_)) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => None,
            };
            targets.push(target);
        }
        listing::long_with(ctx.ui.out(), entries, terminal, a.human, &targets)?;
        Ok(())
    }
}
