//! The known-servers file: one `HOST:PORT SHA256:...` per line, `#` comments
//! (whole lines, or after the fingerprint) and blank lines.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::identity::parse_fingerprint;

/// A recorded fingerprint and where it is (1-based line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownEntry {
    pub fingerprint: String,
    pub line: usize,
}

/// The known-servers file at one path (it need not exist yet).
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

/// The key of a server in the file: `host:port`, the host in lower case, an
/// IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let h = h.to_ascii_lowercase();
    if h.contains(':') {
        format!("[{h}]:{port}")
    } else {
        format!("{h}:{port}")
    }
}

impl KnownServers {
    pub fn new(path: impl Into<PathBuf>) -> KnownServers {
        KnownServers { path: path.into() }
    }

    /// `$FTPSH_KNOWN_SERVERS`, else `known_servers` under ftpsh's XDG data
    /// directory (`$XDG_DATA_HOME/ftpsh`, else `~/.local/share/ftpsh`).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FTPSH_KNOWN_SERVERS").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".local/share"))
            })?;
        Some(data.join("ftpsh").join("known_servers"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first entry for `host_port` (compared without regard to case). A
    /// missing file knows no server. An entry for this server whose
    /// fingerprint is malformed is an error naming the file and line.
    pub fn lookup(&self, host_port: &str) -> io::Result<Option<KnownEntry>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        find(&text, host_port)
            .map(|(line, fp)| {
                parse_fingerprint(fp)
                    .map(|fingerprint| KnownEntry { fingerprint, line })
                    .map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}:{line}: {e}", self.path.display()),
                        )
                    })
            })
            .transpose()
    }

    /// Records `fingerprint` for `host_port`: appends a line (creating the
    /// file with mode 0600, and its directory with 0700), or, when the server
    /// already has a line with another fingerprint, rewrites that line in
    /// place (comments and other lines kept). Nothing changes if it is
    /// already recorded.
    pub fn record(&self, host_port: &str, fingerprint: &str) -> io::Result<()> {
        let fp = parse_fingerprint(fingerprint)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let new_line = format!("{host_port} {fp}");
        match find(&text, host_port) {
            Some((_, old)) if parse_fingerprint(old).ok().as_deref() == Some(fp.as_str()) => Ok(()),
            Some((line, _)) => {
                let mut out = String::with_capacity(text.len() + 64);
                for (i, l) in text.lines().enumerate() {
                    out.push_str(if i + 1 == line { &new_line } else { l });
                    out.push('\n');
                }
                let tmp = self.path.with_extension("tmp");
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(out.as_bytes())?;
                f.sync_all()?;
                fs::rename(&tmp, &self.path)
            }
            None => {
                let mut f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(&self.path)?;
                let sep = if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                f.write_all(format!("{sep}{new_line}\n").as_bytes())?;
                f.sync_all()
            }
        }
    }

    /// The loud refusal for a recorded fingerprint that no longer matches.
    pub fn mismatch_message(&self, host_port: &str, entry: &KnownEntry, got: &str) -> String {
        let at = format!("{}:{}", self.path.display(), entry.line);
        format!(
            "WARNING: the identity of {host_port} has CHANGED.\n\
             \x20 recorded: {expected}  ({at})\n\
             \x20 now:      {got}\n\
             Someone may be intercepting this connection, or the server got a new key.\n\
             The token was not sent. If the change is expected, check the new fingerprint\n\
             with the server's operator (ftpsh-server --print-fingerprint), then edit or\n\
             delete line {line} of {file} ({at}), or connect with --fingerprint {got}",
            expected = entry.fingerprint,
            line = entry.line,
            file = self.path.display(),
        )
    }

    /// The refusal for an unknown server when nobody can be asked.
    pub fn unknown_message(&self, host_port: &str, got: &str) -> String {
        format!(
            "the identity of {host_port} is not known: {got}\n\
             Check it with the server's operator (ftpsh-server --print-fingerprint), then\n\
             connect with --fingerprint {got} (it is then recorded in {})",
            self.path.display()
        )
    }
}

/// The first line naming `host_port`: its 1-based number and fingerprint text.
fn find<'t>(text: &'t str, host_port: &str) -> Option<(usize, &'t str)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let l = l.split('#').next().unwrap_or("");
        let mut words = l.split_whitespace();
        let (h, fp) = (words.next()?, words.next()?);
        h.eq_ignore_ascii_case(host_port).then_some((i + 1, fp))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fp(n: u8) -> String {
        crate::tls::identity::fingerprint_of_spki(&[n])
    }

    #[test]
    fn host_ports_are_canonical() {
        assert_eq!(host_port("Example.COM", 6969), "example.com:6969");
        assert_eq!(host_port("::1", 7), "[::1]:7");
        assert_eq!(host_port("[::1]", 7), "[::1]:7");
        assert_eq!(host_port("10.0.0.1", 1), "10.0.0.1:1");
    }

    #[test]
    fn lookup_record_and_lines() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/dir/known_servers");
        let k = KnownServers::new(&path);
        assert_eq!(k.lookup("a:1").unwrap(), None);
        k.record("a:1", &fp(1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // Comments, blanks, a trailing comment, a line with no newline at the end.
        let mut text = fs::read_to_string(&path).unwrap();
        text = format!("# known servers\n\n{text}   \nb:2 {}  # the b box", fp(2));
        fs::write(&path, &text).unwrap();
        assert_eq!(
            k.lookup("a:1").unwrap(),
            Some(KnownEntry {
                fingerprint: fp(1),
                line: 3
            })
        );
        assert_eq!(
            k.lookup("B:2").unwrap(),
            Some(KnownEntry {
                fingerprint: fp(2),
                line: 5
            })
        );
        k.record("c:3", &fp(3)).unwrap();
        assert_eq!(k.lookup("c:3").unwrap().unwrap().line, 6);
        // Same again: unchanged. Another fingerprint: line replaced in place.
        k.record("c:3", &fp(3)).unwrap();
        k.record("a:1", &fp(9)).unwrap();
        assert_eq!(
            k.lookup("a:1").unwrap(),
            Some(KnownEntry {
                fingerprint: fp(9),
                line: 3
            })
        );
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("# known servers\n\n"));
        assert_eq!(after.lines().count(), 6);
        assert_eq!(mode(&path), 0o600);

        let e = k.lookup("a:1").unwrap().unwrap();
        let msg = k.mismatch_message("a:1", &e, &fp(4));
        assert!(msg.contains(&fp(9)) && msg.contains(&fp(4)));
        assert!(msg.contains(&format!("{}:3", path.display())));

        fs::write(&path, "x:1 SHA256:nonsense\n").unwrap();
        let err = k.lookup("x:1").unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
        assert!(k.record("y:1", "bogus").is_err());
    }
}
