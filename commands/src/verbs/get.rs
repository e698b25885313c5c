use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;

use super::lcd::expand_tilde;
use crate::display::{escape, escape_path, path_for_out};
use crate::session::RemoteError;
use crate::transfer::{self, check_digest, partial_path, remote_basename, FileReceiver, Timer};
use crate::{batch, ArgKind, Command, CommandError, Context, Flow};

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
                let dest = destination(remote, local);
                if let Some(line) = get_file(ctx, remote, &dest, a.resume)? {
                    writeln!(ctx.ui.out(), "{line}")?;
                }
                return Ok(Flow::Continue);
            }
        }
        batch::get(ctx, self.name(), sources, local, a.recursive, a.resume)
    }
}

/// Where a download of `remote` goes: LOCAL, LOCAL/NAME if LOCAL is a directory,
/// or NAME in the local directory.
pub fn destination(remote: &str, local: Option<&str>) -> PathBuf {
    let name = remote_basename(remote);
    match local.map(expand_tilde) {
        None => PathBuf::from(name),
        Some(l) if Path::new(&l).is_dir() || l.ends_with('/') => Path::new(&l).join(name),
        Some(l) => PathBuf::from(l),
    }
}

/// Downloads one file to `dest` and returns the summary line for stdout: none
/// when the data itself went there (`get x /dev/stdout`).
pub fn get_file(
    ctx: &mut Context,
    remote: &str,
    dest: &Path,
    resume: bool,
) -> Result<Option<String>, CommandError> {
    if dest.as_os_str().is_empty() {
        return Err(CommandError::msg("the local name is empty"));
    }
    if dest.is_dir() {
        return Err(CommandError::msg(format!(
            "{} is a directory",
            escape_path(dest)
        )));
    }
    // A link at the destination stays a link: the file it leads to is the one
    // replaced, as `cp` does, and the partial is written beside that file.
    // Checked first, so that the shared-directory rule covers every target.
    let target = transfer::follow_links(dest)
        .with_context(|| format!("cannot write {}", escape_path(dest)))?;
    if let Ok(meta) = std::fs::metadata(dest) {
        // Named through a link (`/dev/stdout`, `/proc/self/fd/2`): our own
        // stdout or stderr, whatever it is redirected to. A file named plainly
        // is replaced as any file is, even if stdout happens to go there.
        let linked = std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink());
        let stream = if linked {
            ctx.ui.std_stream(&meta)
        } else {
            None
        };
        if let Some((file, to_stdout)) = stream {
            refuse_resume(dest, resume)?;
            // What the shell printed before must come first.
            ctx.ui.out().flush()?;
            // A redirected file is written through the descriptor itself, at
            // its offset and in its append mode; a pipe or a terminal through
            // a descriptor of our own (the shared one may be non-blocking).
            let file = if meta.is_file() {
                file
            } else {
                open_special(dest, resume, &meta)?
            };
            return get_through(ctx, remote, dest, file, to_stdout);
        }
        if !meta.is_file() {
            let file = open_special(dest, resume, &meta)?;
            return get_through(ctx, remote, dest, file, false);
        }
    }
    let partial = partial_path(&target);
    if resume && !partial.exists() {
        if let Some(line) = already_complete(ctx, remote, dest)? {
            return Ok(Some(line));
        }
    }
    let name = display_name(dest);
    let terminal = ctx.ui.out_is_terminal();
    let timer = Timer::start();
    let stop = ctx.ui.interrupt_flag();
    let ui = &mut *ctx.ui;
    let mut receiver = FileReceiver::new(
        partial.clone(),
        resume,
        Box::new(|size| ui.progress(&name, size)),
    )
    .interruptible(stop);
    let offset = receiver.resume_offset();
    let result = ctx.remote.download(remote, offset, &mut receiver);
    receiver.finish_progress();
    let server_digest = match result {
        Ok(d) => d,
        Err(e) if transfer::stopped_midway(&e) && partial.exists() => {
            return Err(CommandError::msg(format!(
                "{e}; the partial file {} is kept: 'get -c {} {}' resumes it",
                escape_path(&partial),
                escape(&shell_words::quote(remote)),
                escape(&shell_words::quote(&dest.to_string_lossy()))
            )));
        }
        Err(e) => return Err(local_failure(e, &partial)),
    };
    let local_digest = receiver.digest();
    if receiver.received != receiver.size {
        return Err(CommandError::msg(format!(
            "received {} of {} bytes; the partial file {} is kept",
            receiver.received,
            receiver.size,
            escape_path(&partial)
        )));
    }
    if let Err(msg) = check_digest(&server_digest, &local_digest) {
        let _ = std::fs::remove_file(&partial);
        return Err(CommandError::msg(format!("{msg}; nothing was installed")));
    }
    receiver
        .sync()
        .with_context(|| format!("cannot write {}", escape_path(&partial)))?;
    transfer::install(&partial, &target)
        .with_context(|| format!("cannot install {}", escape_path(dest)))?;
    Ok(Some(transfer::summary(
        &path_for_out(dest, terminal),
        receiver.size,
        timer.elapsed(),
    )))
}

/// `-c` appends to a partial file; a stream or a device has none.
fn refuse_resume(dest: &Path, resume: bool) -> Result<(), CommandError> {
    if resume {
        return Err(CommandError::msg(format!(
            "{} is not a regular file: -c has nothing to resume there",
            escape_path(dest)
        )));
    }
    Ok(())
}

/// Opens a destination that is not a regular file (a device, a named pipe)
/// to write the download through it.
fn open_special(
    dest: &Path,
    resume: bool,
    meta: &std::fs::Metadata,
) -> Result<std::fs::File, CommandError> {
    use std::os::unix::fs::FileTypeExt;
    let shown = escape_path(dest);
    let kind = meta.file_type();
    if kind.is_socket() {
        return Err(CommandError::msg(format!("{shown} is a socket")));
    }
    refuse_resume(dest, resume)?;
    transfer::open_through(dest).map_err(|e| {
        if kind.is_fifo() && e.raw_os_error() == Some(libc::ENXIO) {
            CommandError::msg(format!("nothing is reading from the named pipe {shown}"))
        } else {
            anyhow::Error::new(e)
                .context(format!("cannot write {shown}"))
                .into()
        }
    })
}

/// A download into something that cannot be replaced by renaming: a device
/// (`/dev/null`, a disk), a named pipe, or our own stdout or stderr, whatever
/// they are redirected to (renaming over `/dev/stdout` would replace the log
/// file a script appends to). The data is written straight into `file`, hashed
/// on the way; the digest is still checked, but what was written cannot be
/// taken back.
fn get_through(
    ctx: &mut Context,
    remote: &str,
    dest: &Path,
    file: std::fs::File,
    to_stdout: bool,
) -> Result<Option<String>, CommandError> {
    let shown = escape_path(dest);
    let name = display_name(dest);
    let terminal = ctx.ui.out_is_terminal();
    let timer = Timer::start();
    let ui = &mut *ctx.ui;
    let mut receiver = FileReceiver::write_through(
        dest.to_path_buf(),
        file,
        Box::new(|size| ui.progress(&name, size)),
    );
    let result = ctx.remote.download(remote, 0, &mut receiver);
    receiver.finish_progress();
    let server_digest = match result {
        Ok(d) => d,
        Err(RemoteError::Local(e)) if to_stdout && e.kind() == std::io::ErrorKind::BrokenPipe => {
            drop(receiver);
            ctx.ui.mark_output_closed();
            return Err(CommandError::msg("stdout closed"));
        }
        Err(e) => return Err(local_failure(e, dest)),
    };
    let local_digest = receiver.digest();
    if receiver.received != receiver.size {
        return Err(CommandError::msg(format!(
            "received {} of {} bytes into {shown}",
            receiver.received, receiver.size
        )));
    }
    check_digest(&server_digest, &local_digest).map_err(|msg| {
        CommandError::msg(format!(
            "{msg}; the data written to {shown} is not the file"
        ))
    })?;
    receiver
        .sync()
        .with_context(|| format!("cannot write {shown}"))?;
    // The data went to stdout: a summary line there would be part of it.
    Ok((!to_stdout).then(|| {
        transfer::summary(
            &path_for_out(dest, terminal),
            receiver.size,
            timer.elapsed(),
        )
    }))
}

/// The destination's file name as the progress bar shows it.
fn display_name(dest: &Path) -> String {
    dest.file_name()
        .map(|n| escape_path(Path::new(n)).into_owned())
        .unwrap_or_default()
}

/// The message for a download that failed before its digest was checked.
fn local_failure(e: RemoteError, written: &Path) -> CommandError {
    match e {
        RemoteError::Local(e) if transfer::is_partial_refusal(&e) => {
            CommandError::msg(e.to_string())
        }
        RemoteError::Local(e) => anyhow::Error::new(e)
            .context(format!("cannot write {}", escape_path(written)))
            .into(),
        e => e.into(),
    }
}

/// `get -c` with nothing partial but a destination of the remote file's size:
/// if the MD5s agree there is nothing to download (like `wget -c`), and the
/// summary says so. `None` means download as usual.
fn already_complete(
    ctx: &mut Context,
    remote: &str,
    dest: &Path,
) -> Result<Option<String>, CommandError> {
    let Ok(local) = std::fs::metadata(dest) else {
        return Ok(None);
    };
    if !local.is_file() {
        return Ok(None);
    }
    let entry = ctx.remote.stat(remote)?;
    if entry.size != local.len() {
        return Ok(None);
    }
    let theirs = ctx.remote.md5(remote)?;
    let ours = batch::local_md5(dest).with_context(|| format!("cannot read {}", dest.display()))?;
    Ok((ours == theirs).then(|| {
        format!(
            "{}: already complete ({}), md5 ok",
            dest.display(),
            transfer::human_bytes(local.len())
        )
    }))
}
