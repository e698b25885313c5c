use anyhow::Context as _;

use crate::display::escape;
use crate::{ArgKind, Command, CommandError, Context, Flow};

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
        let target = expand_tilde(args.first().map(String::as_str).unwrap_or("~"));
        std::env::set_current_dir(&target)
            .with_context(|| format!("cannot change to {}", escape(&target)))?;
        Ok(Flow::Continue)
    }
}

/// `~` and `~/...` mean the home directory on the local side, as in a shell.
pub fn expand_tilde(path: &str) -> String {
    let home = || std::env::var("HOME").unwrap_or_else(|_| "/".to_string());
    if path == "~" {
        home()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{}/{rest}", home().trim_end_matches('/'))
    } else {
        path.to_string()
    }
}
