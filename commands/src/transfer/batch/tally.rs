//! What a batch came to: the summary line, and the verb's result with one line
//! per failed file.

use crate::session::RemoteError;
use crate::transfer::{human_bytes, Timer};
use crate::{CommandError, Context, Flow};

/// What a batch came to, for the summary line and the verb's result.
pub(super) struct Tally {
    /// The command that resumes this one (`get -r -c`), for the abort message.
    again: String,
    timer: Timer,
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) skipped: u64,
    /// Symbolic links of trees made as links.
    pub(super) links: u64,
    pub(super) failures: Vec<String>,
}

impl Tally {
    pub(super) fn new(verb: &str, recursive: bool) -> Self {
        Tally {
            again: format!("{verb}{} -c", if recursive { " -r" } else { "" }),
            timer: Timer::start(),
            files: 0,
            bytes: 0,
            skipped: 0,
            links: 0,
            failures: Vec::new(),
        }
    }

    /// `12 files, 3.4 MiB in 0.21 s (16.2 MiB/s), md5 ok, 0 failed`; with
    /// no file copied or found complete, nothing to claim: `0 files in 0.01 s,
    /// 1 failed`.
    fn summary(&self) -> String {
        let secs = self.timer.elapsed().as_secs_f64().max(1e-6);
        let mut line = if self.files == 0 && self.skipped == 0 {
            format!("0 files in {secs:.2} s")
        } else {
            format!(
                "{}, {} in {secs:.2} s ({}/s), md5 ok",
                plural(self.files, "file"),
                human_bytes(self.bytes),
                human_bytes((self.bytes as f64 / secs) as u64)
            )
        };
        if self.skipped > 0 {
            line.push_str(&format!(", {} already complete", self.skipped));
        }
        if self.links > 0 {
            line.push_str(&format!(", {}", plural(self.links, "link")));
        }
        line.push_str(&format!(", {} failed", self.failures.len()));
        line
    }

    /// Prints the summary; fails naming each failed file, if any.
    pub(super) fn finish(self, ctx: &mut Context) -> Result<Flow, CommandError> {
        writeln!(ctx.ui.info(), "{}", self.summary())?;
        self.result()
    }

    pub(super) fn result(self) -> Result<Flow, CommandError> {
        if self.failures.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(failure_error(&self.failures))
        }
    }

    /// The batch stopped (connection lost, Ctrl-C): summary, then why, what to
    /// do, and the files that had failed before.
    pub(super) fn abort(self, ctx: &mut Context, e: RemoteError) -> Result<Flow, CommandError> {
        writeln!(ctx.ui.info(), "{}", self.summary())?;
        let mut message = format!(
            "{e}; the files done so far are installed and partial files are kept: \
             '{}' with the same arguments resumes",
            self.again
        );
        for f in &self.failures {
            message.push_str("\n  ");
            message.push_str(f);
        }
        Err(CommandError::msg(message))
    }
}

pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The error of a verb whose files failed: one line per failure.
pub(crate) fn failure_error(failures: &[String]) -> CommandError {
    match failures {
        [one] => CommandError::msg(one),
        many => CommandError::msg(format!("{} failed:\n  {}", many.len(), many.join("\n  "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_files_bytes_and_failures() {
        let mut t = Tally::new("get", true);
        t.files = 12;
        t.bytes = 3 << 20;
        let line = t.summary();
        assert!(line.starts_with("12 files, 3.0 MiB in "), "{line}");
        assert!(line.ends_with("/s), md5 ok, 0 failed"), "{line}");
        t.files = 1;
        t.skipped = 2;
        t.failures.push("x: gone".into());
        let line = t.summary();
        assert!(line.starts_with("1 file, "), "{line}");
        assert!(line.ends_with(", 2 already complete, 1 failed"), "{line}");
        t.files = 0;
        t.skipped = 0;
        let line = t.summary();
        assert!(line.starts_with("0 files in "), "{line}");
        assert!(line.ends_with(" s, 1 failed"), "{line}");
        assert!(!line.contains("md5 ok"), "{line}");
    }

    #[test]
    fn several_failures_make_one_line_each() {
        let e = failure_error(&["a: gone".into(), "b: denied".into()]).to_string();
        assert_eq!(e, "2 failed:\n  a: gone\n  b: denied");
        let e = failure_error(&["a: gone".into()]).to_string();
        assert_eq!(e, "a: gone");
    }
}
