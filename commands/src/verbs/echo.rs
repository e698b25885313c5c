use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `echo`: a round trip through the server, the simplest check that it answers.
pub struct Echo;

/// The words are sent as typed (`echo -n` sends `-n`); `--help` first is help.
#[derive(Parser)]
struct Args {
    #[arg(value_name = "TEXT", value_hint = hint::TEXT, trailing_var_arg = true, allow_hyphen_values = true)]
    text: Vec<String>,
}

impl Command for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "the server sends the text back (words joined by one space)"
    }
    fn example(&self) -> &'static str {
        "echo hello world"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        // Only a word starting with '-' can be an option (`--help`); any
        // other words are all text, which the signature takes whatever they
        // are. Building and running the clap parser would cost more than the
        // round trip itself (echo is what latency is measured with).
        if words.iter().any(|w| w.starts_with('-')) {
            args::matches(self, words)?;
        }
        let reply = ctx.remote.echo(&words.join(" "))?;
        // The server's text, escaped on a terminal like any name from it
        // (a hostile server could send escape sequences); exact through a pipe.
        let terminal = ctx.ui.out_is_terminal();
        // One write for the line: `writeln!` would make two (text, newline).
        let mut line = for_out(&reply, terminal).into_owned();
        line.push('\n');
        ctx.ui.out().write_all(line.as_bytes())?;
        Ok(Flow::Continue)
    }
}
