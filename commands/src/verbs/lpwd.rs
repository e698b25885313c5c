use anyhow::Context as _;

use crate::{args, Command, CommandError, Context, Flow};

/// `lpwd`: the local working directory.
pub struct Lpwd;

impl Command for Lpwd {
    fn name(&self) -> &'static str {
        "lpwd"
    }
    fn signature(&self) -> clap::Command {
        clap::Command::new("lpwd")
    }
    fn about(&self) -> &'static str {
        "print the local directory"
    }
    fn example(&self) -> &'static str {
        "lpwd"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        let dir = std::env::current_dir().context("cannot read the local directory")?;
        let terminal = ctx.ui.out_is_terminal();
        writeln!(
            ctx.ui.out(),
            "{}",
            ftpsh_core::display::path_for_out(&dir, terminal)
        )?;
        Ok(Flow::Continue)
    }
}
