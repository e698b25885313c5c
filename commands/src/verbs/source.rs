use std::io::BufRead;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::script::{Runner, MAX_SOURCE_DEPTH};
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;

/// `source`: run the commands of a local file by the script-mode rules.
pub struct Source;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "FILE", value_hint = hint::LOCAL_PATH, allow_hyphen_values = true)]
    file: String,
}

impl Command for Source {
    fn name(&self) -> &'static str {
        "source"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "run commands from a local file (stops at its first failing line)"
    }
    fn example(&self) -> &'static str {
        "source ~/backup.ftpsh"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        if ctx.depth >= MAX_SOURCE_DEPTH {
            return Err(CommandError::msg(format!(
                "files source each other more than {MAX_SOURCE_DEPTH} deep"
            )));
        }
        let path = expand_tilde(&a.file)?;
        let lines = read_lines(&path)?;
        let mut runner = Runner {
            verbs: ctx.verbs,
            aliases: &mut *ctx.aliases,
            remote: &mut *ctx.remote,
            ui: &mut *ctx.ui,
            keep_going: ctx.keep_going,
            depth: ctx.depth + 1,
        };
        let outcome = runner.run_script(lines, Some(&path));
        if outcome.halt.is_some() {
            return Err(CommandError::Stopped {
                failed: outcome.failed,
            });
        }
        if outcome.failed {
            return Err(CommandError::msg(format!(
                "{}: a command failed",
                escape(&path)
            )));
        }
        Ok(if outcome.quit {
            Flow::Quit
        } else {
            Flow::Continue
        })
    }
}

/// The lines of a script file.
pub fn read_lines(path: &str) -> anyhow::Result<Vec<String>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", escape(path)))?;
    std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", escape(path)))
}
