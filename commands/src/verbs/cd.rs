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
        "change the remote directory (no PATH: the root; -: the previous one)"
    }
    fn example(&self) -> &'static str {
        "cd docs/2026"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        if a.path.as_deref() == Some("-") {
            let previous = ctx
                .remote
                .previous_dir()
                .ok_or_else(|| CommandError::msg("no previous remote directory"))?;
            let dir = ctx.remote.cd(&previous)?;
            let terminal = ctx.ui.out_is_terminal();
            writeln!(
                ctx.ui.out(),
                "{}",
                ftpsh_core::display::for_out(&dir, terminal)
            )?;
            return Ok(Flow::Continue);
        }
        let target = a.path.as_deref().unwrap_or("/");
        ctx.remote.cd(target)?;
        Ok(Flow::Continue)
    }
}
