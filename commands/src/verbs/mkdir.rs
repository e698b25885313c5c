use clap::Parser;

use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `mkdir`: create remote directories.
pub struct Mkdir;

#[derive(Parser)]
struct Args {
    /// Create missing parents too, and accept an existing directory.
    #[arg(short = 'p')]
    parents: bool,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

impl Command for Mkdir {
    fn name(&self) -> &'static str {
        "mkdir"
    }
    fn usage(&self) -> &'static str {
        "mkdir [-p] PATH..."
    }
    fn about(&self) -> &'static str {
        "create a remote directory (-p: with its parents)"
    }
    fn example(&self) -> &'static str {
        "mkdir -p backups/2026"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = crate::args::parse(self, args)?;
        for path in &a.paths {
            ctx.remote.mkdir(path, a.parents)?;
        }
        Ok(Flow::Continue)
    }
}
