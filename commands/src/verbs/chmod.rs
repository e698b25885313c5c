use clap::{CommandFactory, Parser};

use crate::session::EntryKind;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;

/// `chmod`: set the permission bits of remote files.
pub struct Chmod;

#[derive(Parser)]
struct Args {
    /// Octal (640) or symbolic (u+x,go-w, a=r), as chmod(1).
    #[arg(value_name = "MODE", value_hint = hint::TEXT, allow_hyphen_values = true)]
    mode: String,
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

/// A parsed MODE: bits to set as they are, or clauses applied to each file's
/// current mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSpec {
    Octal(u32),
    Symbolic(String),
}

impl ModeSpec {
    /// Parses MODE, checking every clause of a symbolic one, so that a MODE
    /// that does not parse changes nothing.
    pub fn parse(text: &str) -> Result<ModeSpec, String> {
        let bad = || {
            format!(
                "{}: not a mode (octal such as 640, or symbolic such as u+x,go-w)",
                escape(text)
            )
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if text.len() > 4 || text.bytes().any(|b| b > b'7') {
                return Err(bad());
            }
            return u32::from_str_radix(text, 8)
                .map(ModeSpec::Octal)
                .map_err(|_| bad());
        }
        apply_symbolic(text, 0, false).map_err(|()| bad())?;
        Ok(ModeSpec::Symbolic(text.to_string()))
    }

    /// The new mode of a file whose mode is `current`.
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            ModeSpec::Octal(m) => *m,
            ModeSpec::Symbolic(s) => apply_symbolic(s, current, is_dir).unwrap_or(current),
        }
    }
}

/// chmod(1)'s symbolic modes: comma-separated clauses `[ugoa]*([-+=]PERMS)+`,
/// PERMS being letters of `rwxXst` or one of `u`, `g`, `o` (a copy of those
/// bits). A clause without `ugoa` acts as `a` (the umask is not applied:
/// it is the server's files that change).
fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, ()> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let mut chars = clause.chars().peekable();
        let mut who = 0u32;
        while let Some(&c) = chars.peek() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => break,
            };
            chars.next();
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut ops = 0;
        while let Some(op) = chars.next() {
            if !matches!(op, '+' | '-' | '=') {
                return Err(());
            }
            ops += 1;
            let mut bits = 0u32;
            match chars.peek() {
                Some(&c @ ('u' | 'g' | 'o')) => {
                    chars.next();
                    let shift = match c {
                        'u' => 6,
                        'g' => 3,
                        _ => 0,
                    };
                    bits = ((mode >> shift) & 7) * 0o111;
                }
                _ => {
                    while let Some(&c) = chars.peek() {
                        bits |= match c {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || mode & 0o111 != 0 => 0o111,
                            'X' => 0,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => break,
                        };
                        chars.next();
                    }
                }
            }
            let bits = bits & who;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !who) | bits,
            }
        }
        if ops == 0 {
            return Err(());
        }
    }
    Ok(mode)
}

impl Command for Chmod {
    fn name(&self) -> &'static str {
        "chmod"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "set permission bits of remote files: octal (640) or symbolic (u+x,go-w)"
    }
    fn details(&self) -> &'static str {
        "A symbolic MODE is applied here to each file's current mode (asked of the\n\
         server first, a link followed), and the result is sent as octal. A clause\n\
         without u, g, o or a acts as a (no umask: the files are the server's).\n\
         A MODE that does not parse is refused before anything is changed."
    }
    fn example(&self) -> &'static str {
        "chmod u+x,go-w bin/run.sh"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        let spec = ModeSpec::parse(&a.mode).map_err(CommandError::msg)?;
        for path in &a.paths {
            let mode = match &spec {
                ModeSpec::Octal(m) => *m,
                symbolic => {
                    let e = ctx.remote.stat(path)?;
                    symbolic.apply(e.mode, e.kind == EntryKind::Dir)
                }
            };
            ctx.remote.chmod(path, mode)?;
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(spec: &str, current: u32) -> u32 {
        ModeSpec::parse(spec).unwrap().apply(current, false)
    }

    #[test]
    fn octal_and_symbolic_modes_as_chmod() {
        assert_eq!(ModeSpec::parse("640"), Ok(ModeSpec::Octal(0o640)));
        assert_eq!(ModeSpec::parse("4755"), Ok(ModeSpec::Octal(0o4755)));
        assert_eq!(sym("u+x,go-w", 0o666), 0o744);
        assert_eq!(sym("a=r", 0o755), 0o444);
        assert_eq!(sym("+x", 0o644), 0o755);
        assert_eq!(sym("g=u", 0o740), 0o770);
        assert_eq!(sym("o-rwx", 0o777), 0o770);
        assert_eq!(sym("u=rw,g=,o=", 0o777), 0o600);
        assert_eq!(sym("a+X", 0o644), 0o644);
        assert_eq!(ModeSpec::parse("a+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(sym("u+s", 0o755), 0o4755);
    }

    #[test]
    fn modes_that_do_not_parse_are_refused() {
        for bad in [
            "", "9", "8", "12345", "u", "u+q", "x+r", "u+x,", ",u+x", "rwx", "u+x;",
        ] {
            let e = ModeSpec::parse(bad).unwrap_err();
            assert!(e.contains("not a mode"), "{bad}: {e}");
        }
    }
}
