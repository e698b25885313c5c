use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `rename` and `mv`: one struct registered under each name.
pub struct Rename(pub &'static str);

#[derive(Parser)]
struct Args {
    #[arg(value_name = "OLD", value_hint = hint::REMOTE_PATH)]
    old: String,
    #[arg(value_name = "NEW", value_hint = hint::REMOTE_PATH)]
    new: String,
}

impl Command for Rename {
    fn name(&self) -> &'static str {
        self.0
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "rename or move a remote file or directory to the path NEW"
    }
    fn details(&self) -> &'static str {
        "NEW is the new path in full, as with sftp: a NEW that exists is refused,\n\
         an existing directory too (nothing is moved into it: write 'dir/name').\n\
         Both paths stay inside the server's root."
    }
    fn example(&self) -> &'static str {
        if self.0 == "mv" {
            "mv draft.txt docs/final.txt"
        } else {
            "rename draft.txt docs/final.txt"
        }
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        ctx.remote.rename(&a.old, &a.new)?;
        Ok(Flow::Continue)
    }
}
