use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `rmdir`: remove empty remote directories.
pub struct Rmdir;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Rmdir {
    fn name(&self) -> &'static str {
        "rmdir"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "remove empty remote directories"
    }
    fn example(&self) -> &'static str {
        "rmdir old/empty"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            ctx.remote.rmdir(path)?;
        }
        Ok(Flow::Continue)
    }
}
