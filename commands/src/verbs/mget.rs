use clap::{CommandFactory, Parser};

use crate::transfer::batch;
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `mget`: download everything matching several patterns into the local
/// directory, as one pipelined batch.
pub struct Mget;

#[derive(Parser)]
struct Args {
    /// Resume: skip files already here with the same MD5, continue partial ones.
    #[arg(short = 'c')]
    resume: bool,
    /// Recursive: directories that match are copied whole.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(value_name = "PATTERN", required = true, value_hint = hint::REMOTE_PATH)]
    patterns: Vec<String>,
}

impl Command for Mget {
    fn name(&self) -> &'static str {
        "mget"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "download every file matching the patterns into the local directory"
    }
    fn details(&self) -> &'static str {
        "Each PATTERN (*, ?, [...]) is expanded on the server; plain names work too.\n\
         A pattern that matches nothing is an error naming it. The files go to the\n\
         local directory, each verified by MD5 and installed atomically as 'get' does,\n\
         with the requests pipelined so that many small files do not crawl. A failing\n\
         file does not stop the others; the command fails at the end naming each.\n\
         Prints one summary line: files, bytes, time, rate, failures."
    }
    fn example(&self) -> &'static str {
        "mget '*.log' 'data/2026-*'"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        batch::get(
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
