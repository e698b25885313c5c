use clap::Parser;

use crate::transfer::batch;
use crate::transfer::{destination, get_file};
use crate::{ArgKind, Command, CommandError, Context, Flow};

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
    /// REMOTE... then LOCAL (see `batch::split_destination`).
    #[arg(value_name = "REMOTE", required = true)]
    paths: Vec<String>,
}

impl Command for Get {
    fn name(&self) -> &'static str {
        "get"
    }
    fn usage(&self) -> &'static str {
        "get [-c] [-r] REMOTE... [LOCAL]"
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
         if DIR is a directory, else DIR. Links leading outside the server's root are\n\
         skipped with a warning. -c skips files already here with the same MD5 and\n\
         continues partial ones. A failing file does not stop the others; the command\n\
         fails at the end naming each. Many small files are pipelined (see 'mget')."
    }
    fn example(&self) -> &'static str {
        "get -r -c backups/2026 ~/restore/"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath, ArgKind::LocalPath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = crate::args::parse(self, args)?;
        let (sources, local) = batch::split_destination(&a.paths);
        if let [remote] = sources {
            if !a.recursive && !batch::has_glob(remote) {
                let dest = destination(remote, local)?;
                if let Some(line) = get_file(ctx, remote, &dest, a.resume)? {
                    writeln!(ctx.ui.out(), "{line}")?;
                }
                return Ok(Flow::Continue);
            }
        }
        batch::get(ctx, self.name(), sources, local, a.recursive, a.resume)
    }
}
