use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `rm`: remove remote files, empty directories, or (with `-r`) whole trees.
pub struct Rm;

#[derive(Parser)]
struct Args {
    /// Remove directories and everything in them.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Rm {
    fn name(&self) -> &'static str {
        "rm"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "remove a remote file or empty directory (-r: a whole tree)"
    }
    fn example(&self) -> &'static str {
        "rm old.log"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            ctx.remote.remove(path, a.recursive)?;
        }
        Ok(Flow::Continue)
    }
}
