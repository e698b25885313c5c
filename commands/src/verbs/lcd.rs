use anyhow::Context as _;
use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;

/// `lcd`: change the local directory (the process's own, so relative local paths
/// of every later verb follow it).
pub struct Lcd;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", value_hint = hint::LOCAL_PATH, allow_hyphen_values = true)]
    path: Option<String>,
}

impl Command for Lcd {
    fn name(&self) -> &'static str {
        "lcd"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "change the local directory (no PATH: home)"
    }
    fn example(&self) -> &'static str {
        "lcd ~/Downloads"
    }
    fn run(&self, words: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let target = expand_tilde(a.path.as_deref().unwrap_or("~"))?;
        std::env::set_current_dir(&target)
            .with_context(|| format!("cannot change to {}", escape(&target)))?;
        Ok(Flow::Continue)
    }
}
