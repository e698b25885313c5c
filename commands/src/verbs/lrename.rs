use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;
use ftpsh_core::errors::describe;

/// `lrename`: rename or move a local file or directory.
pub struct Lrename;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "OLD", value_hint = hint::LOCAL_PATH)]
    old: String,
    #[arg(value_name = "NEW", value_hint = hint::LOCAL_PATH)]
    new: String,
}

impl Command for Lrename {
    fn name(&self) -> &'static str {
        "lrename"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "rename or move a local file or directory to the path NEW"
    }
    fn details(&self) -> &'static str {
        "As 'rename' on the server: NEW is the new path in full, and a NEW that\n\
         exists (a directory too) is refused."
    }
    fn example(&self) -> &'static str {
        "lrename notes.txt notes-2026.txt"
    }
    fn run(&self, words: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let (old, new) = (expand_tilde(&a.old)?, expand_tilde(&a.new)?);
        std::fs::symlink_metadata(&old)
            .map_err(|e| CommandError::msg(format!("{}: {}", escape(&a.old), describe(&e))))?;
        if let Ok(meta) = std::fs::symlink_metadata(&new) {
            let why = if meta.is_dir() {
                "is an existing directory: lrename does not move into it (name the new path in full)"
            } else {
                "already exists"
            };
            return Err(CommandError::msg(format!("{}: {why}", escape(&a.new))));
        }
        std::fs::rename(&old, &new)
            .map_err(|e| CommandError::msg(format!("{}: {}", escape(&a.new), describe(&e))))?;
        Ok(Flow::Continue)
    }
}
