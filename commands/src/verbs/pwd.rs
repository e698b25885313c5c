use crate::{args, Command, CommandError, Context, Flow};

/// `pwd`: the remote working directory, root-relative.
pub struct Pwd;

impl Command for Pwd {
    fn name(&self) -> &'static str {
        "pwd"
    }
    fn signature(&self) -> clap::Command {
        clap::Command::new("pwd")
    }
    fn about(&self) -> &'static str {
        "print the remote directory"
    }
    fn example(&self) -> &'static str {
        "pwd"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        let dir = ctx.remote.pwd()?;
        let terminal = ctx.ui.out_is_terminal();
        writeln!(
            ctx.ui.out(),
            "{}",
            ftpsh_core::display::for_out(&dir, terminal)
        )?;
        Ok(Flow::Continue)
    }
}
