use clap::{CommandFactory, Parser};

use crate::transfer::{batch, Faithful};
use crate::transfer::{destination, get_file};
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `get`: download a file, verified by MD5 and installed atomically.
pub struct Get;

#[derive(Parser)]
struct Args {
    /// Resume: continue a partial download (the whole file is still verified).
    #[arg(short = 'c')]
    resume: bool,
    /// Recursive: whole directories, empty ones included.
    #[arg(short = 'r')]
    recursive: bool,
    /// Preserve: keep permission bits and modification times.
    #[arg(short = 'p')]
    preserve: bool,
    /// Follow symbolic links in trees (copy what they lead to) instead of
    /// copying them as links.
    #[arg(short = 'L')]
    follow: bool,
    /// Remote files, directories or patterns.
    #[arg(value_name = "REMOTE", required = true, value_hint = hint::REMOTE_PATH,
          value_terminator = args::SOURCES_END)]
    remote: Vec<String>,
    /// Where to put them: the last of two or more words (see `SOURCES_END`).
    #[arg(value_name = "LOCAL", value_hint = hint::LOCAL_PATH)]
    local: Option<String>,
}

impl Command for Get {
    fn name(&self) -> &'static str {
        "get"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "download files or trees (-r), verified by MD5 (-c: resume)"
    }
    fn details(&self) -> &'static str {
        "LOCAL defaults to the remote file's name here and may be a directory.\n\
         The file is written to LOCAL.ftpsh-part while it is hashed; only when its MD5\n\
         matches the server's is it renamed over LOCAL. After a failure or Ctrl-C the\n\
         partial file stays, and 'get -c' continues it and verifies the whole file.\n\
         REMOTE may be a pattern (*, ?, [...]) expanded on the server; with several\n\
         files LOCAL must be a directory (default: here). -r copies whole directories,\n\
         empty ones too: 'get -r docs' makes ./docs; 'get -r docs DIR' makes DIR/docs\n\
         if DIR is a directory, else DIR. Trees are faithful: a symbolic link arrives\n\
         as a link with the same target (never followed by ftpsh; -L copies what it\n\
         leads to instead), a directory reached by a link and by its name arrives\n\
         under both, and what is skipped (special files) fails the command, named.\n\
         -p keeps permission bits and times; without it a new file or directory gets\n\
         the source's bits less the umask, never wider than the source. -c skips\n\
         files already here with the same MD5 and continues partial ones. A failing\n\
         file does not stop the others; the command fails at the end naming each.\n\
         Many small files are pipelined (see 'mget')."
    }
    fn example(&self) -> &'static str {
        "get -r -c backups/2026 ~/restore/"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let paths: Vec<String> = a.remote.into_iter().chain(a.local).collect();
        let (sources, local) = batch::split_destination(&paths);
        if let [remote] = sources {
            if !a.recursive && !batch::has_glob(remote) {
                let dest = destination(remote, local)?;
                if let Some(line) = get_file(ctx, remote, &dest, a.resume, a.preserve)? {
                    writeln!(ctx.ui.info(), "{line}")?;
                }
                return Ok(Flow::Continue);
            }
        }
        let faithful = Faithful {
            preserve: a.preserve,
            follow: a.follow,
        };
        batch::get(
            ctx,
            self.name(),
            sources,
            local,
            a.recursive,
            a.resume,
            faithful,
        )
    }
}
