//! Names from the server or the local disk, as people see them.
//!
//! A file name may hold any character but `/` and NUL, and a terminal obeys the
//! control characters it is sent: a name could recolour the screen, move the
//! cursor, set the window title or hide the text after it. So, as GNU `ls` on a
//! terminal and OpenSSH's `sftp` do, a name shown to a person has its control
//! characters (C0, DEL, C1) escaped C-style: `\e`, `\n`, `\r`, `\t`, `\xHH` for
//! the other C0 controls and DEL, `\u{HH}` for C1. A backslash is doubled, so
//! that `\e` in the output always means ESC and never a name's own text. Bytes of
//! a local name that are not UTF-8 show as `\xHH` (80 to ff: no control escape
//! uses those, so this stays unambiguous). Remote names travel as UTF-8 strings
//! (the server already replaced what it could not decode), so only local paths
//! have such bytes to show.
//!
//! Where it applies:
//! - Messages on stderr (errors, warnings, progress labels) always: they are for
//!   people even in a log file. Each name is escaped where it is put into the
//!   message ([`escape`], [`escape_path`]); the server's own messages are escaped
//!   where they reach the client. A terminal `Ui` still passes the finished text
//!   through [`guard`], so that a name someone forgot cannot act on the terminal.
//! - Results on stdout ([`for_out`]) only when stdout is a terminal. Through a
//!   pipe a program gets the exact names, newlines included, as GNU `ls` gives
//!   them; names with newlines are the reader's to cope with, as with `ls`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `name` with control characters and backslashes escaped.
pub fn escape(name: &str) -> Cow<'_, str> {
    escape_where(name, |c| c == '\\' || c.is_control())
}

/// Like [`escape`] for a local path, which is bytes: what is not UTF-8 shows as
/// `\xHH` instead of a replacement character, so two such names stay distinct.
pub fn escape_path(path: &Path) -> Cow<'_, str> {
    let bytes = path.as_os_str().as_bytes();
    if let Ok(text) = std::str::from_utf8(bytes) {
        return escape(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// A name in a result on stdout: escaped when a person reads it on a terminal
/// (`terminal`, from `Ui::out_is_terminal` in `ftpsh-commands`), exact for a program.
pub fn for_out(name: &str, terminal: bool) -> Cow<'_, str> {
    if terminal {
        escape(name)
    } else {
        Cow::Borrowed(name)
    }
}

/// [`for_out`] for a local path: on a terminal undecodable bytes show as `\xHH`
/// too.
pub fn path_for_out(path: &Path, terminal: bool) -> Cow<'_, str> {
    if terminal {
        escape_path(path)
    } else {
        path.to_string_lossy()
    }
}

/// A finished message as a terminal may show it: its own line breaks stay, any
/// other control character is escaped. Backslashes are left alone, since names
/// in the message were escaped already and another pass would double them.
pub fn guard(message: &str) -> Cow<'_, str> {
    escape_where(message, |c| c != '\n' && c.is_control())
}

fn escape_where(text: &str, special: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !special(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\\' => out.write_str("\\\\"),
            '\x1b' => out.write_str("\\e"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn controls_and_backslashes_are_escaped_c_style() {
        assert_eq!(escape("plain é.txt"), "plain é.txt");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("evil\x1b[31mred"), "evil\\e[31mred");
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            escape("bell\x07 del\x7f nul\0"),
            "bell\\x07 del\\x7f nul\\x00"
        );
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{9b}31m");
        // A name that looks like an escape is told apart from one that is.
        assert_eq!(escape("back\\e"), "back\\\\e");
        assert_ne!(escape("back\\e"), escape("back\x1b"));
    }

    #[test]
    fn local_names_that_are_not_utf8_show_their_bytes() {
        let path = Path::new(OsStr::from_bytes(b"caf\xe9\x1b.txt"));
        assert_eq!(escape_path(path), "caf\\xe9\\e.txt");
        assert_eq!(escape_path(Path::new("dir/a\\b")), "dir/a\\\\b");
    }

    #[test]
    fn stdout_is_exact_unless_a_person_reads_it() {
        assert_eq!(for_out("a\nb\x1b", false), "a\nb\x1b");
        assert_eq!(for_out("a\nb\x1b", true), "a\\nb\\e");
    }

    #[test]
    fn the_guard_keeps_lines_and_existing_escapes() {
        assert_eq!(
            guard("2 failed:\n  a\\e: gone\n  b\x1b[2J: gone"),
            "2 failed:\n  a\\e: gone\n  b\\e[2J: gone"
        );
    }
}
