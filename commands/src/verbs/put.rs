use clap::{CommandFactory, Parser};

use crate::local::expand_tilde;
use crate::transfer::{batch, Faithful};
use crate::transfer::{put_file, remote_destination};
use crate::{args, hint, Command, CommandError, Context, Flow};

/// `put`: upload a file; the server verifies the MD5 and installs it atomically.
pub struct Put;

#[derive(Parser)]
struct Args {
    /// Resume: continue the server's partial copy (the whole file is still verified).
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
    /// Local files, directories or patterns.
    #[arg(value_name = "LOCAL", required = true, value_hint = hint::LOCAL_PATH,
          value_terminator = args::SOURCES_END)]
    local: Vec<String>,
    /// Where to put them: the last of two or more words (see `SOURCES_END`).
    #[arg(value_name = "REMOTE", value_hint = hint::REMOTE_PATH)]
    remote: Option<String>,
}

impl Command for Put {
    fn name(&self) -> &'static str {
        "put"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "upload files or trees (-r), verified by MD5 (-c: resume)"
    }
    fn details(&self) -> &'static str {
        "REMOTE defaults to LOCAL's name in the remote directory and may be a directory.\n\
         The server writes NAME.ftpsh-part, checks the MD5 and renames it into place;\n\
         of several clients uploading one name at once, exactly one complete upload wins.\n\
         LOCAL may be a pattern (*, ?, [...]) expanded here; with several files REMOTE\n\
         must be a directory (default: the remote one). -r copies whole directories,\n\
         empty ones too: 'put -r docs' makes docs remotely; 'put -r docs DIR' makes\n\
         DIR/docs if DIR is a directory, else DIR. Trees are faithful: a symbolic link\n\
         goes as a link with the same target (-L sends what it leads to instead);\n\
         what is skipped (special files; with -L dangling links and loops) fails the\n\
         command, named. -p keeps permission bits and times; without it the server\n\
         gives the source's bits less its umask, never wider than the source.\n\
         -c skips files the server has with the same MD5 and continues partial ones.\n\
         A failing file does not stop the others; the command fails at the end naming\n\
         each. Many small files are pipelined (see 'mput')."
    }
    fn example(&self) -> &'static str {
        "put -r -c photos backups/"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let paths: Vec<String> = a.local.into_iter().chain(a.remote).collect();
        let (sources, remote) = batch::split_destination(&paths);
        if let [local] = sources {
            if !a.recursive && !batch::has_glob(local) {
                let local = expand_tilde(local)?;
                let remote = remote_destination(ctx, &local, remote)?;
                let line = put_file(
                    ctx,
                    &ftpsh_core::display::local_name(&local),
                    &remote,
                    a.resume,
                    a.preserve,
                )?;
                writeln!(ctx.ui.info(), "{line}")?;
                return Ok(Flow::Continue);
            }
        }
        let faithful = Faithful {
            preserve: a.preserve,
            follow: a.follow,
        };
        batch::put(
            ctx,
            self.name(),
            sources,
            remote,
            a.recursive,
            a.resume,
            faithful,
        )
    }
}
