use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `unalias`: remove aliases (the registry's `delattr`).
pub struct Unalias;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "NAME", value_hint = hint::VERB_NAME, required = true, allow_hyphen_values = true)]
    names: Vec<String>,
}

impl Command for Unalias {
    fn name(&self) -> &'static str {
        "unalias"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "remove an alias"
    }
    fn example(&self) -> &'static str {
        "unalias ll"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for name in &a.names {
            if ctx.aliases.remove(name).is_none() {
                return Err(CommandError::msg(format!("{name}: no such alias")));
            }
        }
        Ok(Flow::Continue)
    }
}
