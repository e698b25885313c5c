use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;
use ftpsh_core::errors::describe;

/// `lrm`: remove local files, empty directories, or (with `-r`) whole trees.
pub struct Lrm;

#[derive(Parser)]
struct Args {
    /// Remove directories and everything in them.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(value_name = "PATH", required = true, value_hint = hint::LOCAL_PATH)]
    paths: Vec<String>,
}

impl Command for Lrm {
    fn name(&self) -> &'static str {
        "lrm"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "remove a local file or empty directory (-r: a whole tree)"
    }
    fn details(&self) -> &'static str {
        "As 'rm' on the server: a link is removed, never what it leads to."
    }
    fn example(&self) -> &'static str {
        "lrm -r old-restore"
    }
    fn run(&self, words: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            let local = expand_tilde(path)?;
            let fail = |e: std::io::Error| {
                let why = if e.kind() == std::io::ErrorKind::DirectoryNotEmpty {
                    "directory not empty (use lrm -r)".to_string()
                } else {
                    describe(&e)
                };
                CommandError::msg(format!("{}: {why}", escape(path)))
            };
            let meta = std::fs::symlink_metadata(&local).map_err(fail)?;
            let removed = if !meta.is_dir() {
                std::fs::remove_file(&local)
            } else if a.recursive {
                std::fs::remove_dir_all(&local)
            } else {
                std::fs::remove_dir(&local)
            };
            removed.map_err(fail)?;
        }
        Ok(Flow::Continue)
    }
}
