use crate::session::hex;
use crate::{ArgKind, Command, CommandError, Context, Flow};
use ftpsh_core::display::for_out;

/// `md5`: the server's digest of a file, printed as `md5sum` prints it so the two
/// can be compared with `diff`.
pub struct Md5;

impl Command for Md5 {
    fn name(&self) -> &'static str {
        "md5"
    }
    fn usage(&self) -> &'static str {
        "md5 PATH..."
    }
    fn about(&self) -> &'static str {
        "print the MD5 of remote files as md5sum does (HEX  PATH)"
    }
    fn example(&self) -> &'static str {
        "md5 backup.tar"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        crate::args::count(self, args, 1, usize::MAX)?;
        let terminal = ctx.ui.out_is_terminal();
        for path in args {
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
