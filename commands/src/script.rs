//! Running lines of commands: alias expansion, dispatch to verbs, error reports,
//! and the script-mode rules (stop at the first failure unless `--keep-going`; a
//! command written `-verb` may fail without stopping anything; Ctrl-C and a
//! closed stdout stop everything, whatever those say).
//!
//! The same runner serves the prompt, `-c`, `-f`, piped stdin, `source` and the
//! start-up file, so they cannot drift apart.

use crate::aliases::{self, Aliases};
use crate::line::{split_line, Words};
use crate::registry::{suggest, Verbs};
use crate::session::{Remote, Ui};
use crate::{CommandError, Context, Flow};

/// How many alias expansions one typed command may cause before it is taken for
/// runaway recursion.
const EXPANSION_BUDGET: usize = 1000;

/// What the report of a failure that a leading `-` lets pass ends with.
pub const TOLERATED: &str = "(tolerated: the line starts with '-')";

/// How many `source` files may be open inside each other.
pub const MAX_SOURCE_DEPTH: usize = 16;

/// What running a line (or a script) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// A command failed whose failure was not ignored.
    pub failed: bool,
    /// `quit` ran: stop reading lines.
    pub quit: bool,
    /// The run was cut short; the caller stops too.
    pub halt: Option<Halt>,
}

/// Why a run stopped early whatever `--keep-going` and a leading `-` say: these
/// are not failures of a command but the end of anyone wanting the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The user pressed Ctrl-C (a script exits with status 130).
    Interrupted,
    /// Nobody reads stdout any more ([`Ui::output_closed`]): stop quietly.
    OutputClosed,
}

/// Why a command did not succeed.
enum Failure {
    /// Reported already; `--keep-going` and a leading `-` decide what follows.
    Failed,
    /// Everything stops. `failed`: a command had failed before (inside `source`).
    Halted { halt: Halt, failed: bool },
}

/// Runs commands against one remote and terminal.
pub struct Runner<'a> {
    pub verbs: &'a Verbs,
    pub aliases: &'a mut Aliases,
    pub remote: &'a mut dyn Remote,
    pub ui: &'a mut dyn Ui,
    /// Go on after a failing command (`--keep-going`).
    pub keep_going: bool,
    /// `source` nesting depth.
    pub depth: usize,
}

impl Runner<'_> {
    /// Runs one line. `location` (`FILE:LINE`) prefixes error reports from
    /// scripts and start-up files.
    pub fn run_line(&mut self, line: &str, location: Option<&str>) -> Outcome {
        self.run_line_at(line, location.map_or(At::Nowhere, At::Text))
    }

    /// [`Runner::run_line`] for line `number` of the script `file` (its name
    /// as shown, escaped): `FILE:LINE` is written out only for a report.
    pub fn run_script_line(&mut self, line: &str, file: Option<&str>, number: usize) -> Outcome {
        self.run_line_at(line, file.map_or(At::Nowhere, |f| At::Line(f, number)))
    }

    fn run_line_at(&mut self, line: &str, location: At<'_>) -> Outcome {
        let commands = match split_line(line) {
            Ok(c) => c,
            Err(msg) => {
                self.report(location, "", &msg, false);
                return Outcome {
                    failed: true,
                    ..Outcome::default()
                };
            }
        };
        let mut outcome = Outcome::default();
        for command in commands {
            let mut active = Vec::new();
            let mut budget = EXPANSION_BUDGET;
            let tolerated = command.ignore_failure;
            match self.run_command(&command, location, tolerated, &mut active, &mut budget) {
                Ok(Flow::Quit) => {
                    outcome.quit = true;
                    break;
                }
                Ok(Flow::Continue) => {}
                Err(Failure::Failed) if command.ignore_failure => {}
                Err(Failure::Failed) => {
                    outcome.failed = true;
                    if !self.keep_going {
                        break;
                    }
                }
                Err(Failure::Halted { halt, failed }) => {
                    outcome.failed |= failed;
                    outcome.halt = Some(halt);
                    break;
                }
            }
        }
        outcome
    }

    /// Runs lines in order by the script rules; `name` labels error reports with
    /// `NAME:LINE` when given. With `keep_going` false it stops at the first
    /// failing line; it always stops at a [`Halt`].
    pub fn run_script<I>(&mut self, lines: I, name: Option<&str>) -> Outcome
    where
        I: IntoIterator<Item = String>,
    {
        let mut outcome = Outcome::default();
        // `FILE:LINE` is written out only for a report.
        let file = name.map(ftpsh_core::display::escape);
        for (n, line) in lines.into_iter().enumerate() {
            let r = self.run_script_line(&line, file.as_deref(), n + 1);
            outcome.failed |= r.failed;
            if r.halt.is_some() {
                outcome.halt = r.halt;
                break;
            }
            if r.quit {
                outcome.quit = true;
                break;
            }
            if r.failed && !self.keep_going {
                break;
            }
        }
        outcome
    }

    /// `tolerated`: a leading `-` (of this command or of the alias it came
    /// from) lets it fail; its report says so.
    fn run_command(
        &mut self,
        command: &Words,
        location: At<'_>,
        tolerated: bool,
        active: &mut Vec<String>,
        budget: &mut usize,
    ) -> Result<Flow, Failure> {
        let name = command.words[0].as_str();
        let args = &command.words[1..];
        let is_active = active.iter().any(|a| a == name);
        if let Some(expansion) = self.aliases.get(name).filter(|_| !is_active) {
            if *budget == 0 {
                self.report(
                    location,
                    name,
                    "alias expands too many times (runaway recursion?)",
                    tolerated,
                );
                return Err(Failure::Failed);
            }
            *budget -= 1;
            let expanded = match aliases::expand(expansion, args) {
                Ok(e) => e,
                Err(msg) => {
                    self.report(location, name, &msg, tolerated);
                    return Err(Failure::Failed);
                }
            };
            active.push(name.to_string());
            let mut result = Ok(Flow::Continue);
            for inner in &expanded {
                let tolerated = tolerated || inner.ignore_failure;
                match self.run_command(inner, location, tolerated, active, budget) {
                    Ok(Flow::Quit) => {
                        result = Ok(Flow::Quit);
                        break;
                    }
                    Ok(Flow::Continue) => {}
                    Err(Failure::Failed) if inner.ignore_failure => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            active.pop();
            return result;
        }
        let Some(verb) = self.verbs.get(name) else {
            if is_active {
                let chain = active
                    .iter()
                    .map(String::as_str)
                    .chain([name])
                    .collect::<Vec<_>>();
                let msg = format!("alias loop: {}", chain.join(" -> "));
                let first = active[0].clone();
                self.report(location, &first, &msg, tolerated);
            } else {
                let candidates = self.verbs.names().chain(self.aliases.names());
                let msg = match suggest(name, candidates) {
                    Some(s) => format!("unknown command (did you mean '{s}'?)"),
                    None => "unknown command".to_string(),
                };
                self.report(location, name, &msg, tolerated);
            }
            return Err(Failure::Failed);
        };
        let mut ctx = Context {
            remote: &mut *self.remote,
            ui: &mut *self.ui,
            verbs: self.verbs,
            aliases: &mut *self.aliases,
            depth: self.depth,
            keep_going: self.keep_going,
        };
        let result = verb.run(args, &mut ctx);
        if let Err(CommandError::Help(text)) = &result {
            let _ = writeln!(self.ui.out(), "{text}");
        }
        let _ = self.ui.out().flush();
        // Before any report: the verb met the closed pipe as a write error or a
        // cancelled `exec`, and saying so would only be noise.
        if self.ui.output_closed() {
            return Err(Failure::Halted {
                halt: Halt::OutputClosed,
                failed: matches!(result, Err(CommandError::Stopped { failed: true })),
            });
        }
        let result = match result {
            Ok(flow) => Ok(flow),
            Err(CommandError::Help(_)) => Ok(Flow::Continue),
            // The nested runner has reported; nothing to add.
            Err(CommandError::Stopped { .. }) => Err(Failure::Failed),
            Err(e) => {
                self.report(location, verb.name(), &e.to_string(), tolerated);
                Err(Failure::Failed)
            }
        };
        // Also when the verb finished anyway: the user asked for the run to stop.
        if self.ui.interrupted() {
            return Err(Failure::Halted {
                halt: Halt::Interrupted,
                failed: result.is_err(),
            });
        }
        result
    }

    /// Reports a failure; one a leading `-` tolerates says so on its first
    /// line (the exit status does not count it).
    fn report(&mut self, location: At<'_>, verb: &str, message: &str, tolerated: bool) {
        let label = match (location, verb) {
            (At::Nowhere, v) => v.to_string(),
            (l, "") => l.to_string(),
            (l, v) => format!("{l}: {v}"),
        };
        if tolerated {
            let (first, rest) = message.split_at(message.find('\n').unwrap_or(message.len()));
            let message = format!("{first} {TOLERATED}{rest}");
            self.ui.report_error(&label, &message);
        } else {
            self.ui.report_error(&label, message);
        }
    }
}

/// Where a line came from, for error reports.
#[derive(Clone, Copy)]
enum At<'a> {
    Nowhere,
    /// As given to [`Runner::run_line`].
    Text(&'a str),
    /// A script's name (escaped) and line number.
    Line(&'a str, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Nowhere => Ok(()),
            At::Text(t) => f.write_str(t),
            At::Line(file, n) => write!(f, "{file}:{n}"),
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
