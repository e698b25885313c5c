//! I/O errors as people read them, and the one error of the jail: a path that
//! leads outside the served root ([`escape_error`], [`is_escape`]).

use std::fmt;
use std::io;

/// The error payload of an escape; see [`is_escape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escape;

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("leads outside the served root")
    }
}

impl std::error::Error for Escape {}

/// The error for a path that leads outside the root. Its kind is
/// `PermissionDenied` (it is a refusal); tell it apart with [`is_escape`].
pub fn escape_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Escape)
}

/// True for the error of a path that leads outside the root.
pub fn is_escape(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Escape>())
}

/// An I/O error as a short lower-case phrase, without the `(os error N)`:
/// "no such file or directory", "permission denied", "leads outside the
/// served root". An error made with a message of its own gives that message.
pub fn describe(e: &io::Error) -> String {
    use io::ErrorKind::*;
    if is_escape(e) {
        return Escape.to_string();
    }
    if e.raw_os_error().is_none() {
        if let Some(inner) = e.get_ref() {
            return inner.to_string();
        }
    }
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        AlreadyExists => "already exists".into(),
        IsADirectory => "is a directory".into(),
        NotADirectory => "not a directory".into(),
        DirectoryNotEmpty => "directory not empty".into(),
        StorageFull => "no space left on the device".into(),
        ReadOnlyFilesystem => "read-only file system".into(),
        CrossesDevices => "cannot move across file systems".into(),
        _ => {
            let s = e.to_string();
            let s = match s.find(" (os error") {
                Some(i) => &s[..i],
                None => &s[..],
            };
            // strerror's capital first letter, as the phrases above; the rest
            // as it is (names such as PATH_MAX keep their case).
            let mut chars = s.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => s.to_string(),
            }
        }
    }
}

/// `text` with every `Strerror phrase (os error N)` in it written as
/// [`describe`] writes it: `cannot write x: no such file or directory`. The
/// last net for messages that formatted an [`io::Error`] with `{}`.
pub fn without_os_errors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        let Some(len) = rest[at..].find(')') else {
            break;
        };
        let number = &rest[at + " (os error ".len()..at + len];
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&rest[..at + len + 1]);
            rest = &rest[at + len + 1..];
            continue;
        }
        // The phrase starts after the last ": " (or at the start).
        let head = &rest[..at];
        let start = head.rfind(": ").map_or(0, |i| i + 2);
        out.push_str(&head[..start]);
        let mut chars = head[start..].chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_lowercase());
            out.push_str(chars.as_str());
        }
        rest = &rest[at + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_has_no_os_error_numbers() {
        let os = io::Error::from_raw_os_error;
        let cases: Vec<(io::Error, &str)> = vec![
            (os(libc::ENOENT), "no such file or directory"),
            (os(libc::EACCES), "permission denied"),
            (os(libc::EEXIST), "already exists"),
            (os(libc::ENOTEMPTY), "directory not empty"),
            (os(libc::ENOSPC), "no space left on the device"),
            (os(libc::ELOOP), "too many levels of symbolic links"),
            (os(libc::ENAMETOOLONG), "file name too long"),
            (escape_error(), "leads outside the served root"),
            (io::Error::other("custom words"), "custom words"),
            (
                io::Error::new(io::ErrorKind::NotFound, "a message of its own"),
                "a message of its own",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(describe(&e), want);
            assert!(!describe(&e).contains("os error"));
        }
        assert!(is_escape(&escape_error()));
        assert!(!is_escape(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
    }

    #[test]
    fn os_error_numbers_are_taken_out_of_any_message() {
        assert_eq!(
            without_os_errors("cannot write a/b: No such file or directory (os error 2)"),
            "cannot write a/b: no such file or directory"
        );
        assert_eq!(
            without_os_errors("Not a directory (os error 20); x: Permission denied (os error 13)"),
            "not a directory; x: permission denied"
        );
        assert_eq!(
            without_os_errors("a file (os error x)"),
            "a file (os error x)"
        );
        assert_eq!(without_os_errors("plain"), "plain");
    }
}
