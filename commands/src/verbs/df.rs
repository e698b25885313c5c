use clap::{CommandFactory, Parser};

use crate::transfer::human_bytes;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `df`: the sizes of the remote file system.
pub struct Df;

#[derive(Parser)]
#[command(disable_help_flag = true)]
struct Args {
    /// Human sizes (KiB, MiB, GiB) instead of bytes.
    #[arg(short = 'h')]
    human: bool,
    #[arg(value_name = "PATH", value_hint = hint::REMOTE_PATH)]
    path: Option<String>,
}

impl Command for Df {
    fn name(&self) -> &'static str {
        "df"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "size, used and available space of the remote file system (-h: human sizes)"
    }
    fn details(&self) -> &'static str {
        "PATH (default: the remote directory) names the file system. Use% is\n\
         used / (used + available), rounded up, as df(1) shows it."
    }
    fn example(&self) -> &'static str {
        "df -h"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let path = a.path.clone().unwrap_or_else(|| ctx.remote.cwd());
        let s = ctx.remote.space(&path)?;
        let used = s.size.saturating_sub(s.free);
        let base = used.saturating_add(s.avail);
        let percent = if base == 0 {
            0
        } else {
            (u128::from(used) * 100).div_ceil(u128::from(base))
        };
        let show = |n: u64| {
            if a.human {
                human_bytes(n)
            } else {
                n.to_string()
            }
        };
        let (size, used, avail) = (show(s.size), show(used), show(s.avail));
        let w = size.len().max(used.len()).max(avail.len()).max(5);
        let terminal = ctx.ui.out_is_terminal();
        let out = ctx.ui.out();
        writeln!(
            out,
            "{:>w$} {:>w$} {:>w$} Use% Path",
            "Size", "Used", "Avail"
        )?;
        writeln!(
            out,
            "{size:>w$} {used:>w$} {avail:>w$} {:>3}% {}",
            percent,
            for_out(&path, terminal)
        )?;
        Ok(Flow::Continue)
    }
}
