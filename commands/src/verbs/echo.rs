use crate::{ArgKind, Command, CommandError, Context, Flow};

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
        writeln!(ctx.ui.out(), "{reply}")?;
        Ok(Flow::Continue)
    }
}
