use super::alias::definition;
use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `type`: what a word means (the registry's `hasattr`).
pub struct Type;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "NAME", value_hint = hint::VERB_NAME, required = true, allow_hyphen_values = true)]
    names: Vec<String>,
}

impl Command for Type {
    fn name(&self) -> &'static str {
        "type"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "say whether a name is a built-in verb or an alias (fails if neither)"
    }
    fn example(&self) -> &'static str {
        "type ll"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let mut missing = Vec::new();
        for name in &a.names {
            let builtin = ctx.verbs.contains(name);
            match ctx.aliases.get(name) {
                Some(expansion) => {
                    let shadow = if builtin {
                        " (shadowing the built-in verb)"
                    } else {
                        ""
                    };
                    let line = definition(name, expansion);
                    let shown = line
                        .trim_start_matches("alias ")
                        .trim_start_matches(name.as_str())
                        .trim_start();
                    writeln!(ctx.ui.out(), "{name} is an alias for {shown}{shadow}")?;
                }
                None if builtin => writeln!(ctx.ui.out(), "{name} is a built-in verb")?,
                None => missing.push(name.as_str()),
            }
        }
        if missing.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(CommandError::msg(format!(
                "{}: not found",
                missing.join(", ")
            )))
        }
    }
}
