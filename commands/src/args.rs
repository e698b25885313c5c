//! Parsing a verb's words with clap, turning clap's multi-line errors into the one
//! line the shell prints.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use crate::{Command, CommandError};

/// Parses `args` (the words after the verb) into `T`. Errors become
/// [`CommandError::Usage`] carrying one line and the verb's usage.
pub fn parse<T: Parser>(verb: &dyn Command, args: &[String]) -> Result<T, CommandError> {
    let words = std::iter::once(verb.name().to_string()).chain(args.iter().cloned());
    T::try_parse_from(words).map_err(|e| usage_error(verb, &e))
}

fn usage_error(verb: &dyn Command, e: &clap::Error) -> CommandError {
    let what = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            let missing = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(names)) => names
                    .iter()
                    .map(|n| n.replace(['<', '>'], ""))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "an argument".to_string(),
            };
            format!("missing {missing}")
        }
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            return CommandError::Help(help_text(verb))
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            first
                .trim_start_matches("error: ")
                .replace('\'', "")
                .to_string()
        }
    };
    CommandError::Usage(format!("{what} (usage: {})", verb.usage()))
}

/// The text `help VERB` prints.
pub fn help_text(verb: &dyn Command) -> String {
    let mut text = format!("usage: {}\n  {}", verb.usage(), verb.about());
    if !verb.details().is_empty() {
        for line in verb.details().lines() {
            text.push_str("\n  ");
            text.push_str(line);
        }
    }
    text.push_str(&format!("\n  example: {}", verb.example()));
    text
}

/// Fails unless there are between `min` and `max` words.
pub fn count(
    verb: &dyn Command,
    args: &[String],
    min: usize,
    max: usize,
) -> Result<(), CommandError> {
    if args.len() < min {
        Err(CommandError::Usage(format!(
            "missing argument (usage: {})",
            verb.usage()
        )))
    } else if args.len() > max {
        Err(CommandError::Usage(format!(
            "too many arguments (usage: {})",
            verb.usage()
        )))
    } else {
        Ok(())
    }
}
