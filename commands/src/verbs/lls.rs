use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};

use super::listing;
use crate::session::{Entry, EntryKind};
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape_path;

/// `lls`: list a local directory, in the same form as `ls`.
pub struct Lls;

#[derive(Parser)]
struct Args {
    /// Long listing: type, permissions, size, time.
    #[arg(short = 'l')]
    long: bool,
    /// Include names starting with a dot.
    #[arg(short = 'a')]
    all: bool,
    #[arg(value_name = "PATH", value_hint = hint::LOCAL_PATH)]
    path: Option<String>,
}

impl Command for Lls {
    fn name(&self) -> &'static str {
        "lls"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "list a local directory (-l: long form, -a: dot files too)"
    }
    fn example(&self) -> &'static str {
        "lls -l ~/Downloads"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let path = crate::local::expand_tilde(a.path.as_deref().unwrap_or("."))?;
        let mut entries = local_entries(Path::new(&path))?;
        if !a.all {
            entries.retain(|e| !e.name.starts_with('.'));
        }
        let terminal = ctx.ui.out_is_terminal();
        if a.long {
            listing::long(ctx.ui.out(), &entries, terminal)?;
        } else {
            listing::short(ctx.ui.out(), &entries, terminal)?;
        }
        Ok(Flow::Continue)
    }
}

/// The entries of a local directory, sorted by name; a file lists as itself.
pub fn local_entries(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot read {}", escape_path(path)))?;
    if !meta.is_dir() {
        return Ok(vec![entry(path.display().to_string(), &meta)]);
    }
    let mut entries = Vec::new();
    for item in fs::read_dir(path).with_context(|| format!("cannot list {}", escape_path(path)))? {
        let item = item?;
        let Ok(meta) = item.path().symlink_metadata() else {
            continue;
        };
        entries.push(entry(
            item.file_name().to_string_lossy().into_owned(),
            &meta,
        ));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn entry(name: String, meta: &fs::Metadata) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: meta.len(),
        mtime: meta.mtime(),
        mode: meta.permissions().mode() & 0o7777,
        target: String::new(),
    }
}
