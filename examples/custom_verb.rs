//! A shell with one more verb: `size PATH...` prints remote paths' size and type.
//!
//! Adding a verb is implementing `Command` and registering it; completion,
//! `help`, `type`, aliases and scripts pick it up with no other change.
//!
//! ```sh
//! cargo run --example custom_verb -- -c 'size README.md'
//! ```

use clap::{CommandFactory, Parser};
use ftpsh_commands::session::EntryKind;
use ftpsh_commands::{args, hint, Command, CommandError, Context, Flow, Registry};

struct Size;

/// The signature: usage (`size PATH...`), help, completion and parsing.
#[derive(Parser)]
struct SizeArgs {
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Size {
    fn name(&self) -> &'static str {
        "size"
    }
    fn signature(&self) -> clap::Command {
        SizeArgs::command()
    }
    fn about(&self) -> &'static str {
        "print the size and type of remote paths"
    }
    fn example(&self) -> &'static str {
        "size docs/report.pdf"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: SizeArgs = args::parse(self, words)?;
        for path in &a.paths {
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
    registry.register(Box::new(Size));
    std::process::exit(ftpsh::shell::run(
        ftpsh::shell::Cli::from_command_line(),
        registry,
    ));
}
