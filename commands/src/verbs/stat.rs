use clap::{CommandFactory, Parser};

use super::listing::{kind_char, permissions, utc_timestamp_seconds};
use crate::session::EntryKind;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `stat`: what remote names are, in detail.
pub struct Stat;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "show type, size, mode, modification time and link target of remote names"
    }
    fn details(&self) -> &'static str {
        "A link is shown as itself, with its target as stored; the time is UTC."
    }
    fn example(&self) -> &'static str {
        "stat docs/report.pdf"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let terminal = ctx.ui.out_is_terminal();
        for path in &a.paths {
            let d = ctx.remote.stat_details(path)?;
            let e = &d.entry;
            let kind = match e.kind {
                EntryKind::File => "regular file",
                EntryKind::Dir => "directory",
                EntryKind::Symlink => "symbolic link",
                EntryKind::Other => "other",
            };
            let target = match &d.target {
                Some(t) => format!(" -> {}", for_out(t, terminal)),
                None => String::new(),
            };
            let out = ctx.ui.out();
            writeln!(out, "  File: {}{target}", for_out(path, terminal))?;
            writeln!(out, "  Type: {kind}")?;
            writeln!(out, "  Size: {}", e.size)?;
            writeln!(
                out,
                "  Mode: {:04o} ({}{})",
                e.mode & 0o7777,
                kind_char(e.kind),
                permissions(e.mode)
            )?;
            writeln!(out, "Modify: {} UTC", utc_timestamp_seconds(e.mtime))?;
        }
        Ok(Flow::Continue)
    }
}
