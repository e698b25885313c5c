use clap::{CommandFactory, Parser};

use crate::session::ExitStatus;
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `exec`: run a command on the server and stream its output back.
pub struct Exec;

/// The words are the command line as typed (`exec ls -l` runs `ls -l`, and
/// `--` stays in it); `--help` first is help.
#[derive(Parser)]
struct Args {
    #[arg(value_name = "COMMAND", value_hint = hint::TEXT, required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl Command for Exec {
    fn name(&self) -> &'static str {
        "exec"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "run a command on the server with sh -c; its output streams back"
    }
    fn details(&self) -> &'static str {
        "The words are joined with spaces and given to sh -c in the remote directory,\n\
         as ssh does: quote a whole pipeline to keep it one word on this side.\n\
         stdout and stderr arrive separately as produced; a non-zero exit status\n\
         fails the command. Ctrl-C stops the remote process. The command is over\n\
         when sh exits: its background jobs are killed then, and a process that\n\
         detached itself (setsid, a daemon) is not waited for, unlike with ssh.\n\
         The server must be started with --allow-exec."
    }
    fn example(&self) -> &'static str {
        "exec 'du -sh * | sort -h'"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        let command = words.join(" ");
        let (out, err) = ctx.ui.streams();
        let status = ctx.remote.exec(&command, out, err)?;
        match status {
            ExitStatus::Code(0) => Ok(Flow::Continue),
            ExitStatus::Code(n) => Err(CommandError::msg(format!(
                "remote command exited with status {n}"
            ))),
            ExitStatus::Signal(s) => Err(CommandError::msg(format!(
                "remote command killed by signal {s}"
            ))),
        }
    }
}
