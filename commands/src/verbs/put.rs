use std::path::Path;

use anyhow::Context as _;
use clap::Parser;

use super::lcd::expand_tilde;
use crate::display::{escape, escape_path, for_out};
use crate::session::{EntryKind, RemoteError};
use crate::transfer::{self, FileSource, Timer};
use crate::{batch, ArgKind, Command, CommandError, Context, Flow};

/// `put`: upload a file; the server verifies the MD5 and installs it atomically.
pub struct Put;

#[derive(Parser)]
struct Args {
    /// Resume: continue the server's partial copy (the whole file is still verified).
    #[arg(short = 'c')]
    resume: bool,
    /// Recursive: whole directories, empty ones included.
    #[arg(short = 'r')]
    recursive: bool,
    /// LOCAL... then REMOTE (see `batch::split_destination`).
    #[arg(value_name = "LOCAL", required = true)]
    paths: Vec<String>,
}

impl Command for Put {
    fn name(&self) -> &'static str {
        "put"
    }
    fn usage(&self) -> &'static str {
        "put [-c] [-r] LOCAL... [REMOTE]"
    }
    fn about(&self) -> &'static str {
        "upload files or trees (-r), verified by MD5 (-c: resume)"
    }
    fn details(&self) -> &'static str {
        "REMOTE defaults to LOCAL's name in the remote directory and may be a directory.\n\
         The server writes NAME.ftpsh-part, checks the MD5 and renames it into place;\n\
         of several clients uploading one name at once, exactly one complete upload wins.\n\
         LOCAL may be a pattern (*, ?, [...]) expanded here; with several files REMOTE\n\
         must be a directory (default: the remote one). -r copies whole directories,\n\
         empty ones too: 'put -r docs' makes docs remotely; 'put -r docs DIR' makes\n\
         DIR/docs if DIR is a directory, else DIR. Links to files are followed; links\n\
         to directories, dangling links and special files are skipped with a warning.\n\
         -c skips files the server has with the same MD5 and continues partial ones.\n\
         A failing file does not stop the others; the command fails at the end naming\n\
         each. Many small files are pipelined (see 'mput')."
    }
    fn example(&self) -> &'static str {
        "put -r -c photos backups/"
    }
    fn args(&self) -> &'static [ArgKind] {
        &[ArgKind::LocalPath, ArgKind::RemotePath]
    }
    fn run(&self, args: &[String], ctx: &mut Context) -> Result<Flow, CommandError> {
        let a: Args = crate::args::parse(self, args)?;
        let (sources, remote) = batch::split_destination(&a.paths);
        if let [local] = sources {
            if !a.recursive && !batch::has_glob(local) {
                let local = expand_tilde(local);
                let remote = remote_destination(ctx, &local, remote)?;
                let line = put_file(ctx, Path::new(&local), &remote, a.resume)?;
                writeln!(ctx.ui.out(), "{line}")?;
                return Ok(Flow::Continue);
            }
        }
        batch::put(ctx, self.name(), sources, remote, a.recursive, a.resume)
    }
}

/// The local file's name in the remote directory, REMOTE, or REMOTE/NAME when
/// REMOTE is a directory on the server.
pub fn remote_destination(
    ctx: &mut Context,
    local: &str,
    remote: Option<&str>,
) -> Result<String, CommandError> {
    let name = Path::new(local)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
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
            transfer::human_bytes(meta.len())
        ));
    }
    let progress = ctx.ui.progress(&name, meta.len());
    let mut source = FileSource::open(local, progress)
        .with_context(|| format!("cannot read {name}"))?
        .interruptible(ctx.ui.interrupt_flag());
    let timer = Timer::start();
    let result = ctx.remote.upload(remote, resume, &mut source);
    source.finish_progress();
    match result {
        Ok(()) => Ok(transfer::summary(
            &for_out(remote, ctx.ui.out_is_terminal()),
            meta.len(),
            timer.elapsed(),
        )),
        Err(e) if transfer::stopped_midway(&e) => Err(CommandError::msg(format!(
            "{e}; the server keeps its partial copy: 'put -c {} {}' resumes it",
            escape(&shell_words::quote(&local.to_string_lossy())),
            escape(&shell_words::quote(remote))
        ))),
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
    let ours = crate::batch::local_md5(local)
        .with_context(|| format!("cannot read {}", local.display()))?;
    Ok(ours == theirs)
}
