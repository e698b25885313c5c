use crate::session::ExitStatus;
use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `exec`: run a command on the server and stream its output back.
pub struct Exec;

impl Command for Exec {
    fn name(&self) -> &'static str {
        "exec"
    }
    fn usage(&self) -> &'static str {
        "exec COMMAND..."
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
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::Text]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 1, usize::MAX)?;
        let command = args.join(" ");
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
