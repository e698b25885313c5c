//! What a verb may ask of the world: the remote side ([`Remote`]), the terminal
//! ([`Ui`]), and the registry it was found in ([`Context`]).
//!
//! These traits are the whole boundary between the verbs and the engine in the
//! `ftpsh` package: a verb never sees a socket, a terminal or a thread. The engine
//! implements them over TCP and a real terminal; unit tests implement them in
//! memory (`MemRemote` and `MemUi` of the `testing` module).

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::aliases::Aliases;
use crate::registry::Verbs;

pub use ftpsh_core::{hex, Digest, Entry, EntryKind};

/// Why a request to the server did not succeed. Callers branch on the kind: a
/// refusal leaves the connection usable, a lost connection does not.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The server understood and said no; the message is the server's. The
    /// `Remote` that received it has escaped it (see [`ftpsh_core::display`]): it
    /// names files, and a hostile server could put anything in it.
    #[error("{0}")]
    Refused(String),
    /// The user pressed Ctrl-C; the request was cancelled.
    #[error("interrupted")]
    Interrupted,
    /// The connection failed or closed; the message says how.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The local side of a transfer failed (the sink or source returned this).
    #[error("{}", ftpsh_core::errors::describe(.0))]
    Local(io::Error),
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Receives one downloaded file.
pub trait Receiver {
    /// The server announced the file: its whole size, and the offset from which
    /// data follows (the length of the partial copy being resumed).
    fn start(&mut self, size: u64, offset: u64) -> io::Result<()>;
    /// The next chunk, in order.
    fn data(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Where the next chunk, of `len` bytes, may be read straight off the
    /// connection, saving the copy out of the engine's buffer that
    /// [`data`](Self::data) implies: a receiver that keeps the data in
    /// buffers of its own (to write them out and hand them to a hash thread
    /// whole) returns a slice of exactly `len` bytes, which the engine fills
    /// and then reports with [`filled`](Self::filled). `None` (the default)
    /// means "use `data`". Chunks from either way are in order.
    fn room(&mut self, _len: usize) -> io::Result<Option<&mut [u8]>> {
        Ok(None)
    }
    /// The slice of the last [`room`](Self::room) holds its `len` bytes.
    fn filled(&mut self, _len: usize) -> io::Result<()> {
        Ok(())
    }
    /// The file's permission bits and modification time, as the server
    /// announced them (before `start`).
    fn attrs(&mut self, _mode: u32, _mtime: i64) {}
}

/// Supplies one uploaded file.
pub trait Source {
    /// Size of the whole file, announced to the server up front.
    fn size(&self) -> u64;
    /// The server resumes from `offset`: the bytes before it count for the digest
    /// but are not sent.
    fn start(&mut self, offset: u64) -> io::Result<()>;
    /// Fills `buf` with the next bytes; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Like [`read`](Self::read), for a caller that sends `buf[..n]` next
    /// and then calls [`sent`](Self::sent) with the same buffer: a source
    /// that hashes on another thread leaves the bytes to `sent`, which hands
    /// the buffer itself to that thread instead of a copy. The default is
    /// `read`.
    fn read_owned(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read(buf)
    }
    /// The `n` bytes of the last [`read_owned`](Self::read_owned) are sent:
    /// the source may take `buf`, leaving another of the same length.
    fn sent(&mut self, _buf: &mut Vec<u8>, _n: usize) {}
    /// The MD5 of the whole file, asked for after the last read.
    fn digest(&mut self) -> Digest;
    /// What the server is told of the file: permission bits, modification
    /// time, and whether to keep them (`-p`) rather than apply the bits less
    /// its umask.
    fn attrs(&self) -> (u32, i64, bool) {
        (0o666, 0, false)
    }
}

/// One file of a pipelined batch download.
pub struct BatchGet<'a> {
    pub remote: String,
    pub offset: u64,
    pub receiver: &'a mut dyn Receiver,
}

/// One file of a pipelined batch upload.
pub struct BatchPut<'a> {
    pub remote: String,
    pub source: &'a mut dyn Source,
}

/// The server, as a verb sees it. Paths are remote paths as the user typed them,
/// relative to the remote working directory or absolute from the root.
pub trait Remote {
    /// Where we are connected, for messages and the prompt.
    fn address(&self) -> String;
    /// The remote working directory as of the last `cd`.
    fn cwd(&self) -> String;

    fn echo(&mut self, text: &str) -> RemoteResult<String>;
    /// Runs a command with `sh -c`; output goes to `out`/`err` as it arrives.
    fn exec(
        &mut self,
        command: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> RemoteResult<ExitStatus>;
    fn list(&mut self, path: &str) -> RemoteResult<Vec<Entry>>;
    fn stat(&mut self, path: &str) -> RemoteResult<Entry>;
    /// Changes the remote directory; returns the new one.
    fn cd(&mut self, path: &str) -> RemoteResult<String>;
    fn pwd(&mut self) -> RemoteResult<String>;
    fn mkdir(&mut self, path: &str, parents: bool) -> RemoteResult<()>;
    fn remove(&mut self, path: &str, recursive: bool) -> RemoteResult<()>;
    fn md5(&mut self, path: &str) -> RemoteResult<Digest>;
    /// Paths (as the pattern was written: relative or absolute) matching a glob.
    fn glob(&mut self, pattern: &str) -> RemoteResult<Vec<String>>;
    /// Like [`Remote::glob`], with what each match is (kind and size, links
    /// followed), so that a batch knows its files without a `stat` apiece. The
    /// default asks `stat` for each match; the engine gets it all in one request.
    fn glob_entries(&mut self, pattern: &str) -> RemoteResult<Vec<Entry>> {
        let names = self.glob(pattern)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut entry = self.stat(&name)?;
            entry.name = name;
            out.push(entry);
        }
        Ok(out)
    }
    /// Every entry below a directory, parents before children, names relative to it.
    fn walk(&mut self, path: &str) -> RemoteResult<Vec<Entry>>;
    /// [`Remote::walk`], links followed (`follow`, as `-L`) or listed as links
    /// with their targets (a faithful copy).
    fn walk_links(&mut self, path: &str, follow: bool) -> RemoteResult<Vec<Entry>> {
        let _ = follow;
        self.walk(path)
    }
    /// Makes the symbolic link `path` holding `target` as given (a link of a
    /// tree being copied), replacing a link or file of that name.
    fn make_link(&mut self, path: &str, target: &str) -> RemoteResult<()> {
        let _ = target;
        Err(RemoteError::Refused(format!(
            "{path}: this server cannot make links"
        )))
    }
    /// Sets a remote directory's mode (and with `keep`, its time), as an
    /// upload does for a file.
    fn set_attrs(&mut self, path: &str, mode: u32, mtime: i64, keep: bool) -> RemoteResult<()> {
        let _ = (path, mode, mtime, keep);
        Ok(())
    }

    /// Streams a file into `receiver` starting at `offset`; returns the MD5 the
    /// server computed over the whole file. Verification is the caller's.
    fn download(
        &mut self,
        path: &str,
        offset: u64,
        receiver: &mut dyn Receiver,
    ) -> RemoteResult<Digest>;
    /// Uploads a file; `resume` asks the server to continue its partial copy. The
    /// server verifies the digest from `source` and installs the file atomically.
    fn upload(&mut self, path: &str, resume: bool, source: &mut dyn Source) -> RemoteResult<()>;

    /// Downloads several files with the requests pipelined, so that a batch of
    /// small files does not pay a round trip per file. One result per item, in
    /// order; an `Err` of the whole call means the connection is gone.
    fn download_batch(
        &mut self,
        items: &mut [BatchGet<'_>],
    ) -> RemoteResult<Vec<RemoteResult<Digest>>> {
        let mut results = Vec::new();
        for item in items.iter_mut() {
            let r = self.download(&item.remote, item.offset, item.receiver);
            if let Err(RemoteError::ConnectionLost(_) | RemoteError::Interrupted) = r {
                return Err(r.unwrap_err());
            }
            results.push(r);
        }
        Ok(results)
    }
    /// Uploads several files with the requests pipelined (see `download_batch`).
    fn upload_batch(&mut self, items: &mut [BatchPut<'_>]) -> RemoteResult<Vec<RemoteResult<()>>> {
        let mut results = Vec::new();
        for item in items.iter_mut() {
            let r = self.upload(&item.remote, false, item.source);
            if let Err(RemoteError::ConnectionLost(_) | RemoteError::Interrupted) = r {
                return Err(r.unwrap_err());
            }
            results.push(r);
        }
        Ok(results)
    }

    /// The remote directory before the last `cd` (for `cd -`), if any.
    fn previous_dir(&self) -> Option<String> {
        None
    }
    /// Renames `from` to the path `to`; an existing `to` is refused.
    fn rename(&mut self, from: &str, to: &str) -> RemoteResult<()> {
        let _ = (from, to);
        Err(unsupported("rename"))
    }
    /// Sets the permission bits (octal, at most `0o7777`).
    fn chmod(&mut self, path: &str, mode: u32) -> RemoteResult<()> {
        let _ = (path, mode);
        Err(unsupported("chmod"))
    }
    /// Removes an empty directory.
    fn rmdir(&mut self, path: &str) -> RemoteResult<()> {
        let _ = path;
        Err(unsupported("rmdir"))
    }
    /// Makes `link` a symbolic link to `target` (refused if it would lead
    /// outside the root).
    fn symlink(&mut self, target: &str, link: &str) -> RemoteResult<()> {
        let _ = (target, link);
        Err(unsupported("ln"))
    }
    /// What `path` itself is (a final link not followed), with a link's target.
    fn stat_details(&mut self, path: &str) -> RemoteResult<Details> {
        let _ = path;
        Err(unsupported("stat"))
    }
    /// The sizes of the file system holding `path`.
    fn space(&mut self, path: &str) -> RemoteResult<Space> {
        let _ = path;
        Err(unsupported("df"))
    }
}

/// What `stat` shows of one remote name ([`Remote::stat_details`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// The name itself (a final link not followed), named by its last component.
    pub entry: Entry,
    /// A link's target as stored, unescaped (the verb escapes what it prints).
    pub target: Option<String>,
}

/// The sizes of a remote file system, in bytes ([`Remote::space`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub size: u64,
    pub free: u64,
    /// What an unprivileged user may still use.
    pub avail: u64,
}

/// The refusal of a request this server does not know.
pub fn unsupported(what: &str) -> RemoteError {
    RemoteError::Refused(format!("{what}: unsupported by this server"))
}

/// Progress of one transfer, or of a batch.
pub trait Progress {
    fn set_position(&self, done: u64);
    fn inc(&self, n: u64);
    fn set_message(&self, _msg: &str) {}
    fn finish(&self);
}

/// A progress display that shows nothing (script mode, tests).
pub struct NoProgress;
impl Progress for NoProgress {
    fn set_position(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

/// The terminal, as a verb sees it.
pub trait Ui {
    /// Results go here.
    fn out(&mut self) -> &mut dyn Write;
    /// What is said about a result rather than the result itself (the line
    /// after a transfer: size, time, rate): [`Ui::out`], or nowhere when quiet
    /// (`ftpsh -q`). Data the user asked for (`ls`, `pwd`, `md5`, `echo`,
    /// `exec`) goes to [`Ui::out`], quiet or not.
    fn info(&mut self) -> &mut dyn Write {
        self.out()
    }
    /// Warnings and the stderr of remote commands go here.
    fn err(&mut self) -> &mut dyn Write;
    /// Both streams at once (for `exec`).
    fn streams(&mut self) -> (&mut dyn Write, &mut dyn Write);
    /// True when stdout is a terminal. Names in results are then escaped (see
    /// [`ftpsh_core::display`]); through a pipe a program gets them exact.
    fn out_is_terminal(&self) -> bool;
    /// A progress bar for one file (`total` bytes); hidden in script mode.
    /// `name`, like every text given for stderr, comes escaped by the caller.
    fn progress(&mut self, name: &str, total: u64) -> Box<dyn Progress>;
    /// Bars for a batch: the whole batch (`files`, `bytes`) and the current file.
    fn batch_progress(&mut self, files: u64, bytes: u64) -> Box<dyn BatchProgress> {
        let _ = (files, bytes);
        Box::new(NoProgress)
    }
    /// True when a person is at a terminal (prompt, progress bars, colors).
    fn interactive(&self) -> bool;
    /// True once the user pressed Ctrl-C: the running verb should stop, and the
    /// runner then stops the whole line or script (`--keep-going` is about
    /// failures, not about the user asking to stop). The shell forgets it before
    /// the next line typed at the prompt.
    fn interrupted(&self) -> bool;
    /// The flag behind [`Ui::interrupted`], for local work that runs long
    /// inside a verb without going through the [`Remote`] (hashing the kept
    /// part of a resumed file): it checks the flag as it goes. The default is a
    /// flag that never rises.
    fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }
    /// When `meta` describes our own stdout or stderr (`get x /dev/stdout`,
    /// whatever it is redirected to), a duplicate of that descriptor, and
    /// whether it is stdout. Data for it is written through the descriptor,
    /// keeping its offset and append mode, instead of replacing the file it
    /// may be redirected to; after data on stdout, no summary line.
    fn std_stream(&self, meta: &std::fs::Metadata) -> Option<(std::fs::File, bool)> {
        let _ = meta;
        None
    }
    /// True once a write to [`Ui::out`] found nobody reading (a closed pipe, as in
    /// `ftpsh -c 'exec yes' | head -1`). The runner then stops without a word, as
    /// ripgrep does: whatever else the verb made of it is not worth a message.
    fn output_closed(&self) -> bool {
        false
    }
    /// Tells the Ui that stdout was found closed other than through
    /// [`Ui::out`] (a download written straight into it, [`Ui::std_stream`]), so
    /// that the runner stops as quietly as for any closed stdout.
    fn mark_output_closed(&mut self) {}
    /// Reports a failed command as `ftpsh: VERB: message` on stderr. Names in
    /// the message are escaped already; an implementation still passes it
    /// through [`ftpsh_core::display::guard`] in case one was not.
    fn report_error(&mut self, verb: &str, message: &str);
    /// Reports a warning that does not fail the command (escaped as for
    /// [`Ui::report_error`]).
    fn warn(&mut self, verb: &str, message: &str) {
        let line = format!("ftpsh: {verb}: warning: {message}");
        let _ = writeln!(self.err(), "{}", ftpsh_core::display::guard(&line));
    }
}

/// Progress of a batch: one bar for the whole and one for the current file.
pub trait BatchProgress: Progress {
    /// Starts the next file of the batch.
    fn file(&mut self, name: &str, size: u64) -> Box<dyn Progress>;
    /// One file ended (done or failed).
    fn file_done(&self);
}

impl BatchProgress for NoProgress {
    fn file(&mut self, _: &str, _: u64) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
    fn file_done(&self) {}
}

/// Everything a running verb can reach.
pub struct Context<'a> {
    pub remote: &'a mut dyn Remote,
    pub ui: &'a mut dyn Ui,
    /// The built-in verbs, for `help` and `type`.
    pub verbs: &'a Verbs,
    /// The alias table, for `alias`, `unalias`, `type` and `help`.
    pub aliases: &'a mut Aliases,
    /// How many `source` files deep we are, to stop a file that sources itself.
    pub depth: usize,
    /// `--keep-going` is in force (for `source`).
    pub keep_going: bool,
}
