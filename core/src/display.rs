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
//! uses those, so this stays unambiguous). Remote names travel as bytes, held
//! here as text with one private-use character per raw byte (see
//! [`name_from_bytes`]), shown `\xHH` alike; [`unescape`] turns what is shown
//! back into the name, for typing it.
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
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// ---------------------------------------------------------------- names as bytes
//
// A file name is bytes. In memory ftpsh holds names as `String`s in which a
// byte that is not part of valid UTF-8 stands as one character of the last 128
// code points of Unicode (U+10FF80 to U+10FFFF, private use: byte 0xHH is
// U+10FFHH). The mapping is exact both ways: the UTF-8 of a name that holds
// such a character itself (a private-use character nobody types) is taken as
// its four bytes, each mapped alone, so two names never share a string. The
// wire carries the bytes ([`crate::protocol::codec`]); the server's file
// system calls and the client's local paths get the bytes back
// ([`name_to_bytes`], [`local_name`]); people see `\xHH` ([`escape`]).

const RAW_BASE: u32 = 0x10_FF00;

/// Whether `c` stands for a raw byte of a name.
pub fn is_raw_byte(c: char) -> bool {
    u32::from(c) >= RAW_BASE + 0x80
}

fn raw_char(b: u8) -> char {
    char::from_u32(RAW_BASE + u32::from(b)).expect("a valid code point")
}

/// A name's bytes as ftpsh holds them (see above): exactly the text when it
/// is UTF-8 without raw-byte characters.
pub fn name_from_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.chars().any(is_raw_byte) {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_raw_byte(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push(raw_char(b));
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            out.push(raw_char(b));
        }
    }
    Cow::Owned(out)
}

/// The bytes a name held as text stands for (the inverse of [`name_from_bytes`]).
pub fn name_to_bytes(name: &str) -> Cow<'_, [u8]> {
    if !name.chars().any(is_raw_byte) {
        return Cow::Borrowed(name.as_bytes());
    }
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        if is_raw_byte(c) {
            out.push((u32::from(c) - RAW_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// A remote name (or path) as a local path, its bytes exact.
pub fn local_name(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(OsStr::from_bytes(&name_to_bytes(name)))
}

/// A local name (or path) as ftpsh holds names, whatever its bytes.
pub fn name_of_path(path: &Path) -> Cow<'_, str> {
    name_from_bytes(path.as_os_str().as_bytes())
}

/// What a user typed for a name, unescaped: the form [`escape`] shows, so a
/// name `ls` lists can be typed back inside single quotes. `\\` is a
/// backslash, `\xHH` the byte HH (80 to ff: a raw byte of a name), `\e \n \r
/// \t` the controls, `\u{H..}` that character; any other backslash stays.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (c, used) = match after.chars().next() {
            Some('\\') => (Some('\\'), 1),
            Some('e') => (Some('\x1b'), 1),
            Some('n') => (Some('\n'), 1),
            Some('r') => (Some('\r'), 1),
            Some('t') => (Some('\t'), 1),
            Some('x') => match after.get(1..3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if b >= 0x80 => (Some(raw_char(b)), 3),
                Some(b) => (Some(char::from(b)), 3),
                None => (None, 0),
            },
            Some('u') => {
                let code = after
                    .strip_prefix("u{")
                    .and_then(|r| r.split_once('}'))
                    .and_then(|(h, _)| u32::from_str_radix(h, 16).ok().map(|v| (v, h.len())))
                    .and_then(|(v, n)| char::from_u32(v).map(|c| (c, n)));
                match code {
                    Some((c, n)) => (Some(c), n + 3),
                    None => (None, 0),
                }
            }
            _ => (None, 0),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `name` with control characters and backslashes escaped, and the raw bytes
/// of a name that is not UTF-8 as `\xHH`.
pub fn escape(name: &str) -> Cow<'_, str> {
    escape_where(name, |c| c == '\\' || c.is_control() || is_raw_byte(c))
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
    } else if name.chars().any(is_raw_byte) {
        // Text out: the bytes that are not UTF-8 still show as `\xHH`.
        escape_where(name, is_raw_byte)
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
            c if is_raw_byte(c) => write!(out, "\\x{:02x}", u32::from(c) - RAW_BASE),
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
    fn names_that_are_not_utf8_map_to_text_and_back_exactly() {
        for bytes in [
            &b"plain"[..],
            b"a\xffb",
            b"caf\xe9",
            b"\xf4\x8f\xbf\xbf",       // the UTF-8 of a raw-byte character itself
            "x\u{10ff80}y".as_bytes(), // the same, inside a name
            b"\x80\\e",
        ] {
            let name = name_from_bytes(bytes);
            assert_eq!(&*name_to_bytes(&name), bytes, "{name:?}");
        }
        assert_ne!(
            name_from_bytes(b"\x80"),
            name_from_bytes("\u{10ff80}".as_bytes())
        );
        assert!(matches!(name_from_bytes(b"ok"), Cow::Borrowed(_)));
        assert_eq!(escape(&name_from_bytes(b"a\xffb")), "a\\xffb");
        assert_eq!(for_out(&name_from_bytes(b"a\xffb\n"), false), "a\\xffb\n");
    }

    #[test]
    fn what_escape_shows_unescapes_to_the_same_name() {
        for bytes in [
            &b"a\xffb"[..],
            b"back\\slash",
            b"ctl\x1b\n\r\t\x07\x7f",
            "c1\u{9b}é".as_bytes(),
            b"\\xff literally",
            b"\xf4\x8f\xbf\xbf",
        ] {
            let name = name_from_bytes(bytes);
            let shown = escape(&name);
            assert_eq!(unescape(&shown), name, "{shown}");
            assert_eq!(&*name_to_bytes(&unescape(&shown)), bytes);
        }
        assert_eq!(unescape("no escapes"), "no escapes");
        assert_eq!(unescape("odd \\q and \\x"), "odd \\q and \\x");
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
