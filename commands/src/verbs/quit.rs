use crate::{args, Command, CommandError, Context, Flow};

/// `quit`, `exit`, `bye`: one struct registered under each name.
pub struct Quit(pub &'static str);

impl Command for Quit {
    fn name(&self) -> &'static str {
        self.0
    }
    fn about(&self) -> &'static str {
        "leave the shell (also Ctrl-D)"
    }
    fn signature(&self) -> clap::Command {
        clap::Command::new(self.0)
    }
    fn example(&self) -> &'static str {
        self.0
    }
    fn run(&self, words: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        Ok(Flow::Quit)
    }
}
