use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `ln -s`: make a remote symbolic link.
pub struct Ln;

#[derive(Parser)]
struct Args {
    /// Symbolic link (the only kind: required).
    #[arg(short = 's', required = true)]
    symbolic: bool,
    /// What the link holds, as given (relative to LINK's directory).
    #[arg(value_name = "TARGET", value_hint = hint::REMOTE_PATH, allow_hyphen_values = true)]
    target: String,
    #[arg(value_name = "LINK", value_hint = hint::REMOTE_PATH)]
    link: String,
}

impl Command for Ln {
    fn name(&self) -> &'static str {
        "ln"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "make a remote symbolic link LINK holding TARGET"
    }
    fn details(&self) -> &'static str {
        "TARGET is stored as given and read from LINK's directory, as ln -s does.\n\
         A target that, followed on the server's disk, would lead outside the root\n\
         is refused (an absolute target outside the root's own path always is)."
    }
    fn example(&self) -> &'static str {
        "ln -s docs/report.pdf latest.pdf"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        debug_assert!(a.symbolic);
        ctx.remote.symlink(&a.target, &a.link)?;
        Ok(Flow::Continue)
    }
}
