//! One file uploaded: where it goes on the server, how it is read, hashed and
//! sent. `put` uses it for a single file, `batch` for each file that must go
//! alone.

use std::path::Path;

use anyhow::Context as _;

use super::{human_bytes, resumed_summary, stopped_midway, FileSource, StoppedMidway, Timer};
use crate::session::{EntryKind, RemoteError};
use crate::{CommandError, Context};
use ftpsh_core::display::{escape, escape_path, for_out};

/// The local file's name in the remote directory, REMOTE, or REMOTE/NAME when
/// REMOTE is a directory on the server.
pub fn remote_destination(
    ctx: &mut Context,
    local: &str,
    remote: Option<&str>,
) -> Result<String, CommandError> {
    // `local` is a name as ftpsh holds names (raw bytes as characters):
    // its last component, as `Path::file_name` would take it.
    let name = Path::new(local)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| CommandError::msg(format!("{}: not a file name", escape(local))))?;
    let Some(remote) = remote else {
        return Ok(name);
    };
    if remote.ends_with('/') {
        return Ok(format!("{remote}{name}"));
    }
    match ctx.remote.stat(remote) {
        Ok(e) if e.kind == EntryKind::Dir => Ok(format!("{remote}/{name}")),
        Ok(_) | Err(RemoteError::Refused(_)) => Ok(remote.to_string()),
        Err(e) => Err(e.into()),
    }
}

/// Uploads one file and returns the summary line.
pub fn put_file(
    ctx: &mut Context,
    local: &Path,
    remote: &str,
    resume: bool,
    preserve: bool,
) -> Result<String, CommandError> {
    let name = escape_path(local).into_owned();
    let meta = std::fs::metadata(local).with_context(|| format!("cannot read {name}"))?;
    if meta.is_dir() {
        return Err(CommandError::msg(format!("{name} is a directory")));
    }
    if !meta.is_file() {
        return Err(CommandError::msg(format!(
            "{name} is not a regular file (a device or a pipe has no size to announce)"
        )));
    }
    if resume && already_complete(ctx, local, remote, meta.len())? {
        return Ok(format!(
            "{remote}: already complete ({}), md5 ok",
            human_bytes(meta.len())
        ));
    }
    let progress = ctx.ui.progress(&name, meta.len());
    let mut source = FileSource::open(local, progress)
        .with_context(|| format!("cannot read {name}"))?
        .interruptible(ctx.ui.interrupt_flag())
        .preserving(preserve);
    let timer = Timer::start();
    let result = ctx.remote.upload(remote, resume, &mut source);
    source.finish_progress();
    match result {
        Ok(()) => Ok(resumed_summary(
            &for_out(remote, ctx.ui.out_is_terminal()),
            meta.len(),
            source.kept(),
            timer.elapsed(),
        )),
        Err(e) if stopped_midway(&e) => Err(anyhow::Error::new(StoppedMidway(format!(
            "{e}; the server keeps its partial copy: 'put -c {} {}' resumes it",
            escape(&shell_words::quote(&local.to_string_lossy())),
            escape(&shell_words::quote(remote))
        )))
        .into()),
        Err(RemoteError::Local(e)) => Err(anyhow::Error::new(e)
            .context(format!("cannot read {name}"))
            .into()),
        Err(e) => Err(e.into()),
    }
}

/// `put -c` of a file the server already has in full: same size and the same
/// MD5 means there is nothing to upload. Any doubt means upload as usual.
fn already_complete(
    ctx: &mut Context,
    local: &Path,
    remote: &str,
    size: u64,
) -> Result<bool, CommandError> {
    match ctx.remote.stat(remote) {
        Ok(e) if e.kind == EntryKind::File && e.size == size => {}
        Ok(_) | Err(RemoteError::Refused(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let theirs = match ctx.remote.md5(remote) {
        Ok(d) => d,
        Err(RemoteError::Refused(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let ours = crate::transfer::local_md5(local)
        .with_context(|| format!("cannot read {}", local.display()))?;
    Ok(ours == theirs)
}
