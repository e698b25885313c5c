use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `cd`: change the remote directory (per connection, kept by the server).
pub struct Cd;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", value_hint = hint::REMOTE_PATH, allow_hyphen_values = true)]
    path: Option<String>,
}

impl Command for Cd {
    fn name(&self) -> &'static str {
        "cd"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "change the remote directory (no PATH: the root)"
    }
    fn example(&self) -> &'static str {
        "cd docs/2026"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let target = a.path.as_deref().unwrap_or("/");
        ctx.remote.cd(target)?;
        Ok(Flow::Continue)
    }
}
