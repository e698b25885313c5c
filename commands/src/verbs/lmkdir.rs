use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;
use ftpsh_core::errors::describe;

/// `lmkdir`: create local directories.
pub struct Lmkdir;

#[derive(Parser)]
struct Args {
    /// Create missing parents too, and accept an existing directory.
    #[arg(short = 'p')]
    parents: bool,
    #[arg(value_name = "PATH", required = true, value_hint = hint::LOCAL_PATH)]
    paths: Vec<String>,
}

impl Command for Lmkdir {
    fn name(&self) -> &'static str {
        "lmkdir"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "create a local directory (-p: with its parents)"
    }
    fn example(&self) -> &'static str {
        "lmkdir -p restore/2026"
    }
    fn run(&self, words: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            let local = expand_tilde(path)?;
            let made = if a.parents {
                std::fs::create_dir_all(&local)
            } else {
                std::fs::create_dir(&local)
            };
            made.map_err(|e| CommandError::msg(format!("{}: {}", escape(path), describe(&e))))?;
        }
        Ok(Flow::Continue)
    }
}
