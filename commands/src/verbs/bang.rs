use std::process::Command as Process;

use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `!COMMAND` and `!`: a local command, or an interactive local shell. A line
/// starting with `!` is not split into words (see [`crate::line::split_line`]):
/// the rest of it goes to the shell as typed.
pub struct Bang;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "COMMAND", value_hint = hint::TEXT, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl Command for Bang {
    fn name(&self) -> &'static str {
        "!"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "run a local command with $SHELL -c (alone: an interactive local shell)"
    }
    fn details(&self) -> &'static str {
        "On a line that starts with it, everything after the ! is given to\n\
         $SHELL -c (default /bin/sh) as typed, semicolons and quotes included, in\n\
         the local directory; after a ';' the command ends at the next ';'. '!'\n\
         alone starts $SHELL for you to use; exit it to come back (only at a\n\
         terminal). A non-zero exit status fails the command."
    }
    fn example(&self) -> &'static str {
        "! echo local"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let mut process = Process::new(&shell);
        if words.is_empty() {
            if !ctx.ui.interactive() {
                return Err(CommandError::msg(
                    "'!' alone starts an interactive shell, only at a terminal; give a command: !COMMAND",
                ));
            }
        } else {
            process.arg("-c").arg(words.join(" "));
        }
        // What the shell printed before must come first.
        ctx.ui.out().flush()?;
        ctx.ui.err().flush()?;
        let status = process.status().map_err(|e| {
            CommandError::msg(format!(
                "cannot run {}: {}",
                ftpsh_core::display::escape(&shell),
                ftpsh_core::errors::describe(&e)
            ))
        })?;
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(Flow::Continue),
            (Some(n), _) => Err(CommandError::msg(format!(
                "local command exited with status {n}"
            ))),
            (None, Some(s)) => Err(CommandError::msg(format!(
                "local command killed by signal {s}"
            ))),
            (None, None) => Err(CommandError::msg("local command failed")),
        }
    }
}
