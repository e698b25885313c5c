use clap::{CommandFactory, Parser};

use crate::transfer::batch;
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `mput`: upload everything matching several local patterns into the remote
/// directory, as one pipelined batch.
pub struct Mput;

#[derive(Parser)]
struct Args {
    /// Resume: skip files the server has with the same MD5, continue partial ones.
    #[arg(short = 'c')]
    resume: bool,
    /// Recursive: directories that match are copied whole.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(value_name = "PATTERN", required = true, value_hint = hint::LOCAL_PATH)]
    patterns: Vec<String>,
}

impl Command for Mput {
    fn name(&self) -> &'static str {
        "mput"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "upload every local file matching the patterns into the remote directory"
    }
    fn details(&self) -> &'static str {
        "Each PATTERN (*, ?, [...]) is expanded locally; plain names work too. A\n\
         pattern that matches nothing is an error naming it. The files go to the\n\
         remote directory, each verified by MD5 and installed atomically by the\n\
         server as 'put' does, streamed without a round trip per file. A failing file\n\
         does not stop the others; the command fails at the end naming each. Prints\n\
         one summary line: files, bytes, time, rate, failures."
    }
    fn example(&self) -> &'static str {
        "mput '*.txt' 'notes/*.md'"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        batch::put(
            ctx,
            self.name(),
            &a.patterns,
            None,
            a.recursive,
            a.resume,
            Default::default(),
        )
    }
}
