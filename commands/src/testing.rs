//! An in-memory [`Remote`] and [`Ui`], for unit tests of verbs, aliases and
//! the script [`Runner`](crate::script::Runner) without a server, a socket or a
//! terminal.
//!
//! Compiled for this crate's own tests, and for other crates only with the
//! `testing` feature (`ftpsh-commands = { ..., features = ["testing"] }` under
//! `[dev-dependencies]`): a third party can test its verb the same way, while
//! no build of the product carries it. It is a fake, not a model of the server:
//! a tree of directories and files in a `BTreeMap`, refusals worded like the
//! server's, and no `exec`, links, permissions or partial uploads.
//!
//! A test builds a [`MemRemote`] with [`MemRemote::add_file`] and
//! [`MemRemote::add_dir`], runs lines through a `Runner` over it and a
//! [`MemUi`], and reads [`MemUi::out_text`] and [`MemUi::err_text`]; the tests
//! of `script.rs` (`script_tests.rs`) are the examples.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ftpsh_core::glob::{has_glob, matcher};
use ftpsh_core::hashing::Md5;

use crate::session::{
    Details, Digest, Entry, EntryKind, ExitStatus, NoProgress, Progress, Receiver, Remote,
    RemoteError, RemoteResult, Source, Ui,
};

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// A server's tree in memory. Paths are absolute and normalised (`/`, `/a/b`);
/// the root always exists.
#[derive(Debug, Clone)]
pub struct MemRemote {
    nodes: BTreeMap<String, Node>,
    cwd: String,
    previous: Option<String>,
}

impl Default for MemRemote {
    fn default() -> Self {
        Self::new()
    }
}

fn refused(path: &str, why: &str) -> RemoteError {
    RemoteError::Refused(format!("{path}: {why}"))
}

/// `path` taken from `cwd` as the server takes it: `..` at the root stays there.
fn normalize(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = if path.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `child` under `dir` (both normalised)?
fn is_below(child: &str, dir: &str) -> bool {
    if dir == "/" {
        child != "/"
    } else {
        child.len() > dir.len() && child.starts_with(dir) && child.as_bytes()[dir.len()] == b'/'
    }
}

impl MemRemote {
    /// An empty root, with `/` as the remote directory.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node::Dir);
        MemRemote {
            nodes,
            cwd: "/".to_string(),
            previous: None,
        }
    }

    /// Creates a directory and its parents (absolute or from `/`).
    pub fn add_dir(&mut self, path: &str) {
        let path = normalize("/", path);
        let mut at = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            at.push('/');
            at.push_str(c);
            self.nodes.entry(at.clone()).or_insert(Node::Dir);
        }
    }

    /// Creates (or replaces) a file, and its parent directories.
    pub fn add_file(&mut self, path: &str, data: &[u8]) {
        let path = normalize("/", path);
        self.add_dir(parent(&path));
        self.nodes.insert(path, Node::File(data.to_vec()));
    }

    /// A file's content, if `path` is a file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.nodes.get(&normalize(&self.cwd, path)) {
            Some(Node::File(data)) => Some(data),
            _ => None,
        }
    }

    /// True when `path` is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        matches!(self.nodes.get(&normalize(&self.cwd, path)), Some(Node::Dir))
    }

    fn node(&self, path: &str) -> RemoteResult<(String, &Node)> {
        let abs = normalize(&self.cwd, path);
        match self.nodes.get(&abs) {
            Some(node) => Ok((abs, node)),
            None => Err(refused(&abs, "no such file or directory")),
        }
    }

    fn entry(name: String, node: &Node) -> Entry {
        match node {
            Node::Dir => Entry {
                name,
                kind: EntryKind::Dir,
                size: 0,
                mtime: 0,
                mode: 0o755,
                target: String::new(),
            },
            Node::File(data) => Entry {
                name,
                kind: EntryKind::File,
                size: data.len() as u64,
                mtime: 0,
                mode: 0o644,
                target: String::new(),
            },
        }
    }

    /// The direct children of a directory, sorted by name.
    fn children(&self, dir: &str) -> Vec<(String, &Node)> {
        self.nodes
            .iter()
            .filter(|(p, _)| is_below(p, dir) && parent(p) == dir)
            .map(|(p, n)| (base(p).to_string(), n))
            .collect()
    }
}

impl Remote for MemRemote {
    fn address(&self) -> String {
        "memory".to_string()
    }

    fn cwd(&self) -> String {
        self.cwd.clone()
    }

    fn echo(&mut self, text: &str) -> RemoteResult<String> {
        Ok(text.to_string())
    }

    fn exec(
        &mut self,
        _command: &str,
        _out: &mut dyn Write,
        _err: &mut dyn Write,
    ) -> RemoteResult<ExitStatus> {
        Err(RemoteError::Refused(
            "exec is not available in memory".to_string(),
        ))
    }

    fn list(&mut self, path: &str) -> RemoteResult<Vec<Entry>> {
        let (abs, node) = self.node(path)?;
        match node {
            Node::File(_) => Ok(vec![Self::entry(
                path.trim_end_matches('/').to_string(),
                node,
            )]),
            Node::Dir => Ok(self
                .children(&abs)
                .into_iter()
                .map(|(name, n)| Self::entry(name, n))
                .collect()),
        }
    }

    fn stat(&mut self, path: &str) -> RemoteResult<Entry> {
        let (abs, node) = self.node(path)?;
        Ok(Self::entry(base(&abs).to_string(), node))
    }

    fn cd(&mut self, path: &str) -> RemoteResult<String> {
        let (abs, node) = self.node(path)?;
        if let Node::File(_) = node {
            return Err(refused(&abs, "not a directory"));
        }
        self.previous = Some(std::mem::replace(&mut self.cwd, abs.clone()));
        Ok(abs)
    }

    fn pwd(&mut self) -> RemoteResult<String> {
        Ok(self.cwd.clone())
    }

    fn mkdir(&mut self, path: &str, parents: bool) -> RemoteResult<()> {
        let abs = normalize(&self.cwd, path);
        match self.nodes.get(&abs) {
            Some(Node::Dir) if parents => return Ok(()),
            Some(_) => return Err(refused(&abs, "file exists")),
            None => {}
        }
        match self.nodes.get(parent(&abs)) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(refused(parent(&abs), "not a directory")),
            None if parents => {}
            None => return Err(refused(&abs, "no such file or directory")),
        }
        self.add_dir(&abs);
        Ok(())
    }

    fn remove(&mut self, path: &str, recursive: bool) -> RemoteResult<()> {
        let (abs, _) = self.node(path)?;
        if abs == "/" {
            return Err(refused("/", "cannot remove the root"));
        }
        let below: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| is_below(p, &abs))
            .cloned()
            .collect();
        if !below.is_empty() && !recursive {
            return Err(refused(&abs, "directory not empty"));
        }
        for p in below {
            self.nodes.remove(&p);
        }
        self.nodes.remove(&abs);
        Ok(())
    }

    fn md5(&mut self, path: &str) -> RemoteResult<Digest> {
        match self.node(path)? {
            (_, Node::File(data)) => Ok(Md5::digest(data)),
            (abs, Node::Dir) => Err(refused(&abs, "is a directory")),
        }
    }

    fn glob(&mut self, pattern: &str) -> RemoteResult<Vec<String>> {
        Ok(self
            .glob_entries(pattern)?
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    fn glob_entries(&mut self, pattern: &str) -> RemoteResult<Vec<Entry>> {
        let absolute = pattern.starts_with('/');
        // (the path as shown, its absolute path)
        let start = if absolute { "/" } else { self.cwd.as_str() };
        let mut found = vec![(String::new(), start.to_string())];
        for component in pattern.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for (shown, abs) in &found {
                let join = |name: &str| {
                    let shown = match (shown.is_empty(), absolute) {
                        (true, true) => format!("/{name}"),
                        (true, false) => name.to_string(),
                        (false, _) => format!("{shown}/{name}"),
                    };
                    (shown, normalize(abs, name))
                };
                if !has_glob(component) {
                    next.push(join(component));
                    continue;
                }
                let m = matcher(component).map_err(RemoteError::Refused)?;
                for (name, _) in self.children(abs) {
                    if (!name.starts_with('.') || component.starts_with('.')) && m.is_match(&name) {
                        next.push(join(&name));
                    }
                }
            }
            found = next;
        }
        Ok(found
            .into_iter()
            .filter(|(shown, _)| !shown.is_empty())
            .filter_map(|(shown, abs)| self.nodes.get(&abs).map(|n| Self::entry(shown, n)))
            .collect())
    }

    fn walk(&mut self, path: &str) -> RemoteResult<Vec<Entry>> {
        let (abs, node) = self.node(path)?;
        if let Node::File(_) = node {
            return Err(refused(&abs, "not a directory"));
        }
        let skip = if abs == "/" { 1 } else { abs.len() + 1 };
        Ok(self
            .nodes
            .iter()
            .filter(|(p, _)| is_below(p, &abs))
            .map(|(p, n)| Self::entry(p[skip..].to_string(), n))
            .collect())
    }

    fn download(
        &mut self,
        path: &str,
        offset: u64,
        receiver: &mut dyn Receiver,
    ) -> RemoteResult<Digest> {
        let data = match self.node(path)? {
            (_, Node::File(data)) => data.clone(),
            (abs, Node::Dir) => return Err(refused(&abs, "is a directory")),
        };
        let offset = (offset as usize).min(data.len());
        receiver
            .start(data.len() as u64, offset as u64)
            .map_err(RemoteError::Local)?;
        for chunk in data[offset..].chunks(64 * 1024) {
            receiver.data(chunk).map_err(RemoteError::Local)?;
        }
        Ok(Md5::digest(&data))
    }

    /// Installs the upload if its digest matches; `resume` starts over (no
    /// partial copies are kept in memory).
    fn upload(&mut self, path: &str, _resume: bool, source: &mut dyn Source) -> RemoteResult<()> {
        let abs = normalize(&self.cwd, path);
        match self.nodes.get(parent(&abs)) {
            Some(Node::Dir) => {}
            _ => return Err(refused(parent(&abs), "no such directory")),
        }
        if let Some(Node::Dir) = self.nodes.get(&abs) {
            return Err(refused(&abs, "is a directory"));
        }
        source.start(0).map_err(RemoteError::Local)?;
        let mut data = Vec::with_capacity(source.size() as usize);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = source.read(&mut buf).map_err(RemoteError::Local)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        if source.digest() != Md5::digest(&data) {
            return Err(refused(&abs, "MD5 mismatch: the upload was not installed"));
        }
        self.nodes.insert(abs, Node::File(data));
        Ok(())
    }

    fn previous_dir(&self) -> Option<String> {
        self.previous.clone()
    }

    fn rename(&mut self, from: &str, to: &str) -> RemoteResult<()> {
        let (from, _) = self.node(from)?;
        let to = normalize(&self.cwd, to);
        if from == "/" {
            return Err(refused("/", "refusing to rename the root"));
        }
        match self.nodes.get(&to) {
            Some(Node::Dir) => return Err(refused(&to, "is an existing directory")),
            Some(_) => return Err(refused(&to, "already exists")),
            None => {}
        }
        if !matches!(self.nodes.get(parent(&to)), Some(Node::Dir)) || is_below(&to, &from) {
            return Err(refused(&to, "no such directory"));
        }
        let moved: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| **p == from || is_below(p, &from))
            .cloned()
            .collect();
        for p in moved {
            let node = self.nodes.remove(&p).unwrap();
            self.nodes.insert(format!("{to}{}", &p[from.len()..]), node);
        }
        Ok(())
    }

    fn rmdir(&mut self, path: &str) -> RemoteResult<()> {
        match self.node(path)? {
            (abs, Node::File(_)) => Err(refused(&abs, "not a directory")),
            (abs, Node::Dir) if self.nodes.keys().any(|p| is_below(p, &abs)) => {
                Err(refused(&abs, "directory not empty"))
            }
            (abs, Node::Dir) => {
                self.nodes.remove(&abs);
                Ok(())
            }
        }
    }

    fn stat_details(&mut self, path: &str) -> RemoteResult<Details> {
        let entry = self.stat(path)?;
        Ok(Details {
            entry,
            target: None,
        })
    }
}

/// A terminal in memory: what verbs print is kept, nothing is a terminal, and
/// Ctrl-C is a flag a test may raise.
#[derive(Debug, Default)]
pub struct MemUi {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub interrupt: Arc<AtomicBool>,
}

impl MemUi {
    pub fn new() -> Self {
        Self::default()
    }
    /// stdout so far, as text.
    pub fn out_text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
    /// stderr so far, as text.
    pub fn err_text(&self) -> String {
        String::from_utf8_lossy(&self.err).into_owned()
    }
    /// Forgets what was printed.
    pub fn clear(&mut self) {
        self.out.clear();
        self.err.clear();
    }
}

impl Ui for MemUi {
    fn out(&mut self) -> &mut dyn Write {
        &mut self.out
    }
    fn err(&mut self) -> &mut dyn Write {
        &mut self.err
    }
    fn streams(&mut self) -> (&mut dyn Write, &mut dyn Write) {
        (&mut self.out, &mut self.err)
    }
    fn out_is_terminal(&self) -> bool {
        false
    }
    fn progress(&mut self, _name: &str, _total: u64) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
    fn interactive(&self) -> bool {
        false
    }
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }
    fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }
    fn report_error(&mut self, verb: &str, message: &str) {
        let line = if verb.is_empty() {
            format!("ftpsh: {message}")
        } else {
            format!("ftpsh: {verb}: {message}")
        };
        let _ = writeln!(self.err, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_as_the_server_does() {
        assert_eq!(normalize("/", "a/b/../c"), "/a/c");
        assert_eq!(normalize("/docs", ".."), "/");
        assert_eq!(normalize("/docs", "../../.."), "/");
        assert_eq!(normalize("/docs", "/x/./y/"), "/x/y");
        assert_eq!(normalize("/docs", "."), "/docs");
    }

    #[test]
    fn the_tree_lists_globs_and_walks() {
        let mut r = MemRemote::new();
        r.add_file("a.log", b"1");
        r.add_file("b.log", b"22");
        r.add_file(".hidden.log", b"");
        r.add_file("d/x.log", b"333");
        r.add_dir("d/empty");
        let names = |v: Vec<Entry>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(
            names(r.list("/").unwrap()),
            [".hidden.log", "a.log", "b.log", "d"]
        );
        assert_eq!(r.glob("*.log").unwrap(), ["a.log", "b.log"]);
        assert_eq!(r.glob("/d/*.log").unwrap(), ["/d/x.log"]);
        assert_eq!(names(r.walk("d").unwrap()), ["empty", "x.log"]);
        assert_eq!(r.stat("d/x.log").unwrap().size, 3);
        r.remove("d", true).unwrap();
        assert!(r.stat("d/x.log").is_err());
        assert!(r.file("b.log").is_some());
    }
}
