use crate::{Command, CommandError, Context, Flow};

/// `pwd`: the remote working directory, root-relative.
pub struct Pwd;

impl Command for Pwd {
    fn name(&self) -> &'static str {
        "pwd"
    }
    fn usage(&self) -> &'static str {
        "pwd"
    }
    fn about(&self) -> &'static str {
        "print the remote directory"
    }
    fn example(&self) -> &'static str {
        "pwd"
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 0, 0)?;
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
