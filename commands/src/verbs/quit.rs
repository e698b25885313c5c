use crate::{Command, CommandError, Context, Flow};

/// `quit`, `exit`, `bye`: one struct registered under each name.
pub struct Quit(pub &'static str);

impl Command for Quit {
    fn name(&self) -> &'static str {
        self.0
    }
    fn usage(&self) -> &'static str {
        match self.0 {
            "exit" => "exit",
            "bye" => "bye",
            _ => "quit",
        }
    }
    fn about(&self) -> &'static str {
        "leave the shell (also Ctrl-D)"
    }
    fn example(&self) -> &'static str {
        self.usage()
    }
    fn run(&self, args: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 0, 0)?;
        Ok(Flow::Quit)
    }
}
