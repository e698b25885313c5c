use crate::{ArgKind, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `echo`: a round trip through the server, the simplest check that it answers.
pub struct Echo;

impl Command for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn usage(&self) -> &'static str {
        "echo TEXT..."
    }
    fn about(&self) -> &'static str {
        "the server sends the text back (words joined by one space)"
    }
    fn example(&self) -> &'static str {
        "echo hello world"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::Text]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let reply = ctx.remote.echo(&args.join(" "))?;
        // The server's text, escaped on a terminal like any name from it
        // (a hostile server could send escape sequences); exact through a pipe.
        let terminal = ctx.ui.out_is_terminal();
        writeln!(ctx.ui.out(), "{}", for_out(&reply, terminal))?;
        Ok(Flow::Continue)
    }
}
