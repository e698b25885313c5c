use clap::Parser;

use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `rm`: remove remote files, empty directories, or (with `-r`) whole trees.
pub struct Rm;

#[derive(Parser)]
struct Args {
    /// Remove directories and everything in them.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

impl Command for Rm {
    fn name(&self) -> &'static str {
        "rm"
    }
    fn usage(&self) -> &'static str {
        "rm [-r] PATH..."
    }
    fn about(&self) -> &'static str {
        "remove a remote file or empty directory (-r: a whole tree)"
    }
    fn example(&self) -> &'static str {
        "rm old.log"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = crate::args::parse(self, args)?;
        for path in &a.paths {
            ctx.remote.remove(path, a.recursive)?;
        }
        Ok(Flow::Continue)
    }
}
