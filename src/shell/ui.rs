//! The terminal as the verbs see it: stdout for results, stderr for errors and
//! progress bars, colors only where a person is looking.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use colored::Colorize;
use ftpsh_commands::session::{BatchProgress, NoProgress, Progress, Ui};
use ftpsh_core::display::guard;
use ftpsh_core::errors::without_os_errors;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Standard streams, progress bars and the Ctrl-C flag.
pub struct TermUi {
    out: Stdout,
    err: io::Stderr,
    /// `-q`: summaries go here (nowhere) instead of stdout.
    quiet: Option<io::Sink>,
    interactive: bool,
    out_tty: bool,
    /// Draw progress bars (interactive and stderr is a terminal).
    bars: bool,
    color_err: bool,
    interrupt: Arc<AtomicBool>,
}

impl TermUi {
    /// `quiet` (`ftpsh -q`): no summary lines, no progress bars; results,
    /// warnings and errors as always.
    pub fn new(interactive: bool, color: bool, quiet: bool, interrupt: Arc<AtomicBool>) -> Self {
        let stderr_tty = io::stderr().is_terminal();
        TermUi {
            out: Stdout {
                inner: io::stdout(),
                closed: false,
            },
            err: io::stderr(),
            quiet: quiet.then(io::sink),
            interactive,
            out_tty: io::stdout().is_terminal(),
            bars: interactive && stderr_tty && !quiet,
            color_err: color && stderr_tty,
            interrupt,
        }
    }

    /// `-q`: nothing but results, warnings and errors.
    pub fn quiet(&self) -> bool {
        self.quiet.is_some()
    }

    /// Forgets a Ctrl-C that stopped the previous line typed at the prompt, so
    /// that it does not stop the next one (or a completion's listing).
    pub fn forget_interrupt(&self) {
        self.interrupt.store(false, Ordering::SeqCst);
    }
}

/// Stdout that remembers finding its reader gone. Rust ignores SIGPIPE, so a
/// closed pipe shows up as EPIPE on every write; the runner asks
/// [`Ui::output_closed`] and stops quietly instead of reporting the error.
struct Stdout {
    inner: io::Stdout,
    closed: bool,
}

impl Stdout {
    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::BrokenPipe) {
            self.closed = true;
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let r = self.inner.flush();
        self.note(r)
    }
}

/// One terminal line: the name takes what the rest leaves and is cut short
/// rather than wrapped (a wrapped line is what a redraw leaves behind when
/// the terminal reflows it).
fn file_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{wide_msg:.bold} {bar:20.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ")
}

/// A file's bar, drawn nowhere yet: `draw` gives it its place (the terminal,
/// or a batch's [`MultiProgress`]) before its first tick, so that it never
/// draws a stray copy of itself where the batch's lines are.
fn bar(name: &str, total: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    pb.set_style(file_style());
    pb.set_message(guard(name).into_owned());
    pb
}

/// An indicatif bar behind the verbs' `Progress` trait; `multi`, the batch
/// it is a line of.
struct Bar(ProgressBar, Option<MultiProgress>);

impl Progress for Bar {
    fn set_position(&self, done: u64) {
        self.0.set_position(done);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_message(&self, msg: &str) {
        self.0.set_message(guard(msg).into_owned());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
        if let Some(multi) = &self.1 {
            multi.remove(&self.0);
        }
    }
}

/// Two bars: the batch (files and bytes) above, the current file below.
struct Batch {
    multi: MultiProgress,
    total: ProgressBar,
    files: u64,
    done: std::cell::Cell<u64>,
}

impl Progress for Batch {
    fn set_position(&self, done: u64) {
        self.total.set_position(done);
    }
    fn inc(&self, n: u64) {
        self.total.inc(n);
    }
    fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl BatchProgress for Batch {
    fn file(&mut self, name: &str, size: u64) -> Box<dyn Progress> {
        let pb = self.multi.add(bar(name, size));
        pb.enable_steady_tick(Duration::from_millis(250));
        Box::new(Bar(pb, Some(self.multi.clone())))
    }
    fn file_done(&self) {
        self.done.set(self.done.get() + 1);
        self.total
            .set_message(format!("{}/{} files", self.done.get(), self.files));
    }
}

impl Ui for TermUi {
    fn out(&mut self) -> &mut dyn Write {
        &mut self.out
    }
    fn err(&mut self) -> &mut dyn Write {
        &mut self.err
    }
    fn info(&mut self) -> &mut dyn Write {
        match &mut self.quiet {
            Some(sink) => sink,
            None => &mut self.out,
        }
    }
    fn streams(&mut self) -> (&mut dyn Write, &mut dyn Write) {
        (&mut self.out, &mut self.err)
    }
    fn out_is_terminal(&self) -> bool {
        self.out_tty
    }
    fn progress(&mut self, name: &str, total: u64) -> Box<dyn Progress> {
        if self.bars {
            let pb = bar(name, total);
            pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            pb.enable_steady_tick(Duration::from_millis(250));
            Box::new(Bar(pb, None))
        } else {
            Box::new(NoProgress)
        }
    }
    fn batch_progress(&mut self, files: u64, bytes: u64) -> Box<dyn BatchProgress> {
        if !self.bars {
            return Box::new(NoProgress);
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total = multi.add(ProgressBar::new(bytes));
        total.set_style(
            ProgressStyle::with_template(
                "{msg:.bold} {wide_bar:.green/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        total.set_message(format!("0/{files} files"));
        total.enable_steady_tick(Duration::from_millis(250));
        Box::new(Batch {
            multi,
            total,
            files,
            done: std::cell::Cell::new(0),
        })
    }
    fn interactive(&self) -> bool {
        self.interactive
    }
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }
    fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }
    fn std_stream(&self, meta: &std::fs::Metadata) -> Option<(std::fs::File, bool)> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        // Duplicates, so that nothing here can close descriptor 1 or 2.
        let out = io::stdout().as_fd().try_clone_to_owned();
        let err = io::stderr().as_fd().try_clone_to_owned();
        [(out, true), (err, false)]
            .into_iter()
            .filter_map(|(fd, is_out)| Some((std::fs::File::from(fd.ok()?), is_out)))
            .find(|(f, _)| {
                f.metadata()
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
            })
    }
    fn output_closed(&self) -> bool {
        self.out.closed
    }
    fn mark_output_closed(&mut self) {
        self.out.closed = true;
    }
    fn report_error(&mut self, verb: &str, message: &str) {
        let message = without_os_errors(message);
        let line = if verb.is_empty() {
            format!("ftpsh: {message}")
        } else {
            format!("ftpsh: {verb}: {message}")
        };
        let line = guard(&line);
        let _ = self.out.flush();
        if self.color_err {
            let _ = writeln!(self.err, "{}", line.red());
        } else {
            let _ = writeln!(self.err, "{line}");
        }
    }
    fn warn(&mut self, verb: &str, message: &str) {
        let line = format!("ftpsh: {verb}: warning: {}", without_os_errors(message));
        let line = guard(&line);
        let _ = self.out.flush();
        if self.color_err {
            let _ = writeln!(self.err, "{}", line.yellow());
        } else {
            let _ = writeln!(self.err, "{line}");
        }
    }
}
