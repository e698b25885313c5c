//! Partial files on both sides (`NAME.ftpsh-part`), named in one place so that
//! the server and the client agree on what `-c` resumes and what trees skip.
//!
//! A download is written beside its destination under the partial name while
//! it is hashed, and renamed over the destination once its digest matched; an
//! upload likewise on the server. Near NAME_MAX a name is shortened,
//! deterministically, so the partial can exist at all and `-c` still finds it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::entry::hex;
use crate::hashing::Md5;

/// The suffix of a partial download or upload.
pub const PARTIAL_SUFFIX: &str = ".ftpsh-part";

/// The longest file name Linux file systems accept, in bytes.
pub const NAME_MAX: usize = 255;

/// Where the partial copy of `dest` lives while it downloads.
pub fn partial_path(dest: &Path) -> PathBuf {
    dest.with_file_name(partial_name(dest.file_name().unwrap_or_default()))
}

/// The partial file's name for a file named `name` (`NAME.ftpsh-part`, shortened
/// when that would be too long; see [`decorated_name`]). Both sides use it, so
/// `get -c` and `put -c` find what an interrupted transfer left.
pub fn partial_name(name: &OsStr) -> OsString {
    decorated_name("", name, PARTIAL_SUFFIX)
}

/// `prefix` + `name` + `suffix`, always a valid file name: a name that would
/// otherwise pass NAME_MAX keeps as much of its start as fits (whole characters
/// if it is UTF-8, so the result stays printable), followed by `~` and a digest
/// of the whole name, so that long names sharing a start still get different
/// partials and the same name always gets the same one.
pub fn decorated_name(prefix: &str, name: &OsStr, suffix: &str) -> OsString {
    let bytes = name.as_bytes();
    let mut out = OsString::from(prefix);
    if prefix.len() + bytes.len() + suffix.len() <= NAME_MAX {
        out.push(name);
    } else {
        let tag = format!("~{}", &hex(&Md5::digest(bytes))[..16]);
        let room = NAME_MAX.saturating_sub(prefix.len() + tag.len() + suffix.len());
        let mut keep = room.min(bytes.len());
        if let Ok(text) = std::str::from_utf8(bytes) {
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
        }
        out.push(OsStr::from_bytes(&bytes[..keep]));
        out.push(tag);
    }
    out.push(suffix);
    out
}

/// Where the server keeps its partial copy of the remote file `path`.
pub fn remote_partial_path(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    let partial = partial_name(OsStr::new(name));
    let partial = partial.to_string_lossy();
    match dir {
        Some(dir) => format!("{dir}/{partial}"),
        None => partial.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sits_beside_its_destination() {
        assert_eq!(
            partial_path(Path::new("dir/a b.txt")),
            PathBuf::from("dir/a b.txt.ftpsh-part")
        );
    }

    #[test]
    fn partial_names_always_fit_name_max() {
        use std::os::unix::ffi::OsStringExt;
        let name = |n: &OsStr| partial_name(n).into_vec();
        // Up to 244 bytes the suffix is simply appended.
        let fits = "x".repeat(244);
        assert_eq!(
            name(OsStr::new(&fits)),
            format!("{fits}.ftpsh-part").into_bytes()
        );
        // Beyond, the name is cut between characters and tagged with a digest
        // of the whole name: deterministic, distinct for a shared start.
        let stem = "é".repeat(120);
        let (a, b) = (format!("{stem}a"), format!("{stem}b"));
        let pa = name(OsStr::new(&a));
        assert!(pa.len() <= 255, "{}", pa.len());
        let pa = String::from_utf8(pa).expect("still UTF-8");
        assert!(pa.starts_with(&"é".repeat(100)) && pa.ends_with(PARTIAL_SUFFIX));
        assert_eq!(name(OsStr::new(&a)), pa.as_bytes());
        assert_ne!(name(OsStr::new(&b)), pa.as_bytes());
        assert_eq!(name(OsStr::new(&"x".repeat(245))).len(), 255);
        // Bytes that are not UTF-8 are cut anywhere.
        let raw = OsString::from_vec(vec![0xff; 300]);
        let p = name(&raw);
        assert!(p.len() <= 255 && p.starts_with(&[0xff; 200]) && p.ends_with(b".ftpsh-part"));
        // The server's private decoration fits too.
        let private = decorated_name(
            ".",
            OsStr::new(&a),
            ".4294967295.18446744073709551615.ftpsh-part",
        );
        assert!(private.len() <= 255 && private.to_str().unwrap().starts_with(".é"));
        assert_eq!(remote_partial_path("d/e/x.bin"), "d/e/x.bin.ftpsh-part");
        assert_eq!(remote_partial_path(&format!("d/{a}")), format!("d/{pa}"));
    }
}
