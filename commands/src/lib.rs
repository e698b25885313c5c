//! The verbs of ftpsh.
//!
//! A verb is a struct implementing [`Command`]: a name, a usage line, one line of
//! help, an example, the kinds of its arguments (which drive tab completion) and
//! `run`. The [`Registry`] maps typed words to verbs (a
//! `HashMap<String, Box<dyn Command>>`) and keeps the user's aliases beside them.
//! Verbs reach the server and the terminal only through the traits of
//! [`session`], which the `ftpsh` engine implements; this crate knows nothing of
//! sockets or terminals.
//!
//! # Adding a verb
//!
//! ```
//! use ftpsh_commands::{Command, CommandError, Context, Flow, Registry, ArgKind};
//!
//! /// `shout TEXT...`: the server's echo, in capitals.
//! struct Shout;
//!
//! impl Command for Shout {
//!     fn name(&self) -> &'static str { "shout" }
//!     fn usage(&self) -> &'static str { "shout TEXT..." }
//!     fn about(&self) -> &'static str { "echo the text back in capitals" }
//!     fn example(&self) -> &'static str { "shout hello" }
//!     fn args(&self) -> &'static [ArgKind] { &[ArgKind::Text] }
//!     fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
//!         let reply = ctx.remote.echo(&args.join(" "))?;
//!         writeln!(ctx.ui.out(), "{}", reply.to_uppercase())?;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! let mut registry = Registry::with_builtins();
//! registry.register(Box::new(Shout));
//! assert!(registry.verbs.get("shout").is_some());
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
pub mod verbs;

pub mod local;
mod transfer;

pub use aliases::Aliases;
pub use registry::{Registry, Verbs};
pub use session::{Context, Remote, RemoteError, Ui};

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `quit`, `exit`, `bye`: leave the shell.
    Quit,
}

/// What a verb's arguments are, in order; the last kind repeats. Completion offers
/// local paths, remote paths, verbs or nothing accordingly, as sftp's command
/// table does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    LocalPath,
    RemotePath,
    /// A verb or alias name (`help`, `type`, `alias`, `unalias`).
    Verb,
    /// Free text: nothing to complete.
    Text,
}

/// A built-in or user-added verb.
pub trait Command {
    /// The word that runs it.
    fn name(&self) -> &'static str;
    /// The synopsis, e.g. `get [-c] [-r] REMOTE [LOCAL]`.
    fn usage(&self) -> &'static str;
    /// One line of help.
    fn about(&self) -> &'static str;
    /// A sample invocation shown by `help VERB`.
    fn example(&self) -> &'static str;
    /// Longer help shown by `help VERB` after the usage, if any.
    fn details(&self) -> &'static str {
        ""
    }
    /// The kinds of the positional arguments, for completion.
    fn args(&self) -> &'static [ArgKind] {
        &[]
    }
    /// Runs the verb. `args` are the words after the verb, quotes removed.
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
    #[error("{0:#}")]
    Failed(anyhow::Error),
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
