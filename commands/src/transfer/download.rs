//! One file downloaded: where it goes, how it is received, verified and
//! installed. `get` uses it for a single file, `batch` for each file of a
//! tree or a glob that must go alone.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{
    check_digest, follow_links, human_bytes, install, is_partial_refusal, local_md5, open_through,
    partial_path, remote_basename, resumed_summary, stopped_midway, summary, FileReceiver,
    StoppedMidway, Timer,
};
use crate::local::expand_tilde;
use crate::session::RemoteError;
use crate::{CommandError, Context};
use ftpsh_core::display::{escape, escape_path, local_name, path_for_out};

/// Where a download of `remote` goes: LOCAL, LOCAL/NAME if LOCAL is a directory,
/// or NAME in the local directory.
pub fn destination(remote: &str, local: Option<&str>) -> Result<PathBuf, CommandError> {
    let name = remote_basename(remote);
    Ok(match local.map(expand_tilde).transpose()? {
        None => local_name(name),
        Some(l) if local_name(&l).is_dir() || l.ends_with('/') => {
            local_name(&l).join(local_name(name))
        }
        Some(l) => local_name(&l),
    })
}

/// Downloads one file to `dest` and returns the summary line for stdout: none
/// when the data itself went there (`get x /dev/stdout`).
pub fn get_file(
    ctx: &mut Context,
    remote: &str,
    dest: &Path,
    resume: bool,
    preserve: bool,
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
    let target =
        follow_links(dest).with_context(|| format!("cannot write {}", escape_path(dest)))?;
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
        Err(e) if stopped_midway(&e) && partial.exists() => {
            return Err(anyhow::Error::new(StoppedMidway(format!(
                "{e}; the partial file {} is kept: 'get -c {} {}' resumes it",
                escape_path(&partial),
                escape(&shell_words::quote(remote)),
                escape(&shell_words::quote(&dest.to_string_lossy()))
            )))
            .into());
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
    install(&partial, &target, receiver.attrs, preserve)
        .with_context(|| format!("cannot install {}", escape_path(dest)))?;
    Ok(Some(resumed_summary(
        &path_for_out(dest, terminal),
        receiver.size,
        receiver.kept,
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
    open_through(dest).map_err(|e| {
        if kind.is_fifo() && e.raw_os_error() == Some(ftpsh_core::sys::ENXIO) {
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
        summary(
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
        RemoteError::Local(e) if is_partial_refusal(&e) => CommandError::msg(e.to_string()),
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
    let ours = local_md5(dest).with_context(|| format!("cannot read {}", escape_path(dest)))?;
    let terminal = ctx.ui.out_is_terminal();
    Ok((ours == theirs).then(|| {
        format!(
            "{}: already complete ({}), md5 ok",
            path_for_out(dest, terminal),
            human_bytes(local.len())
        )
    }))
}
