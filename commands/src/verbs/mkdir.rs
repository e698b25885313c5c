use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `mkdir`: create remote directories.
pub struct Mkdir;

#[derive(Parser)]
struct Args {
    /// Create missing parents too, and accept an existing directory.
    #[arg(short = 'p')]
    parents: bool,
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Mkdir {
    fn name(&self) -> &'static str {
        "mkdir"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "create a remote directory (-p: with its parents)"
    }
    fn example(&self) -> &'static str {
        "mkdir -p backups/2026"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            ctx.remote.mkdir(path, a.parents)?;
        }
        Ok(Flow::Continue)
    }
}
