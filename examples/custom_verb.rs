//! A shell with one more verb: `stat PATH` prints a remote file's size and type.
//!
//! Adding a verb is implementing `Command` and registering it; completion,
//! `help`, `type`, aliases and scripts pick it up with no other change.
//!
//! ```sh
//! cargo run --example custom_verb -- -c 'stat README.md'
//! ```

use clap::Parser;
use ftpsh_commands::session::EntryKind;
use ftpsh_commands::{ArgKind, Command, CommandError, Context, Flow, Registry};

struct Stat;

impl Command for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn usage(&self) -> &'static str {
        "stat PATH..."
    }
    fn about(&self) -> &'static str {
        "print the size and type of remote paths"
    }
    fn example(&self) -> &'static str {
        "stat docs/report.pdf"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        if args.is_empty() {
            return Err(CommandError::Usage(format!(
                "missing PATH (usage: {})",
                self.usage()
            )));
        }
        for path in args {
            let entry = ctx.remote.stat(path)?;
            let kind = match entry.kind {
                EntryKind::File => "file",
                EntryKind::Dir => "directory",
                EntryKind::Symlink => "symlink",
                EntryKind::Other => "other",
            };
            writeln!(ctx.ui.out(), "{path}: {kind}, {} bytes", entry.size)?;
        }
        Ok(Flow::Continue)
    }
}

fn main() {
    let mut registry = Registry::with_builtins();
    registry.register(Box::new(Stat));
    std::process::exit(ftpsh::shell::run(ftpsh::shell::Cli::parse(), registry));
}
