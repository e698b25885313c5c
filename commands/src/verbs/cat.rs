use std::io::{self, Write};

use clap::{CommandFactory, Parser};

use crate::session::{Receiver, RemoteError};
use crate::transfer::check_digest;
use crate::{args, hint, Command, CommandError, Context, Flow};
use ftpsh_core::display::escape;
use ftpsh_core::hashing::Md5Sink;

/// `cat`: remote files to stdout, verified by MD5 as any download.
pub struct Cat;

#[derive(Parser)]
struct Args {
    #[arg(value_name = "PATH", required = true, value_hint = hint::REMOTE_PATH)]
    paths: Vec<String>,
}

/// Writes a download straight to stdout, hashing it on the way.
struct ToOut<'a> {
    out: &'a mut dyn Write,
    hasher: Option<Md5Sink>,
    size: u64,
    received: u64,
}

impl Receiver for ToOut<'_> {
    fn start(&mut self, size: u64, offset: u64) -> io::Result<()> {
        if offset != 0 {
            return Err(io::Error::other("cat cannot resume"));
        }
        self.size = size;
        self.hasher = Some(Md5Sink::for_size(size));
        Ok(())
    }
    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(h) = &mut self.hasher {
            h.update(chunk);
        }
        self.received += chunk.len() as u64;
        self.out.write_all(chunk)
    }
}

impl Command for Cat {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn signature(&self) -> clap::Command {
        Args::command()
    }
    fn about(&self) -> &'static str {
        "print remote files to stdout, verified by MD5"
    }
    fn details(&self) -> &'static str {
        "The data is written as it arrives and hashed on the way; the MD5 is\n\
         checked at the end, as for 'get x /dev/stdout': a mismatch fails the\n\
         command after the fact, saying that what was printed is not the file."
    }
    fn example(&self) -> &'static str {
        "cat notes.txt"
    }
    fn run(&self, words: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = args::parse(self, words)?;
        for path in &a.paths {
            let mut to = ToOut {
                out: ctx.ui.out(),
                hasher: None,
                size: 0,
                received: 0,
            };
            let server = match ctx.remote.download(path, 0, &mut to) {
                Ok(d) => d,
                Err(RemoteError::Local(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    ctx.ui.mark_output_closed();
                    return Err(CommandError::msg("stdout closed"));
                }
                Err(RemoteError::Local(e)) => {
                    return Err(CommandError::msg(format!(
                        "cannot write to stdout: {}",
                        ftpsh_core::errors::describe(&e)
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            let (size, received) = (to.size, to.received);
            let local = to.hasher.take().unwrap_or_else(Md5Sink::inline).finalize();
            ctx.ui.out().flush()?;
            if received != size {
                return Err(CommandError::msg(format!(
                    "{}: received {received} of {size} bytes",
                    escape(path)
                )));
            }
            check_digest(&server, &local).map_err(|msg| {
                CommandError::msg(format!(
                    "{}: {msg}; the data written to stdout is not the file",
                    escape(path)
                ))
            })?;
        }
        Ok(Flow::Continue)
    }
}
