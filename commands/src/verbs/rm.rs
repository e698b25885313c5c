use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;
use ftpsh_core::glob::has_glob;

/// `rm`: remove remote files, empty directories, or (with `-r`) whole trees.
pub struct Rm;

#[derive(Parser)]
struct Args {
    /// Remove directories and everything in them.
    #[arg(short = 'r')]
    recursive: bool,
    /// Remote paths or patterns (*, ?, [...]), expanded on the server.
    #[arg(value_name = "PATTERN", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

impl Command for Rm {
    fn name(&self) -> &'static str {
        "rm"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "remove a remote file or empty directory (-r: a whole tree)"
    }
    fn details(&self) -> &'static str {
        "A PATTERN (*, ?, [...]) is expanded on the server, as for 'get'; one that\n\
         matches nothing is an error. A directory goes only when empty, or with -r."
    }
    fn example(&self) -> &'static str {
        "rm old.log"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for pattern in &a.paths {
            if !has_glob(pattern) {
                ctx.remote.remove(pattern, a.recursive)?;
                continue;
            }
            let matches = ctx.remote.glob(pattern)?;
            if matches.is_empty() {
                return Err(CommandError::msg(format!("{}: no match", escape(pattern))));
            }
            for path in &matches {
                ctx.remote.remove(path, a.recursive)?;
            }
        }
        Ok(Flow::Continue)
    }
}
