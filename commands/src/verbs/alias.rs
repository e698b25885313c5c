use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};

/// `alias`: list, show or define aliases (the registry's `setattr`).
pub struct Alias;

/// The expansion's words are taken as typed (`alias ll ls -l`); `--help`
/// first is help.
#[derive(Parser)]
struct Args {
    #[arg(value_name = "NAME", value_hint = hint::VERB_NAME, allow_hyphen_values = true)]
    name: Option<String>,
    #[arg(value_name = "EXPANSION", value_hint = hint::TEXT, requires = "name", trailing_var_arg = true, allow_hyphen_values = true)]
    expansion: Vec<String>,
}

impl Command for Alias {
    fn name(&self) -> &'static str {
        "alias"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "list aliases, show one, or define one ($1..$9, $@ take arguments)"
    }
    fn details(&self) -> &'static str {
        "alias                 list every alias\n\
         alias NAME            show one\n\
         alias NAME EXPANSION  define one; quote an expansion that holds ';'\n\
         $1..$9 and $@ in the expansion take the arguments; without them the\n\
         arguments are appended. An alias may shadow a built-in verb: inside its\n\
         own expansion the name means the built-in (alias ls 'ls -l')."
    }
    fn example(&self) -> &'static str {
        "alias fetch 'get -c $1; md5 $1'"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        args::matches(self, words)?;
        match words {
            [] => {
                for (name, expansion) in ctx.aliases.iter() {
                    writeln!(ctx.ui.out(), "{}", definition(name, expansion))?;
                }
            }
            [name] => {
                let expansion = ctx
                    .aliases
                    .get(name)
                    .ok_or_else(|| CommandError::msg(format!("{name}: no such alias")))?;
                writeln!(ctx.ui.out(), "{}", definition(name, expansion))?;
            }
            [name, words @ ..] => {
                let expansion = if let [one] = words {
                    one.clone()
                } else {
                    shell_words::join(words)
                };
                ctx.aliases
                    .set(name, &expansion)
                    .map_err(CommandError::msg)?;
            }
        }
        Ok(Flow::Continue)
    }
}

/// An alias as a line that `source` would read back.
pub fn definition(name: &str, expansion: &str) -> String {
    format!("alias {name} {}", shell_words::quote(expansion))
}
