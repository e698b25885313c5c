use super::alias::definition;
use crate::registry::suggest;
use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `help`: the verb table, or one verb's usage.
pub struct Help;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "VERB", value_hint = hint::VERB_NAME, allow_hyphen_values = true)]
    verb: Option<String>,
}

impl Command for Help {
    fn name(&self) -> &'static str {
        "help"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "list verbs and aliases, or show one verb's usage and an example"
    }
    fn example(&self) -> &'static str {
        "help get"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let out = ctx.ui.out();
        let Some(name) = a.verb.as_deref() else {
            writeln!(out, "Verbs:")?;
            let verbs = ctx.verbs.sorted();
            let width = verbs.iter().map(|v| v.usage().len()).max().unwrap_or(0);
            for verb in verbs {
                writeln!(out, "  {:<width$}  {}", verb.usage(), verb.about())?;
            }
            let mut aliases = ctx.aliases.iter().peekable();
            if aliases.peek().is_some() {
                writeln!(out, "Aliases:")?;
                for (name, expansion) in aliases {
                    writeln!(out, "  {}", definition(name, expansion))?;
                }
            }
            writeln!(out, "Type 'help VERB' for its usage and an example.")?;
            return Ok(Flow::Continue);
        };
        let mut known = false;
        if let Some(expansion) = ctx.aliases.get(name) {
            writeln!(out, "{}", definition(name, expansion))?;
            known = true;
        }
        if let Some(verb) = ctx.verbs.get(name) {
            writeln!(out, "{}", args::help_text(verb))?;
            known = true;
        }
        if !known {
            let hint = suggest(name, ctx.verbs.names().chain(ctx.aliases.names()))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(CommandError::msg(format!(
                "{name}: no such verb or alias{hint}"
            )));
        }
        Ok(Flow::Continue)
    }
}
