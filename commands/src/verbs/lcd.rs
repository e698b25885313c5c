use anyhow::Context as _;

use crate::local::expand_tilde;
use crate::{ArgKind, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;

/// `lcd`: change the local directory (the process's own, so relative local paths
/// of every later verb follow it).
pub struct Lcd;

impl Command for Lcd {
    fn name(&self) -> &'static str {
        "lcd"
    }
    fn usage(&self) -> &'static str {
        "lcd [PATH]"
    }
    fn about(&self) -> &'static str {
        "change the local directory (no PATH: home)"
    }
    fn example(&self) -> &'static str {
        "lcd ~/Downloads"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::LocalPath]
    }
    fn run(&self, args: &[String], _ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 0, 1)?;
        let target = expand_tilde(args.first().map(String::as_str).unwrap_or("~"))?;
        std::env::set_current_dir(&target)
            .with_context(|| format!("cannot change to {}", escape(&target)))?;
        Ok(Flow::Continue)
    }
}
