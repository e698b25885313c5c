use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `cd`: change the remote directory (per connection, kept by the server).
pub struct Cd;

impl Command for Cd {
    fn name(&self) -> &'static str {
        "cd"
    }
    fn usage(&self) -> &'static str {
        "cd [PATH]"
    }
    fn about(&self) -> &'static str {
        "change the remote directory (no PATH: the root)"
    }
    fn example(&self) -> &'static str {
        "cd docs/2026"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 0, 1)?;
        let target = args.first().map(String::as_str).unwrap_or("/");
        ctx.remote.cd(target)?;
        Ok(Flow::Continue)
    }
}
