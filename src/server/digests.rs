//! Remembered digests: the MD5 of a file the server has already read, keyed by
//! what changes whenever the file does (device, inode, size, mtime, ctime).
//!
//! A repeated download of an unchanged file then needs no server-side hashing, so
//! the bytes can go from the page cache to the socket with `sendfile` and the
//! server's core is free for the client's hashing. A file changed in a way that
//! fools the key (same size, mtime and ctime) still cannot slip through: the
//! client verifies the data it received against the digest and rejects it.
//!
//! With `--digest-cache FILE` ([`DigestCache::persistent`]) the digests also
//! survive a restart: each new one is appended to FILE as a fixed-size record,
//! and FILE is read back at start. FILE lives outside the served tree (no
//! client can write it) and is locked (`flock`) by one server process at a
//! time; a second server on the same FILE runs with a memory-only cache and
//! says so. What FILE holds can at worst make a download fail its
//! verification, never pass a wrong file: the client checks every byte
//! against the digest. A torn last record (a crash mid-write) is dropped at
//! the next start; FILE is rewritten from memory when it grows past twice
//! the cache's capacity, so it stays under about 10 MB.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use ftpsh_core::sys::beneath::{self, Mode, OFlags};

use ftpsh_core::Digest;

/// Entries kept before the cache starts over (a few in unit tests, so that
/// they reach the compaction).
const CAPACITY: usize = if cfg!(test) { 64 } else { 65_536 };
/// The first bytes of a digest cache file (and its format's version).
const MAGIC: &[u8; 8] = b"FTPSHDC1";
/// One record: dev, ino, size, mtime s, mtime ns, ctime s, ctime ns (u64/i64
/// big endian), then the 16-byte digest.
const RECORD: usize = 7 * 8 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    pub fn of(meta: &Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

fn encode(key: &FileKey, digest: &Digest) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    let fields = [
        key.dev,
        key.ino,
        key.size,
        key.mtime.0 as u64,
        key.mtime.1 as u64,
        key.ctime.0 as u64,
        key.ctime.1 as u64,
    ];
    for (i, f) in fields.iter().enumerate() {
        r[i * 8..i * 8 + 8].copy_from_slice(&f.to_be_bytes());
    }
    r[56..].copy_from_slice(digest);
    r
}

fn decode(r: &[u8]) -> (FileKey, Digest) {
    let f = |i: usize| u64::from_be_bytes(r[i * 8..i * 8 + 8].try_into().unwrap());
    let key = FileKey {
        dev: f(0),
        ino: f(1),
        size: f(2),
        mtime: (f(3) as i64, f(4) as i64),
        ctime: (f(5) as i64, f(6) as i64),
    };
    (key, r[56..RECORD].try_into().unwrap())
}

/// The file the digests are appended to.
struct Store {
    file: File,
    /// Its directory, opened once: the file is compacted and renamed in it
    /// by name, never through a path whose links may have changed.
    dir: OwnedFd,
    name: OsString,
    records: usize,
}

#[derive(Default)]
pub struct DigestCache {
    map: Mutex<HashMap<FileKey, Digest>>,
    store: Option<Mutex<Store>>,
}

impl DigestCache {
    /// A cache kept in `path` too: loaded from it now, appended to as
    /// digests are learnt. `Ok((cache, None))` with a memory-only cache and
    /// the reason when another process holds the file; `Err` when the file
    /// cannot be used (not a digest cache file, unreadable).
    pub fn persistent(path: &Path) -> io::Result<(DigestCache, Option<String>)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = OwnedFd::from(File::open(parent)?);
        Self::persistent_at(dir, name, path)
    }

    /// [`DigestCache::persistent`] for the file `name` of the directory
    /// `dir` (`shown` in messages).
    pub fn persistent_at(
        dir: OwnedFd,
        name: &OsStr,
        shown: &Path,
    ) -> io::Result<(DigestCache, Option<String>)> {
        let path = shown;
        // A symlink planted at the cache's name is refused (O_NOFOLLOW).
        let mut file = File::from(beneath::open_at(
            dir.as_fd(),
            name,
            OFlags::RDWR | OFlags::CREATE,
            Mode::from_raw_mode(0o600),
        )?);
        match ftpsh_core::sys::try_lock_exclusive(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let why = format!(
                    "{}: in use by another server process; digests are kept in memory only",
                    path.display()
                );
                return Ok((DigestCache::default(), Some(why)));
            }
            Err(e) => return Err(e),
        }
        let not_a_cache = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not an ftpsh digest cache file", path.display()),
            )
        };
        // The path may be where others can write (`--stdio`'s default under
        // the home directory): a FIFO would never end, and a large file that
        // is not a cache is refused from its first bytes, never read whole.
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_a_cache());
        }
        let mut map = HashMap::new();
        let records = if meta.len() == 0 {
            file.write_all(MAGIC)?;
            0
        } else {
            let mut reader = io::BufReader::new(&file);
            let mut magic = [0u8; MAGIC.len()];
            if reader.read_exact(&mut magic).is_err() || &magic != MAGIC {
                return Err(not_a_cache());
            }
            let mut whole = 0usize;
            let mut r = [0u8; RECORD];
            loop {
                match reader.read_exact(&mut r) {
                    Ok(()) => {}
                    // A torn last record, or the end.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
                let (key, digest) = decode(&r);
                if map.len() >= CAPACITY {
                    map.clear();
                }
                map.insert(key, digest);
                whole += 1;
            }
            // A torn record (a crash mid-append) would misalign every later one.
            file.set_len((MAGIC.len() + whole * RECORD) as u64)?;
            whole
        };
        file.seek(SeekFrom::End(0))?;
        let store = Store {
            file,
            dir,
            name: name.to_os_string(),
            records,
        };
        let cache = DigestCache {
            map: Mutex::new(map),
            store: Some(Mutex::new(store)),
        };
        cache.compact_if_large();
        Ok((cache, None))
    }

    pub fn get(&self, key: &FileKey) -> Option<Digest> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    pub fn insert(&self, key: FileKey, digest: Digest) {
        {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(&key) == Some(&digest) {
                return;
            }
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(key, digest);
        }
        if let Some(store) = &self.store {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            // A failed append costs only the persistence of this digest.
            if store.file.write_all(&encode(&key, &digest)).is_ok() {
                store.records += 1;
            }
            let large = store.records > 2 * CAPACITY;
            drop(store);
            if large {
                self.compact_if_large();
            }
        }
    }

    /// Rewrites the file from memory (a new file renamed over it) when it
    /// holds more than twice the capacity.
    fn compact_if_large(&self) {
        let Some(store) = &self.store else { return };
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        if store.records <= 2 * CAPACITY {
            return;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let tmp = Path::new(&store.name)
            .with_extension("compacting")
            .into_os_string();
        let dir = store.dir.as_fd();
        let written = (|| -> io::Result<File> {
            let mut f = File::from(beneath::open_at(
                dir,
                &tmp,
                OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC,
                Mode::from_raw_mode(0o600),
            )?);
            ftpsh_core::sys::try_lock_exclusive(&f)?;
            let mut out = Vec::with_capacity(MAGIC.len() + map.len() * RECORD);
            out.extend_from_slice(MAGIC);
            for (k, d) in &map {
                out.extend_from_slice(&encode(k, d));
            }
            f.write_all(&out)?;
            beneath::rename_at(dir, &tmp, dir, &store.name)?;
            Ok(f)
        })();
        match written {
            Ok(f) => {
                store.file = f;
                store.records = map.len();
            }
            Err(_) => {
                let _ = beneath::unlink_at(dir, &tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn key(n: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino: n,
            size: n * 10,
            mtime: (1_700_000_000, 5),
            ctime: (-1, 999_999_999),
        }
    }

    #[test]
    fn digests_survive_a_restart_and_a_torn_record_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digests");
        {
            let (c, why) = DigestCache::persistent(&path).unwrap();
            assert!(why.is_none());
            c.insert(key(1), [1; 16]);
            c.insert(key(2), [2; 16]);
            c.insert(key(2), [2; 16]); // known: not appended again
                                       // Held by this process: a second server keeps digests in memory.
            let (other, why) = DigestCache::persistent(&path).unwrap();
            assert!(why.unwrap().contains("another server"));
            assert!(other.get(&key(1)).is_none());
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            MAGIC.len() + 2 * RECORD
        );
        // A crash in the middle of an append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7; 30]).unwrap();
        drop(f);
        let (c, _) = DigestCache::persistent(&path).unwrap();
        assert_eq!(c.get(&key(1)), Some([1; 16]));
        assert_eq!(c.get(&key(2)), Some([2; 16]));
        assert_eq!(c.get(&key(3)), None);
        c.insert(key(3), [3; 16]);
        drop(c);
        let (c, _) = DigestCache::persistent(&path).unwrap();
        assert_eq!(c.get(&key(3)), Some([3; 16]));
        assert_eq!(c.get(&key(2)), Some([2; 16]));
    }

    #[test]
    fn a_growing_file_is_compacted_and_still_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digests");
        let (c, _) = DigestCache::persistent(&path).unwrap();
        for n in 0..(5 * CAPACITY as u64) {
            c.insert(key(n), [n as u8; 16]);
        }
        drop(c);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(
            len <= MAGIC.len() + (2 * CAPACITY + 1) * RECORD,
            "{len} bytes"
        );
        assert_eq!((len - MAGIC.len()) % RECORD, 0);
        assert!(!dir.path().join("digests.compacting").exists());
        let (c, why) = DigestCache::persistent(&path).unwrap();
        assert!(why.is_none());
        let last = 5 * CAPACITY as u64 - 1;
        assert_eq!(c.get(&key(last)), Some([last as u8; 16]));
    }

    /// Under `--stdio` the default cache may lie under the served root (the
    /// home directory), where a client or a local process can put anything at
    /// its path: a FIFO must not hang every later session's start (opened
    /// read-write, a FIFO never reaches its end), and a large file that is
    /// not a cache must be refused from its first bytes, not read whole.
    #[test]
    fn a_fifo_at_the_path_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("digests");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(DigestCache::persistent(&path).map(|_| ()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("opening a FIFO as the digest cache hangs");
        assert!(result.is_err());
    }

    /// Do not run this one against a build that reads the file whole: it
    /// would try to read 64 GiB into memory.
    #[test]
    fn a_large_foreign_file_at_the_path_is_refused_from_its_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse: costs no disk, but reading it whole would take its size.
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(64 << 30).unwrap();
        let start = std::time::Instant::now();
        assert!(DigestCache::persistent(&big).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_file_that_is_not_a_digest_cache_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious");
        std::fs::write(&path, b"not digests").unwrap();
        assert!(DigestCache::persistent(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not digests");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(DigestCache::persistent(&link).is_err());
    }
}
