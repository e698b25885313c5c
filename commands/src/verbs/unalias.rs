use crate::{ArgKind, Command, CommandError, Context, Flow};

/// `unalias`: remove aliases (the registry's `delattr`).
pub struct Unalias;

impl Command for Unalias {
    fn name(&self) -> &'static str {
        "unalias"
    }
    fn usage(&self) -> &'static str {
        "unalias NAME..."
    }
    fn about(&self) -> &'static str {
        "remove an alias"
    }
    fn example(&self) -> &'static str {
        "unalias ll"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::Verb]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 1, usize::MAX)?;
        for name in args {
            if ctx.aliases.remove(name).is_none() {
                return Err(CommandError::msg(format!("{name}: no such alias")));
            }
        }
        Ok(Flow::Continue)
    }
}
