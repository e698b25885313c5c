use crate::session::hex;
use clap::{CommandFactory, Parser};

use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `md5`: the server's digest of a file, printed as `md5sum` prints it so the two
/// can be compared with `diff`.
pub struct Md5;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", value_hint = hint::REMOTE_PATH, required = true, allow_hyphen_values = true)]
    paths: Vec<String>,
}

impl Command for Md5 {
    fn name(&self) -> &'static str {
        "md5"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "print the MD5 of remote files as md5sum does (HEX  PATH)"
    }
    fn example(&self) -> &'static str {
        "md5 backup.tar"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let terminal = ctx.ui.out_is_terminal();
        for path in &a.paths {
            let digest = ctx.remote.md5(path)?;
            writeln!(
                ctx.ui.out(),
                "{}  {}",
                hex(&digest),
                for_out(path, terminal)
            )?;
        }
        Ok(Flow::Continue)
    }
}
