//! `ssh://[USER@]HOST[:PORT][/PATH]`: the protocol over an `ssh` child's
//! standard input and output, talking to `ftpsh-server --stdio` on the remote
//! side. SSH authenticates both ends and encrypts; ftpsh adds no token.

use std::fmt;
use std::io;
use std::process::{Command, Stdio};

use crate::pipe::PipeStream;

/// Where `ssh://` leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The directory to serve: absolute, or relative to the remote home when
    /// it starts with `~/`. `None` serves the remote home directory.
    pub path: Option<String>,
}

impl SshTarget {
    /// Parses what follows `ssh://`.
    pub fn parse(rest: &str) -> Result<SshTarget, String> {
        let shown = format!("ssh://{rest}");
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(format!("{shown}: empty user name before '@'")),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{shown}: missing ']' after an IPv6 address"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{shown}: missing host (as in ssh://user@host/srv)"));
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err(format!("{shown}: a host or user cannot start with '-'"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("{shown}: invalid port '{p}'"))
            })
            .transpose()?;
        // `/~/x` and `/~` mean the remote home, as in sftp URLs.
        let path = match path {
            None | Some("/~") | Some("/~/") => None,
            Some(p) => Some(match p.strip_prefix("/~/") {
                Some(rel) => format!("~/{rel}"),
                None => p.to_string(),
            }),
        };
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `[USER@]HOST`, as ssh takes it.
    fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// The command line the remote shell runs: `REMOTE --stdio [--root PATH]`.
    /// `remote` is the user's own text (a path, or a command with arguments);
    /// the path is quoted for the shell, except a leading `~/`.
    pub fn remote_command(&self, remote: &str) -> String {
        let mut line = format!("{remote} --stdio");
        if let Some(path) = &self.path {
            line.push_str(" --root ");
            match path.strip_prefix("~/") {
                Some(rel) => {
                    line.push_str("~/");
                    line.push_str(&quote(rel));
                }
                None => line.push_str(&quote(path)),
            }
        }
        line
    }

    /// The whole command: `SSH... -T [-o BatchMode=yes] [-p PORT] [USER@]HOST
    /// REMOTE-COMMAND`. `ssh` is the command to run it with (`$FTPSH_SSH`
    /// split into words, or `ssh`); `batch` stops ssh from asking for a
    /// password where no one can answer.
    pub fn command(&self, ssh: &[String], remote: &str, batch: bool) -> Result<Command, String> {
        let (program, args) = ssh
            .split_first()
            .ok_or_else(|| "the ssh command is empty (check FTPSH_SSH)".to_string())?;
        let mut cmd = Command::new(program);
        cmd.args(args).arg("-T");
        if batch {
            cmd.args(["-o", "BatchMode=yes"]);
        }
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd.arg(self.destination()).arg(self.remote_command(remote));
        Ok(cmd)
    }

    /// Starts `ssh` and returns the stream over its stdin and stdout; its
    /// stderr stays ours, so its prompts and errors reach the user untouched.
    pub fn spawn(&self, ssh: &[String], remote: &str, batch: bool) -> io::Result<PipeStream> {
        let mut cmd = self.command(ssh, remote, batch).map_err(io::Error::other)?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {}", ssh[0], crate::errors::describe(&e)),
            )
        })?;
        PipeStream::child(child, &self.to_string())
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        match &self.path {
            Some(p) if p.starts_with("~/") => write!(f, "/{p}"),
            Some(p) => f.write_str(p),
            None => Ok(()),
        }
    }
}

/// Single-quotes a word for a POSIX shell.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_ssh_urls() {
        let t = SshTarget::parse("alice@example.org:2222/srv/files").unwrap();
        assert_eq!(t.user.as_deref(), Some("alice"));
        assert_eq!(t.host, "example.org");
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.path.as_deref(), Some("/srv/files"));
        assert_eq!(t.to_string(), "ssh://alice@example.org:2222/srv/files");
        let home = SshTarget::parse("host").unwrap();
        assert_eq!((home.user, home.port, home.path), (None, None, None));
        assert_eq!(
            SshTarget::parse("h/~/x").unwrap().path.as_deref(),
            Some("~/x")
        );
        assert_eq!(SshTarget::parse("h/~").unwrap().path, None);
        let v6 = SshTarget::parse("[::1]:22/tmp").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(22)));
        assert_eq!(v6.to_string(), "ssh://[::1]:22/tmp");
        for bad in ["", "@h", "h:x", "-oProxyCommand=x", "[::1", "-u@h"] {
            assert!(SshTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_remote_command_quotes_the_path() {
        let t = SshTarget::parse("h/srv/it's here").unwrap();
        assert_eq!(
            t.remote_command("ftpsh-server"),
            "ftpsh-server --stdio --root '/srv/it'\\''s here'"
        );
        let t = SshTarget::parse("h/~/a b").unwrap();
        assert_eq!(
            t.remote_command("/opt/ftpsh-server"),
            "/opt/ftpsh-server --stdio --root ~/'a b'"
        );
        assert_eq!(
            SshTarget::parse("h")
                .unwrap()
                .remote_command("ftpsh-server"),
            "ftpsh-server --stdio"
        );
        let cmd = t.command(&["ssh".into()], "ftpsh-server", true).unwrap();
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..4], ["-T", "-o", "BatchMode=yes", "h"]);
    }
}
