use clap::{CommandFactory, Parser};

use super::listing;
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `ls`: list a remote directory.
pub struct Ls;

#[derive(Parser)]
struct Args {
    /// Long listing: type, permissions, size, time.
    #[arg(short = 'l')]
    long: bool,
    /// Include names starting with a dot.
    #[arg(short = 'a')]
    all: bool,
    #[arg(value_name = "PATH", value_hint = hint::REMOTE_PATH)]
    path: Option<String>,
}

impl Command for Ls {
    fn name(&self) -> &'static str {
        "ls"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "list a remote directory (-l: long form, -a: dot files too)"
    }
    fn example(&self) -> &'static str {
        "ls -l docs"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let mut entries = ctx.remote.list(a.path.as_deref().unwrap_or("."))?;
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
