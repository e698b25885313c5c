//! The verbs of ftpsh.
//!
//! A verb is a struct implementing [`Command`]: a name, a signature (a clap
//! command: its usage line, options' help, completion and parsing all come from
//! it), one line of help, an example and `run`. The [`Registry`] maps typed words to verbs (a
//! `HashMap<String, Box<dyn Command>>`) and keeps the user's aliases beside them.
//! Verbs reach the server and the terminal only through the traits of
//! [`session`], which the `ftpsh` engine implements; this crate knows nothing of
//! sockets or terminals.
//!
//! # Adding a verb
//!
//! ```
//! use clap::{CommandFactory, Parser};
//! use ftpsh_commands::{args, hint, Command, CommandError, Context, Flow, Registry};
//!
//! /// `shout [-n] TEXT...`: the server's echo, in capitals.
//! struct Shout;
//!
//! #[derive(Parser)]
//! struct ShoutArgs {
//!     /// Add no newline.
//!     #[arg(short = 'n')]
//!     no_newline: bool,
//!     #[arg(value_name = "TEXT", required = true, value_hint = hint::TEXT)]
//!     text: Vec<String>,
//! }
//!
//! impl Command for Shout {
//!     fn name(&self) -> &'static str { "shout" }
//!     fn signature(&self) -> clap::Command { ShoutArgs::command() }
//!     fn about(&self) -> &'static str { "echo the text back in capitals" }
//!     fn example(&self) -> &'static str { "shout hello" }
//!     fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
//!         let a: ShoutArgs = args::parse(self, words)?;
//!         let reply = ctx.remote.echo(&a.text.join(" "))?;
//!         let end = if a.no_newline { "" } else { "\n" };
//!         write!(ctx.ui.out(), "{}{end}", reply.to_uppercase())?;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! let mut registry = Registry::with_builtins();
//! registry.register(Box::new(Shout));
//! let shout = registry.verbs.get("shout").unwrap();
//! assert_eq!(shout.usage(), "shout [-n] TEXT...");
//! assert!(args::help_text(shout).contains("-n  Add no newline"));
//! ```
//!
//! `examples/custom_verb.rs` in the `ftpsh` package runs a whole shell with such a
//! verb added.

#![forbid(unsafe_code)]

pub mod aliases;
pub mod args;
pub mod line;
pub mod registry;
pub mod script;
pub mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verbs;

pub mod local;
mod transfer;

pub use aliases::Aliases;
/// The clap this crate's [`Command::signature`] speaks, for verbs written elsewhere.
pub use clap;
pub use registry::{Registry, Verbs};
pub use session::{Context, Remote, RemoteError, Ui};

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `quit`, `exit`, `bye`: leave the shell.
    Quit,
}

/// What a verb's positional arguments are, in order; the last kind repeats.
/// Completion offers local paths, remote paths, verbs or nothing accordingly, as
/// sftp's command table does. A verb does not list them: they come from the
/// `value_hint` of each positional argument of its [`Command::signature`] (see
/// [`hint`] and [`ArgKind::from_hint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    LocalPath,
    RemotePath,
    /// A verb or alias name (`help`, `type`, `alias`, `unalias`).
    Verb,
    /// Free text: nothing to complete.
    Text,
}

/// The `value_hint`s a verb gives its positional arguments, so that completion
/// knows what each one names: `#[arg(value_hint = hint::LOCAL_PATH)]`.
///
/// They are clap's own [`clap::ValueHint`]s, read the ftpsh way: an argument
/// without a hint is a remote path, since most verbs act on the server.
pub mod hint {
    use clap::ValueHint;

    /// A path on the server (clap's default hint, so it may be left out).
    pub const REMOTE_PATH: ValueHint = ValueHint::Unknown;
    /// A path on this machine (clap's `AnyPath`; `FilePath`, `DirPath` and
    /// `ExecutablePath` count as local paths too).
    pub const LOCAL_PATH: ValueHint = ValueHint::AnyPath;
    /// The name of a verb or alias (clap's `CommandName`).
    pub const VERB_NAME: ValueHint = ValueHint::CommandName;
    /// Free text, nothing to complete (clap's `Other`; any other hint counts as
    /// text too).
    pub const TEXT: ValueHint = ValueHint::Other;
}

impl ArgKind {
    /// The kind a positional argument's `value_hint` stands for (see [`hint`]).
    pub fn from_hint(hint: clap::ValueHint) -> ArgKind {
        use clap::ValueHint as H;
        match hint {
            H::Unknown => ArgKind::RemotePath,
            H::AnyPath | H::FilePath | H::DirPath | H::ExecutablePath => ArgKind::LocalPath,
            H::CommandName => ArgKind::Verb,
            _ => ArgKind::Text,
        }
    }
}

/// A built-in or user-added verb.
///
/// Its [`signature`](Command::signature), a clap command, is the one statement
/// of its arguments: the usage line, the options' help shown by `help VERB` and
/// `VERB --help`, the completion of its words and the parsing of them
/// ([`args::parse`]) all come from it.
pub trait Command {
    /// The word that runs it.
    fn name(&self) -> &'static str;
    /// Its options and positional arguments, typically `Args::command()` of a
    /// `#[derive(clap::Parser)] struct Args` whose doc comments are the options'
    /// help. Positional arguments carry a [`hint`] for completion; one that takes
    /// free-form words (a command line, text) is `trailing_var_arg`. The name,
    /// `--help` (long only: `-h` is left to the verb) and the rest of the
    /// set-up are added by [`args::signature`].
    fn signature(&self) -> clap::Command;
    /// One line of help.
    fn about(&self) -> &'static str;
    /// A sample invocation shown by `help VERB` (a test parses every built-in
    /// verb's example with its signature, and runs it against a server).
    fn example(&self) -> &'static str;
    /// Longer help shown by `help VERB` after the options, if any.
    fn details(&self) -> &'static str {
        ""
    }
    /// The synopsis, e.g. `get [-c] [-r] REMOTE... [LOCAL]`, rendered from the
    /// signature.
    fn usage(&self) -> String {
        args::usage(self.name(), &self.signature())
    }
    /// The kinds of the positional arguments, for completion, from the
    /// signature's value hints; the last one repeats.
    fn arg_kinds(&self) -> Vec<ArgKind> {
        args::kinds(&self.signature())
    }
    /// Runs the verb. `args` are the words after the verb, quotes removed;
    /// [`args::parse`] checks them against the signature.
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError>;
}

/// Why a verb failed. The shell prints it as `ftpsh: VERB: message`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The words were wrong; the message includes the usage.
    #[error("{0}")]
    Usage(String),
    /// The user pressed Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// `VERB --help` was asked for: not a failure; the shell prints the text.
    #[error("{0}")]
    Help(String),
    /// The script this verb ran (`source`) was stopped by Ctrl-C or a closed
    /// stdout; its own runner reported what was worth reporting. `failed` says
    /// whether one of its commands had failed first, which still counts.
    #[error("stopped")]
    Stopped { failed: bool },
    /// Anything else, with its context chain.
    #[error("{}", chain(.0))]
    Failed(anyhow::Error),
}

/// `context: cause: cause`, as `{:#}` writes it, with each I/O error in
/// words ([`ftpsh_core::errors::describe`]): "no such file or directory",
/// never "No such file or directory (os error 2)".
fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|cause| match cause.downcast_ref::<std::io::Error>() {
            Some(io) => ftpsh_core::errors::describe(io),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

impl CommandError {
    pub fn msg(message: impl std::fmt::Display) -> Self {
        CommandError::Failed(anyhow::anyhow!("{message}"))
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(e: anyhow::Error) -> Self {
        CommandError::Failed(e)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::Failed(e.into())
    }
}

impl From<RemoteError> for CommandError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Interrupted => CommandError::Interrupted,
            other => CommandError::Failed(other.into()),
        }
    }
}
