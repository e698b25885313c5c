use super::alias::definition;
use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `type`: what a word means (the registry's `hasattr`).
pub struct Type;

impl Command for Type {
    fn name(&self) -> &'static str {
        "type"
    }
    fn usage(&self) -> &'static str {
        "type NAME..."
    }
    fn about(&self) -> &'static str {
        "say whether a name is a built-in verb or an alias (fails if neither)"
    }
    fn example(&self) -> &'static str {
        "type ll"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::Verb]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 1, usize::MAX)?;
        let mut missing = Vec::new();
        for name in args {
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
