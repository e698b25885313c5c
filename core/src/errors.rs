//! I/O errors as people read them.

use std::io;

/// An I/O error as a short lower-case phrase, without the `(os error N)`.
pub fn describe(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        AlreadyExists => "already exists".into(),
        IsADirectory => "is a directory".into(),
        NotADirectory => "not a directory".into(),
        DirectoryNotEmpty => "directory not empty (use rm -r)".into(),
        StorageFull => "no space left on the server".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}
