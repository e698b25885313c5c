use super::alias::definition;
use crate::registry::suggest;
use crate::{args, ArgKind, Command, CommandError, Context, Flow};

/// `help`: the verb table, or one verb's usage.
pub struct Help;

impl Command for Help {
    fn name(&self) -> &'static str {
        "help"
    }
    fn usage(&self) -> &'static str {
        "help [VERB]"
    }
    fn about(&self) -> &'static str {
        "list verbs and aliases, or show one verb's usage and an example"
    }
    fn example(&self) -> &'static str {
        "help get"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::Verb]
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::count(self, words, 0, 1)?;
        let out = ctx.ui.out();
        let Some(name) = words.first() else {
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
