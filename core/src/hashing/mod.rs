//! MD5: the fastest implementation this build has, and off the receiving thread.
//!
//! Both ends of a transfer hash every byte, so MD5's speed is the ceiling of a
//! first download (two passes share the machine's cores; see `bench/README.md`).
//! [`Md5`] uses our own on x86-64 (`x86.rs`: inline assembly, about 5 %
//! faster than OpenSSL's); elsewhere OpenSSL's, which is assembly chosen for
//! the CPU at run time and 15-20 % faster than md-5's portable Rust on the
//! reference machine, when libcrypto is on the machine at run time (it is
//! loaded with `dlopen`, so the build needs no OpenSSL headers); md-5
//! otherwise, or where OpenSSL refuses MD5 (a FIPS-only configuration). See
//! [`md5`](self::md5) for the details.
//!
//! A verified download does three things to every byte: take it off the socket,
//! write it to the file, hash it. Hashing is the most expensive and the other two
//! are mostly kernel copies, so for large files the hash runs on its own thread,
//! fed through a small pool of recycled buffers: the receiving thread copies each
//! chunk into a free buffer ([`Md5Sink::update`]) or, better, hands over a
//! buffer it is done with and takes a spent one back
//! ([`Md5Sink::update_owned_range`]: the client's download buffers, the
//! server's sent and received chunks, the put client's sent ones), and goes
//! on while the previous chunks are hashed. Memory stays at the pool's
//! buffers whatever the file size. Small files are hashed inline, where a thread would cost more
//! than it saves. So are large files while as many hash threads as the machine
//! has CPUs are already running in this process (a server with many
//! downloads at once): another thread would add a copy of every byte and a
//! hand-off per chunk, and no parallelism, as every CPU is already hashing.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use crate::entry::Digest;

mod md5;
#[cfg(target_arch = "x86_64")]
mod x86;
pub use self::md5::Md5;

/// Files at least this large are hashed on a separate thread.
pub const THREAD_THRESHOLD: u64 = 8 << 20;
/// Buffers in flight between the receiving and the hashing thread.
const POOL: usize = 8;

/// A buffer on its way to the hash thread, and the part of it to hash.
type Chunk = (Vec<u8>, Range<usize>);

/// Hash threads running in this process ([`Md5Sink::Threaded`] alive).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The most hash threads at once: the CPUs, at least 2.
fn max_threads() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .max(2)
    })
}

/// An MD5 computation that may run on another thread.
pub enum Md5Sink {
    Inline(Md5),
    Threaded {
        full: Option<SyncSender<Chunk>>,
        empty: Receiver<Vec<u8>>,
        worker: Option<JoinHandle<Md5>>,
    },
}

impl Md5Sink {
    /// Hashing inline.
    pub fn inline() -> Self {
        Md5Sink::Inline(Md5::new())
    }

    /// Hashing on a thread when `size` makes it worth it and fewer hash
    /// threads than CPUs are running. Falls back to inline hashing if a thread
    /// cannot be started.
    pub fn for_size(size: u64) -> Self {
        Self::with_pool(size, POOL)
    }

    /// Like [`for_size`](Self::for_size), with `pool` buffers in flight
    /// (at least 1): fewer for callers that hand over large buffers of their
    /// own ([`update_owned_range`](Self::update_owned_range)), so that memory
    /// stays bounded.
    pub fn with_pool(size: u64, pool: usize) -> Self {
        let pool = pool.max(1);
        if size < THREAD_THRESHOLD {
            return Self::inline();
        }
        if THREADS.fetch_add(1, Ordering::SeqCst) >= max_threads() {
            THREADS.fetch_sub(1, Ordering::SeqCst);
            return Self::inline();
        }
        let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(pool);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(pool);
        for _ in 0..pool {
            let _ = empty_tx.send(Vec::new());
        }
        let worker = std::thread::Builder::new()
            .name("ftpsh-md5".into())
            .spawn(move || {
                let mut hasher = Md5::new();
                for (buf, range) in full_rx {
                    hasher.update(&buf[range]);
                    if empty_tx.send(buf).is_err() {
                        break;
                    }
                }
                hasher
            });
        match worker {
            // Counted until dropped (`Drop`).
            Ok(w) => Md5Sink::Threaded {
                full: Some(full_tx),
                empty: empty_rx,
                worker: Some(w),
            },
            Err(_) => {
                THREADS.fetch_sub(1, Ordering::SeqCst);
                Self::inline()
            }
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Md5Sink::Inline(h) => h.update(data),
            Md5Sink::Threaded { full, empty, .. } => {
                let mut buf = match empty.recv() {
                    Ok(b) => b,
                    Err(_) => return, // the worker died; finalize() reports it
                };
                buf.clear();
                buf.extend_from_slice(data);
                let all = 0..buf.len();
                if let Some(tx) = full {
                    let _ = tx.send((buf, all));
                }
            }
        }
    }

    /// Like [`update`](Self::update) for data the caller owns and is done
    /// with: a hash thread takes `data` itself instead of a copy, and a spent
    /// buffer of the pool (empty at first, later of an earlier chunk's size) is
    /// handed back for the caller to reuse. Inline, `data` is hashed and
    /// returned.
    pub fn update_owned(&mut self, data: Vec<u8>) -> Vec<u8> {
        let all = 0..data.len();
        self.update_owned_range(data, all)
    }

    /// [`update_owned`](Self::update_owned) of `data[range]` alone: for a
    /// buffer whose useful part starts at an aligned address inside it
    /// (direct I/O), which is handed over whole. Panics if `range` is not
    /// inside `data`.
    pub fn update_owned_range(&mut self, data: Vec<u8>, range: Range<usize>) -> Vec<u8> {
        assert!(range.start <= range.end && range.end <= data.len());
        match self {
            Md5Sink::Inline(h) => {
                h.update(&data[range]);
                data
            }
            Md5Sink::Threaded { full, empty, .. } => {
                let spent = match empty.recv() {
                    Ok(b) => b,
                    Err(_) => return data, // the worker died; finalize() reports it
                };
                if let Some(tx) = full {
                    let _ = tx.send((data, range));
                }
                spent
            }
        }
    }

    /// The digest of everything passed to `update`.
    pub fn finalize(mut self) -> Digest {
        match &mut self {
            Md5Sink::Inline(h) => std::mem::take(h).finalize(),
            Md5Sink::Threaded { full, worker, .. } => {
                drop(full.take());
                let hasher = worker
                    .take()
                    .expect("joined once")
                    .join()
                    .expect("the MD5 thread does not panic");
                hasher.finalize()
            }
        }
    }
}

impl Drop for Md5Sink {
    fn drop(&mut self) {
        if let Md5Sink::Threaded { full, worker, .. } = self {
            drop(full.take());
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
            THREADS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_and_inline_digests_agree() {
        let data: Vec<u8> = (0..(THREAD_THRESHOLD as usize + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut inline = Md5Sink::inline();
        let mut threaded = Md5Sink::for_size(data.len() as u64);
        assert!(matches!(threaded, Md5Sink::Threaded { .. }));
        for chunk in data.chunks(100_000) {
            inline.update(chunk);
            threaded.update(chunk);
        }
        let expected: Digest = <::md5::Md5 as ::md5::Digest>::digest(&data).into();
        assert_eq!(inline.finalize(), expected);
        assert_eq!(threaded.finalize(), expected);
    }

    #[test]
    fn owned_and_copied_updates_hash_the_same() {
        let data: Vec<u8> = (0..(THREAD_THRESHOLD as usize + 777))
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        let expected = Md5::digest(&data);
        for mut sink in [Md5Sink::inline(), Md5Sink::for_size(data.len() as u64)] {
            let mut spare = Vec::new();
            for (i, chunk) in data.chunks(65_536).enumerate() {
                if i % 3 == 0 {
                    sink.update(chunk);
                } else {
                    spare.clear();
                    spare.extend_from_slice(chunk);
                    spare = sink.update_owned(spare);
                }
            }
            assert_eq!(sink.finalize(), expected);
        }
    }

    /// Parts of buffers handed over whole, through a pool of one: hashed in
    /// order, and only the part named.
    #[test]
    fn owned_ranges_hash_only_their_part_in_order() {
        let data: Vec<u8> = (0..(THREAD_THRESHOLD as usize + 4321))
            .map(|i| (i * 13 % 251) as u8)
            .collect();
        let expected = Md5::digest(&data);
        for mut sink in [Md5Sink::inline(), Md5Sink::with_pool(data.len() as u64, 1)] {
            let mut spare = Vec::new();
            for chunk in data.chunks(1 << 20) {
                // Garbage around the part to hash, as an aligned window has.
                spare.clear();
                spare.extend_from_slice(&[0xee; 100]);
                spare.extend_from_slice(chunk);
                spare.extend_from_slice(&[0xdd; 7]);
                spare = sink.update_owned_range(spare, 100..100 + chunk.len());
            }
            assert_eq!(sink.finalize(), expected);
        }
    }

    #[test]
    fn an_abandoned_threaded_sink_shuts_its_thread_down() {
        let mut s = Md5Sink::for_size(THREAD_THRESHOLD);
        s.update(b"abc");
        drop(s);
    }

    #[test]
    fn no_more_hash_threads_than_cpus_and_the_rest_inline() {
        let sinks: Vec<Md5Sink> = (0..max_threads() + 3)
            .map(|_| Md5Sink::for_size(THREAD_THRESHOLD))
            .collect();
        let threaded = sinks
            .iter()
            .filter(|s| matches!(s, Md5Sink::Threaded { .. }))
            .count();
        assert!(threaded <= max_threads(), "{threaded} hash threads");
        let expected = Md5::digest(b"abc");
        for mut s in sinks {
            s.update(b"abc");
            assert_eq!(s.finalize(), expected);
        }
        // All released: a new one may thread again.
        assert!(THREADS.load(Ordering::SeqCst) <= max_threads());
    }

    /// The test vectors of RFC 1321, appendix A.5.
    #[test]
    fn rfc_1321_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(crate::entry::hex(&Md5::digest(input)), expected);
        }
    }

    /// Whichever implementation `Md5` picks agrees with md-5 on every length
    /// around the 64-byte block and on data fed in uneven pieces.
    #[test]
    fn the_chosen_implementation_agrees_with_md5_crate() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        for len in (0..200).chain([511, 512, 513, 4095, 4096, 4097, 5000]) {
            let expected: Digest = <::md5::Md5 as ::md5::Digest>::digest(&data[..len]).into();
            let mut h = Md5::new();
            for piece in data[..len].chunks(37) {
                h.update(piece);
            }
            assert_eq!(h.finalize(), expected, "length {len}");
        }
    }
}
