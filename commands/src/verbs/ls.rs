use clap::Parser;

use super::listing;
use crate::{ArgKind, Command, CommandError, Context, Flow};

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
    path: Option<String>,
}

impl Command for Ls {
    fn name(&self) -> &'static str {
        "ls"
    }
    fn usage(&self) -> &'static str {
        "ls [-l] [-a] [PATH]"
    }
    fn about(&self) -> &'static str {
        "list a remote directory (-l: long form, -a: dot files too)"
    }
    fn example(&self) -> &'static str {
        "ls -l docs"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = crate::args::parse(self, args)?;
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
